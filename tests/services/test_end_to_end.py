"""Simulator → krfeed → PostgreSQL, directly and through NATS with `krfeed consume`: the rows
equal what the simulator sent."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from krfeed import KIS, Feed, Kiwoom, SessionOptions
from krfeed.recorder import Recorder
from krfeed.records.base import Record
from krfeed.sim import SimConfig, Simulator
from krfeed.sinks import open_sink

from .conftest import NATSTarget, pg_count, pg_rows

pytestmark = pytest.mark.services

OPTS = SessionOptions(backoff_base=0.05, backoff_cap=0.3, stall_timeout=None, market_hours=None)


async def record_from_sim(sink_urls: list[str], n_records: int) -> list[Record]:
    """Record ``n_records`` records from a simulator into the sinks; returns them."""
    cfg = SimConfig(port=0, seed=21, rate=30.0, auto_orders=5.0, ping_interval=0.5)
    got: list[Record] = []
    async with Simulator(cfg) as sim:
        feed = Feed(Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 2), options=OPTS)
        await feed.start()
        await feed.subscribe(Kiwoom.ORDER_EXECUTION)
        await feed.subscribe(KIS.PROGRAM_TRADING, ["005930", "000660"])
        await feed.subscribe(Kiwoom.TRADE, ["005930"])
        rec: Recorder

        async def source() -> Any:
            async for item in feed:
                if isinstance(item, Record):
                    got.append(item)
                yield item
                if len(got) >= n_records and any(r.type == "00" for r in got):
                    rec.stop()
                    return

        rec = Recorder(source(), [open_sink(u) for u in sink_urls])
        try:
            await asyncio.wait_for(rec.run(), 60)
        finally:
            await feed.close()
        sent = sim.stats()["records_sent"]
    by_type = Counter(f"{r.broker}:{r.type}" for r in got)
    assert by_type["kis:H0STPGM0"] <= sent["kis"]["H0STPGM0"]
    return got


KRFEED_CONSUME = [sys.executable, "-m", "krfeed", "consume"]


def consume_cli(nats_url: str, pg_url: str, seconds: float) -> subprocess.CompletedProcess[str]:
    """`krfeed consume` with the durable consumer "e2e", for ``seconds``."""
    return subprocess.run(
        [*KRFEED_CONSUME, nats_url, "--to", pg_url, "--durable", "e2e", "--duration", str(seconds)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _expect(records: list[Record], cls_type: str) -> list[Record]:
    # records of one frame share a receive time: order by it, then by the code
    return sorted((r for r in records if r.type == cls_type), key=lambda r: (r.received_at, r.item))


def _sorted(rows: list[Any]) -> list[Any]:
    return sorted(rows, key=lambda x: (x["received_at"], x["item"]))


async def test_simulator_to_postgres_rows_equal_records(pg_url: str) -> None:
    records = await record_from_sim([pg_url], 300)
    # Records of one frame share a receive time; the table keeps no order among them, so
    # compare as multisets.
    pgm = _expect(records, "H0STPGM0")
    rows = await pg_rows(pg_url, "kis_program_trading")
    assert Counter(
        (x["received_at"], x["code"], x["time"], x["net_buy_qty"], x["net_buy_value"]) for x in rows
    ) == Counter((r.received_at, r.code, r.time, r.net_buy_qty, r.net_buy_value) for r in pgm)  # type: ignore[attr-defined]
    orders = _expect(records, "00")
    rows = _sorted(await pg_rows(pg_url, "kiwoom_order_execution"))
    assert [(x["order_no"], x["order_status"], x["fill_qty"]) for x in rows] == [
        (r.order_no, r.order_status.value, r.fill_qty)
        for r in orders  # type: ignore[attr-defined]
    ]
    assert await pg_count(pg_url, "kiwoom_stock_trade") == len(_expect(records, "0B"))


async def test_simulator_to_nats_to_postgres_with_krfeed_consume(
    nats_stream: NATSTarget, pg_url: str
) -> None:
    records = await record_from_sim([nats_stream.url], 200)
    proc = consume_cli(nats_stream.url, pg_url, seconds=4)
    assert proc.returncode == 0, proc.stderr
    assert f"({len(records):,} records)" in proc.stderr
    pgm = _expect(records, "H0STPGM0")
    rows = await pg_rows(pg_url, "kis_program_trading")
    assert Counter((x["received_at"], x["code"], x["net_buy_qty"]) for x in rows) == Counter(
        (r.received_at, r.code, r.net_buy_qty)  # type: ignore[attr-defined]
        for r in pgm
    )
    assert await pg_count(pg_url, "kiwoom_order_execution") == len(_expect(records, "00"))
    # a second consumer run with the same durable name finds nothing new: stored once
    again = consume_cli(nats_stream.url, pg_url, seconds=2)
    assert "consumed 0 messages" in again.stderr
    assert await pg_count(pg_url, "kis_program_trading") == len(pgm)
