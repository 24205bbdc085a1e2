"""A silent socket is noticed in about three heartbeats, not after the fixed idle timeout.

The simulator pings every 0.5 s; its ``half_open`` fault keeps both sides' sockets open while
nothing flows either way, for 20 s. The session's fixed ``idle_timeout`` is 60 s here, so only
the learned cadence can notice the dead socket before the simulator gives up on it: the
``Disconnected`` reason says which limit fired and how many heartbeats it was (no wall-clock
assertions)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from krfeed import KIS, Disconnected, Feed, Kiwoom, Record, SessionOptions, Subscribed
from krfeed.sim import SimConfig, Simulator

from .helpers import FAST, collect

OPTS = SessionOptions(**{**FAST.__dict__, "idle_timeout": 60.0, "idle_floor": 1.0})
LEARNED = re.compile(
    r"no frame for (?P<limit>[\d.]+)s, (?P<beats>[\d.]+) heartbeats at the learned interval "
    r"of (?P<interval>[\d.]+)s \(half-open connection\)"
)
CUTS = 5


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(rate=5, ping_interval=0.5, ping_timeout=30.0)) as s:
        yield s


def both_back(items: list[Any]) -> bool:
    """Both sessions disconnected and confirmed their subscription again."""
    downs = sum(isinstance(i, Disconnected) for i in items)
    return downs >= 2 and sum(isinstance(i, Subscribed) for i in items) >= 2


async def test_half_open_sockets_noticed_after_three_learned_heartbeats(sim: Simulator) -> None:
    async with Feed(Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 2), options=OPTS) as feed:
        await feed.subscribe(Kiwoom.TRADE, ["005930"])
        await feed.subscribe(KIS.TRADE, ["005930"])
        items: list[Any] = []

        def learned() -> bool:
            return all(s.stats.heartbeat_interval is not None for s in feed.sessions)

        items += await collect(feed, lambda _: learned(), timeout=15)
        for _ in range(CUTS):
            sim.fault("half_open", seconds=20.0)
            items += await collect(feed, both_back, timeout=19)
        items += await collect(feed, lambda it: sum(isinstance(i, Record) for i in it) >= 4)
        stats = feed.stats()["sessions"]

    downs = [i for i in items if isinstance(i, Disconnected)]
    assert len(downs) == 2 * CUTS
    assert {d.session for d in downs} == {"kiwoom#1", "kis#1"}
    for d in downs:
        m = LEARNED.fullmatch(d.reason)
        # the learned limit, not the 60 s fallback nor the simulator's abort after 20 s
        assert m is not None, d.reason
        assert 3.0 <= float(m["beats"]) <= 4.0  # three heartbeats (or the 1 s floor)
        assert float(m["limit"]) < 60.0
    for name in ("kiwoom#1", "kis#1"):
        assert stats[name]["heartbeat_interval"] is not None
        assert stats[name]["idle_limit"] < 60.0
        assert stats[name]["reconnects"] == CUTS
    assert sim.stats()["faults"] == {"half_open": CUTS}
