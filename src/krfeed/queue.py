"""The bounded queue between sessions and the consumer, with a stated overflow policy.

- Account records (orders, fills, balances) are never dropped: a full queue makes the reader
  wait for them.
- Market data with ``overflow="block"`` waits up to ``block_timeout`` seconds for room, then
  the NEW item is dropped, and so is every further one at once until the consumer takes an
  item (so a consumer stalled for long cannot stall heartbeats); with
  ``overflow="drop_oldest"`` the oldest queued market-data item makes room at once.
- Control events are never dropped (they are few). Decode errors (one per bad frame) are
  queued like the records they stand for.
Drops are counted and announced in the stream by a ``Dropped`` event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Overflow = Literal["block", "drop_oldest"]


class BoundedQueue(Generic[T]):
    """FIFO of (item, droppable) with capacity ``maxsize``."""

    def __init__(
        self, maxsize: int = 10_000, overflow: Overflow = "block", block_timeout: float = 2.0
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if overflow not in ("block", "drop_oldest"):
            raise ValueError("overflow must be 'block' or 'drop_oldest'")
        self.maxsize = maxsize
        self.overflow: Overflow = overflow
        self.block_timeout = block_timeout
        self._items: deque[tuple[T, bool]] = deque()
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        # Mirrors, so that the per-item paths touch the events only when someone waits:
        # gets waiting for an item; _not_full was cleared (the queue filled up).
        self._getters = 0
        self._full = False
        self.dropped = 0  # total
        self.pending_drops = 0  # not yet announced
        self.high_water = 0
        self._closed = False
        # A block-policy put timed out and the consumer has not taken anything since: drop
        # market data at once instead of waiting block_timeout for every further item.
        self._shedding = False

    def __len__(self) -> int:
        return len(self._items)

    def _append(self, item: T, droppable: bool) -> None:
        items = self._items
        items.append((item, droppable))
        n = len(items)
        if n > self.high_water:
            self.high_water = n
        if n >= self.maxsize:
            self._not_full.clear()
            self._full = True
        if self._getters:
            self._not_empty.set()

    def _drop(self) -> None:
        self.dropped += 1
        self.pending_drops += 1

    def put_nowait_control(self, item: T) -> None:
        """Control events: always accepted (a handful per connection, never dropped)."""
        self._append(item, False)

    def offer(self, item: T, droppable: bool) -> bool:
        """Add ``item`` if there is room now; False when :meth:`put` would have to wait or drop.

        The per-record path of every session: :meth:`_append` written out."""
        items = self._items
        n = len(items) + 1
        if n > self.maxsize:
            return False
        items.append((item, droppable))
        if n > self.high_water:
            self.high_water = n
        if n == self.maxsize:
            self._not_full.clear()
            self._full = True
        if self._getters:
            self._not_empty.set()
        return True

    async def put(self, item: T, droppable: bool) -> None:
        """Add ``item``; waits for room per the policy (see module doc)."""
        if len(self._items) < self.maxsize:
            self._append(item, droppable)
            return
        if droppable and self.overflow == "drop_oldest":
            for i, (_, d) in enumerate(self._items):
                if d:
                    del self._items[i]
                    self._drop()
                    self._append(item, droppable)
                    return
        if not droppable:
            while len(self._items) >= self.maxsize and not self._closed:
                self._not_full.clear()
                self._full = True
                await self._not_full.wait()
            self._append(item, droppable)
            return
        if self._shedding:
            self._drop()
            return
        try:
            async with asyncio.timeout(self.block_timeout):
                while len(self._items) >= self.maxsize and not self._closed:
                    self._not_full.clear()
                    self._full = True
                    await self._not_full.wait()
        except TimeoutError:
            self._shedding = True
            self._drop()
            return
        self._append(item, droppable)

    async def get(self) -> T:
        while not self._items:
            if self._closed:
                raise EOFError
            self._not_empty.clear()
            self._getters += 1
            try:
                await self._not_empty.wait()
            finally:
                self._getters -= 1
        return self.pop()

    def get_nowait(self) -> T | None:
        if not self._items:
            return None
        return self.pop()

    def pop(self) -> T:
        """The oldest item, without waiting (IndexError when empty)."""
        item, _ = self._items.popleft()
        # _not_full is set and nothing is shed unless the queue filled up since the last pop
        if (self._full or self._shedding) and len(self._items) < self.maxsize:
            self._not_full.set()
            self._full = False
            self._shedding = False
        return item

    def pop_or(self, default: T) -> T:
        """The oldest item, or ``default`` when the queue is empty (one call, no await)."""
        return self.pop() if self._items else default

    def close(self) -> None:
        """Wake every waiter; ``get`` raises EOFError once drained."""
        self._closed = True
        self._not_empty.set()
        self._not_full.set()
        self._full = False
