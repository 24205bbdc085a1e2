"""The KIS catalog against KIS's official field order (kis_domestic_stock_fields.json)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from krfeed.schema.core import RESERVED, RealtimeType, validate
from krfeed.schema.kis_catalog import TYPES

FIELDS_PATH = (
    Path(__file__).parent.parent / "fixtures" / "official" / "kis_domestic_stock_fields.json"
)
SPEC: dict[str, Any] = json.loads(FIELDS_PATH.read_text(encoding="utf-8"))
BY_CODE: dict[str, RealtimeType] = {t.code: t for t in TYPES}

# H0STPGM0 response table of KIS's official document (the seed), in order
PGM_SEED = (
    ("MKSC_SHRN_ISCD", "유가증권단축종목코드"),
    ("STCK_CNTG_HOUR", "주식체결시간"),
    ("SELN_CNQN", "매도체결량"),
    ("SELN_TR_PBMN", "매도거래대금"),
    ("SHNU_CNQN", "매수2체결량"),
    ("SHNU_TR_PBMN", "매수2거래대금"),
    ("NTBY_CNQN", "순매수체결량"),
    ("NTBY_TR_PBMN", "순매수거래대금"),
    ("SELN_RSQN", "매도호가잔량"),
    ("SHNU_RSQN", "매수호가잔량"),
    ("WHOL_NTBY_QTY", "전체순매수호가잔량"),
)
PGM_NAMES = (
    "code",
    "time",
    "sell_qty",
    "sell_value",
    "buy_qty",
    "buy_value",
    "net_buy_qty",
    "net_buy_value",
    "ask_residual_qty",
    "bid_residual_qty",
    "total_net_bid_residual_qty",
)

# wire keys whose meaning differs between TRs, so they may carry different names
MEANING_DIFFERS = {"WHOL_NTBY_QTY"}  # 전체순매수호가잔량 (stock PGM0) / 전체순매수수량 (H0UPPGM0)


def test_catalog_covers_every_tr_once() -> None:
    assert len(TYPES) == 26
    assert len(BY_CODE) == len(TYPES)
    assert set(BY_CODE) == set(SPEC)
    assert all(t.broker == "kis" for t in TYPES)


@pytest.mark.parametrize("t", TYPES, ids=lambda t: t.code)
def test_validates(t: RealtimeType) -> None:
    validate(t)


@pytest.mark.parametrize("code", sorted(SPEC))
def test_wire_keys_in_official_order(code: str) -> None:
    """The samples' layout is one of the TR's layout versions (the wire may show an older one,
    and newer ones append), except where captured frames show the wire differs."""
    t = BY_CODE[code]
    official = [f["name"] for f in SPEC[code]["fields"]]
    if code in WIRE_DIFFERS:
        lead = WIRE_DIFFERS[code]
        assert [f.wire for f in t.fields[: len(lead)]] == lead
        assert [f.wire for f in t.fields[len(lead) :]] == official
        return
    assert len(official) in t.layouts
    assert [f.wire for f in t.fields[: len(official)]] == official


#: TRs whose live records differ from the samples' table other than by appended fields:
#: the fields the wire carries before the table's (see the captured fixtures).
WIRE_DIFFERS: dict[str, list[str]] = {"H0UNMKO0": ["MKSC_SHRN_ISCD"]}


def test_layout_versions_seen_on_the_live_wire() -> None:
    """The versions KIS's notices and users' captures show (kis.md, "Data frames")."""
    for code in ("H0STCNT0", "H0NXCNT0", "H0UNCNT0"):
        assert BY_CODE[code].layouts == (46, 47)
        assert BY_CODE[code].fields[46].wire == "MARKET_CLS_CODE"
    asp = BY_CODE["H0STASP0"]
    assert asp.layouts == (59, 62, 63)
    assert [f.wire for f in asp.fields[59:]] == [
        "KMID_PRC",
        "KMID_TOTAL_RSQN",
        "KMID_CLS_CODE",
        "MARKET_CLS_CODE",
    ]
    assert [asp.layout_label(w) for w in asp.layouts] == [
        "published",
        "KRX mid-price",
        "2026-09-14",
    ]
    assert BY_CODE["H0UNASP0"].layouts == (65, 66)
    assert BY_CODE["H0STPGM0"].layouts == (11,)


@pytest.mark.parametrize("code", sorted(SPEC))
def test_korean_names_from_official_samples(code: str) -> None:
    t = BY_CODE[code]
    lead = len(WIRE_DIFFERS.get(code, ()))
    fields = t.fields[lead : lead + len(SPEC[code]["fields"])]
    for f, official in zip(fields, SPEC[code]["fields"], strict=True):
        if "korean" in official:
            assert f.korean == official["korean"], (code, f.wire)
        assert f.korean.strip(), (code, f.wire)


@pytest.mark.parametrize("code", sorted(SPEC))
def test_title_is_the_official_title(code: str) -> None:
    title = BY_CODE[code].title
    assert code not in title and "구독" not in title and "함수" not in title
    # the JSON title starts with the same words, spacing aside
    official = re.sub(r"\s+", "", SPEC[code]["title"])
    assert official.startswith(re.sub(r"\s+", "", title).split("(")[0])


def test_program_trading_is_the_seed_table() -> None:
    t = BY_CODE["H0STPGM0"]
    assert tuple((f.wire, f.korean) for f in t.fields) == PGM_SEED
    assert t.real_only
    assert not t.encrypted and not t.account and t.mock_tr is None
    for code in ("H0STPGM0", "H0NXPGM0", "H0UNPGM0"):
        fields = BY_CODE[code].fields
        assert tuple(f.name for f in fields) == PGM_NAMES, code
        assert fields[1].kind == "time"
        assert all(f.kind == "int" for f in fields[2:]), code


def test_execution_notice_layout() -> None:
    real, mock = BY_CODE["H0STCNI0"], BY_CODE["H0STCNI9"]
    assert len(real.fields) == 26
    assert real.fields[13].wire == "CNTG_YN"
    assert real.fields[13].kind == "enum:cntg_yn"
    assert real.encrypted and real.account and real.mock_tr == "H0STCNI9"
    assert mock.encrypted and mock.account and mock.mock_tr is None
    assert real.fields == mock.fields
    kinds = {f.wire: f.kind for f in real.fields}
    assert kinds["SELN_BYOV_CLS"] == "enum:side0102"
    assert kinds["RCTF_CLS"] == "enum:rctf"
    assert kinds["RFUS_YN"] == "flag01"
    assert kinds["ODER_NO"] == kinds["OODER_NO"] == "text"  # leading zeros matter
    assert kinds["CRDT_LOAN_DATE"] == "date"


def test_only_documented_flags() -> None:
    for t in TYPES:
        if t.code in ("H0STCNI0", "H0STCNI9"):
            continue
        assert not (t.encrypted or t.account or t.mock_tr), t.code
        assert t.real_only == (t.code == "H0STPGM0"), t.code


def test_names_and_constants_unique() -> None:
    names = Counter(t.name for t in TYPES)
    constants = Counter(t.constant for t in TYPES)
    assert max(names.values()) == 1, names
    assert max(constants.values()) == 1, constants
    for t in TYPES:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", t.constant), t.constant
        assert t.description.endswith("."), t.code


def test_field_names_unique_and_not_reserved() -> None:
    for t in TYPES:
        names = [f.name for f in t.fields]
        assert len(names) == len(set(names)), t.code
        assert not set(names) & RESERVED, t.code


def test_same_wire_key_same_english_name_and_kind() -> None:
    seen: dict[str, tuple[str, str, str]] = {}
    for t in TYPES:
        for f in t.fields:
            if f.wire in MEANING_DIFFERS:
                continue
            first = seen.setdefault(f.wire, (f.name, f.kind, t.code))
            assert (f.name, f.kind) == first[:2], (t.code, f.wire, first)


def test_same_wire_key_same_korean_unless_official() -> None:
    """Korean names are uniform except where a TR's official sample names the field itself."""
    official = {
        (code, f["name"]) for code, entry in SPEC.items() for f in entry["fields"] if "korean" in f
    }
    seen: dict[str, str] = {}
    for t in TYPES:
        for f in t.fields:
            if f.wire in MEANING_DIFFERS or (t.code, f.wire) in official:
                continue
            assert f.korean == seen.setdefault(f.wire, f.korean), (t.code, f.wire)


def test_kinds_follow_the_wire_key_conventions() -> None:
    for t in TYPES:
        for f in t.fields:
            where = (t.code, f.wire)
            if f.wire.endswith("_SIGN"):
                assert f.kind == "enum:sign", where
            elif f.wire.endswith("_HOUR"):
                assert f.kind == "time", where
            elif f.wire.endswith("_DATE"):
                assert f.kind == "date", where
            elif f.wire.endswith(("_CTRT", "_RATE", "_RAT")) or "NMIX" in f.wire:
                assert f.kind == "decimal", where
            elif f.wire == "MARKET_CLS_CODE":  # appended 2026-09-14, a documented code set
                assert f.kind == "enum:market_cls", where
            elif f.wire.endswith(("_CLS_CODE", "_ISCD", "ODER_NO")):
                assert f.kind == "text", where
