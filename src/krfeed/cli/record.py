"""``krfeed record`` and ``krfeed replay``: a feed (or a journal) into sinks, with a live view."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from krfeed.brokers import BrokerConfig
from krfeed.cli.common import (
    ConfigOpt,
    ConnectTimeoutOpt,
    IdleTimeoutOpt,
    JournalOpt,
    MockOpt,
    SimOpt,
    StatusEveryOpt,
    VerboseOpt,
    brokers_for,
    check_sinks,
    fail,
    open_journal,
    parse_speed,
    run,
    say,
    session_options,
    setup_logging,
    where_all,
)
from krfeed.cli.views import LiveView
from krfeed.feed import Feed, FeedItem
from krfeed.recorder import Recorder
from krfeed.records.base import Record
from krfeed.runner import (
    CONNECT_TIMEOUT,
    FeedFailed,
    Interrupted,
    SubSpec,
    Watch,
    on_stop_signals,
    parse_sub,
    subscribe_all,
)
from krfeed.session import SessionOptions
from krfeed.sinks import Sink, open_sink, timeout_option, where

#: Items ``record`` reads on while a batch is committed (the Recorder's read_ahead): the feed
#: keeps being read at the open, and a backlog is written in one transaction.
READ_AHEAD = 20_000


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
    return Text(text, style="bold red" if "SINK DOWN" in text or "BEHIND" in text else "bold")


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
    else:
        failing = _behind(rec, st, fs["queue_depth"], lag_s)
    return (
        f"records {st['records']:,} (+{st['written'] - st['records']:,} events)  "
        f"{st['rows_per_sec']:,.0f} rows/s  lag {lag_s}  "
        f"reconnects {fs['reconnects']}  dropped {fs['dropped']}  "
        f"decode errors {fs['decode_errors']}  sink errors {st['errors']}{failing}"
    )


def _behind(rec: Recorder, st: dict[str, Any], queued: int, lag_s: str) -> str:
    """A sink that cannot keep up: which (the one that spent the most time writing) and by how
    much (items held by the recorder and queued in the feed, and the lag)."""
    backlog = st["pending"] + queued
    if backlog < 2 * rec.batch_size or not st["sinks"]:
        return ""
    url = max(st["sinks"], key=lambda u: st["sinks"][u]["write_seconds"])
    return f"  BEHIND: {where(url.split('#', 1)[0])} by {backlog:,} items, lag {lag_s}"


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


async def record_feed(
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

    signals = contextlib.ExitStack()
    signals.enter_context(on_stop_signals(on_signal))
    remove = signals.close
    try:
        await open_sinks(sinks, stopped)
    except BaseException:
        remove()
        raise
    feed = Feed(*brokers, options=options, on_raw=journal)
    watch = Watch(feed, connect_timeout)
    source = _Watched(feed, view, count, watch, end, printer)
    rec = Recorder(
        source,
        sinks,
        open_sinks=False,
        close_timeout=stop_timeout,
        spill_dir=spill_dir,
        read_ahead=READ_AHEAD,
    )
    tasks: list[asyncio.Task[Any]] = []
    try:
        await feed.start()
        await subscribe_all(feed, subs)
        report = status_out if status_every and not show else None
        tasks = _side_tasks(watch, end, rec, feed, status_every, report)
        if view is not None:
            await _run_shown(rec, feed, view, console, duration, end)
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


def _side_tasks(
    watch: Watch,
    end: Callable[[], None],
    rec: Recorder,
    feed: Feed,
    status_every: float | None,
    status_out: Callable[[str], None] | None,
) -> list[asyncio.Task[Any]]:
    """Give up (``end``) when no connection succeeds in time; a status line every
    ``status_every`` seconds to ``status_out`` if given."""

    async def report(every: float, out: Callable[[str], None]) -> None:
        while True:
            await asyncio.sleep(every)
            out(status_text(rec, feed))

    tasks = [asyncio.create_task(watch.stop_if_unconnected(end))]
    if status_every and status_out is not None:
        tasks.append(asyncio.create_task(report(status_every, status_out)))
    return tasks


async def _run_shown(
    rec: Recorder,
    feed: Feed,
    view: LiveView,
    console: Console,
    duration: float | None,
    end: Callable[[], None],
) -> None:
    """Record with the live view (and its status line) redrawn four times a second."""
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
    with on_stop_signals(rec.stop):
        await rec.run()
    status = rec.status()
    if not status["read"]:
        raise JournalError(f"nothing to replay: {path} holds no complete journal entry")
    return status


def unsent_items(path: Path) -> AsyncIterator[Any] | None:
    """The items of a file of JSON-lines payloads (what a stopped recorder saved for a sink
    that could not take them), or None when ``path`` is not such a file."""
    from krfeed.sinks.payload import PayloadError, decode_payload

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


def record(
    subscriptions: Annotated[
        list[str],
        typer.Argument(
            metavar="SUB...",
            help="BROKER:TYPE[:CODE,CODE…], e.g. kis:H0STPGM0:005930,000660 kiwoom:00",
        ),
    ],
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            metavar="URL",
            help="sink URL or plain path (repeatable): day.db, out.jsonl, sqlite:///rel.db, "
            "sqlite:////abs.db, parquet:///dir, postgresql://…, nats://…; default krfeed.db",
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(metavar="S", help="stop after S seconds")
    ] = None,
    count: Annotated[int | None, typer.Option(metavar="N", help="stop after N records")] = None,
    config: ConfigOpt = None,
    mock: MockOpt = False,
    sim: SimOpt = None,
    journal: JournalOpt = None,
    connect_timeout: ConnectTimeoutOpt = 10.0,
    stop_timeout: Annotated[
        float,
        typer.Option(
            "--stop-timeout",
            metavar="S",
            help="at a stop, seconds a failing sink may still retry; then its rows are saved "
            "to krfeed-unsent-….jsonl (deliver with krfeed replay FILE --to URL)",
            min=0,
        ),
    ] = 5.0,
    status_every: StatusEveryOpt = 10.0,
    verbose: VerboseOpt = False,
    idle_timeout: IdleTimeoutOpt = None,
    shard: Annotated[
        str | None,
        typer.Option(metavar="I/N", help="shard I of N: its share of the subscriptions and keys"),
    ] = None,
) -> None:
    """Record records and control events into SQLite (default), JSONL, Parquet, PostgreSQL, NATS.

    Example: krfeed record kis:H0STPGM0:005930 kiwoom:00 --to day.db --duration 60"""
    try:
        subs = [parse_sub(s) for s in subscriptions]
    except ValueError as e:
        raise fail(str(e)) from None
    urls = check_sinks(to or ["sqlite:///krfeed.db"])
    setup_logging(verbose)
    brokers = brokers_for(config, mock, sim, {s.broker for s in subs})
    if shard is not None:  # this collector's app keys and subscriptions (krfeed.shard)
        from krfeed.shard import ShardError, take_text

        try:
            brokers, mine, line = take_text(
                shard, brokers, [(s.broker, s.type, s.codes) for s in subs]
            )
        except ShardError as e:
            raise fail(str(e)) from None
        say(line)
        subs = [SubSpec(b, t, tuple(c)) for b, t, c in mine]
    options = session_options(config, mock, sim, idle_timeout)
    status = run(
        record_feed(
            brokers,
            subs,
            urls,
            duration=duration,
            count=count,
            journal=open_journal(journal),
            options=options,
            connect_timeout=connect_timeout,
            stop_timeout=stop_timeout,
            spill_dir=Path.cwd(),
            status_every=status_every,
            status_out=say,
        )
    )
    _record_summary("recorded", status, urls)


def _record_summary(verb: str, status: dict[str, Any], urls: list[str]) -> None:
    """The closing line(s): records apart from control events, where (absolute paths), what
    was refused, and what could not be delivered (then exit 1)."""
    events = status["written"] - status["records"]
    into = where_all(urls)
    say(f"{verb} {status['records']:,} records (and {events:,} control events) into {into}")
    refused = status.get("refused") or {}
    if refused:
        say("refused: " + "; ".join(f"{k}: {v}" for k, v in refused.items()))
    lost = {u: v for u, v in status["sinks"].items() if v["abandoned"]}
    for u, v in lost.items():
        saved = f"; saved in {v['spilled_to']}" if v.get("spilled_to") else ""
        say(
            f"{v['abandoned']:,} items could not be written to {where_all([u])} "
            f"({v['last_error']}){saved}"
        )
    if lost:
        raise fail("some rows were not delivered (see above)", 1)


def replay(
    path: Annotated[
        Path,
        typer.Argument(help="journal directory written with --journal, or a krfeed-unsent file"),
    ],
    speed: Annotated[str, typer.Option(help="1 (real time), 10, … or max")] = "max",
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to", metavar="URL", help="sink URL (repeatable); default: JSON lines to stdout"
        ),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Feed a journal back through the decoders into sinks, reproducing the live records."""
    if not path.exists():
        raise fail(f"no journal at {path}")
    spd = parse_speed(speed)
    urls = check_sinks(to or ["jsonl:-"])
    setup_logging(verbose)
    status = run(replay_to(path, urls, spd))
    if to:
        _record_summary("replayed", status, urls)
