"""Kiwoom condition search (조건검색) through the Feed against the simulator: list, a one-off
search over several pages, a real-time watch whose 02 records follow the simulator's own
evaluation of its market, a reconnect in the middle, unwatch, and the limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from krfeed import Feed, Kiwoom, Reconnected
from krfeed.brokers import sim_appkey
from krfeed.conditions import ConditionError, ConditionSet
from krfeed.events import ConditionRestored, ConditionUnwatched, ConditionWatched
from krfeed.records.kiwoom import ConditionHit
from krfeed.schema.convert import KST
from krfeed.schema.enums import ConditionEvent, PriceSign
from krfeed.sim import SimConfig, Simulator
from krfeed.sim.conditions import set_price
from krfeed.sim.market import UNIVERSE, floor_tick

from .helpers import FAST, wait_for


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(rate=10, page_size=3)) as s:
        yield s


def up(sim: Simulator, code: str, percent: int = 10) -> int:
    """Trade ``code`` at +percent % (on the tick grid; far enough above +3 % that the random
    walk does not take it out during a test); returns the price."""
    inst = sim.market.instrument(code)
    price = floor_tick(inst.prev_close * (100 + percent) // 100)
    set_price(sim.market, code, price)
    return price


def back(sim: Simulator, code: str) -> None:
    set_price(sim.market, code, sim.market.instrument(code).prev_close)


class Reader:
    """Reads the feed in the background: every item, and the consumer's condition sets."""

    def __init__(self, feed: Feed) -> None:
        self.items: list[Any] = []
        self.sets = ConditionSet()
        self._task = asyncio.create_task(self._run(feed))

    async def _run(self, feed: Feed) -> None:
        async for item in feed:
            self.items.append(item)
            self.sets.update(item)

    def hits(self, seq: str) -> list[ConditionHit]:
        return [i for i in self.items if isinstance(i, ConditionHit) and i.condition_seq == seq]

    def of(self, cls: type) -> list[Any]:
        return [i for i in self.items if isinstance(i, cls)]

    async def stop(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


async def test_list_search_watch_unwatch(sim: Simulator) -> None:
    book = sim.condition_book
    raised = ["005930", "000660", "035720", "051910", "039490"]
    prices = {c: up(sim, c) for c in raised}
    async with Feed(Kiwoom.sim(sim.url, 1), options=FAST) as feed:
        conds = await feed.conditions()
        assert [(c.seq, c.name) for c in conds] == [
            (c.seq, c.name) for c in book.conditions.values()
        ]
        assert conds[0].name == "당일 3% 이상 상승"

        rows = await feed.search("0")
        # five matches, three per page: two CNSRREQ answers joined
        assert sim.frames_sent["kiwoom"]["CNSRREQ"] == 2
        assert [r.code for r in rows] == book.matches(sim.market, "0")
        assert sorted(r.code for r in rows) == sorted(raised)
        for r in rows:
            inst = sim.market.instrument(r.code)
            assert r.name == UNIVERSE[r.code][0]
            assert r.price == prices[r.code] == inst.price
            assert r.change == prices[r.code] - inst.prev_close
            assert r.sign is PriceSign.UP
            exact = Decimal(r.change) * 100 / inst.prev_close
            assert abs(r.change_rate - exact) <= Decimal("0.0005")  # type: ignore[operator]
            assert r.volume == inst.volume and r.high == prices[r.code]
        assert await feed.search("4") == []  # nothing is down 1 % yet

        reader = Reader(feed)
        w = await feed.watch("0")
        assert set(w.initial) == set(raised) and w.name == "당일 3% 이상 상승"
        await wait_for(lambda: bool(reader.of(ConditionWatched)))
        started = reader.of(ConditionWatched)[0]
        assert (started.seq, set(started.codes)) == ("0", set(raised))

        # the simulator's market moves two stocks across the condition
        back(sim, "000660")
        up(sim, "068270", 11)
        await wait_for(lambda: len(reader.hits("0")) >= 2)
        hits = reader.hits("0")
        assert [(h.code, h.condition_event) for h in hits] == [
            ("000660", ConditionEvent.EXIT),
            ("068270", ConditionEvent.ENTER),
        ]
        mine = [p for p in book.pushes if p.seq == "0"]
        for h, p in zip(hits, mine, strict=True):
            assert h.item == h.code == p.code
            assert h.condition_event is (
                ConditionEvent.ENTER if p.event == "I" else ConditionEvent.EXIT
            )
            assert h.event_time is not None
            assert h.event_time.astimezone(KST).strftime("%H%M%S") == p.values["20"]
            assert abs(h.event_time - datetime.now(UTC)) < timedelta(minutes=1)
            assert h.side == p.values["907"]
        # the simulator decided them on its prices: above +3 % enters, not above leaves
        for h, p in zip(hits, mine, strict=True):
            up3 = (p.price - p.prev_close) * 100 > 3 * p.prev_close
            assert up3 == (h.condition_event is ConditionEvent.ENTER)
        assert mine[0].price - mine[0].prev_close < 1000  # moved back (a tick or two off)
        expected = (set(raised) - {"000660"}) | {"068270"}
        assert w.codes == expected == reader.sets.codes("0") == set(book.matches(sim.market, "0"))

        # a moving condition: the consumer's set follows the simulator's evaluation
        w3 = await feed.watch("3")
        assert len(reader.hits("3")) == 0
        conn = sim.kiwoom_sessions[sim_appkey(1)]
        await wait_for(lambda: len(reader.hits("3")) >= 6, timeout=20)
        await wait_for(lambda: reader.sets.codes("3") == book.reported(conn, "3"), timeout=10)
        got = reader.hits("3")
        pushed = [p for p in book.pushes if p.seq == "3"][: len(got)]
        assert len(pushed) == len(got)
        for h, p in zip(got, pushed, strict=True):  # in order, as the simulator sent them
            assert h.code == p.code and h.event_time is not None
            assert h.event_time.astimezone(KST).strftime("%H%M%S") == p.values["20"]
            # each entry was up on the day when sent, each exit was not
            assert h.condition_event is (
                ConditionEvent.ENTER if p.price > p.prev_close else ConditionEvent.EXIT
            )
            assert p.event == ("I" if p.price > p.prev_close else "D")
        assert w3.active and w3.name == "전일 대비 상승"

        await feed.unwatch("0")
        await feed.unwatch("3")
        assert not w.active and not feed.sessions[0].cond.watches  # type: ignore[attr-defined]
        assert not book.watching()
        await wait_for(lambda: len(reader.of(ConditionUnwatched)) == 2)
        assert [e.seq for e in reader.of(ConditionUnwatched)] == ["0", "3"]
        assert reader.sets.sets == {}
        await feed.unwatch("0")  # not watched: nothing to do
        await reader.stop()


async def test_reconnect_restores_the_set(sim: Simulator) -> None:
    book = sim.condition_book
    up(sim, "000660")
    up(sim, "035420")
    async with Feed(Kiwoom.sim(sim.url, 1), options=FAST) as feed:
        reader = Reader(feed)
        w = await feed.watch("0")
        w3 = await feed.watch("3")
        assert set(w.initial) == {"000660", "035420"}
        before = sim.connections_total["kiwoom"]
        sim.fault("drop", broker="kiwoom")
        # while the client is away the market moves: one stock leaves, two enter
        back(sim, "000660")
        up(sim, "005930")
        up(sim, "005490", 12)
        await wait_for(lambda: bool(reader.of(Reconnected)))
        await wait_for(lambda: len(reader.of(ConditionRestored)) == 2)
        assert sim.connections_total["kiwoom"] == before + 1
        restored = {e.seq: e for e in reader.of(ConditionRestored)}
        r0 = restored["0"]
        assert set(r0.entered) == {"005930", "005490"} and r0.left == ("000660",)
        assert set(r0.codes) == {"035420", "005930", "005490"}
        # the difference arrived as 02 records, so the consumer's set is right
        made = [h for h in reader.hits("0") if h.event_time is None]
        assert sorted((h.code, h.condition_event) for h in made) == [
            ("000660", ConditionEvent.EXIT),
            ("005490", ConditionEvent.ENTER),
            ("005930", ConditionEvent.ENTER),
        ]
        assert reader.sets.codes("0") == w.codes == set(book.matches(sim.market, "0"))
        # the simulator re-registered both on the new connection, after the list
        conn = sim.kiwoom_sessions[sim_appkey(1)]
        assert book.reported(conn, "0") == w.codes
        await wait_for(lambda: reader.sets.codes("3") == book.reported(conn, "3"), timeout=10)
        assert w3.active and w3.conn == w.conn == 2
        # and the watch goes on live after the reconnect
        n = len(reader.hits("0"))
        up(sim, "373220")
        await wait_for(lambda: len(reader.hits("0")) > n)
        last = reader.hits("0")[-1]
        assert (last.code, last.condition_event) == ("373220", ConditionEvent.ENTER)
        assert last.event_time is not None
        assert "373220" in w.codes and "373220" in reader.sets.codes("0")
        await reader.stop()


async def test_limits_and_errors(sim: Simulator) -> None:
    async with Feed(Kiwoom.sim(sim.url, 1), options=FAST) as feed:
        with pytest.raises(ConditionError, match="not a number of up to 3 digits"):
            await feed.search("abc")
        with pytest.raises(ConditionError, match=r"there is no saved condition 99; saved: 0 \("):
            await feed.watch(99)
        feed.condition_limits.max_watches = 2
        await feed.watch(0)
        await feed.watch("1")
        assert (await feed.watch("1")).seq == "1"  # already watched: the same watch
        with pytest.raises(ConditionError, match="allows 2 real-time condition searches"):
            await feed.watch("2")
        # beyond the simulator's own limit: Kiwoom's refusal, in one sentence
        feed.condition_limits.max_watches = 10
        sim.condition_book.max_realtime = 2
        with pytest.raises(
            ConditionError,
            match="Kiwoom refused the real-time search of condition 2: 실시간 조건검색은 최대 2개",
        ):
            await feed.watch("2")
        assert sorted(feed.sessions[0].cond.watches) == ["0", "1"]  # type: ignore[attr-defined]


async def test_requests_wait_for_the_connection() -> None:
    async with Simulator(SimConfig()) as sim:
        sim.fault("refuse_logins", broker="kiwoom", seconds=0.5)
        async with Feed(Kiwoom.sim(sim.url, 1), options=FAST) as feed:
            conds = await feed.conditions()  # answered once a login succeeds
            assert len(conds) == 5
    async with Simulator(SimConfig()) as sim:
        bad = Kiwoom(sim_appkey(1), "not-the-secret", rest_url=sim.url)
        async with Feed(bad, options=FAST) as feed:
            with pytest.raises(ConditionError, match="session kiwoom#1 stopped"):
                await feed.conditions()


async def test_requests_are_paced(sim: Simulator) -> None:
    async with Feed(Kiwoom.sim(sim.url, 1), options=FAST) as feed:
        feed.condition_limits.request_interval = 60.0
        feed.condition_limits.timeout = 0.5
        assert len(await feed.conditions()) == 5
        sent = sim.frames_sent["kiwoom"]["CNSRLST"]
        with pytest.raises(ConditionError, match="paced at one per 60s"):
            await feed.search("0")
        assert sim.frames_sent["kiwoom"]["CNSRLST"] == sent  # nothing more went out
        assert sim.frames_sent["kiwoom"]["CNSRREQ"] == 0
