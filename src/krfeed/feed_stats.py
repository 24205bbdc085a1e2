"""What :meth:`krfeed.Feed.stats` reports beside its own counters: the receive→deliver
latency ring and each session's figures."""

from __future__ import annotations

from typing import Any

from krfeed.engine import Session


class Latency:
    """Receive→deliver latency: a ring of the last samples, for percentiles."""

    def __init__(self, size: int = 100_000) -> None:
        self._buf = [0.0] * size
        self._n = 0
        self._size = size

    def add(self, seconds: float) -> None:
        self._buf[self._n % self._size] = seconds
        self._n += 1

    def percentiles(self, *ps: float) -> dict[str, float | None]:
        n = min(self._n, self._size)
        if not n:
            return {f"p{p:g}": None for p in ps}
        data = sorted(self._buf[:n])
        return {f"p{p:g}": round(data[min(n - 1, int(p / 100 * n))] * 1000, 3) for p in ps}


def session_stats(s: Session, subscriptions: dict[str, int]) -> dict[str, Any]:
    """One session's figures in ``feed.stats()["sessions"]`` (``subscriptions``: its
    subscriptions by state, :func:`krfeed.engine.subscriptions.count_states`)."""
    return {
        "state": s.stats.state,
        "connects": s.stats.connects,
        "reconnects": s.stats.reconnects,
        "frames": s.stats.frames,
        "records": s.stats.records,
        "decode_errors": s.stats.decode_errors,
        "layout_notices": s.stats.layout_notices,
        "invalid_utf8": s.stats.invalid_utf8,
        "cp949": s.stats.cp949,
        "pings": s.stats.pings,
        "heartbeat_interval": s.stats.heartbeat_interval,
        "idle_limit": round(s.idle_limit()[0], 3),
        "stalls": s.stats.stalls,
        "registrations": s.registrations(),
        "subscriptions": subscriptions,
        "reply_timeouts": s.stats.reply_timeouts,
        "failed": s.failed,
    }
