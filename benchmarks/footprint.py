"""Footprint: memory over millions of records, and the CPU of an idle session.

- RSS growth: ``krfeed sim`` pushes N records (H0STCNT0, as fast as it can) to a Feed whose
  consumer is either fast (no-op) or slow (a millisecond's sleep every 10 records, with
  ``overflow="drop_oldest"`` so that the session keeps reading and the queue stays full).
  RSS is read from /proc after the first 5% of the records (decoders compiled, caches warm)
  and at the end; growth is the difference (and the peak is reported too).
- Idle CPU: one KIS session holding 41 registrations (the per-app-key limit) while the
  simulator sends heartbeats only; process CPU time over a wall-clock window, as a percentage
  of one core.

    python benchmarks/footprint.py [--records N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from simproc import SimProcess, rss_bytes, start_bench

from krfeed import KIS, Feed
from krfeed.records.base import Record

TR = "H0STCNT0"
MB = 1024 * 1024


async def rss_run(url: str, records: int, slow: bool) -> dict[str, Any]:
    """Push ``records`` records through a Feed; RSS after warm-up, at the end, and the peak."""
    feed = Feed(KIS.sim(url), overflow="drop_oldest" if slow else "block")
    warm = max(1, records // 20)
    rss = {"start": 0, "peak": 0}
    consumed = 0
    t0 = time.monotonic()

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.1)
            now = rss_bytes()
            rss["peak"] = max(rss["peak"], now)
            if not rss["start"] and feed.sessions[0].stats.records >= warm:
                rss["start"] = now

    async with aiohttp.ClientSession() as http, feed:
        await feed.subscribe(f"kis:{TR}", ["005930"])
        sampler = asyncio.create_task(sample())
        await start_bench(http, url, "kis", TR, count=records, rate=0)
        session = feed.sessions[0]
        async for item in feed:
            if not isinstance(item, Record):
                continue
            consumed += 1
            if slow and consumed % 10 == 0:
                await asyncio.sleep(0.001)
            if session.stats.records >= records and len(feed._queue) == 0:
                break
        sampler.cancel()
        stats = feed.stats()
    gc.collect()
    end_rss = rss_bytes()
    start_rss = rss["start"] or end_rss
    return {
        "consumer": "slow" if slow else "fast",
        "records": records,
        "consumed": consumed,
        "dropped": stats["dropped"],
        "seconds": round(time.monotonic() - t0, 1),
        "rss_start_mb": round(start_rss / MB, 1),
        "rss_end_mb": round(end_rss / MB, 1),
        "rss_peak_mb": round(max(rss["peak"], end_rss) / MB, 1),
        "rss_growth_mb": round((end_rss - start_rss) / MB, 1),
    }


async def idle_cpu(url: str, seconds: float, registrations: int = 41) -> dict[str, Any]:
    """CPU of this process while one KIS session holds ``registrations`` and gets heartbeats."""
    codes = [f"{i:06d}" for i in range(100, 100 + registrations)]
    async with Feed(KIS.sim(url)) as feed:
        subs = await feed.subscribe(f"kis:{TR}", codes)
        confirmed = sum(s.state.value == "confirmed" for s in subs)
        await asyncio.sleep(1.0)  # let the subscribe burst settle
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        pings = feed.sessions[0].stats.pings
    return {
        "registrations": confirmed,
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 4),
        "cpu_percent": round(100 * cpu / wall, 3),
        "heartbeats": pings,
    }


async def _run(records: int, idle_seconds: float, ping_interval: float) -> dict[str, Any]:
    with SimProcess(ping_interval=ping_interval) as sim:
        fast = await rss_run(sim.url, records, slow=False)
        slow = await rss_run(sim.url, records, slow=True)
        idle = await idle_cpu(sim.url, idle_seconds)
    return {"rss": [fast, slow], "idle": idle}


def run(records: int = 1_000_000, idle_seconds: float = 10.0) -> dict[str, Any]:
    return asyncio.run(_run(records, idle_seconds, ping_interval=2.0))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--idle-seconds", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out = run(args.records, args.idle_seconds)
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
