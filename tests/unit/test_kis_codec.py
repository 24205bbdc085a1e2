"""The KIS codec: data frames built from the documented layouts, control replies, errors.

KIS publishes no example data frames beyond ``0|H0STCNT0|004|005930^123929^73100^5^...``, so the
frames here are built from the documented field layouts (kis_domestic_stock_fields.json and the
H0STPGM0 seed); the fixture names say so. Each fixture lists (wire key, raw string, expected
value) for every field, in wire order.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import krfeed
from krfeed.protocol.kis import KISCodec
from krfeed.protocol.messages import ControlReply, DecodeError, Ping, UnknownMessage
from krfeed.records.base import Record
from krfeed.schema.catalog import get_type
from krfeed.schema.enums import Correction, NoticeKind, PriceSign, Side

KST = timezone(timedelta(hours=9))
RECEIVED_AT = datetime(2025, 3, 14, 3, 0, tzinfo=UTC)  # 12:00 KST

# the key/iv of the SUBSCRIBE SUCCESS example in the protocol notes (32 / 16 ASCII characters)
AES_KEY = "iuheqrmvfxoceaxeyqgjwesozgizmmgx"
AES_IV = "d59d91fcf9fd0044"
APPROVAL_KEY = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"

Fixture = list[tuple[str, str, Any]]


def at(h: int, m: int, s: int) -> datetime:
    return datetime(2025, 3, 14, h, m, s, tzinfo=KST)


def H0STPGM0_FROM_DOCUMENTED_LAYOUT(code: str, hhmmss: str, n: int) -> Fixture:
    """One H0STPGM0 record (the seed's 11 fields) with values that vary with ``n``."""
    h, m, s = int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:])
    return [
        ("MKSC_SHRN_ISCD", code, code),
        ("STCK_CNTG_HOUR", hhmmss, at(h, m, s)),
        ("SELN_CNQN", str(1000 + n), 1000 + n),
        ("SELN_TR_PBMN", str(60500000 + n), 60500000 + n),
        ("SHNU_CNQN", str(1500 + n), 1500 + n),
        ("SHNU_TR_PBMN", str(90750000 + n), 90750000 + n),
        ("NTBY_CNQN", str(500 - 1000 * n), 500 - 1000 * n),
        ("NTBY_TR_PBMN", str(30250000 - 60500000 * n), 30250000 - 60500000 * n),
        ("SELN_RSQN", str(120000 + n), 120000 + n),
        ("SHNU_RSQN", str(95000 + n), 95000 + n),
        ("WHOL_NTBY_QTY", str(-25000 + n), -25000 + n),
    ]


# The protocol document's example starts "0|H0STCNT0|004|005930^123929^73100^5^..."
H0STCNT0_FROM_DOCUMENTED_LAYOUT: Fixture = [
    ("MKSC_SHRN_ISCD", "005930", "005930"),
    ("STCK_CNTG_HOUR", "123929", at(12, 39, 29)),
    ("STCK_PRPR", "73100", 73100),
    ("PRDY_VRSS_SIGN", "5", PriceSign.DOWN),
    ("PRDY_VRSS", "-600", -600),
    ("PRDY_CTRT", "-0.81", Decimal("-0.81")),
    ("WGHN_AVRG_STCK_PRC", "73227.53", Decimal("73227.53")),
    ("STCK_OPRC", "73500", 73500),
    ("STCK_HGPR", "73700", 73700),
    ("STCK_LWPR", "72900", 72900),
    ("ASKP1", "73200", 73200),
    ("BIDP1", "73100", 73100),
    ("CNTG_VOL", "15", 15),
    ("ACML_VOL", "8123456", 8123456),
    ("ACML_TR_PBMN", "594857123400", 594857123400),
    ("SELN_CNTG_CSNU", "12345", 12345),
    ("SHNU_CNTG_CSNU", "11234", 11234),
    ("NTBY_CNTG_CSNU", "-1111", -1111),
    ("CTTR", "88.45", Decimal("88.45")),
    ("SELN_CNTG_SMTN", "4212345", 4212345),
    ("SHNU_CNTG_SMTN", "3726012", 3726012),
    ("CCLD_DVSN", "5", "5"),
    ("SHNU_RATE", "46.94", Decimal("46.94")),
    ("PRDY_VOL_VRSS_ACML_VOL_RATE", "62.31", Decimal("62.31")),
    ("OPRC_HOUR", "090000", at(9, 0, 0)),
    ("OPRC_VRSS_PRPR_SIGN", "5", PriceSign.DOWN),
    ("OPRC_VRSS_PRPR", "-400", -400),
    ("HGPR_HOUR", "090312", at(9, 3, 12)),
    ("HGPR_VRSS_PRPR_SIGN", "5", PriceSign.DOWN),
    ("HGPR_VRSS_PRPR", "-600", -600),
    ("LWPR_HOUR", "110545", at(11, 5, 45)),
    ("LWPR_VRSS_PRPR_SIGN", "2", PriceSign.UP),
    ("LWPR_VRSS_PRPR", "200", 200),
    ("BSOP_DATE", "20250314", date(2025, 3, 14)),
    ("NEW_MKOP_CLS_CODE", "20", "20"),
    ("TRHT_YN", "N", False),
    ("ASKP_RSQN1", "45678", 45678),
    ("BIDP_RSQN1", "123456", 123456),
    ("TOTAL_ASKP_RSQN", "1234567", 1234567),
    ("TOTAL_BIDP_RSQN", "2345678", 2345678),
    ("VOL_TNRT", "0.14", Decimal("0.14")),
    ("PRDY_SMNS_HOUR_ACML_VOL", "9876543", 9876543),
    ("PRDY_SMNS_HOUR_ACML_VOL_RATE", "82.25", Decimal("82.25")),
    ("HOUR_CLS_CODE", "0", "0"),
    ("MRKT_TRTM_CLS_CODE", "", None),
    ("VI_STND_PRC", "73100", 73100),
]

H0STASP0_FROM_DOCUMENTED_LAYOUT: Fixture = [
    ("MKSC_SHRN_ISCD", "005930", "005930"),
    ("BSOP_HOUR", "093001", at(9, 30, 1)),
    ("HOUR_CLS_CODE", "0", "0"),
    *[(f"ASKP{i}", str(73100 + 100 * i), 73100 + 100 * i) for i in range(1, 11)],
    *[(f"BIDP{i}", str(73100 - 100 * (i - 1)), 73100 - 100 * (i - 1)) for i in range(1, 11)],
    *[(f"ASKP_RSQN{i}", str(1000 * i + 7), 1000 * i + 7) for i in range(1, 11)],
    *[(f"BIDP_RSQN{i}", str(2000 * i + 3), 2000 * i + 3) for i in range(1, 11)],
    ("TOTAL_ASKP_RSQN", "55070", 55070),
    ("TOTAL_BIDP_RSQN", "110030", 110030),
    ("OVTM_TOTAL_ASKP_RSQN", "0", 0),
    ("OVTM_TOTAL_BIDP_RSQN", "0", 0),
    ("ANTC_CNPR", "0", 0),
    ("ANTC_CNQN", "0", 0),
    ("ANTC_VOL", "0", 0),
    ("ANTC_CNTG_VRSS", "0", 0),
    ("ANTC_CNTG_VRSS_SIGN", "3", PriceSign.FLAT),
    ("ANTC_CNTG_PRDY_CTRT", "0.00", Decimal("0.00")),
    ("ACML_VOL", "8123456", 8123456),
    ("TOTAL_ASKP_RSQN_ICDC", "-123", -123),
    ("TOTAL_BIDP_RSQN_ICDC", "456", 456),
    ("OVTM_TOTAL_ASKP_ICDC", "0", 0),
    ("OVTM_TOTAL_BIDP_ICDC", "0", 0),
    ("STCK_DEAL_CLS_CODE", "0", "0"),
]

# The 26 fields of the decrypted execution notice (older clients assume 23 and break).
H0STCNI0_FROM_DOCUMENTED_LAYOUT: Fixture = [
    ("CUST_ID", "hts_user01", "hts_user01"),
    ("ACNT_NO", "5012345601", "5012345601"),
    ("ODER_NO", "0000012345", "0000012345"),
    ("OODER_NO", "", None),
    ("SELN_BYOV_CLS", "02", Side.BUY),
    ("RCTF_CLS", "0", Correction.NORMAL),
    ("ODER_KIND", "00", "00"),
    ("ODER_COND", "0", "0"),
    ("STCK_SHRN_ISCD", "005930", "005930"),
    ("CNTG_QTY", "10", 10),
    ("CNTG_UNPR", "73100", 73100),
    ("STCK_CNTG_HOUR", "101523", at(10, 15, 23)),
    ("RFUS_YN", "0", False),
    ("CNTG_YN", "2", NoticeKind.FILL),
    ("ACPT_YN", "2", "2"),
    ("BRNC_NO", "06010", "06010"),
    ("ODER_QTY", "10", 10),
    ("ACNT_NAME", "홍길동", "홍길동"),
    ("ORD_COND_PRC", "", None),
    ("ORD_EXG_GB", "1", "1"),
    ("POPUP_YN", "Y", True),
    ("FILLER", "", None),
    ("CRDT_CLS", "10", "10"),
    ("CRDT_LOAN_DATE", "00000000", None),
    ("CNTG_ISNM40", "삼성전자", "삼성전자"),
    ("ODER_PRC", "73100", 73100),
]


def payload_of(*records: Fixture) -> str:
    return "^".join(raw for fixture in records for _wire, raw, _v in fixture)


def check_record(rec: Any, tr_id: str, fixture: Fixture) -> None:
    """Every field of ``rec`` equals the fixture's expected value (and nothing else is set)."""
    t = get_type("kis", tr_id)
    assert isinstance(rec, Record)
    assert (rec.broker, rec.type) == ("kis", tr_id)
    # the fixture is one of the TR's layout versions (the published one, or a longer one)
    assert len(fixture) in t.layouts
    known = t.fields[: len(fixture)]
    assert [wire for wire, _raw, _v in fixture] == [f.wire for f in known]
    expected = {f.name: want for f, (_w, _r, want) in zip(known, fixture, strict=True)}
    for f in t.fields[len(fixture) :]:  # fields of later layouts: absent
        expected.update(dict.fromkeys(f.attrs))
    expected["received_at"] = RECEIVED_AT
    expected["item"] = fixture[0][1]
    expected["extra"] = ()
    got = {name: getattr(rec, name) for name in rec.__struct_fields__}
    assert got == expected
    for name, want in expected.items():
        assert type(got[name]) is type(want), name


def decode(frame: str | bytes, codec: KISCodec | None = None) -> list[Any]:
    return (codec or KISCodec()).receive(frame, RECEIVED_AT)


def encrypt(plain: str, key: str = AES_KEY, iv: str = AES_IV) -> str:
    """AES-256-CBC + PKCS#7 + base64, written with `cryptography` directly (not krfeed's)."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode("ascii")


def subscribe_success(tr_id: str, tr_key: str) -> str:
    return json.dumps(
        {
            "header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"},
            "body": {
                "rt_cd": "0",
                "msg_cd": "OPSP0000",
                "msg1": "SUBSCRIBE SUCCESS",
                "output": {"iv": AES_IV, "key": AES_KEY},
            },
        }
    )


# ---- data frames ----


def test_h0stpgm0_one_record() -> None:
    rec = H0STPGM0_FROM_DOCUMENTED_LAYOUT("005930", "093015", 0)
    frame = "0|H0STPGM0|001|" + payload_of(rec)
    assert frame == (
        "0|H0STPGM0|001|005930^093015^1000^60500000^1500^90750000^500^30250000^120000^95000^-25000"
    )
    (out,) = decode(frame)
    check_record(out, "H0STPGM0", rec)
    assert type(out).__name__ == "ProgramTrading"


def test_h0stpgm0_three_records_in_one_frame() -> None:
    recs = [
        H0STPGM0_FROM_DOCUMENTED_LAYOUT("005930", "093015", 0),
        H0STPGM0_FROM_DOCUMENTED_LAYOUT("000660", "093015", 1),
        H0STPGM0_FROM_DOCUMENTED_LAYOUT("035420", "093016", 2),
    ]
    out = decode("0|H0STPGM0|003|" + payload_of(*recs))
    assert len(out) == 3
    for got, rec in zip(out, recs, strict=True):
        check_record(got, "H0STPGM0", rec)
    assert [r.item for r in out] == ["005930", "000660", "035420"]


def test_h0stcnt0_46_fields() -> None:
    assert len(H0STCNT0_FROM_DOCUMENTED_LAYOUT) == 46
    frame = "0|H0STCNT0|001|" + payload_of(H0STCNT0_FROM_DOCUMENTED_LAYOUT)
    assert frame.startswith("0|H0STCNT0|001|005930^123929^73100^5^")
    (out,) = decode(frame)
    check_record(out, "H0STCNT0", H0STCNT0_FROM_DOCUMENTED_LAYOUT)


def test_h0stcnt0_four_records_like_the_documented_example() -> None:
    frame = "0|H0STCNT0|004|" + payload_of(*[H0STCNT0_FROM_DOCUMENTED_LAYOUT] * 4)
    out = decode(frame)
    assert len(out) == 4
    for rec in out:
        check_record(rec, "H0STCNT0", H0STCNT0_FROM_DOCUMENTED_LAYOUT)


def test_h0stasp0_59_fields() -> None:
    assert len(H0STASP0_FROM_DOCUMENTED_LAYOUT) == 59
    (out,) = decode("0|H0STASP0|001|" + payload_of(H0STASP0_FROM_DOCUMENTED_LAYOUT))
    check_record(out, "H0STASP0", H0STASP0_FROM_DOCUMENTED_LAYOUT)
    assert (out.ask_price_1, out.bid_price_1, out.ask_price_10) == (73200, 73100, 74100)


def test_data_frame_as_bytes() -> None:
    frame = "0|H0STPGM0|001|" + payload_of(H0STPGM0_FROM_DOCUMENTED_LAYOUT("005930", "093015", 0))
    assert decode(frame.encode("utf-8")) == decode(frame)


# ---- encrypted execution notices ----

CNI0_PLAIN = payload_of(H0STCNI0_FROM_DOCUMENTED_LAYOUT)
CNI0_FRAME = "1|H0STCNI0|001|" + encrypt(CNI0_PLAIN)


def test_encrypted_h0stcni0_after_subscribe_success() -> None:
    assert len(H0STCNI0_FROM_DOCUMENTED_LAYOUT) == 26
    codec = KISCodec(APPROVAL_KEY)
    assert not codec.has_key("H0STCNI0")
    (reply,) = decode(subscribe_success("H0STCNI0", "hts_user01"), codec)
    assert reply == ControlReply(
        broker="kis",
        tr_id="H0STCNI0",
        tr_key="hts_user01",
        rt_cd="0",
        msg_cd="OPSP0000",
        msg1="SUBSCRIBE SUCCESS",
        encrypt="N",
        has_key=True,
    )
    assert reply.ok
    assert codec.has_key("H0STCNI0")
    # the key stays inside the codec
    assert AES_KEY not in repr(codec) and AES_KEY not in repr(reply)

    (out,) = decode(CNI0_FRAME, codec)
    check_record(out, "H0STCNI0", H0STCNI0_FROM_DOCUMENTED_LAYOUT)
    assert out.account


def test_encrypted_h0stcni0_with_explicit_key_and_iv() -> None:
    (out,) = krfeed.decode("kis", CNI0_FRAME, key=AES_KEY, iv=AES_IV, received_at=RECEIVED_AT)
    check_record(out, "H0STCNI0", H0STCNI0_FROM_DOCUMENTED_LAYOUT)


def test_key_of_one_tr_does_not_decrypt_another() -> None:
    codec = KISCodec()
    decode(subscribe_success("H0STCNI9", "hts_user01"), codec)
    (err,) = decode(CNI0_FRAME, codec)
    assert isinstance(err, DecodeError)
    assert "no key/iv is known" in err.reason


# ---- subscribe / unsubscribe / heartbeat ----


def test_subscribe_frame_exactly() -> None:
    frame = KISCodec(APPROVAL_KEY).subscribe("H0STPGM0", "005930")
    assert frame == (
        '{"header":{"approval_key":"' + APPROVAL_KEY + '","custtype":"P","tr_type":"1",'
        '"content-type":"utf-8"},"body":{"input":{"tr_id":"H0STPGM0","tr_key":"005930"}}}'
    )


def test_unsubscribe_frame_corporate_exactly() -> None:
    frame = KISCodec(APPROVAL_KEY, custtype="B").unsubscribe("H0STCNI0", "hts_user01")
    assert json.loads(frame) == {
        "header": {
            "approval_key": APPROVAL_KEY,
            "custtype": "B",
            "tr_type": "2",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": "H0STCNI0", "tr_key": "hts_user01"}},
    }


def test_subscribe_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="custtype"):
        KISCodec(APPROVAL_KEY, custtype="X")
    with pytest.raises(ValueError, match="tr_key"):
        KISCodec(APPROVAL_KEY).subscribe("H0STCNT0", "")
    with pytest.raises(ValueError, match="both key and iv"):
        KISCodec(key=AES_KEY)


def test_pingpong_is_echoed_unchanged() -> None:
    text = '{"header":{"tr_id":"PINGPONG","datetime":"20241011121818"}}'
    (ping,) = decode(text)
    assert ping == Ping(broker="kis", raw=text)
    assert KISCodec.pong(ping) == text


# ---- control replies: every OPSP code of the protocol notes ----

OPSP = [
    ("OPSP0000", "SUBSCRIBE SUCCESS", "0", True),
    ("OPSP0001", "UNSUBSCRIBE SUCCESS", "0", True),
    ("OPSP0002", "ALREADY IN SUBSCRIBE", "1", True),  # counts as success
    ("OPSP0003", "UNSUBSCRIBE ERROR (not found!)", "1", False),
    ("OPSP0007", "SUBSCRIBE INTERNAL ERROR", "1", False),
    ("OPSP0008", "MAX SUBSCRIBE OVER", "1", False),
    ("OPSP0009", "SUBSCRIBE ERROR : mci send failed", "1", False),
    ("OPSP0011", "invalid approval(appkey) : NOT FOUND", "1", False),
    ("OPSP8991", "SUBSCRIBE ERROR : invalid tr_id", "1", False),
    ("OPSP8992", "SUBSCRIBE ERROR : invalid tr_key", "1", False),
    ("OPSP8996", "ALREADY IN USE appkey", "1", False),
    ("OPSP8997", "JSON PARSING ERROR : invalid tr_type", "1", False),
    ("OPSP8998", "JSON PARSING ERROR : invalid custtype", "1", False),
    ("OPSP9999", "JSON PARSING ERROR : invalid json format", "1", False),
]


@pytest.mark.parametrize(("msg_cd", "msg1", "rt_cd", "ok"), OPSP)
def test_control_reply(msg_cd: str, msg1: str, rt_cd: str, ok: bool) -> None:
    tr_id = "(null)" if msg_cd == "OPSP8996" else "H0STCNT0"
    text = json.dumps(
        {
            "header": {"tr_id": tr_id, "tr_key": "005930", "encrypt": "N"},
            "body": {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1},
        }
    )
    (reply,) = decode(text)
    assert reply == ControlReply(
        broker="kis",
        tr_id=tr_id,
        tr_key="005930",
        rt_cd=rt_cd,
        msg_cd=msg_cd,
        msg1=msg1,
        encrypt="N",
        has_key=False,
    )
    assert reply.ok is ok


def test_subscribe_success_of_the_protocol_notes() -> None:
    text = (
        '{"header":{"tr_id":"H0STASP0","tr_key":"005930","encrypt":"N"},'
        '"body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS",'
        '"output":{"iv":"d59d91fcf9fd0044","key":"iuheqrmvfxoceaxeyqgjwesozgizmmgx"}}}'
    )
    codec = KISCodec()
    (reply,) = decode(text, codec)
    assert isinstance(reply, ControlReply)
    assert (reply.tr_id, reply.msg_cd, reply.ok, reply.has_key) == (
        "H0STASP0",
        "OPSP0000",
        True,
        True,
    )
    assert codec.has_key("H0STASP0")


def test_control_reply_with_unusable_key_is_a_decode_error() -> None:
    text = json.dumps(
        {
            "header": {"tr_id": "H0STCNI0", "tr_key": "u", "encrypt": "N"},
            "body": {
                "rt_cd": "0",
                "msg_cd": "OPSP0000",
                "msg1": "SUBSCRIBE SUCCESS",
                "output": {"iv": "short", "key": AES_KEY},
            },
        }
    )
    (err,) = decode(text)
    assert isinstance(err, DecodeError)
    assert err.reason == (
        "H0STCNI0 reply carries an unusable AES key/iv: AES iv must be 16 characters, got 5"
    )


def test_control_frame_without_body_is_kept_whole() -> None:
    text = '{"header":{"tr_id":"H0STCNT0"}}'
    assert decode(text) == [UnknownMessage(broker="kis", raw=text, what="H0STCNT0")]


# ---- errors: DecodeError with a reason a person can act on ----

PGM_PAYLOAD = payload_of(H0STPGM0_FROM_DOCUMENTED_LAYOUT("005930", "093015", 0))
# an execution notice of an older layout: the last three fields missing
CNI0_23_FIELDS = "^".join(raw for _w, raw, _v in H0STCNI0_FROM_DOCUMENTED_LAYOUT[:23])


@pytest.mark.parametrize(
    ("frame", "reason", "typ"),
    [
        (
            "1|H0STCNI0|001|" + encrypt(CNI0_23_FIELDS),
            "H0STCNI0: records of 23 field(s), fewer than the oldest known layout (26 fields)",
            "H0STCNI0",
        ),
        (
            "0|H0STPGM0|002|" + PGM_PAYLOAD,
            "H0STPGM0: 11 fields do not split into 2 record(s) (known layouts: 11 fields per "
            "record)",
            "H0STPGM0",
        ),
        (
            "0|H0STPGM0|002|" + PGM_PAYLOAD + "^" + PGM_PAYLOAD + "^",
            "H0STPGM0: 23 fields do not split into 2 record(s) (known layouts: 11 fields per "
            "record)",
            "H0STPGM0",
        ),
        (
            "0|H0STPGM0|001|" + "^".join(PGM_PAYLOAD.split("^")[:10]),
            "H0STPGM0: records of 10 field(s), fewer than the oldest known layout (11 fields)",
            "H0STPGM0",
        ),
        (
            "0|H0STPGM0|000|" + PGM_PAYLOAD,
            "H0STPGM0: record count is '000': expected 1 or more",
            "H0STPGM0",
        ),
        ("0|H0STPGM0|0x1|" + PGM_PAYLOAD, "record count '0x1' is not a number", "H0STPGM0"),
        ("0|H0STPGM0||" + PGM_PAYLOAD, "record count '' is not a number", "H0STPGM0"),
        ("0|H0STPGM0|-01|" + PGM_PAYLOAD, "record count '-01' is not a number", "H0STPGM0"),
        ("0|H0XXXXX0|001|a^b", "unknown TR 'H0XXXXX0'", "H0XXXXX0"),
        ("0|h0stpgm0|001|" + PGM_PAYLOAD, "unknown TR 'h0stpgm0'", "h0stpgm0"),
        ("0|PROGRAM_TRADING|001|" + PGM_PAYLOAD, "unknown TR 'PROGRAM_TRADING'", "PROGRAM_TRADING"),
        (
            "1|H0STCNI0|001|!!notbase64!!",
            "H0STCNI0: encrypted payload is not valid base64",
            "H0STCNI0",
        ),
        (
            "1|H0STCNI0|001|" + encrypt(CNI0_PLAIN, key="x" * 32),
            "H0STCNI0: bad PKCS#7 padding after decryption (wrong key/iv?)",
            "H0STCNI0",
        ),
        (
            "1|H0STCNI0|001|" + base64.b64encode(b"0123456789").decode(),
            "H0STCNI0: encrypted payload is 10 bytes, not a multiple of 16",
            "H0STCNI0",
        ),
        (
            "0|H0STCNT0",
            "data frame needs 4 '|'-separated parts: enc|TR|NNN|payload",
            "",
        ),
        ("", "empty frame", ""),
        ("hello", "frame is neither JSON control ('{') nor data ('0|…' or '1|…')", ""),
        ("2|H0STPGM0|001|x", "frame is neither JSON control ('{') nor data ('0|…' or '1|…')", ""),
        ("{not json", "control frame is not valid JSON", ""),
        ("{}", "control frame has no 'header' object", ""),
    ],
)
def test_bad_frames_become_decode_errors(frame: str, reason: str, typ: str) -> None:
    (err,) = krfeed.decode("kis", frame, key=AES_KEY, iv=AES_IV, received_at=RECEIVED_AT)
    assert isinstance(err, DecodeError)
    assert err.broker == "kis"
    assert err.raw == frame
    assert err.reason.startswith(reason), err.reason
    assert err.type == typ
    assert err.received_at == RECEIVED_AT


def test_encrypted_frame_without_key() -> None:
    (err,) = decode(CNI0_FRAME)
    assert isinstance(err, DecodeError)
    assert err.raw == CNI0_FRAME
    assert err.type == "H0STCNI0"
    assert err.reason == (
        "H0STCNI0 frame is encrypted but no key/iv is known: its SUBSCRIBE SUCCESS reply was "
        "not seen (for captured traffic pass key and iv)"
    )


def test_non_utf8_frame() -> None:
    (err,) = decode(b"0|H0STPGM0|001|\xff\xfe")
    assert isinstance(err, DecodeError)
    assert err.reason.startswith(
        "the frame was not valid UTF-8 (bad bytes replaced by U+FFFD), then: "
    )
    assert err.raw == "0|H0STPGM0|001|\ufffd\ufffd"
    assert err.raw_bytes == b"0|H0STPGM0|001|\xff\xfe"


def test_bad_value_names_the_record_and_field() -> None:
    good = H0STPGM0_FROM_DOCUMENTED_LAYOUT("005930", "093015", 0)
    bad = list(H0STPGM0_FROM_DOCUMENTED_LAYOUT("000660", "093015", 1))
    bad[3] = ("SELN_TR_PBMN", "12,500", None)
    frame = "0|H0STPGM0|002|" + payload_of(good, bad)
    first, err = decode(frame)
    check_record(first, "H0STPGM0", good)
    assert isinstance(err, DecodeError)
    assert err.raw == frame
    assert err.reason.startswith(
        "H0STPGM0 record 2/2: field SELN_TR_PBMN 매도거래대금 (sell_value) = '12,500'"
    ), err.reason


def test_bad_time_names_the_field() -> None:
    rec = list(H0STPGM0_FROM_DOCUMENTED_LAYOUT("005930", "093015", 0))
    rec[1] = ("STCK_CNTG_HOUR", "256000", None)
    (err,) = decode("0|H0STPGM0|001|" + payload_of(rec))
    assert isinstance(err, DecodeError)
    assert "field STCK_CNTG_HOUR 주식체결시간 (time) = '256000'" in err.reason
