"""The fast per-type decoders (:mod:`krfeed.schema.compile`, which describes them beside the
exact ones and re-exports every name here): conversions inlined, bounded caches for the
repeating wire strings, integers parsed a frame at a time."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import msgspec
from msgspec.structs import astuple

from krfeed.records.base import Record
from krfeed.schema import convert as cv
from krfeed.schema.catalog import get_type
from krfeed.schema.core import RealtimeType
from krfeed.schema.enums import ENUM_KINDS
from krfeed.schema.exact import (
    _NS,
    KISFrameDecoder,
    KiwoomFastDecoder,
    dated,
    layout_view,
    record_class,
)

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
    # outside every receive-time window: a time not cached yet goes to day.time()
    ns["NEVER"] = datetime(1, 1, 2, tzinfo=cv.KST)
    convs: dict[str, Callable[[Any], Any]] = dict(_MEMO_KINDS)
    for kind in ENUM_KINDS:
        convs[f"enum_{kind}"] = _NS[f"enum_{kind}"]
    for name, conv in convs.items():
        cache, miss = cv.memoized(conv, _MEMO_SIZE)
        ns[f"{name}_get"] = cache.get
        ns[f"{name}_miss"] = miss
    return ns


_FAST_NS = _memo_namespace()


def _fast_body(t: RealtimeType, ints: str) -> tuple[list[str], list[str]]:
    """Statements, and the constructor's positional arguments (each with a comment naming its
    attribute), of one record; field ``i`` is in ``v{i}``.

    ``ints``: ``"parsed"`` (integer field ``i`` is already an int, in ``i{i}``), ``"inline"``
    (``int(v)``: the caller checked the payload for ``_``) or ``"checked"`` (``int(v)`` after
    a per-value check for ``_``)."""
    pre: list[str] = []
    args: list[str] = []
    bdi = dated(t)
    tday, tget, tlo, thi = "day", "times_get", "lo", "hi"
    if bdi is not None:
        # a record's times are on its own business date: the receive date's window and cache
        # where they are the same date (the usual case), that date's otherwise
        tday, tget, tlo, thi = "tday", "tget", "tlo", "thi"
        pre.append(f"x{bdi} = date_get(v{bdi}, MISS)")
        pre.append(f"if x{bdi} is MISS:")
        pre.append(f"    x{bdi} = date_miss(v{bdi})")
        pre.append(f"if x{bdi} is None or x{bdi} == day_date:")
        pre.append("    tday, tget, tlo, thi = day, times_get, lo, hi")
        pre.append("else:")
        pre.append(f"    tday = day.on(x{bdi})")
        pre.append("    tget, tlo, thi = tday.times.get, tday.lo, tday.hi")
    for i, f in enumerate(t.fields):
        v = f"v{i}"
        k = f.kind
        if i == bdi:
            args.append(f"x{i},  # {f.name}")
        elif k == "text":
            args.append(f"{v}.strip() or None,  # {f.name}")
        elif k == "int" and ints == "parsed":
            args.append(f"i{i},  # {f.name}")
        elif k == "int":
            # int() also accepts "1_000": where the payload was not checked, such a value goes
            # to to_int(), which rejects it
            checked = ints == "checked"
            ok = f"{v} and '_' not in {v}" if checked else v
            other = f"to_int({v})" if checked else "None"
            args.append(f"int({v}) if {ok} else {other},  # {f.name}")
        elif k == "time":
            # a time seen before on this date, inside the window: the answer; else day.time()
            pre.append(f"t{i} = {tget}({v}, NEVER)")
            pre.append(f"if not {tlo} <= t{i} <= {thi}:")
            pre.append(f"    t{i} = {tday}.time({v})")
            args.append(f"t{i},  # {f.name}")
        else:
            name = f"enum_{k[5:]}" if k.startswith("enum:") else k
            if k in ("price", "price_decimal", "aggressor_qty"):
                # (level, sign) pairs: a tuple is never false
                pre.append(f"x{i} = {name}_get({v}) or {name}_miss({v})")
            else:
                pre.append(f"x{i} = {name}_get({v}, MISS)")
                pre.append(f"if x{i} is MISS:")
                pre.append(f"    x{i} = {name}_miss({v})")
            if k in ("price", "price_decimal", "aggressor_qty"):
                a, b = f.attrs
                args.append(f"x{i}[0],  # {a}")
                args.append(f"x{i}[1],  # {b}")
            else:
                args.append(f"x{i},  # {f.name}")
    return pre, args


def _indent(lines: list[str], n: int) -> str:
    pad = " " * n
    return "".join(pad + line + "\n" for line in lines)


def _prologue(t: RealtimeType) -> str:
    if not any(f.kind == "time" for f in t.fields):
        return ""
    src = "    times_get = day.times.get\n    lo = day.lo\n    hi = day.hi\n"
    if dated(t) is not None:
        src += "    day_date = day.day\n"
    return src


def _unpack(t: RealtimeType) -> str:
    names = ", ".join(f"v{i}" for i in range(len(t.fields)))
    return names + "," if len(t.fields) == 1 else names


#: Records per frame from which decoding column by column pays (measured: PGM/CNT0/ASP0).
_COLUMNS_FROM = 8
#: Integer fields per record from which parsing them as one JSON array pays.
_PARSE_INTS_FROM = 12


def _kis_fast_source(t: RealtimeType, stride: int | None = None) -> str:
    """``decode(f, received_at, day)``: one record (straight-line code), many records
    (column by column), or a few (a loop).

    ``t``'s fields are decoded from records of ``stride`` values each (default: as many as
    fields); the values after them go to the record's ``extra``."""
    n = len(t.fields)
    w = stride or n
    item = "v0.strip()" if t.keyed else "''"
    int_pos = [i for i, f in enumerate(t.fields) if f.kind == "int"]
    pre, args = _fast_body(t, ints="inline")
    if w > n:
        args = [*args, f"extra=tuple(f[o + {n}:o + {w}]),"]
    build = ["Cls(", *_indent(["received_at,", f"{item},  # item", *args], 4).splitlines(), ")"]
    src = "def decode(f, received_at, day):\n" + _prologue(t)
    src += f"    if len(f) == {w}:  # one record (the usual case): no loop, no slice\n"
    src += "        o = 0\n" if w > n else ""
    src += f"        {_unpack(t)} = f{'' if w == n else f'[:{n}]'}\n"
    if len(int_pos) >= _PARSE_INTS_FROM:
        # The integers parsed in one call, as a JSON array (see parse_ints); anything it
        # cannot take raises, as does a count that does not match (a value with a ",").
        pre1, args1 = _fast_body(t, ints="parsed")
        names = ", ".join(f"i{i}" for i in int_pos)
        src += "        text = ','.join(int_values(f))\n"
        src += "        try:\n"
        src += "            if ',,' in text:  # empty values (a failed parse costs more)\n"
        src += "                raise ValueError\n"
        src += f"            {names} = int_list('[' + text + ']')\n"
        src += "        except (DecodeError, ValueError):\n"
        src += "            try:  # empty values?\n"
        src += f"                {names} = ints_with_empty(text)\n"
        src += "            except (DecodeError, ValueError):  # one by one, then\n"
        src += _indent([f"i{i} = int(v{i}) if v{i} else None" for i in int_pos], 16)
        if w > n:
            args1 = [*args1, f"extra=tuple(f[{n}:]),"]
        build1 = ["Cls(", *_indent(["received_at,", f"{item},  # item", *args1], 4).splitlines()]
        src += _indent(pre1, 8)
        src += _indent(["return [" + build1[0], *build1[1:], ")]"], 8)
    else:
        src += _indent(pre, 8)
        src += _indent(["return [" + build[0], *build[1:-1], build[-1] + "]"], 8)
    if int_pos and w == n:
        # Frames of many records are decoded column by column: the integers of the whole
        # payload parsed in one call (see parse_ints), a list comprehension per other field,
        # and the records built by map() in C. That has a fixed cost per field (a
        # comprehension, a slice): frames of fewer records, and integers parse_ints() cannot
        # take ("+5"), go through the loop below.
        src += f"    n = len(f) // {w}\n"
        bdi = dated(t)
        # (where records carry a business date: all of them on the receive date)
        same_day = "" if bdi is None else f" and f[{bdi}::{w}].count(day.ymd) == n"
        src += (
            f"    if n >= {_COLUMNS_FROM}{same_day} and "
            "(ints := parse_ints(int_fields(f, n))) is not None:\n"
        )
        lines = []
        cols = ["repeat(received_at, n),"]
        if t.keyed:
            lines.append(f"items = [v.strip() for v in f[0::{w}]]")
            cols.append("items,")
        else:
            cols.append("repeat('', n),")
        for i, f in enumerate(t.fields):
            col = f"f[{i}::{w}]"
            k = f.kind
            if k == "int":
                cols.append(f"ints[{int_pos.index(i)}::{len(int_pos)}],  # {f.name}")
            elif k == "text":
                cols.append(f"[v.strip() or None for v in {col}],  # {f.name}")
            elif k == "time":
                cols.append(
                    f"[t if lo <= (t := times_get(v, NEVER)) <= hi else day.time(v) "
                    f"for v in {col}],  # {f.name}"
                )
            else:
                name = f"enum_{k[5:]}" if k.startswith("enum:") else k
                memo = (
                    f"[x if (x := {name}_get(v, MISS)) is not MISS else {name}_miss(v) "
                    f"for v in {col}]"
                )
                if k in ("price", "price_decimal", "aggressor_qty"):
                    a, b = f.attrs
                    lines.append(f"p{i} = {memo}")
                    cols.append(f"[x[0] for x in p{i}],  # {a}")
                    cols.append(f"[x[1] for x in p{i}],  # {b}")
                else:
                    cols.append(f"{memo},  # {f.name}")
        src += _indent(lines, 8)
        src += "        return list(map(\n            Cls,\n" + _indent(cols, 12) + "        ))\n"
    src += "    out = []\n"
    src += f"    for o in range(0, len(f), {w}):\n"
    src += f"        {_unpack(t)} = f[o:o + {n}]\n"
    src += _indent(pre, 8)
    src += _indent(["out.append(" + build[0], *build[1:-1], build[-1] + ")"], 8)
    src += "    return out\n"
    return src


def _kiwoom_fast_source(t: RealtimeType, checked: bool = False) -> str:
    pre, args = _fast_body(t, ints="checked" if checked else "inline")
    src = "def decode(v, item, received_at, day):\n" + _prologue(t)
    src += f"    {_unpack(t)} = astuple(v)\n"
    src += _indent(pre, 4)
    src += "    return Cls(\n"
    src += _indent(["received_at,", "item,", *args], 8)
    src += "    )\n"
    return src


_int_list = msgspec.json.Decoder(list[int | None]).decode
_int_list_strict = msgspec.json.Decoder(list[int]).decode


def parse_ints(values: Sequence[str]) -> list[int | None] | None:
    """``[to_int(v) for v in values]``, parsed as one JSON array; None where that fails.

    Exact where it succeeds: a JSON integer is ``-?(0|[1-9][0-9]*)`` with optional JSON
    whitespace (which ``int()`` strips too); any other value (``+5``, ``007``, ``1.0``,
    ``1e3``, text, a lone space) fails the whole array, and a value carrying its own ``,``
    changes the length, which is checked. Empty values become ``null`` (None), and since a
    value containing an ``l`` is refused up front, every ``null`` came from an empty value.
    Integers too long for ``int()`` fail too.
    """
    text = ",".join(values)
    try:
        ints: list[Any] = _int_list_strict("[" + text + "]")
    except msgspec.DecodeError:  # includes ValidationError
        try:
            ints = _ints_with_empty(text)
        except (msgspec.DecodeError, ValueError):
            return None
    return ints if len(ints) == len(values) else None


def _ints_with_empty(text: str) -> list[int | None]:
    """The integers of ``",".join(values)`` where some values are empty (None): see
    :func:`parse_ints`. Raises ValueError where that returns None."""
    if "l" in text:
        raise ValueError("not integers")
    text = ("," + text + ",").replace(",,", ",null,").replace(",,", ",null,")[1:-1]
    return _int_list("[" + text + "]")


class _Gather:
    """``gather(fields, n)``: the values at ``positions`` of each of ``n`` records of
    ``width`` fields, as one tuple (a C-level itemgetter per record count)."""

    __slots__ = ("_by_count", "_positions", "_width")

    def __init__(self, width: int, positions: Sequence[int]) -> None:
        self._width = width
        self._positions = tuple(positions)
        self._by_count: dict[int, Callable[[Sequence[str]], tuple[str, ...]]] = {}

    def __call__(self, fields: Sequence[str], n: int) -> tuple[str, ...]:
        get = self._by_count.get(n)
        if get is None:
            idx = [r * self._width + p for r in range(n) for p in self._positions]
            if len(idx) == 1:
                one = idx[0]
                get = self._by_count[n] = lambda f: (f[one],)
            else:
                get = self._by_count[n] = operator.itemgetter(*idx)
        return get(fields)


def _compile_fast(
    src: str,
    name: str,
    cls: type[Record],
    t: RealtimeType | None = None,
    stride: int | None = None,
) -> Any:
    ns = dict(_FAST_NS)
    ns["Cls"] = cls
    ns["parse_ints"] = parse_ints
    ns["repeat"] = itertools.repeat
    ns["int_list"] = _int_list_strict
    ns["ints_with_empty"] = _ints_with_empty
    ns["DecodeError"] = msgspec.DecodeError
    if t is not None:
        w = stride or len(t.fields)
        int_pos = [i for i, f in enumerate(t.fields) if f.kind == "int"]
        ns["int_fields"] = _Gather(w, int_pos)
        if len(int_pos) > 1:
            ns["int_values"] = operator.itemgetter(*int_pos)
    exec(compile(src, f"<krfeed fast decoder {name}>", "exec"), ns)
    return ns["decode"]


def fast_source(broker: str, code: str) -> str:
    """The generated source of the fast decoder of a type (for reading and debugging)."""
    t = get_type(broker, code)
    return _kiwoom_fast_source(t) if broker == "kiwoom" else _kis_fast_source(t)


@cache
def kis_frame_decoder(
    code: str, width: int | None = None, stride: int | None = None
) -> KISFrameDecoder:
    """``decode(fields, received_at, day) -> records`` for every record of one KIS payload.

    ``fields`` is the whole payload split on ``^``: records of ``stride`` values (default:
    ``width``), of which the first ``width`` (a layout version; default: all declared fields)
    are decoded and the rest kept in ``extra``. Fast path: the payload must contain no ``_``;
    on any exception decode with :func:`kis_decoder`.
    """
    t = get_type("kis", code)
    if width is not None:
        t = layout_view(t, width)
    fn: KISFrameDecoder = _compile_fast(
        _kis_fast_source(t, stride), f"kis {code}", record_class("kis", code), t, stride
    )
    return fn


def kiwoom_values_struct(code: str) -> type[msgspec.Struct]:
    """The ``values`` object of one Kiwoom type as a Struct: field ``f{i}`` is the i-th declared
    field, under its wire key; absent keys are ``""`` (which means the same as absent); a key
    not declared is refused."""
    return _kiwoom_structs(code)[0]


@cache
def _kiwoom_structs(code: str) -> tuple[type[msgspec.Struct], type[msgspec.Struct]]:
    t = get_type("kiwoom", code)
    # An FID the declaration does not know fails the fast path: the exact one keeps it.
    values = msgspec.defstruct(
        f"Values{t.code}",
        [(f"f{i}", str, msgspec.field(default="", name=f.wire)) for i, f in enumerate(t.fields)],
        gc=False,
        forbid_unknown_fields=True,
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
def kiwoom_fast_decoder(code: str, checked: bool = False) -> KiwoomFastDecoder:
    """``decode(values, item, received_at, day) -> Record`` from a typed ``values`` Struct.

    Fast path: on any exception decode the entry with :func:`kiwoom_decoder`. Unless
    ``checked``, the values must contain no ``_`` (which ``int()`` accepts in integers): the
    caller checks the frame for ``_`` (and for ``\\u`` escapes) once.
    """
    t = get_type("kiwoom", code)
    fn: KiwoomFastDecoder = _compile_fast(
        _kiwoom_fast_source(t, checked), f"kiwoom {code}", record_class("kiwoom", code)
    )
    return fn
