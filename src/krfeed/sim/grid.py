"""The simulator's fixed market facts (:mod:`krfeed.sim.market`, which re-exports every name
here): the KRX tick grid, the instruments and sectors, small numeric helpers and the market
phases."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from krfeed.schema.enums import MarketSession

# ---- the KRX tick grid ----

_TICKS = ((2000, 1), (5000, 5), (20000, 10), (50000, 50), (200000, 100), (500000, 500))


def tick_size(price: int) -> int:
    """호가단위 of a price: <2000:1, <5000:5, <20000:10, <50000:50, <200000:100, <500000:500,
    else 1000."""
    for bound, tick in _TICKS:
        if price < bound:
            return tick
    return 1000


def on_grid(price: int) -> bool:
    return price > 0 and price % tick_size(price) == 0


def tick_up(price: int) -> int:
    return price + tick_size(price)


def tick_down(price: int) -> int:
    return price - tick_size(price - 1) if price > 1 else price


def floor_tick(price: int) -> int:
    return price - price % tick_size(price)


def ceil_tick(price: int) -> int:
    t = tick_size(price)
    r = price % t
    return price if r == 0 else floor_tick(price + t - r)


# ---- instruments ----

#: code -> (name, previous close). The simulator knows these; any other code is made up.
UNIVERSE: dict[str, tuple[str, int]] = {
    "005930": ("삼성전자", 71000),
    "000660": ("SK하이닉스", 178000),
    "373220": ("LG에너지솔루션", 405000),
    "005380": ("현대차", 245000),
    "035420": ("NAVER", 185000),
    "035720": ("카카오", 43250),
    "068270": ("셀트리온", 178500),
    "051910": ("LG화학", 372000),
    "039490": ("키움증권", 131000),
    "069500": ("KODEX 200", 35000),
    "247540": ("에코프로비엠", 198000),
    "005490": ("POSCO홀딩스", 389500),
}
#: Sector/index codes (Kiwoom 0J/0U items, KIS H0UP* keys): level in hundredths of a point.
SECTORS: dict[str, tuple[str, int]] = {
    "001": ("종합(KOSPI)", 265012),
    "101": ("종합(KOSDAQ)", 85033),
    "201": ("KOSPI200", 35061),
    "0001": ("종합(KOSPI)", 265012),
    "1001": ("종합(KOSDAQ)", 85033),
}

_SUFFIXES = ("_NX", "_AL")
_CENT = Decimal("0.01")


def base_code(item: str) -> str:
    """The instrument code of a subscription item: ``039490_AL`` -> ``039490``."""
    item = item.strip()
    for s in _SUFFIXES:
        if item.endswith(s):
            return item[: -len(s)]
    return item


def pct(a: int, b: int) -> Decimal:
    """``a / b`` in percent, two decimals (0 when b is 0)."""
    if not b:
        return Decimal("0.00")
    return (Decimal(a) * 100 / Decimal(b)).quantize(_CENT, rounding=ROUND_HALF_UP)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson-distributed count (Knuth for small means, normal approximation above 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass(frozen=True)
class Phase:
    """A market-session phase."""

    name: str
    session: MarketSession  # Kiwoom 290
    kiwoom_215: str  # Kiwoom 0s 215 장운영구분 announced when the phase starts
    kis_hour_cls: str  # KIS HOUR_CLS_CODE (0 장중, A 장후예상, B 장전예상, D 시간외단일가예상)
    kis_mkop: str  # KIS NEW_MKOP_CLS_CODE (UNVERIFIED codes)
    market_class: MarketSession  # KIS MARKET_CLS_CODE (1 pre, 2 regular, 3 after, 5 closing)
    trades: bool
    auction: bool
    share: float  # fraction of a simulated day


_PRE, _REG, _POST = MarketSession.PRE_MARKET, MarketSession.REGULAR, MarketSession.POST_MARKET
PRE_OPEN = Phase("pre_open", _PRE, "0", "B", "10", _PRE, False, True, 0.1)
REGULAR = Phase("regular", _REG, "3", "0", "20", _REG, True, False, 0.7)
CLOSING = Phase(
    "closing_auction", _REG, "2", "A", "30", MarketSession.CLOSING_AUCTION, False, True, 0.1
)
AFTER_HOURS = Phase("after_hours", _POST, "4", "D", "40", _POST, True, False, 0.1)
PHASES = (PRE_OPEN, REGULAR, CLOSING, AFTER_HOURS)
