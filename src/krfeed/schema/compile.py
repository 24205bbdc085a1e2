"""Per-type decoders and encoders compiled from the declarations.

Each type gets a small generated function (built once, on first use) that converts the wire
values straight into the record class's constructor call: no per-field dispatch at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from krfeed.records.base import Record
from krfeed.schema import convert as cv
from krfeed.schema.catalog import get_type
from krfeed.schema.core import BASE_KINDS, F, RealtimeType
from krfeed.schema.enums import ENUM_KINDS

KiwoomDecoder = Callable[[Mapping[str, Any], str, datetime, cv.TradingDay], Record]
KISDecoder = Callable[[Sequence[str], int, datetime, cv.TradingDay], Record]

_SIMPLE = {
    "text": "to_text",
    "int": "to_int",
    "decimal": "to_decimal",
    "date": "to_date",
    "yn": "to_yn",
    "flag01": "to_flag01",
}


def record_class(broker: str, code: str) -> type[Record]:
    """The generated record class of a type."""
    if broker == "kiwoom":
        from krfeed.records.kiwoom import RECORDS as KW

        return KW[get_type(broker, code).code]
    from krfeed.records.kis import RECORDS as KS

    return KS[get_type(broker, code).code]


def _namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {name: getattr(cv, name) for name in dir(cv) if name.startswith("to_")}
    for kind, (_cls, mapping) in ENUM_KINDS.items():
        ns[f"enum_{kind}"] = cv.enum_converter(mapping)
    return ns


_NS = _namespace()


def _expr(f: F, raw: str) -> str:
    if f.kind in _SIMPLE:
        return f"{_SIMPLE[f.kind]}({raw})"
    if f.kind == "time":
        return f"day.time({raw})"
    if f.kind.startswith("enum:"):
        return f"enum_{f.kind[5:]}({raw})"
    raise AssertionError(f.kind)


def _body(t: RealtimeType, raw_of: Callable[[int, F], str]) -> tuple[list[str], list[str]]:
    pre: list[str] = []
    args: list[str] = []
    for i, f in enumerate(t.fields):
        raw = raw_of(i, f)
        if f.kind in ("price", "price_decimal", "aggressor_qty"):
            a, b = f.attrs
            pre.append(f"    p{i} = to_{f.kind}({raw})")
            args.append(f"{a}=p{i}[0]")
            args.append(f"{b}=p{i}[1]")
        else:
            args.append(f"{f.name}={_expr(f, raw)}")
    return pre, args


def _compile(src: str, name: str, cls: type[Record]) -> Any:
    ns = dict(_NS)
    ns["Cls"] = cls
    exec(compile(src, f"<krfeed decoder {name}>", "exec"), ns)
    return ns["decode"]


@cache
def kiwoom_decoder(code: str) -> KiwoomDecoder:
    """``decode(values, item, received_at, day) -> Record`` for one Kiwoom type."""
    t = get_type("kiwoom", code)
    pre, args = _body(t, lambda i, f: f"g({f.wire!r})")
    src = "def decode(v, item, received_at, day):\n    g = v.get\n"
    src += "\n".join(pre) + ("\n" if pre else "")
    src += "    return Cls(received_at=received_at, item=item, " + ", ".join(args) + ")\n"
    fn: KiwoomDecoder = _compile(src, f"kiwoom {code}", record_class("kiwoom", code))
    return fn


@cache
def kis_decoder(code: str) -> KISDecoder:
    """``decode(fields, offset, received_at, day) -> Record`` for one KIS TR."""
    t = get_type("kis", code)
    pre, args = _body(t, lambda i, f: f"f[o + {i}]" if i else "f[o]")
    src = "def decode(f, o, received_at, day):\n"
    src += "\n".join(pre) + ("\n" if pre else "")
    item = "f[o].strip()" if t.keyed else "''"
    src += f"    return Cls(received_at=received_at, item={item}, " + ", ".join(args) + ")\n"
    fn: KISDecoder = _compile(src, f"kis {code}", record_class("kis", code))
    return fn


def explain_failure(t: RealtimeType, raw_of: Callable[[int, F], Any], day: cv.TradingDay) -> str:
    """Which field made a decode fail, in words a person can act on."""
    for i, f in enumerate(t.fields):
        raw = raw_of(i, f)
        try:
            convert_one(f, raw, day)
        except Exception as e:
            what = BASE_KINDS.get(f.kind, f.kind).split(";")[0].split(":")[0]
            return f"field {f.wire} {f.korean} ({f.name}) = {raw!r}: {e} (expected {what})"
    return "record could not be built"


def convert_one(f: F, raw: Any, day: cv.TradingDay) -> Any:
    """Convert one wire value (slow path, used for error messages and tools)."""
    if f.kind == "time":
        return day.time(raw)
    if f.kind in ("price", "price_decimal", "aggressor_qty"):
        return getattr(cv, f"to_{f.kind}")(raw)
    if f.kind.startswith("enum:"):
        return _NS[f"enum_{f.kind[5:]}"](raw)
    return getattr(cv, _SIMPLE[f.kind])(raw)


# ---- encoding (record -> wire values) ----


def encode_value(f: F, record: Record) -> str:
    """The wire string of field ``f`` of ``record``."""
    v = getattr(record, f.name)
    k = f.kind
    if k == "price":
        return cv.from_price(v, getattr(record, f.name + "_dir"))
    if k == "price_decimal":
        return cv.from_price_decimal(v, getattr(record, f.name + "_dir"))
    if k == "aggressor_qty":
        return cv.from_aggressor_qty(v, getattr(record, f.name + "_side"))
    if k == "time":
        return cv.from_time(v)
    if k == "date":
        return cv.from_date(v)
    if k == "yn":
        return cv.from_yn(v)
    if k == "flag01":
        return cv.from_flag01(v)
    if k.startswith("enum:"):
        if v is None:
            return ""
        for wire, member in ENUM_KINDS[k[5:]][1].items():
            if member is v:
                return wire
        return str(v)
    return cv.from_text(v)


def encode_kiwoom_values(record: Record) -> dict[str, str]:
    """The ``values`` object of a Kiwoom REAL entry for ``record``."""
    t = get_type("kiwoom", record.type)
    return {f.wire: encode_value(f, record) for f in t.fields}


def encode_kis_fields(record: Record) -> list[str]:
    """The ``^``-separated fields of a KIS data record for ``record``."""
    t = get_type("kis", record.type)
    return [encode_value(f, record) for f in t.fields]
