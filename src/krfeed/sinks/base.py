"""The sink interface: where recorded records and control events go.

A sink receives batches. ``write`` returns only once the batch is durable in the sink (committed,
flushed, or acknowledged by the server): that is what "delivered" means. A sink that raises is
retried by the :class:`~krfeed.recorder.Recorder` with backoff, and the feed slows down
meanwhile; nothing is dropped.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from krfeed.events import FeedItem

#: An item a sink stores: the Feed's :data:`~krfeed.events.FeedItem`, under the sinks' name.
Item = FeedItem


class SinkError(ValueError):
    """A sink that cannot be used: unknown scheme, missing optional dependency, or (from
    ``open``) a database or file that cannot be opened, said in one sentence."""


class SinkUnavailable(SinkError):
    """A sink's server could not be reached within its ``open_timeout``."""


@runtime_checkable
class Sink(Protocol):
    """A destination for recorded items, opened by URL (see :func:`krfeed.sinks.open_sink`)."""

    url: str

    async def open(self) -> None:
        """Connect / create files and tables. Called once before the first write."""

    async def write(self, batch: list[Item]) -> None:
        """Store ``batch`` durably (records, control events and decode errors, in order)."""

    async def close(self) -> None:
        """Flush and release everything; must be safe to call twice."""
