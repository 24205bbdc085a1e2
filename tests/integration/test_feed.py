"""The engine against the simulator over loopback: subscriptions, reconnects with the
subscription set restored, fatal errors, limits, backpressure, shutdown, exactly-once order
events across many forced disconnects."""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from krfeed import (
    KIS,
    Connected,
    Disconnected,
    Feed,
    Kiwoom,
    Reconnected,
    Reconnecting,
    SessionFailed,
    SessionOptions,
    Stalled,
    Subscribed,
    SubscribeFailed,
    SubscriptionError,
    SubState,
)
from krfeed.brokers import sim_appkey
from krfeed.records.base import Record
from krfeed.records.kis import ProgramTrading
from krfeed.records.kiwoom import OrderExecution, StockTrade
from krfeed.schema.enums import Direction, OrderStatus
from krfeed.sim import SimConfig, Simulator

from .helpers import FAST, collect, count_of, wait_for


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    s = Simulator(SimConfig(port=0, seed=7, rate=20.0, ping_interval=0.3))
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


async def test_kiwoom_and_kis_records_arrive_typed(sim: Simulator) -> None:
    async with Feed(Kiwoom.sim(sim.url), KIS.sim(sim.url, 2), options=FAST) as feed:
        subs = await feed.subscribe(Kiwoom.TRADE, ["005930", "000660"])
        assert [s.state for s in subs] == [SubState.CONFIRMED, SubState.CONFIRMED]
        subs = await feed.subscribe(KIS.PROGRAM_TRADING, ["005930"])
        assert subs[0].state is SubState.CONFIRMED
        items = await collect(
            feed,
            lambda it: count_of(StockTrade, it) >= 10 and count_of(ProgramTrading, it) >= 3,
        )
    trades = [i for i in items if isinstance(i, StockTrade)]
    assert {t.item for t in trades} == {"005930", "000660"}
    for t in trades:
        assert t.current_price is not None and t.current_price > 0
        assert t.current_price_dir in (Direction.UP, Direction.DOWN, Direction.FLAT)
        assert t.trade_time is not None and t.trade_time.tzinfo is not None
    pgm = [i for i in items if isinstance(i, ProgramTrading)]
    for p in pgm:
        assert p.code == "005930" == p.item
        assert p.net_buy_qty == p.buy_qty - p.sell_qty
    subscribed = {(e.type, e.item) for e in items if isinstance(e, Subscribed)}
    assert subscribed == {("0B", "005930"), ("0B", "000660"), ("H0STPGM0", "005930")}


def sim_registered(sim: Simulator) -> Counter[tuple[str, str]]:
    """(type, item) registrations the simulator holds over all live connections."""
    regs: Counter[tuple[str, str]] = Counter()
    for c in sim.conns.values():
        if c.closed:
            continue
        regs.update(c.registrations() if c.broker == "kiwoom" else c.kis_subs.keys())
    return regs


@pytest.mark.parametrize("fault", ["drop", "close", "half_open"])
async def test_reconnect_restores_exactly_the_subscriptions(sim: Simulator, fault: str) -> None:
    opts = SessionOptions(**{**FAST.__dict__, "idle_timeout": 1.0})
    async with Feed(Kiwoom.sim(sim.url), KIS.sim(sim.url, 2), options=opts) as feed:
        await feed.subscribe(Kiwoom.TRADE, ["005930", "000660", "035720"])
        await feed.subscribe(Kiwoom.ORDER_EXECUTION)
        await feed.subscribe(KIS.TRADE, ["005930", "000660"])
        await feed.subscribe(KIS.PROGRAM_TRADING, ["005930"])
        before = sim_registered(sim)
        assert sum(before.values()) == 7 and set(before.values()) == {1}
        sim.fault(fault, seconds=30) if fault == "half_open" else sim.fault(fault)
        items = await collect(feed, lambda it: count_of(Reconnected, it) >= 2, timeout=15)
        await wait_for(
            lambda: all(s.state is SubState.CONFIRMED for s in feed.subscription_states())
        )
        assert sim_registered(sim) == before  # none lost, none duplicated
    assert count_of(Disconnected, items) >= 2
    assert count_of(Reconnecting, items) >= 2
    assert not any(isinstance(i, SessionFailed) for i in items)


async def test_silence_triggers_the_watchdog(sim: Simulator) -> None:
    opts = SessionOptions(**{**FAST.__dict__, "stall_timeout": 0.8})
    async with Feed(KIS.sim(sim.url, 3), options=opts) as feed:
        await feed.subscribe(KIS.TRADE, ["005930"])
        await collect(feed, lambda it: count_of(Record, it) >= 3)
        sim.fault("silence", seconds=30)
        items = await collect(feed, lambda it: count_of(Reconnected, it) >= 1, timeout=15)
        stalled = [i for i in items if isinstance(i, Stalled)]
        assert stalled and stalled[0].silent_for >= 0.8
        # after the reconnect data flows again
        await collect(feed, lambda it: count_of(Record, it) >= 3)


async def test_r10001_is_fatal_and_not_retried(sim: Simulator) -> None:
    async with Feed(Kiwoom.sim(sim.url, 4), options=FAST) as first:
        await first.subscribe(Kiwoom.TRADE, ["005930"])
        async with Feed(Kiwoom.sim(sim.url, 4), options=FAST) as second:
            await second.subscribe(Kiwoom.TRADE, ["000660"])
            items = await collect(first, lambda it: count_of(SessionFailed, it) >= 1)
            failed = next(i for i in items if isinstance(i, SessionFailed))
            assert failed.code == "R10001"
            assert "same app key" in failed.reason
            await asyncio.sleep(0.5)
            assert first.sessions[0].stats.connects == 1  # no reconnect storm
            assert first.sessions[0].failed is not None
            assert second.sessions[0].failed is None


async def test_opsp8996_is_fatal(sim: Simulator) -> None:
    async with Feed(KIS.sim(sim.url, 5), options=FAST) as first:
        await first.subscribe(KIS.TRADE, ["005930"])
        async with Feed(KIS.sim(sim.url, 5), options=FAST) as second:
            await second.subscribe(KIS.TRADE, ["000660"], timeout=3)
            items = await collect(second, lambda it: count_of(SessionFailed, it) >= 1)
            failed = next(i for i in items if isinstance(i, SessionFailed))
            assert failed.code == "OPSP8996"
            await asyncio.sleep(0.5)
            assert second.sessions[0].stats.connects == 1


async def test_bad_credentials_fail_once_with_a_clear_reason(sim: Simulator) -> None:
    cfg = Kiwoom("nope-app", "nope-secret", rest_url=sim.url)
    async with Feed(cfg, options=FAST) as feed:
        items = await collect(feed, lambda it: count_of(SessionFailed, it) >= 1)
        failed = next(i for i in items if isinstance(i, SessionFailed))
        assert "refused the app key/secret" in failed.reason
        assert "nope-secret" not in failed.reason
        assert count_of(Connected, items) == 0


async def test_token_expiry_is_renewed_without_losing_the_session(sim: Simulator) -> None:
    async with Feed(Kiwoom.sim(sim.url, 6), options=FAST) as feed:
        await feed.subscribe(Kiwoom.TRADE, ["005930"])
        session = feed.sessions[0]
        issued = session.token.issued  # type: ignore[attr-defined]
        sim.fault("expire_tokens", broker="kiwoom")
        await collect(feed, lambda it: count_of(StockTrade, it) >= 5)
        assert session.stats.connects == 1  # the open session is unaffected
        sim.fault("drop", broker="kiwoom")
        await collect(feed, lambda it: count_of(Reconnected, it) >= 1, timeout=15)
        assert session.token.issued == issued + 1  # type: ignore[attr-defined]
        assert session.failed is None
        await collect(feed, lambda it: count_of(StockTrade, it) >= 3)


async def test_100_kis_subscriptions_spread_over_3_appkeys(sim: Simulator) -> None:
    codes = [f"{100000 + i:06d}" for i in range(100)]
    keys = [KIS.sim(sim.url, n) for n in (1, 2, 3)]
    async with Feed(*keys, options=FAST) as feed:
        subs = await feed.subscribe(KIS.TRADE, codes, timeout=20)
        assert all(s.state is SubState.CONFIRMED for s in subs)
        per_session = Counter(s.session for s in subs)
        assert sorted(per_session.values()) == [33, 33, 34]
        more = [f"{200000 + i:06d}" for i in range(23)]  # 123 = 3 x 41
        await feed.subscribe(KIS.TRADE, more, timeout=20)
        assert all(s.registrations() == 41 for s in feed.sessions)
        frames_before = sum(s.stats.frames for s in feed.sessions)
        with pytest.raises(SubscriptionError, match="no room"):
            await feed.subscribe(KIS.TRADE, ["300000"])
        assert sum(sim_registered(sim).values()) == 123
        assert not any(s.state is SubState.FAILED for s in feed.subscription_states())
        # refused locally: no round trip, so no reply frame beyond the data stream
        assert ("H0STCNT0", "300000") not in sim_registered(sim)
        assert frames_before >= 123


async def test_mock_refuses_real_only_tr_before_sending(sim: Simulator) -> None:
    async with Feed(KIS.sim(sim.url, 1, mock=True), options=FAST) as feed:
        with pytest.raises(SubscriptionError, match="모의투자"):
            await feed.subscribe(KIS.PROGRAM_TRADING, ["005930"])


async def test_unsubscribe(sim: Simulator) -> None:
    async with Feed(Kiwoom.sim(sim.url, 7), KIS.sim(sim.url, 7), options=FAST) as feed:
        await feed.subscribe(Kiwoom.TRADE, ["005930", "000660"])
        await feed.subscribe(KIS.TRADE, ["005930", "000660"])
        assert sum(sim_registered(sim).values()) == 4
        await feed.unsubscribe(Kiwoom.TRADE, ["005930"])
        await feed.unsubscribe(KIS.TRADE, ["000660"])
        await wait_for(lambda: sum(sim_registered(sim).values()) == 2)
        assert set(sim_registered(sim)) == {("0B", "000660"), ("H0STCNT0", "005930")}
        assert {(s.type, s.item) for s in feed.subscription_states()} == {
            ("0B", "000660"),
            ("H0STCNT0", "005930"),
        }


async def test_slow_consumer_bounded_memory_and_order_events_intact() -> None:
    cfg = SimConfig(port=0, seed=3, rate=400.0, ping_interval=0.3, auto_orders=20.0)
    async with Simulator(cfg) as sim:
        feed = Feed(
            Kiwoom.sim(sim.url, 8),
            options=FAST,
            queue_size=200,
            overflow="drop_oldest",
        )
        async with feed:
            await feed.subscribe(Kiwoom.ORDER_EXECUTION)
            await feed.subscribe(Kiwoom.TRADE, [f"{i:06d}" for i in range(1, 21)])
            got: list[OrderExecution] = []
            t_end = time.monotonic() + 3.0
            async for item in feed:
                if isinstance(item, OrderExecution):
                    got.append(item)
                await asyncio.sleep(0.002)  # slow consumer
                assert feed.stats()["queue_depth"] <= 200
                if time.monotonic() > t_end:
                    break
            await wait_for(lambda: len(sim.account_events("kiwoom")) > 0)
            # let the order events already sent arrive
            sent_before = len(sim.account_events("kiwoom"))
            while len(got) < sent_before:
                item = await asyncio.wait_for(feed.__aiter__().__anext__(), 5)
                if isinstance(item, OrderExecution):
                    got.append(item)
            stats = feed.stats()
        assert stats["dropped"] > 0  # market data was shed …
        sent = sim.account_events("kiwoom")[:sent_before]
        keys = [(e["order_no"], e["fill_no"] or "", e["wire"]["913"]) for e in sent]
        seen = [(r.order_no, r.fill_no or "", _status_wire(r.order_status)) for r in got]
        assert seen[: len(keys)] == keys  # … but every order event arrived, in order


def _status_wire(s: Any) -> str:
    return {
        OrderStatus.ACCEPTED: "접수",
        OrderStatus.FILLED: "체결",
        OrderStatus.CONFIRMED: "확인",
        OrderStatus.CANCELLED: "취소",
        OrderStatus.REJECTED: "거부",
    }.get(s, str(s))


async def test_close_under_load_is_bounded_and_leaks_no_task() -> None:
    cfg = SimConfig(port=0, seed=4, rate=500.0, ping_interval=0.3)
    async with Simulator(cfg) as sim:
        feed = Feed(Kiwoom.sim(sim.url), KIS.sim(sim.url, 2), options=FAST)
        await feed.start()
        await feed.subscribe(Kiwoom.TRADE, [f"{i:06d}" for i in range(1, 31)])
        await feed.subscribe(KIS.TRADE, [f"{i:06d}" for i in range(1, 31)])
        n = 0
        async for item in feed:
            n += isinstance(item, Record)
            if n > 2000:
                break
        t0 = time.monotonic()
        await feed.close(timeout=3)
        assert time.monotonic() - t0 < 5
        await asyncio.sleep(0.05)
        ours = [t for t in asyncio.all_tasks() if t.get_name().startswith("krfeed")]
        assert ours == []
    gc.collect()


async def test_50_forced_disconnects_deliver_every_order_event_exactly_once() -> None:
    cfg = SimConfig(port=0, seed=5, rate=5.0, ping_interval=0.3, auto_orders=0.0)
    async with Simulator(cfg) as sim, Feed(Kiwoom.sim(sim.url, 3), options=FAST) as feed:
        await feed.subscribe(Kiwoom.ORDER_EXECUTION)
        got: list[OrderExecution] = []
        reconnects = 0

        async def pump(n_events: int) -> None:
            nonlocal reconnects
            async for item in feed:
                if isinstance(item, OrderExecution):
                    got.append(item)
                elif isinstance(item, Reconnected):
                    reconnects += 1
                if len(got) >= n_events and all(
                    s.state is SubState.CONFIRMED for s in feed.subscription_states()
                ):
                    return

        for round_ in range(50):
            await wait_for(
                lambda: all(s.state is SubState.CONFIRMED for s in feed.subscription_states())
            )
            await sim.place_order(
                "kiwoom", code="005930", side="buy", qty=3, price=0, appkey=sim_appkey(3)
            )
            # every event of this order sent (all fills done), then all of them received
            await wait_for(
                lambda: all(o["remaining"] == 0 for o in sim.order_book("kiwoom", sim_appkey(3)))
            )
            await asyncio.wait_for(pump(len(sim.account_events("kiwoom"))), 10)
            connects = feed.sessions[0].stats.connects
            sim.fault("drop", broker="kiwoom")
            # Pushes are not replayed by the broker: only place the next order once the new
            # connection is logged in and registered again.
            await wait_for(lambda c=connects: feed.sessions[0].stats.connects > c)
            await asyncio.wait_for(pump(len(got)), 10)
            await wait_for(lambda: sim_registered(sim)[("00", "")] == 1)
            assert feed.sessions[0].failed is None, round_
        sent = sim.account_events("kiwoom")
        keys = Counter((e["order_no"], e["fill_no"] or "", e["wire"]["913"]) for e in sent)
        seen = Counter((r.order_no, r.fill_no or "", _status_wire(r.order_status)) for r in got)
        assert seen == keys
        assert max(seen.values()) == 1
        assert feed.sessions[0].stats.connects >= 50


async def test_bad_subscriptions_fail_clearly(sim: Simulator) -> None:
    async with Feed(Kiwoom.sim(sim.url), KIS.sim(sim.url, 2), options=FAST) as feed:
        with pytest.raises(SubscriptionError, match="unknown real-time type"):
            await feed.subscribe("ZZ", ["005930"])
        with pytest.raises(SubscriptionError, match="needs at least one code"):
            await feed.subscribe(KIS.TRADE, [])
        subs = await feed.subscribe(KIS.TRADE, ["12"])  # the broker refuses the key
        assert subs[0].state is SubState.FAILED
        items = await collect(feed, lambda it: count_of(SubscribeFailed, it) >= 1)
        ev = next(i for i in items if isinstance(i, SubscribeFailed))
        assert ev.code == "OPSP8992" and ev.item == "12"


async def test_stalls_in_a_row_back_off_the_watchdog() -> None:
    # No market data at all (a holiday): each stall doubles the next threshold.
    cfg = SimConfig(port=0, seed=8, rate=0.0, ping_interval=0.2)
    opts = SessionOptions(**{**FAST.__dict__, "stall_timeout": 0.3})
    async with Simulator(cfg) as sim, Feed(KIS.sim(sim.url, 4), options=opts) as feed:
        await feed.subscribe(KIS.TRADE, ["005930"])
        items = await collect(feed, lambda it: count_of(Stalled, it) >= 3, timeout=20)
    silent = [i.silent_for for i in items if isinstance(i, Stalled)]
    assert silent[0] >= 0.3 and silent[1] >= 0.6 and silent[2] >= 1.2


async def test_a_handshake_that_never_completes_is_retried(sim: Simulator) -> None:
    opts = SessionOptions(**{**FAST.__dict__, "connect_timeout": 0.5})
    sim.fault("delay_handshake", seconds=3, count=1)
    async with Feed(KIS.sim(sim.url, 6), options=opts) as feed:
        subs = await feed.subscribe(KIS.TRADE, ["005930"], timeout=15)
        assert subs[0].state is SubState.CONFIRMED
        items = await collect(feed, lambda it: count_of(Record, it) >= 1)
    first = next(i for i in items if isinstance(i, Reconnecting))
    assert "no WebSocket handshake within" in first.reason


async def test_an_account_type_given_codes_is_refused_not_silently_widened(sim: Simulator) -> None:
    # 00 / H0STCNI0 carry every order of the account: a code would look like a filter it is not
    async with Feed(Kiwoom.sim(sim.url), KIS.sim(sim.url), options=FAST) as feed:
        for type_, name in (
            (Kiwoom.ORDER_EXECUTION, "kiwoom 00"),
            ("kis:H0STCNI0", "kis H0STCNI0"),
        ):
            with pytest.raises(SubscriptionError) as e:
                await feed.subscribe(type_, ["005930"])
            assert str(e.value) == (
                f"{name} is an account type: it takes no codes (it carries the whole account)"
            )
        assert feed.subscription_states() == []
