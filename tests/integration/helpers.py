"""Shared by the integration tests: fast session options and ways to wait on a feed."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from krfeed import Feed, SessionOptions

#: Quick reconnects and no market-hours gate, for tests against the simulator.
FAST = SessionOptions(
    backoff_base=0.05,
    backoff_cap=0.3,
    idle_timeout=3.0,
    stall_timeout=None,
    market_hours=None,
    healthy_after=0.5,
    subscribe_interval=0.0,
)


async def collect(
    feed: Feed, until: Callable[[list[Any]], bool], timeout: float = 15.0
) -> list[Any]:
    """Items from ``feed`` until ``until(items)`` holds (fails the test on timeout)."""
    items: list[Any] = []

    async def run() -> None:
        async for item in feed:
            items.append(item)
            if until(items):
                return

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        kinds = Counter(type(i).__name__ for i in items)
        pytest.fail(f"condition not reached in {timeout}s; got {dict(kinds)}")
    return items


def count_of(cls: type, items: list[Any]) -> int:
    return sum(1 for i in items if isinstance(i, cls))


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``cond`` until it holds (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached")
        await asyncio.sleep(0.02)
