"""PostgresSink against the real server: values, idempotency, connections killed mid-flight."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec
import pytest

from krfeed.events import Reconnecting, SubscribeFailed
from krfeed.jsonout import dumps
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.records.kis import RECORDS as KIS
from krfeed.records.kiwoom import RECORDS as KIWOOM
from krfeed.sinks import open_sink
from krfeed.sinks.payload import encode_with_id
from krfeed.sinks.postgres import PostgresSink
from krfeed.sinks.tables import table_of

from .conftest import (
    RECEIVED_AT,
    TcpProxy,
    all_record_classes,
    drop_postgres_schema,
    fresh_postgres_url,
    kis_program_trading,
    kiwoom_example,
    pg_count,
    pg_rows,
    sample_records,
    schema_of,
    server_dsn,
    terminate_connections,
)

pytestmark = pytest.mark.services

KIWOOM_EXAMPLES = ("00", "04", "0A", "0B", "0C", "0D", "0E", "0F", "0G", "0H")
KIWOOM_EXAMPLES += ("0I", "0J", "0U", "0g", "0m", "0s", "0u", "0w", "1h")
_PY_TYPE = {"int": int, "decimal": Decimal, "text": str, "bool": bool}


def rid(item: Any) -> uuid.UUID:
    return uuid.UUID(bytes=encode_with_id(item)[1])


def check_row(row: asyncpg.Record, rec: Record, *, exact_decimals: bool = True) -> None:
    """Every column of ``row`` equals the record's value, with the column's Python type."""
    t = table_of(rec)
    assert list(row.keys()) == ["record_id", "broker", *(c.name for c in t.columns)]
    assert row["record_id"] == rid(rec)
    assert row["broker"] == rec.broker
    for c in t.columns:
        want, got = getattr(rec, c.name), row[c.name]
        if c.name == "extra":  # values the declaration does not know: JSON, NULL when none
            want = dumps(want) if want else None
        assert got == want, f"{t.name}.{c.name}: {got!r} != {want!r}"
        if want is None:
            continue
        if c.kind in _PY_TYPE:
            assert type(got) is _PY_TYPE[c.kind], c.name
        if c.kind == "decimal" and exact_decimals:
            assert str(got) == str(want), c.name  # numeric keeps the scale as sent
        if c.kind == "timestamp":
            assert got.utcoffset() == timedelta(0)  # an instant, equal to the KST one


async def rows_by_id(url: str, records: list[Record]) -> dict[uuid.UUID, asyncpg.Record]:
    out: dict[uuid.UUID, asyncpg.Record] = {}
    for name in sorted({table_of(r).name for r in records}):
        for row in await pg_rows(url, name):
            out[row["record_id"]] = row
    return out


@pytest.fixture
async def sink(pg_url: str) -> Any:
    s = PostgresSink(pg_url, retry_for=15)
    await s.open()
    yield s
    await s.close()


async def test_open_sink_by_url_and_schema(pg_url: str) -> None:
    s = open_sink(pg_url)
    assert isinstance(s, PostgresSink)
    assert s.schema == schema_of(pg_url)
    assert "postgres@" not in repr(s)  # the user (or a password) is not shown
    await s.open()
    await s.close()
    await s.close()  # twice is fine
    conn = await asyncpg.connect(server_dsn(pg_url))
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            schema_of(pg_url),
        )
    finally:
        await conn.close()
    assert {r["table_name"] for r in tables} == {"krfeed_events", "krfeed_decode_errors"}


async def test_official_examples_every_column(sink: PostgresSink, pg_url: str) -> None:
    """Kiwoom's official example of each type (with 00 주문체결) and KIS H0STPGM0 (documented
    layout): every column read back equals the record."""
    records: list[Record] = []
    for code in KIWOOM_EXAMPLES:
        records += kiwoom_example(code)
    records += kis_program_trading()
    await sink.write(records)
    got = await rows_by_id(pg_url, records)
    assert len(got) == len(records)
    for rec in records:
        check_row(got[rid(rec)], rec)

    # the two seed types, spelled out
    (order,) = await pg_rows(pg_url, "kiwoom_order_execution")
    assert order["order_no"] == "0000018" and order["order_status"] == "accepted"
    assert order["order_qty"] == 1 and order["side"] == "buy" and order["sor"] is True
    assert order["current_price"] == 60700 and order["current_price_dir"] == "up"
    assert order["loan_date"] is None and order["fill_no"] is None
    assert order["order_fill_time"].isoformat() == "2025-03-14T00:40:22+00:00"  # 09:40:22 KST
    (pgm,) = await pg_rows(pg_url, "kis_program_trading")
    assert (pgm["code"], pgm["sell_qty"], pgm["sell_value"]) == ("005930", 1000, 60500000)
    assert pgm["total_net_bid_residual_qty"] == -25000
    assert pgm["time"].isoformat() == "2025-03-14T00:30:15+00:00"
    assert pgm["received_at"] == RECEIVED_AT


async def test_every_declared_type(sink: PostgresSink, pg_url: str) -> None:
    """Generated values for every declared type of both brokers (46 tables)."""
    classes = all_record_classes()
    assert len(classes) == len(KIWOOM) + len(KIS)
    records = sample_records(len(classes) * 3, seed=7)
    await sink.write(records)
    got = await rows_by_id(pg_url, records)
    assert len(got) == len(records)
    for rec in records:
        check_row(got[rid(rec)], rec)


async def test_column_types_index_and_key(sink: PostgresSink, pg_url: str) -> None:
    await sink.write(kiwoom_example("00") + kis_program_trading())
    schema = schema_of(pg_url)
    conn = await asyncpg.connect(server_dsn(pg_url))
    try:
        types = dict(
            await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = $1 AND table_name = 'kiwoom_order_execution'",
                schema,
            )
        )
        idx = {
            r["indexname"]: r["indexdef"]
            for r in await conn.fetch("SELECT * FROM pg_indexes WHERE schemaname = $1", schema)
        }
        comment = await conn.fetchval(
            "SELECT col_description(($1 || '.kiwoom_order_execution')::regclass, 5)", schema
        )
    finally:
        await conn.close()
    assert types["record_id"] == "uuid" and types["received_at"] == "timestamp with time zone"
    assert types["order_qty"] == "bigint" and types["order_fill_time"] == "timestamp with time zone"
    assert types["loan_date"] == "date" and types["sor"] == "boolean" and types["code"] == "text"
    assert "(item, received_at)" in idx["kiwoom_order_execution_item_time"]
    assert "(item, received_at)" in idx["kis_program_trading_item_time"]
    key = idx["kiwoom_order_execution_key"]
    assert "UNIQUE" in key and "NULLS NOT DISTINCT" in key
    assert "(account_no, order_no, order_status, fill_no, unfilled_qty)" in key
    assert "kis_program_trading_key" not in idx  # market data: record_id only
    assert comment == "계좌번호 (9201)"


async def test_column_comments_name_the_unit(sink: PostgresSink, pg_url: str) -> None:
    """Kiwoom 0B 14 누적거래대금 and 0w amounts are in 백만원 (Kiwoom spec: "단위: 백만원");
    the column comment says so, a plain won column carries no unit."""
    await sink.write(sample_records(4, seed=3, classes=[KIWOOM["0B"], KIWOOM["0w"]]))
    schema = schema_of(pg_url)
    conn = await asyncpg.connect(server_dsn(pg_url))
    try:
        rows = await conn.fetch(
            "SELECT c.relname, a.attname, col_description(c.oid, a.attnum) AS note "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
            "AND a.attname IN ('cumulative_value', 'program_net_buy_amount', 'current_price')",
            schema,
        )
    finally:
        await conn.close()
    notes = {(r["relname"], r["attname"]): r["note"] for r in rows}
    assert notes[("kiwoom_stock_trade", "cumulative_value")] == "누적거래대금 (14), 단위: 백만원"
    assert notes[("kiwoom_program_trading", "program_net_buy_amount")] == (
        "순매수금액 (212), 단위: 백만원"
    )
    assert notes[("kiwoom_stock_trade", "current_price")] == "현재가 (10)"


async def test_same_batch_twice_is_stored_once(sink: PostgresSink, pg_url: str) -> None:
    market = sample_records(200, seed=1, classes=[KIS["H0STPGM0"], KIWOOM["0B"]])
    account = sample_records(20, seed=2, classes=[KIWOOM["00"], KIS["H0STCNI0"]])
    control = [
        Reconnecting(broker="kis", session="kis#1", attempt=1, delay=0.25, reason="closed"),
        DecodeError(broker="kiwoom", raw='{"trnm":"REAL"', reason="bad JSON", type="0B"),
    ]
    batch: list[Any] = [*market, *account, *control]
    await sink.write(batch)
    await sink.write(batch)
    assert (sink.stats.rows, sink.stats.duplicates) == (len(batch), len(batch))
    assert await pg_count(pg_url, "kis_program_trading") == 100
    assert await pg_count(pg_url, "kiwoom_stock_trade") == 100
    assert await pg_count(pg_url, "kiwoom_order_execution") == 10
    assert await pg_count(pg_url, "kis_execution_notice") == 10
    assert await pg_count(pg_url, "krfeed_events") == 1
    assert await pg_count(pg_url, "krfeed_decode_errors") == 1
    # a batch that repeats records inside itself
    again = market[:10] * 3
    await sink.write(again)
    assert await pg_count(pg_url, "kis_program_trading") == 100


async def test_account_event_received_again_is_stored_once(sink: PostgresSink, pg_url: str) -> None:
    """The same order event pushed again (a second collector, a replay with another receive
    time) is one row: the account key, not the receive time, identifies it."""
    (order,) = kiwoom_example("00")
    fields = {f: getattr(order, f) for f in order.__struct_fields__}
    seen_again = type(order)(**{**fields, "received_at": RECEIVED_AT + timedelta(seconds=5)})
    filled = type(order)(
        **{**fields, "order_status": "filled", "fill_no": "1", "fill_qty": 1, "unfilled_qty": 0}
    )
    await sink.write([order])
    await sink.write([seen_again, filled])
    rows = await pg_rows(pg_url, "kiwoom_order_execution")
    assert [r["order_status"] for r in rows] == ["accepted", "filled"]
    assert rows[0]["received_at"] == RECEIVED_AT
    assert sink.stats.duplicates == 1


async def test_control_events_and_decode_errors(sink: PostgresSink, pg_url: str) -> None:
    ev = SubscribeFailed(broker="kis", session="kis#2", type="H0STCNT0", item="005930",
                         reason="MAX SUBSCRIBE OVER", code="OPSP0008")  # fmt: skip
    err = DecodeError(broker="kis", raw="0|H0STPGM0|002|x", reason="2 records of 1",
                      type="H0STPGM0", received_at=RECEIVED_AT)  # fmt: skip
    nul = DecodeError(broker="kis", raw="a\x00b", reason="NUL in frame")
    await sink.write([ev, err])
    await sink.write([nul])
    (e,) = await pg_rows(pg_url, "krfeed_events", order="at")
    assert (e["record_id"], e["broker"], e["event"], e["session"], e["at"]) == (
        rid(ev), "kis", "SubscribeFailed", "kis#2", ev.at,
    )  # fmt: skip
    assert json.loads(e["detail"]) == {
        "type": "H0STCNT0", "item": "005930", "reason": "MAX SUBSCRIBE OVER", "code": "OPSP0008",
        "unanswered": False,
    }  # fmt: skip
    rows = await pg_rows(pg_url, "krfeed_decode_errors", order="reason")
    assert [(r["type"], r["received_at"], r["reason"], r["raw"]) for r in rows] == [
        ("H0STPGM0", RECEIVED_AT, "2 records of 1", "0|H0STPGM0|002|x"),
        ("", None, "NUL in frame", "a\ufffdb"),  # PostgreSQL text cannot hold NUL
    ]
    assert sink.stats.nul_replaced == 1


async def test_connections_killed_between_batches(sink: PostgresSink, pg_url: str) -> None:
    records = sample_records(3000, seed=3, classes=[KIS["H0STPGM0"], KIWOOM["00"]])
    await sink.write(records[:1000])
    assert await terminate_connections(pg_url) >= 1
    await sink.write(records[1000:2000])
    assert await terminate_connections(pg_url) >= 1
    await sink.write(records[:3000])  # a retry of everything, after another kill
    assert await pg_count(pg_url, "kis_program_trading") == 1500
    assert await pg_count(pg_url, "kiwoom_order_execution") == 1500
    assert sink.stats.rows == 3000


async def test_connection_killed_mid_batch(sink: PostgresSink, pg_url: str) -> None:
    """pg_terminate_backend while the batch's transaction is open: the transaction is rolled
    back, write reconnects and writes the whole batch again; nothing lost, nothing twice."""
    classes = [KIS["H0STPGM0"], KIWOOM["0B"], KIWOOM["00"]]
    await sink.write(sample_records(3, seed=9, classes=classes))  # tables exist
    base = sample_records(300, seed=10, classes=classes)
    kills = 0
    for round_ in range(2):
        # distinct records, cheaply: another receive time (and unfilled_qty, part of the
        # order-event key) for each copy of the 300 generated ones
        batch = [
            msgspec.structs.replace(
                r,
                received_at=RECEIVED_AT + timedelta(days=round_ + 1, microseconds=i),
                **({"unfilled_qty": round_ * 100_000 + i} if r.type == "00" else {}),
            )
            for i, r in enumerate(base * 70)
        ]
        task = asyncio.create_task(sink.write(batch))
        while not task.done():
            n = await terminate_connections(pg_url, busy_only=True)
            if n:
                kills += n
                break
            await asyncio.sleep(0.002)
        await task
    assert kills >= 1, "never caught the sink inside a transaction"
    assert sink.stats.retries >= kills
    for table in ("kis_program_trading", "kiwoom_stock_trade", "kiwoom_order_execution"):
        assert (table, await pg_count(pg_url, table)) == (table, 14_000 + 1)
    assert sink.stats.rows == 42_003 and sink.stats.duplicates == 0


async def test_server_away_and_back(postgres: str) -> None:
    """The server goes away (every connection dropped, new ones refused, as during a restart)
    and comes back: the pending write waits, reconnects and stores the batch once."""
    real = urlsplit(postgres)
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 5432)
    await proxy.start()
    url = fresh_postgres_url("restart", postgres.replace(f":{real.port}", f":{proxy.port}"))
    direct = url.replace(f":{proxy.port}", f":{real.port}")
    s = PostgresSink(url, retry_for=20)
    try:
        await s.open()
        records = sample_records(2000, seed=4, classes=[KIS["H0STPGM0"], KIWOOM["00"]])
        await s.write(records[:1000])
        await proxy.stop()
        task = asyncio.create_task(s.write(records[1000:]))
        await asyncio.sleep(1.0)
        assert not task.done()  # waiting for the server
        await proxy.start()
        await asyncio.wait_for(task, 20)
        assert s.stats.retries >= 1
        assert await pg_count(direct, "kis_program_trading") == 1000
        assert await pg_count(direct, "kiwoom_order_execution") == 1000
    finally:
        await s.close()
        await proxy.stop()
        await drop_postgres_schema(direct)


async def test_write_gives_up_after_retry_for(postgres: str) -> None:
    real = urlsplit(postgres)
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 5432)
    await proxy.start()
    url = fresh_postgres_url("giveup", postgres.replace(f":{real.port}", f":{proxy.port}"))
    direct = url.replace(f":{proxy.port}", f":{real.port}")
    s = PostgresSink(url, retry_for=1.0)
    try:
        await s.open()
        batch = kis_program_trading()
        await proxy.stop()
        t0 = time.monotonic()
        with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
            await s.write(batch)
        assert time.monotonic() - t0 < 10
        await proxy.start()
        await s.write(batch)  # the caller's retry succeeds
        await s.write(batch)
        assert await pg_count(direct, "kis_program_trading") == 1
    finally:
        await s.close()
        await proxy.stop()
        await drop_postgres_schema(direct)
