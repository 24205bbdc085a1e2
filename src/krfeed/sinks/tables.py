"""Table layouts derived from the catalog: one table per record type, typed columns, shared by
the SQL sinks (SQLite, PostgreSQL) and the columnar one (Parquet)."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from krfeed.events import Event
from krfeed.jsonout import dumps
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.schema.catalog import get_type
from krfeed.schema.core import KINDS, RealtimeType

#: Column kinds (SQL-agnostic): text, int, decimal, timestamp, date, bool (``Kind.column``).


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str  # text | int | decimal | timestamp | date | bool
    wire: str = ""
    korean: str = ""
    unit: str = ""  # where the broker documents one other than won/shares (e.g. 백만원)


@dataclass(frozen=True, slots=True)
class Table:
    """The table of one record type. ``row(record)`` gives values in column order."""

    name: str
    rtype: RealtimeType
    columns: tuple[Column, ...]
    row: Callable[[Record], tuple[Any, ...]]
    #: Columns that identify an account event (orders/fills) for idempotent upserts.
    key: tuple[str, ...] = ()
    #: The record's own event-time column, if it has one (first time field).
    time_column: str | None = None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def table_name(rt: RealtimeType) -> str:
    """``kiwoom_order_execution``, ``kis_program_trading`` …"""
    return f"{rt.broker}_{_snake(rt.name)}"


# Idempotency keys of account events: (order number, fill number) plus what tells events of
# one order apart when the fill number is empty (acknowledgements, modifications).
# Kiwoom 00 has a fill number; KIS notices have none, so a fill is told apart by its time,
# quantity and price plus the receive time (which replays and retries carry unchanged).
_KIS_NOTICE_KEY = (
    "account_no",
    "order_no",
    "notice_kind",
    "correction",
    "acceptance",
    "time",
    "fill_qty",
    "fill_price",
    "received_at",
)
_ACCOUNT_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("kiwoom", "00"): ("account_no", "order_no", "order_status", "fill_no", "unfilled_qty"),
    # 04 is a balance snapshot per code: the same snapshot is the same receive.
    ("kiwoom", "04"): ("account_no", "code", "received_at"),
    ("kis", "H0STCNI0"): _KIS_NOTICE_KEY,
    ("kis", "H0STCNI9"): _KIS_NOTICE_KEY,
}


@cache
def table_for(broker: str, code: str) -> Table:
    rt = get_type(broker, code)
    cols: list[Column] = [Column("received_at", "timestamp"), Column("item", "text")]
    for f in rt.fields:
        k = KINDS.get(f.kind)  # None: an enum kind, stored as its text
        cols.append(Column(f.name, k.column if k else "text", f.wire, f.korean, f.unit))
        if k is not None and k.companion:
            cols.append(Column(f.name + k.companion, "text", f.wire, f.korean + " 부호"))
    names = [c.name for c in cols]
    getter = operator.attrgetter(*names)

    def row(record: Record) -> tuple[Any, ...]:
        extra = record.extra  # type: ignore[attr-defined]
        return (*getter(record), dumps(extra) if extra else None)

    # values the declaration does not know (fields appended on the live wire), as JSON
    cols.append(Column("extra", "text", "", "선언되지 않은 값 (JSON)"))
    time_col = next((f.name for f in rt.fields if f.kind == "time"), None)
    return Table(
        name=table_name(rt),
        rtype=rt,
        columns=tuple(cols),
        row=row,
        key=_ACCOUNT_KEYS.get((broker, rt.code), ()),
        time_column=time_col,
    )


def table_of(record: Record) -> Table:
    return table_for(record.broker, record.type)


# ---- control events and decode errors: one table each, shared by every table sink ----

#: Control events (Connected, Disconnected, Reconnected, …): the event's own fields other than
#: broker/session/at go to ``detail`` as a JSON object.
EVENTS_TABLE = "krfeed_events"
EVENT_COLUMNS: tuple[Column, ...] = (
    Column("at", "timestamp"),
    Column("broker", "text"),
    Column("session", "text"),
    Column("event", "text"),
    Column("detail", "text"),
)

#: Frames (or entries of frames) that could not be decoded, kept whole.
DECODE_ERRORS_TABLE = "krfeed_decode_errors"
DECODE_ERROR_COLUMNS: tuple[Column, ...] = (
    Column("received_at", "timestamp"),
    Column("broker", "text"),
    Column("type", "text"),
    Column("reason", "text"),
    Column("raw", "text"),
)

_EVENT_BASE = frozenset({"broker", "session", "at"})


def event_row(event: Event) -> tuple[Any, ...]:
    """Values of :data:`EVENT_COLUMNS` for a control event."""
    detail = {
        name: getattr(event, name) for name in event.__struct_fields__ if name not in _EVENT_BASE
    }
    return (event.at, event.broker, event.session, type(event).__name__, dumps(detail))


def decode_error_row(error: DecodeError) -> tuple[Any, ...]:
    """Values of :data:`DECODE_ERROR_COLUMNS` for a decode error."""
    return (error.received_at, error.broker, error.type, error.reason, error.raw)
