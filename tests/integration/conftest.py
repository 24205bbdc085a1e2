"""Integration tests fail on leaked tasks: asyncio's "Task was destroyed but it is pending"."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_destroyed_pending_tasks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    gc.collect()
    leaked = [r.getMessage() for r in caplog.records if "Task was destroyed" in r.getMessage()]
    assert not leaked, leaked
