"""The Recorder into both server sinks at once, with the database's connections killed while it
records, then the same recording replayed: every item stored once in PostgreSQL and in JetStream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from krfeed.events import Reconnected
from krfeed.recorder import Recorder
from krfeed.records.kis import RECORDS as KIS
from krfeed.records.kiwoom import RECORDS as KIWOOM
from krfeed.sinks import open_sink

from .conftest import NATSTarget, pg_count, sample_records, terminate_connections

pytestmark = pytest.mark.services


async def source(items: list[Any], killer: Any = None) -> AsyncIterator[Any]:
    for i, it in enumerate(items):
        if killer is not None and i and i % 700 == 0:
            await killer()
        yield it
        if i % 100 == 0:
            await asyncio.sleep(0)


async def test_recorder_into_postgres_and_nats(pg_url: str, nats_stream: NATSTarget) -> None:
    records = sample_records(3000, seed=21, classes=[KIS["H0STPGM0"], KIWOOM["00"], KIWOOM["0B"]])
    items: list[Any] = [*records, Reconnected(broker="kis", session="kis#1", attempt=1, gap=0.4)]
    kills = 0

    async def kill() -> None:
        nonlocal kills
        kills += await terminate_connections(pg_url)

    for run in range(2):  # the second run replays the same items
        rec = Recorder(
            source(items, kill if run == 0 else None),
            [open_sink(pg_url), open_sink(nats_stream.url)],
            batch_size=250,
            batch_interval=0.05,
        )
        await rec.run()
        status = rec.status()
        assert status["written"] == len(items), status
    assert kills >= 1
    for table in ("kis_program_trading", "kiwoom_order_execution", "kiwoom_stock_trade"):
        assert await pg_count(pg_url, table) == 1000
    assert await pg_count(pg_url, "krfeed_events") == 1
    nc = await nats.connect(nats_stream.server)
    try:
        info = await nc.jetstream().stream_info(nats_stream.stream)
    finally:
        await nc.close()
    assert info.state.messages == len(items)
