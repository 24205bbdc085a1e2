"""Order-event mapping of both brokers (krfeed.orders.model.normalize).

Kiwoom: the official type 00 example of Kiwoom's guide (kiwoom_api_spec_subset.json, a 접수 of a
market buy) as sent, and the other states (체결, 확인, 취소, 거부) built from that example and the
documented field table (the fixture names say FROM_DOCUMENTED_LAYOUT). KIS publishes no
H0STCNI0 example: every notice here is built from the documented 26-field layout
(kis_domestic_stock_fields.json), encrypted like the real server does and decoded by krfeed.
"""

from __future__ import annotations

import ast
import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import krfeed
from krfeed.orders import OrderEvent, normalize
from krfeed.orders.model import action_of, order_no_of, order_type_of, side_of
from krfeed.records.base import Record
from krfeed.schema.enums import Side

SPEC_PATH = Path(__file__).parent.parent / "fixtures" / "official" / "kiwoom_api_spec_subset.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
KST = timezone(timedelta(hours=9))
RECEIVED_AT = datetime(2025, 3, 14, 3, 0, tzinfo=UTC)  # 12:00 KST


def at(h: int, m: int, s: int) -> datetime:
    return datetime(2025, 3, 14, h, m, s, tzinfo=KST)


# ---- Kiwoom 00 ----


def official_00_frame() -> dict[str, Any]:
    """The REAL frame of the guide's type 00 example (a Python literal after '#실시간 수신')."""
    text = SPEC["00"]["response_example"]
    return ast.literal_eval(text.split("#실시간 수신", 1)[1].strip())  # type: ignore[no-any-return]


KIWOOM_00_ACCEPTED_OFFICIAL: dict[str, str] = official_00_frame()["data"][0]["values"]


def kiwoom_values(**changes: str) -> dict[str, str]:
    """The official example with some FIDs changed (wire keys: ``fid_913="체결"``)."""
    out = dict(KIWOOM_00_ACCEPTED_OFFICIAL)
    for k, v in changes.items():
        out[k.removeprefix("fid_")] = v
    return out


# a limit buy of 10 at 60,000 filled 3 (its first fill) — built from the documented layout
KIWOOM_00_PARTIAL_FILL_FROM_DOCUMENTED_LAYOUT = kiwoom_values(
    fid_913="체결",
    fid_900="10",
    fid_901="60000",
    fid_902="7",
    fid_903="180000",
    fid_906="보통",
    fid_908="094025",
    fid_909="0000101",
    fid_910="60000",
    fid_911="3",
    fid_914="60000",
    fid_915="3",
    fid_938="20",
    fid_939="0",
)
# the second and last fill of that order: 7 at 60,100 (cumulative 10, amount 600,700)
KIWOOM_00_COMPLETE_FILL_FROM_DOCUMENTED_LAYOUT = kiwoom_values(
    fid_913="체결",
    fid_900="10",
    fid_901="60100",
    fid_902="0",
    fid_903="600700",
    fid_906="보통",
    fid_908="094031",
    fid_909="0000102",
    fid_910="60100",
    fid_911="10",
    fid_914="60100",
    fid_915="7",
    fid_938="90",
    fid_939="0",
)
# a cancel request (새 주문번호 0000019) of order 0000018, confirmed
KIWOOM_00_CANCEL_CONFIRMED_FROM_DOCUMENTED_LAYOUT = kiwoom_values(
    fid_9203="0000019", fid_913="확인", fid_904="0000018", fid_905="매수취소", fid_902="0"
)
# a modify request (0000020) of order 0000018 to 59,900, confirmed
KIWOOM_00_MODIFY_CONFIRMED_FROM_DOCUMENTED_LAYOUT = kiwoom_values(
    fid_9203="0000020", fid_913="확인", fid_904="0000018", fid_905="매수정정", fid_901="59900"
)
# an IOC sell whose unfilled remainder the exchange cancelled
KIWOOM_00_IOC_CANCELLED_FROM_DOCUMENTED_LAYOUT = kiwoom_values(
    fid_913="취소", fid_905="-매도", fid_907="1", fid_906="보통(IOC)", fid_902="0", fid_2134="2"
)
KIWOOM_00_REJECTED_FROM_DOCUMENTED_LAYOUT = kiwoom_values(
    fid_913="거부", fid_919="가격제한폭을 벗어난 주문입니다", fid_906="보통", fid_901="99000"
)


def kiwoom_event(values: dict[str, str]) -> OrderEvent:
    frame = {"trnm": "REAL", "data": [{"type": "00", "name": "주문체결", "item": "005930"}]}
    frame["data"][0]["values"] = values  # type: ignore[index]
    (rec,) = krfeed.decode("kiwoom", json.dumps(frame, ensure_ascii=False), received_at=RECEIVED_AT)
    assert isinstance(rec, Record)
    ev = normalize(rec)
    assert ev is not None
    assert ev.record is rec
    return ev


def test_kiwoom_official_example_is_an_acceptance() -> None:
    ev = kiwoom_event(KIWOOM_00_ACCEPTED_OFFICIAL)
    assert ev.to_dict(with_record=False) == {
        "event": "OrderEvent",
        "broker": "kiwoom",
        "account": "1111111111",  # 9201
        "order_no": "0000018",  # 9203
        "kind": "accepted",  # 913 접수
        "original_order_no": None,  # 904 0000000
        "code": "005930",  # 9001
        "name": "삼성전자",  # 302
        "side": Side.BUY,  # 907 2
        "action": "new",  # 905 +매수
        "order_type": "market",  # 906 시장가
        "order_qty": 1,  # 900
        "order_price": 0,  # 901
        "complete": False,
        "fill_no": None,  # 909 ''
        "fill_qty": None,  # 915 ''
        "fill_price": None,  # 914 ''
        "filled_qty": None,  # 911 ''
        "filled_amount": 0,  # 903
        "remaining_qty": 1,  # 902
        "exchange": "KRX",  # 2134 1
        "time": at(9, 40, 22),  # 908
        "reason": None,  # 919 '0'
        "commission": 0,  # 938
        "tax": 0,  # 939
        "source": "live",
        "received_at": RECEIVED_AT,
        "record": None,
    }


def test_kiwoom_partial_and_complete_fills() -> None:
    first = kiwoom_event(KIWOOM_00_PARTIAL_FILL_FROM_DOCUMENTED_LAYOUT)
    assert (first.kind, first.complete) == ("filled", False)
    assert (first.fill_no, first.fill_qty, first.fill_price) == ("0000101", 3, 60000)  # 909/915/914
    assert (first.filled_qty, first.filled_amount, first.remaining_qty) == (3, 180000, 7)
    assert (first.order_type, first.order_qty, first.commission) == ("limit", 10, 20)
    last = kiwoom_event(KIWOOM_00_COMPLETE_FILL_FROM_DOCUMENTED_LAYOUT)
    assert (last.kind, last.complete) == ("filled", True)
    assert (last.fill_qty, last.filled_qty, last.remaining_qty) == (7, 10, 0)  # 915 vs 911


def test_kiwoom_confirmations_cancellations_rejections() -> None:
    cancel = kiwoom_event(KIWOOM_00_CANCEL_CONFIRMED_FROM_DOCUMENTED_LAYOUT)
    assert (cancel.kind, cancel.action, cancel.order_no, cancel.original_order_no) == (
        "cancelled",
        "cancel",
        "0000019",
        "0000018",
    )
    modify = kiwoom_event(KIWOOM_00_MODIFY_CONFIRMED_FROM_DOCUMENTED_LAYOUT)
    assert (modify.kind, modify.action, modify.order_price) == ("modified", "modify", 59900)
    assert modify.side is Side.BUY
    ioc = kiwoom_event(KIWOOM_00_IOC_CANCELLED_FROM_DOCUMENTED_LAYOUT)
    assert (ioc.kind, ioc.action, ioc.side, ioc.order_type) == (
        "cancelled",
        "new",
        Side.SELL,
        "limit_ioc",
    )
    assert ioc.exchange == "NXT"
    rej = kiwoom_event(KIWOOM_00_REJECTED_FROM_DOCUMENTED_LAYOUT)
    assert (rej.kind, rej.reason) == ("rejected", "가격제한폭을 벗어난 주문입니다")


def test_kiwoom_unknown_status_or_no_order_number_is_not_an_event() -> None:
    frame = {"trnm": "REAL", "data": [{"type": "00", "item": "", "values": kiwoom_values()}]}
    frame["data"][0]["values"]["913"] = "보류"  # type: ignore[index]
    (rec,) = krfeed.decode("kiwoom", json.dumps(frame, ensure_ascii=False))
    assert isinstance(rec, Record)
    assert normalize(rec) is None
    frame["data"][0]["values"] = kiwoom_values(fid_9203="")  # type: ignore[index]
    (rec,) = krfeed.decode("kiwoom", json.dumps(frame, ensure_ascii=False))
    assert isinstance(rec, Record)
    assert normalize(rec) is None


# ---- KIS H0STCNI0 / H0STCNI9 ----

AES_KEY = "iuheqrmvfxoceaxeyqgjwesozgizmmgx"  # the SUBSCRIBE SUCCESS example in kis.md
AES_IV = "d59d91fcf9fd0044"

# A fill notice (CNTG_YN 2) in the documented order of the 26 fields.
H0STCNI0_FILL_FROM_DOCUMENTED_LAYOUT: dict[str, str] = {
    "CUST_ID": "hts_user01",
    "ACNT_NO": "5012345601",
    "ODER_NO": "0000012345",
    "OODER_NO": "",
    "SELN_BYOV_CLS": "02",
    "RCTF_CLS": "0",
    "ODER_KIND": "00",
    "ODER_COND": "0",
    "STCK_SHRN_ISCD": "005930",
    "CNTG_QTY": "4",
    "CNTG_UNPR": "73100",
    "STCK_CNTG_HOUR": "101523",
    "RFUS_YN": "0",
    "CNTG_YN": "2",
    "ACPT_YN": "2",
    "BRNC_NO": "06010",
    "ODER_QTY": "10",
    "ACNT_NAME": "홍길동",
    "ORD_COND_PRC": "",
    "ORD_EXG_GB": "1",
    "POPUP_YN": "Y",
    "FILLER": "",
    "CRDT_CLS": "10",
    "CRDT_LOAN_DATE": "00000000",
    "CNTG_ISNM40": "삼성전자",
    "ODER_PRC": "73100",
}


def kis_notice(tr: str = "H0STCNI0", **changes: str) -> dict[str, str]:
    out = dict(H0STCNI0_FILL_FROM_DOCUMENTED_LAYOUT)
    out.update(changes)
    return out


# acknowledgements (CNTG_YN 1), built from the documented layout; CNTG_QTY/CNTG_UNPR repeat the
# order's quantity/price on these (as KIS's sample client reads them)
H0STCNI0_ACCEPTED_FROM_DOCUMENTED_LAYOUT = kis_notice(CNTG_YN="1", ACPT_YN="1", CNTG_QTY="10")
H0STCNI0_REJECTED_FROM_DOCUMENTED_LAYOUT = kis_notice(CNTG_YN="1", ACPT_YN="1", RFUS_YN="1")
H0STCNI0_MODIFY_CONFIRMED_FROM_DOCUMENTED_LAYOUT = kis_notice(
    CNTG_YN="1", ACPT_YN="2", RCTF_CLS="1", ODER_NO="0000012346", OODER_NO="0000012345"
)
H0STCNI0_CANCEL_CONFIRMED_FROM_DOCUMENTED_LAYOUT = kis_notice(
    CNTG_YN="1", ACPT_YN="2", RCTF_CLS="2", ODER_NO="0000012347", OODER_NO="0000012345"
)
H0STCNI0_IOC_CANCELLED_FROM_DOCUMENTED_LAYOUT = kis_notice(
    CNTG_YN="1", ACPT_YN="3", ODER_KIND="11", SELN_BYOV_CLS="01", ORD_EXG_GB="3"
)


def encrypt(plain: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(AES_KEY.encode()), modes.CBC(AES_IV.encode())).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode("ascii")


def kis_event(fields: dict[str, str], tr: str = "H0STCNI0") -> OrderEvent:
    frame = f"1|{tr}|001|" + encrypt("^".join(fields.values()))
    (rec,) = krfeed.decode("kis", frame, key=AES_KEY, iv=AES_IV, received_at=RECEIVED_AT)
    assert isinstance(rec, Record)
    ev = normalize(rec)
    assert ev is not None
    return ev


def test_kis_fill_notice_cntg_yn_2() -> None:
    assert len(H0STCNI0_FILL_FROM_DOCUMENTED_LAYOUT) == 26
    ev = kis_event(H0STCNI0_FILL_FROM_DOCUMENTED_LAYOUT)
    assert ev.to_dict(with_record=False) == {
        "event": "OrderEvent",
        "broker": "kis",
        "account": "5012345601",  # ACNT_NO
        "order_no": "0000012345",  # ODER_NO
        "kind": "filled",  # CNTG_YN 2
        "original_order_no": None,  # OODER_NO ''
        "code": "005930",  # STCK_SHRN_ISCD
        "name": "삼성전자",  # CNTG_ISNM40
        "side": Side.BUY,  # SELN_BYOV_CLS 02
        "action": "new",  # RCTF_CLS 0
        "order_type": "limit",  # ODER_KIND 00
        "order_qty": 10,  # ODER_QTY
        "order_price": 73100,  # ODER_PRC
        "complete": False,  # the tracker decides
        "fill_no": None,  # not on the wire: the tracker assigns one
        "fill_qty": 4,  # CNTG_QTY
        "fill_price": 73100,  # CNTG_UNPR
        "filled_qty": None,
        "filled_amount": None,
        "remaining_qty": None,
        "exchange": "KRX",  # ORD_EXG_GB 1
        "time": at(10, 15, 23),  # STCK_CNTG_HOUR
        "reason": None,
        "commission": None,
        "tax": None,
        "source": "live",
        "received_at": RECEIVED_AT,
        "record": None,
    }


@pytest.mark.parametrize(
    ("fields", "kind", "action"),
    [
        (H0STCNI0_ACCEPTED_FROM_DOCUMENTED_LAYOUT, "accepted", "new"),
        (H0STCNI0_REJECTED_FROM_DOCUMENTED_LAYOUT, "rejected", "new"),
        (H0STCNI0_MODIFY_CONFIRMED_FROM_DOCUMENTED_LAYOUT, "modified", "modify"),
        (H0STCNI0_CANCEL_CONFIRMED_FROM_DOCUMENTED_LAYOUT, "cancelled", "cancel"),
        (H0STCNI0_IOC_CANCELLED_FROM_DOCUMENTED_LAYOUT, "cancelled", "new"),
    ],
)
def test_kis_acknowledgements_cntg_yn_1(fields: dict[str, str], kind: str, action: str) -> None:
    ev = kis_event(fields)
    assert (ev.kind, ev.action) == (kind, action)
    assert ev.fill_qty is None and ev.fill_price is None  # CNTG_QTY is not a fill on an ack
    if action != "new":
        assert ev.original_order_no == "0000012345"


def test_kis_ioc_cancel_maps_exchange_and_side() -> None:
    ev = kis_event(H0STCNI0_IOC_CANCELLED_FROM_DOCUMENTED_LAYOUT)
    assert (ev.side, ev.order_type, ev.exchange) == (Side.SELL, "limit_ioc", "SOR")


def test_kis_mock_notice_h0stcni9_maps_the_same() -> None:
    real = kis_event(H0STCNI0_FILL_FROM_DOCUMENTED_LAYOUT)
    mock = kis_event(H0STCNI0_FILL_FROM_DOCUMENTED_LAYOUT, tr="H0STCNI9")
    assert mock.record is not None and mock.record.type == "H0STCNI9"
    assert mock.to_dict(with_record=False) == real.to_dict(with_record=False)


def test_other_records_are_not_order_events() -> None:
    frame = "0|H0STPGM0|001|005930^101523^1^2^3^4^5^6^7^8^9"
    (rec,) = krfeed.decode("kis", frame)
    assert isinstance(rec, Record)
    assert normalize(rec) is None


def test_helpers() -> None:
    assert order_no_of("kiwoom", "0000000") is None
    assert order_no_of("kiwoom", " 18") == "0000018"
    assert order_no_of("kis", "12345") == "0000012345"
    assert order_no_of("kis", "") is None
    assert [action_of(x) for x in ("+매수", "매도정정", "매수취소", "현금매도")] == [
        "new",
        "modify",
        "cancel",
        "new",
    ]
    assert [side_of(x) for x in ("+매수", "-매도", "매도취소", "현금매수", "?")] == [
        Side.BUY,
        Side.SELL,
        Side.SELL,
        Side.BUY,
        None,
    ]
    assert order_type_of("kiwoom", "최유리(FOK)") == "best_fok"
    assert order_type_of("kis", "13") == "market_ioc"
    assert order_type_of("kis", "99") == "99"  # unknown codes are kept
