"""Coming back fast after an outage: the socket alone is retried quickly while the cached token /
approval key is valid; authentication and refusals keep the slow, capped backoff.

The simulator's ``outage`` fault aborts every WebSocket and answers new handshakes with HTTP 503
for a while (REST stays up). The sessions run with the default backoff (0.5 s base, 30 s cap)
and the default 2 s cap of the socket path. The assertions are on the engine's decisions (the
path and delay of every ``Reconnecting``, the token / approval requests the simulator saw); the
measured gap between the end of an outage and the first record after it is printed
(``pytest -s``), never asserted."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from krfeed import (
    KIS,
    Feed,
    Kiwoom,
    Reconnected,
    Reconnecting,
    Record,
    SessionFailed,
    SessionOptions,
    Subscribed,
)
from krfeed.sim import SimConfig, Simulator

from .helpers import FAST, wait_for

OPTS = SessionOptions(
    **{**FAST.__dict__, "backoff_base": 0.5, "backoff_cap": 30.0, "reconnect_cap": 2.0}
)
CUTS = 6
OUTAGE = 2.0


class Collector:
    """Every item of the feed with the monotonic time it was seen."""

    def __init__(self, feed: Feed) -> None:
        self.items: list[tuple[float, Any]] = []
        self.task = asyncio.create_task(self._run(feed))

    async def _run(self, feed: Feed) -> None:
        async for item in feed:
            self.items.append((time.monotonic(), item))

    def of(self, cls: type, session: str | None = None) -> list[Any]:
        return [
            i
            for _, i in self.items
            if isinstance(i, cls) and (session is None or getattr(i, "session", "") == session)
        ]

    def first_record_after(self, broker: str, t: float) -> float | None:
        for at, i in self.items:
            if at > t and isinstance(i, Record) and i.broker == broker:
                return at
        return None

    def since(self, t: float, pred: Callable[[Any], bool]) -> list[Any]:
        return [i for at, i in self.items if at > t and pred(i)]

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(port=0, seed=14, rate=20.0, ping_interval=0.5)) as s:
        yield s


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def test_after_an_outage_only_the_socket_is_retried_within_the_short_cap(
    sim: Simulator,
) -> None:
    gaps: list[float] = []
    async with Feed(Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 2), options=OPTS) as feed:
        got = Collector(feed)
        try:
            await feed.subscribe(Kiwoom.TRADE, ["005930"])
            await feed.subscribe(KIS.TRADE, ["005930"])
            start = time.monotonic()
            for _ in range(CUTS):
                await wait_for(
                    lambda t=start: all(
                        got.first_record_after(b, t) is not None for b in ("kiwoom", "kis")
                    )
                )
                sim.fault("outage", seconds=OUTAGE)
                end = sim.faults.outages[-1][0]  # when the simulator takes handshakes again
                await wait_for(
                    lambda e=end: all(
                        got.first_record_after(b, e) is not None for b in ("kiwoom", "kis")
                    ),
                    OUTAGE + 10,
                )
                for b in ("kiwoom", "kis"):
                    first = got.first_record_after(b, end)
                    assert first is not None
                    gaps.append(first - end)
                start = time.monotonic()
            stats = feed.stats()["sessions"]
        finally:
            await got.stop()

    retries = got.of(Reconnecting)
    # every retry: the socket path, within the short cap, with the cached credential
    assert {r.path for r in retries} == {"socket"}, {(r.path, r.reason) for r in retries}
    assert max(r.delay for r in retries) <= 2.0
    refused = [r for r in retries if "503" in r.reason]
    assert refused, "the outage refused no handshake"
    assert len(retries) > 2 * CUTS  # the outage was retried through, not waited out
    # the auth endpoints were hit once per session: the first token / approval key
    logins = sim.stats()["logins"]
    assert logins["kiwoom"].get("tokens") == 1 and not logins["kiwoom"].get("token_refused")
    assert logins["kis"].get("ok") == 1 and not logins["kis"].get("failed")
    for name in ("kiwoom#1", "kis#1"):
        assert stats[name]["reconnects"] == CUTS
        assert len(got.of(Reconnected, name)) == CUTS
    assert got.of(SessionFailed) == []
    assert sim.stats()["faults"] == {"outage": CUTS}
    print(
        f"\ndata flowing again after a {OUTAGE:g}s outage ended ({len(gaps)} gaps, "
        f"reconnect_cap 2s): p50 {statistics.median(gaps):.2f}s, "
        f"p95 {percentile(gaps, 95):.2f}s, max {max(gaps):.2f}s; "
        f"{len(retries)} retries, largest delay {max(r.delay for r in retries):.2f}s"
    )


async def test_refusals_and_authentication_keep_the_slow_paced_path(sim: Simulator) -> None:
    async with Feed(Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 2), options=OPTS) as feed:
        got = Collector(feed)
        try:
            await feed.subscribe(Kiwoom.TRADE, ["005930"])
            await feed.subscribe(KIS.TRADE, ["005930"])
            await wait_for(lambda: len(got.of(Record)) >= 4)
            before = sim.stats()["logins"]
            t = time.monotonic()
            # logins, approval keys and KIS subscribes refused for a while, then a cut
            sim.fault("refuse_logins", seconds=1.5)
            sim.fault("drop")
            for b in ("kiwoom", "kis"):
                await wait_for(
                    lambda b=b, t=t: any(
                        isinstance(i, Record) and i.broker == b
                        for i in got.since(t, lambda _: True)
                    ),
                    20,
                )
            after = sim.stats()["logins"]
        finally:
            await got.stop()

    retries = got.since(t, lambda i: isinstance(i, Reconnecting))
    paths = {(r.session, r.path) for r in retries}
    # the cut itself: the socket path (the cached credential was still valid)
    assert ("kiwoom#1", "socket") in paths and ("kis#1", "socket") in paths
    refusals = [r for r in retries if "LOGIN refused" in r.reason or "EGW00133" in r.reason]
    assert refusals
    # a refusal never takes the quick path: at once after a renewal, else the capped backoff
    assert {r.path for r in refusals} <= {"now", "backoff"}
    for r in retries:
        if r.path == "socket":
            assert r.delay <= 2.0
    # every token / approval request after the cut followed a decision of the slow path (or
    # the renewal of a refused token): no request per quick retry
    for broker, session, asked in (
        ("kiwoom", "kiwoom#1", ("tokens", "token_refused")),
        ("kis", "kis#1", ("ok", "failed")),
    ):
        requests = sum(after[broker].get(k, 0) - before[broker].get(k, 0) for k in asked)
        slow = [r for r in retries if r.session == session and r.path != "socket"]
        assert 1 <= requests <= len(slow) + 1, (broker, requests, [r.reason for r in slow])
    assert got.of(SessionFailed) == []
    assert len(got.since(t, lambda i: isinstance(i, Subscribed))) >= 2
