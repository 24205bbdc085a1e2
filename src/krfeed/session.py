"""One WebSocket session (moved: the engine is :mod:`krfeed.engine`, the broker adapters are
``krfeed.brokers.kiwoom.session`` and ``krfeed.brokers.kis.session``); re-exported here."""

from __future__ import annotations

from krfeed.brokers.kis.session import KISSession
from krfeed.brokers.kiwoom.session import KiwoomSession
from krfeed.engine import (
    Delivery,
    EventSink,
    FatalSession,
    Session,
    SessionOptions,
    SessionStats,
    Subscription,
    SubState,
)
from krfeed.engine.classify import Reconnect as _Reconnect

__all__ = [
    "Delivery",
    "EventSink",
    "FatalSession",
    "KISSession",
    "KiwoomSession",
    "Session",
    "SessionOptions",
    "SessionStats",
    "SubState",
    "Subscription",
    "_Reconnect",
]
