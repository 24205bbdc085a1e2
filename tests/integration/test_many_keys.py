"""One process over 101 app keys (past aiohttp's default of 100 connections): the whole market
(2,700 H0STCNT0 codes + 1,400 H0STPGM0) subscribes and confirms, 41 per key, and a short
opening burst arrives in full. Pacing is shortened for the test (the defaults are documented
in SessionOptions)."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp

from krfeed import KIS, Feed
from krfeed.brokers import sim_appkey, sim_secret
from krfeed.records.base import Record
from krfeed.session import SessionOptions, SubState
from krfeed.sim import SimConfig, Simulator
from krfeed.sim.universe import OpeningProfile, universe_codes

KEYS = 101


async def test_whole_market_over_101_keys_in_one_process() -> None:
    creds = {sim_appkey(n): sim_secret(n) for n in range(1, KEYS + 1)}
    profile = OpeningProfile(burst_rate=8000, burst_seconds=0.5, steady_rate=0, duration=0.5)
    cfg = SimConfig(credentials=creds, universe="krx", profile=profile, profile_start="manual")
    opts = SessionOptions(subscribe_interval=0.001, connect_interval=0.005)
    async with Simulator(cfg) as sim:
        brokers = [KIS.sim(sim.url, n) for n in range(1, KEYS + 1)]
        async with Feed(*brokers, options=opts, queue_size=50_000) as feed:
            trades = await feed.subscribe(KIS.TRADE, universe_codes("krx"), timeout=60)
            pgm = await feed.subscribe(KIS.PROGRAM_TRADING, universe_codes("krx", 1400), timeout=60)
            assert len(trades) == 2700 and len(pgm) == 1400
            assert Counter(s.state for s in trades + pgm) == {SubState.CONFIRMED: 4100}
            regs = sorted(s.registrations() for s in feed.sessions)
            assert regs[0] >= 40 and regs[-1] == 41 and sum(regs) == 4100
            st = sim.stats()
            assert st["connections"]["kis"]["current"] == KEYS
            assert st["subscriptions"]["kis"] == 4100
            assert st["logins"]["kis"] == {"ok": KEYS}
            async with (
                aiohttp.ClientSession() as http,
                http.post(sim.url + "/_sim/profile", json={}) as r,
            ):
                assert r.status == 200
            got: Counter[str] = Counter()
            async with asyncio.timeout(30):
                async for item in feed:
                    if isinstance(item, Record):
                        got[item.type] += 1
                        if sum(got.values()) >= 4000:
                            break
            assert sim.stats()["profile"]["records_queued"] == 4000
            assert sim.stats()["profile"]["records_dropped"] == 0
            assert feed.stats()["dropped"] == 0
        # both types drawn by activity; the 2,700 trade codes outnumber the 1,400 others
        assert got["H0STCNT0"] + got["H0STPGM0"] == 4000
        assert got["H0STCNT0"] > got["H0STPGM0"] > 0
