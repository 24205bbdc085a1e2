"""``krfeed web --replay DIR`` and ``--db FILE``: a session recorded from the simulator (journal
and SQLite) shown again: the program-trading totals and the orders' filled quantities on the
dashboard equal the live session's."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from krfeed import KIS, Feed, Kiwoom
from krfeed.brokers import sim_appkey
from krfeed.journal import JournalWriter, decode_journal
from krfeed.orders.tracker import OrderTracker
from krfeed.recorder import Recorder
from krfeed.records.base import Record
from krfeed.records.kis import ExecutionNotice, ProgramTrading
from krfeed.records.kiwoom import OrderExecution
from krfeed.sim import SimConfig, Simulator
from krfeed.sinks.sqlite import SQLiteSink
from krfeed.web.app import db_async, replay_items, serve_items
from krfeed.web.state import DashboardState

from .helpers import FAST


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Record]]:
    tmp = tmp_path_factory.mktemp("web-replay")
    return asyncio.run(_record(tmp))


async def _record(tmp: Path) -> tuple[Path, Path, list[Record]]:
    sim = Simulator(SimConfig(port=0, seed=5, rate=30.0))
    await sim.start()
    journal = JournalWriter(tmp / "journal", flush_interval=0.05)
    db = tmp / "day.db"
    seen: list[Record] = []
    try:
        async with Feed(
            Kiwoom.sim(sim.url), KIS.sim(sim.url, 2), options=FAST, on_raw=journal
        ) as f:
            await f.subscribe(Kiwoom.ORDER_EXECUTION)
            await f.subscribe(KIS.PROGRAM_TRADING, ["005930", "000660"])
            await f.subscribe(KIS.TRADE, ["005930"])
            await f.subscribe(KIS.EXECUTION_NOTICE)

            async def tap() -> AsyncIterator[Any]:
                async for item in f:
                    if isinstance(item, Record):
                        seen.append(item)
                    yield item

            rec = Recorder(tap(), SQLiteSink(f"sqlite:///{db}"), batch_interval=0.05)
            task = asyncio.create_task(rec.run())
            await sim.place_order("kiwoom", code="005930", qty=5, price=0)
            await sim.place_order("kis", code="000660", qty=4, price=0, appkey=sim_appkey(2))
            async with asyncio.timeout(20):
                while not (
                    sum(isinstance(r, ProgramTrading) for r in seen) > 30
                    and any(isinstance(r, ExecutionNotice) for r in seen)
                    and any(isinstance(r, OrderExecution) and r.fill_qty for r in seen)
                ):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the last fills of both orders
            rec.stop()
            await task
    finally:
        journal.close()
        await sim.stop()
    return tmp / "journal", db, seen


async def show(items: AsyncIterator[Any], mode: str) -> tuple[DashboardState, dict[str, Any]]:
    got: asyncio.Future[tuple[Any, DashboardState]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_items(
            items,
            mode=mode,
            port=0,
            duration=60,
            out=io.StringIO(),
            ready=lambda s, st: got.set_result((s, st)),
        )
    )
    try:
        server, state = await asyncio.wait_for(got, 10)
        async with asyncio.timeout(20):
            while not state.mode.endswith("(finished)"):
                await asyncio.sleep(0.05)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{server.port}/api/snapshot") as r,
        ):
            snap = await r.json()
        return state, snap
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def expected(seen: list[Record]) -> tuple[dict[str, int | None], dict[tuple[str, str], int]]:
    last = {r.code or "": r.net_buy_qty for r in seen if isinstance(r, ProgramTrading)}
    tracker = OrderTracker()
    for r in seen:
        tracker.update(r)
    return last, {(s.broker, s.order_no): s.filled_qty for s in tracker.orders()}


@pytest.mark.parametrize("source", ["replay", "recording"])
async def test_dashboard_shows_the_recorded_session(
    recorded: tuple[Path, Path, list[Record]], source: str
) -> None:
    journal, db, seen = recorded
    items = replay_items(journal, None) if source == "replay" else db_async(db, None)
    state, snap = await show(items, source)
    if source == "replay":  # the journal also holds what arrived after the recorder stopped
        seen = [r for r in decode_journal(journal) if isinstance(r, Record)]
    last, fills = expected(seen)
    assert set(last) == {"005930", "000660"}
    for code, net in last.items():
        assert state.program[code].latest.net_buy_qty == net
    ranked = {r["code"]: r["net_qty"] for r in snap["program"]["ranking"]}
    assert ranked == last
    on_page = {(o["broker"], o["order_no"]): o["filled"] for o in snap["orders"]["orders"]}
    assert on_page == fills
    assert sum(fills.values()) >= 9  # both orders filled in full (5 + 4 shares)
    assert snap["health"]["mode"] == f"{source} (finished)"
