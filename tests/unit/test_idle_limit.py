"""The half-open limit of a session: the fixed idle_timeout until two heartbeats were seen, then
clamp(idle_heartbeats x the learned interval, idle_floor, idle_timeout). Heartbeat times are
given explicitly (no clock)."""

from __future__ import annotations

from typing import Any

import pytest

from krfeed.session import Session, SessionOptions


def session(**opts: Any) -> Session:
    # no I/O happens without start(): the engine is only asked for its limit
    return Session("kis#1", "ws://127.0.0.1:9", None, None, SessionOptions(**opts))  # type: ignore[arg-type]


def beats(s: Session, *times: float) -> None:
    for t in times:
        s._heartbeat(t)


def test_fixed_limit_before_two_heartbeats() -> None:
    s = session()
    assert s.idle_limit() == (90.0, "no frame for 90s")
    beats(s, 100.0)  # one heartbeat: no interval yet
    assert s.idle_limit()[0] == 90.0 and s.stats.heartbeat_interval is None


@pytest.mark.parametrize(
    ("interval", "limit"),
    [
        (10.0, 30.0),  # KIS's PINGPONG cadence: three missed heartbeats
        (1.0, 3.0),  # the simulator pinging every second
        (0.2, 3.0),  # the floor
        (40.0, 90.0),  # the ceiling: idle_timeout
    ],
)
def test_three_heartbeats_clamped(interval: float, limit: float) -> None:
    s = session()
    beats(s, *(1000.0 + i * interval for i in range(4)))
    assert s.stats.heartbeat_interval == pytest.approx(interval)
    assert s.idle_limit()[0] == pytest.approx(limit)


def test_the_reason_names_the_learned_interval() -> None:
    s = session()
    beats(s, 0.0, 10.0, 20.0)
    assert s.idle_limit() == (
        30.0,
        "no frame for 30.0s, 3.0 heartbeats at the learned interval of 10.00s",
    )


def test_median_ignores_one_late_heartbeat_and_learning_spans_reconnects() -> None:
    s = session()
    beats(s, 0.0, 10.0, 20.0, 45.0, 55.0)  # one heartbeat 15 s late
    assert s.stats.heartbeat_interval == 10.0
    s._last_beat = None  # what a new connection does: no interval across two connections
    beats(s, 500.0, 510.0)
    assert s.stats.heartbeat_interval == 10.0 and s.idle_limit()[0] == 30.0


def test_settings() -> None:
    s = session(idle_timeout=20.0, idle_heartbeats=4.0, idle_floor=8.0)
    beats(s, 0.0, 1.0, 2.0)
    assert s.idle_limit()[0] == 8.0  # floor
    beats(s, 12.0, 22.0, 32.0, 42.0, 52.0)
    assert s.idle_limit()[0] == 20.0  # 4 x 10 s, capped at idle_timeout
    off = session(idle_heartbeats=0)
    beats(off, 0.0, 1.0, 2.0)
    assert off.idle_limit()[0] == 90.0
