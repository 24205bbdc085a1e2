"""``krfeed orders`` in a subprocess against an in-process simulator with auto-orders."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

from krfeed.brokers import sim_appkey
from krfeed.sim import SimConfig, Simulator


async def run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "krfeed",
        "orders",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_orders_jsonl_with_reconciliation_and_recording(tmp_path: Path) -> None:
    cfg = SimConfig(port=0, seed=31, rate=5.0, ping_interval=0.5, auto_orders=10.0, page_size=4)
    async with Simulator(cfg) as sim:
        for _ in range(5):  # orders before the command starts: the initial round finds them
            await sim.place_order("kiwoom", code="005930", qty=3, appkey=sim_appkey(1))
        rec = tmp_path / "orders.jsonl"
        code, out, err = await run(
            "--sim",
            sim.url,
            "--format",
            "jsonl",
            "--duration",
            "3",
            "--to",
            f"jsonl:///{rec}",
            "--idle-timeout",
            "30",
        )
        kiwoom_account = sim.account("kiwoom", sim_appkey(1))
        kis_account_of_the_same_key = sim.account("kis", sim_appkey(1)) + "01"
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    # the Kiwoom session (default key 1) never gets the KIS account of the same key
    accounts = {
        r["account"] for r in rows if r["event"] == "OrderEvent" and r["broker"] == "kiwoom"
    }
    assert accounts == {kiwoom_account} != {kis_account_of_the_same_key}
    assert [r for r in rows if r["event"] == "OrderAnomaly"] == []
    kinds = Counter((r["event"], r.get("broker"), r.get("source")) for r in rows)
    assert kinds[("OrderEvent", "kiwoom", "reconciled")] >= 10  # 5 acceptances and their fills
    assert kinds[("OrderEvent", "kiwoom", "live")] > 0
    reports = [r for r in rows if r["event"] == "ReconcileReport"]
    assert {(r["broker"], r["trigger"], r["ok"]) for r in reports} >= {
        ("kiwoom", "initial", True),
        ("kis", "initial", True),  # the KIS account comes from the simulator's /_sim/accounts
    }
    fill = next(
        r
        for r in rows
        if r.get("kind") == "filled" and r["source"] == "live" and r["broker"] == "kiwoom"
    )
    assert fill["record"]["type"] == "00" and fill["fill_no"] == fill["record"]["fill_no"]
    recorded = [json.loads(line) for line in rec.read_text().splitlines()]
    assert any(r.get("type") == "00" for r in recorded)  # the raw order records
    assert any(r.get("event") == "Subscribed" for r in recorded)


async def test_orders_table_and_count(tmp_path: Path) -> None:
    cfg = SimConfig(port=0, seed=32, rate=5.0, ping_interval=0.5, auto_orders=10.0)
    async with Simulator(cfg) as sim:
        code, out, err = await run("kiwoom", "--sim", sim.url, "--format", "table", "--count", "3")
    assert code == 0, err
    assert "order events" in out
    assert "orders," in err and "fills" in err  # the closing summary


async def test_orders_bad_arguments() -> None:
    code, _, err = await run("nasdaq", "--sim", "http://127.0.0.1:9")
    assert code == 2 and "unknown broker 'nasdaq'" in err
    code, _, err = await run("--account", "12-3", "--sim", "http://127.0.0.1:9")
    assert code == 2 and "KIS account" in err
    code, _, err = await run("--idle-timeout", "0", "--sim", "http://127.0.0.1:9")
    assert code == 2 and "--idle-timeout must be positive" in err
