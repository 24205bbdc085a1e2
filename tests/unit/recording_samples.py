"""Sample frames and records for the recording tests (sinks, journal, recorder).

Kiwoom: the official REAL examples of the 19 domestic real-time types (kiwoom_api_spec_subset.json).
KIS: KIS publishes no example data frames beyond the H0STCNT0 prefix, so the KIS frames are
built from the documented field layouts (as in test_kis_codec.py), the H0STCNI0 notice
encrypted with the key/iv of the protocol notes' SUBSCRIBE SUCCESS example.
"""

from __future__ import annotations

import ast
import base64
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from krfeed.protocol.kis import KISCodec
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.records.base import Record
from krfeed.sinks.tables import Table

KST = timezone(timedelta(hours=9))
RECEIVED_AT = datetime(2025, 3, 14, 3, 0, 0, 123456, tzinfo=UTC)  # 12:00:00.123456 KST

SPEC_PATH = Path(__file__).parent.parent / "fixtures" / "official" / "kiwoom_api_spec_subset.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
KIWOOM_CODES = ("00", "04", "0A", "0B", "0C", "0D", "0E", "0F", "0G", "0H")
KIWOOM_CODES += ("0I", "0J", "0U", "0g", "0m", "0s", "0u", "0w", "1h")


def kiwoom_official_frame(code: str) -> str:
    """The official REAL frame of a Kiwoom type (the '#실시간 수신' part of its example)."""
    text = SPEC[code]["response_example"].split("#실시간 수신", 1)[1].strip()
    return json.dumps(ast.literal_eval(text), ensure_ascii=False)


def kiwoom_records(received_at: datetime = RECEIVED_AT) -> list[Record]:
    """One record of each of the 19 types, decoded from the official examples."""
    codec = KiwoomCodec()
    out: list[Record] = []
    for code in KIWOOM_CODES:
        (rec,) = codec.receive(kiwoom_official_frame(code), received_at)
        assert isinstance(rec, Record), rec
        out.append(rec)
    return out


# ---- KIS, built from the documented layouts ----

AES_KEY = "iuheqrmvfxoceaxeyqgjwesozgizmmgx"
AES_IV = "d59d91fcf9fd0044"

# H0STCNT0: the protocol document's example starts "0|H0STCNT0|004|005930^123929^73100^5^..."
H0STCNT0_FROM_DOCUMENTED_LAYOUT = (
    "005930^123929^73100^5^-600^-0.81^73227.53^73500^73700^72900^73200^73100^15^8123456^"
    "594857123400^12345^11234^-1111^88.45^4212345^3726012^5^46.94^62.31^090000^5^-400^"
    "090312^5^-600^110545^2^200^20250314^20^N^45678^123456^1234567^2345678^0.14^9876543^"
    "82.25^0^^73100"
)
# H0STCNI0: the 26 fields of the decrypted execution notice
H0STCNI0_FROM_DOCUMENTED_LAYOUT = (
    "hts_user01^5012345601^0000012345^^02^0^00^0^005930^10^73100^101523^0^2^2^06010^10^"
    "홍길동^^1^Y^^10^00000000^삼성전자^73100"
)


def h0stpgm0_from_documented_layout(code: str, hhmmss: str, n: int) -> str:
    """One H0STPGM0 record (the seed's 11 fields), values varying with ``n``."""
    values = [code, hhmmss, 1000 + n, 60500000 + n, 1500 + n, 90750000 + n, 500 - 1000 * n]
    values += [30250000 - 60500000 * n, 120000 + n, 95000 + n, -25000 + n]
    return "^".join(str(v) for v in values)


def h0stanc0_from_documented_layout(trade_class: str = "") -> str:
    """One H0STANC0 국내주식 실시간예상체결 frame before the open, its 45 fields in the order of
    kis_domestic_stock_fields.json (no capture of this TR is public). ``trade_class`` goes in
    CNTG_CLS_CODE, the first text field after the code: where the simulator's invalid_utf8
    fault writes CP949 text (no capture says which field carries it live)."""
    values = ["005930", "085012", "72000", "2", "300", "0.42", "0.00", "0", "0", "0"]
    values += ["72100", "71900", "0", "152341", "10968552000", "0", "0", "0", "0.00", "0"]
    values += ["0", trade_class, "0.00", "1.12", "", "3", "0", "", "3", "0", "", "3", "0"]
    values += ["20250314", "11", "N", "1520", "3310", "251340", "412880", "0.00", "136020"]
    values += ["112.00", "A", ""]
    return "0|H0STANC0|001|" + "^".join(values)


def kis_encrypt(plain: str, key: str = AES_KEY, iv: str = AES_IV) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode("ascii")


def kis_subscribe_success(tr_id: str, tr_key: str, *, with_key: bool = True) -> str:
    body: dict[str, Any] = {"rt_cd": "0", "msg_cd": "OPSP0000", "msg1": "SUBSCRIBE SUCCESS"}
    if with_key:
        body["output"] = {"iv": AES_IV, "key": AES_KEY}
    return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body})


KIS_CNI0_FRAME = "1|H0STCNI0|001|" + kis_encrypt(H0STCNI0_FROM_DOCUMENTED_LAYOUT)
KIS_CNT0_FRAME = "0|H0STCNT0|001|" + H0STCNT0_FROM_DOCUMENTED_LAYOUT


def kis_records(received_at: datetime = RECEIVED_AT) -> list[Record]:
    """H0STCNT0, H0STPGM0 and a decrypted H0STCNI0 execution notice."""
    codec = KISCodec()
    codec.receive(kis_subscribe_success("H0STCNI0", "hts_user01"), received_at)
    out: list[Record] = []
    for frame in (
        KIS_CNT0_FRAME,
        "0|H0STPGM0|001|" + h0stpgm0_from_documented_layout("005930", "100001", 1),
        KIS_CNI0_FRAME,
    ):
        (rec,) = codec.receive(frame, received_at)
        assert isinstance(rec, Record), rec
        out.append(rec)
    return out


# ---- reading values back ----


def expected_sql(kind: str, value: Any) -> Any:
    """What the SQLite sink must store for a value of a column kind."""
    if value is None:
        return None
    if kind == "text":
        return value.value if isinstance(value, Enum) else value
    if kind == "bool":
        return 1 if value else 0
    if kind in ("timestamp", "date"):
        return value.isoformat()
    return value


def python_value(kind: str, stored: Any) -> Any:
    """The record's value back from what SQLite stored."""
    if stored is None:
        return None
    if kind == "timestamp":
        return datetime.fromisoformat(stored)
    if kind == "date":
        return date.fromisoformat(stored)
    if kind == "decimal":
        return Decimal(str(stored))
    if kind == "bool":
        return bool(stored)
    return stored


def comparable(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def assert_row_matches(table: Table, record: Record, stored: tuple[Any, ...]) -> None:
    values = table.row(record)
    assert len(stored) == len(values) == len(table.columns)
    for col, want, got in zip(table.columns, values, stored, strict=True):
        back = python_value(col.kind, got)
        assert back == comparable(want), (table.name, col.name, want, got)
        if want is not None and col.kind == "timestamp":
            assert back.utcoffset() == want.utcoffset(), (col.name, got)  # offset kept
