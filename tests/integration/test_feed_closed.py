"""A feed used after close(): every request raises FeedClosed at once, in one sentence, and
nothing is started again — against the simulator, for a feed that ran, one that never started,
a subscribe that was waiting when the feed closed, and the blocking wrapper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from krfeed import KIS, Connected, Feed, FeedClosed, Kiwoom, SubscriptionError, SubState, SyncFeed
from krfeed.conditions import ConditionError
from krfeed.sim import SimConfig, Simulator

from .helpers import FAST, wait_for


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(port=0, seed=5, rate=10.0, ping_interval=0.3)) as s:
        yield s


def requests(feed: Feed) -> list[tuple[str, Callable[[], Awaitable[Any]], str]]:
    """Every request of a Feed: (name, call, the sentence it must raise after close)."""
    return [
        ("subscribe", lambda: feed.subscribe(KIS.TRADE, ["005930"], timeout=30), "subscribe"),
        ("unsubscribe", lambda: feed.unsubscribe(KIS.TRADE, ["005930"]), "unsubscribe"),
        ("conditions", lambda: feed.conditions(), "list the saved conditions"),
        ("search", lambda: feed.search("1"), "search condition 1"),
        ("watch", lambda: feed.watch("1"), "watch condition 1"),
        ("unwatch", lambda: feed.unwatch("1"), "unwatch condition 1"),
        ("start", lambda: feed.start(), "start"),
    ]


async def test_every_request_after_close_raises_and_starts_nothing(sim: Simulator) -> None:
    feed = Feed(Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 1), options=FAST)
    async with feed:
        subs = await feed.subscribe(KIS.TRADE, ["005930"])
        assert [s.state for s in subs] == [SubState.CONFIRMED]
    connections = dict(sim.connections_total)
    for name, call, what in requests(feed):
        with pytest.raises(FeedClosed) as err:
            await call()
        assert str(err.value) == f"cannot {what}: the feed is closed (make a new Feed)", name
    assert isinstance(err.value, SubscriptionError) and isinstance(err.value, ConditionError)
    assert [s.stats.state for s in feed.sessions] == ["closed", "closed"]
    assert dict(sim.connections_total) == connections
    # the stream of a closed feed ends after what was queued before the close
    left = [i async for i in feed]
    assert sorted(i.session for i in left if isinstance(i, Connected)) == ["kis#1", "kiwoom#1"]


async def test_a_feed_closed_before_it_started_stays_closed(sim: Simulator) -> None:
    feed = Feed(Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 1), options=FAST)
    await feed.close()
    for name, call, what in requests(feed):
        with pytest.raises(FeedClosed) as err:
            await call()
        assert str(err.value) == f"cannot {what}: the feed is closed (make a new Feed)", name
        assert feed.sessions == [], name
    with pytest.raises(FeedClosed):
        async with feed:
            pass
    assert [i async for i in feed] == []
    assert sum(sim.connections_total.values()) == 0


async def test_a_subscribe_waiting_when_the_feed_closes_raises(sim: Simulator) -> None:
    sim.fault("delay_handshake", broker="kis", seconds=60.0)  # the session never logs in
    feed = Feed(KIS.sim(sim.url, 1), options=FAST)
    await feed.start()
    waiting = asyncio.create_task(feed.subscribe(KIS.TRADE, ["005930"], timeout=60))
    await wait_for(lambda: bool(feed.subscription_states()))
    await feed.close(timeout=1.0)
    with pytest.raises(FeedClosed) as err:
        await waiting
    assert (
        str(err.value) == "cannot wait for the subscriptions: the feed is closed (make a new Feed)"
    )


async def test_the_blocking_wrapper_after_close(sim: Simulator) -> None:
    def use_after_close() -> list[str]:
        feed = SyncFeed(KIS.sim(sim.url, 1), options=FAST)
        feed.subscribe(KIS.TRADE, ["005930"])
        feed.close()
        said = []
        for call in (
            lambda: feed.subscribe(KIS.TRADE, ["000660"]),
            lambda: feed.unsubscribe(KIS.TRADE, ["005930"]),
        ):
            with pytest.raises(FeedClosed) as err:
                call()
            said.append(str(err.value))
        return said

    assert await asyncio.to_thread(use_after_close) == [
        "cannot subscribe: the feed is closed (make a new SyncFeed)",
        "cannot unsubscribe: the feed is closed (make a new SyncFeed)",
    ]
