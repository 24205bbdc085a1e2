"""The broker-independent session engine: the connection loop (:mod:`.session`), the
fatal/retry decision (:mod:`.classify`), the two reconnect paths (:mod:`.backoff`), heartbeat
and stall limits (:mod:`.liveness`), subscription state (:mod:`.subscriptions`) and the
(un)subscribe requests with the wait for their replies (:mod:`.requests`)."""

from __future__ import annotations

from krfeed.engine.classify import FatalSession, Reconnect, Verdict, classify
from krfeed.engine.delivery import Delivery, EventSink
from krfeed.engine.options import SessionOptions, SessionStats
from krfeed.engine.session import Session
from krfeed.engine.subscriptions import (
    Change,
    Subscription,
    SubscriptionTable,
    SubState,
    transition,
)

__all__ = [
    "Change",
    "Delivery",
    "EventSink",
    "FatalSession",
    "Reconnect",
    "Session",
    "SessionOptions",
    "SessionStats",
    "SubState",
    "Subscription",
    "SubscriptionTable",
    "Verdict",
    "classify",
    "transition",
]
