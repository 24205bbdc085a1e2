"""``krfeed orders``: a live order blotter (open orders, fills, the day's totals) or JSON lines of
order events, with REST reconciliation after every reconnect; optionally recording the raw
order records and control events like ``krfeed record``."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Annotated, Any

import typer

from krfeed.cli.common import (
    ConfigOpt,
    ConnectTimeoutOpt,
    FormatOpt,
    IdleTimeoutOpt,
    JournalOpt,
    MockOpt,
    SimOpt,
    VerboseOpt,
    brokers_for,
    check_sinks,
    fail,
    open_journal,
    output_mode,
    run,
    say,
    session_options,
    setup_logging,
)
from krfeed.orders.accounts import sim_accounts
from krfeed.runner import (
    CONNECT_TIMEOUT,
    FeedFailed,
    QueuedRecorder,
    Watch,
    on_stop_signals,
    run_until,
)

if TYPE_CHECKING:
    from rich.console import RenderableType

    from krfeed.feed import Feed
    from krfeed.orders.model import AccountRef, OrderAnomaly, OrderEvent, ReconcileReport
    from krfeed.orders.stream import OrderStream
    from krfeed.orders.tracker import OrderTracker

FILL_ROWS = 12
OPEN_ROWS = 20


def orders_command(
    brokers: Annotated[
        list[str] | None,
        typer.Argument(help="kiwoom and/or kis (default: every configured broker)"),
    ] = None,
    fmt_: FormatOpt = None,
    count: Annotated[int | None, typer.Option(help="stop after N order events")] = None,
    duration: Annotated[float | None, typer.Option(help="stop after S seconds")] = None,
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="also record the raw order records and events (sink URL)"),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option("--account", help="KIS account CANO-ACNT_PRDT_CD for its inquiry"),
    ] = None,
    interval: Annotated[float | None, typer.Option(help="also reconcile every S seconds")] = None,
    reconcile: Annotated[
        bool, typer.Option("--reconcile/--no-reconcile", help="REST reconciliation after gaps")
    ] = True,
    config: ConfigOpt = None,
    mock: MockOpt = False,
    sim: SimOpt = None,
    journal: JournalOpt = None,
    idle_timeout: IdleTimeoutOpt = None,
    connect_timeout: ConnectTimeoutOpt = CONNECT_TIMEOUT,
    verbose: VerboseOpt = False,
) -> None:
    """Watch your orders and fills live; fills missed during disconnects are reconciled."""
    from krfeed.config import ConfigError, load_config
    from krfeed.orders.reconcile import split_kis_account

    mode = output_mode(fmt_)
    which = {b.lower() for b in brokers or []}
    if bad := which - {"kiwoom", "kis"}:
        raise fail(f"unknown broker {sorted(bad)[0]!r}: use kiwoom and/or kis")
    if account:
        try:
            split_kis_account(account)
        except ValueError as e:
            raise fail(str(e)) from None
    check_sinks(to or [])
    if interval is not None and interval <= 0:
        raise fail("--interval must be positive")
    options = session_options(config, mock, sim, idle_timeout)
    setup_logging(verbose)
    if which:
        configs = brokers_for(config, mock, sim, which)
    else:
        try:
            configs = load_config(config, mock=mock, sim=sim).brokers()
        except (ConfigError, ValueError) as e:
            raise fail(str(e)) from None
        if not configs:
            raise fail(
                "no broker credentials: add [kiwoom]/[kis] to krfeed.toml, set KRFEED_* "
                "variables, or use --sim URL"
            )
    run(
        run_orders(
            configs,
            mode=mode,
            count=count,
            duration=duration,
            sinks=list(to or []),
            account=account,
            interval=interval,
            reconcile=reconcile,
            sim=sim,
            journal=open_journal(journal),
            options=options,
            connect_timeout=connect_timeout,
        )
    )


async def run_orders(
    configs: list[Any],
    *,
    mode: str = "jsonl",
    count: int | None = None,
    duration: float | None = None,
    sinks: list[str] | None = None,
    account: str | None = None,
    interval: float | None = None,
    reconcile: bool = True,
    sim: str | None = None,
    journal: Any = None,
    options: Any = None,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> dict[str, Any]:
    """The ``orders`` command: returns a summary (order events, fills, reports).

    Ctrl-C / SIGTERM stop it at any moment, the start and the initial reconciliation included;
    :class:`FeedFailed` when no session connects within ``connect_timeout`` seconds, or every
    session or subscription failed."""
    from krfeed.feed import Feed

    feed = Feed(*configs, options=options, on_raw=journal)
    watch = Watch(feed, connect_timeout)
    stop = asyncio.Event()
    result: dict[str, Any] = {"events": 0, "fills": 0, "reports": 0, "anomalies": 0}
    recorder: QueuedRecorder | None = None
    stream: OrderStream | None = None
    view = OrdersView() if mode == "table" else None
    live_ctx: Any = None

    async def work() -> None:
        nonlocal stream, recorder, live_ctx
        await feed.start()
        stream = await _order_stream(feed, sim, account, interval, reconcile)
        if sinks:
            recorder = QueuedRecorder(sinks)
        await _subscribe_orders(feed, configs)
        if view is not None:
            from rich.console import Console
            from rich.live import Live

            live_ctx = Live(view.render(), console=Console(), refresh_per_second=4)
            live_ctx.__enter__()
        await _consume(stream, watch, result, count, view, live_ctx, recorder)

    # The handlers stay until everything is closed: a signal during the start or the cleanup
    # only sets ``stop``, never interrupts a close half-way.
    with on_stop_signals(stop.set):
        checker = asyncio.create_task(watch.stop_if_unconnected(stop.set))
        try:
            await run_until(work(), stop, duration)
        finally:
            checker.cancel()
            if live_ctx is not None:
                live_ctx.__exit__(None, None, None)
            if stream is not None:
                await stream.close()
            await feed.close()
            if recorder is not None:
                await recorder.close()
            if journal is not None:
                await journal.aclose()
    if reason := watch.outcome():
        raise FeedFailed(reason)
    if stream is not None:
        s = stream.tracker.summary()
        result["summary"] = s.to_dict()
        say(
            f"{s.orders} orders, {s.fills} fills ({s.reconciled_fills} reconciled); "
            f"bought {s.buy_amount:,} sold {s.sell_amount:,} fees {s.commission:,} "
            f"taxes {s.tax:,} won"
        )
    if recorder is not None:
        result["recorded"] = recorder.written()
    return result


async def _order_stream(
    feed: Feed, sim: str | None, account: str | None, interval: float | None, reconcile: bool
) -> OrderStream:
    """The started order stream, reconciling the accounts of ``--sim`` / ``--account``."""
    from krfeed.orders.model import AccountRef
    from krfeed.orders.reconcile import ReconcileOptions
    from krfeed.orders.stream import OrderStream

    accounts: dict[str | tuple[str, str], AccountRef] = {}
    if sim:
        for key, ref in (await sim_accounts(feed, sim)).items():
            if not (account and ref.broker == "kis"):  # --account wins for KIS
                accounts[key] = ref
    if account:
        accounts["kis"] = AccountRef("kis", account)
    opts = ReconcileOptions(interval=interval, accounts=accounts)
    stream = OrderStream(feed, options=opts, reconcile=reconcile, passthrough=True)
    await stream.start()
    return stream


async def _subscribe_orders(feed: Feed, configs: list[Any]) -> None:
    from krfeed.brokers import KIS, Kiwoom

    if any(isinstance(c, Kiwoom) for c in configs):
        await feed.subscribe(Kiwoom.ORDER_EXECUTION, wait=False)
    if any(isinstance(c, KIS) for c in configs):
        await feed.subscribe(KIS.EXECUTION_NOTICE, wait=False)


async def _consume(
    stream: OrderStream,
    watch: Watch,
    result: dict[str, Any],
    count: int | None,
    view: OrdersView | None,
    live_ctx: Any,
    recorder: QueuedRecorder | None,
) -> None:
    """Show (or print) every order item until ``count`` order events or ``watch`` gives up;
    the raw account records and control events go to ``recorder``."""
    from krfeed.events import Event
    from krfeed.orders.model import OrderAnomaly, OrderEvent, ReconcileReport
    from krfeed.protocol.messages import DecodeError
    from krfeed.records.base import Record

    out = sys.stdout.buffer
    async for item in stream:
        if isinstance(item, OrderEvent | OrderAnomaly | ReconcileReport):
            if isinstance(item, OrderEvent):
                result["events"] += 1
                result["fills"] += item.kind == "filled"
            elif isinstance(item, OrderAnomaly):
                result["anomalies"] += 1
            else:
                result["reports"] += 1
            if view is not None:
                view.update(item, stream.tracker)
            else:
                out.write(_line(item))
                out.flush()
            if count is not None and isinstance(item, OrderEvent) and result["events"] >= count:
                return
        elif isinstance(item, Record | Event | DecodeError):
            if recorder is not None and (not isinstance(item, Record) or item.account):
                await recorder.put(item)
            if view is not None:
                view.update_feed(item)
            if not isinstance(item, Record) and watch.see(item):
                return
        if live_ctx is not None and view is not None:
            live_ctx.update(view.render())


def _line(item: OrderEvent | OrderAnomaly | ReconcileReport) -> bytes:
    import msgspec

    return msgspec.json.encode(item.to_dict()) + b"\n"


class OrdersView:
    """The blotter: a status line, open orders, the latest fills, the day's totals, a log."""

    def __init__(self) -> None:
        self.tracker: OrderTracker | None = None
        self.fills: deque[OrderEvent] = deque(maxlen=FILL_ROWS)
        self.log: deque[str] = deque(maxlen=6)
        self.sessions: dict[str, str] = {}
        self.events = 0
        self.reconciled = 0
        self.anomalies = 0
        self.reconnects = 0
        self.last_report: ReconcileReport | None = None
        self._t0 = time.monotonic()

    def update(
        self, item: OrderEvent | OrderAnomaly | ReconcileReport, tracker: OrderTracker
    ) -> None:
        from krfeed.orders.model import OrderAnomaly, OrderEvent

        self.tracker = tracker
        if isinstance(item, OrderEvent):
            self.events += 1
            self.reconciled += item.source == "reconciled"
            if item.kind == "filled":
                self.fills.append(item)
            elif item.kind == "rejected":
                why = f": {item.reason}" if item.reason else ""
                self.log.append(f"{item.broker} order {item.order_no} rejected{why}")
        elif isinstance(item, OrderAnomaly):
            self.anomalies += 1
            self.log.append(f"anomaly {item.problem} {item.order_no}: {item.message}")
        else:
            self.last_report = item
            if not item.ok:
                self.log.append(f"reconciliation of {item.session} failed: {item.error}")
            elif item.fills and item.trigger == "initial":
                # the day so far, learned at start: not a sign that anything went missing
                self.log.append(
                    f"{item.session}: {item.fills} fill(s) of today before the start "
                    f"({item.fill_qty} shares), learned over REST"
                )
            elif item.fills:
                self.log.append(
                    f"reconciled {item.session} after {item.trigger}: {item.fills} missed "
                    f"fill(s), {item.fill_qty} shares"
                )

    def _today(self, tr: OrderTracker, width: int | None = None) -> Any:
        """The day's totals per broker: a row per broker on a wide screen, a column per
        broker below 110 columns (eleven figures of won do not fit 80 columns in a row)."""
        import shutil

        from rich.table import Table

        from krfeed.cli.views import fmt

        heads = ["orders", "open", "fills", "bought", "buy amount", "sold", "sell amount"]
        heads += ["fees", "taxes", "net cash"]
        rows: dict[str, list[str]] = {}
        for b in sorted({s.broker for s in tr.orders()}):
            d = tr.summary(b)
            rows[b] = [
                fmt(v)
                for v in (
                    d.orders,
                    d.open_orders,
                    d.fills,
                    d.bought_qty,
                    d.buy_amount,
                    d.sold_qty,
                    d.sell_amount,
                    d.commission,
                    d.tax,
                    d.net_cash,
                )
            ]
        t = Table(title="today", title_justify="left")
        if (width or shutil.get_terminal_size().columns) >= 110:
            t.add_column("broker")
            for h in heads:
                t.add_column(h, justify="right")
            for b, values in rows.items():
                t.add_row(b, *values)
            return t
        t.add_column("")
        for b in rows:
            t.add_column(b, justify="right", no_wrap=True)
        for i, h in enumerate(heads):
            t.add_row(h, *(values[i] for values in rows.values()))
        return t

    def update_feed(self, item: Any) -> None:
        from krfeed.events import (
            Connected,
            Disconnected,
            LoggedIn,
            Reconnected,
            SessionFailed,
            Subscribed,
        )

        if isinstance(item, Connected):
            self.sessions[item.session] = "connected"
        elif isinstance(item, LoggedIn | Subscribed):
            self.sessions[item.session] = "live"
        elif isinstance(item, Disconnected):
            self.sessions[item.session] = "failed" if item.fatal else "down"
            self.log.append(f"{item.session} disconnected: {item.reason}")
        elif isinstance(item, Reconnected):
            self.reconnects += 1
        elif isinstance(item, SessionFailed):
            self.log.append(f"{item.session} stopped: {item.reason}")

    def status(self) -> Any:
        from rich.text import Text

        states = " ".join(f"{k}:{v}" for k, v in sorted(self.sessions.items())) or "starting"
        rep = self.last_report
        last = ""
        if rep is not None:
            last = f" | last reconcile {rep.session} {'ok' if rep.ok else 'FAILED'}"
        return Text(
            f"{states} | {self.events:,} order events ({self.reconciled:,} reconciled) | "
            f"reconnects {self.reconnects} | anomalies {self.anomalies}{last} | "
            f"{time.monotonic() - self._t0:,.0f}s",
            style="bold",
        )

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        from krfeed.cli.views import fmt

        parts: list[Any] = [self.status()]
        tr = self.tracker
        if tr is not None:
            opened = tr.open_orders()[-OPEN_ROWS:]
            if opened:
                t = Table(title="open orders", title_justify="left")
                for c in ("broker", "order", "code", "name", "side", "type", "qty", "price"):
                    t.add_column(c)
                for c in ("filled", "avg", "left", "status", "time"):
                    t.add_column(c)
                for s in opened:
                    side = fmt(s.side)
                    t.add_row(
                        s.broker,
                        s.order_no + ("" if s.action == "new" else f" ({s.action})"),
                        s.code or "",
                        s.name or "",
                        Text(side, style="red" if side == "buy" else "blue"),
                        s.order_type or "",
                        fmt(s.order_qty),
                        fmt(s.order_price),
                        fmt(s.filled_qty),
                        fmt(s.avg_price),
                        fmt(s.remaining_qty),
                        s.status,
                        fmt(s.updated_at or s.accepted_at),
                    )
                parts.append(t)
        if self.fills:
            t = Table(title="fills", title_justify="left")
            for c in ("time", "broker", "order", "code", "side", "qty", "price", "filled"):
                t.add_column(c)
            t.add_column("source")
            for f in self.fills:
                side = fmt(f.side)
                t.add_row(
                    fmt(f.time or f.received_at),
                    f.broker,
                    f.order_no,
                    f.code or "",
                    Text(side, style="red" if side == "buy" else "blue"),
                    fmt(f.fill_qty),
                    fmt(f.fill_price),
                    f"{fmt(f.filled_qty)}/{fmt(f.order_qty)}",
                    Text(f.source, style="yellow" if f.source == "reconciled" else ""),
                )
            parts.append(t)
        if tr is not None and len(tr):
            parts.append(self._today(tr))
        for line in self.log:
            parts.append(Text(line, style="yellow"))
        return Group(*parts)
