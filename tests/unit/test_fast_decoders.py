"""The fast decoders give exactly what the exact decoders give: the same records, or the same
DecodeError naming the same field, for unusual integers, empty values, underscores, escapes,
one record or many per frame."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

import krfeed.protocol.kis as kis_module
import krfeed.protocol.kiwoom as kiwoom_module
from krfeed.protocol.kis import KISCodec, data_frame
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.schema.catalog import get_type
from krfeed.schema.compile import encode_kis_fields, encode_kiwoom_values, parse_ints
from krfeed.sim.market import Market, market_record

RECEIVED_AT = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)  # 10:30 KST
_NOW = datetime(2025, 3, 14, 1, 29, 50, tzinfo=UTC)

ODD_INTEGERS = [
    "", " ", "+5", "-5", "007", "-0", " 7 ", "\t8", "1_000", "1e3", "1.0", "null", "true",
    "5,6", "[1]", "١٢", "99999999999999999999999", "abc", "0x10", "--1",
]  # fmt: skip


def _exact(monkeypatch: pytest.MonkeyPatch, receive: Any, frame: str) -> list[Any]:
    """The codec's output with every fast path switched off."""
    with monkeypatch.context() as m:

        def no_fast(*_a: Any) -> Any:
            raise RuntimeError("fast path off")

        m.setattr(kis_module, "_PLANS", {})
        m.setattr(kis_module, "kis_frame_decoder", lambda *_a: no_fast)
        m.setattr(kiwoom_module, "_real_fast", lambda *_a: None)
        return list(receive(frame, RECEIVED_AT))


def _same(fast: list[Any], exact: list[Any]) -> None:
    assert [type(x) for x in fast] == [type(x) for x in exact]
    for a, b in zip(fast, exact, strict=True):
        assert a == b
        if hasattr(a, "__struct_fields__"):
            for name in a.__struct_fields__:
                assert type(getattr(a, name)) is type(getattr(b, name)), name


def _kis_records(tr: str, n: int) -> list[list[str]]:
    market = Market(3)
    out = []
    for i in range(n):
        inst = market.instrument(f"{5930 + i:06d}")
        inst.step(_NOW)
        out.append(encode_kis_fields(market_record("kis", tr, inst, inst.code, _NOW)))
    return out


@pytest.mark.parametrize("tr", ["H0STPGM0", "H0STCNT0", "H0STASP0"])
@pytest.mark.parametrize("nnn", [1, 10])
@pytest.mark.parametrize("odd", ODD_INTEGERS)
def test_kis_odd_integers(monkeypatch: pytest.MonkeyPatch, tr: str, nnn: int, odd: str) -> None:
    t = get_type("kis", tr)
    ints = [i for i, f in enumerate(t.fields) if f.kind == "int"]
    for where in (ints[0], ints[-1]):
        recs = _kis_records(tr, nnn)
        recs[-1][where] = odd
        frame = data_frame(tr, recs)
        codec = KISCodec()
        _same(codec.receive(frame, RECEIVED_AT), _exact(monkeypatch, codec.receive, frame))


@pytest.mark.parametrize("tr", ["H0STCNT0", "H0STASP0"])
def test_kis_every_integer_empty_or_odd(monkeypatch: pytest.MonkeyPatch, tr: str) -> None:
    t = get_type("kis", tr)
    for value in ("", " 3", "-0"):
        for nnn in (1, 9):
            recs = _kis_records(tr, nnn)
            for r in recs:
                for i, f in enumerate(t.fields):
                    if f.kind == "int":
                        r[i] = value
            frame = data_frame(tr, recs)
            codec = KISCodec()
            out = codec.receive(frame, RECEIVED_AT)
            _same(out, _exact(monkeypatch, codec.receive, frame))


@pytest.mark.parametrize("text", ["00_5930", " 005930 ", ""])
def test_kis_text_with_underscore_or_spaces(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    recs = _kis_records("H0STCNT0", 1)
    recs[0][0] = text
    frame = data_frame("H0STCNT0", recs)
    codec = KISCodec()
    _same(codec.receive(frame, RECEIVED_AT), _exact(monkeypatch, codec.receive, frame))


def _kiwoom_frame(code: str, values: dict[str, str], item: str = "005930") -> str:
    data = [{"type": code, "name": "x", "item": item, "values": values}]
    return json.dumps({"trnm": "REAL", "data": data}, ensure_ascii=False)


def _kiwoom_values(code: str) -> dict[str, str]:
    market = Market(5)
    inst = market.instrument("005930")
    inst.step(_NOW)
    return encode_kiwoom_values(market_record("kiwoom", code, inst, "005930", _NOW))


@pytest.mark.parametrize("code", ["0B", "0D", "00"])
@pytest.mark.parametrize("odd", ODD_INTEGERS)
@pytest.mark.parametrize("item", ["005930", "005930_AL"])
def test_kiwoom_odd_integers(
    monkeypatch: pytest.MonkeyPatch, code: str, odd: str, item: str
) -> None:
    t = get_type("kiwoom", code)
    f = next(f for f in t.fields if f.kind == "int")
    values = _kiwoom_values(code)
    values[f.wire] = odd
    frame = _kiwoom_frame(code, values, item)
    codec = KiwoomCodec()
    _same(codec.receive(frame, RECEIVED_AT), _exact(monkeypatch, codec.receive, frame))


@pytest.mark.parametrize(
    "raw",
    [
        '"1\\u005f000"',  # an escaped underscore inside an integer
        '"+17"',
        "17",  # a number, not a string
        "null",
        '""',
    ],
)
def test_kiwoom_raw_json_values(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    values = _kiwoom_values("0B")
    f = next(f for f in get_type("kiwoom", "0B").fields if f.kind == "int")
    values[f.wire] = "PLACEHOLDER"
    frame = _kiwoom_frame("0B", values).replace('"PLACEHOLDER"', raw)
    codec = KiwoomCodec()
    _same(codec.receive(frame, RECEIVED_AT), _exact(monkeypatch, codec.receive, frame))


def test_kiwoom_missing_keys_and_several_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    a = _kiwoom_values("0B")
    b = {k: v for i, (k, v) in enumerate(_kiwoom_values("0D").items()) if i % 3}
    data = [
        {"type": "0B", "item": "005930", "values": a},
        {"type": "0D", "item": "000660", "values": b},
    ]
    frame = json.dumps({"trnm": "REAL", "data": data})
    codec = KiwoomCodec()
    out = codec.receive(frame, RECEIVED_AT)
    assert len(out) == 2
    _same(out, _exact(monkeypatch, codec.receive, frame))


@pytest.mark.parametrize(
    "values",
    [["1", "", "2"], ["", ""], [""], ["+1", "2"], ["1,2", "3"], ["null", "1"], [" 7 ", "-0"]],
)
def test_parse_ints_is_int_or_none(values: list[str]) -> None:
    def exact(v: str) -> int | None:
        return int(v) if v.strip() else None

    got = parse_ints(values)
    if got is not None:
        assert got == [exact(v) for v in values]


def test_the_fast_paths_are_the_ones_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    frame = data_frame("H0STCNT0", _kis_records("H0STCNT0", 1))
    KISCodec().receive(frame, RECEIVED_AT)
    plan = kis_module._PLANS["H0STCNT0"]
    width, fast = plan.shapes[len(frame.split("|", 3)[3].split("^"))]
    monkeypatch.setitem(plan.shapes, width, (width, lambda *a: calls.append("kis") or fast(*a)))
    KISCodec().receive(frame, RECEIVED_AT)
    real_fast = kiwoom_module._real_fast
    monkeypatch.setattr(
        kiwoom_module, "_real_fast", lambda *a: calls.append("kiwoom") or real_fast(*a)
    )
    out = KiwoomCodec().receive(_kiwoom_frame("0B", _kiwoom_values("0B")), RECEIVED_AT)
    assert calls == ["kis", "kiwoom"] and len(out) == 1
    _same(_exact(monkeypatch, KISCodec().receive, frame), KISCodec().receive(frame, RECEIVED_AT))
