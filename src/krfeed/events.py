"""Control events that travel in the stream with the records, in arrival order."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record


def _now() -> datetime:
    return datetime.now(UTC)


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every control event. ``session`` names the connection (e.g. ``kis#2``)."""

    broker: str
    session: str
    at: datetime = msgspec.field(default_factory=_now)


class Connected(Event, frozen=True, kw_only=True):
    """The WebSocket is open (before login)."""

    url: str


class LoggedIn(Event, frozen=True, kw_only=True):
    """Kiwoom LOGIN accepted (KIS has no login step: emitted right after connecting)."""


class Subscribed(Event, frozen=True, kw_only=True):
    """The broker confirmed a registration (KIS OPSP0002 'already subscribed' counts)."""

    type: str
    item: str


class SubscribeFailed(Event, frozen=True, kw_only=True):
    """A registration was refused, locally (limits, mock) or by the broker; or, ``unanswered``,
    the broker did not answer it (``reason`` "no reply from the broker within …"): then a late
    reply or its data may still confirm it, with a ``Subscribed`` event."""

    type: str
    item: str
    reason: str
    code: str = ""
    unanswered: bool = False


class Unsubscribed(Event, frozen=True, kw_only=True):
    """A registration is gone. ``reason`` is empty when the broker confirmed it (or the
    connection ended, which ends every registration), else why it counts as gone without
    the broker's word (no reply to the unsubscribe, sent twice)."""

    type: str
    item: str
    reason: str = ""


class Disconnected(Event, frozen=True, kw_only=True):
    """The connection ended. ``fatal`` means krfeed will not reconnect this session."""

    reason: str
    fatal: bool = False


class Reconnecting(Event, frozen=True, kw_only=True):
    """The next connection attempt starts in ``delay`` seconds (jittered). ``path``: "socket"
    (only the socket is retried, the cached credential being valid: short cap), "backoff"
    (authentication, a refusal, or outside market hours: the capped backoff) or "now" (a
    credential was just renewed)."""

    attempt: int
    delay: float
    reason: str = ""
    path: str = ""


class Reconnected(Event, frozen=True, kw_only=True):
    """Connected and logged in again, subscriptions being restored. ``gap`` in seconds."""

    attempt: int
    gap: float


class Stalled(Event, frozen=True, kw_only=True):
    """Heartbeats continue but no subscribed data arrived for ``silent_for`` seconds."""

    silent_for: float


class Dropped(Event, frozen=True, kw_only=True):
    """Market-data records dropped because the consumer fell behind (never account records)."""

    count: int
    total: int


class LayoutChanged(Event, frozen=True, kw_only=True):
    """Records of ``type`` arrived longer than every layout krfeed knows (fields appended on the
    live wire). They are decoded — the known fields as usual, the rest kept in each record's
    ``extra`` — and this is said once per session, type and layout. ``message`` says it in
    words."""

    type: str
    fields: int  # values per record on the wire (Kiwoom: FIDs in the entry)
    known: tuple[int, ...]  # the layouts krfeed knows (fields per record), oldest first
    extra: int  # values per record kept in ``extra``
    unknown: tuple[str, ...] = ()  # Kiwoom: the FIDs krfeed does not know
    message: str = ""


class SessionFailed(Event, frozen=True, kw_only=True):
    """A fatal error stopped a session (bad credentials, another session took the appkey)."""

    reason: str
    code: str = ""


class ConditionWatched(Event, frozen=True, kw_only=True):
    """A Kiwoom real-time condition search (조건검색) started: ``codes`` match it now; type 02
    records (entered / left) follow in the stream."""

    seq: str
    name: str = ""
    codes: tuple[str, ...] = ()


class ConditionRestored(Event, frozen=True, kw_only=True):
    """A condition search was requested again after a reconnect: ``codes`` match it now.
    ``entered`` / ``left`` are what changed while the connection was down; a 02 record for
    each follows (with no ``event_time``: krfeed made them from the difference)."""

    seq: str
    codes: tuple[str, ...] = ()
    entered: tuple[str, ...] = ()
    left: tuple[str, ...] = ()


class ConditionUnwatched(Event, frozen=True, kw_only=True):
    """A real-time condition search ended (CNSRCLR, or refused when restored)."""

    seq: str
    reason: str = ""


ControlEvent = (
    Connected
    | LoggedIn
    | Subscribed
    | SubscribeFailed
    | Unsubscribed
    | Disconnected
    | Reconnecting
    | Reconnected
    | Stalled
    | Dropped
    | LayoutChanged
    | SessionFailed
    | ConditionWatched
    | ConditionRestored
    | ConditionUnwatched
    | DecodeError
)

#: What a :class:`~krfeed.Feed` delivers and a sink stores: a record, a control event, or a
#: frame that could not be decoded (``krfeed.sinks.Item`` is this one alias).
FeedItem = Record | Event | DecodeError

__all__ = [
    "ConditionRestored",
    "ConditionUnwatched",
    "ConditionWatched",
    "Connected",
    "ControlEvent",
    "DecodeError",
    "Disconnected",
    "Dropped",
    "Event",
    "LayoutChanged",
    "LoggedIn",
    "Reconnected",
    "Reconnecting",
    "SessionFailed",
    "Stalled",
    "SubscribeFailed",
    "Subscribed",
    "Unsubscribed",
]
