"""How long to wait before the next attempt, and on which path.

Two paths (see :class:`~krfeed.engine.options.SessionOptions`): ``"socket"``, the socket alone
within ``reconnect_cap`` while the cached credential is valid, and ``"backoff"``, the capped
one for everything else. Both use full jitter: uniform(0, min(cap, base x 2^(attempt-1))).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from datetime import time as dtime

from krfeed.schema.convert import KST

SOCKET = "socket"
BACKOFF = "backoff"
NOW = "now"


def delay(attempt: int, base: float, cap: float) -> float:
    """The fully jittered delay of attempt ``attempt`` (1, 2, …)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def backoff(base: float, cap: float) -> Iterator[float]:
    """Delays of attempts 1, 2, … (start a new generator to reset)."""
    attempt = 0
    while True:
        attempt += 1
        yield delay(attempt, base, cap)


def retry_path(
    *,
    refused: bool,
    opened: bool,
    was_healthy: bool,
    reconnect_cap: float | None,
    in_market_hours: bool,
    credential_cached: bool,
) -> str:
    """``"socket"`` (the short cap) when only the socket needs retrying — a healthy connection
    was lost or no socket could be opened, with nothing refused, the cached credential still
    valid and within market hours — else ``"backoff"``. A socket that opened and ended before
    it proved healthy takes the slow path, so a broker that keeps closing new connections is
    not met with a loop of quick reconnects."""
    if refused or reconnect_cap is None or (opened and not was_healthy):
        return BACKOFF
    if not in_market_hours or not credential_cached:
        return BACKOFF
    return SOCKET


def in_market_hours(hours: tuple[dtime, dtime] | None) -> bool:
    """Now is within ``hours`` (KST) on a weekday; None: always."""
    if hours is None:
        return True
    now = datetime.now(KST)
    if now.weekday() >= 5:
        return False
    return hours[0] <= now.time() <= hours[1]
