"""The simulator's whole market: listings, activity skew, the opening profile, the draw."""

from __future__ import annotations

from collections import Counter

import pytest

from krfeed.sim.universe import (
    Draw,
    OpeningProfile,
    activity_weights,
    krx,
    krx_by_code,
    universe_codes,
)


def test_krx_universe_listings() -> None:
    u = krx()
    assert len(u) == 2700
    assert Counter(x.market for x in u) == {"KOSPI": 950, "KOSDAQ": 1750}
    assert len({x.code for x in u}) == 2700
    assert all(len(x.code) == 6 and x.code.isdigit() for x in u)
    assert [x.rank for x in u] == list(range(2700))
    by = krx_by_code()
    assert by["005930"].name == "삼성전자" and by["005930"].rank == 0
    assert by["247540"] == by["247540"].__class__("247540", "에코프로비엠", "KOSDAQ", 70, False)
    first_synthetic = next(x for x in u if x.synthetic)
    assert (first_synthetic.rank, first_synthetic.name) == (94, "가상코스닥 0001")
    assert universe_codes("kospi", 3) == ["005930", "000660", "373220"]
    with pytest.raises(ValueError, match="unknown universe 'nyse'"):
        universe_codes("nyse")


def test_activity_is_skewed() -> None:
    codes = universe_codes("krx")
    w = activity_weights(codes)
    assert w[0] == 1.0 and w[1] == 0.5 and w[9] == pytest.approx(0.1)
    share_top_1pct = sum(w[:27]) / sum(w)
    assert 0.45 < share_top_1pct < 0.47  # 1 % of the codes carry ~46 % of the records
    assert activity_weights(["999999"]) == [1 / 2701]  # unknown: the least active
    flat = activity_weights(codes[:3], skew=0.0)
    assert flat == [1.0, 1.0, 1.0]


def test_opening_profile_rates_and_totals() -> None:
    p = OpeningProfile()
    assert (p.burst_rate, p.burst_seconds, p.steady_rate) == (30_000, 60, 5_000)
    assert p.rate(0) == 30_000 and p.rate(59.9) == 30_000 and p.rate(60) == 5_000
    assert p.total(1) == 30_000 and p.total(60) == 1_800_000
    assert p.total(90) == 1_800_000 + 150_000
    q = OpeningProfile(1000, 2, 100, duration=5)
    assert q.rate(5) == 0 and q.total(100) == 2000 + 300
    assert q.rate(-1) == 0 and q.total(-1) == 0
    with pytest.raises(ValueError, match="burst_rate must be at least 0"):
        OpeningProfile(burst_rate=-1)
    with pytest.raises(ValueError, match="duration must be positive"):
        OpeningProfile(duration=0)


def test_draw_follows_the_weights_and_the_seed() -> None:
    d = Draw([3.0, 1.0, 0.0], seed=7)
    got = d(40_000)
    assert set(got) == {0, 1}  # weight 0 never drawn
    assert sum(got.values()) == 40_000
    assert 0.73 < got[0] / 40_000 < 0.77
    assert Draw([3.0, 1.0, 0.0], seed=7)(40_000) == got  # the same picks for the same seed
    assert d(0) == {}
    with pytest.raises(ValueError, match="weights"):
        Draw([0.0])
