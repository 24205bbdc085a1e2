"""Live terminal views (rich): a row per code for market data, a scrolling blotter for order
events, and a status line with connection state, records/s, reconnects and decode errors."""

from __future__ import annotations

import time
from collections import deque
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from krfeed.events import (
    Connected,
    Disconnected,
    Dropped,
    Event,
    LoggedIn,
    Reconnecting,
    SessionFailed,
    Stalled,
    SubscribeFailed,
)
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.schema.convert import KST

MAX_COLUMNS = 9
BLOTTER_ROWS = 15


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


def _columns(record: Record) -> list[str]:
    names = [n for n in record.__struct_fields__ if n not in ("received_at", "item")]
    # Direction/side companions are shown as colour, not as columns.
    return [n for n in names if not n.endswith(("_dir", "_side"))][:MAX_COLUMNS]


class LiveView:
    """Folds the stream into a renderable; call :meth:`update` per item, :meth:`render` to draw."""

    def __init__(self, title: str = "krfeed") -> None:
        self.title = title
        self.rows: dict[tuple[str, str, str], Record] = {}
        self.blotter: deque[Record] = deque(maxlen=BLOTTER_ROWS)
        self.log: deque[str] = deque(maxlen=5)
        self.sessions: dict[str, str] = {}
        self.records = 0
        self.decode_errors = 0
        self.reconnects = 0
        self.dropped = 0
        self._t0 = time.monotonic()
        self._rate_mark = (time.monotonic(), 0)
        self._rate = 0.0

    def update(self, item: Record | Event | DecodeError) -> None:
        if isinstance(item, Record):
            self.records += 1
            if item.account:
                self.blotter.append(item)
            else:
                self.rows[(item.broker, item.type, item.item)] = item
            return
        if isinstance(item, DecodeError):
            self.decode_errors += 1
            self.log.append(f"decode error: {item.reason}")
            return
        if isinstance(item, Connected):
            self.sessions[item.session] = "connected"
        elif isinstance(item, LoggedIn):
            self.sessions[item.session] = "live"
        elif isinstance(item, Disconnected):
            self.sessions[item.session] = "failed" if item.fatal else "down"
            self.log.append(f"{item.session} disconnected: {item.reason}")
        elif isinstance(item, Reconnecting):
            # attempt N of one outage; "reconnects" counts outages
            self.sessions[item.session] = f"down, attempt {item.attempt}"
            if item.attempt == 1:
                self.reconnects += 1
            why = f"{item.session} reconnecting: {item.reason}"
            if item.reason and (not self.log or self.log[-1] != why):
                self.log.append(why)
        elif isinstance(item, SessionFailed):
            self.log.append(f"{item.session} stopped: {item.reason}")
        elif isinstance(item, SubscribeFailed):
            self.log.append(f"{item.type} {item.item} refused: {item.reason}")
        elif isinstance(item, Stalled):
            self.log.append(f"{item.session} stalled for {item.silent_for:.0f}s")
        elif isinstance(item, Dropped):
            self.dropped = item.total

    def rate(self) -> float:
        now = time.monotonic()
        t, n = self._rate_mark
        if now - t >= 1.0:
            self._rate = (self.records - n) / (now - t)
            self._rate_mark = (now, self.records)
        return self._rate

    def _market_tables(self) -> list[Table]:
        by_type: dict[tuple[str, str], list[Record]] = {}
        for (b, t, _), r in sorted(self.rows.items()):
            by_type.setdefault((b, t), []).append(r)
        out = []
        for (b, t), recs in by_type.items():
            first = recs[0]
            cols = _columns(first)
            table = Table(title=f"{b} {t} {first.title}", title_justify="left", expand=False)
            table.add_column("item", style="bold")
            for c in cols:
                table.add_column(c, justify="right", overflow="fold")
            for r in recs:
                cells: list[Text | str] = [r.item]
                for c in cols:
                    txt = Text(fmt(getattr(r, c)))
                    d = getattr(r, c + "_dir", None)
                    if d is not None:
                        txt.stylize(
                            "red" if d.value == "up" else "blue" if d.value == "down" else ""
                        )
                    cells.append(txt)
                table.add_row(*cells)
            out.append(table)
        return out

    def _blotter(self) -> Table | None:
        if not self.blotter:
            return None
        first = self.blotter[-1]
        cols = _columns(first)
        table = Table(title="orders and fills", title_justify="left")
        table.add_column("received", style="dim")
        table.add_column("type")
        for c in cols:
            table.add_column(c, overflow="fold")
        for r in self.blotter:
            row = [fmt(r.received_at), f"{r.broker} {r.type}"]
            row += [fmt(getattr(r, c, None)) for c in cols]
            table.add_row(*row)
        return table

    def status(self) -> Text:
        states = " ".join(f"{k}:{v}" for k, v in sorted(self.sessions.items())) or "starting"
        return Text(
            f"{states} | {self.records:,} records  {self.rate():,.0f}/s | "
            f"reconnects {self.reconnects} | decode errors {self.decode_errors} | "
            f"dropped {self.dropped} | {time.monotonic() - self._t0:,.0f}s",
            style="bold",
        )

    def render(self) -> RenderableType:
        parts: list[RenderableType] = [self.status()]
        parts.extend(self._market_tables())
        b = self._blotter()
        if b is not None:
            parts.append(b)
        for line in self.log:
            parts.append(Text(line, style="yellow"))
        return Group(*parts)
