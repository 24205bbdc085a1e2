"""The wire form of one recorded item (record, control event or decode error) for the sinks that
ship items between processes (NATS), and the deterministic id of an item.

The payload is one JSON object, the shape of a line of krfeed's JSON output
(:mod:`krfeed.jsonout`): a record is ``{"broker", "type", "received_at", "item", <fields>…}``, a
control event or decode error is ``{"event": "<ClassName>", <fields>…}``. One difference:
decimals (rates, ratios, index levels) are JSON *strings* exactly as the ``Decimal`` prints
(``"-0.52"``), because most readers turn a JSON number into a float, and even a decimal-aware
reader gets ``-0`` back as the integer 0; integers (won, shares) stay numbers. Times are
RFC 3339 with their offset, dates ISO, enum values their ``value``, missing values ``null``.

:func:`decode_payload` rebuilds the exact record class with every field in its declared Python
type: enum members where the value is a known member, the text kept as sent
otherwise, aware datetimes in KST for broker times, ``date``, ``Decimal``, ``bool``.

:func:`item_id` is a 16-byte BLAKE2b digest of the payload: the same item (a retried batch, a
replayed journal, a record read back from NATS) always gets the same id. It is the primary key
``record_id`` of the PostgreSQL tables and the ``Nats-Msg-Id`` of a published message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any

import msgspec

from krfeed import events as _events
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.schema.convert import KST
from krfeed.schema.core import KINDS
from krfeed.schema.enums import ENUM_KINDS, Direction, Side
from krfeed.sinks.base import Item

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder()


class PayloadError(ValueError):
    """A payload that is not a krfeed item (bad JSON, unknown type or event, bad value)."""


def _event_classes() -> dict[str, type[msgspec.Struct]]:
    out: dict[str, type[msgspec.Struct]] = {"DecodeError": DecodeError}
    for name in _events.__all__:
        cls = getattr(_events, name)
        if isinstance(cls, type) and issubclass(cls, _events.Event) and cls is not _events.Event:
            out[name] = cls
    return out


EVENTS: dict[str, type[msgspec.Struct]] = _event_classes()


def record_class(broker: str, code: str) -> type[Record]:
    """The generated record class of ``broker`` / ``code`` (KeyError when unknown)."""
    if broker == "kiwoom":
        from krfeed.records.kiwoom import RECORDS as KIWOOM

        return KIWOOM[code]
    if broker == "kis":
        from krfeed.records.kis import RECORDS as KIS

        return KIS[code]
    raise KeyError(f"unknown broker {broker!r}")


# ---- encoding ----


_heads: dict[type, bytes] = {}


def _head(cls: type) -> bytes:
    """``{"broker":…,"type":…,`` of a record class, ``{"event":"Name",`` of an event class."""
    head = _heads.get(cls)
    if head is None:
        if issubclass(cls, Record):
            obj = {"broker": cls.broker, "type": cls.type}
        else:
            obj = {"event": cls.__name__}
        head = _heads[cls] = _encoder.encode(obj)[:-1] + b","
    return head


def encode_payload(item: Item) -> bytes:
    """The JSON payload of one item (see the module docstring for its shape)."""
    # The Struct's own encoding (fields in order) spliced after the header keys.
    return _head(type(item)) + _encoder.encode(item)[1:]


def item_id(payload: bytes) -> bytes:
    """The 16-byte id of an item, from its payload (:func:`encode_payload`)."""
    return hashlib.blake2b(payload, digest_size=16).digest()


def encode_with_id(item: Item) -> tuple[bytes, bytes]:
    """``(payload, id)`` of one item."""
    payload = encode_payload(item)
    return payload, item_id(payload)


# ---- decoding ----

Converter = Callable[[Any], Any]


def _as_int(v: Any) -> int:
    if type(v) is int:
        return v
    raise ValueError(f"{v!r} is not an integer")


def _as_decimal(v: Any) -> Decimal:
    if isinstance(v, str):
        d = Decimal(v)
        if d.is_finite():
            return d
    elif type(v) is int:  # tolerated: a producer that writes whole numbers as numbers
        return Decimal(v)
    raise ValueError(f"{v!r} is not a finite decimal")


def _as_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    raise ValueError(f"{v!r} is not a string")


def _as_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise ValueError(f"{v!r} is not a boolean")


def _as_datetime(v: Any) -> datetime:
    dt = datetime.fromisoformat(_as_text(v))
    if dt.tzinfo is None:
        raise ValueError(f"{v!r} has no UTC offset")
    return dt


def _as_kst(v: Any) -> datetime:
    return _as_datetime(v).astimezone(KST)


def _as_date(v: Any) -> date:
    return date.fromisoformat(_as_text(v))


def _strict_enum(cls: type[Enum]) -> Converter:
    def conv(v: Any) -> Enum:
        return cls(_as_text(v))

    conv.strict = {m.value: m for m in cls}  # type: ignore[attr-defined]  # compiled decoder
    return conv


def _lenient_enum(cls: type[Enum]) -> Converter:
    """Known values become members; anything else is the text the broker sent (kept as str)."""
    members = {m.value: m for m in cls}

    def conv(v: Any) -> Enum | str:
        s = _as_text(v)
        return members.get(s, s)

    conv.members = members  # type: ignore[attr-defined]  # for the compiled decoder
    return conv


def _as_values(v: Any) -> tuple[str, ...]:
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise ValueError(f"{v!r} is not a list of strings")


def _as_fid_values(v: Any) -> dict[str, str]:
    if isinstance(v, dict) and all(isinstance(x, str) for x in v.values()):
        return v
    raise ValueError(f"{v!r} is not an object of strings")


#: Kind.value (the attribute's Python type) -> converter from the JSON value
_BY_VALUE: dict[str, Converter] = {
    "str": _as_text,
    "int": _as_int,
    "Decimal": _as_decimal,
    "datetime": _as_kst,
    "date": _as_date,
    "bool": _as_bool,
}
_COMPANION: dict[str, Converter] = {"_dir": _strict_enum(Direction), "_side": _strict_enum(Side)}


@cache
def _converters(cls: type[Record]) -> dict[str, Converter]:
    """attribute -> converter from the JSON value, for every field of a record class."""
    out: dict[str, Converter] = {
        "received_at": _as_datetime,
        "item": _as_text,
        "extra": _as_fid_values if cls.broker == "kiwoom" else _as_values,
    }
    for f in cls.schema().fields:
        if f.kind.startswith("enum:"):
            out[f.name] = _lenient_enum(ENUM_KINDS[f.kind[5:]][0])
            continue
        k = KINDS[f.kind]
        out[f.name] = _BY_VALUE[k.value]
        if k.companion:
            out[f.name + k.companion] = _COMPANION[k.companion]
    return out


#: Broker times (KST) seen in payloads -> datetime: a second is shared by many records.
_KST_SEEN: dict[str, datetime] = {}
_KST_SEEN_MAX = 100_000


def _as_kst_cached(v: Any) -> datetime:
    if v.__class__ is str:
        dt = _KST_SEEN.get(v)
        if dt is None:
            if len(_KST_SEEN) >= _KST_SEEN_MAX:
                _KST_SEEN.clear()
            dt = _KST_SEEN[v] = _as_kst(v)
        return dt
    return _as_kst(v)


@cache
def _compiled(cls: type[Record]) -> Callable[[dict[str, Any]], Record | None]:
    """A decoder of ``cls`` compiled from its converters, with the common cases inline (an int,
    a string, an enum value, a broker time seen before). None, or an exception: the object is
    not a plain valid payload, and :func:`from_dict` takes the checked path for its error."""
    convs = _converters(cls)
    ns: dict[str, Any] = {"KNOWN": frozenset(convs) | {"broker", "type"}, "cls": cls}
    lines = [
        "def decode(obj):",
        "    if not obj.keys() <= KNOWN or obj.get('received_at') is None:",
        "        return None",
        "    kw = {}",
        "    get = obj.get",
    ]
    for i, (name, conv) in enumerate(convs.items()):
        c, m = f"c{i}", f"m{i}"
        ns[c] = conv
        if conv is _as_int:
            expr = f"v if v.__class__ is int else {c}(v)"
        elif conv is _as_text:
            expr = f"v if v.__class__ is str else {c}(v)"
        elif conv is _as_bool:
            expr = f"v if v.__class__ is bool else {c}(v)"
        elif conv is _as_kst:
            ns[c] = _as_kst_cached
            expr = f"{c}(v)"
        elif hasattr(conv, "members"):
            ns[m] = conv.members
            expr = f"{m}.get(v, v) if v.__class__ is str else {c}(v)"
        elif hasattr(conv, "strict"):
            ns[m] = conv.strict
            expr = f"x if v.__class__ is str and (x := {m}.get(v)) is not None else {c}(v)"
        else:
            expr = f"{c}(v)"
        lines.append(f"    v = get({name!r})")
        lines.append(f"    if v is not None: kw[{name!r}] = {expr}")
    lines.append("    return cls(**kw)")
    exec(compile("\n".join(lines) + "\n", f"<krfeed payload {cls.__name__}>", "exec"), ns)
    fn: Callable[[dict[str, Any]], Record | None] = ns["decode"]
    return fn


def from_dict(obj: dict[str, Any]) -> Item:
    """Rebuild an item from its decoded JSON object (the inverse of :func:`encode_payload`)."""
    broker, code = obj.get("broker"), obj.get("type")
    if isinstance(broker, str) and isinstance(code, str) and "event" not in obj:
        try:
            rec = _compiled(record_class(broker, code))(obj)
        except (KeyError, ValueError, TypeError, ArithmeticError, msgspec.ValidationError):
            rec = None  # the checked path below says what is wrong
        if rec is not None:
            return rec
    try:
        if "event" in obj:
            name = obj["event"]
            cls = EVENTS.get(name) if isinstance(name, str) else None
            if cls is None:
                raise PayloadError(f"unknown event {name!r}")
            fields = {k: v for k, v in obj.items() if k != "event"}
            item: Item = msgspec.convert(fields, cls)  # type: ignore[assignment]
            return item
        broker, code = obj.get("broker"), obj.get("type")
        if not isinstance(broker, str) or not isinstance(code, str):
            raise PayloadError("neither a record (broker, type) nor an event")
        try:
            rcls = record_class(broker, code)
        except KeyError:
            raise PayloadError(f"unknown record type {broker} {code!r}") from None
        convs = _converters(rcls)
        values: dict[str, Any] = {}
        for k, v in obj.items():
            if k == "broker" or k == "type" or v is None:
                continue
            conv = convs.get(k)
            if conv is None:
                raise PayloadError(f"{broker} {code} has no field {k!r}")
            try:
                values[k] = conv(v)
            except (ValueError, TypeError, ArithmeticError) as e:  # InvalidOperation too
                raise PayloadError(f"{broker} {code} field {k}: {e}") from None
        if "received_at" not in values:
            raise PayloadError(f"{broker} {code} record without received_at")
        return rcls(**values)
    except msgspec.ValidationError as e:
        raise PayloadError(str(e)) from None


def decode_payload(data: bytes | str) -> Item:
    """The record, control event or decode error encoded in ``data``."""
    try:
        obj = _decoder.decode(data)
    except msgspec.DecodeError as e:
        raise PayloadError(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise PayloadError("not a JSON object")
    return from_dict(obj)


__all__ = [
    "EVENTS",
    "PayloadError",
    "decode_payload",
    "encode_payload",
    "encode_with_id",
    "from_dict",
    "item_id",
    "record_class",
]
