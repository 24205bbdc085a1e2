"""(Un)subscribe replies that never come, against the simulator's ``swallow_replies`` fault (the
request takes effect, its reply is not sent), for both brokers: the request is sent once more
and the broker's answer to the repeat confirms it; data confirms a subscription whose reply is
awaited; with no answer at all a subscribe fails "no reply" and is still confirmed by its data
or replayed by the next connection; an unsubscribe is never left pending."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from krfeed import (
    KIS,
    Feed,
    Kiwoom,
    Reconnected,
    Subscribed,
    SubscribeFailed,
    SubState,
    Unsubscribed,
)
from krfeed.records.base import Record
from krfeed.sim import SimConfig, Simulator

from .helpers import FAST, collect, wait_for

REPLY_TIMEOUT = 0.5
NO_REPLY = f"no reply from the broker within {REPLY_TIMEOUT:g} s (sent twice)"
OPTS = dataclasses.replace(FAST, reply_timeout=REPLY_TIMEOUT)
BROKERS = ["kiwoom", "kis"]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    # no market data of its own: every record in these tests is pushed by the test
    async with Simulator(SimConfig(port=0, seed=3, rate=0.0, ping_interval=0.3)) as s:
        yield s


def config(broker: str, sim: Simulator) -> Kiwoom | KIS:
    return Kiwoom.sim(sim.url, 1) if broker == "kiwoom" else KIS.sim(sim.url, 1)


def trade(broker: str) -> Any:
    return Kiwoom.TRADE if broker == "kiwoom" else KIS.TRADE


def code(broker: str) -> str:
    return "0B" if broker == "kiwoom" else "H0STCNT0"


def registered(sim: Simulator) -> Counter[tuple[str, str]]:
    regs: Counter[tuple[str, str]] = Counter()
    for c in sim.conns.values():
        if not c.closed:
            regs.update(c.registrations() if c.broker == "kiwoom" else c.kis_subs.keys())
    return regs


def settled(items: list[Any]) -> list[tuple[str, str, str]]:
    """The subscription events of ``items``: (event, item, reason)."""
    kinds = Subscribed | SubscribeFailed | Unsubscribed
    return [
        (type(i).__name__, i.item, getattr(i, "reason", "")) for i in items if isinstance(i, kinds)
    ]


async def connected(feed: Feed) -> None:
    await wait_for(lambda: all(s.connected for s in feed.sessions))


async def push_trades(sim: Simulator, broker: str, n: int = 3) -> None:
    """``n`` trades of 005930 to every connection subscribed to the broker's trade type."""
    await wait_for(lambda: registered(sim)[(code(broker), "005930")] == 1)
    await sim.bench(broker, code(broker), ["005930"], count=n)


def trades_of(items: list[Any]) -> list[str]:
    return [i.item for i in items if isinstance(i, Record)]


@pytest.mark.parametrize("broker", BROKERS)
async def test_a_lost_reply_is_asked_again_and_the_answer_confirms(
    sim: Simulator, broker: str
) -> None:
    async with Feed(config(broker, sim), options=OPTS) as feed:
        await connected(feed)
        sim.fault("swallow_replies", broker=broker, count=1)
        subs = await feed.subscribe(trade(broker), ["005930"])
        assert [(s.state, s.reason) for s in subs] == [(SubState.CONFIRMED, "")]
        stats = feed.stats()
        assert stats["reply_timeouts"] == 1
        assert stats["subscriptions"] == {
            "desired": 0,
            "pending": 0,
            "confirmed": 1,
            "failed": 0,
            "unanswered": 0,
        }
        assert sim.stats()["replies_swallowed"] == 1
        replies = sim.stats()["frames_sent"][broker]
        if broker == "kis":  # the repeat is answered "already subscribed", which confirms
            assert (replies.get("OPSP0000", 0), replies.get("OPSP0002", 0)) == (0, 1)
        else:  # REG with refresh 1 again: accepted
            assert replies.get("REG", 0) == 1
        await push_trades(sim, broker)
        items = await collect(feed, lambda it: len(trades_of(it)) == 3)
        assert trades_of(items) == ["005930"] * 3
        assert settled(items) == [("Subscribed", "005930", "")]


@pytest.mark.parametrize("broker", BROKERS)
async def test_data_confirms_a_subscribe_whose_reply_was_lost(sim: Simulator, broker: str) -> None:
    opts = dataclasses.replace(OPTS, reply_timeout=60.0)  # data comes long before a repeat
    async with Feed(config(broker, sim), options=opts) as feed:
        await connected(feed)
        sim.fault("swallow_replies", broker=broker, count=1)
        (sub,) = await feed.subscribe(trade(broker), ["005930"], wait=False)
        await push_trades(sim, broker, 1)
        items = await collect(feed, lambda it: len(trades_of(it)) == 1)
        assert (sub.state, sub.reason) == (SubState.CONFIRMED, "")
        # the stream says it is subscribed before its first record
        events = [i for i in items if isinstance(i, Subscribed | Record)]
        assert [("record" if isinstance(i, Record) else "Subscribed", i.item) for i in events] == [
            ("Subscribed", "005930"),
            ("record", "005930"),
        ]
        assert feed.stats()["reply_timeouts"] == 0
        assert sim.stats()["replies_swallowed"] == 1


@pytest.mark.parametrize("broker", BROKERS)
async def test_no_reply_at_all_fails_then_data_confirms(sim: Simulator, broker: str) -> None:
    async with Feed(config(broker, sim), options=OPTS) as feed:
        await connected(feed)
        sim.fault("swallow_replies", broker=broker, count=2)
        (sub,) = await feed.subscribe(trade(broker), ["005930"])
        assert (sub.state, sub.reason, sub.code, sub.unanswered) == (
            SubState.FAILED,
            NO_REPLY,
            "",
            True,
        )
        stats = feed.stats()
        assert stats["subscriptions"]["failed"] == stats["subscriptions"]["unanswered"] == 1
        assert stats["reply_timeouts"] == 2
        assert stats["sessions"][f"{broker}#1"]["registrations"] == 1  # the broker may hold it
        assert sim.stats()["replies_swallowed"] == 2
        # the broker did register it (only the replies were lost): its data confirms it
        await push_trades(sim, broker)
        items = await collect(feed, lambda it: len(trades_of(it)) == 3)
        assert trades_of(items) == ["005930"] * 3
        assert settled(items) == [
            ("SubscribeFailed", "005930", NO_REPLY),
            ("Subscribed", "005930", ""),
        ]
        (failed,) = [i for i in items if isinstance(i, SubscribeFailed)]
        assert (failed.code, failed.unanswered, failed.session) == ("", True, f"{broker}#1")
        assert (sub.state, sub.reason, sub.unanswered) == (SubState.CONFIRMED, "", False)
        assert feed.stats()["subscriptions"]["confirmed"] == 1


@pytest.mark.parametrize("broker", BROKERS)
async def test_an_unanswered_subscribe_is_replayed_by_the_next_connection(
    sim: Simulator, broker: str
) -> None:
    async with Feed(config(broker, sim), options=OPTS) as feed:
        await connected(feed)
        sim.fault("swallow_replies", broker=broker, count=2)
        (sub,) = await feed.subscribe(trade(broker), ["005930"])
        assert (sub.state, sub.reason) == (SubState.FAILED, NO_REPLY)
        sim.fault("drop", broker=broker)
        items = await collect(feed, lambda it: len(settled(it)) == 2)
        assert settled(items) == [
            ("SubscribeFailed", "005930", NO_REPLY),
            ("Subscribed", "005930", ""),
        ]
        assert any(isinstance(i, Reconnected) for i in items)
        assert (sub.state, sub.reason) == (SubState.CONFIRMED, "")
        assert registered(sim) == Counter({(code(broker), "005930"): 1})


@pytest.mark.parametrize("broker", BROKERS)
@pytest.mark.parametrize("lost", [1, 2])
async def test_an_unsubscribe_is_never_left_pending(sim: Simulator, broker: str, lost: int) -> None:
    async with Feed(config(broker, sim), options=OPTS) as feed:
        await feed.subscribe(trade(broker), ["005930", "000660"])
        sim.fault("swallow_replies", broker=broker, op="unsubscribe", count=lost)
        await feed.unsubscribe(trade(broker), ["005930"])
        items = await collect(feed, lambda it: any(isinstance(i, Unsubscribed) for i in it))
        # one lost reply: the repeat is answered (KIS: OPSP0003 not found; Kiwoom: REMOVE 0);
        # two: it counts as removed without the broker's word, and says so
        reason = "" if lost == 1 else f"{NO_REPLY}; counted as removed"
        assert settled(items)[-1] == ("Unsubscribed", "005930", reason)
        assert [(s.item, s.state) for s in feed.subscription_states()] == [
            ("000660", SubState.CONFIRMED)
        ]
        assert feed.stats()["reply_timeouts"] == lost
        assert registered(sim) == Counter({(code(broker), "000660"): 1})


async def test_a_run_goes_on_when_its_only_subscribe_is_unanswered(sim: Simulator) -> None:
    from krfeed.runner import Watch

    async with Feed(config("kis", sim), options=OPTS) as feed:
        watch = Watch(feed)
        await connected(feed)
        sim.fault("swallow_replies", broker="kis", count=2)
        (sub,) = await feed.subscribe(KIS.TRADE, ["005930"])
        assert sub.unanswered
        items = await collect(feed, lambda it: bool(settled(it)))
        # not "every subscription was refused": its data may still come
        assert [watch.see(i) for i in items][-1] == ""
        assert watch.refused == {"kis H0STCNT0 005930": NO_REPLY}


@pytest.mark.parametrize("broker", BROKERS)
async def test_an_unsubscribe_is_not_repeated_after_the_code_was_subscribed_again(
    sim: Simulator, broker: str
) -> None:
    async with Feed(config(broker, sim), options=OPTS) as feed:
        await feed.subscribe(trade(broker), ["005930"])
        sim.fault("swallow_replies", broker=broker, op="unsubscribe", count=1)
        await feed.unsubscribe(trade(broker), ["005930"])
        (again,) = await feed.subscribe(trade(broker), ["005930"])
        assert (again.state, again.reason) == (SubState.CONFIRMED, "")
        # a repeated unsubscribe would go out after the new subscribe and remove it
        await wait_for(lambda: not feed.sessions[0].table.leaving)
        await push_trades(sim, broker, 1)
        items = await collect(feed, lambda it: len(trades_of(it)) == 1)
        assert trades_of(items) == ["005930"]
        assert registered(sim) == Counter({(code(broker), "005930"): 1})
        assert (again.state, again.reason) == (SubState.CONFIRMED, "")


async def test_a_lost_reply_with_the_aes_key_reconnects_for_a_new_one(sim: Simulator) -> None:
    """KIS execution notices: the SUBSCRIBE SUCCESS reply carries the AES key. When it is lost,
    the repeat is answered OPSP0002 (already subscribed) without one, and every notice would be
    undecryptable: the session reconnects at once, registers afresh, gets a key, and a fill
    placed afterwards arrives as a record, not a decode error."""
    from krfeed.brokers.base import sim_appkey
    from krfeed.protocol.messages import DecodeError

    async with Feed(KIS.sim(sim.url, 1), options=OPTS) as feed:
        await connected(feed)
        sim.fault("swallow_replies", broker="kis", count=1)
        (sub,) = await feed.subscribe(KIS.EXECUTION_NOTICE)
        items: list[Any] = await collect(
            feed, lambda it: any(isinstance(i, Reconnected) for i in it)
        )
        await wait_for(lambda: sub.state is SubState.CONFIRMED and feed.sessions[0].connected)
        await sim.place_order("kis", code="005930", qty=1, appkey=sim_appkey(1))
        items += await collect(
            feed, lambda it: any(isinstance(i, Record | DecodeError) for i in it)
        )
    (disconnect,) = [i for i in items if type(i).__name__ == "Disconnected"]
    assert "no AES key for H0STCNI0" in disconnect.reason
    (notice,) = [i for i in items if isinstance(i, Record | DecodeError)]
    assert isinstance(notice, Record) and notice.type == "H0STCNI0"
    assert notice.code == "005930"  # type: ignore[attr-defined]


async def test_a_kiwoom_refusal_after_a_lost_reply_is_not_pinned_on_the_wrong_request(
    sim: Simulator,
) -> None:
    """Kiwoom's REG replies name no request. The reply to A (005930) is lost; B (BAD!!) is
    refused: that refusal reaches the session while B is still in flight behind A, so it may be
    B's — A fails *unanswered* (not refused), B is asked again alone and then refused for sure,
    and A's data confirms it (the broker held it all along)."""
    async with Feed(config("kiwoom", sim), options=OPTS) as feed:
        await connected(feed)
        sim.fault("swallow_replies", broker="kiwoom", count=1)
        (good,) = await feed.subscribe(Kiwoom.TRADE, ["005930"], wait=False)
        (bad,) = await feed.subscribe(Kiwoom.TRADE, ["BAD!!"], wait=False)
        await wait_for(lambda: good.state is SubState.FAILED)
        assert good.unanswered and "(possibly the reply to a later REG)" in good.reason
        await wait_for(lambda: bad.state is SubState.FAILED, 10)
        assert not bad.unanswered and "possibly" not in bad.reason
        await push_trades(sim, "kiwoom", 1)
        items = await collect(feed, lambda it: len(trades_of(it)) == 1)
        assert good.state is SubState.CONFIRMED
    failed = [e for e in settled(items) if e[0] == "SubscribeFailed"]
    assert [(e[1], "possibly" in e[2]) for e in failed] == [("005930", True), ("BAD!!", False)]
    assert ("Subscribed", "005930", "") in settled(items)
