"""The Kiwoom codec against Kiwoom's own examples (kiwoom_api_spec_subset.json) and the seed.

Expected values are built here from the raw strings and the declared field kinds by a small
reference conversion written for the test (it does not call krfeed's converters); the seed
type 00 example, 0B and 0w are also spelled out by hand, field by field.
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import krfeed
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.protocol.messages import (
    ConditionList,
    ConditionResult,
    DecodeError,
    LoginResult,
    Ping,
    RegResult,
    SystemMessage,
    UnknownMessage,
)
from krfeed.records.base import Record
from krfeed.schema.catalog import UnknownType, get_type
from krfeed.schema.core import F
from krfeed.schema.enums import (
    ConditionEvent,
    Correction,
    Direction,
    Exchange,
    MarketSession,
    NoticeKind,
    OrderStatus,
    PriceSign,
    Side,
)

SPEC_PATH = Path(__file__).parent.parent / "fixtures" / "official" / "kiwoom_api_spec_subset.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
# the 19 domestic real-time types of Kiwoom's guide
SPEC_CODES: tuple[str, ...] = ("00", "04", "0A", "0B", "0C", "0D", "0E", "0F", "0G", "0H")
SPEC_CODES += ("0I", "0J", "0U", "0g", "0m", "0s", "0u", "0w", "1h")

KST = timezone(timedelta(hours=9))
# 12:00 KST on 2025-03-14: every HHmmss of the examples is within 12 hours, so on this date
RECEIVED_AT = datetime(2025, 3, 14, 3, 0, tzinfo=UTC)
DAY = date(2025, 3, 14)

# The seed's REG request (000_8ac022bb95be1661.txt), exactly as its client sends it.
SEED_REG = {"trnm": "REG", "grp_no": "1", "refresh": "1", "data": [{"item": [""], "type": ["00"]}]}


def realtime_part(text: str, marker: str = "#실시간 수신") -> dict[str, Any]:
    """The real-time part of a response_example (a Python literal in Kiwoom's guide)."""
    return ast.literal_eval(text.split(marker, 1)[1].strip())  # type: ignore[no-any-return]


def example(code: str) -> dict[str, Any]:
    """The official REAL frame of a type, as an object."""
    if code == "02":  # the type 02 push is in the CNSRREQ (ka10173) real-time example
        return realtime_part(SPEC["ka10173"]["response_example"], "#실시간데이터")
    return realtime_part(SPEC[code]["response_example"])


def frame_of(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


def first_part(text: str) -> dict[str, Any]:
    """A response_example that is one literal (optionally after a '#…' heading line)."""
    lines = [ln for ln in text.strip().splitlines() if not ln.startswith("#")]
    return ast.literal_eval("\n".join(lines))  # type: ignore[no-any-return]


# ---- the reference conversion (independent of krfeed.schema.convert) ----

ENUMS: dict[str, dict[str, Any]] = {
    "sign": {
        "1": PriceSign.LIMIT_UP,
        "2": PriceSign.UP,
        "3": PriceSign.FLAT,
        "4": PriceSign.LIMIT_DOWN,
        "5": PriceSign.DOWN,
    },
    "order_status": {
        "접수": OrderStatus.ACCEPTED,
        "체결": OrderStatus.FILLED,
        "확인": OrderStatus.CONFIRMED,
        "취소": OrderStatus.CANCELLED,
        "거부": OrderStatus.REJECTED,
    },
    "side12": {"1": Side.SELL, "2": Side.BUY},
    "side0102": {"01": Side.SELL, "02": Side.BUY},
    "session290": {
        "1": MarketSession.PRE_MARKET,
        "2": MarketSession.REGULAR,
        "3": MarketSession.POST_MARKET,
    },
    "exchange2134": {"0": Exchange.SOR, "1": Exchange.KRX, "2": Exchange.NXT},
    "exchange9081": {
        "1": Exchange.KRX,
        "2": Exchange.NXT,
        "KRX": Exchange.KRX,
        "NXT": Exchange.NXT,
    },
    "cntg_yn": {"1": NoticeKind.ACK, "2": NoticeKind.FILL},
    "rctf": {"0": Correction.NORMAL, "1": Correction.MODIFY, "2": Correction.CANCEL},
    "condition843": {"I": ConditionEvent.ENTER, "D": ConditionEvent.EXIT},
}
SIGNS = {"+": Direction.UP, "-": Direction.DOWN}
SIDES = {"+": Side.BUY, "-": Side.SELL}


def expected_attrs(f: F, raw: str | None) -> dict[str, Any]:
    """What a field's raw wire string must decode to, by kind (a reference implementation)."""
    s = (raw or "").strip()
    k = f.kind
    if k in ("price", "price_decimal", "aggressor_qty"):
        companion = f.name + ("_side" if k == "aggressor_qty" else "_dir")
        if not s:
            return {f.name: None, companion: None}
        number = int if k != "price_decimal" else Decimal
        if s[0] in "+-":
            mark = (SIDES if k == "aggressor_qty" else SIGNS)[s[0]]
            return {f.name: number(s[1:]), companion: mark}
        return {f.name: number(s), companion: None if k == "aggressor_qty" else Direction.FLAT}
    if not s:
        return {f.name: None}
    if k == "text":
        return {f.name: s}
    if k == "int":
        return {f.name: int(s)}
    if k == "decimal":
        return {f.name: Decimal(s)}
    if k == "time":
        if s == "000000":
            return {f.name: None}
        return {f.name: datetime(2025, 3, 14, int(s[:2]), int(s[2:4]), int(s[4:]), tzinfo=KST)}
    if k == "date":
        if s == "00000000":
            return {f.name: None}
        return {f.name: date(int(s[:4]), int(s[4:6]), int(s[6:]))}
    if k == "yn":
        return {f.name: {"Y": True, "N": False}[s]}
    if k == "flag01":
        return {f.name: {"1": True, "0": False}[s]}
    assert k.startswith("enum:"), k
    return {f.name: ENUMS[k[5:]].get(s, s)}


def fields_of(record: Record) -> dict[str, Any]:
    """The record's declared fields (every FID of these frames is declared: ``extra`` is
    empty, which is checked here)."""
    assert record.extra == {}  # type: ignore[attr-defined]
    return {name: getattr(record, name) for name in record.__struct_fields__ if name != "extra"}


def receive_all(frame: str | bytes, received_at: datetime = RECEIVED_AT) -> list[Any]:
    return list(KiwoomCodec().receive(frame, received_at))


def decode_one(frame: str | bytes, received_at: datetime = RECEIVED_AT) -> Any:
    out = receive_all(frame, received_at)
    assert len(out) == 1, out
    return out[0]


# ---- every official REAL example, field by field ----


@pytest.mark.parametrize("code", [*SPEC_CODES, "02"])
def test_official_real_example_decodes_field_by_field(code: str) -> None:
    obj = example(code)
    assert obj["trnm"] == "REAL"
    (entry,) = obj["data"]
    t = get_type("kiwoom", code)
    values: dict[str, str] = entry["values"]
    # nothing in the example is ignored by the declaration
    assert set(values) <= {f.wire for f in t.fields}

    rec = decode_one(frame_of(obj))

    assert isinstance(rec, Record)
    assert (rec.broker, rec.type) == ("kiwoom", code)
    expected: dict[str, Any] = {"received_at": RECEIVED_AT, "item": entry["item"]}
    for f in t.fields:
        expected.update(expected_attrs(f, values.get(f.wire)))
    assert fields_of(rec) == expected
    # the exact types too (Decimal vs int, enum members vs text)
    for name, want in expected.items():
        assert type(getattr(rec, name)) is type(want), name


def at(h: int, m: int, s: int) -> datetime:
    return datetime(2025, 3, 14, h, m, s, tzinfo=KST)


SEED_00_EXPECTED: dict[str, Any] = {
    "received_at": RECEIVED_AT,
    "item": "005930",
    "account_no": "1111111111",
    "order_no": "0000018",
    "manager_emp_no": None,
    "code": "005930",
    "order_category": "JJ",
    "order_status": OrderStatus.ACCEPTED,
    "stock_name": "삼성전자",
    "order_qty": 1,
    "order_price": 0,
    "unfilled_qty": 1,
    "cumulative_fill_amount": 0,
    "original_order_no": "0000000",
    "order_kind": "+매수",
    "trade_type": "시장가",
    "side": Side.BUY,
    "order_fill_time": at(9, 40, 22),
    "fill_no": None,
    "fill_price": None,
    "fill_qty": None,
    "current_price": 60700,
    "current_price_dir": Direction.UP,
    "best_ask": 60700,
    "best_ask_dir": Direction.UP,
    "best_bid": 60000,
    "best_bid_dir": Direction.DOWN,
    "unit_fill_price": None,
    "unit_fill_qty": None,
    "today_commission": 0,
    "today_tax": 0,
    "reject_reason": "0",
    "screen_no": None,
    "terminal_no": "0701002",
    "credit_type": "00",
    "loan_date": None,
    "after_hours_single_price": None,
    "after_hours_single_price_dir": None,
    "exchange": Exchange.KRX,
    "exchange_name": "KRX",
    "sor": True,
}

TRADE_0B_EXPECTED: dict[str, Any] = {
    "received_at": RECEIVED_AT,
    "item": "005930",
    "trade_time": at(16, 52, 8),
    "current_price": 20800,
    "current_price_dir": Direction.DOWN,
    "change": -50,
    "change_rate": Decimal("-0.24"),
    "best_ask": 20800,
    "best_ask_dir": Direction.DOWN,
    "best_bid": 20700,
    "best_bid_dir": Direction.DOWN,
    "trade_volume": 82,
    "trade_volume_side": Side.BUY,
    "cumulative_volume": 30379732,
    "cumulative_value": 632640,
    "open_price": 20850,
    "open_price_dir": Direction.FLAT,
    "high_price": 21150,
    "high_price_dir": Direction.UP,
    "low_price": 20450,
    "low_price_dir": Direction.DOWN,
    "change_sign": PriceSign.DOWN,
    "volume_vs_prev_day": -1057122,
    "trade_value_change": -22041267850,
    "volume_ratio_vs_prev_day": Decimal("-96.64"),
    "turnover_rate": Decimal("36.67"),
    "trade_cost": 44,
    "trade_strength": Decimal("98.92"),
    "market_cap": 17230,
    "market_session": MarketSession.REGULAR,
    "ko_proximity": "0",
    "upper_limit_time": None,
    "lower_limit_time": None,
    "volume_ratio_vs_prev_day_same_time": None,
    "open_time": None,
    "high_time": None,
    "low_time": None,
    "sell_fill_volume": None,
    "buy_fill_volume": None,
    "buy_fill_ratio": None,
    "sell_fill_count": None,
    "buy_fill_count": None,
    "instant_trade_value": None,
    "instant_trade_value_side": None,
    "tick_sell_volume": None,
    "tick_sell_volume_side": None,
    "tick_buy_volume": None,
    "net_buy_fill_volume": None,
    "cfd_margin": None,
    "maintenance_margin": None,
    "today_avg_price": None,
    "today_avg_price_dir": None,
    "cfd_trade_cost": None,
    "stock_loan_trade_cost": None,
    "exchange": Exchange.KRX,  # the table's code "1"
}

PROGRAM_0W_EXPECTED: dict[str, Any] = {
    "received_at": RECEIVED_AT,
    "item": "005930",
    "trade_time": at(11, 34, 42),
    "current_price": 60200,
    "current_price_dir": Direction.DOWN,
    "change_sign": PriceSign.DOWN,
    "change": -100,
    "change_rate": Decimal("-0.17"),
    "cumulative_volume": 128152628,
    "program_sell_qty": 0,
    "program_sell_amount": 0,
    "program_buy_qty": 8043,
    "program_buy_amount": 483,
    "program_net_buy_qty": 8043,
    "program_net_buy_qty_change": 0,
    "program_net_buy_amount": 483,
    "program_net_buy_amount_change": 0,
    # 214/215/216 are declared but absent from the official example
    "time_to_open": None,
    "market_operation": None,
    "investor_ticker": None,
}


@pytest.mark.parametrize(
    ("code", "cls_name", "expected"),
    [
        ("00", "OrderExecution", SEED_00_EXPECTED),
        ("0B", "StockTrade", TRADE_0B_EXPECTED),
        ("0w", "ProgramTrading", PROGRAM_0W_EXPECTED),
    ],
)
def test_hand_written_expectations(code: str, cls_name: str, expected: dict[str, Any]) -> None:
    rec = decode_one(frame_of(example(code)))
    assert type(rec).__name__ == cls_name
    assert fields_of(rec) == expected
    # same through the public convenience and from bytes
    (again,) = krfeed.decode(
        "kiwoom", frame_of(example(code)).encode("utf-8"), received_at=RECEIVED_AT
    )
    assert again == rec


# ---- encoders ----


def test_login_frame() -> None:
    frame = KiwoomCodec.login("WQJCwyqInphKnR3bSRtB9NE1lv")
    assert frame == '{"trnm":"LOGIN","token":"WQJCwyqInphKnR3bSRtB9NE1lv"}'


def test_reg_frame_of_the_seed_exactly() -> None:
    frame = KiwoomCodec.register([([""], ["00"])], grp_no="1", refresh=True)
    assert json.loads(frame) == SEED_REG
    assert list(json.loads(frame)) == list(SEED_REG)  # same key order as the seed
    assert frame == json.dumps(SEED_REG, ensure_ascii=False, separators=(",", ":"))
    # a bare "" item is the same block
    assert KiwoomCodec.register([("", "00")]) == frame


def test_reg_frame_of_the_protocol_doc() -> None:
    frame = KiwoomCodec.register([(["005930", "000660"], ["0B", "0D"])], grp_no="1")
    assert frame == (
        '{"trnm":"REG","grp_no":"1","refresh":"1",'
        '"data":[{"item":["005930","000660"],"type":["0B","0D"]}]}'
    )


def test_reg_frame_several_blocks_refresh_0() -> None:
    frame = KiwoomCodec.register(
        [
            (["005930", "039490_AL"], ["0B", "0D"]),
            ([""], ["00", "04"]),
            (["001"], ["0J", "0U"]),
        ],
        grp_no="12",
        refresh=False,
    )
    assert json.loads(frame) == {
        "trnm": "REG",
        "grp_no": "12",
        "refresh": "0",
        "data": [
            {"item": ["005930", "039490_AL"], "type": ["0B", "0D"]},
            {"item": [""], "type": ["00", "04"]},
            {"item": ["001"], "type": ["0J", "0U"]},
        ],
    }


def test_reg_rejects_bad_group_and_unknown_type() -> None:
    with pytest.raises(ValueError, match="grp_no"):
        KiwoomCodec.register([(["005930"], ["0B"])], grp_no="12345")
    with pytest.raises(ValueError, match="grp_no"):
        KiwoomCodec.register([(["005930"], ["0B"])], grp_no="")
    with pytest.raises(UnknownType, match="'ZZ'"):
        KiwoomCodec.register([(["005930"], ["ZZ"])])


def test_remove_frame() -> None:
    frame = KiwoomCodec.remove([(["005930"], ["0B"])], grp_no="1")
    assert frame == '{"trnm":"REMOVE","grp_no":"1","data":[{"item":["005930"],"type":["0B"]}]}'


@pytest.mark.parametrize(
    "text", ['{"trnm":"PING"}', '{ "trnm" : "PING" }', '{"trnm":"PING","seq":7,"t":"x"}']
)
def test_ping_is_echoed_unchanged(text: str) -> None:
    ping = decode_one(text)
    assert ping == Ping(broker="kiwoom", raw=text)
    assert KiwoomCodec.pong(ping) == text


def test_condition_list_frame_matches_ka10171() -> None:
    assert json.loads(KiwoomCodec.condition_list()) == json.loads(
        SPEC["ka10171"]["request_example"]
    )


def test_condition_request_one_off_matches_ka10172() -> None:
    frame = KiwoomCodec.condition_request("4", realtime=False)
    want = json.loads(SPEC["ka10172"]["request_example"])
    assert json.loads(frame) == want
    assert list(json.loads(frame)) == list(want)


def test_condition_request_realtime_matches_ka10173() -> None:
    frame = KiwoomCodec.condition_request("4", realtime=True)
    want = json.loads(SPEC["ka10173"]["request_example"])
    assert json.loads(frame) == want
    assert list(json.loads(frame)) == list(want)


def test_condition_clear_matches_ka10174() -> None:
    assert json.loads(KiwoomCodec.condition_clear("1")) == json.loads(
        SPEC["ka10174"]["request_example"]
    )


# ---- control frames in ----


def test_login_ok() -> None:
    msg = decode_one('{"trnm":"LOGIN","return_code":0,"return_msg":"정상적으로 처리되었습니다"}')
    assert msg == LoginResult(
        broker="kiwoom", ok=True, return_code=0, message="정상적으로 처리되었습니다"
    )
    assert msg.error_code is None


def test_login_failure_with_code_8005() -> None:
    text = (
        '{"trnm":"LOGIN","return_code":805004,"return_msg":"토큰 인증에 실패했습니다. '
        '접속을 종료합니다 [CODE=8005, MESSAGE=Token이 유효하지 않습니다]"}'
    )
    msg = decode_one(text)
    assert isinstance(msg, LoginResult)
    assert msg.ok is False
    assert msg.return_code == 805004
    assert msg.error_code == "8005"
    assert msg.message.startswith("토큰 인증에 실패했습니다")


@pytest.mark.parametrize(
    ("text", "trnm", "ok", "code", "message"),
    [
        ('{"trnm":"REG","return_code":0,"return_msg":""}', "REG", True, 0, ""),
        ('{"trnm":"REG","return_code":"0","return_msg":""}', "REG", True, 0, ""),
        ('{"trnm":"REG","return_code":1,"return_msg":"등록 오류"}', "REG", False, 1, "등록 오류"),
        ('{"trnm":"REG","return_code":"1","return_msg":"오류"}', "REG", False, 1, "오류"),
        ('{"trnm":"REMOVE","return_code":0,"return_msg":""}', "REMOVE", True, 0, ""),
        ('{"trnm":"REMOVE","return_code":"1","return_msg":"x"}', "REMOVE", False, 1, "x"),
    ],
)
def test_reg_and_remove_results(text: str, trnm: str, ok: bool, code: int, message: str) -> None:
    assert decode_one(text) == RegResult(
        broker="kiwoom", trnm=trnm, ok=ok, return_code=code, message=message
    )


def test_reg_result_of_the_official_example() -> None:
    reply = first_part(SPEC["0B"]["response_example"].split("#실시간 수신")[0])
    msg = decode_one(frame_of(reply))
    assert msg == RegResult(broker="kiwoom", trnm="REG", ok=True, return_code=0, message="")


def test_reg_result_with_non_numeric_return_code_is_a_decode_error() -> None:
    text = '{"trnm":"REG","return_code":"x","return_msg":""}'
    err = decode_one(text)
    assert isinstance(err, DecodeError)
    assert err.raw == text
    assert "return_code" in err.reason


def test_system_r10001() -> None:
    text = (
        '{"trnm":"SYSTEM","code":"R10001","message":"동일한 App key로 접속이 되었습니다. '
        '기존 세션은 종료가 됩니다"}'
    )
    assert decode_one(text) == SystemMessage(
        broker="kiwoom",
        code="R10001",
        message="동일한 App key로 접속이 되었습니다. 기존 세션은 종료가 됩니다",
    )


def test_condition_list_official_example() -> None:
    msg = decode_one(frame_of(first_part(SPEC["ka10171"]["response_example"])))
    assert msg == ConditionList(
        broker="kiwoom",
        ok=True,
        return_code=0,
        message="",
        conditions=[("0", "조건1"), ("1", "조건2"), ("2", "조건3"), ("3", "조건4"), ("4", "조건5")],
    )


def test_condition_list_with_space_padded_seq() -> None:
    text = (
        '{"trnm":"CNSRLST","return_code":0,"return_msg":"","data":[["0  ","조건1"],[" 12","급등"]]}'
    )
    msg = decode_one(text)
    assert isinstance(msg, ConditionList)
    assert msg.conditions == [("0", "조건1"), ("12", "급등")]


def test_condition_request_one_off_reply_ka10172() -> None:
    reply = first_part(SPEC["ka10172"]["response_example"])
    msg = decode_one(frame_of(reply))
    assert isinstance(msg, ConditionResult)
    assert (msg.trnm, msg.ok, msg.return_code, msg.message) == ("CNSRREQ", True, 0, "")
    assert msg.seq == "2"  # sent as '2  '
    assert (msg.cont_yn, msg.next_key) == ("N", "")
    assert msg.data == reply["data"]


def test_condition_request_realtime_reply_ka10173() -> None:
    text = SPEC["ka10173"]["response_example"].split("#실시간데이터")[0]
    reply = first_part(text)
    msg = decode_one(frame_of(reply))
    assert isinstance(msg, ConditionResult)
    assert (msg.trnm, msg.ok, msg.seq) == ("CNSRREQ", True, "4")
    assert msg.data == [{"jmcode": "A005930"}] * 31


def test_condition_clear_reply_ka10174() -> None:
    msg = decode_one(frame_of(first_part(SPEC["ka10174"]["response_example"])))
    assert msg == ConditionResult(
        broker="kiwoom", trnm="CNSRCLR", ok=True, return_code=0, message="", seq="1"
    )


def test_unknown_trnm_is_kept_whole() -> None:
    text = '{"trnm":"NEWTHING","x":1}'
    assert decode_one(text) == UnknownMessage(broker="kiwoom", raw=text, what="NEWTHING")


# ---- REAL frames with several entries ----


def entry_of(code: str) -> dict[str, Any]:
    (entry,) = example(code)["data"]
    return dict(entry)


def test_real_with_several_entries_of_different_types() -> None:
    frame = frame_of({"trnm": "REAL", "data": [entry_of("0B"), entry_of("0D"), entry_of("00")]})
    out = receive_all(frame)
    assert [type(m).__name__ for m in out] == ["StockTrade", "OrderBook", "OrderExecution"]
    assert fields_of(out[0]) == TRADE_0B_EXPECTED
    assert fields_of(out[2]) == SEED_00_EXPECTED
    assert out[1].ask_price_1 == 20800
    assert out[1].ask_price_1_dir is Direction.DOWN
    assert out[1].bid_qty_10 == 1062405


def test_real_with_one_bad_entry_among_good_ones() -> None:
    bad = entry_of("0B")
    bad["values"] = {**bad["values"], "10": "-20x00"}
    frame = frame_of({"trnm": "REAL", "data": [entry_of("0C"), bad, entry_of("0w")]})
    out = receive_all(frame)
    assert [type(m).__name__ for m in out] == ["BestQuote", "DecodeError", "ProgramTrading"]
    assert (out[0].best_ask, out[0].best_bid) == (20800, 20700)
    assert fields_of(out[2]) == PROGRAM_0W_EXPECTED
    err = out[1]
    assert isinstance(err, DecodeError)
    assert err.raw == frame
    assert err.type == "0B"
    assert err.received_at == RECEIVED_AT
    # names the entry, the FID, the Korean and English names and the bad value
    assert "data[1]" in err.reason
    assert "field 10 현재가 (current_price)" in err.reason
    assert "'-20x00'" in err.reason


@pytest.mark.parametrize("typ", ["ZZ", "0b", "TRADE", "StockTrade"])
def test_unknown_type_entry_is_a_decode_error(typ: str) -> None:
    odd = entry_of("0C")
    odd["type"] = typ
    frame = frame_of({"trnm": "REAL", "data": [odd, entry_of("0C")]})
    out = receive_all(frame)
    assert [type(m).__name__ for m in out] == ["DecodeError", "BestQuote"]
    assert out[0].reason == f"REAL data[0]: unknown real-time type {typ!r}"
    assert out[0].type == typ


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ('{"trnm":"REAL"}', "REAL frame has no 'data' list"),
        ('{"trnm":"REAL","data":{"type":"0B"}}', "REAL frame has no 'data' list"),
        ('{"trnm":"REAL","data":[7]}', "REAL data[0] is not an object"),
        ('{"trnm":"REAL","data":[{"values":{}}]}', "REAL data[0] has no 'type'"),
        ('{"trnm":"REAL","data":[{"type":"0C"}]}', "REAL data[0] has no 'values' object"),
    ],
)
def test_malformed_real_frames(frame: str, reason: str) -> None:
    err = decode_one(frame)
    assert isinstance(err, DecodeError)
    assert (err.raw, err.reason) == (frame, reason)


def test_real_with_empty_data_list_yields_nothing() -> None:
    assert receive_all('{"trnm":"REAL","data":[]}') == []


# ---- frames that are not Kiwoom frames ----


@pytest.mark.parametrize(
    ("frame", "raw", "reason_start"),
    [
        ('{"trnm":"REAL","data":[', '{"trnm":"REAL","data":[', "frame is not valid JSON"),
        ("", "", "frame is not valid JSON"),
        ("hello", "hello", "frame is not valid JSON"),
        ("[1,2,3]", "[1,2,3]", "frame is JSON but not an object"),
        ('"PING"', '"PING"', "frame is JSON but not an object"),
        ('{"return_code":0}', '{"return_code":0}', "frame has no 'trnm'"),
        (
            b'{"trnm":"PING"\xff}',
            '{"trnm":"PING"\ufffd}',
            "the frame was not valid UTF-8 (bad bytes replaced by U+FFFD), then: frame is not "
            "valid JSON",
        ),
    ],
)
def test_bad_frames_become_decode_errors(frame: str | bytes, raw: str, reason_start: str) -> None:
    err = decode_one(frame)
    assert isinstance(err, DecodeError)
    assert err.broker == "kiwoom"
    assert err.raw == raw
    assert err.reason.startswith(reason_start), err.reason
    assert err.received_at == RECEIVED_AT


def test_decode_rejects_key_for_kiwoom() -> None:
    with pytest.raises(ValueError, match="KIS frames only"):
        krfeed.decode("kiwoom", '{"trnm":"PING"}', key="k" * 32, iv="i" * 16)


# ---- times around midnight ----


def test_235959_received_just_after_midnight_lands_on_previous_date() -> None:
    entry = entry_of("0B")
    entry["values"] = {**entry["values"], "20": "235959"}
    received = datetime(2025, 3, 15, 0, 0, 5, tzinfo=KST)
    rec = decode_one(frame_of({"trnm": "REAL", "data": [entry]}), received)
    assert rec.trade_time == datetime(2025, 3, 14, 23, 59, 59, tzinfo=KST)
    assert rec.received_at == received


def test_000003_received_just_before_midnight_lands_on_next_date() -> None:
    entry = entry_of("0B")
    entry["values"] = {**entry["values"], "20": "000003"}
    received = datetime(2025, 3, 14, 23, 59, 58, tzinfo=KST)
    rec = decode_one(frame_of({"trnm": "REAL", "data": [entry]}), received)
    assert rec.trade_time == datetime(2025, 3, 15, 0, 0, 3, tzinfo=KST)


def test_trading_date_is_the_kst_date_of_a_utc_receive_time() -> None:
    # 2025-03-14 16:00 UTC is 2025-03-15 01:00 KST
    rec = decode_one(frame_of(example("0H")), datetime(2025, 3, 14, 16, 0, tzinfo=UTC))
    assert rec.trade_time == datetime(2025, 3, 15, 11, 2, 6, tzinfo=KST)
