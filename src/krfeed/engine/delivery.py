"""Where a session delivers what it reads: :class:`Delivery`, met by the :class:`~krfeed.Feed`
(not a storage sink: those are :class:`krfeed.sinks.Sink`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from krfeed.events import Event
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record


class Delivery(Protocol):
    """What a session delivers into (the Feed)."""

    def control(self, event: Event | DecodeError) -> None: ...

    def offer(self, record: Record) -> bool:
        """Take ``record`` if that needs no waiting (the common case); False: use record()."""
        ...

    async def record(self, record: Record) -> None: ...

    async def decode_error(self, error: DecodeError) -> None: ...

    def raw(
        self, session: str, conn: int, received_at: datetime, text: str, data: bytes | None = None
    ) -> None:
        """Every inbound frame as text; ``data``: its bytes as received, given only when they
        were not valid UTF-8 (``text`` is then the lenient decoding)."""
        ...


#: The former name (``krfeed.session.EventSink``), kept for code that imports it.
EventSink = Delivery
