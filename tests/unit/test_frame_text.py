"""Frames that are not valid UTF-8: lenient text (krfeed.protocol.text) through both codecs."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import krfeed
from krfeed.protocol.messages import DecodeError
from krfeed.protocol.text import CP949, REPLACED, frame_text

RECEIVED_AT = datetime(2025, 3, 14, 3, 0, tzinfo=UTC)
SPEC_PATH = Path(__file__).parent.parent / "fixtures" / "official" / "kiwoom_api_spec_subset.json"


def kiwoom_0b_official() -> str:
    """Kiwoom's own 0B 주식체결 REAL example (kiwoom_api_spec_subset.json), as one frame."""
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    text: str = spec["0B"]["response_example"]
    obj = ast.literal_eval(text.split("#실시간 수신", 1)[1].strip())
    return json.dumps(obj, ensure_ascii=False)


def H0STMKO0_FROM_DOCUMENTED_LAYOUT(reason: str) -> str:
    """One H0STMKO0 record (the 11 fields of kis_domestic_stock_fields.json) with a halt
    reason in TR_SUSP_REAS_CNTT, the TR's free-text field."""
    fields = ["005930", "Y", reason, "20", "", "N", "0", "51", "N", "N", "1"]
    return "0|H0STMKO0|001|" + "^".join(fields)


@pytest.mark.parametrize(
    ("data", "text", "how"),
    [
        (b"0|H0STPGM0|001|005930", "0|H0STPGM0|001|005930", None),
        ("삼성전자".encode(), "삼성전자", None),
        ("삼성전자 거래정지".encode("cp949"), "삼성전자 거래정지", CP949),
        (b"\xff\xfe005930", "\ufffd\ufffd005930", REPLACED),
        # a CP949 lead byte cut off at the end of the frame: neither encoding, so replaced
        ("정지".encode("cp949")[:3], "\ufffd" * 3, REPLACED),
        (b"", "", None),
    ],
)
def test_frame_text(data: bytes, text: str, how: str | None) -> None:
    assert frame_text(data) == (text, how)


def test_kis_cp949_text_field_decodes_to_the_korean_text() -> None:
    frame = H0STMKO0_FROM_DOCUMENTED_LAYOUT("감자 후 변경상장").encode("cp949")
    with pytest.raises(UnicodeDecodeError):
        frame.decode("utf-8")
    (rec,) = krfeed.decode("kis", frame, received_at=RECEIVED_AT)
    assert not isinstance(rec, DecodeError), rec
    assert rec.type == "H0STMKO0"
    assert rec.item == "005930"
    assert rec.halted is True
    assert rec.halt_reason == "감자 후 변경상장"
    assert rec.market_op_code == "20"
    assert rec.stock_status_code == "51"


def test_kiwoom_cp949_frame_decodes_like_the_utf8_one() -> None:
    text = kiwoom_0b_official()
    assert "주식체결" in text
    want = krfeed.decode("kiwoom", text, received_at=RECEIVED_AT)
    assert want and not any(isinstance(m, DecodeError) for m in want)
    got = krfeed.decode("kiwoom", text.encode("cp949"), received_at=RECEIVED_AT)
    assert got == want


def test_undecodable_kis_frame_is_a_decode_error_with_its_bytes() -> None:
    frame = b"0|H0STPGM0|001|\xff\xfe"
    (err,) = krfeed.decode("kis", frame, received_at=RECEIVED_AT)
    assert isinstance(err, DecodeError)
    assert err.raw_bytes == frame
    assert err.raw == "0|H0STPGM0|001|\ufffd\ufffd"
    assert err.type == "H0STPGM0"
    assert err.reason.startswith(
        "the frame was not valid UTF-8 (bad bytes replaced by U+FFFD), then: "
    )


def test_undecodable_kiwoom_frame_is_a_decode_error_with_its_bytes() -> None:
    frame = b'\xff{"trnm":"PING"}'
    (err,) = krfeed.decode("kiwoom", frame, received_at=RECEIVED_AT)
    assert isinstance(err, DecodeError)
    assert err.raw_bytes == frame
    assert err.raw == '\ufffd{"trnm":"PING"}'
    assert "then: frame is not valid JSON" in err.reason
    assert err.reason.startswith(
        "the frame was not valid UTF-8 (bad bytes replaced by U+FFFD), then: "
    )


def test_valid_utf8_bytes_keep_no_raw_bytes() -> None:
    (err,) = krfeed.decode("kis", b"0|H0STPGM0|001|005930", received_at=RECEIVED_AT)
    assert isinstance(err, DecodeError)
    assert err.raw_bytes is None
    assert err.raw == "0|H0STPGM0|001|005930"
