"""``--idle-timeout`` on the live commands (stream, record), in a subprocess against an
in-process simulator: the simulator sends no heartbeat within the run (30 s cadence), so the
fixed limit given on the command line is the one that notices a half-open socket, and the
``Disconnected`` event says so."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from krfeed.sim import SimConfig, Simulator

from .helpers import wait_for

REASON = "no frame for 1.5s (half-open connection)"


async def krfeed(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "krfeed",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def cut_when_subscribed(sim: Simulator) -> None:
    await wait_for(lambda: sim.stats()["subscriptions"]["kis"] >= 1, 20)
    sim.fault("half_open", broker="kis", seconds=5.0)


async def test_stream_and_record_take_the_idle_timeout(tmp_path: Path) -> None:
    cfg = SimConfig(port=0, seed=15, rate=5.0, ping_interval=30.0)
    async with Simulator(cfg) as sim:
        common = ("--sim", sim.url, "--duration", "7", "--idle-timeout", "1.5")
        proc = await krfeed("stream", "kis", "H0STCNT0", "005930", "--format", "jsonl", *common)
        await cut_when_subscribed(sim)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        rows = [json.loads(line) for line in out.decode().splitlines()]
        downs = [r for r in rows if r.get("event") == "Disconnected"]
        assert [d["reason"] for d in downs] == [REASON]
        after = rows[rows.index(downs[0]) :]
        assert any(r.get("event") == "Subscribed" for r in after)  # back, within the run
        assert any(r.get("type") == "H0STCNT0" for r in after)

        sink = tmp_path / "rec.jsonl"
        proc = await krfeed("record", "kis:H0STCNT0:005930", "--to", f"jsonl:///{sink}", *common)
        await cut_when_subscribed(sim)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        recorded = [json.loads(line) for line in sink.read_text().splitlines()]
        assert [r["reason"] for r in recorded if r.get("event") == "Disconnected"] == [REASON]


async def test_a_bad_idle_timeout_is_one_sentence() -> None:
    for command in (("stream", "kis", "H0STCNT0", "005930"), ("record", "kis:H0STCNT0:005930")):
        proc = await krfeed(*command, "--sim", "http://127.0.0.1:9", "--idle-timeout", "0")
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2 and out == b""
        assert err.decode().strip() == "krfeed: --idle-timeout must be positive"
