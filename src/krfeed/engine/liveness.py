"""Is the connection alive? The heartbeat cadence learned from the broker's PING/PINGPONG
frames, the half-open limit derived from it, and the data-stall limit (doubling per stall in a
row)."""

from __future__ import annotations

from collections import deque

from krfeed.engine.options import SessionOptions, SessionStats


class Liveness:
    """Heartbeat learning and the idle / stall limits of one session (no clock of its own:
    times are passed in)."""

    def __init__(self, opts: SessionOptions, stats: SessionStats) -> None:
        self.opts = opts
        self.stats = stats
        self.last_beat: float | None = None  # the latest heartbeat on the current connection
        self.beats: deque[float] = deque(maxlen=8)  # intervals between heartbeats
        self.stall_streak = 0
        self.last_stall_at = 0.0

    def new_connection(self) -> None:
        self.last_beat = None  # an interval spans two heartbeats of one connection

    def heartbeat(self, now: float) -> None:
        """A PING/PINGPONG arrived: learn the broker's cadence from the gaps between them."""
        if self.last_beat is not None:
            self.beats.append(now - self.last_beat)
            ordered = sorted(self.beats)
            self.stats.heartbeat_interval = ordered[len(ordered) // 2]
        self.last_beat = now

    def idle_limit(self) -> tuple[float, str]:
        """Seconds without any frame after which the socket counts as half-open, and why."""
        opts = self.opts
        beat = self.stats.heartbeat_interval
        if beat is None or opts.idle_heartbeats <= 0:
            return opts.idle_timeout, f"no frame for {opts.idle_timeout:g}s"
        limit = min(opts.idle_timeout, max(opts.idle_floor, opts.idle_heartbeats * beat))
        return limit, (
            f"no frame for {limit:.1f}s, {limit / beat:.1f} heartbeats at the learned "
            f"interval of {beat:.2f}s"
        )

    def stalled(self, now: float, ready_at: float, stall_timeout: float) -> float | None:
        """Seconds of silence when subscribed data has stalled (counted as a stall), else
        None."""
        if self.stats.last_data_at > self.last_stall_at:
            self.stall_streak = 0
        limit = min(3600.0, stall_timeout * 2 ** min(self.stall_streak, 8))
        since = now - max(self.stats.last_data_at, ready_at)
        if since <= limit:
            return None
        self.stall_streak += 1
        self.last_stall_at = now
        self.stats.stalls += 1
        return since
