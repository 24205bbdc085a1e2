"""Dashboard load: 20,000 records/s into ``krfeed web`` for 60 s with one page open.

Three processes: ``krfeed sim`` (benchmark mode: H0STPGM0 and H0STCNT0 for five stocks, 10,000
records/s each, ten records per frame), ``krfeed web --sim URL …`` (Feed → OrderStream →
dashboard state → WebSocket), and headless Chromium showing the page (Playwright). Reported:
the web process's CPU (share of one core) and resident memory before/after, the records it
received, the pushes it sent and what the page handled per second (messages, table renders,
chart redraws), and the records dropped anywhere.

    python benchmarks/web_load.py [--seconds 60] [--rate 20000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from simproc import SimProcess, bench_info, start_bench

CODES = ["005930", "000660", "035720", "051910", "035420"]
CHROMIUM = os.environ.get("KRFEED_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def snapshot(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url + "api/snapshot") as r:
        data: dict[str, Any] = await r.json()
    return data


async def run(seconds: float, rate: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    per_type = rate / 2
    count = int(per_type * seconds)
    with SimProcess() as sim:
        subs = [f"kis:H0STPGM0:{','.join(CODES)}", f"kis:H0STCNT0:{','.join(CODES)}"]
        web = subprocess.Popen(
            [sys.executable, "-m", "krfeed", "web", "--sim", sim.url, *subs, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert web.stdout is not None
            line = web.stdout.readline()
            url = line.split()[2]
            async with aiohttp.ClientSession() as http, async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = await browser.new_page(viewport={"width": 1280, "height": 720})
                await page.goto(url)
                await page.wait_for_function(
                    "() => document.querySelectorAll('#sessions .pill').length >= 1",
                    timeout=30_000,
                )
                await asyncio.sleep(2)
                page0 = await page.evaluate("() => JSON.parse(JSON.stringify(window.krfeed))")
                snap0 = await snapshot(http, url)
                cpu0, rss0, t0 = proc_cpu(web.pid), proc_rss(web.pid), time.monotonic()
                ids = [
                    await start_bench(
                        http,
                        sim.url,
                        "kis",
                        tr,
                        count=count,
                        rate=per_type,
                        batch=10,
                        codes=CODES,
                    )
                    for tr in ("H0STPGM0", "H0STCNT0")
                ]
                rss_peak = rss0
                while time.monotonic() - t0 < seconds:
                    await asyncio.sleep(1)
                    rss_peak = max(rss_peak, proc_rss(web.pid))
                await asyncio.sleep(2)  # the tail of the queue
                infos = [await bench_info(http, sim.url, i) for i in ids]
                elapsed = time.monotonic() - t0
                cpu1, rss1 = proc_cpu(web.pid), proc_rss(web.pid)
                page1 = await page.evaluate("() => JSON.parse(JSON.stringify(window.krfeed))")
                snap1 = await snapshot(http, url)
                await browser.close()
        finally:
            web.send_signal(signal.SIGINT)
            try:
                web.wait(15)
            except subprocess.TimeoutExpired:
                web.kill()
    st0, st1 = snap0["health"]["stats"], snap1["health"]["stats"]
    msgs0 = sum(page0["messages"].values())
    msgs1 = sum(page1["messages"].values())
    received = st1["records_received"] - st0["records_received"]
    pushed = max(float(i.get("elapsed") or elapsed) for i in infos)
    return {
        "seconds": round(elapsed, 1),
        "offered_rate": rate,
        "sim_rates": [i.get("records_per_s") for i in infos],
        "records_received": received,
        "received_per_s": round(received / pushed),
        "dropped": st1["dropped"],
        "queue_high_water": st1["queue_high_water"],
        "latency_ms": st1["latency_ms"],
        # CPU over the whole window (the push and its 2 s tail)
        "web_cpu_core_share": round((cpu1 - cpu0) / elapsed, 3),
        "web_rss_mb_before": round(rss0 / 2**20, 1),
        "web_rss_mb_after": round(rss1 / 2**20, 1),
        "web_rss_mb_peak": round(rss_peak / 2**20, 1),
        "page_messages_per_s": round((msgs1 - msgs0) / elapsed, 1),
        "page_messages_by_panel_per_s": {
            k: round((v - page0["messages"].get(k, 0)) / elapsed, 1)
            for k, v in page1["messages"].items()
        },
        "page_chart_draws_per_s": round(
            (page1.get("chartDraws", 0) - page0.get("chartDraws", 0)) / elapsed, 1
        ),
        "page_kb_per_s": round((page1["bytes"] - page0["bytes"]) / elapsed / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=20_000.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = asyncio.run(run(a.seconds, a.rate))
    if a.json:
        print(json.dumps(res))
        return
    for k, v in res.items():
        print(f"{k:32} {v}")


if __name__ == "__main__":
    main()
