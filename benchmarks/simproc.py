"""The simulator in its own process (``krfeed sim``), and its benchmark mode.

The stream, record and footprint benchmarks run the client (a :class:`~krfeed.Feed`, or a bare
aiohttp loop for the floor) in the benchmark's process and the simulator in another, so that
on a 2-core machine each has a core and they do not share one event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

import aiohttp

from krfeed.brokers import sim_appkey, sim_secret


class SimProcess:
    """``python -m krfeed sim --port 0 --rate 0`` (no market data of its own: only what the
    benchmark mode pushes, and heartbeats every ``ping_interval`` seconds)."""

    def __init__(self, ping_interval: float = 10.0, extra: list[str] | None = None) -> None:
        self.ping_interval = ping_interval
        self.extra = list(extra or [])
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> SimProcess:
        cmd = [sys.executable, "-m", "krfeed", "sim", "--port", "0", "--rate", "0"]
        cmd += ["--ping-interval", str(self.ping_interval), *self.extra]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("krfeed sim ready:"):
                self.url = line.split(":", 1)[1].strip()
                return self
        self.__exit__(None, None, None)
        raise RuntimeError("krfeed sim did not start")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the simulator process has used so far."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def start_bench(
    http: aiohttp.ClientSession,
    url: str,
    broker: str,
    type_: str,
    *,
    count: int,
    rate: float = 0.0,
    batch: int = 1,
    codes: list[str] | None = None,
) -> int:
    """POST /_sim/bench: push ``count`` records to every connection subscribed to ``type_``."""
    body = {
        "broker": broker,
        "type": type_,
        "codes": codes or ["005930"],
        "count": count,
        "rate": rate,
        "batch": batch,
    }
    async with http.post(url + "/_sim/bench", json=body) as r:
        data: dict[str, Any] = await r.json()
    if not data.get("ok") or not data.get("connections"):
        raise RuntimeError(f"bench not started: {data}")
    return int(data["bench_id"])


async def bench_info(http: aiohttp.ClientSession, url: str, bench_id: int) -> dict[str, Any]:
    async with http.get(url + "/_sim/stats") as r:
        stats: dict[str, Any] = await r.json()
    info: dict[str, Any] = stats["bench"][str(bench_id)]
    return info


async def approval_key(http: aiohttp.ClientSession, url: str, n: int = 1) -> str:
    body = {
        "grant_type": "client_credentials",
        "appkey": sim_appkey(n),
        "secretkey": sim_secret(n),
    }
    async with http.post(url + "/oauth2/Approval", json=body) as r:
        data: dict[str, Any] = await r.json()
    return str(data["approval_key"])


def rss_bytes() -> int:
    """Resident set size of this process, from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def wait_until(pred: Any, timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    return bool(pred())
