"""Data flowing again after an outage: the seconds from the moment the simulator takes
WebSocket handshakes again to the first record of each session, for krfeed's two-path reconnect
(``reconnect_cap`` 2 s, the default) beside the single capped backoff it replaced
(``reconnect_cap=None``: 0.5 s base, 30 s cap, full jitter), both feeds through the same outages
of the same simulator (the ``outage`` fault: WebSockets aborted, handshakes answered 503).

    python benchmarks/reconnect.py [--cuts 6] [--outage 10] [--json]

Takes about cuts x (outage + the slow policy's gap): 4 minutes with the defaults. Timing is
never a test: tests/integration/test_reconnect_gap.py asserts the decisions instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from krfeed import KIS, Feed, Kiwoom, Reconnecting, Record, SessionOptions
from krfeed.sim import SimConfig, Simulator

POLICIES = {
    "two paths (reconnect_cap 2 s)": SessionOptions(market_hours=None, stall_timeout=None),
    "backoff only (cap 30 s)": SessionOptions(
        market_hours=None, stall_timeout=None, reconnect_cap=None
    ),
}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def run(cuts: int, outage: float) -> dict[str, Any]:
    seen: dict[str, list[float]] = {}  # "policy/broker" -> arrival times of records
    retries: dict[str, list[Reconnecting]] = {p: [] for p in POLICIES}

    async def consume(feed: Feed, policy: str) -> None:
        async for item in feed:
            if isinstance(item, Record):
                seen.setdefault(f"{policy}/{item.broker}", []).append(time.monotonic())
            elif isinstance(item, Reconnecting):
                retries[policy].append(item)

    def all_after(t: float) -> bool:
        return all(
            any(at > t for at in seen.get(f"{p}/{b}", []))
            for p in POLICIES
            for b in ("kiwoom", "kis")
        )

    gaps: dict[str, list[float]] = {p: [] for p in POLICIES}
    cfg = SimConfig(port=0, seed=14, rate=20.0, ping_interval=1.0)
    async with Simulator(cfg) as sim:
        feeds = []
        tasks = []
        for n, (policy, opts) in enumerate(POLICIES.items()):
            feed = Feed(Kiwoom.sim(sim.url, 2 * n + 1), KIS.sim(sim.url, 2 * n + 2), options=opts)
            await feed.start()
            await feed.subscribe(Kiwoom.TRADE, ["005930"])
            await feed.subscribe(KIS.TRADE, ["005930"])
            feeds.append(feed)
            tasks.append(asyncio.create_task(consume(feed, policy)))
        try:
            mark = time.monotonic()
            for cut in range(cuts):
                while not all_after(mark):
                    await asyncio.sleep(0.05)
                sim.fault("outage", seconds=outage)
                end = sim.faults.outages[-1][0]
                deadline = end + 120
                while not all_after(end) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                for p in POLICIES:
                    for b in ("kiwoom", "kis"):
                        first = next((at for at in seen.get(f"{p}/{b}", []) if at > end), None)
                        if first is not None:
                            gaps[p].append(first - end)
                print(
                    f"cut {cut + 1}/{cuts}: "
                    + "; ".join(
                        f"{p}: {', '.join(f'{g:.1f}' for g in gaps[p][-2:])}s" for p in POLICIES
                    ),
                    file=sys.stderr,
                )
                mark = time.monotonic()
        finally:
            for t in tasks:
                t.cancel()
            for f in feeds:
                await f.close()
    out: dict[str, Any] = {"cuts": cuts, "outage": outage, "policies": {}}
    for p, g in gaps.items():
        out["policies"][p] = {
            "gaps": [round(x, 3) for x in g],
            "p50": round(statistics.median(g), 2),
            "p95": round(_pct(g, 95), 2),
            "max": round(max(g), 2),
            "retries": len(retries[p]),
            "largest_delay": max((r.delay for r in retries[p]), default=0.0),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cuts", type=int, default=6)
    ap.add_argument("--outage", type=float, default=10.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = asyncio.run(run(a.cuts, a.outage))
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print(f"data flowing again after a {a.outage:g} s outage ended, {a.cuts} outages x 2 sessions")
    for p, r in res["policies"].items():
        print(
            f"  {p:32} p50 {r['p50']:5.2f} s  p95 {r['p95']:5.2f} s  max {r['max']:5.2f} s  "
            f"({r['retries']} retries, largest delay {r['largest_delay']:.1f} s)"
        )


if __name__ == "__main__":
    main()
