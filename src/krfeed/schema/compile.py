"""Per-type decoders and encoders compiled from the declarations.

Each type gets small generated functions (built once, on first use) that convert the wire
values straight into the record class's constructor call: no per-field dispatch at run time.

Two decoders per type:

- the *exact* one (:func:`kis_decoder`, :func:`kiwoom_decoder`) calls one converter of
  :mod:`krfeed.schema.convert` per field; it defines what a value means;
- the *fast* one (:func:`kis_frame_decoder`, :func:`kiwoom_fast_decoder`) gives the same
  records for the inputs it accepts, with the conversions inlined: ``int(v)`` for integers,
  ``v.strip() or None`` for text, a lookup in a bounded cache for the kinds whose wire strings
  repeat all day (prices, rates, codes, dates, times). It relies on the caller's guarantees
  (every value is a ``str``; no ``_`` in the payload, which ``int()`` would accept) and raises
  on anything unusual, and the codec then decodes the frame again with the exact decoders, so
  that a bad field is reported by name, exactly as before. ``fast_source()`` shows the code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import msgspec
from msgspec.structs import astuple

from krfeed.records.base import Record
from krfeed.schema import convert as cv
from krfeed.schema.catalog import get_type
from krfeed.schema.core import BASE_KINDS, F, RealtimeType
from krfeed.schema.enums import ENUM_KINDS

KiwoomDecoder = Callable[[Mapping[str, Any], str, datetime, cv.TradingDay], Record]
KISDecoder = Callable[[Sequence[str], int, datetime, cv.TradingDay], Record]
KISFrameDecoder = Callable[[list[str], datetime, cv.TradingDay], list[Any]]
KiwoomFastDecoder = Callable[[Any, str, datetime, cv.TradingDay], Record]

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


# ---- fast decoders ----

#: Bounded caches of the converters whose result depends on the wire string alone and whose
#: strings repeat (a few thousand price levels and rates per day, a handful of codes).
_MEMO_SIZE = 32_768
_MEMO_KINDS: dict[str, Callable[[Any], Any]] = {
    "decimal": cv.to_decimal,
    "date": cv.to_date,
    "yn": cv.to_yn,
    "flag01": cv.to_flag01,
    "price": cv.to_price,
    "price_decimal": cv.to_price_decimal,
    "aggressor_qty": cv.to_aggressor_qty,
}


def _memo_namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {"MISS": object(), "to_int": cv.to_int, "astuple": astuple}
    convs: dict[str, Callable[[Any], Any]] = dict(_MEMO_KINDS)
    for kind in ENUM_KINDS:
        convs[f"enum_{kind}"] = _NS[f"enum_{kind}"]
    for name, conv in convs.items():
        cache, miss = cv.memoized(conv, _MEMO_SIZE)
        ns[f"{name}_get"] = cache.get
        ns[f"{name}_miss"] = miss
    return ns


_FAST_NS = _memo_namespace()


def _fast_body(t: RealtimeType, checked_ints: bool) -> tuple[list[str], list[str]]:
    """Statements and constructor arguments of one record; field ``i`` is in ``v{i}``."""
    pre: list[str] = []
    args: list[str] = []
    for i, f in enumerate(t.fields):
        v = f"v{i}"
        k = f.kind
        if k == "text":
            args.append(f"{f.name}={v}.strip() or None")
        elif k == "int":
            # int() also accepts "1_000": where the payload was not checked, such a value goes
            # to to_int(), which rejects it
            ok = f"{v} and '_' not in {v}" if checked_ints else v
            other = f"to_int({v})" if checked_ints else "None"
            args.append(f"{f.name}=int({v}) if {ok} else {other}")
        elif k == "time":
            pre.append(f"t{i} = times_get({v})")
            pre.append(f"if t{i} is None or t{i} < lo or t{i} > hi:")
            pre.append(f"    t{i} = day.time({v})")
            args.append(f"{f.name}=t{i}")
        else:
            name = f"enum_{k[5:]}" if k.startswith("enum:") else k
            memo = f"{name}_get({v}, MISS)"
            pre.append(f"x{i} = {memo}")
            pre.append(f"if x{i} is MISS:")
            pre.append(f"    x{i} = {name}_miss({v})")
            if k in ("price", "price_decimal", "aggressor_qty"):
                a, b = f.attrs
                args.append(f"{a}=x{i}[0]")
                args.append(f"{b}=x{i}[1]")
            else:
                args.append(f"{f.name}=x{i}")
    return pre, args


def _indent(lines: list[str], n: int) -> str:
    pad = " " * n
    return "".join(pad + line + "\n" for line in lines)


def _prologue(t: RealtimeType) -> str:
    if not any(f.kind == "time" for f in t.fields):
        return ""
    return "    times_get = day.times.get\n    lo = day.lo\n    hi = day.hi\n"


def _unpack(t: RealtimeType) -> str:
    names = ", ".join(f"v{i}" for i in range(len(t.fields)))
    return names + "," if len(t.fields) == 1 else names


def _kis_fast_source(t: RealtimeType) -> str:
    w = len(t.fields)
    pre, args = _fast_body(t, checked_ints=False)
    item = "v0.strip()" if t.keyed else "''"
    src = "def decode(f, received_at, day):\n" + _prologue(t)
    src += "    out = []\n"
    src += f"    for o in range(0, len(f), {w}):\n"
    src += f"        {_unpack(t)} = f[o:o + {w}]\n"
    src += _indent(pre, 8)
    src += f"        out.append(Cls(received_at=received_at, item={item},\n"
    src += _indent([a + "," for a in args], 12)
    src += "        ))\n    return out\n"
    return src


def _kiwoom_fast_source(t: RealtimeType) -> str:
    pre, args = _fast_body(t, checked_ints=True)
    src = "def decode(v, item, received_at, day):\n" + _prologue(t)
    src += f"    {_unpack(t)} = astuple(v)\n"
    src += _indent(pre, 4)
    src += "    return Cls(received_at=received_at, item=item,\n"
    src += _indent([a + "," for a in args], 8)
    src += "    )\n"
    return src


def _compile_fast(src: str, name: str, cls: type[Record]) -> Any:
    ns = dict(_FAST_NS)
    ns["Cls"] = cls
    exec(compile(src, f"<krfeed fast decoder {name}>", "exec"), ns)
    return ns["decode"]


def fast_source(broker: str, code: str) -> str:
    """The generated source of the fast decoder of a type (for reading and debugging)."""
    t = get_type(broker, code)
    return _kiwoom_fast_source(t) if broker == "kiwoom" else _kis_fast_source(t)


@cache
def kis_frame_decoder(code: str) -> KISFrameDecoder:
    """``decode(fields, received_at, day) -> records`` for every record of one KIS payload.

    ``fields`` is the whole payload split on ``^`` (a multiple of the type's width). Fast path:
    the payload must contain no ``_``; on any exception decode with :func:`kis_decoder`.
    """
    t = get_type("kis", code)
    fn: KISFrameDecoder = _compile_fast(
        _kis_fast_source(t), f"kis {code}", record_class("kis", code)
    )
    return fn


def kiwoom_values_struct(code: str) -> type[msgspec.Struct]:
    """The ``values`` object of one Kiwoom type as a Struct: field ``f{i}`` is the i-th declared
    field, under its wire key; absent keys are ``""`` (which means the same as absent)."""
    return _kiwoom_structs(code)[0]


@cache
def _kiwoom_structs(code: str) -> tuple[type[msgspec.Struct], type[msgspec.Struct]]:
    t = get_type("kiwoom", code)
    values = msgspec.defstruct(
        f"Values{t.code}",
        [(f"f{i}", str, msgspec.field(default="", name=f.wire)) for i, f in enumerate(t.fields)],
        gc=False,
    )
    entry = msgspec.defstruct(
        f"Entry{t.code}",
        [("values", values), ("item", str, "")],
        tag_field="type",
        tag=t.code,
        gc=False,
    )
    return values, entry


def kiwoom_entry_struct(code: str) -> type[msgspec.Struct]:
    """One ``data`` entry of a Kiwoom REAL frame of this type: ``type`` (the tag), ``item``,
    ``values`` (:func:`kiwoom_values_struct`); other keys (``name``) are skipped."""
    return _kiwoom_structs(code)[1]


@cache
def kiwoom_fast_decoder(code: str) -> KiwoomFastDecoder:
    """``decode(values, item, received_at, day) -> Record`` from a typed ``values`` Struct.

    Fast path: on any exception decode the entry with :func:`kiwoom_decoder`.
    """
    t = get_type("kiwoom", code)
    fn: KiwoomFastDecoder = _compile_fast(
        _kiwoom_fast_source(t), f"kiwoom {code}", record_class("kiwoom", code)
    )
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
