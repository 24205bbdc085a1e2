"""Kiwoom condition search's data: the saved conditions and one-off search rows, the wire
forms of the answers (ka10171-ka10174) and the consumer's view of the watched sets. The
requests themselves are made by :mod:`krfeed.conditions`, which re-exports every name here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import msgspec

from krfeed.errors import ConditionError as ConditionError  # defined there, importable here
from krfeed.events import ConditionRestored, ConditionUnwatched, ConditionWatched
from krfeed.records.kiwoom import ConditionHit
from krfeed.schema.enums import ENUM_KINDS, ConditionEvent, PriceSign


@dataclass
class ConditionLimits:
    """Kiwoom's limits on condition search, enforced locally (UNVERIFIED figures: Kiwoom's
    REST guide gives none; these are the ones reported for its API)."""

    #: Real-time condition searches held at once per login (a clear error beyond it).
    max_watches: int = 10
    #: Least seconds between two condition requests (they are spaced, not refused).
    request_interval: float = 0.2
    #: Seconds to wait for an answer, including waiting for the session to be connected.
    timeout: float = 15.0
    #: Pages of one search at most (a server that keeps saying cont_yn=Y is an error).
    max_pages: int = 500


class Condition(msgspec.Struct, frozen=True):
    """A saved condition (조건검색식): its number and its name."""

    seq: str
    name: str


class ConditionMatch(msgspec.Struct, frozen=True, kw_only=True):
    """One stock of a one-off search (ka10172 row): numbers as ints, the rate in percent."""

    code: str
    name: str = ""
    price: int | None = None
    sign: PriceSign | None = None
    change: int | None = None
    change_rate: Decimal | None = None
    volume: int | None = None
    open: int | None = None
    high: int | None = None
    low: int | None = None


# ---- wire forms ----

#: 25 전일대비기호, as every decoded record reads it
_SIGNS = cast("dict[str, PriceSign]", ENUM_KINDS["sign"][1])
# 843 삽입삭제 구분: ka10173 documents "I: 삽입, D: 삭제" and its example sends "I". Nothing says
# the case or whether the words of 영웅문's screens (편입/이탈) can appear instead, so both
# forms are accepted (kiwoom_api_spec_subset.json, ka10173 response, field 843).
_EVENTS = {
    "I": ConditionEvent.ENTER,
    "D": ConditionEvent.EXIT,
    "편입": ConditionEvent.ENTER,
    "이탈": ConditionEvent.EXIT,
}


def hit_event(value: object) -> ConditionEvent | None:
    """The meaning of a 02 record's ``condition_event`` (843) in either form, or None."""
    if isinstance(value, ConditionEvent):
        return value
    if isinstance(value, str):
        v = value.strip()
        return _EVENTS.get(v.upper()) or _EVENTS.get(v)
    return None


def plain_code(code: str | None) -> str:
    """A stock code without the one-letter prefix Kiwoom puts on condition results:
    ``A005930`` -> ``005930`` (A 주식, J ELW, Q ETN, per ka10172 field 9001). The 02 push
    sends ``9001`` without it (ka10173 example); both forms are accepted."""
    c = (code or "").strip()
    if len(c) == 7 and c[0] in "AJQ" and c[1:].isalnum():
        return c[1:]
    return c


def _num(v: object) -> int | None:
    """A 9-character zero-padded, possibly signed number (``-00000100``)."""
    if not isinstance(v, str | int) or isinstance(v, bool):
        return None
    s = str(v).strip()
    if not s:
        return None
    try:
        return int(s)
    except ValueError:
        return None


def match_of(row: dict[str, Any]) -> ConditionMatch:
    """A ka10172 result row as a :class:`ConditionMatch`. 등락율 (12) is sent in thousandths
    of a percent: ``000001500`` is +1.50 % (ka10172, field 12)."""
    price = _num(row.get("10"))
    rate = _num(row.get("12"))
    return ConditionMatch(
        code=plain_code(str(row.get("9001") or "")),
        name=str(row.get("302") or "").strip(),
        price=abs(price) if price is not None else None,
        sign=_SIGNS.get(str(row.get("25") or "").strip()),
        change=_num(row.get("11")),
        change_rate=Decimal(rate).scaleb(-3) if rate is not None else None,
        volume=_num(row.get("13")),
        open=_abs(_num(row.get("16"))),
        high=_abs(_num(row.get("17"))),
        low=_abs(_num(row.get("18"))),
    )


def _abs(v: int | None) -> int | None:
    return abs(v) if v is not None else None


def _codes(data: object) -> list[str]:
    """The codes of a real-time CNSRREQ answer: ``[{"jmcode": "A005930"}, …]`` (ka10173)."""
    out: list[str] = []
    if not isinstance(data, list):
        return out
    for d in data:
        raw = d.get("jmcode") or d.get("9001") if isinstance(d, dict) else d
        code = plain_code(str(raw or ""))
        if code and code not in out:
            out.append(code)
    return out


def check_seq(seq: str | int) -> str:
    """A condition number as sent: 1 to 3 digits (ka10172 seq, length 3)."""
    s = str(seq).strip()
    if not s.isdigit() or len(s) > 3:
        raise ConditionError(
            f"condition seq {str(seq)!r} is not a number of up to 3 digits "
            "(krfeed conditions lists the saved ones)"
        )
    return s


# ---- the consumer's view ----


class ConditionSet:
    """The stocks matching each watched condition, kept from the stream a consumer reads:
    feed it every item (``ConditionWatched`` sets, 02 records add and remove,
    ``ConditionUnwatched`` clears). What ``krfeed conditions watch`` shows."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[str, datetime | None]] = {}

    def update(self, item: object) -> bool:
        """Apply one stream item; True when it concerned a condition."""
        if isinstance(item, ConditionWatched):
            self.sets[item.seq] = {c: None for c in item.codes}
            return True
        if isinstance(item, ConditionHit):
            seq = (item.condition_seq or "").strip()
            codes = self.sets.setdefault(seq, {})
            code = plain_code(item.code or item.item)
            ev = hit_event(item.condition_event)
            if ev is ConditionEvent.ENTER:
                codes[code] = item.event_time or item.received_at
            elif ev is ConditionEvent.EXIT:
                codes.pop(code, None)
            return True
        if isinstance(item, ConditionUnwatched):
            self.sets.pop(item.seq, None)
            return True
        return isinstance(item, ConditionRestored)

    def codes(self, seq: str) -> set[str]:
        return set(self.sets.get(seq, {}))
