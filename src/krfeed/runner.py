"""Running a feed for the CLI, shared by every live command: parse subscription specs, stop
on Ctrl-C / SIGTERM (:func:`on_stop_signals`), run until stopped (:func:`run_until`), and know
when to give up (:class:`Watch`, :func:`all_failed`): every session failed, every subscription
was refused, or no connection succeeded within the connect timeout. :func:`run_feed` puts them
together for ``stream``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from krfeed.brokers import BrokerConfig
from krfeed.errors import SubscriptionError
from krfeed.events import (
    Connected,
    Disconnected,
    Reconnecting,
    SessionFailed,
    Subscribed,
    SubscribeFailed,
)
from krfeed.feed import Feed, FeedItem, subscription_items
from krfeed.logs import get_logger
from krfeed.records.base import Record
from krfeed.schema.catalog import BROKERS, UnknownType, get_type
from krfeed.session import SessionOptions, SubState
from krfeed.shard import expand_codes

log = get_logger("krfeed.run")


@dataclass(frozen=True)
class SubSpec:
    broker: str
    type: str
    codes: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.broker}:{self.type}" + (":" + ",".join(self.codes) if self.codes else "")


def parse_sub(spec: str) -> SubSpec:
    """``kiwoom:0B:005930,000660`` / ``kis:H0STPGM0:005930`` / ``kiwoom:00`` → SubSpec
    (codes also as ``@krx``, ``@krx/500``, ``@FILE``: :func:`krfeed.shard.expand_codes`)."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 3:
        raise ValueError(f"subscription {spec!r} should look like BROKER:TYPE[:CODE,CODE…]")
    broker = parts[0].lower()
    if broker not in BROKERS:
        raise ValueError(f"subscription {spec!r}: unknown broker {parts[0]!r}")
    try:
        rt = get_type(broker, parts[1])
    except UnknownType as e:
        raise ValueError(str(e)) from None
    codes = tuple(expand_codes(parts[2])) if len(parts) == 3 else ()  # also @krx, @FILE
    if not codes and not rt.account:
        raise ValueError(
            f"subscription {spec!r}: {broker} {rt.code} needs codes, e.g. {spec}:005930"
        )
    try:
        subscription_items(rt, codes)  # what Feed.subscribe refuses, refused before connecting
    except SubscriptionError as e:
        raise ValueError(str(e)) from None
    return SubSpec(broker, rt.code, codes)


@contextlib.contextmanager
def on_stop_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call ``stop`` on SIGINT / SIGTERM while inside (where the loop supports signals)."""
    loop = asyncio.get_running_loop()
    sigs = (signal.SIGINT, signal.SIGTERM)
    for sig in sigs:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    try:
        yield
    finally:
        # A signal the kernel gave to another thread (an executor's) has its Python-level
        # handler run late, at the main thread's next check: run it now, while it is still the
        # loop's no-op, or it runs after the removal below as a KeyboardInterrupt in the middle
        # of the caller's cleanup (unclosed sessions, a hang in asyncio.run's shutdown).
        with contextlib.suppress(AttributeError, OSError, ValueError):
            signal.pthread_sigmask(signal.SIG_BLOCK, ())  # runs pending handlers
        for sig in sigs:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def run_until(
    work: Coroutine[Any, Any, None], stop: asyncio.Event, duration: float | None
) -> bool:
    """Run ``work`` until it ends, ``stop`` is set, or ``duration`` passes; then cancel it.

    Returns whether ``work`` ended by itself; re-raises what it raised."""
    task = asyncio.create_task(work)
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, waiter}, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
    finally:
        finished = task.done()
        task.cancel()
        waiter.cancel()
        for t in (task, waiter):
            with contextlib.suppress(asyncio.CancelledError):
                await t
    if task.done() and not task.cancelled():
        exc = task.exception()
        if exc is not None:
            raise exc
    return finished


async def subscribe_all(feed: Feed, subs: list[SubSpec]) -> None:
    """Subscribe every spec without waiting for the brokers' answers (refusals arrive as
    :class:`~krfeed.events.SubscribeFailed`); a spec the feed rejects at once is named."""
    for s in subs:
        try:
            await feed.subscribe(f"{s.broker}:{s.type}", list(s.codes), wait=False)
        except SubscriptionError as e:
            raise SubscriptionError(f"{s}: {e}") from None


class FeedFailed(Exception):
    """The run cannot deliver anything: every session stopped for good (e.g. credentials
    refused), every subscription was refused, or no connection ever succeeded."""


class Interrupted(Exception):
    """Stopped (Ctrl-C / SIGTERM) before anything was recorded."""


def all_failed(feed: Feed, failed: dict[str, str]) -> str:
    """The reasons (``failed``: session -> reason) when every session of ``feed`` stopped for
    good, else ``""``."""
    if failed and all(x.failed for x in feed.sessions):
        return "; ".join(dict.fromkeys(failed.values()))
    return ""


class QueuedRecorder:
    """A :class:`~krfeed.recorder.Recorder` into ``urls`` fed through a queue by a command that
    picks what to record (:meth:`put`); :meth:`close` delivers what was queued."""

    def __init__(self, urls: list[str]) -> None:
        from krfeed.recorder import Recorder
        from krfeed.sinks import open_sink

        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=10_000)
        self.recorder = Recorder(self._source(), [open_sink(u) for u in urls])
        self.task = asyncio.create_task(self.recorder.run())

    async def _source(self) -> AsyncIterator[Any]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item

    async def put(self, item: Any) -> None:
        await self.queue.put(item)

    async def close(self) -> None:
        await self.queue.put(None)
        with contextlib.suppress(Exception):
            await self.task

    def written(self) -> int:
        return int(self.recorder.status()["written"])


#: Seconds to wait for the first connection before giving up (``--connect-timeout``).
CONNECT_TIMEOUT = 10.0


class Watch:
    """Watches a run's control events and says when it cannot deliver anything.

    Once one connection succeeded, outages are retried for ever (and shown); before that,
    :meth:`check_connected` gives up after ``connect_timeout`` seconds with the last reason.
    """

    def __init__(self, feed: Feed, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.feed = feed
        self.connect_timeout = connect_timeout
        self.refused: dict[str, str] = {}  # "kis H0STPGM0 ABC" -> reason
        self.failed: dict[str, str] = {}  # session -> reason
        self.retry_reason: dict[str, str] = {}  # session -> last reconnect reason
        self.reason = ""  # why the run should stop ("" while it may go on)

    def see(self, item: object) -> str:
        """Note ``item`` (and log it: ``-v`` shows connections, subscriptions, refusals);
        returns a reason to stop, or ``""``."""
        _log_event(item)
        if isinstance(item, SubscribeFailed):
            self.refused[f"{item.broker} {item.type} {item.item}".rstrip()] = item.reason
            subs = self.feed.subscription_states()
            # one the broker did not answer may still be confirmed by a late reply or its data
            ended = (SubState.FAILED, SubState.REMOVED)
            if subs and all(x.state in ended and not x.unanswered for x in subs):
                refused = "; ".join(f"{k}: {v}" for k, v in self.refused.items())
                self.reason = f"every subscription was refused ({refused})"
        elif isinstance(item, SessionFailed):
            self.failed[item.session] = item.reason
            self.reason = all_failed(self.feed, self.failed) or self.reason
        elif isinstance(item, Reconnecting) and item.reason:
            self.retry_reason[item.session] = item.reason
        return self.reason

    def connected(self) -> bool:
        return any(x.stats.connects > 0 for x in self.feed.sessions)

    async def check_connected(self) -> str:
        """After ``connect_timeout`` seconds: a reason to stop if no session ever connected."""
        await asyncio.sleep(self.connect_timeout)
        if self.connected() or self.reason:
            return self.reason
        self.reason = f"no connection within {self.connect_timeout:g}s: " + self.why_not()
        return self.reason

    async def stop_if_unconnected(self, stop: Callable[[], object]) -> None:
        """Call ``stop`` when :meth:`check_connected` gives a reason to stop."""
        if await self.check_connected():
            stop()

    def outcome(self) -> str:
        """At the end of a run: why it delivered nothing (``""`` if it may have)."""
        if self.reason:
            return self.reason
        if not self.connected():
            return "no connection succeeded before the stop: " + self.why_not()
        return ""

    def why_not(self) -> str:
        """Why no session connected: the last reason of each, with a hint for a simulator."""
        parts = []
        for x in self.feed.sessions:
            why = self.retry_reason.get(x.name) or "no answer"
            where = getattr(getattr(x, "config", None), "rest_url", "") or ""
            hint = ""
            if any(h in where for h in ("127.0.0.1", "localhost", "[::1]")):
                hint = " (is `krfeed sim` running there?)"
            parts.append(f"{x.name} at {where}: {why}{hint}" if where else f"{x.name}: {why}")
        return "; ".join(dict.fromkeys(parts))


def _log_event(item: object) -> None:
    if isinstance(item, Connected):
        log.info("%s: connected to %s", item.session, item.url)
    elif isinstance(item, Subscribed):
        log.info("%s: subscribed %s %s", item.session, item.type, item.item)
    elif isinstance(item, SubscribeFailed):
        verb = "unanswered" if item.unanswered else "refused"
        log.warning("%s: %s %s %s: %s", item.session, item.type, item.item, verb, item.reason)
    elif isinstance(item, Reconnecting):
        log.warning(
            "%s: reconnecting (attempt %d) in %.1fs: %s",
            item.session,
            item.attempt,
            item.delay,
            item.reason,
        )
    elif isinstance(item, Disconnected):
        log.warning("%s: disconnected: %s", item.session, item.reason)


@dataclass
class RunResult:
    records: int = 0
    items: int = 0
    stopped_by: str = ""


async def run_feed(
    brokers: list[BrokerConfig],
    subs: list[SubSpec],
    on_item: Callable[[FeedItem], Awaitable[None] | None],
    *,
    count: int | None = None,
    duration: float | None = None,
    on_raw: Any = None,
    options: SessionOptions | None = None,
    feed_ready: Callable[[Feed], Any] | None = None,
    queue_size: int = 10_000,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> RunResult:
    """Subscribe ``subs`` and pass every item to ``on_item`` until a stop condition; raises
    :class:`FeedFailed` when :class:`Watch` gives up."""
    result = RunResult()
    stop = asyncio.Event()

    def on_signal() -> None:
        result.stopped_by = "signal"
        stop.set()

    with on_stop_signals(on_signal):
        return await _run_feed(
            brokers,
            subs,
            on_item,
            result,
            stop,
            count,
            duration,
            on_raw,
            options,
            feed_ready,
            queue_size,
            connect_timeout,
        )


async def _run_feed(
    brokers: list[BrokerConfig],
    subs: list[SubSpec],
    on_item: Callable[[FeedItem], Awaitable[None] | None],
    result: RunResult,
    stop: asyncio.Event,
    count: int | None,
    duration: float | None,
    on_raw: Any,
    options: SessionOptions | None,
    feed_ready: Callable[[Feed], Any] | None,
    queue_size: int,
    connect_timeout: float,
) -> RunResult:
    feed = Feed(*brokers, options=options, on_raw=on_raw, queue_size=queue_size)
    watch = Watch(feed, connect_timeout)
    checker: asyncio.Task[str] | None = None
    try:
        await feed.start()
        if feed_ready is not None:
            feed_ready(feed)
        await subscribe_all(feed, subs)

        async def consume() -> None:
            async for item in feed:
                result.items += 1
                r = on_item(item)
                if r is not None:
                    await r
                if isinstance(item, Record):
                    result.records += 1
                    if count is not None and result.records >= count:
                        result.stopped_by = "count"
                        stop.set()
                        return
                elif watch.see(item):
                    result.stopped_by = "failed"
                    stop.set()
                    return

        def gave_up(t: asyncio.Task[str]) -> None:
            if not t.cancelled() and t.result() and not stop.is_set():
                result.stopped_by = "failed"
                stop.set()

        checker = asyncio.create_task(watch.check_connected())
        checker.add_done_callback(gave_up)
        finished = await run_until(consume(), stop, duration)
        if not result.stopped_by:
            result.stopped_by = "end" if finished else "duration"
    finally:
        if checker is not None:
            checker.cancel()
        await feed.close()
    if result.stopped_by == "failed" or watch.outcome():
        raise FeedFailed(watch.outcome())
    return result
