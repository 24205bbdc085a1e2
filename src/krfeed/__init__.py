"""krfeed — real-time WebSocket feeds of Korean brokers (Kiwoom REST API, KIS Open API).

from krfeed import Feed, Kiwoom, KIS
"""

from __future__ import annotations

from krfeed.brokers import KIS, Kiwoom
from krfeed.engine import SessionOptions, Subscription, SubState
from krfeed.errors import (
    AuthError,
    FeedClosed,
    KrfeedError,
    SubscriptionError,
    TransientError,
)
from krfeed.events import (
    Connected,
    Disconnected,
    Dropped,
    Event,
    LayoutChanged,
    LoggedIn,
    Reconnected,
    Reconnecting,
    SessionFailed,
    Stalled,
    Subscribed,
    SubscribeFailed,
    Unsubscribed,
)
from krfeed.feed import Feed, FeedItem
from krfeed.protocol import KISCodec, KiwoomCodec, decode
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import KISRecord, KiwoomRecord, Record, TypeRef
from krfeed.sync import SyncFeed

__version__ = "0.1.0"

__all__ = [
    "KIS",
    "AuthError",
    "Connected",
    "DecodeError",
    "Disconnected",
    "Dropped",
    "Event",
    "Feed",
    "FeedClosed",
    "FeedItem",
    "KISCodec",
    "KISRecord",
    "Kiwoom",
    "KiwoomCodec",
    "KiwoomRecord",
    "KrfeedError",
    "LayoutChanged",
    "LoggedIn",
    "Reconnected",
    "Reconnecting",
    "Record",
    "SessionFailed",
    "SessionOptions",
    "Stalled",
    "SubState",
    "SubscribeFailed",
    "Subscribed",
    "Subscription",
    "SubscriptionError",
    "SyncFeed",
    "TransientError",
    "TypeRef",
    "Unsubscribed",
    "__version__",
    "decode",
]
