"""Record: the stream of stream.py into a sink through the :class:`~krfeed.Recorder`.

``krfeed sim`` (its own process) pushes records at an offered rate; a Feed reads them and a
Recorder writes them, with its default batching, into SQLite (WAL, ``synchronous=full``: every
batch is on disk when it is acknowledged), JSON Lines (fsync'ed per batch) or Parquet. Figures:
rows/s written from the first to the last row, and the writer's lag (now minus the receive
time of the last written record, sampled every 50 ms): its median, maximum, and whether it
grows (the mean of the last third of the samples against the first third).

    python benchmarks/record.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from statistics import fmean, median
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from simproc import SimProcess, start_bench

from krfeed import KIS, Feed
from krfeed.recorder import Recorder
from krfeed.sinks import open_sink

CODES = ["005930"]


async def record_stream(
    url: str, sink_url: str, rate: float, count: int, tr: str = "H0STCNT0"
) -> dict[str, Any]:
    """Record ``count`` records offered at ``rate`` (0: as fast as possible) into ``sink_url``."""
    samples: list[tuple[float, int, float | None]] = []  # (time, rows written, lag)
    async with aiohttp.ClientSession() as http, Feed(KIS.sim(url)) as feed:
        await feed.subscribe(f"kis:{tr}", CODES)
        recorder = Recorder(feed, [open_sink(sink_url)])
        task = asyncio.create_task(recorder.run())
        while not recorder.status()["running"] or not recorder.status()["written"]:
            await asyncio.sleep(0.01)  # sinks open, the control events so far written
        base = recorder.status()["written"]
        await start_bench(http, url, "kis", tr, count=count, rate=rate)
        t_end = time.monotonic() + 120 + count / 10_000
        while time.monotonic() < t_end:
            await asyncio.sleep(0.05)
            st = recorder.status()
            rows = st["written"] - base
            if rows > 0:
                samples.append((time.monotonic(), rows, st["lag"]))
            if rows >= count:
                break
        recorder.stop()
        await task
        sink_rows = recorder.status()["sinks"]
    moving = [s for s in samples if s[1] < count] + samples[-1:]
    (t0, n0, _), (t1, n1, _) = moving[0], moving[-1]
    lags = [s[2] for s in moving if s[2] is not None]
    third = max(1, len(lags) // 3)
    return {
        "sink": sink_url.split(":", 1)[0],
        "type": tr,
        "offered_per_s": rate or None,
        "records": count,
        "rows_written": n1,
        "rows_per_s": round((n1 - n0) / (t1 - t0)) if t1 > t0 else None,
        "lag_s": {
            "p50": round(median(lags), 3) if lags else None,
            "max": round(max(lags), 3) if lags else None,
            "first_third": round(fmean(lags[:third]), 3) if lags else None,
            "last_third": round(fmean(lags[-third:]), 3) if lags else None,
        },
        "sinks": sink_rows,
    }


def _sink_urls(tmp: Path) -> dict[str, str]:
    urls = {
        "sqlite": f"sqlite:///{tmp / 'bench.db'}",
        "jsonl": f"jsonl:///{tmp / 'bench.jsonl'}",
    }
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        urls["parquet"] = f"parquet:///{tmp / 'parquet'}"
    return urls


#: (sink, type, offered records/s or 0 for as fast as possible)
CASES = (
    ("sqlite", "H0STCNT0", 50_000),
    ("sqlite", "H0STCNT0", 0),
    ("sqlite", "H0STPGM0", 50_000),
    ("sqlite", "H0STPGM0", 0),
    ("jsonl", "H0STCNT0", 50_000),
    ("parquet", "H0STCNT0", 50_000),
)


async def _run(seconds: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="krfeed-bench-") as d, SimProcess() as sim:
        tmp = Path(d)
        for n, (name, tr, offered) in enumerate(CASES):
            path = tmp / str(n)
            path.mkdir()
            url = _sink_urls(path).get(name)
            if url is None:
                rows.append(
                    {
                        "sink": name,
                        "type": tr,
                        "offered_per_s": offered or None,
                        "error": "pyarrow is not installed",
                    }
                )
                continue
            count = int((offered or 60_000) * seconds)
            rows.append(await record_stream(sim.url, url, offered, count, tr))
    return rows


def run(quick: bool = False, seconds: float | None = None) -> list[dict[str, Any]]:
    return asyncio.run(_run(seconds or (2.0 if quick else 6.0)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seconds", type=float)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = run(args.quick, args.seconds)
    if args.json:
        print(json.dumps(rows))
        return
    for r in rows:
        print(
            f"{r['sink']:8} {r['type']} offered {r['offered_per_s'] or 'max'}: "
            f"{r.get('rows_per_s')} rows/s, lag {r.get('lag_s')}"
        )


if __name__ == "__main__":
    main()
