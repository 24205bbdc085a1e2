"""A synchronous wrapper over :class:`krfeed.Feed` for scripts and notebooks: the feed runs on
an event loop in a background thread; iteration blocks on a bounded queue.

    with SyncFeed(KIS(...)) as feed:
        feed.subscribe(KIS.PROGRAM_TRADING, ["005930"])
        for event in feed:
            print(event)
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from krfeed.brokers import BrokerConfig
from krfeed.engine import Subscription
from krfeed.errors import FeedClosed
from krfeed.feed import Feed, FeedItem
from krfeed.records.base import TypeRef

T = TypeVar("T")
_END = object()


class SyncFeed:
    """Blocking facade of a Feed running in a background thread."""

    def __init__(self, *brokers: BrokerConfig, buffer: int = 10_000, **feed_kw: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="krfeed", daemon=True)
        self._thread.start()
        self._items: queue.Queue[Any] = queue.Queue(maxsize=buffer)
        self._closing = threading.Event()  # close() began: stop waiting for room in _items
        self._ended = threading.Event()  # the forwarder is done: nothing more will arrive
        self.feed: Feed = self._call(self._make(brokers, feed_kw))
        self._pump: asyncio.Future[None] | None = None

    async def _make(self, brokers: tuple[BrokerConfig, ...], kw: dict[str, Any]) -> Feed:
        feed = Feed(*brokers, **kw)
        await feed.start()
        return feed

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> SyncFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(
        self, type_: TypeRef[Any] | str, codes: Sequence[str] | str | None = None, **kw: Any
    ) -> list[Subscription]:
        """:meth:`Feed.subscribe`, blocking; :class:`FeedClosed` after close()."""
        self._check_open("subscribe")
        return self._call(self.feed.subscribe(type_, codes, **kw))

    def unsubscribe(
        self, type_: TypeRef[Any] | str, codes: Sequence[str] | str | None = None
    ) -> None:
        """:meth:`Feed.unsubscribe`, blocking; :class:`FeedClosed` after close()."""
        self._check_open("unsubscribe")
        self._call(self.feed.unsubscribe(type_, codes))

    def _check_open(self, what: str) -> None:
        # after close() the loop is stopped: a call handed to it would never come back
        if self._closing.is_set():
            raise FeedClosed(f"cannot {what}: the feed is closed (make a new SyncFeed)")

    def stats(self) -> dict[str, Any]:
        return self.feed.stats()

    def _put(self, item: Any) -> bool:
        """Wait for room (in a worker thread), but give up once the feed is closing: a thread
        left waiting on a buffer nobody reads would keep the interpreter from exiting."""
        while not self._closing.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    async def _forward(self) -> None:
        try:
            async for item in self.feed:
                # A blocking put on the loop thread would stall the feed; hand off instead.
                if not await asyncio.to_thread(self._put, item):
                    return
        finally:
            self._ended.set()
            with contextlib.suppress(queue.Full):
                self._items.put_nowait(_END)

    def __iter__(self) -> Iterator[FeedItem]:
        if self._closing.is_set():
            return
        if self._pump is None:
            self._pump = asyncio.run_coroutine_threadsafe(self._forward(), self._loop)  # type: ignore[assignment]
        while True:
            try:
                item = self._items.get(timeout=0.1)
            except queue.Empty:
                # _END may not have fitted into a full buffer: the flags say it instead
                if self._ended.is_set() or self._closing.is_set():
                    return
                continue
            if item is _END:
                return
            yield item

    def close(self, timeout: float = 5.0) -> None:
        if not self._loop.is_running():
            return
        self._closing.set()
        try:
            self._call(self.feed.close(timeout), timeout + 1)
            if self._pump is not None:
                self._pump.cancel()
                with contextlib.suppress(Exception):
                    self._call(asyncio.sleep(0.05), timeout)
            with contextlib.suppress(Exception):
                self._call(self._loop.shutdown_default_executor(), timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._loop.close()
