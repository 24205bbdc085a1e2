"""The simulator's opening profile through a Feed over several app keys: every record the
profile hands out arrives (values, per code), the busy codes carry most of them, names come
from the universe, and the profile's schedule is kept (counts by the integral, not by time)."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp

from krfeed import KIS, Feed
from krfeed.brokers import sim_appkey, sim_secret
from krfeed.records.base import Record
from krfeed.session import SubState
from krfeed.sim import SimConfig, Simulator
from krfeed.sim.market import on_grid
from krfeed.sim.universe import OpeningProfile, activity_weights, universe_codes


async def test_opening_profile_over_three_keys_delivers_every_record() -> None:
    codes = universe_codes("krx", 100)
    profile = OpeningProfile(burst_rate=3000, burst_seconds=0.5, steady_rate=1000, duration=1.0)
    keys = {sim_appkey(n): sim_secret(n) for n in range(1, 4)}
    cfg = SimConfig(credentials=keys, universe="krx", profile=profile, profile_start="manual")
    async with Simulator(cfg) as sim:
        brokers = [KIS.sim(sim.url, n) for n in range(1, 4)]
        async with Feed(*brokers) as feed:
            subs = await feed.subscribe(KIS.TRADE, codes)
            assert all(s.state is SubState.CONFIRMED for s in subs)
            # 100 codes over 3 keys of 41: 34 / 33 / 33
            assert sorted(s.registrations() for s in feed.sessions) == [33, 33, 34]
            async with aiohttp.ClientSession() as http:
                async with http.post(sim.url + "/_sim/profile", json={"action": "start"}) as r:
                    assert (await r.json())["ok"] is True
                async with http.get(sim.url + "/_sim/universe") as r:
                    listings = (await r.json())["listings"]
            assert listings[0] == {
                "code": "005930",
                "name": "삼성전자",
                "market": "KOSPI",
                "rank": 0,
            }
            expected = int(profile.total(1.0))
            assert expected == 2000
            got: Counter[str] = Counter()
            async with asyncio.timeout(20):
                async for item in feed:
                    if isinstance(item, Record):
                        assert item.type == "H0STCNT0"
                        assert on_grid(item.current_price)  # a KRX price, on the tick grid
                        got[item.code] += 1
                        if sum(got.values()) >= expected:
                            break
            stats = sim.stats()["profile"]
        assert stats["records_queued"] == expected and stats["records_dropped"] == 0
        assert stats["subscriptions"] == 100
        assert sum(got.values()) == expected
        assert sim.market.instrument("005930").name == "삼성전자"
        assert sim.market.instrument(codes[99]).name.startswith("가상코")
    # the most active code carries about 1/H(100) of the records (~19 %), the tenth ~1.9 %
    w = activity_weights(codes)
    top = got[codes[0]] / expected
    assert abs(top - w[0] / sum(w)) < 0.05
    assert got[codes[0]] > got[codes[9]] > 0
    assert sum(got[c] for c in codes[:10]) > sum(got[c] for c in codes[50:])


async def test_profile_starts_at_the_first_subscription_and_replaces_rate() -> None:
    profile = OpeningProfile(burst_rate=400, burst_seconds=0.25, steady_rate=0, duration=0.5)
    cfg = SimConfig(rate=50.0, profile=profile)  # rate would add 50/s per code without it
    async with Simulator(cfg) as sim, Feed(KIS.sim(sim.url)) as feed:
        await feed.subscribe(KIS.PROGRAM_TRADING, ["005930", "000660"])
        got: Counter[str] = Counter()
        async with asyncio.timeout(10):
            async for item in feed:
                if isinstance(item, Record):
                    got[item.code] += 1
                    if sum(got.values()) >= 100:
                        break
        await asyncio.sleep(0.6)  # the profile is over: nothing more comes
        assert sim.stats()["profile"]["records_queued"] == 100
        assert sim.stats()["records_sent"]["kis"].get("H0STPGM0") == 100
        assert set(got) <= {"005930", "000660"} and got["005930"] > got["000660"]
