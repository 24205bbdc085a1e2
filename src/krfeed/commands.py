"""The long-running CLI commands (record, replay, demo), as async functions the CLI calls."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from krfeed.brokers import KIS, BrokerConfig, Kiwoom
from krfeed.errors import SubscriptionError
from krfeed.events import Disconnected, Reconnected, SessionFailed
from krfeed.feed import Feed, FeedItem
from krfeed.recorder import Recorder
from krfeed.records.base import Record
from krfeed.runner import FeedFailed, SubSpec
from krfeed.session import SessionOptions
from krfeed.sinks import Sink, open_sink
from krfeed.views import LiveView


def _install_stop(stop: Callable[[], None]) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    sigs = (signal.SIGINT, signal.SIGTERM)
    for sig in sigs:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)

    def remove() -> None:
        for sig in sigs:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)

    return remove


class _Watched:
    """The feed as the recorder's source, also feeding a view and watching for the end."""

    def __init__(
        self,
        feed: Feed,
        view: LiveView | None,
        count: int | None,
        on_end: Callable[[], None],
        printer: Callable[[FeedItem], None] | None = None,
    ) -> None:
        self.feed = feed
        self.view = view
        self.printer = printer
        self.count = count
        self.records = 0
        self.failed: dict[str, str] = {}
        self._on_end = on_end

    async def __aiter__(self) -> AsyncIterator[FeedItem]:
        async for item in self.feed:
            if self.view is not None:
                self.view.update(item)
            elif self.printer is not None:
                self.printer(item)
            if isinstance(item, Record):
                self.records += 1
            elif isinstance(item, SessionFailed):
                self.failed[item.session] = item.reason
                if all(s.failed for s in self.feed.sessions):
                    yield item
                    self._on_end()
                    return
            yield item
            if self.count is not None and self.records >= self.count:
                self._on_end()
                return


def _status_line(rec: Recorder, feed: Feed) -> Text:
    st = rec.status()
    fs = feed.stats()
    lag = st.get("lag")
    lag_s = f"{lag:.2f}s" if isinstance(lag, int | float) else "-"
    errs = st["errors"]
    failing = f"  FAILING: {', '.join(st['failing'])}" if st["failing"] else ""
    return Text(
        f"rows {st['written']:,}  {st['rows_per_sec']:,.0f}/s  lag {lag_s}  "
        f"reconnects {fs['reconnects']}  decode errors {fs['decode_errors']}  "
        f"sink errors {errs}{failing}",
        style="bold red" if failing else "bold",
    )


async def record(
    brokers: list[BrokerConfig],
    subs: list[SubSpec],
    urls: list[str],
    *,
    duration: float | None = None,
    count: int | None = None,
    journal: Any = None,
    options: SessionOptions | None = None,
    live: bool | None = None,
    console: Console | None = None,
    printer: Callable[[FeedItem], None] | None = None,
) -> dict[str, Any]:
    """Record ``subs`` into the sinks at ``urls`` until stopped; returns the recorder status.

    In a terminal (or ``live=True``) a live view shows the stream; otherwise ``printer``, if
    given, sees every item."""
    sinks = [open_sink(u) for u in urls]
    feed = Feed(*brokers, options=options, on_raw=journal)
    console = console or Console(stderr=True)
    show = console.is_terminal if live is None else live
    view = LiveView() if show else None
    rec: Recorder | None = None

    def end() -> None:
        if rec is not None:
            rec.stop()

    source = _Watched(feed, view, count, end, printer)
    rec = Recorder(source, sinks)
    remove = _install_stop(end)
    try:
        await feed.start()
        for s in subs:
            try:
                await feed.subscribe(f"{s.broker}:{s.type}", list(s.codes), wait=False)
            except SubscriptionError as e:
                raise SubscriptionError(f"{s}: {e}") from None
        if show:
            assert view is not None
            with Live(console=console, refresh_per_second=4) as lv:

                async def refresh() -> None:
                    while True:
                        lv.update(Group(_status_line(rec, feed), view.render()))
                        await asyncio.sleep(0.25)

                r = asyncio.create_task(refresh())
                try:
                    await rec.run(until=duration)
                finally:
                    r.cancel()
                    lv.update(Group(_status_line(rec, feed), view.render()))
        else:
            await rec.run(until=duration)
    finally:
        remove()
        await feed.close()
        if journal is not None:
            await asyncio.to_thread(journal.close)
    if source.failed and all(s.failed for s in feed.sessions):
        raise FeedFailed("; ".join(dict.fromkeys(source.failed.values())))
    return rec.status()


async def replay_to(path: Path, urls: list[str], speed: float | None) -> dict[str, Any]:
    """Replay a journal into sinks (``jsonl:-`` prints to stdout)."""
    from krfeed.journal import replay

    sinks: list[Sink] = [open_sink(u) for u in urls]
    source: AsyncIterator[Any] = replay(path, speed=speed)
    rec = Recorder(source, sinks)
    remove = _install_stop(rec.stop)
    try:
        await rec.run()
    finally:
        remove()
    return rec.status()


DEMO_CODES = ("005930", "000660", "035720", "051910", "035420")


async def demo(
    duration: float = 30.0,
    db: Path = Path("krfeed-demo.db"),
    *,
    seed: int = 1,
    live: bool | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Simulator in-process → Feed (Kiwoom 00/0B/0w, KIS H0STPGM0/H0STCNT0) → SQLite + view."""
    from krfeed.sim import SimConfig, Simulator

    console = console or Console()
    cfg = SimConfig(port=0, seed=seed, rate=4.0, auto_orders=1.0, ping_interval=5.0)
    async with Simulator(cfg) as sim:
        console.print(f"[dim]simulator running at {sim.url}[/]")
        brokers: list[BrokerConfig] = [Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 2)]
        codes = tuple(DEMO_CODES)
        subs = [
            SubSpec("kiwoom", "00", ()),
            SubSpec("kiwoom", "0B", codes),
            SubSpec("kiwoom", "0w", codes),
            SubSpec("kis", "H0STPGM0", codes),
            SubSpec("kis", "H0STCNT0", codes[:3]),
        ]
        # Auto-orders go to the KIS account too once its notices are subscribed.
        subs.append(SubSpec("kis", "H0STCNI0", ()))
        if db.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
        t0 = time.monotonic()
        status = await record(
            brokers,
            subs,
            [f"sqlite:///{db}"],
            duration=duration,
            live=live,
            console=console,
            printer=_DemoPrinter(console),
        )
        status["elapsed"] = round(time.monotonic() - t0, 1)
        status["sim"] = sim.stats()
    summary(db, console)
    return status


class _DemoPrinter:
    """Plain lines when the demo runs without a terminal: every order event, and program
    trading at most once a second per code."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.closed = False
        self._last: dict[str, float] = {}

    def __call__(self, item: FeedItem) -> None:
        from krfeed.records.kis import ExecutionNotice, ProgramTrading
        from krfeed.records.kiwoom import OrderExecution

        line = ""
        if isinstance(item, OrderExecution):
            line = (
                f"kiwoom 00 order {item.order_no} {item.order_status} {item.side} {item.code} "
                f"qty {item.order_qty} filled {item.fill_qty or 0} @ {item.fill_price or '-'} "
                f"unfilled {item.unfilled_qty}"
            )
        elif isinstance(item, ExecutionNotice):
            line = (
                f"kis H0STCNI0 {item.notice_kind} order {item.order_no} {item.side} {item.code} "
                f"qty {item.fill_qty} @ {item.fill_price}"
            )
        elif isinstance(item, ProgramTrading):
            now = time.monotonic()
            if now - self._last.get(item.item, 0.0) < 1.0:
                return
            self._last[item.item] = now
            t = item.time.strftime("%H:%M:%S") if item.time else "-"
            line = (
                f"kis H0STPGM0 {item.code} {t} program buy {item.buy_qty} sell {item.sell_qty} "
                f"net {item.net_buy_qty:+} shares, {item.net_buy_value:+,} won"
            )
        elif isinstance(item, SessionFailed | Disconnected | Reconnected):
            line = f"{type(item).__name__}: {item.session}"
        if line and not self.closed:
            try:
                self.console.print(line, highlight=False, soft_wrap=True)
            except (BrokenPipeError, SystemExit):  # rich exits on a closed pipe
                self.closed = True  # the reader went away (| head): keep recording quietly


def summary(db: Path, console: Console) -> None:
    """Rows per table of a recording, and a query to try."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
            ).fetchall()
        ]
        table = Table(title=f"recorded in {db}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for n in names:
            (rows,) = con.execute(f'SELECT count(*) FROM "{n}"').fetchone()
            table.add_row(n, f"{rows:,}")
    finally:
        con.close()
    console.print(table)
    console.print("Try:")
    console.print(
        f'  krfeed query {db} "SELECT order_no, order_status, code, side, order_qty, fill_qty, '
        'fill_price FROM kiwoom_order_execution ORDER BY received_at LIMIT 20"',
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f'  krfeed query {db} "SELECT code, time, net_buy_qty, net_buy_value '
        'FROM kis_program_trading ORDER BY received_at DESC LIMIT 10"',
        highlight=False,
        soft_wrap=True,
    )


def query(db: Path, sql: str, *, as_json: bool = False, console: Console | None = None) -> int:
    """Run read-only SQL on a recording and print the rows; returns the row count."""
    import msgspec

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description or ()]
        rows = cur.fetchall()
    finally:
        con.close()
    if as_json:
        out = sys.stdout
        for r in rows:
            out.write(msgspec.json.encode(dict(zip(cols, r, strict=True))).decode() + "\n")
        return len(rows)
    console = console or Console()
    table = Table(show_lines=False)
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    console.print(table)
    console.print(f"[dim]{len(rows)} row(s)[/]")
    return len(rows)
