"""``krfeed conditions``: Kiwoom condition search (조건검색) from the command line — the saved
conditions, a one-off search (a table, or JSON lines), and a live watch: stocks entering and
leaving, the current set, recordable like any stream (``--to``), optionally with real-time
types such as 0B for the stocks in the set (``--with 0B``)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from krfeed.cli.common import (
    ConfigOpt,
    FormatOpt,
    JournalOpt,
    SimOpt,
    VerboseOpt,
    brokers_for,
    check_sinks,
    fail,
    open_journal,
    output_mode,
    run,
    setup_logging,
    where_all,
)
from krfeed.runner import FeedFailed, QueuedRecorder, all_failed, on_stop_signals, run_until

if TYPE_CHECKING:
    from rich.console import RenderableType

    from krfeed.conditions import ConditionMatch, ConditionSet
    from krfeed.feed import Feed

conditions_app = typer.Typer(
    help="Kiwoom condition search (조건검색): list the saved conditions, search, watch live.",
    no_args_is_help=False,
)

MockOpt = Annotated[bool, typer.Option("--mock", help="use Kiwoom's mock (모의투자) server")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")]
SeqArg = Annotated[str, typer.Argument(metavar="SEQ", help="condition number (see the list)")]


def _kiwoom(config: Path | None, mock: bool, sim: str | None) -> Any:
    return brokers_for(config, mock, sim, {"kiwoom"})[0]


@conditions_app.callback(invoke_without_command=True)
def conditions_command(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    mock: MockOpt = False,
    sim: SimOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """List the saved conditions (made in 영웅문); `search SEQ` and `watch SEQ` use them."""
    if ctx.invoked_subcommand is not None:
        return
    setup_logging(verbose)
    conds = run(_with_feed(_kiwoom(config, mock, sim), lambda f: f.conditions()))
    if as_json:
        import msgspec

        for c in conds:
            sys.stdout.write(msgspec.json.encode({"seq": c.seq, "name": c.name}).decode() + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="saved conditions (조건검색식)")
    table.add_column("seq", justify="right")
    table.add_column("name")
    for c in conds:
        table.add_row(c.seq, c.name)
    Console().print(table)
    if not conds:
        Console(stderr=True).print("no saved conditions: make one in 영웅문 (HTS) first")


@conditions_app.command("search")
def search_command(
    seq: SeqArg,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    mock: MockOpt = False,
    sim: SimOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """The stocks matching condition SEQ now (every page)."""
    from krfeed.conditions import ConditionError, check_seq

    try:
        s = check_seq(seq)
    except ConditionError as e:
        raise fail(str(e)) from None
    setup_logging(verbose)
    rows: list[ConditionMatch] = run(_with_feed(_kiwoom(config, mock, sim), lambda f: f.search(s)))
    if as_json:
        import msgspec

        enc = msgspec.json.Encoder(decimal_format="number")
        out = sys.stdout.buffer
        for r in rows:
            out.write(enc.encode({"seq": s, **msgspec.structs.asdict(r)}) + b"\n")
        out.flush()
        return
    from rich.console import Console
    from rich.table import Table

    from krfeed.cli.views import fmt

    table = Table(title=f"condition {s}: {len(rows)} stock(s)")
    table.add_column("code")
    table.add_column("name")
    for col in ("price", "change", "rate %", "volume", "open", "high", "low"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r.code,
            r.name,
            fmt(r.price),
            fmt(r.change),
            fmt(r.change_rate),
            fmt(r.volume),
            fmt(r.open),
            fmt(r.high),
            fmt(r.low),
        )
    Console().print(table)


async def _with_feed(cfg: Any, call: Any) -> Any:
    from krfeed.feed import Feed

    async with Feed(cfg) as feed:
        return await call(feed)


@conditions_app.command("watch")
def watch_command(
    seq: SeqArg,
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="also record records and events into this sink (repeatable)"),
    ] = None,
    with_: Annotated[
        list[str] | None,
        typer.Option(
            "--with",
            metavar="TYPE",
            help="also subscribe this Kiwoom type (e.g. 0B) for the stocks in the set",
        ),
    ] = None,
    fmt_: FormatOpt = None,
    count: Annotated[
        int | None, typer.Option(help="stop after N stocks entered or left (02 records)")
    ] = None,
    duration: Annotated[float | None, typer.Option(help="stop after S seconds")] = None,
    config: ConfigOpt = None,
    mock: MockOpt = False,
    sim: SimOpt = None,
    journal: JournalOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Follow condition SEQ live: the stocks entering and leaving it, and the current set."""
    from krfeed.conditions import ConditionError, check_seq
    from krfeed.schema.catalog import UnknownType, get_type

    try:
        s = check_seq(seq)
    except ConditionError as e:
        raise fail(str(e)) from None
    mode = output_mode(fmt_)
    extra: list[str] = []
    for t in with_ or []:
        try:
            rt = get_type("kiwoom", t)
        except UnknownType as e:
            raise fail(f"--with {t}: {e}") from None
        if rt.account or rt.code == "02":
            raise fail(f"--with {t}: {rt.code} ({rt.title}) is not a per-stock real-time type")
        if rt.code not in extra:
            extra.append(rt.code)
    if count is not None and count < 1:
        raise fail("--count must be at least 1")
    check_sinks(to or [])
    setup_logging(verbose)
    cfg = _kiwoom(config, mock, sim)
    result = run(
        run_watch(
            cfg,
            s,
            mode=mode,
            count=count,
            duration=duration,
            sinks=list(to or []),
            with_types=extra,
            journal=open_journal(journal),
        )
    )
    if to:
        from rich.console import Console

        Console(stderr=True).print(
            f"recorded {result['recorded']:,} rows (records and control events) into "
            f"{where_all(list(to))}",
            highlight=False,
        )


async def run_watch(
    cfg: Any,
    seq: str,
    *,
    mode: str = "jsonl",
    count: int | None = None,
    duration: float | None = None,
    sinks: list[str] | None = None,
    with_types: list[str] | None = None,
    journal: Any = None,
) -> dict[str, Any]:
    """The ``conditions watch`` command; returns a summary (hits, the final set, rows)."""
    from krfeed.conditions import ConditionSet
    from krfeed.feed import Feed

    feed = Feed(cfg, on_raw=journal)
    stop = asyncio.Event()
    result: dict[str, Any] = {"hits": 0, "codes": []}
    failed: dict[str, str] = {}
    cset = ConditionSet()
    view = WatchView(seq, cset) if mode == "table" else None
    recorder: QueuedRecorder | None = None
    live_ctx: Any = None
    types = list(with_types or [])
    try:
        with on_stop_signals(stop.set):
            await feed.start()
            if sinks:
                recorder = QueuedRecorder(sinks)
            watch = await feed.watch(seq)
            if view is not None:
                view.name = watch.name
            for t in types:
                if watch.initial:
                    await feed.subscribe(f"kiwoom:{t}", list(watch.initial), wait=False)
            if view is not None:
                from rich.console import Console
                from rich.live import Live

                live_ctx = Live(view.render(), console=Console(), refresh_per_second=4)
                live_ctx.__enter__()
            work = _follow(feed, seq, cset, result, failed, count, types, view, live_ctx, recorder)
            await run_until(work, stop, duration)
            if not failed:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(3):
                        await feed.unwatch(seq)
    finally:
        if live_ctx is not None:
            live_ctx.__exit__(None, None, None)
        await feed.close()
        if recorder is not None:
            await recorder.close()
        if journal is not None:
            await journal.aclose()
    if reason := all_failed(feed, failed):
        raise FeedFailed(reason)
    result["codes"] = sorted(cset.codes(seq))
    if recorder is not None:
        result["recorded"] = recorder.written()
    if view is not None:
        from rich.console import Console

        Console(stderr=True).print(
            f"condition {seq}: {result['hits']} entered or left; {len(result['codes'])} "
            f"stock(s) in the set at the end: {' '.join(result['codes']) or '-'}",
            highlight=False,
        )
    return result


async def _follow(
    feed: Feed,
    seq: str,
    cset: ConditionSet,
    result: dict[str, Any],
    failed: dict[str, str],
    count: int | None,
    types: list[str],
    view: WatchView | None,
    live_ctx: Any,
    recorder: QueuedRecorder | None,
) -> None:
    """Show (or print) and record every item; (un)subscribe ``types`` for the stocks entering
    and leaving; until ``count`` hits or every session failed."""
    from krfeed.conditions import hit_event, plain_code
    from krfeed.events import SessionFailed
    from krfeed.jsonout import encode_line
    from krfeed.records.kiwoom import ConditionHit
    from krfeed.schema.enums import ConditionEvent

    out = sys.stdout.buffer
    async for item in feed:
        if recorder is not None:
            await recorder.put(item)
        cset.update(item)
        if view is not None:
            view.update(item)
            assert live_ctx is not None
            live_ctx.update(view.render())
        else:
            out.write(encode_line(item))
            out.flush()
        if isinstance(item, ConditionHit) and (item.condition_seq or "").strip() == seq:
            result["hits"] += 1
            code = plain_code(item.code or item.item)
            ev = hit_event(item.condition_event)
            for t in types:
                if ev is ConditionEvent.ENTER:
                    await feed.subscribe(f"kiwoom:{t}", [code], wait=False)
                elif ev is ConditionEvent.EXIT:
                    await feed.unsubscribe(f"kiwoom:{t}", [code])
            if count is not None and result["hits"] >= count:
                return
        elif isinstance(item, SessionFailed):
            failed[item.session] = item.reason
            if all_failed(feed, failed):
                return


class WatchView:
    """The live view: a status line, the stocks in the set (with their last trade when
    subscribed), and the latest entries and exits."""

    def __init__(self, seq: str, cset: ConditionSet) -> None:
        self.seq = seq
        self.name = ""
        self.cset = cset
        self.log: deque[str] = deque(maxlen=12)
        self.last: dict[str, Any] = {}
        self.state = "connecting"
        self.hits = 0
        self.reconnects = 0
        self._t0 = time.monotonic()

    def update(self, item: Any) -> None:
        from krfeed.cli.views import fmt
        from krfeed.conditions import hit_event, plain_code
        from krfeed.events import (
            ConditionRestored,
            Disconnected,
            LoggedIn,
            Reconnected,
            SessionFailed,
        )
        from krfeed.records.base import Record
        from krfeed.records.kiwoom import ConditionHit
        from krfeed.schema.enums import ConditionEvent

        if isinstance(item, ConditionHit):
            self.hits += 1
            ev = hit_event(item.condition_event)
            word = "entered" if ev is ConditionEvent.ENTER else "left"
            when = fmt(item.event_time) if item.event_time else "(while disconnected)"
            self.log.append(f"{when} {plain_code(item.code or item.item)} {word}")
        elif isinstance(item, ConditionRestored):
            self.log.append(
                f"restored after reconnect: {len(item.entered)} entered, {len(item.left)} left"
            )
        elif isinstance(item, LoggedIn):
            self.state = "live"
        elif isinstance(item, Disconnected):
            self.state = "failed" if item.fatal else "reconnecting"
            self.log.append(f"disconnected: {item.reason}")
        elif isinstance(item, Reconnected):
            self.reconnects += 1
        elif isinstance(item, SessionFailed):
            self.log.append(f"stopped: {item.reason}")
        elif isinstance(item, Record):
            self.last[item.item] = item

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        from krfeed.cli.views import fmt

        codes = self.cset.sets.get(self.seq, {})
        status = Text(
            f"condition {self.seq} {self.name} | {self.state} | {len(codes)} in the set | "
            f"{self.hits} entered/left | reconnects {self.reconnects} | "
            f"{time.monotonic() - self._t0:,.0f}s",
            style="bold",
        )
        t = Table(title="in the set", title_justify="left")
        for c in ("code", "since", "price", "change", "rate %", "volume"):
            t.add_column(c)
        for code, since in sorted(codes.items()):
            r = self.last.get(code)
            t.add_row(
                code,
                fmt(since) if since else "",
                fmt(getattr(r, "current_price", None)),
                fmt(getattr(r, "change", None)),
                fmt(getattr(r, "change_rate", None)),
                fmt(getattr(r, "cumulative_volume", None)),
            )
        parts: list[Any] = [status, t]
        parts.extend(Text(line, style="yellow") for line in self.log)
        return Group(*parts)
