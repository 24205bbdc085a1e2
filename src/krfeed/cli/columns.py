"""What the live views show per type (:mod:`krfeed.cli.views`): the declarative column tables
(columns, tapes, blotters, labels), the field checks of ``--fields``, value formatting and the
rich table helpers. Re-exported by :mod:`krfeed.cli.views`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from krfeed.records.base import Record
from krfeed.schema.convert import KST
from krfeed.schema.core import RealtimeType

# ---- what each type shows: data, not code per type ----

_TAPE_KIS = ("time", "current_price", "change_rate", "trade_volume", "cumulative_volume")
_PGM_KIS = ("time", "sell_qty", "buy_qty", "net_buy_qty", "net_buy_value")
_QUOTE = ("current_price", "change_rate", "cumulative_volume")

#: The columns of a type's view, most useful first ("broker:code"; several codes may share one
#: entry, separated by "|"). Types not listed show their first fields.
COLUMNS: dict[str, tuple[str, ...]] = {
    # trade tapes
    "kiwoom:0B": (
        "trade_time",
        "current_price",
        "change_rate",
        "trade_volume",
        "cumulative_volume",
        "cumulative_value",
    ),
    "kis:H0STCNT0|H0NXCNT0|H0UNCNT0|H0STOUP0": (*_TAPE_KIS, "trade_strength"),
    # program trading
    "kiwoom:0w": (
        "trade_time",
        "current_price",
        "program_sell_qty",
        "program_buy_qty",
        "program_net_buy_qty",
        "program_net_buy_amount",
    ),
    "kis:H0STPGM0|H0NXPGM0|H0UNPGM0": _PGM_KIS,
    # quotes and the rest
    "kiwoom:0A": (*_QUOTE, "cumulative_value", "best_ask", "best_bid"),
    "kiwoom:0C": ("best_ask", "best_bid"),
    "kiwoom:0H": ("trade_time", "current_price", "change_rate", "trade_volume"),
    "kiwoom:0J": ("trade_time", *_QUOTE, "cumulative_value"),
    "kiwoom:0U": (
        "trade_time",
        "current_price",
        "change_rate",
        "rising_count",
        "unchanged_count",
        "falling_count",
    ),
    "kiwoom:0G": ("trade_time", "nav", "nav_change_rate", "current_price", "tracking_error_rate"),
    "kiwoom:1h": ("stock_name", "vi_trigger_type", "vi_trigger_price", "vi_release_time"),
    "kiwoom:04": (
        "code",
        "holding_qty",
        "orderable_qty",
        "purchase_price",
        "current_price",
        "today_realized_pnl",
    ),
    "kis:H0STANC0|H0NXANC0|H0UNANC0|H0STOAC0": _TAPE_KIS,
    "kis:H0STMKO0|H0NXMKO0|H0UNMKO0": ("halted", "market_op_code", "vi_code", "stock_status_code"),
    "kis:H0UPCNT0|H0UPANC0": ("time", "current_index", "change", "change_rate", "trade_volume"),
}

#: Types shown as a trade tape (the newest trades of every code, newest first).
TAPES = frozenset({"kiwoom:0B", "kis:H0STCNT0", "kis:H0NXCNT0", "kis:H0UNCNT0", "kis:H0STOUP0"})


@dataclass(frozen=True, slots=True)
class BlotterSpec:
    """Where an account type keeps the blotter's columns (field names; "" = not carried)."""

    time: str
    order: str
    code: str
    side: str
    status: str
    qty: str
    filled: str  # cumulative filled quantity ("" = summed from the fills seen)
    price: str
    left: str  # remaining quantity ("" = order qty minus filled)
    kind: str  # modify / cancel marker
    fill_qty: str = ""  # per-fill quantity of a fill notice (when ``filled`` is summed)


#: Account types with orders and fills.
BLOTTERS: dict[str, BlotterSpec] = {
    "kiwoom:00": BlotterSpec(
        "order_fill_time",
        "order_no",
        "code",
        "side",
        "order_status",
        "order_qty",
        "fill_qty",  # 911 체결량 is cumulative per order (915 단위체결량 is the fill's own)
        "unit_fill_price",
        "unfilled_qty",
        "order_kind",
    ),
    "kis:H0STCNI0|H0STCNI9": BlotterSpec(
        "time",
        "order_no",
        "code",
        "side",
        "notice_kind",
        "order_qty",
        "",
        "fill_price",
        "",
        "correction",
        fill_qty="fill_qty",  # CNTG_QTY: the fill's quantity (the order quantity on an ack)
    ),
}

#: Short column headings (the field name is used otherwise).
LABELS: dict[str, str] = {
    "trade_time": "time",
    "current_price": "price",
    "current_index": "index",
    "change_rate": "chg%",
    "trade_volume": "volume",
    "cumulative_volume": "cum volume",
    "cumulative_value": "cum value",
    "trade_strength": "strength",
    "program_sell_qty": "sell qty",
    "program_buy_qty": "buy qty",
    "program_net_buy_qty": "net qty",
    "program_net_buy_amount": "net amount",
    "net_buy_qty": "net qty",
    "net_buy_value": "net value",
    "sell_qty": "sell qty",
    "buy_qty": "buy qty",
    "holding_qty": "holding",
    "orderable_qty": "orderable",
    "purchase_price": "avg cost",
    "today_realized_pnl": "realized",
}


def _lookup(table: dict[str, Any], broker: str, code: str) -> Any:
    for key, value in table.items():
        b, codes = key.split(":", 1)
        if b == broker and code in codes.split("|"):
            return value
    return None


def view_kind(t: RealtimeType) -> str:
    """``book``, ``tape``, ``blotter`` or ``table``: how a type is shown."""
    if _lookup(BLOTTERS, t.broker, t.code) is not None:
        return "blotter"
    if f"{t.broker}:{t.code}" in TAPES:
        return "tape"
    names = {f.name for f in t.fields}
    if {"ask_price_2", "ask_qty_2", "bid_price_2", "bid_qty_2"} <= names:
        return "book"
    return "table"


def field_names(t: RealtimeType) -> list[str]:
    """The names ``--fields`` accepts for a type."""
    return [a for f in t.fields for a in f.attrs if not a.endswith(("_dir", "_side"))]


def check_fields(t: RealtimeType, fields: Sequence[str]) -> list[str]:
    """``fields`` when every name is a field of ``t``; else ValueError in one sentence."""
    valid = field_names(t)
    unknown = [f for f in fields if f not in valid]
    if unknown:
        raise ValueError(
            f"{t.broker} {t.code} has no field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; "
            f"its fields are {', '.join(valid)}"
        )
    return list(fields)


def columns_for(t: RealtimeType) -> list[str]:
    """The declared columns of a type, else its first fields (``code`` is the item column)."""
    declared = _lookup(COLUMNS, t.broker, t.code)
    if declared is not None:
        return list(declared)
    return [n for n in field_names(t) if n != "code"][:8]


def heading(t: RealtimeType | None, name: str, *, short: bool = True) -> str:
    """A column heading: the short label (or the name) and the field's unit when it has one."""
    label = LABELS.get(name, name) if short else name
    if t is not None:
        for f in t.fields:
            if name == f.name and f.unit:
                return f"{label} {f.unit}"
    return label


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "Y" if v else "N"
    if isinstance(v, Enum):
        return str(v.value)
    if isinstance(v, datetime):
        return v.astimezone(KST).strftime("%H:%M:%S")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, Decimal):
        return f"{v:f}"
    return str(v)


def _styled(r: Record, name: str) -> Text:
    txt = Text(fmt(getattr(r, name, None)))
    d = getattr(r, name + "_dir", None)
    if d is not None:
        txt.stylize("red" if d.value == "up" else "blue" if d.value == "down" else "")
    s = getattr(r, name + "_side", None)
    if s is not None:
        txt.stylize("red" if s.value == "buy" else "blue")
    return txt


def _table(title: str, **kw: Any) -> Table:
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=None,
        header_style="bold underline",
        padding=(0, 1),
        pad_edge=False,
        **kw,
    )


def _fit(table: Table, console: Console, options: ConsoleOptions, keep: int) -> Table:
    """Drop trailing columns until the table fits the width (digits never wrap)."""
    while len(table.columns) > keep:
        if Measurement.get(console, options, table).maximum <= options.max_width:
            break
        table.columns.pop()
    return table


# ---- section ranks (the orders blotter first) and the blotter's words ----

_RANK = {"orders": 0, "table": 1, "book": 2, "tape": 3}
_NUMERIC = frozenset({"order", "qty", "filled", "price", "left"})


#: A modify or cancel's own events, in words that fit the blotter.
_AMEND = {
    ("cancel", "accepted"): "cancel req",
    ("cancel", "confirmed"): "cancelled",
    ("cancel", "ack"): "cancel ack",
    ("modify", "accepted"): "modify req",
    ("modify", "confirmed"): "modified",
    ("modify", "ack"): "modify ack",
}


def _status(kind: str, status: str) -> str:
    """The blotter's status: the order's status, or what a modify/cancel did."""
    if not kind:
        return status
    return _AMEND.get((kind, status), f"{kind} {status}")


def _order_kind(v: Any) -> str:
    """'modify' / 'cancel' from Kiwoom 905 주문구분 text or KIS RCTF_CLS; '' for a new order."""
    s = fmt(v)
    if "취소" in s or s == "cancel":
        return "cancel"
    if "정정" in s or s == "modify":
        return "modify"
    return ""
