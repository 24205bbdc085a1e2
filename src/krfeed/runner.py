"""Running a feed for the CLI: parse subscription specs, subscribe, deliver items until a
count, a duration, Ctrl-C, or every session failing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from krfeed.brokers import BrokerConfig
from krfeed.errors import SubscriptionError
from krfeed.events import SessionFailed
from krfeed.feed import Feed, FeedItem
from krfeed.records.base import Record
from krfeed.schema.catalog import BROKERS, UnknownType, get_type
from krfeed.session import SessionOptions


@dataclass(frozen=True)
class SubSpec:
    broker: str
    type: str
    codes: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.broker}:{self.type}" + (":" + ",".join(self.codes) if self.codes else "")


def parse_sub(spec: str) -> SubSpec:
    """``kiwoom:0B:005930,000660`` / ``kis:H0STPGM0:005930`` / ``kiwoom:00`` → SubSpec."""
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
    codes = tuple(c.strip() for c in parts[2].split(",") if c.strip()) if len(parts) == 3 else ()
    if not codes and not rt.account:
        raise ValueError(
            f"subscription {spec!r}: {broker} {rt.code} needs codes, e.g. {spec}:005930"
        )
    return SubSpec(broker, rt.code, codes)


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


class FeedFailed(Exception):
    """Every session of the feed stopped for good (e.g. credentials refused)."""


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
) -> RunResult:
    """Subscribe ``subs`` and pass every item to ``on_item`` until a stop condition."""
    result = RunResult()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        result.stopped_by = sig.name
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig)
    feed = Feed(*brokers, options=options, on_raw=on_raw, queue_size=queue_size)
    failed: dict[str, str] = {}
    try:
        await feed.start()
        if feed_ready is not None:
            feed_ready(feed)
        for s in subs:
            try:
                await feed.subscribe(f"{s.broker}:{s.type}", list(s.codes), wait=False)
            except SubscriptionError as e:
                raise SubscriptionError(f"{s}: {e}") from None

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
                elif isinstance(item, SessionFailed):
                    failed[item.session] = item.reason
                    if all(s.failed for s in feed.sessions):
                        result.stopped_by = "failed"
                        stop.set()
                        return

        finished = await run_until(consume(), stop, duration)
        if not result.stopped_by:
            result.stopped_by = "end" if finished else "duration"
    finally:
        await feed.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    if result.stopped_by == "failed":
        reasons = "; ".join(dict.fromkeys(failed.values()))
        raise FeedFailed(reasons)
    return result
