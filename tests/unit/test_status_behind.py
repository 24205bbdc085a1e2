"""The record status line names a sink that cannot keep up and says by how much."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from krfeed.cli.record import status_text
from krfeed.events import Disconnected
from krfeed.recorder import Recorder
from krfeed.sinks.base import Item


class Slow:
    """A sink whose writes wait until released."""

    url = "jsonl:////var/tmp/slow.jsonl"

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, batch: list[Item]) -> None:
        await self.release.wait()


class Feed:
    def stats(self) -> dict[str, Any]:
        return {"reconnects": 0, "dropped": 0, "decode_errors": 0, "queue_depth": 7}


async def test_behind_names_the_sink_and_the_backlog() -> None:
    at = datetime(2026, 1, 5, tzinfo=UTC)

    async def source() -> Any:
        for i in range(100):
            yield Disconnected(broker="kis", session="kis#1", reason=str(i), at=at + timedelta(i))

    sink = Slow()
    rec = Recorder(source(), [sink], batch_size=10, read_ahead=100)  # type: ignore[list-item]
    task = asyncio.create_task(rec.run())
    async with asyncio.timeout(5):
        while rec.status()["pending"] < 100:
            await asyncio.sleep(0.01)
    line = status_text(rec, Feed())  # type: ignore[arg-type]
    assert "BEHIND: /var/tmp/slow.jsonl by 107 items" in line
    sink.release.set()
    await task
    assert "BEHIND" not in status_text(rec, Feed())  # type: ignore[arg-type]
