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

from krfeed.records.base import Record
from krfeed.schema import convert as cv
from krfeed.schema.catalog import get_type
from krfeed.schema.core import F
from krfeed.schema.enums import ENUM_KINDS
from krfeed.schema.exact import (
    KISDecoder,
    KISFrameDecoder,
    KiwoomDecoder,
    KiwoomFastDecoder,
    convert_one,
    dated,
    explain_failure,
    kis_decoder,
    kiwoom_decoder,
    layout_view,
    record_class,
)
from krfeed.schema.fast import (
    fast_source,
    kis_frame_decoder,
    kiwoom_entry_struct,
    kiwoom_fast_decoder,
    kiwoom_values_struct,
    parse_ints,
)

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


# the exact decoders moved to krfeed.schema.exact, the fast ones to krfeed.schema.fast;
# importable from here as before
__all__ = [
    "KISDecoder",
    "KISFrameDecoder",
    "KiwoomDecoder",
    "KiwoomFastDecoder",
    "convert_one",
    "dated",
    "encode_kis_fields",
    "encode_kiwoom_values",
    "encode_value",
    "explain_failure",
    "fast_source",
    "kis_decoder",
    "kis_frame_decoder",
    "kiwoom_decoder",
    "kiwoom_entry_struct",
    "kiwoom_fast_decoder",
    "kiwoom_values_struct",
    "layout_view",
    "parse_ints",
    "record_class",
]
