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

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from krfeed.brokers import KIS, BrokerConfig, Kiwoom
from krfeed.errors import SubscriptionError
from krfeed.events import Disconnected, Reconnected, SessionFailed
from krfeed.feed import Feed, FeedItem
from krfeed.recorder import Recorder
from krfeed.records.base import Record
from krfeed.runner import CONNECT_TIMEOUT, FeedFailed, SubSpec, Watch
from krfeed.session import SessionOptions
from krfeed.sinks import Sink, open_sink, timeout_option, where
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
        watch: Watch,
        on_fail: Callable[[], None],
        printer: Callable[[FeedItem], None] | None = None,
    ) -> None:
        self.feed = feed
        self.view = view
        self.printer = printer
        self.count = count
        self.watch = watch
        self.records = 0
        self._on_fail = on_fail
        self._failed = False

    async def __aiter__(self) -> AsyncIterator[FeedItem]:
        async for item in self.feed:
            if self.view is not None:
                self.view.update(item)
            elif self.printer is not None:
                self.printer(item)
            if isinstance(item, Record):
                self.records += 1
            elif self.watch.see(item) and not self._failed:
                self._failed = True
                self._on_fail()
            yield item
            if self.count is not None and self.records >= self.count:
                return


#: A write taking this many seconds is shown as a sink outage (sinks retry inside ``write``).
SLOW_WRITE = 3.0


def _status_line(rec: Recorder, feed: Feed) -> Text:
    text = status_text(rec, feed)
    return Text(text, style="bold red" if "SINK DOWN" in text else "bold")


def status_text(rec: Recorder, feed: Feed) -> str:
    """One line: records written, rate, lag, reconnects, drops, decode and sink errors."""
    st = rec.status()
    fs = feed.stats()
    lag = st.get("lag")
    lag_s = f"{lag:.2f}s" if isinstance(lag, int | float) else "-"
    failing = ""
    slow = {
        u: v
        for u, v in st["sinks"].items()
        if v["failing"] or (v["writing_for"] or 0) >= SLOW_WRITE
    }
    if slow:
        v = next(iter(slow.values()))
        why = v["last_error"] if v["failing"] else f"a write has been waiting {v['writing_for']}s"
        failing = f"  SINK DOWN, retrying: {', '.join(map(where, slow))} ({why})"
    return (
        f"records {st['records']:,} (+{st['written'] - st['records']:,} events)  "
        f"{st['rows_per_sec']:,.0f} rows/s  lag {lag_s}  "
        f"reconnects {fs['reconnects']}  dropped {fs['dropped']}  "
        f"decode errors {fs['decode_errors']}  sink errors {st['errors']}{failing}"
    )


class Interrupted(Exception):
    """Stopped (Ctrl-C / SIGTERM) before anything was recorded."""


async def open_sinks(sinks: list[Sink], stopped: asyncio.Event) -> None:
    """Open every sink, closing those opened when one fails; :class:`Interrupted` when
    ``stopped`` is set first (a sink still trying to connect is cancelled)."""
    opened: list[Sink] = []

    async def open_all() -> None:
        for s in sinks:
            await s.open()
            opened.append(s)

    task = asyncio.ensure_future(open_all())
    waiter = asyncio.ensure_future(stopped.wait())
    await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if task.cancelled() or task.exception() is not None:
        for s in opened:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.close(), 5)
        if task.cancelled():
            raise Interrupted("stopped before recording anything")
        raise task.exception()  # type: ignore[misc]


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
    connect_timeout: float = CONNECT_TIMEOUT,
    stop_timeout: float = 5.0,
    spill_dir: Path | None = None,
    status_every: float | None = None,
    status_out: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Record ``subs`` into the sinks at ``urls`` until stopped; returns the recorder status
    (plus ``refused``: the refused subscriptions and why).

    Sinks are opened first, each within ``connect_timeout`` seconds; then the brokers must
    connect within ``connect_timeout`` (else :class:`FeedFailed`). ``duration``, SIGINT and
    SIGTERM close the feed and record what it had received (the journal stops at the same
    frame); a sink still failing then gets ``stop_timeout`` seconds, and what it could not
    take is saved in ``spill_dir``. A second signal stops at once.

    In a terminal (or ``live=True``) a live view shows the stream; otherwise ``printer``, if
    given, sees every item, and ``status_out`` gets a status line every ``status_every`` s."""
    sinks = [open_sink(u, **timeout_option(u, connect_timeout)) for u in urls]
    console = console or Console(stderr=True)
    show = console.is_terminal if live is None else live
    view = LiveView() if show else None
    stopped = asyncio.Event()
    rec: Recorder | None = None
    feed: Feed | None = None
    closing: asyncio.Task[None] | None = None

    def end() -> None:
        nonlocal closing
        if stopped.is_set():
            return
        stopped.set()
        if feed is None or rec is None:
            return
        rec.give_up_after(stop_timeout)
        # Closing the feed ends its stream once what it received is delivered: the recording
        # and the journal stop at the same frame.
        closing = asyncio.ensure_future(feed.close())

    def on_signal() -> None:
        if stopped.is_set() and rec is not None:  # the second signal: stop now
            rec.stop()
        end()

    remove = _install_stop(on_signal)
    try:
        await open_sinks(sinks, stopped)
    except BaseException:
        remove()
        raise
    feed = Feed(*brokers, options=options, on_raw=journal)
    watch = Watch(feed, connect_timeout)
    source = _Watched(feed, view, count, watch, end, printer)
    rec = Recorder(source, sinks, open_sinks=False, close_timeout=stop_timeout, spill_dir=spill_dir)
    tasks: list[asyncio.Task[Any]] = []
    try:
        await feed.start()
        for s in subs:
            try:
                await feed.subscribe(f"{s.broker}:{s.type}", list(s.codes), wait=False)
            except SubscriptionError as e:
                raise SubscriptionError(f"{s}: {e}") from None

        async def connected() -> None:
            if await watch.check_connected():
                end()

        tasks.append(asyncio.create_task(connected()))
        if status_every and status_out is not None and not show:

            async def report() -> None:
                while True:
                    await asyncio.sleep(status_every)
                    status_out(status_text(rec, feed))

            tasks.append(asyncio.create_task(report()))
        if show:
            assert view is not None
            view.status_line = lambda: _status_line(rec, feed)
            with Live(console=console, refresh_per_second=4) as lv:

                async def refresh() -> None:
                    while True:
                        lv.update(view.render())
                        await asyncio.sleep(0.25)

                r = asyncio.create_task(refresh())
                try:
                    await rec.run(until=_after(duration, end))
                finally:
                    r.cancel()
                    lv.update(view.render())
        else:
            await rec.run(until=_after(duration, end))
    finally:
        remove()
        for t in tasks:
            t.cancel()
        if closing is not None:
            with contextlib.suppress(Exception):
                await closing
        await feed.close()
        if journal is not None:
            await asyncio.to_thread(journal.close)
    if watch.outcome():
        raise FeedFailed(watch.outcome())
    status = rec.status()
    status["refused"] = dict(watch.refused)
    return status


async def _after(duration: float | None, end: Callable[[], None]) -> None:
    """Call ``end`` after ``duration`` seconds, then wait for ever (the recorder stops when
    the closed feed's stream ends, not at this deadline)."""
    if duration is not None:
        await asyncio.sleep(duration)
        end()
    await asyncio.Event().wait()


async def replay_to(path: Path, urls: list[str], speed: float | None) -> dict[str, Any]:
    """Replay a journal (or a ``krfeed-unsent-…jsonl`` file of items a sink could not take)
    into sinks (``jsonl:-`` prints to stdout); :class:`~krfeed.journal.JournalError` when
    there is nothing to replay."""
    from krfeed.journal import JournalError, replay, segment_files

    items = unsent_items(path)
    if items is None:
        files = segment_files(path)
        if not files:
            others = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
            found = f" (it holds {', '.join(others[:5])})" if others else " (it is empty)"
            raise JournalError(
                f"nothing to replay: {path} has no journal segments "
                f"(journal-NNNNNN.jsonl.gz){found}"
            )
    sinks: list[Sink] = [open_sink(u) for u in urls]
    source: AsyncIterator[Any] = replay(path, speed=speed) if items is None else items
    rec = Recorder(source, sinks)
    remove = _install_stop(rec.stop)
    try:
        await rec.run()
    finally:
        remove()
    status = rec.status()
    if not status["read"]:
        raise JournalError(f"nothing to replay: {path} holds no complete journal entry")
    return status


def unsent_items(path: Path) -> AsyncIterator[Any] | None:
    """The items of a file of JSON-lines payloads (what a stopped recorder saved for a sink
    that could not take them), or None when ``path`` is not such a file."""
    from krfeed.sinks.codec import PayloadError, decode_payload

    if not path.is_file():
        return None
    with open(path, "rb") as f:
        first = f.readline()
    try:
        decode_payload(first)
    except (PayloadError, ValueError):
        return None

    async def items() -> AsyncIterator[Any]:
        from krfeed.journal import JournalError

        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield decode_payload(line)
                    except (PayloadError, ValueError) as e:
                        raise JournalError(f"{path}:{n}: not a krfeed item ({e})") from None

    return items()


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
    # Auto-orders trade the codes the demo shows.
    cfg = SimConfig(
        port=0, seed=seed, rate=4.0, auto_orders=1.0, ping_interval=5.0, codes=DEMO_CODES
    )
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
            # 905 주문구분 tells a cancel or modify from the order it amends
            kind = item.order_kind or ""
            what = "cancel " if "취소" in kind else "modify " if "정정" in kind else ""
            fill = (
                f" fill {item.unit_fill_qty} @ {item.unit_fill_price}" if item.unit_fill_qty else ""
            )
            line = (
                f"kiwoom 00 order {item.order_no} {what}{item.order_status} {item.side} "
                f"{item.code} qty {item.order_qty}{fill} filled {item.fill_qty or 0} "
                f"unfilled {item.unfilled_qty}"
            )
        elif isinstance(item, ExecutionNotice):
            what = "" if item.correction is None else f"{item.correction} "
            what = "" if what == "normal " else what
            # on an ack CNTG_QTY/CNTG_UNPR carry the order's quantity and price, not a fill
            shown = (
                f"{item.fill_qty} @ {item.fill_price}"
                if str(item.notice_kind) == "fill"
                else f"qty {item.order_qty} @ {item.order_price}"
            )
            line = (
                f"kis H0STCNI0 order {item.order_no} {what}{item.notice_kind} {item.side} "
                f"{item.code} {shown}"
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
    krfeed = krfeed_command()
    console.print(
        f'  {krfeed} query {db} "SELECT order_no, order_status, code, side, order_qty, fill_qty, '
        'fill_price FROM kiwoom_order_execution ORDER BY received_at LIMIT 20"',
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f'  {krfeed} query {db} "SELECT code, time, net_buy_qty, net_buy_value '
        'FROM kis_program_trading ORDER BY received_at DESC LIMIT 10"',
        highlight=False,
        soft_wrap=True,
    )


def krfeed_command() -> str:
    """How the user can run krfeed from here: ``krfeed`` when it is on PATH, else the path of
    the script beside this Python (``.venv/bin/krfeed`` after ``make``)."""
    import shutil

    if shutil.which("krfeed"):
        return "krfeed"
    script = Path(sys.executable).parent / "krfeed"
    if not script.exists():
        return f"{sys.executable} -m krfeed"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


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
