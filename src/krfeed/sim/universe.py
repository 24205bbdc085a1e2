"""The simulator's whole market: about 2,700 KOSPI and KOSDAQ codes with names, ranked by
activity, and the opening profile (a burst of records at the open, then a steady rate).

No list of listed companies ships with krfeed, so :func:`krx` holds the large, well-known
listings by their real codes and names and fills the rest of each market with synthetic ones
(names ``가상코스피 0001`` / ``가상코스닥 0001``, codes that no real listing in the list uses).
The universe is the same in every run; it is for the simulator and for benchmarks, not a
reference list of the exchange.

Activity is skewed the way markets are: the code of rank ``r`` (0 = most active) carries a
share proportional to ``1 / (r + 1) ** skew`` of all records (a Zipf law; with the default skew
of 1.0 the 27 most active codes, 1 %, carry about 45 % of the records).
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from functools import cache

#: Real listings, most active first (KOSPI, then KOSDAQ): code, name.
KOSPI_LISTED: tuple[tuple[str, str], ...] = (
    ("005930", "삼성전자"),
    ("000660", "SK하이닉스"),
    ("373220", "LG에너지솔루션"),
    ("207940", "삼성바이오로직스"),
    ("005380", "현대차"),
    ("000270", "기아"),
    ("068270", "셀트리온"),
    ("005490", "POSCO홀딩스"),
    ("035420", "NAVER"),
    ("051910", "LG화학"),
    ("006400", "삼성SDI"),
    ("035720", "카카오"),
    ("012330", "현대모비스"),
    ("028260", "삼성물산"),
    ("105560", "KB금융"),
    ("055550", "신한지주"),
    ("066570", "LG전자"),
    ("003670", "포스코퓨처엠"),
    ("096770", "SK이노베이션"),
    ("034730", "SK"),
    ("015760", "한국전력"),
    ("032830", "삼성생명"),
    ("086790", "하나금융지주"),
    ("003550", "LG"),
    ("017670", "SK텔레콤"),
    ("030200", "KT"),
    ("033780", "KT&G"),
    ("018260", "삼성에스디에스"),
    ("009150", "삼성전기"),
    ("010130", "고려아연"),
    ("011200", "HMM"),
    ("034020", "두산에너빌리티"),
    ("010950", "S-Oil"),
    ("090430", "아모레퍼시픽"),
    ("259960", "크래프톤"),
    ("323410", "카카오뱅크"),
    ("352820", "하이브"),
    ("316140", "우리금융지주"),
    ("024110", "기업은행"),
    ("047050", "포스코인터내셔널"),
    ("011170", "롯데케미칼"),
    ("036570", "엔씨소프트"),
    ("251270", "넷마블"),
    ("009540", "HD한국조선해양"),
    ("042660", "한화오션"),
    ("012450", "한화에어로스페이스"),
    ("039490", "키움증권"),
    ("069500", "KODEX 200"),
    ("000810", "삼성화재"),
    ("138040", "메리츠금융지주"),
    ("004020", "현대제철"),
    ("000100", "유한양행"),
    ("128940", "한미약품"),
    ("097950", "CJ제일제당"),
    ("021240", "코웨이"),
    ("139480", "이마트"),
    ("010140", "삼성중공업"),
    ("267250", "HD현대"),
    ("086280", "현대글로비스"),
    ("000720", "현대건설"),
    ("006800", "미래에셋증권"),
    ("005940", "NH투자증권"),
    ("016360", "삼성증권"),
    ("078930", "GS"),
    ("004170", "신세계"),
    ("003490", "대한항공"),
    ("011070", "LG이노텍"),
    ("034220", "LG디스플레이"),
    ("032640", "LG유플러스"),
    ("051900", "LG생활건강"),
)
KOSDAQ_LISTED: tuple[tuple[str, str], ...] = (
    ("247540", "에코프로비엠"),
    ("086520", "에코프로"),
    ("196170", "알테오젠"),
    ("028300", "HLB"),
    ("263750", "펄어비스"),
    ("293490", "카카오게임즈"),
    ("035900", "JYP Ent."),
    ("041510", "에스엠"),
    ("122870", "와이지엔터테인먼트"),
    ("068760", "셀트리온제약"),
    ("058470", "리노공업"),
    ("039030", "이오테크닉스"),
    ("240810", "원익IPS"),
    ("357780", "솔브레인"),
    ("145020", "휴젤"),
    ("214150", "클래시스"),
    ("112040", "위메이드"),
    ("277810", "레인보우로보틱스"),
    ("022100", "포스코DX"),
    ("403870", "HPSP"),
    ("036930", "주성엔지니어링"),
    ("086900", "메디톡스"),
    ("078340", "컴투스"),
    ("067310", "하나마이크론"),
)
#: Listings per market in the simulated universe (the real counts were about 950 and 1,750).
KOSPI_COUNT = 950
KOSDAQ_COUNT = 1750


@dataclass(frozen=True, slots=True)
class Listing:
    """One code of the universe. ``rank``: 0 is the most active; ``synthetic``: not a real
    listing."""

    code: str
    name: str
    market: str  # "KOSPI" | "KOSDAQ"
    rank: int
    synthetic: bool


def _synthetic(market: str, count: int, taken: set[str], first: int, step: int) -> list[str]:
    """``count`` codes of 6 digits ending in 0 (as common stock codes do), spread over the
    code space from ``first`` by ``step`` and skipping codes already taken."""
    out: list[str] = []
    n = first
    while len(out) < count:
        code = f"{n % 100_000:05d}0"
        n += step
        if code in taken or code.startswith("00000"):
            continue
        taken.add(code)
        out.append(code)
    return out


@cache
def krx() -> tuple[Listing, ...]:
    """The universe, most active first: real listings lead their market, and the two markets
    interleave (about one KOSPI code for every two KOSDAQ codes further down)."""
    taken = {c for c, _ in KOSPI_LISTED + KOSDAQ_LISTED}
    kospi = list(KOSPI_LISTED)
    kosdaq = list(KOSDAQ_LISTED)
    for i, code in enumerate(
        _synthetic("KOSPI", KOSPI_COUNT - len(kospi), taken, 10_007, 97), start=1
    ):
        kospi.append((code, f"가상코스피 {i:04d}"))
    for i, code in enumerate(
        _synthetic("KOSDAQ", KOSDAQ_COUNT - len(kosdaq), taken, 20_011, 53), start=1
    ):
        kosdaq.append((code, f"가상코스닥 {i:04d}"))
    real = {c for c, _ in KOSPI_LISTED + KOSDAQ_LISTED}
    # The real large caps first (they are the most active), then both markets in proportion.
    order: list[tuple[str, str, str]] = []
    order += [(c, n, "KOSPI") for c, n in kospi[: len(KOSPI_LISTED)]]
    order += [(c, n, "KOSDAQ") for c, n in kosdaq[: len(KOSDAQ_LISTED)]]
    rest_p = kospi[len(KOSPI_LISTED) :]
    rest_q = kosdaq[len(KOSDAQ_LISTED) :]
    ratio = len(rest_q) / max(1, len(rest_p))
    ip = iq = 0
    while ip < len(rest_p) or iq < len(rest_q):
        if iq < len(rest_q) and (ip >= len(rest_p) or iq < ratio * (ip + 1)):
            c, n = rest_q[iq]
            order.append((c, n, "KOSDAQ"))
            iq += 1
        else:
            c, n = rest_p[ip]
            order.append((c, n, "KOSPI"))
            ip += 1
    return tuple(Listing(c, n, m, r, c not in real) for r, (c, n, m) in enumerate(order))


@cache
def krx_by_code() -> dict[str, Listing]:
    return {x.code: x for x in krx()}


UNIVERSES = ("krx", "kospi", "kosdaq")


def universe_codes(name: str, top: int | None = None) -> list[str]:
    """The codes of ``krx``, ``kospi`` or ``kosdaq``, most active first (the first ``top``)."""
    if name not in UNIVERSES:
        raise ValueError(f"unknown universe {name!r}: use one of {', '.join(UNIVERSES)}")
    codes = [x.code for x in krx() if name == "krx" or x.market == name.upper()]
    return codes if top is None else codes[:top]


def activity_weights(codes: list[str], skew: float = 1.0) -> list[float]:
    """The relative activity of each code: ``1 / (rank + 1) ** skew`` by its rank in the
    universe; a code outside the universe counts as the least active."""
    known = krx_by_code()
    last = len(known)
    return [1.0 / ((known[c].rank if c in known else last) + 1) ** skew for c in codes]


@dataclass(frozen=True)
class OpeningProfile:
    """Records per second across all subscriptions: ``burst_rate`` for ``burst_seconds``
    after the start (the open), then ``steady_rate``; ``duration`` seconds in all (None: for
    ever). ``skew``: how unevenly the codes trade (see the module doc)."""

    burst_rate: float = 30_000.0
    burst_seconds: float = 60.0
    steady_rate: float = 5_000.0
    duration: float | None = None
    skew: float = 1.0

    def __post_init__(self) -> None:
        for name in ("burst_rate", "burst_seconds", "steady_rate", "skew"):
            if getattr(self, name) < 0:
                raise ValueError(f"the opening profile's {name} must be at least 0")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("the opening profile's duration must be positive")

    def rate(self, t: float) -> float:
        """Records per second at ``t`` seconds after the start."""
        if t < 0 or (self.duration is not None and t >= self.duration):
            return 0.0
        return self.burst_rate if t < self.burst_seconds else self.steady_rate

    def total(self, t: float) -> float:
        """Records due from the start until ``t`` (the integral of :meth:`rate`)."""
        if t <= 0:
            return 0.0
        if self.duration is not None:
            t = min(t, self.duration)
        burst = min(t, self.burst_seconds)
        return burst * self.burst_rate + max(0.0, t - self.burst_seconds) * self.steady_rate


class Draw:
    """Picks which subscriptions the next records go to, in proportion to their weights,
    from a seeded generator (the same picks in every run with the same seed)."""

    def __init__(self, weights: list[float], seed: int = 1) -> None:
        if not weights or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("weights must be non-negative and not all zero")
        self.cum = list(itertools.accumulate(weights))
        self.rng = random.Random(f"krfeed-sim-profile:{seed}")

    def __call__(self, n: int) -> dict[int, int]:
        """Index -> how many of ``n`` records go to it."""
        out: dict[int, int] = {}
        if n <= 0:
            return out
        total = self.cum[-1]
        rnd = self.rng.random
        cum = self.cum
        hi = len(cum) - 1
        for _ in range(n):
            i = bisect.bisect_right(cum, rnd() * total, 0, hi)
            out[i] = out.get(i, 0) + 1
        return out


__all__ = [
    "KOSDAQ_LISTED",
    "KOSPI_LISTED",
    "UNIVERSES",
    "Draw",
    "Listing",
    "OpeningProfile",
    "activity_weights",
    "krx",
    "krx_by_code",
    "universe_codes",
]
