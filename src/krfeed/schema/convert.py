"""Wire string <-> Python value converters for every value kind.

Decoders are compiled per type (see :mod:`krfeed.schema.compile`); these functions are the
building blocks they call. Each ``to_*`` takes the wire string (or None when the key is absent)
and raises ValueError on a malformed value; each ``from_*`` is its inverse.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TypeVar

from krfeed.schema.enums import Direction, Side

KST = timezone(timedelta(hours=9), "KST")
_EPOCH_UTC = datetime(2000, 1, 1, tzinfo=UTC)
_EPOCH_KST = _EPOCH_UTC.astimezone(KST)
_HALF_DAY = timedelta(hours=12)
_ONE_DAY = timedelta(days=1)
T = TypeVar("T")


def to_text(s: str | None) -> str | None:
    if not s:
        return None
    s = s.strip()
    return s or None


def to_int(s: str | None) -> int | None:
    if not s:
        return None
    s = s.strip()
    if not s:
        return None
    if "_" in s:
        raise ValueError(f"{s!r} is not an integer")
    return int(s)


def _level(body: str, s: str) -> int:
    if not body.isdigit():
        raise ValueError(f"{s!r} is not a signed price or quantity")
    return int(body)


def to_decimal(s: str | None) -> Decimal | None:
    if not s:
        return None
    s = s.strip()
    if not s:
        return None
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"{s!r} is not a decimal number") from None
    if not d.is_finite():
        raise ValueError(f"{s!r} is not a finite number")
    return d


def to_price(s: str | None) -> tuple[int | None, Direction | None]:
    if not s:
        return None, None
    s = s.strip()
    if not s:
        return None, None
    c = s[0]
    if c == "+":
        return _level(s[1:], s), Direction.UP
    if c == "-":
        return _level(s[1:], s), Direction.DOWN
    return _level(s, s), Direction.FLAT


def to_price_decimal(s: str | None) -> tuple[Decimal | None, Direction | None]:
    if not s:
        return None, None
    s = s.strip()
    if not s:
        return None, None
    c = s[0]
    d = Direction.UP if c == "+" else Direction.DOWN if c == "-" else Direction.FLAT
    body = s[1:] if d is not Direction.FLAT else s
    if not body or body[0] in "+-":
        raise ValueError(f"{s!r} is not a signed level")
    v = to_decimal(body)
    return v, d


def to_aggressor_qty(s: str | None) -> tuple[int | None, Side | None]:
    if not s:
        return None, None
    s = s.strip()
    if not s:
        return None, None
    c = s[0]
    if c == "+":
        return _level(s[1:], s), Side.BUY
    if c == "-":
        return _level(s[1:], s), Side.SELL
    return _level(s, s), None


def to_date(s: str | None) -> date | None:
    if not s:
        return None
    s = s.strip()
    if not s or s == "00000000":
        return None
    if len(s) != 8 or not s.isdigit():
        raise ValueError(f"{s!r} is not a YYYYMMDD date")
    return date(int(s[:4]), int(s[4:6]), int(s[6:]))


def to_yn(s: str | None) -> bool | None:
    if not s:
        return None
    s = s.strip()
    if s == "Y":
        return True
    if s == "N":
        return False
    if not s:
        return None
    raise ValueError(f"{s!r} is not Y or N")


def to_flag01(s: str | None) -> bool | None:
    if not s:
        return None
    s = s.strip()
    if s == "1":
        return True
    if s == "0":
        return False
    if not s:
        return None
    raise ValueError(f"{s!r} is not 0 or 1")


def enum_converter(mapping: dict[str, Enum]) -> object:
    """A converter for one coded field: known codes become members, unknown ones stay text."""
    get = mapping.get

    def to_enum(s: str | None) -> Enum | str | None:
        if not s:
            return None
        s = s.strip()
        if not s:
            return None
        return get(s, s)

    return to_enum


#: HHmmss as sent -> datetime on that date, per trading date (shared by every TradingDay).
_TIMES_BY_DATE: dict[date, dict[str, datetime]] = {}
_MAX_TIMES = 100_000
#: business date -> its TradingDay (see TradingDay.on), a few at a time
_ON_DATE: dict[date, TradingDay] = {}


class TradingDay:
    """Turns HHmmss broker times (KST) into aware datetimes on the trading date.

    The date is the KST date of the receive time; a time more than 12 hours away from the
    receive time belongs to the neighbouring day (frames received just after midnight).

    One is made per frame. ``times`` (HHmmss as sent -> datetime on the date, shared by every
    frame of that date) and the window ``lo``..``hi`` (receive time ± 12 h) are public so that
    the compiled decoders can resolve a time inline: a cached time inside the window is the
    answer; anything else goes through :meth:`time`.
    """

    __slots__ = ("_day", "hi", "lo", "times")

    def __init__(self, received_at: datetime) -> None:
        if received_at.tzinfo is UTC:  # the usual case: arithmetic, not a tz conversion
            recv = _EPOCH_KST + (received_at - _EPOCH_UTC)
        else:
            recv = received_at.astimezone(KST)
        day = recv.date()
        self._day = day
        self.lo = recv - _HALF_DAY
        self.hi = recv + _HALF_DAY
        times = _TIMES_BY_DATE.get(day)
        if times is None:
            if len(_TIMES_BY_DATE) >= 3:  # today, and the neighbours around midnight
                _TIMES_BY_DATE.clear()
            times = _TIMES_BY_DATE[day] = {}
        self.times = times

    @property
    def day(self) -> date:
        return self._day

    def on(self, d: date) -> TradingDay:
        """The trading date ``d`` itself (a record's own business date): every HHmmss is on
        ``d``, whatever the receive time."""
        td = _ON_DATE.get(d)
        if td is None:
            if len(_ON_DATE) >= 8:
                _ON_DATE.clear()
            td = _ON_DATE[d] = TradingDay.__new__(TradingDay)
            td._day = d
            td.lo = datetime.combine(d, time(0), KST)
            td.hi = td.lo + _ONE_DAY - timedelta(microseconds=1)
            td.times = {}  # its own: replaying an old capture leaves today's cache alone
        return td

    @property
    def ymd(self) -> str:
        """The date as the brokers write it (YYYYMMDD)."""
        return self._day.strftime("%Y%m%d")

    def time(self, s: str | None) -> datetime | None:
        if not s:
            return None
        dt = self.times.get(s)
        if dt is None:
            t = s.strip()
            if not t or t == "000000":
                return None
            if len(t) != 6 or not t.isdigit():
                raise ValueError(f"{s!r} is not an HHmmss time")
            h, m, sec = int(t[:2]), int(t[2:4]), int(t[4:])
            if h > 23 or m > 59 or sec > 59:
                raise ValueError(f"{s!r} is not a valid HHmmss time")
            dt = datetime.combine(self._day, time(h, m, sec), KST)
            if len(self.times) >= _MAX_TIMES:  # 86,400 seconds a day, plus padded spellings
                self.times.clear()
            self.times[s] = dt
        if dt > self.hi:
            return dt - _ONE_DAY
        if dt < self.lo:
            return dt + _ONE_DAY
        return dt


def memoized(conv: Callable[[str], T], maxsize: int) -> tuple[dict[str, T], Callable[[str], T]]:
    """``(cache, miss)`` for a converter whose result depends on the wire string alone.

    The compiled decoders look a value up in ``cache`` and call ``miss`` (convert, remember,
    return) when it is not there. Prices, rates, codes and dates repeat all day, so most
    lookups hit; the cache is emptied when it reaches ``maxsize`` (bounded memory). A value
    the converter rejects is not remembered: ``miss`` raises exactly what ``conv`` raises.
    """
    cache: dict[str, T] = {}

    def miss(s: str) -> T:
        v = conv(s)
        if len(cache) >= maxsize:
            cache.clear()
        cache[s] = v
        return v

    return cache, miss


# ---- encoders (value -> wire string), used by the simulator, tests and replay tooling ----


def from_text(v: object) -> str:
    return "" if v is None else str(v)


def from_price(level: int | None, direction: Direction | None) -> str:
    if level is None:
        return ""
    if direction is Direction.UP:
        return f"+{level}"
    if direction is Direction.DOWN:
        return f"-{level}"
    return str(level)


def from_price_decimal(level: Decimal | None, direction: Direction | None) -> str:
    if level is None:
        return ""
    if direction is Direction.UP:
        return f"+{level}"
    if direction is Direction.DOWN:
        return f"-{level}"
    return str(level)


def from_aggressor_qty(qty: int | None, side: Side | None) -> str:
    if qty is None:
        return ""
    if side is Side.BUY:
        return f"+{qty}"
    if side is Side.SELL:
        return f"-{qty}"
    return str(qty)


def from_time(v: datetime | None) -> str:
    return "" if v is None else v.astimezone(KST).strftime("%H%M%S")


def from_date(v: date | None) -> str:
    return "" if v is None else v.strftime("%Y%m%d")


def from_yn(v: bool | None) -> str:
    return "" if v is None else ("Y" if v else "N")


def from_flag01(v: bool | None) -> str:
    return "" if v is None else ("1" if v else "0")
