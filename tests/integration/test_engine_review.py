"""Engine review: defects found in the session/feed engine, each pinned against the simulator
over loopback (subscription state across reconnects, re-subscribing during an unsubscribe, the
one-session-per-key ghost after a half-open socket, retryable credential refusals, duplicate
registrations over several Kiwoom app keys, the blocking wrapper's shutdown), and a few without
a network (the queue's block policy under a stalled consumer, undecodable frames kept within
the bounded queue, which token refusals are retryable)."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from krfeed import (
    KIS,
    DecodeError,
    Feed,
    Kiwoom,
    Reconnected,
    SessionFailed,
    SessionOptions,
    Subscribed,
    SubState,
    SyncFeed,
    Unsubscribed,
)
from krfeed.auth import KiwoomToken
from krfeed.errors import AuthError, TransientError
from krfeed.queue import BoundedQueue
from krfeed.records.base import Record
from krfeed.session import KISSession
from krfeed.sim import SimConfig, Simulator

from .helpers import FAST, collect, count_of


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(port=0, seed=11, rate=20.0, ping_interval=0.3)) as s:
        yield s


def sim_registered(sim: Simulator) -> Counter[tuple[str, str]]:
    regs: Counter[tuple[str, str]] = Counter()
    for c in sim.conns.values():
        if c.closed:
            continue
        regs.update(c.registrations() if c.broker == "kiwoom" else c.kis_subs.keys())
    return regs


async def wait_for(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached")
        await asyncio.sleep(0.02)


def all_confirmed(feed: Feed) -> bool:
    return all(s.state is SubState.CONFIRMED for s in feed.subscription_states())


def broker_config(broker: str, sim: Simulator, n: int) -> Kiwoom | KIS:
    return Kiwoom.sim(sim.url, n) if broker == "kiwoom" else KIS.sim(sim.url, n)


def trade_of(broker: str) -> Any:
    return Kiwoom.TRADE if broker == "kiwoom" else KIS.TRADE


# ---- an unsubscribe whose reply never came is not undone by the reconnect ----


@pytest.mark.parametrize("broker", ["kiwoom", "kis"])
async def test_unsubscribe_cut_off_by_a_disconnect_is_not_replayed(
    sim: Simulator, broker: str
) -> None:
    trade = trade_of(broker)
    code = "0B" if broker == "kiwoom" else "H0STCNT0"
    async with Feed(broker_config(broker, sim, 2), options=FAST) as feed:
        await feed.subscribe(trade, ["005930", "000660"])
        await feed.unsubscribe(trade, ["000660"])
        # the connection dies before the broker ever sees the unsubscribe
        sim.fault("drop", broker=broker)
        items = await collect(feed, lambda it: count_of(Reconnected, it) >= 1)
        await wait_for(lambda: all_confirmed(feed) and sum(sim_registered(sim).values()) >= 1)
        assert {(s.type, s.item) for s in feed.subscription_states()} == {(code, "005930")}
        assert sim_registered(sim) == Counter({(code, "005930"): 1})
        gone = [i for i in items if isinstance(i, Unsubscribed)]
        assert [(u.type, u.item) for u in gone] == [(code, "000660")]


# ---- subscribing again while the unsubscribe is in flight ----


@pytest.mark.parametrize("broker", ["kiwoom", "kis"])
async def test_subscribe_again_right_after_unsubscribe(sim: Simulator, broker: str) -> None:
    trade = trade_of(broker)
    code = "0B" if broker == "kiwoom" else "H0STCNT0"
    async with Feed(broker_config(broker, sim, 3), options=FAST) as feed:
        await feed.subscribe(trade, ["005930"])
        await feed.unsubscribe(trade, ["005930"])
        subs = await feed.subscribe(trade, ["005930"], timeout=5)
        assert [s.state for s in subs] == [SubState.CONFIRMED]
        await wait_for(lambda: all_confirmed(feed))
        assert [(s.type, s.item) for s in feed.subscription_states()] == [(code, "005930")]
        assert feed.subscription_states()[0] is subs[0]
        await wait_for(lambda: sim_registered(sim) == Counter({(code, "005930"): 1}))
        # the stream says: subscribed, unsubscribed, subscribed — and data flows
        items = await collect(
            feed, lambda it: count_of(Subscribed, it) >= 2 and count_of(Record, it) >= 1
        )
        kinds = [type(i).__name__ for i in items if isinstance(i, Subscribed | Unsubscribed)]
        assert kinds == ["Subscribed", "Unsubscribed", "Subscribed"]


# ---- OPSP8996 right after our own half-open connection died ----


async def test_kis_reconnect_meeting_its_own_ghost_session_is_retried(sim: Simulator) -> None:
    opts = SessionOptions(**{**FAST.__dict__, "idle_timeout": 1.0})
    async with Feed(KIS.sim(sim.url, 4), options=opts) as feed:
        await feed.subscribe(KIS.TRADE, ["005930"])
        await collect(feed, lambda it: count_of(Record, it) >= 2)
        # the path dies: the broker keeps the old session (and the app key) for 3 s
        sim.fault("half_open", broker="kis", seconds=3.0, hold_session=True)
        items = await collect(
            feed,
            lambda it: count_of(SessionFailed, it) >= 1 or count_of(Subscribed, it) >= 1,
            timeout=20,
        )
        assert count_of(SessionFailed, items) == 0
        assert feed.sessions[0].failed is None
        await wait_for(lambda: all_confirmed(feed))
        assert sim_registered(sim) == Counter({("H0STCNT0", "005930"): 1})


# ---- a temporary refusal to issue credentials is not fatal ----


async def test_kis_approval_rate_limit_is_retried_not_fatal(sim: Simulator) -> None:
    # EGW00133 "잠시 후 다시 시도하세요": try again later
    sim.fault("refuse_logins", broker="kis", seconds=1.0)
    async with Feed(KIS.sim(sim.url, 5), options=FAST) as feed:
        subs = await feed.subscribe(KIS.TRADE, ["005930"], timeout=15)
        assert subs[0].state is SubState.CONFIRMED
        assert feed.sessions[0].failed is None


async def test_kis_refusal_mid_session_renews_after_the_window(sim: Simulator) -> None:
    async with Feed(KIS.sim(sim.url, 6), options=FAST) as feed:
        await feed.subscribe(KIS.TRADE, ["005930"])
        await collect(feed, lambda it: count_of(Record, it) >= 1)
        # the cached key is refused (OPSP0011) and re-issuing it is refused (EGW00133) for a while
        sim.fault("refuse_logins", broker="kis", seconds=1.5)
        sim.fault("drop", broker="kis")
        items = await collect(
            feed,
            lambda it: count_of(SessionFailed, it) >= 1 or count_of(Subscribed, it) >= 1,
            timeout=20,
        )
        assert count_of(SessionFailed, items) == 0
        assert feed.sessions[0].failed is None
        assert sim_registered(sim) == Counter({("H0STCNT0", "005930"): 1})


# ---- several Kiwoom app keys: an item is registered once ----


async def test_kiwoom_item_already_held_is_not_registered_on_a_second_key(
    sim: Simulator,
) -> None:
    async with Feed(Kiwoom.sim(sim.url, 1), Kiwoom.sim(sim.url, 2), options=FAST) as feed:
        first = await feed.subscribe(Kiwoom.TRADE, ["005930"])
        again = await feed.subscribe(Kiwoom.TRADE, ["005930", "000660"])
        assert again[0] is first[0]
        assert len(feed.subscription_states()) == 2
        assert sim_registered(sim) == Counter({("0B", "005930"): 1, ("0B", "000660"): 1})


# ---- SyncFeed: leaving the loop early with a full buffer ----


async def test_sync_feed_close_with_a_full_buffer_leaves_no_thread_behind(
    sim: Simulator,
) -> None:
    def blocking() -> tuple[list[str], int]:
        before = set(threading.enumerate())
        feed = SyncFeed(KIS.sim(sim.url, 7), buffer=3, options=FAST)
        try:
            feed.subscribe(KIS.TRADE, ["005930", "000660"])
            for _ in feed:
                break
            # the consumer left: the forwarder fills the buffer and then waits on it
            deadline = time.monotonic() + 10
            while not feed._items.full() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert feed._items.full()
            feed.close()
            left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
            return [t.name for t in left], len(left)
        finally:
            # unblock a forwarder thread left waiting (so that a failing run can still exit)
            with_items = feed._items
            for _ in range(10_000):
                try:
                    with_items.get_nowait()
                except queue.Empty:
                    break

    names, n = await asyncio.to_thread(blocking)
    assert n == 0, names


# ---- block policy: one timeout, then shed at once while the consumer stays stalled ----


async def test_block_policy_sheds_at_once_after_a_timeout_until_room_appears() -> None:
    q: BoundedQueue[str] = BoundedQueue(1, "block", block_timeout=0.05)
    await q.put("tick-1", droppable=True)
    await q.put("tick-2", droppable=True)  # waits block_timeout, then is dropped
    assert q.dropped == 1
    # The consumer is still stalled: the next tick must not hold the reader up again (a frame
    # of 20 ticks would otherwise hold heartbeats up for 20 x block_timeout, and so on).
    third = asyncio.create_task(q.put("tick-3", droppable=True))
    await asyncio.sleep(0)
    assert third.done()
    assert q.dropped == 2
    # account records still wait, whatever the shedding state
    order = asyncio.create_task(q.put("order-1", droppable=False))
    await asyncio.sleep(0)
    assert not order.done()
    assert await q.get() == "tick-1"
    await order
    assert await q.get() == "order-1"
    # room appeared: the block policy waits again before dropping
    await q.put("tick-4", droppable=True)
    fifth = asyncio.create_task(q.put("tick-5", droppable=True))
    await asyncio.sleep(0)
    assert not fifth.done()
    assert await q.get() == "tick-4"
    await fifth
    assert await q.get() == "tick-5" and q.dropped == 2


# ---- undecodable frames go through the bounded queue ----


class _FakeWS:
    """Just enough of a client WebSocket for the read loop: given frames, then closed. Text
    frames come as bytes, as the session's socket (decode_text=False) hands them over."""

    def __init__(self, frames: list[str]) -> None:
        self._frames = list(frames)
        self.close_code: int | None = None
        self.closed = False
        self.sent: list[str] = []

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        await asyncio.sleep(0)
        if self._frames:
            data = self._frames.pop(0).encode("utf-8")
            return aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, data, None)
        self.closed = True
        return aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)

    async def send_str(self, data: str) -> None:
        self.sent.append(data)

    def exception(self) -> BaseException | None:
        return None


def _session(feed: Feed) -> KISSession:
    cfg = KIS("review-appkey", "review-secret", rest_url="http://127.0.0.1:9")
    http: Any = None  # the read loop makes no HTTP call
    return KISSession("kis#1", cfg, http, feed, SessionOptions())


async def test_undecodable_market_frames_stay_within_the_queue_bound() -> None:
    feed = Feed(KIS("review-appkey", "review-secret"), queue_size=10, overflow="drop_oldest")
    session = _session(feed)
    # 100 H0STCNT0 frames whose field count does not match: 100 DecodeErrors of a market type
    frames = ["0|H0STCNT0|001|005930^bad"] * 100
    reason = await session._read_loop(_FakeWS(frames))  # type: ignore[arg-type]
    assert reason == "connection lost"
    assert session.stats.decode_errors == 100
    assert len(feed._queue) <= 10
    assert feed._queue.dropped == 90
    assert all(isinstance(feed._queue.get_nowait(), DecodeError) for _ in range(10))


async def test_undecodable_execution_notices_are_never_dropped() -> None:
    feed = Feed(KIS("review-appkey", "review-secret"), queue_size=2, overflow="drop_oldest")
    session = _session(feed)
    # encrypted notice frames without a key: each is an order event the reader cannot decode
    frames = ["1|H0STCNI0|001|AAAA"] * 5
    got: list[Any] = []

    async def consume() -> None:
        while len(got) < 5:
            got.append(await feed._queue.get())

    consumer = asyncio.create_task(consume())
    await session._read_loop(_FakeWS(frames))  # type: ignore[arg-type]
    await asyncio.wait_for(consumer, 5)
    assert [g.type for g in got] == ["H0STCNI0"] * 5
    assert feed._queue.dropped == 0


# ---- which refusals are retryable ----


def _kiwoom_token(answer: tuple[int, Any]) -> KiwoomToken:
    http: Any = None
    tok = KiwoomToken(http, "http://127.0.0.1:9", "review-appkey", "review-secret")

    async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return answer

    tok._post = post  # type: ignore[method-assign]
    return tok


@pytest.mark.parametrize("code", ["1700", "1701", "1702"])
async def test_kiwoom_token_rate_limit_is_transient(code: str) -> None:
    answer = {"return_code": 5, "return_msg": f"[{code}:허용된 요청 개수를 초과하였습니다]"}
    with pytest.raises(TransientError):
        await _kiwoom_token((200, answer))._issue()


async def test_kiwoom_bad_secret_is_still_fatal() -> None:
    answer = {"return_code": 3, "return_msg": "[8002:App Key와 Secret Key 검증에 실패했습니다]"}
    with pytest.raises(AuthError) as e:
        await _kiwoom_token((200, answer))._issue()
    assert "review-secret" not in str(e.value)
