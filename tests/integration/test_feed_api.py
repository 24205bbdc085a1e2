"""The Feed's user-facing conveniences against the simulator: callbacks, the blocking wrapper,
Kiwoom group management, token caching on disk, the mock switch for execution notices."""

from __future__ import annotations

import asyncio
import stat
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from krfeed import KIS, Disconnected, Feed, Kiwoom, Subscribed, SubState, SyncFeed
from krfeed.brokers import sim_appkey, sim_secret
from krfeed.records.kis import ExecutionNoticeMock, Trade
from krfeed.records.kiwoom import StockTrade
from krfeed.sim import SimConfig, Simulator

from .helpers import FAST


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(port=0, seed=9, rate=20.0, ping_interval=0.3)) as s:
        yield s


async def test_callbacks_see_typed_records_and_events(sim: Simulator) -> None:
    trades: list[StockTrade] = []
    events: list[Any] = []
    async_calls: list[str] = []

    async def on_any(item: Any) -> None:
        async_calls.append(type(item).__name__)

    async with Feed(Kiwoom.sim(sim.url), options=FAST) as feed:
        feed.on(Kiwoom.TRADE, trades.append)
        feed.on(Subscribed, events.append)
        feed.on(None, on_any)
        feed.on(Kiwoom.ORDER_EXECUTION, lambda r: 1 / 0)  # a failing callback is contained
        await feed.subscribe(Kiwoom.TRADE, ["005930"])

        async def until_enough() -> None:
            while len(trades) < 5:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(feed.run(until=until_enough()), 10)
    assert all(t.item == "005930" and t.current_price for t in trades)
    assert [(e.type, e.item) for e in events] == [("0B", "005930")]
    assert "StockTrade" in async_calls and "Subscribed" in async_calls


async def test_sync_feed_in_a_plain_loop(sim: Simulator) -> None:
    def blocking() -> list[Any]:
        got: list[Any] = []
        with SyncFeed(KIS.sim(sim.url, 2), options=FAST) as feed:
            subs = feed.subscribe(KIS.TRADE, ["005930"])
            assert subs[0].state is SubState.CONFIRMED
            for item in feed:
                if isinstance(item, Trade):
                    got.append(item)
                if len(got) >= 3:
                    break
            assert feed.stats()["records_delivered"]["kis:H0STCNT0"] >= 3
        return got

    got = await asyncio.to_thread(blocking)
    assert [t.code for t in got] == ["005930"] * 3


async def test_kiwoom_groups_hold_at_most_the_configured_items(sim: Simulator) -> None:
    codes = ["005930", "000660", "035720", "051910", "035420"]
    async with Feed(Kiwoom.sim(sim.url, 2, max_items_per_group=2), options=FAST) as feed:
        subs = await feed.subscribe(Kiwoom.TRADE, codes)
        subs += await feed.subscribe(Kiwoom.ORDER_BOOK, codes[:2])
        assert all(s.state is SubState.CONFIRMED for s in subs)
        groups: dict[str, set[str]] = {}
        for s in subs:
            groups.setdefault(s.group, set()).add(s.item)
        assert sorted(len(v) for v in groups.values()) == [1, 2, 2]  # 5 codes, 2 per group
        conn = next(c for c in sim.conns.values() if c.broker == "kiwoom" and not c.closed)
        assert conn.registrations() == {(s.type, s.item) for s in subs}
        # the same code for a second type stays in its group
        book = {s.item: s.group for s in subs if s.type == "0D"}
        trade = {s.item: s.group for s in subs if s.type == "0B"}
        assert all(book[c] == trade[c] for c in book)


async def test_tokens_are_cached_on_disk_with_0600(sim: Simulator, tmp_path: Path) -> None:
    cache = tmp_path / "tokens"
    async with Feed(Kiwoom.sim(sim.url, 3, token_cache=cache), options=FAST) as feed:
        await feed.subscribe(Kiwoom.TRADE, ["005930"])
        first = feed.sessions[0].token.issued  # type: ignore[attr-defined]
    files = list(cache.iterdir())
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert sim_secret(3) not in files[0].read_text()
    async with Feed(Kiwoom.sim(sim.url, 3, token_cache=cache), options=FAST) as feed:
        subs = await feed.subscribe(Kiwoom.TRADE, ["005930"])
        assert subs[0].state is SubState.CONFIRMED
        assert feed.sessions[0].token.issued == 0  # type: ignore[attr-defined]
    assert first == 1


async def test_execution_notices_use_cni9_on_the_mock_server() -> None:
    cfg = SimConfig(port=0, seed=2, rate=5.0, ping_interval=0.3, mock=True)
    async with Simulator(cfg) as sim:
        kis = KIS.sim(sim.url, 4, mock=True, hts_id="mockuser")
        async with Feed(kis, options=FAST) as feed:
            subs = await feed.subscribe(KIS.EXECUTION_NOTICE)
            assert [(s.type, s.item, s.state) for s in subs] == [
                ("H0STCNI9", "mockuser", SubState.CONFIRMED)
            ]
            await sim.place_order(
                "kis", code="005930", side="buy", qty=2, price=0, appkey=sim_appkey(4)
            )
            got: list[ExecutionNoticeMock] = []
            async for item in feed:
                if isinstance(item, ExecutionNoticeMock):
                    got.append(item)
                if len(got) >= 2:
                    break
    assert got[0].notice_kind is not None and got[0].code == "005930"
    assert Counter(g.order_no for g in got).most_common(1)[0][1] >= 1


async def test_server_closing_is_reported_with_its_reason(sim: Simulator) -> None:
    async with Feed(KIS.sim(sim.url, 5), options=FAST) as feed:
        await feed.subscribe(KIS.TRADE, ["005930"])
        sim.fault("close", broker="kis", code=1011, reason="maintenance")
        async for item in feed:
            if isinstance(item, Disconnected):
                assert "1011" in item.reason and not item.fatal
                break
