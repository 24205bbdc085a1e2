"""Live terminal views (rich), one chosen per kind of type: an order-book ladder (asks above
bids with quantities), a trade tape, a blotter of orders and fills, and for every other type a
row per code with the columns declared in :mod:`krfeed.cli.columns`. Sections that do not fit
the terminal shrink (fewer levels, fewer tape and blotter rows) and then give way, with a line
saying so."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.table import Table
from rich.text import Text

from krfeed.cli.columns import (
    _NUMERIC,
    _RANK,
    BLOTTERS,
    COLUMNS,
    LABELS,
    TAPES,
    BlotterSpec,
    _fit,
    _lookup,
    _order_kind,
    _status,
    _styled,
    _table,
    check_fields,
    columns_for,
    field_names,
    fmt,
    heading,
    view_kind,
)
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
from krfeed.schema.core import RealtimeType

BLOTTER_ROWS = 15
TAPE_ROWS = 8
BOOK_LEVELS = 5


class LiveView:
    """Folds the stream into a renderable; call :meth:`update` per item, :meth:`render` to draw.

    ``fields`` replaces the columns of every market type (the blotter too, when it is the only
    thing shown); ``status=False`` leaves the status line to the caller (record draws its own)."""

    def __init__(
        self, title: str = "krfeed", fields: Sequence[str] | None = None, status: bool = True
    ) -> None:
        self.title = title
        self.fields = list(fields) if fields else None
        self.show_status = status
        #: Draws the status line instead of :meth:`status` (record shows the recorder's).
        self.status_line: Callable[[], Text] | None = None
        self.rows: dict[tuple[str, str, str], Record] = {}
        self.tapes: dict[tuple[str, str], deque[Record]] = {}
        self.blotter: deque[Record] = deque(maxlen=BLOTTER_ROWS)
        self.filled: dict[tuple[str, str], int] = {}  # (broker, order no) -> summed fills
        self._fills: dict[int, int] = {}  # id(record) -> filled after it (summed types)
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
            t = item.schema()
            kind = view_kind(t)
            if kind == "blotter" or (item.account and kind == "table" and not self.fields):
                self._add_order(item, t)
            elif kind == "tape" and not self.fields:
                tape = self.tapes.setdefault((item.broker, item.type), deque(maxlen=TAPE_ROWS))
                tape.appendleft(item)
                self.rows[(item.broker, item.type, item.item)] = item
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
            verb = "unanswered" if item.unanswered else "refused"
            self.log.append(f"{item.type} {item.item} {verb}: {item.reason}")
        elif isinstance(item, Stalled):
            self.log.append(f"{item.session} stalled for {item.silent_for:.0f}s")
        elif isinstance(item, Dropped):
            self.dropped = item.total

    def _add_order(self, r: Record, t: RealtimeType) -> None:
        spec: BlotterSpec | None = _lookup(BLOTTERS, t.broker, t.code)
        if spec is not None and not spec.filled and spec.fill_qty:
            key = (r.broker, str(getattr(r, spec.order, "")))
            done = self.filled.get(key, 0)
            if fmt(getattr(r, spec.status, None)) == "fill":
                done += getattr(r, spec.fill_qty, None) or 0
                self.filled[key] = done
            self._fills[id(r)] = done
        if len(self.blotter) == self.blotter.maxlen:
            self._fills.pop(id(self.blotter[0]), None)
        self.blotter.append(r)

    def rate(self) -> float:
        now = time.monotonic()
        t, n = self._rate_mark
        if now - t >= 1.0:
            self._rate = (self.records - n) / (now - t)
            self._rate_mark = (now, self.records)
        return self._rate

    def states(self) -> str:
        """The state of every session, e.g. ``kis#1:live kiwoom#1:live``."""
        return " ".join(f"{k}:{v}" for k, v in sorted(self.sessions.items())) or "starting"

    def status(self) -> Text:
        if self.status_line is not None:
            return Text.assemble(Text(f"{self.states()} | ", style="bold"), self.status_line())
        return Text(
            f"{self.states()} | {self.records:,} records {self.rate():,.0f}/s | "
            f"reconnects {self.reconnects} | decode errors {self.decode_errors} | "
            f"dropped {self.dropped} | {time.monotonic() - self._t0:,.0f}s",
            style="bold",
        )

    def render(self) -> RenderableType:
        return _Frame(self)

    # ---- sections: (priority, name, build(rows) -> renderable); rows None = all ----

    def _by_type(self) -> dict[tuple[str, str], list[Record]]:
        out: dict[tuple[str, str], list[Record]] = {}
        for (b, t, _), r in sorted(self.rows.items()):
            out.setdefault((b, t), []).append(r)
        return out

    def market_table(
        self, recs: list[Record], console: Console, options: ConsoleOptions, rows: int | None
    ) -> Table:
        first = recs[0]
        t = first.schema()
        cols = self.fields or columns_for(t)
        cols = [c for c in cols if c != "code" or t.broker == "kiwoom"]
        table = _table(f"{first.broker} {first.type} {first.title}")
        table.add_column("code", no_wrap=True)
        for c in cols:
            table.add_column(heading(t, c, short=not self.fields), justify="right", no_wrap=True)
        for r in recs[:rows] if rows is not None else recs:
            table.add_row(Text(r.item, style="bold"), *(_styled(r, c) for c in cols))
        return _fit(table, console, options, 2)

    def tape(
        self, key: tuple[str, str], console: Console, options: ConsoleOptions, rows: int | None
    ) -> Table:
        recs = list(self.tapes[key])
        t = recs[0].schema()
        cols = columns_for(t)
        table = _table(f"{key[0]} {key[1]} {recs[0].title} — newest first")
        table.add_column("code", no_wrap=True)
        for c in cols:
            table.add_column(heading(t, c), justify="right", no_wrap=True)
        for r in recs[:rows] if rows is not None else recs:
            table.add_row(Text(r.item, style="bold"), *(_styled(r, c) for c in cols))
        return _fit(table, console, options, 3)

    def ladders(self, recs: list[Record], levels: int) -> Table:
        """One ladder per code, side by side: asks (highest first) above bids."""
        grid = Table.grid(padding=(0, 3))
        cells = []
        for r in recs:
            t = r.schema()
            depth = min(levels, sum(1 for f in t.fields if f.name.startswith("ask_price_")))
            stamp = fmt(getattr(r, "time", None) or getattr(r, "quote_time", None))
            ladder = _table(f"{r.broker} {r.type} {r.item} {stamp}".strip())
            ladder.add_column("ask qty", justify="right", no_wrap=True, min_width=9)
            ladder.add_column("price", justify="right", no_wrap=True, min_width=9)
            ladder.add_column("bid qty", justify="right", no_wrap=True, min_width=9)
            for i in range(depth, 0, -1):
                ladder.add_row(
                    Text(fmt(getattr(r, f"ask_qty_{i}")), style="blue"),
                    _styled(r, f"ask_price_{i}"),
                    "",
                )
            for i in range(1, depth + 1):
                ladder.add_row(
                    "",
                    _styled(r, f"bid_price_{i}"),
                    Text(fmt(getattr(r, f"bid_qty_{i}")), style="red"),
                )
            ask_total = getattr(r, "total_ask_qty", None)
            if ask_total is not None:
                ladder.add_row(
                    Text(fmt(ask_total), style="dim"),
                    Text("total", style="dim"),
                    Text(fmt(getattr(r, "total_bid_qty", None)), style="dim"),
                )
            cells.append(ladder)
        width_each = 1 if not cells else len(cells)
        for _ in range(width_each):
            grid.add_column()
        grid.add_row(*cells)
        return grid

    def blotter_table(self, console: Console, options: ConsoleOptions, rows: int | None) -> Table:
        recs = list(self.blotter)
        if rows is not None:
            recs = recs[-rows:] if rows else []
        table = _table("orders and fills — newest last")
        if self.fields:
            table.add_column("type", no_wrap=True)
            for c in self.fields:
                table.add_column(c, justify="right", no_wrap=True)
            for r in recs:
                table.add_row(
                    f"{r.broker} {r.type}", *(fmt(getattr(r, c, None)) for c in self.fields)
                )
            return _fit(table, console, options, 2)
        heads = ("time", "type", "order", "code", "side", "status", "qty", "filled", "price")
        for h in (*heads, "left"):
            table.add_column(h, no_wrap=True, justify="right" if h in _NUMERIC else "left")
        for r in recs:
            table.add_row(*self._blotter_row(r))
        return _fit(table, console, options, 8)

    def _blotter_row(self, r: Record) -> list[Text | str]:
        t = r.schema()
        spec: BlotterSpec | None = _lookup(BLOTTERS, t.broker, t.code)
        if spec is None:  # an account type without orders (Kiwoom 04 balance)
            code = str(getattr(r, "code", "") or r.item)
            return [fmt(r.received_at), f"{r.broker} {r.type}", "", code, "", t.title]

        def get(name: str) -> Any:
            return getattr(r, name, None) if name else None

        status = _status(_order_kind(get(spec.kind)), fmt(get(spec.status)))
        qty = get(spec.qty)
        filled = (get(spec.filled) or 0) if spec.filled else self._fills.get(id(r), 0)
        left = get(spec.left) if spec.left else (qty - filled if qty is not None else None)
        price = get(spec.price) if fmt(get(spec.status)) in ("filled", "fill") else None
        side = get(spec.side)
        side_txt = Text(fmt(side), style="red" if fmt(side) == "buy" else "blue")
        when = get(spec.time) or r.received_at
        return [
            fmt(when),
            "kw" if r.broker == "kiwoom" else "kis",
            str(get(spec.order) or "-"),
            str(get(spec.code) or ""),
            side_txt,
            status,
            fmt(qty),
            fmt(filled),
            fmt(price),
            fmt(left),
        ]

    def sections(
        self, console: Console, options: ConsoleOptions
    ) -> Iterator[tuple[str, Any, list[int | None], str]]:
        """(name, build(step) -> renderable, the steps from full to smallest, kind)."""
        if self.blotter:
            n = len(self.blotter)
            steps: list[int | None] = [None, *range(min(n, 10), min(n, 3) - 1, -1)]
            yield "orders", lambda k: self.blotter_table(console, options, k), steps, "orders"
        for (b, t), recs in self._by_type().items():
            rt = recs[0].schema()
            kind = view_kind(rt)
            if self.fields or kind == "table" or (kind == "blotter"):
                yield (
                    f"{b} {t}",
                    lambda k, recs=recs: self.market_table(recs, console, options, k),
                    [None, 3],
                    "table",
                )
            elif kind == "tape":
                yield (
                    f"{b} {t}",
                    lambda k, key=(b, t): self.tape(key, console, options, k),
                    [None, 5, 3],
                    "tape",
                )
            elif kind == "book":
                per_row = max(1, (options.max_width + 3) // 36)
                for i in range(0, len(recs), per_row):
                    chunk = recs[i : i + per_row]
                    yield (
                        f"{b} {t}",
                        lambda k, chunk=chunk: self.ladders(chunk, k or BOOK_LEVELS),
                        [None, 3, 2],
                        "book",
                    )


class _Frame:
    """Lays the view out for the console it is drawn on: everything when it fits; otherwise
    sections shrink step by step (the orders blotter last), then market sections give way."""

    def __init__(self, view: LiveView) -> None:
        self.view = view

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterable[Any]:
        v = self.view
        head: list[RenderableType] = [v.status()] if v.show_status else []
        tail: list[RenderableType] = [Text(line, style="yellow") for line in v.log]
        secs = list(v.sections(console, options))
        levels = [0] * len(secs)

        def height(r: RenderableType) -> int:
            return len(console.render_lines(r, options.update(height=None), pad=False))

        budget = (options.height or console.size.height) - sum(map(height, (*head, *tail)))

        def build() -> list[RenderableType]:
            return [b(steps[i]) for (_, b, steps, _), i in zip(secs, levels, strict=True)]

        parts = build()
        heights = [height(p) for p in parts]
        # shrink tapes first, then ladders, then tables (each from the last), the blotter last
        order = sorted(range(len(secs)), key=lambda i: (-_RANK[secs[i][3]], -i))
        changed = True
        while sum(heights) > budget and changed:
            changed = False
            for i in order:
                if sum(heights) <= budget:
                    break
                if levels[i] + 1 < len(secs[i][2]):
                    levels[i] += 1
                    parts[i] = secs[i][1](secs[i][2][levels[i]])
                    heights[i] = height(parts[i])
                    changed = True
        hidden: list[str] = []
        while sum(heights) + (1 if hidden else 0) > budget and len(parts) > 1:
            ranked = [i for i in range(len(parts)) if secs[i][3] != "orders"]
            if not ranked:
                break
            drop = max(ranked, key=lambda i: (_RANK[secs[i][3]], i))
            hidden.insert(0, secs[drop][0])
            del parts[drop], heights[drop], secs[drop], levels[drop]
        yield from head
        yield from parts
        if hidden:
            names = ", ".join(dict.fromkeys(hidden))
            yield Text(f"not shown (a taller terminal shows them): {names}", style="dim")
        yield from tail


# the column tables and helpers moved to krfeed.cli.columns; importable from here as before
__all__ = [
    "BLOTTERS",
    "BLOTTER_ROWS",
    "BOOK_LEVELS",
    "COLUMNS",
    "LABELS",
    "TAPES",
    "TAPE_ROWS",
    "BlotterSpec",
    "LiveView",
    "check_fields",
    "columns_for",
    "field_names",
    "fmt",
    "heading",
    "view_kind",
]
