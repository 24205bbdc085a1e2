"""NATS → consume → PostgreSQL: exact rows, acks only after commit, redelivery after a crash."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest

from krfeed.consume import ConsumeStatus, consume
from krfeed.errors import KrfeedError
from krfeed.events import Disconnected, Reconnected
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.records.kis import RECORDS as KIS
from krfeed.records.kiwoom import RECORDS as KIWOOM
from krfeed.sinks.base import Item, Sink
from krfeed.sinks.nats import NATSSink
from krfeed.sinks.payload import encode_with_id
from krfeed.sinks.postgres import PostgresSink
from krfeed.sinks.tables import table_of

from .conftest import (
    NATSTarget,
    fresh_nats_stream,
    kis_program_trading,
    kiwoom_example,
    pg_count,
    pg_rows,
    sample_records,
)
from .test_postgres import check_row

pytestmark = pytest.mark.services


async def publish(target: NATSTarget, items: list[Any]) -> None:
    s = NATSSink(target.url)
    await s.open()
    try:
        await s.write(items)
    finally:
        await s.close()


async def until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)


async def _nothing(call: int) -> None:
    return None


class Wrapped:
    """A sink around a real one, with faults injected by the test before and after the write
    (called with the 1-based number of the write call)."""

    def __init__(
        self,
        inner: Sink,
        before: Callable[[int], Awaitable[None]] = _nothing,
        after: Callable[[int], Awaitable[None]] = _nothing,
    ) -> None:
        self.inner, self.before, self.after = inner, before, after
        self.url, self.calls = inner.url, 0
        self.committed = asyncio.Event()

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def write(self, batch: list[Item]) -> None:
        self.calls += 1
        await self.before(self.calls)
        await self.inner.write(batch)
        self.committed.set()
        await self.after(self.calls)


class _ListSink:
    """A sink that keeps what it is given."""

    url = "list:"

    def __init__(self) -> None:
        self.items: list[Item] = []

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def write(self, batch: list[Item]) -> None:
        self.items.extend(batch)


def record_count(items: list[Any], tables: dict[str, int]) -> None:
    for it in items:
        if isinstance(it, Record):
            name = table_of(it).name
            tables[name] = tables.get(name, 0) + 1


async def test_nats_to_postgres_exact_rows(nats_stream: NATSTarget, pg_url: str) -> None:
    records: list[Record] = [*kiwoom_example("00"), *kiwoom_example("0B"), *kis_program_trading()]
    records += sample_records(46 * 5, seed=12)  # every declared type
    control: list[Any] = [
        Disconnected(broker="kiwoom", session="kiwoom#1", reason="1006 abnormal closure"),
        Reconnected(broker="kiwoom", session="kiwoom#1", attempt=1, gap=2.5),
        DecodeError(broker="kis", raw="0|H0STPGM0|001|1^2", reason="2 fields of 11",
                    type="H0STPGM0"),
    ]  # fmt: skip
    await publish(nats_stream, [*records, *control])
    nc = await nats.connect(nats_stream.server)  # one message that is not a krfeed payload
    await nc.jetstream().publish(f"{nats_stream.prefix}.junk", b"not json")
    await nc.close()
    total = len(records) + len(control) + 1

    pg = PostgresSink(pg_url)
    await pg.open()
    stop = asyncio.Event()
    status = ConsumeStatus()
    task = asyncio.create_task(
        consume(nats_stream.url, [pg], durable="e2e", batch=64, stop=stop, status=status)
    )  # fmt: skip
    try:
        await until(lambda: status.messages == total)
        stop.set()
        assert await task is status
    finally:
        stop.set()
        await pg.close()
    assert not status.running
    assert status.stream == nats_stream.stream and status.durable == "e2e"
    assert (status.records, status.events, status.errors) == (len(records), 2, 2)
    assert (status.undecodable, status.redelivered, status.sink_failures) == (1, 0, 0)
    assert status.batches >= total // 64

    tables: dict[str, int] = {}
    record_count(records, tables)
    for name, n in tables.items():
        assert await pg_count(pg_url, name) == n, name
    by_id: dict[uuid.UUID, Any] = {}
    for name in tables:
        for row in await pg_rows(pg_url, name):
            by_id[row["record_id"]] = row
    for rec in records:
        check_row(by_id[uuid.UUID(bytes=encode_with_id(rec)[1])], rec)
    assert [r["event"] for r in await pg_rows(pg_url, "krfeed_events", "at")] == [
        "Disconnected", "Reconnected",
    ]  # fmt: skip
    errors = await pg_rows(pg_url, "krfeed_decode_errors", "reason")
    assert [(e["type"], e["raw"]) for e in errors] == [
        ("H0STPGM0", "0|H0STPGM0|001|1^2"),
        ("", "not json"),
    ]
    assert "junk" in errors[1]["reason"] and "seq" in errors[1]["reason"]


async def test_bundles_to_postgres_exact_rows(nats_stream: NATSTarget, pg_url: str) -> None:
    """Bundled messages (``bundle=25``) become the same rows as single ones; a bad line in a
    bundle becomes one decode error and loses none of its neighbours."""
    records = sample_records(46 * 3, seed=13)  # every declared type, 3 of each
    control: list[Any] = [Reconnected(broker="kis", session="kis#1", attempt=1, gap=0.5)]
    s = NATSSink(nats_stream.url + "&bundle=25")
    await s.open()
    try:
        await s.write([*records, *control])
    finally:
        await s.close()
    good = encode_with_id(kis_program_trading()[0])[0]
    nc = await nats.connect(nats_stream.server)
    await nc.jetstream().publish(
        f"{nats_stream.prefix}.kis.H0STPGM0._bundle",
        good + b"\n{not json",
        headers={"Krfeed-Items": "2"},
    )
    await nc.close()
    pg = PostgresSink(pg_url)
    await pg.open()
    stop = asyncio.Event()
    status = ConsumeStatus()
    task = asyncio.create_task(
        consume(nats_stream.url, [pg], durable="bundles", batch=16, stop=stop, status=status)
    )
    try:
        await until(lambda: status.records == len(records) + 1)
        stop.set()
        await task
    finally:
        stop.set()
        await pg.close()
    assert (status.events, status.errors, status.undecodable) == (1, 1, 1)
    tables: dict[str, int] = {}
    record_count([*records, *kis_program_trading()], tables)
    for name, n in tables.items():
        assert await pg_count(pg_url, name) == n, name
    by_id: dict[uuid.UUID, Any] = {}
    for name in tables:
        for row in await pg_rows(pg_url, name):
            by_id[row["record_id"]] = row
    for rec in records:
        check_row(by_id[uuid.UUID(bytes=encode_with_id(rec)[1])], rec)
    (err,) = await pg_rows(pg_url, "krfeed_decode_errors", "reason")
    assert err["raw"] == "{not json" and "line 2" in err["reason"]


async def test_consumer_killed_before_acking(nats_stream: NATSTarget, pg_url: str) -> None:
    """The consumer dies after the sink committed but before it acked: the messages come back
    to the next consumer of the same durable, and PostgreSQL still holds each record once."""
    records = sample_records(500, seed=13, classes=[KIS["H0STPGM0"], KIWOOM["00"]])
    await publish(nats_stream, records)

    async def hang(call: int) -> None:
        await asyncio.sleep(3600)  # committed; the process "dies" here, before acking

    first = Wrapped(PostgresSink(pg_url), after=hang)
    await first.open()
    s1 = ConsumeStatus()
    task = asyncio.create_task(
        consume(nats_stream.url, [first], durable="crash", subjects=nats_stream.subjects,
                batch=1000, ack_wait=1.0, status=s1)
    )  # fmt: skip
    await asyncio.wait_for(first.committed.wait(), 30)
    task.cancel()  # killed: no ack was sent
    with pytest.raises(asyncio.CancelledError):
        await task
    await first.close()
    assert s1.messages == 0 and not s1.running
    assert await pg_count(pg_url, "kis_program_trading") == 250  # committed, not acked

    pg2 = PostgresSink(pg_url)
    await pg2.open()
    stop = asyncio.Event()
    s2 = ConsumeStatus()
    task = asyncio.create_task(
        consume(nats_stream.url, [pg2], durable="crash", subjects=nats_stream.subjects,
                batch=1000, stop=stop, status=s2)
    )  # fmt: skip
    try:
        await until(lambda: s2.messages == 500)
    finally:
        stop.set()
        await task
        await pg2.close()
    assert s2.redelivered == 500
    assert pg2.stats.duplicates == 500 and pg2.stats.rows == 0
    assert await pg_count(pg_url, "kis_program_trading") == 250
    assert await pg_count(pg_url, "kiwoom_order_execution") == 250


async def test_failing_sink_is_retried_before_acking(nats_stream: NATSTarget, pg_url: str) -> None:
    records = sample_records(200, seed=14, classes=[KIS["H0STPGM0"]])
    await publish(nats_stream, records)

    async def fail_twice(call: int) -> None:
        if call <= 2:
            raise ConnectionError("database away")

    pg = PostgresSink(pg_url)
    flaky = Wrapped(pg, before=fail_twice)
    other = PostgresSink(pg_url)  # a second sink that works every time
    await flaky.open()
    await other.open()
    stop = asyncio.Event()
    status = ConsumeStatus()
    task = asyncio.create_task(
        consume(nats_stream.url, [flaky, other], durable="flaky", subjects=nats_stream.subjects,
                batch=500, stop=stop, status=status)
    )  # fmt: skip
    try:
        await until(lambda: status.messages == 200)
    finally:
        stop.set()
        await task
        await flaky.close()
        await other.close()
    assert status.sink_failures == 2 and "database away" in status.last_error
    assert status.redelivered == 0
    assert flaky.calls == 3  # only the failed sink was retried
    assert other.stats.batches == 1
    assert await pg_count(pg_url, "kis_program_trading") == 200


async def test_stop_while_sink_fails_hands_messages_back(
    nats_stream: NATSTarget, pg_url: str
) -> None:
    records = sample_records(50, seed=15, classes=[KIWOOM["0B"]])
    await publish(nats_stream, records)

    async def always(call: int) -> None:
        raise ConnectionError("down")

    broken = Wrapped(PostgresSink(pg_url), before=always)
    await broken.open()
    stop = asyncio.Event()
    status = ConsumeStatus()
    task = asyncio.create_task(
        consume(nats_stream.url, [broken], durable="handback", subjects=nats_stream.subjects,
                ack_wait=60, stop=stop, status=status)
    )  # fmt: skip
    await until(lambda: status.sink_failures >= 1)
    stop.set()
    await asyncio.wait_for(task, 10)
    await broken.close()
    assert status.messages == 0

    # the sink URL form: consume opens and closes it
    stop2 = asyncio.Event()
    s2 = ConsumeStatus()
    task = asyncio.create_task(
        consume(nats_stream.url, [pg_url], durable="handback", subjects=nats_stream.subjects,
                stop=stop2, status=s2)
    )  # fmt: skip
    try:
        await until(lambda: s2.messages == 50, timeout=10)  # nak'd: no ack_wait (60 s) to wait
    finally:
        stop2.set()
        await task
    assert s2.redelivered == 50
    assert await pg_count(pg_url, "kiwoom_stock_trade") == 50


async def test_two_members_of_one_durable_group_share_the_work(
    nats_stream: NATSTarget, pg_url: str
) -> None:
    """Two ``consume`` runs on one durable: records published while both run are split between
    them, and PostgreSQL holds each exactly once."""
    records = sample_records(600, seed=31)
    stop = asyncio.Event()
    group = [ConsumeStatus(), ConsumeStatus()]
    sink = NATSSink(nats_stream.url)
    await sink.open()
    members = [
        asyncio.create_task(
            consume(nats_stream.url, [pg_url], durable="shared", batch=20, max_wait=0.2,
                    stop=stop, status=st)
        )
        for st in group
    ]  # fmt: skip
    try:
        # both members are pulling before anything is published (each has asked the server
        # for the group's lag once, which it does before its first fetch)
        await until(lambda: all(st.running and st.lag is not None for st in group), 20)
        for i in range(0, len(records), 20):  # a steady trickle: 20 records every 20 ms
            await sink.write(list(records[i : i + 20]))
            await asyncio.sleep(0.02)
        await until(lambda: sum(st.messages for st in group) == len(records))
    finally:
        stop.set()
        await asyncio.gather(*members)
        await sink.close()
    assert [st.messages > 0 for st in group] == [True, True], [st.messages for st in group]
    assert sum(st.records for st in group) == len(records)
    tables: dict[str, int] = {}
    record_count(records, tables)
    for name, n in tables.items():
        assert await pg_count(pg_url, name) == n, name


async def test_a_stream_that_does_not_exist_is_one_sentence(nats_server: str) -> None:
    missing = fresh_nats_stream("missing", nats_server)
    with pytest.raises(KrfeedError) as named:
        await consume(missing.url, [_ListSink()], open_timeout=3)
    assert str(named.value) == (
        f"no stream {missing.stream!r} on NATS at {nats_server}: a collector creates it "
        "(krfeed record … --to nats://…), or name an existing one (?stream=NAME)"
    )
    with pytest.raises(KrfeedError, match=rf"no stream capturing {missing.prefix}\.>"):
        await consume(f"{nats_server}?prefix={missing.prefix}", [_ListSink()], open_timeout=3)


async def test_a_first_fetch_of_bundles_is_written_in_batches(nats_stream: NATSTarget) -> None:
    """``batch`` counts items: the first fetch, sized before the bundles' size is known, brings
    10 bundles of 50; they are written 20 at a time, then fetches hold about 20 items."""
    records = sample_records(1000, seed=15, classes=[KIS["H0STPGM0"]])
    s = NATSSink(nats_stream.url, bundle=50)
    await s.open()
    try:
        await s.write(list(records))
    finally:
        await s.close()
    sink = _ListSink()
    sizes: list[int] = []
    write = sink.write

    async def noting(batch: list[Item]) -> None:
        sizes.append(len(batch))
        await write(batch)

    sink.write = noting  # type: ignore[method-assign]
    stop = asyncio.Event()
    status = ConsumeStatus()
    task = asyncio.create_task(
        consume(nats_stream.url, [sink], durable="sizes", batch=20, stop=stop, status=status)
    )
    try:
        await until(lambda: status.records == len(records))
    finally:
        stop.set()
        await task
    assert sink.items == records
    assert max(sizes) <= 50  # never a transaction of the whole first fetch (1,000 items)
    assert sizes[:50] == [20] * 50  # the first fetch: 20 bundles, 1,000 items, 20 at a time
    assert status.messages == 20
