"""Which path a reconnect takes: the socket alone within ``reconnect_cap`` (a healthy connection
lost, or no socket could be opened, with a valid cached credential, in market hours), or the
capped backoff (a refusal, authentication needed, a socket that ended before it proved healthy,
outside market hours). The decision and the delay bounds, without a network."""

from __future__ import annotations

from datetime import time as dtime
from typing import Any

import pytest

from krfeed.engine.backoff import backoff, delay
from krfeed.session import Session, SessionOptions


class Cached(Session):
    """A session whose credential cache is what the test says."""

    def __init__(self, cached: bool, **opts: Any) -> None:
        # no I/O happens without start(): the engine is only asked for its decisions
        super().__init__("kis#1", "ws://127.0.0.1:9", None, None, SessionOptions(**opts))  # type: ignore[arg-type]
        self.cached = cached

    def _credential_cached(self) -> bool:
        return self.cached


ALWAYS = {"market_hours": None}


@pytest.mark.parametrize(
    ("refused", "opened", "was_healthy", "path"),
    [
        (False, True, True, "socket"),  # a healthy connection was lost
        (False, False, False, "socket"),  # unreachable: no socket opened
        (False, True, False, "backoff"),  # opened, then ended before it proved healthy
        (True, False, False, "backoff"),  # refused (login, app key in use, try later)
        (True, True, True, "backoff"),
    ],
)
def test_path_by_failure(refused: bool, opened: bool, was_healthy: bool, path: str) -> None:
    assert Cached(True, **ALWAYS)._retry_path(refused, opened, was_healthy) == path


def test_authentication_needed_takes_the_slow_path() -> None:
    assert Cached(False, **ALWAYS)._retry_path(False, True, True) == "backoff"
    assert Cached(False, **ALWAYS)._retry_path(False, False, False) == "backoff"


def test_no_quick_path_when_disabled_or_outside_market_hours() -> None:
    assert Cached(True, reconnect_cap=None, **ALWAYS)._retry_path(False, True, True) == "backoff"
    never = (dtime(0, 0), dtime(0, 0, 0, 1))  # a market open for a microsecond at midnight
    assert Cached(True, market_hours=never)._retry_path(False, True, True) == "backoff"


def test_delays_stay_under_their_caps() -> None:
    quick = [delay(n, 0.5, 2.0) for n in range(1, 40) for _ in range(20)]
    slow = [delay(n, 0.5, 30.0) for n in range(1, 40) for _ in range(20)]
    assert min(quick) >= 0 and max(quick) <= 2.0
    assert max(slow) <= 30.0 and max(slow) > 2.0  # the slow path does grow past the short cap
    assert all(delay(1, 0.5, 2.0) <= 0.5 for _ in range(50))  # the first retry: within base


def test_the_backoff_generator_grows_to_its_cap_and_restarts_when_made_anew() -> None:
    gen = backoff(0.5, 30.0)
    first = [next(gen) for _ in range(12)]
    assert all(0 <= d <= min(30.0, 0.5 * 2**i) for i, d in enumerate(first))
    assert next(backoff(0.5, 30.0)) <= 0.5  # a new generator is attempt 1 again
