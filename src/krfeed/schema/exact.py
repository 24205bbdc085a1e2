"""The exact per-type decoders (:mod:`krfeed.schema.compile`, which describes both decoders
and re-exports every name here): one converter of :mod:`krfeed.schema.convert` per field, and
the field-by-field explanation of a failed decode."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from krfeed.records.base import Record
from krfeed.schema import convert as cv
from krfeed.schema.catalog import get_type
from krfeed.schema.core import BASE_KINDS, KINDS, F, RealtimeType, companion
from krfeed.schema.enums import ENUM_KINDS

KiwoomDecoder = Callable[[Mapping[str, Any], str, datetime, cv.TradingDay], Record]
KISDecoder = Callable[[Sequence[str], int, datetime, cv.TradingDay], Record]
KISFrameDecoder = Callable[[list[str], datetime, cv.TradingDay], list[Any]]
KiwoomFastDecoder = Callable[[Any, str, datetime, cv.TradingDay], Record]

#: kind -> the convert function of the one-value kinds (from the field-kind table)
_SIMPLE = {k: v.convert for k, v in KINDS.items() if v.convert}


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


def dated(t: RealtimeType) -> int | None:
    """The position of the business date of a type whose records carry one (KIS 영업일자),
    where it has times: those times are on that date, not on the receive date."""
    if not any(f.kind == "time" for f in t.fields):
        return None
    for i, f in enumerate(t.fields):
        if f.name == "business_date" and f.kind == "date":
            return i
    return None


def _body(t: RealtimeType, raw_of: Callable[[int, F], str]) -> tuple[list[str], list[str]]:
    pre: list[str] = []
    args: list[str] = []
    bdi = dated(t)
    if bdi is not None:  # the times of a record are on its own business date
        pre.append(f"    bd = to_date({raw_of(bdi, t.fields[bdi])})")
        pre.append("    if bd is not None and bd != day.day:")
        pre.append("        day = day.on(bd)")
    for i, f in enumerate(t.fields):
        raw = raw_of(i, f)
        if companion(f.kind):  # a value and its sign: to_price / to_aggressor_qty …
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


def layout_view(t: RealtimeType, width: int) -> RealtimeType:
    """``t`` with the fields of one of its layout versions (the first ``width``)."""
    if width == len(t.fields):
        return t
    return dataclasses.replace(t, fields=t.fields[:width])


@cache
def kis_decoder(code: str, width: int | None = None) -> KISDecoder:
    """``decode(fields, offset, received_at, day) -> Record`` for one KIS TR; the record's
    first ``width`` fields (a layout version; default: all), the others None."""
    t = get_type("kis", code)
    if width is not None:
        t = layout_view(t, width)
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
    if companion(f.kind):  # a value and its sign: to_price / to_aggressor_qty …
        return getattr(cv, f"to_{f.kind}")(raw)
    if f.kind.startswith("enum:"):
        return _NS[f"enum_{f.kind[5:]}"](raw)
    return getattr(cv, _SIMPLE[f.kind])(raw)
