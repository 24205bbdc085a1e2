"""The declaration of a real-time type: code, title, ordered fields with wire key, Korean and
English names and a value kind. Everything else (record classes, decoders, SQL, the simulator's
generator, ``krfeed schema``) is derived from these declarations."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

from krfeed.schema.enums import ENUM_KINDS


@dataclass(frozen=True, slots=True)
class Kind:
    """What a plain field kind means to everything derived from the catalog: the record
    attribute's type, the sinks' column kind, the decoder's converter, and the companion
    attribute a signed Kiwoom value adds (``<name>_dir`` / ``<name>_side``)."""

    doc: str
    value: str  # the attribute's Python type: str, int, Decimal, datetime, date, bool
    column: str  # the sinks' column kind: text, int, decimal, timestamp, date, bool
    convert: str = ""  # krfeed.schema.convert function of a one-value kind ("" for the others)
    companion: str = ""  # "_dir" (a Direction) or "_side" (a Side) for signed Kiwoom values

    @property
    def companion_type(self) -> str:
        """The companion attribute's enum class name (``""`` without a companion)."""
        return {"_dir": "Direction", "_side": "Side"}.get(self.companion, "")


#: The plain value kinds, read by codegen, the decoders, the sinks' tables and payloads, and
#: the simulator. ``enum:<name>`` kinds are listed in :data:`krfeed.schema.enums.ENUM_KINDS`.
KINDS: dict[str, Kind] = {
    "text": Kind("string; '' becomes None", "str", "text", "to_text"),
    "int": Kind(
        "integer (won, shares, counts unless the field's unit says otherwise); a sign is "
        "arithmetic ('-50' is -50)",
        "int",
        "int",
        "to_int",
    ),
    "price": Kind(
        "Kiwoom signed price: level (int) plus <name>_dir Direction from the sign",
        "int",
        "int",
        companion="_dir",
    ),
    "price_decimal": Kind(
        "Kiwoom signed non-integer level (index, NAV): Decimal plus <name>_dir",
        "Decimal",
        "decimal",
        companion="_dir",
    ),
    "aggressor_qty": Kind(
        "Kiwoom 0B/15 volume: quantity (int) plus <name>_side Side (+ buy/- sell)",
        "int",
        "int",
        companion="_side",
    ),
    "decimal": Kind(
        "Decimal (rates, ratios, non-integer prices)", "Decimal", "decimal", "to_decimal"
    ),
    "time": Kind(
        "HHmmss KST on the trading date -> aware datetime; '000000' is None",
        "datetime",
        "timestamp",
    ),
    "date": Kind("YYYYMMDD -> date; '00000000' is None", "date", "date", "to_date"),
    "yn": Kind("Y/N -> bool", "bool", "bool", "to_yn"),
    "flag01": Kind("0/1 -> bool", "bool", "bool", "to_flag01"),
}

#: Plain value kinds and what they mean (the ``doc`` of :data:`KINDS`).
BASE_KINDS: dict[str, str] = {k: v.doc for k, v in KINDS.items()}


def companion(kind: str) -> str:
    """The companion attribute suffix of a field kind (``""`` for none, e.g. enums)."""
    k = KINDS.get(kind)
    return k.companion if k is not None else ""


#: The units a field may declare, in English.
UNIT_NAMES: dict[str, str] = {"백만원": "millions of won", "억원": "hundreds of millions of won"}


RESERVED = frozenset({"received_at", "item", "broker", "type", "title", "fields", "extra"})
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class F:
    """One field: wire key (Kiwoom FID or KIS field name), Korean name, English name, kind.

    ``since`` marks a field the live service appended to the published layout (KIS adds fields
    at the end of a record without changing the TR id): the label of that layout version, e.g.
    ``"2026-09-14"``. Fields with the same label form one version; see
    :attr:`RealtimeType.layouts`.

    ``unit`` is the unit of a number where the broker documents one other than the plain
    won/shares of its kind, e.g. ``"백만원"`` (millions of won) or ``"억원"``.
    """

    wire: str
    korean: str
    name: str
    kind: str = "text"
    since: str = ""
    unit: str = ""

    @property
    def attrs(self) -> tuple[str, ...]:
        """Record attributes this field fills (price/aggressor_qty add a companion)."""
        suffix = companion(self.kind)
        return (self.name, self.name + suffix) if suffix else (self.name,)


@dataclass(frozen=True, slots=True)
class RealtimeType:
    """A real-time type of one broker, declared once."""

    broker: str  # "kiwoom" | "kis"
    code: str  # Kiwoom type ("00", "0B") or KIS tr_id ("H0STPGM0")
    title: str  # Korean title as the broker names it
    name: str  # record class name, e.g. "OrderExecution"
    constant: str  # Feed constant, e.g. "ORDER_EXECUTION"
    fields: tuple[F, ...]
    description: str = ""
    encrypted: bool = False  # KIS: payload is AES-256-CBC encrypted
    account: bool = False  # pushes for the account (order/fill/balance): never dropped
    mock_tr: str | None = None  # KIS: tr_id to use on the mock server instead
    real_only: bool = False  # KIS: not offered by the mock server
    #: KIS: the first field is the subscribed key (tr_key) — False where the official layout
    #: carries no code (the record's ``item`` is then "").
    keyed: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def layouts(self) -> tuple[int, ...]:
        """The known record widths (fields per record), oldest first: the published layout,
        then one per ``since`` label, each a prefix of :attr:`fields`."""
        widths = [sum(1 for f in self.fields if not f.since)]
        label = ""
        for i, f in enumerate(self.fields):
            if f.since and f.since != label:
                if i > widths[0]:
                    widths.append(i)
                label = f.since
        if len(self.fields) > widths[-1]:
            widths.append(len(self.fields))
        return tuple(widths)

    def layout_label(self, width: int) -> str:
        """The name of the layout version with ``width`` fields ("published" or its label)."""
        if width <= self.layouts[0]:
            return "published"
        return self.fields[width - 1].since

    def field(self, name_or_wire: str) -> F:
        for f in self.fields:
            if f.name == name_or_wire or f.wire == name_or_wire:
                return f
        raise KeyError(f"{self.broker} {self.code} has no field {name_or_wire!r}")


def validate(t: RealtimeType) -> None:
    """Raise ValueError when a declaration is inconsistent."""
    seen_wire: set[str] = set()
    seen_attr: set[str] = set()
    if not re.match(r"^[A-Z][A-Za-z0-9]*$", t.name):
        raise ValueError(f"{t.code}: class name {t.name!r} is not CamelCase")
    labels: list[str] = []
    for f in t.fields:
        where = f"{t.broker} {t.code} field {f.wire}"
        if labels and not f.since:
            raise ValueError(f"{where}: a published field after appended ones")
        if f.since and (not labels or labels[-1] != f.since):
            if f.since in labels:
                raise ValueError(f"{where}: the fields of layout {f.since!r} are not together")
            labels.append(f.since)
        if f.wire in seen_wire:
            raise ValueError(f"{where}: wire key declared twice")
        seen_wire.add(f.wire)
        kind_ok = f.kind in BASE_KINDS or (f.kind.startswith("enum:") and f.kind[5:] in ENUM_KINDS)
        if not kind_ok:
            raise ValueError(f"{where}: unknown kind {f.kind!r}")
        for a in f.attrs:
            if not _SNAKE.match(a) or keyword.iskeyword(a):
                raise ValueError(f"{where}: {a!r} is not a snake_case identifier")
            if a in RESERVED or a in seen_attr:
                raise ValueError(f"{where}: attribute {a!r} is reserved or used twice")
            seen_attr.add(a)
