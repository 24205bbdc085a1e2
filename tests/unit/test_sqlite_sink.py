"""The SQLite sink: exact round trip of every value, WAL, indexes, idempotent account events,
other processes reading while recording."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from recording_samples import (
    RECEIVED_AT,
    assert_row_matches,
    kis_records,
    kiwoom_records,
)

from krfeed.events import Disconnected, Reconnected
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.sinks import SinkError, open_sink
from krfeed.sinks.sqlite import SQLiteSink
from krfeed.sinks.tables import table_of


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


async def record_all(path: Path, *batches: list[Any], **options: Any) -> SQLiteSink:
    sink = SQLiteSink(url_of(path), **options)
    await sink.open()
    try:
        for batch in batches:
            await sink.write(batch)
    finally:
        await sink.close()
    return sink


def rows(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def test_every_value_round_trips_exactly(tmp_path: Path) -> None:
    db = tmp_path / "rt.db"
    records = kiwoom_records() + kis_records()
    await record_all(db, records)
    for rec in records:
        t = table_of(rec)
        cols = ", ".join(f'"{c.name}"' for c in t.columns)
        (stored,) = rows(db, f'SELECT {cols} FROM "{t.name}"')
        assert_row_matches(t, rec, stored)


async def test_stored_types_and_texts(tmp_path: Path) -> None:
    db = tmp_path / "types.db"
    cnt0, _pgm0, cni0 = kis_records()
    await record_all(db, [cnt0, cni0])
    (row,) = rows(
        db,
        "SELECT received_at, time, typeof(fill_qty), fill_qty, side, correction, notice_kind, "
        "popup, rejected, original_order_no, credit_loan_date, account_name "
        "FROM kis_execution_notice",
    )
    assert row == (
        "2025-03-14T03:00:00.123456+00:00",  # receive time: UTC, offset kept
        "2025-03-14T10:15:23+09:00",  # broker time: KST as the record carries it
        "integer",
        10,
        "buy",  # enums as their value
        "normal",
        "fill",
        1,  # booleans 0/1
        0,
        None,  # '' on the wire -> NULL
        None,  # '00000000' -> NULL
        "홍길동",
    )
    (row,) = rows(
        db,
        "SELECT typeof(change_rate), change_rate, typeof(weighted_avg_price), business_date, "
        "typeof(cumulative_value), cumulative_value, halted, market_termination_code "
        "FROM kis_trade",
    )
    assert row == ("real", -0.81, "real", "2025-03-14", "integer", 594857123400, 0, None)
    # NUMERIC arithmetic and comparisons work in SQL
    assert rows(db, "SELECT count(*) FROM kis_trade WHERE change_rate < 0") == [(1,)]


async def test_decode_errors_and_control_events(tmp_path: Path) -> None:
    db = tmp_path / "ev.db"
    at = datetime(2025, 3, 14, 0, 5, 1, 250000, tzinfo=UTC)
    err = DecodeError(
        broker="kis",
        raw="1|H0STCNI0|001|!!notbase64!!",
        reason="H0STCNI0: encrypted payload is not valid base64",
        received_at=RECEIVED_AT,
        type="H0STCNI0",
    )
    batch: list[Any] = [
        Disconnected(broker="kis", session="kis#1", reason="connection lost", at=at),
        Reconnected(broker="kis", session="kis#1", attempt=2, gap=1.5, at=at),
        err,
    ]
    await record_all(db, batch)
    events = rows(db, "SELECT at, broker, session, event, detail FROM krfeed_events ORDER BY rowid")
    assert [e[:4] for e in events] == [
        ("2025-03-14T00:05:01.250000+00:00", "kis", "kis#1", "Disconnected"),
        ("2025-03-14T00:05:01.250000+00:00", "kis", "kis#1", "Reconnected"),
    ]
    assert json.loads(events[0][4]) == {"reason": "connection lost", "fatal": False}
    assert json.loads(events[1][4]) == {"attempt": 2, "gap": 1.5}
    assert rows(db, "SELECT received_at, broker, type, reason, raw FROM krfeed_decode_errors") == [
        ("2025-03-14T03:00:00.123456+00:00", "kis", "H0STCNI0", err.reason, err.raw)
    ]


async def test_wal_and_indexes(tmp_path: Path) -> None:
    db = tmp_path / "wal.db"
    records = kiwoom_records() + kis_records()
    await record_all(db, records)
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    for rec in records:
        t = table_of(rec)
        idx = f"{t.name}_item_time"
        assert [r[2] for r in rows(db, f'PRAGMA index_info("{idx}")')] == ["item", "received_at"]
        unique = rows(db, "SELECT sql FROM sqlite_master WHERE name = ?", f"{t.name}_key")
        if t.key:  # account events (orders, fills); Kiwoom 04 balance snapshots have no key
            assert rec.account
            assert unique and unique[0][0].startswith("CREATE UNIQUE INDEX"), t.name
        else:
            assert not unique
    # the (item, received_at) index serves per-code time queries
    plan = rows(
        db,
        "EXPLAIN QUERY PLAN SELECT * FROM kis_trade WHERE item = ? AND received_at >= ?",
        "005930",
        "2025-03-14",
    )
    assert any("kis_trade_item_time" in str(r) for r in plan)


async def test_account_events_are_not_duplicated_by_retries_or_replays(tmp_path: Path) -> None:
    db = tmp_path / "dup.db"
    records = kiwoom_records() + kis_records()
    order = records[0]
    assert order.type == "00" and order.fill_no is None  # type: ignore[attr-defined]  # NULL in the key
    filled = msgspec.structs.replace(order, order_status="filled", fill_no="1", fill_qty=1)  # type: ignore[arg-type]
    # one batch written twice (a retry after an ambiguous failure), then replayed later
    await record_all(db, [*records, filled], [*records, filled])
    await record_all(db, records)
    for rec in records:
        t = table_of(rec)
        n = rows(db, f'SELECT count(*) FROM "{t.name}"')[0][0]
        if t.key:
            expected = 2 if rec.type == "00" else 1  # the acceptance and the fill
            assert n == expected, t.name
        else:
            assert n == 3, t.name  # no identity (market data, balances): every write is kept


async def test_another_process_reads_while_recording(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    records = kiwoom_records()
    sink = SQLiteSink(url_of(db), busy_timeout=2.0)
    await sink.open()
    try:
        await sink.write(records)
        # a reader process holds a read transaction open while the writer keeps writing
        reader = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys\n"
                "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "c.execute('BEGIN')\n"
                "q = 'SELECT count(*) FROM kiwoom_stock_trade'\n"
                "print(c.execute(q).fetchone()[0], flush=True)\n"
                "sys.stdin.readline()\n"
                "print(c.execute(q).fetchone()[0], flush=True)\n"
                "c.execute('COMMIT')\n"
                "print(c.execute(q).fetchone()[0], flush=True)\n",
                str(db),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert reader.stdout is not None and reader.stdin is not None
        try:
            assert reader.stdout.readline().strip() == "1"
            await sink.write(records)  # not blocked by the open read transaction
            await sink.write(records)
            reader.stdin.write("\n")
            reader.stdin.flush()
            assert reader.stdout.readline().strip() == "1"  # its snapshot
            assert reader.stdout.readline().strip() == "3"  # then the new rows
        finally:
            reader.stdin.close()
            assert reader.wait(timeout=10) == 0
    finally:
        await sink.close()


async def test_writes_run_off_the_event_loop_thread(tmp_path: Path) -> None:
    seen: list[int] = []
    sink = SQLiteSink(url_of(tmp_path / "t.db"))
    original = sink._write_sync

    def spy(batch: list[Any]) -> None:
        seen.append(threading.get_ident())
        original(batch)

    sink._write_sync = spy  # type: ignore[method-assign]
    await sink.open()
    await sink.write(kis_records())
    await sink.write(kis_records())
    await sink.close()
    assert len(seen) == 2 and len(set(seen)) == 1
    assert seen[0] != threading.get_ident()


async def test_one_transaction_per_batch_rolls_back_on_error(tmp_path: Path) -> None:
    db = tmp_path / "tx.db"
    sink = SQLiteSink(url_of(db))
    await sink.open()
    good = kis_records()

    class NotAnItem(msgspec.Struct):
        pass

    with pytest.raises(TypeError):
        await sink.write([*good, NotAnItem()])  # type: ignore[list-item]
    await sink.write(good)
    await sink.close()
    assert rows(db, "SELECT count(*) FROM kis_trade") == [(1,)]


async def test_existing_table_gets_missing_columns(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE kis_program_trading (received_at TEXT, item TEXT)")
    conn.execute("INSERT INTO kis_program_trading VALUES ('2025-03-13T03:00:00+00:00', '000660')")
    conn.commit()
    conn.close()
    pgm0: Record = kis_records()[1]
    await record_all(db, [pgm0])
    got = rows(db, "SELECT item, sell_qty FROM kis_program_trading ORDER BY rowid")
    assert got == [("000660", None), ("005930", 1001)]


async def test_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sink = open_sink("sqlite:///relative.db")
    assert isinstance(sink, SQLiteSink) and sink.path == "relative.db"
    await sink.open()
    await sink.write(kis_records())
    await sink.close()
    await sink.close()  # twice is fine
    assert (tmp_path / "relative.db").exists()
    mem = SQLiteSink("sqlite:///:memory:")
    await mem.open()
    await mem.write(kis_records())
    await mem.close()
    assert SQLiteSink("sqlite:///x.db?synchronous=normal").synchronous == "normal"
    with pytest.raises(SinkError, match="unknown option"):
        SQLiteSink("sqlite:///x.db?journal=off")
    with pytest.raises(SinkError, match="synchronous"):
        SQLiteSink("sqlite:///x.db?synchronous=maybe")
    with pytest.raises(SinkError, match="no path"):
        SQLiteSink("sqlite:///")


async def test_two_writers_share_one_file(tmp_path: Path) -> None:
    """Two collectors (``--shard 1/2`` and ``2/2``) into one file: each waits its turn for
    SQLite's one write lock, first creating the same tables at once, and every row lands."""
    import asyncio

    for n in range(20):  # opening at the same moment (the lock that switching to WAL takes)
        pair = [SQLiteSink(url_of(tmp_path / f"open{n}.db")) for _ in range(2)]
        await asyncio.gather(*(s.open() for s in pair))
        await asyncio.gather(*(s.close() for s in pair))
    db = tmp_path / "market.db"
    records = kis_records()
    one, two = SQLiteSink(url_of(db)), SQLiteSink(url_of(db))
    await asyncio.gather(one.open(), two.open())
    try:
        batches = [
            [msgspec.structs.replace(r, item=f"{n:06d}") for r in records] for n in range(40)
        ]
        await asyncio.gather(
            *(sink.write(b) for i, b in enumerate(batches) for sink in [(one, two)[i % 2]])
        )
    finally:
        await asyncio.gather(one.close(), two.close())
    assert one.rows_written + two.rows_written == 40 * len(records)
    for table in {table_of(r).name: table_of(r) for r in records}.values():
        t, per = table.name, sum(table_of(r).name == table.name for r in records)
        # order/fill tables keep one row per identity (the item is not part of it)
        want = per if table.key else 40 * per
        assert rows(db, f'SELECT count(*) FROM "{t}"')[0][0] == want, t
        if not table.key:
            assert rows(db, f'SELECT count(DISTINCT item) FROM "{t}"')[0][0] == 40, t
