"""The Kiwoom catalog against Kiwoom's own field tables (kiwoom_api_spec_subset.json)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from krfeed.schema.core import RESERVED, RealtimeType, validate
from krfeed.schema.kiwoom_catalog import TYPES

SPEC_PATH = Path(__file__).parent.parent / "fixtures" / "official" / "kiwoom_api_spec_subset.json"
# the 19 domestic real-time types of the guide
SPEC_CODES = ("00", "04", "0A", "0B", "0C", "0D", "0E", "0F", "0G", "0H")
SPEC_CODES += ("0I", "0J", "0U", "0g", "0m", "0s", "0u", "0w", "1h")


BY_CODE: dict[str, RealtimeType] = {t.code: t for t in TYPES}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _children(nodes: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    for node in nodes:
        if node.get("field") == field and node.get("children"):
            return list(node["children"])
    raise KeyError(field)


def spec_values_table(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """(FID, 한글명) in the order of the type's 'values' table."""
    data = _children(entry["response"]["body"], "data")
    return [(c["field"], c["name_kr"].strip()) for c in _children(data, "values")]


def realtime_example(text: str) -> dict[str, Any]:
    """The '#실시간 수신' part of a response_example, as a Python object."""
    return ast.literal_eval(text.split("#실시간 수신", 1)[1].strip())  # type: ignore[no-any-return]


def test_catalog_covers_the_spec_types_and_condition_push() -> None:
    assert len(TYPES) == 20
    assert set(BY_CODE) == {*SPEC_CODES, "02"}
    assert all(t.broker == "kiwoom" for t in TYPES)


@pytest.mark.parametrize("code", SPEC_CODES)
def test_fields_match_spec_table_in_order(spec: dict[str, Any], code: str) -> None:
    t = BY_CODE[code]
    assert t.title == spec[code]["name"]
    assert [(f.wire, f.korean) for f in t.fields] == spec_values_table(spec[code])


@pytest.mark.parametrize("code", SPEC_CODES)
def test_example_values_are_declared(spec: dict[str, Any], code: str) -> None:
    example = realtime_example(spec[code]["response_example"])
    declared = {f.wire for f in BY_CODE[code].fields}
    assert example["data"], code
    for item in example["data"]:
        assert item["type"] == code
        assert set(item["values"]) <= declared, set(item["values"]) - declared


def test_condition_push_matches_ka10173(spec: dict[str, Any]) -> None:
    body = spec["ka10173"]["response"]["body"]
    trnm = next(n for n in body if n.get("field") == "trnm" and n.get("children"))
    values = _children(trnm["children"], "values")
    t = BY_CODE["02"]
    assert [(f.wire, f.korean) for f in t.fields] == [
        (c["field"], c["name_kr"].strip()) for c in values
    ]
    example = spec["ka10173"]["response_example"].split("#실시간데이터", 1)[1]
    item = ast.literal_eval(example.strip())["data"][0]
    assert item["type"] == "02"
    assert set(item["values"]) <= {f.wire for f in t.fields}
    assert t.field("843").kind == "enum:condition843"


def test_names_and_constants_unique() -> None:
    names = [t.name for t in TYPES]
    constants = [t.constant for t in TYPES]
    assert len(set(names)) == len(names)
    assert len(set(constants)) == len(constants)
    assert all(c.isupper() and c.replace("_", "").isalnum() for c in constants)


@pytest.mark.parametrize("t", TYPES, ids=lambda t: t.code)
def test_validate_passes(t: RealtimeType) -> None:
    validate(t)
    assert not RESERVED & {a for f in t.fields for a in f.attrs}


def test_account_types() -> None:
    assert {t.code for t in TYPES if t.account} == {"00", "04"}


def test_same_fid_same_english_name_mostly() -> None:
    """A FID keeps its English name across types; the listed exceptions are deliberate."""
    deliberate = {("20", "event_time")}  # 0s / 02: a notice or hit time, not a trade time
    seen: dict[str, set[str]] = {}
    for t in TYPES:
        for f in t.fields:
            seen.setdefault(f.wire, set()).add(f.name)
    clashes = {
        wire: names - {n for w, n in deliberate if w == wire}
        for wire, names in seen.items()
        if len(names - {n for w, n in deliberate if w == wire}) > 1
    }
    assert not clashes


def test_key_kinds() -> None:
    assert BY_CODE["0B"].field("15").kind == "aggressor_qty"
    assert BY_CODE["00"].field("913").kind == "enum:order_status"
    assert BY_CODE["00"].field("907").kind == "enum:side12"
    assert BY_CODE["00"].field("2134").kind == "enum:exchange2134"
    assert BY_CODE["00"].field("2136").kind == "yn"
    assert BY_CODE["0B"].field("290").kind == "enum:session290"
    for t in TYPES:
        for f in t.fields:
            if f.wire in {"10", "16", "17", "18", "27", "28"}:
                # index levels (0J, 0U) have decimals: signed Decimal level
                want = "price_decimal" if t.code in {"0J", "0U"} else "price"
                assert f.kind == want, (t.code, f.wire)
            if f.wire == "25":
                assert f.kind == "enum:sign", t.code
            if f.wire in {"11", "26", "29"}:
                assert f.kind in {"int", "decimal"}, (t.code, f.wire)
