"""Record a live session from the simulator (Feed → Recorder → SQLite, with the journal as the
Feed's raw hook, across a forced reconnect and encrypted KIS execution notices), then replay
the journal into a second database: the record tables are identical, row for row."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from krfeed import KIS, Feed, Kiwoom, Reconnected
from krfeed.brokers import sim_appkey
from krfeed.journal import JournalWriter, read_journal, replay
from krfeed.recorder import Recorder
from krfeed.records.base import Record
from krfeed.records.kis import ExecutionNotice
from krfeed.records.kiwoom import OrderExecution
from krfeed.sim import SimConfig, Simulator
from krfeed.sinks.sqlite import SQLiteSink

from .helpers import FAST


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    s = Simulator(SimConfig(port=0, seed=11, rate=30.0, ping_interval=0.3))
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


def record_tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(db)
    try:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
            if not r[0].startswith("krfeed_")
        ]
        return {n: conn.execute(f'SELECT * FROM "{n}" ORDER BY rowid').fetchall() for n in names}
    finally:
        conn.close()


async def test_replayed_journal_reproduces_the_recorded_rows(
    sim: Simulator, tmp_path: Path
) -> None:
    journal = JournalWriter(tmp_path / "journal", rotate_mb=0.002, flush_interval=0.05)
    live_db = tmp_path / "live.db"
    seen: list[Any] = []
    async with Feed(Kiwoom.sim(sim.url), KIS.sim(sim.url, 2), options=FAST, on_raw=journal) as feed:
        await feed.subscribe(Kiwoom.TRADE, ["005930", "000660"])
        await feed.subscribe(Kiwoom.ORDER_EXECUTION)
        await feed.subscribe(KIS.TRADE, ["005930"])
        await feed.subscribe(KIS.PROGRAM_TRADING, ["005930"])
        await feed.subscribe(KIS.EXECUTION_NOTICE)

        async def tap() -> AsyncIterator[Any]:
            async for item in feed:
                seen.append(item)
                yield item

        recorder = Recorder(tap(), SQLiteSink(f"sqlite:///{live_db}"), batch_interval=0.05)
        task = asyncio.create_task(recorder.run())

        async def until(cond: Any, timeout: float = 15) -> None:
            async with asyncio.timeout(timeout):
                while not cond():
                    await asyncio.sleep(0.02)

        await sim.place_order("kiwoom", code="005930", qty=2, price=0)
        await sim.place_order("kis", code="005930", qty=3, price=0, appkey=sim_appkey(2))
        await until(lambda: any(isinstance(i, ExecutionNotice) for i in seen))
        sim.fault("drop")  # every connection: new connection ids, KIS keys learned again
        await until(lambda: sum(isinstance(i, Reconnected) for i in seen) >= 2)
        await sim.place_order(
            "kis", code="005930", side="sell", qty=1, price=0, appkey=sim_appkey(2)
        )
        n = sum(isinstance(i, ExecutionNotice) for i in seen)
        await until(lambda: sum(isinstance(i, ExecutionNotice) for i in seen) > n)
        await until(lambda: len(seen) > 300)
        recorder.stop()
        await task
    journal.close()

    live_records = [i for i in seen if isinstance(i, Record)]
    assert any(isinstance(r, OrderExecution) for r in live_records)
    assert len({e.conn for e in read_journal(tmp_path / "journal") if e.broker == "kis"}) >= 2
    assert len(list((tmp_path / "journal").iterdir())) >= 2  # rotated

    replayed = [m async for m in replay(tmp_path / "journal")]
    replayed_records = [m for m in replayed if isinstance(m, Record)]
    # the journal may hold frames read after the recorder stopped: compare the prefix
    assert replayed_records[: len(live_records)] == live_records

    replay_db = tmp_path / "replay.db"
    sink = SQLiteSink(f"sqlite:///{replay_db}")
    await sink.open()
    await sink.write(replayed_records[: len(live_records)])  # type: ignore[arg-type]
    await sink.close()
    live, again = record_tables(live_db), record_tables(replay_db)
    assert live == again
    assert sum(len(v) for v in live.values()) == len(live_records)
