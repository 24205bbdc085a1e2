"""The Recorder: batches, retries a failing sink until it succeeds (never drops, never
duplicates), stops reading while a sink is behind (bounded memory), flushes on stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from krfeed.events import Disconnected
from krfeed.queue import BoundedQueue
from krfeed.recorder import Recorder
from krfeed.records.base import Record
from krfeed.records.kis import ExecutionNotice, ProgramTrading
from krfeed.sinks.base import Item

T0 = datetime(2025, 3, 14, 3, 0, tzinfo=UTC)


def record(i: int, *, account: bool = False) -> Record:
    at = T0 + timedelta(milliseconds=i)
    if account:
        return ExecutionNotice(received_at=at, item="hts_user01", order_no=f"{i:010d}")
    return ProgramTrading(received_at=at, item=f"{i:06d}", code=f"{i:06d}", sell_qty=i)


class MemorySink:
    """Keeps what it was given; fails the first ``fail`` writes; ``delay`` seconds per write."""

    def __init__(self, url: str = "memory://a", *, fail: int = 0, delay: float = 0.0) -> None:
        self.url = url
        self.fail = fail
        self.delay = delay
        self.batches: list[list[Item]] = []
        self.attempts = 0
        self.opened = self.closed = 0
        self.on_write: Any = None

    @property
    def items(self) -> list[Item]:
        return [i for b in self.batches for i in b]

    async def open(self) -> None:
        self.opened += 1

    async def write(self, batch: list[Item]) -> None:
        self.attempts += 1
        if self.on_write is not None:
            self.on_write(batch)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.attempts <= self.fail:
            raise OSError(28, "No space left on device")
        self.batches.append(list(batch))

    async def close(self) -> None:
        self.closed += 1


class Counting:
    """An async source of ``n`` records that counts how many were read from it."""

    def __init__(self, n: int, *, every: float = 0.0) -> None:
        self.n = n
        self.every = every
        self.produced = 0

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[Item]:
        for i in range(self.n):
            if self.every:
                await asyncio.sleep(self.every)
            self.produced += 1
            yield record(i, account=i % 7 == 0)


async def test_failing_sink_is_retried_until_every_item_is_written_once_in_order() -> None:
    source = Counting(2500)
    sink = MemorySink(fail=4)
    errors: list[tuple[str, str, int]] = []
    rec = Recorder(
        source,
        sink,
        batch_size=1000,
        backoff=(0.001, 0.01),
        on_error=lambda s, e, n: errors.append((s.url, type(e).__name__, n)),
    )
    await rec.run()
    assert [r.received_at for r in sink.items] == [record(i).received_at for i in range(2500)]
    assert [len(b) for b in sink.batches] == [1000, 1000, 500]
    assert errors == [("memory://a", "OSError", n) for n in (1, 2, 3, 4)]
    st = rec.status()
    assert st["read"] == st["written"] == 2500
    s = st["sinks"]["memory://a"]
    assert (s["rows"], s["errors"], s["retries"], s["failing"], s["abandoned"]) == (
        2500,
        4,
        4,
        False,
        0,
    )
    assert "No space left on device" in s["last_error"]
    assert sink.opened == sink.closed == 1


async def test_sinks_that_took_a_batch_are_not_written_again() -> None:
    good, bad = MemorySink("memory://good"), MemorySink("memory://bad", fail=3)
    rec = Recorder(Counting(250), [good, bad], batch_size=100, backoff=(0.001, 0.005))
    await rec.run()
    assert good.items == bad.items and len(good.items) == 250
    assert good.attempts == 3 and bad.attempts == 6
    assert rec.status()["sinks"]["memory://bad"]["errors"] == 3


async def test_source_is_not_read_ahead_while_a_sink_is_slow_or_failing() -> None:
    source = Counting(1000)
    sink = MemorySink(delay=0.005, fail=3)
    ahead: list[int] = []
    # at every write attempt: how many items were read but are not yet written
    sink.on_write = lambda batch: ahead.append(source.produced - len(sink.items))
    rec = Recorder(source, sink, batch_size=50, backoff=(0.001, 0.002))
    await rec.run()
    assert len(sink.items) == 1000
    assert max(ahead) <= 50  # one batch, no more: the source waits
    assert ahead[:4] == [50, 50, 50, 50]  # not read on while the first batch is retried


async def test_backpressure_reaches_the_feed_queue_without_dropping_account_records() -> None:
    queue: BoundedQueue[Item] = BoundedQueue(maxsize=20, overflow="block")
    high = 0

    async def produce() -> None:
        nonlocal high
        for i in range(600):
            await queue.put(record(i, account=True), droppable=False)  # orders: never dropped
            high = max(high, len(queue))
        queue.close()

    async def source() -> AsyncIterator[Item]:
        while True:
            try:
                yield await queue.get()
            except EOFError:
                return

    sink = MemorySink(delay=0.002)
    producer = asyncio.create_task(produce())
    await Recorder(source(), sink, batch_size=50, batch_interval=0.01).run()
    await producer
    assert [r.order_no for r in sink.items] == [f"{i:010d}" for i in range(600)]  # type: ignore[union-attr]
    assert high <= 20 and queue.dropped == 0


async def test_batches_are_written_after_batch_interval_when_items_trickle() -> None:
    sink = MemorySink()
    rec = Recorder(Counting(6, every=0.03), sink, batch_size=1000, batch_interval=0.05)
    await rec.run()
    assert len(sink.items) == 6 and len(sink.batches) >= 2  # not held until 1000 arrive


async def test_stop_flushes_the_last_batch_and_closes_the_sinks() -> None:
    sink = MemorySink()
    source = Counting(10**9, every=0.001)
    rec = Recorder(source, sink, batch_size=10**6, batch_interval=60)

    async def later() -> None:
        await asyncio.sleep(0.1)
        assert rec.status()["pending"] > 0 and not sink.items
        rec.stop()

    await asyncio.gather(rec.run(), later())
    assert len(sink.items) == source.produced > 0
    assert sink.closed == 1 and not rec.status()["running"]


async def test_run_until_seconds_and_status_figures() -> None:
    sink = MemorySink()
    source = Counting(10**9, every=0.0005)
    rec = Recorder(source, sink, batch_size=20, batch_interval=0.05)
    await rec.run(until=0.3)
    st = rec.status()
    assert st["written"] == source.produced == len(sink.items) > 0
    assert st["rows_per_sec"] > 0
    assert st["lag"] is not None and st["lag"] > 0  # the records were received in 2025


async def test_a_sink_failing_at_stop_gives_up_after_close_timeout_and_says_so() -> None:
    sink = MemorySink(fail=10**9)
    rec = Recorder(Counting(5), sink, backoff=(0.01, 0.02), close_timeout=0.2)
    await asyncio.wait_for(rec.run(), 5)
    s = rec.status()["sinks"]["memory://a"]
    assert s["abandoned"] == 5 and s["failing"] and s["errors"] >= 3


async def test_broken_pipe_is_not_retried() -> None:
    class Broken(MemorySink):
        async def write(self, batch: list[Item]) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    sink = Broken()
    with pytest.raises(BrokenPipeError):
        await Recorder(Counting(5), [sink, MemorySink("memory://b")]).run()
    assert sink.closed == 1


async def test_source_error_is_raised_after_the_batch_is_written() -> None:
    async def source() -> AsyncIterator[Item]:
        yield record(1)
        yield Disconnected(broker="kis", session="kis#1", reason="x")
        raise RuntimeError("feed broke")

    sink = MemorySink()
    with pytest.raises(RuntimeError, match="feed broke"):
        await Recorder(source(), sink).run()
    assert len(sink.items) == 2 and sink.closed == 1


async def test_cancelling_run_mid_write_neither_loses_nor_repeats_a_batch() -> None:
    sink = MemorySink(delay=0.2)
    source = Counting(10**9, every=0.0005)
    rec = Recorder(source, sink, batch_size=50, batch_interval=60)
    task = asyncio.create_task(rec.run())
    while sink.attempts == 0:  # the first write is under way
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    got = [r.received_at for r in sink.items]
    assert got == [record(i).received_at for i in range(source.produced)]
    assert sink.closed == 1


# ---- read_ahead (what krfeed record uses) ----


async def test_read_ahead_reads_on_during_slow_writes_and_writes_the_backlog_at_once() -> None:
    source = Counting(3000)
    sink = MemorySink(delay=0.02, fail=2)
    held: list[int] = []
    sink.on_write = lambda batch: held.append(source.produced - len(sink.items))
    rec = Recorder(source, sink, batch_size=50, read_ahead=400, backoff=(0.001, 0.002))
    await rec.run()
    assert [r.received_at for r in sink.items] == [record(i).received_at for i in range(3000)]
    assert max(held) <= 450  # bounded: one batch plus the read-ahead
    assert max(held) > 50  # read on while the first batch was retried
    assert max(len(b) for b in sink.batches) == 450  # a backlog in one write
    st = rec.status()
    assert st["read"] == st["written"] == 3000


def test_read_ahead_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="read_ahead must be at least 0"):
        Recorder(Counting(1), MemorySink(), read_ahead=-1)
