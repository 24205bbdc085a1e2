"""Condition search helpers on Kiwoom's own examples (kiwoom_api_spec_subset.json: ka10172
and ka10173 response examples) and on the forms the guide leaves open."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from krfeed.conditions import (
    ConditionError,
    ConditionSet,
    _codes,
    check_seq,
    hit_event,
    match_of,
    plain_code,
)
from krfeed.events import ConditionUnwatched, ConditionWatched
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.records.kiwoom import ConditionHit
from krfeed.schema.enums import ConditionEvent, PriceSign

# ka10172 response_example, 4th row (the one with a non-zero change)
KA10172_ROW = {
    "9001": "A005930",
    "302": "삼성전자",
    "10": "000075000",
    "25": "5",
    "11": "-00000100",
    "12": "-00000130",
    "13": "010386116",
    "16": "000075100",
    "17": "000075600",
    "18": "000074700",
}
# ka10173 response_example, the real-time part
KA10173_REAL = (
    '{"data":[{"values":{"841":"4","9001":"005930","843":"I","20":"152028","907":"2"},'
    '"type":"02","name":"조건검색","item":"005930"}],"trnm":"REAL"}'
)


def test_search_row_of_the_official_example() -> None:
    m = match_of(KA10172_ROW)
    assert m.code == "005930" and m.name == "삼성전자"
    assert (m.price, m.sign, m.change) == (75000, PriceSign.DOWN, -100)
    # '000001500' is +1.50 %, so '-00000130' is -0.130 % (-100 / 75100 won)
    assert m.change_rate == Decimal("-0.130")
    assert (m.volume, m.open, m.high, m.low) == (10386116, 75100, 75600, 74700)
    flat = match_of({"9001": "A005930", "10": "000021850", "25": "3", "12": "000000000"})
    assert (flat.price, flat.sign, flat.change_rate, flat.volume) == (
        21850,
        PriceSign.FLAT,
        Decimal("0.000"),
        None,
    )


def test_realtime_answer_codes() -> None:
    # ka10173 response_example: the current matches as jmcode with the A prefix (repeated)
    assert _codes([{"jmcode": "A005930"}, {"jmcode": "A005930"}, {"jmcode": "Q500001"}]) == [
        "005930",
        "500001",
    ]
    assert _codes(None) == [] and _codes([]) == []


def test_both_forms_of_code_and_event() -> None:
    assert plain_code("A005930") == plain_code("005930") == plain_code(" 005930 ") == "005930"
    assert plain_code("J123456") == "123456" and plain_code("0001A0") == "0001A0"
    assert hit_event("I") is hit_event("i") is hit_event("편입") is ConditionEvent.ENTER
    assert hit_event("D") is hit_event(" d ") is hit_event("이탈") is ConditionEvent.EXIT
    assert hit_event(ConditionEvent.EXIT) is ConditionEvent.EXIT
    assert hit_event("X") is None and hit_event(None) is None


def test_seq_is_checked() -> None:
    assert check_seq(4) == "4" and check_seq(" 12 ") == "12"
    for bad in ("", "abc", "1234", "-1"):
        with pytest.raises(ConditionError, match="not a number of up to 3 digits"):
            check_seq(bad)


def test_condition_set_follows_the_stream() -> None:
    at = datetime(2026, 12, 4, 6, 20, 28, tzinfo=UTC)
    (hit,) = KiwoomCodec().receive(KA10173_REAL, at)
    assert isinstance(hit, ConditionHit)
    assert (hit.condition_seq, hit.code, hit.condition_event) == (
        "4",
        "005930",
        ConditionEvent.ENTER,
    )
    s = ConditionSet()
    assert s.update(
        ConditionWatched(broker="kiwoom", session="kiwoom#1", seq="4", codes=("000660",))
    )
    assert s.update(hit)
    assert s.codes("4") == {"000660", "005930"}
    left = ConditionHit(
        received_at=at, item="000660", condition_seq="4", code="000660", condition_event="D"
    )  # the other form: a plain str
    assert s.update(left) and s.codes("4") == {"005930"}
    assert not s.update(object())
    assert s.update(ConditionUnwatched(broker="kiwoom", session="kiwoom#1", seq="4"))
    assert s.codes("4") == set()
