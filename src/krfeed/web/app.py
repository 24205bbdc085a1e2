"""Running the dashboard: live (a Feed and an OrderStream), from a journal, from a recording, or
the demo (the simulator with auto-orders). Every source goes through the same
:class:`~krfeed.web.state.DashboardState` and :class:`~krfeed.web.server.WebServer`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import webbrowser
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from krfeed.brokers import KIS, BrokerConfig, Kiwoom
from krfeed.events import Reconnecting, SessionFailed
from krfeed.feed import Feed
from krfeed.orders.accounts import sim_accounts
from krfeed.orders.model import AccountRef
from krfeed.orders.reconcile import ReconcileOptions
from krfeed.orders.stream import OrderStream
from krfeed.runner import (
    CONNECT_TIMEOUT,
    FeedFailed,
    SubSpec,
    Watch,
    all_failed,
    on_stop_signals,
    run_until,
    subscribe_all,
)
from krfeed.web.server import WebServer
from krfeed.web.state import DashboardState

#: The demo's stocks: KIS program trading, trades and book for the first five, Kiwoom 0w/0B/0D
#: for the other two (both brokers' program trading on one page).
DEMO_KIS_CODES = ("005930", "000660", "035720", "051910", "035420")
DEMO_KIWOOM_CODES = ("039490", "068270")
DEMO_INDEX = "0001"


def demo_subscriptions() -> list[SubSpec]:
    k, w = DEMO_KIS_CODES, DEMO_KIWOOM_CODES
    return [
        SubSpec("kiwoom", "00", ()),
        SubSpec("kiwoom", "0w", w),
        SubSpec("kiwoom", "0B", w),
        SubSpec("kiwoom", "0D", w),
        SubSpec("kis", "H0STPGM0", k),
        SubSpec("kis", "H0STCNT0", k),
        SubSpec("kis", "H0STASP0", k),
        SubSpec("kis", "H0UPPGM0", (DEMO_INDEX,)),
        SubSpec("kis", "H0STCNI0", ()),
    ]


def _stop_on_signals(stop: asyncio.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGINT / SIGTERM until the returned function is called."""
    signals = contextlib.ExitStack()
    signals.enter_context(on_stop_signals(stop.set))
    return signals.close


def _announce(server: WebServer, out: TextIO, open_: bool, extra: str = "") -> None:
    out.write(f"krfeed web: {server.url}{extra}  (Ctrl-C to stop)\n")
    out.flush()
    if open_:
        with contextlib.suppress(Exception):
            webbrowser.open(server.url)


async def serve_live(
    brokers: list[BrokerConfig],
    subs: list[SubSpec],
    *,
    host: str = "127.0.0.1",
    port: int = 8700,
    open_: bool = False,
    duration: float | None = None,
    names: dict[str, str] | None = None,
    sim: str | None = None,
    out: TextIO | None = None,
    announce_extra: str = "",
    ready: Callable[[WebServer, DashboardState], Any] | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    err: TextIO | None = None,
) -> DashboardState:
    """Subscribe ``subs`` and serve the dashboard until Ctrl-C, SIGTERM or ``duration``.

    Why a session is reconnecting or failed is also said on ``err`` (stderr), once per
    reason; :class:`FeedFailed` when no session connects within ``connect_timeout`` seconds
    or every session failed."""
    out = out or sys.stdout
    err = err or sys.stderr
    feed = Feed(*brokers)
    watch = Watch(feed, connect_timeout)
    said: dict[str, str] = {}
    state = DashboardState(names=names)
    stop = asyncio.Event()
    remove = _stop_on_signals(stop)
    stream: OrderStream | None = None
    server = WebServer(
        state,
        host=host,
        port=port,
        health=lambda: state.health_view(feed.stats(), feed.subscription_states()),
        title="krfeed",
    )
    failed: dict[str, str] = {}

    checker = asyncio.create_task(watch.stop_if_unconnected(stop.set))
    try:
        await feed.start()
        accounts: dict[str | tuple[str, str], AccountRef] = {}
        if sim:
            accounts.update(await sim_accounts(feed, sim))
        stream = OrderStream(feed, options=ReconcileOptions(accounts=accounts), passthrough=True)
        # the blotter lists the stream's own tracker (OrderStream(tracker=…) takes an empty
        # tracker for none: it is falsy)
        state.tracker = stream.tracker
        await stream.start()
        await subscribe_all(feed, subs)
        await server.start()
        _announce(server, out, open_, announce_extra)
        if ready is not None:
            ready(server, state)

        async def consume() -> None:
            assert stream is not None
            async for item in stream:
                state.ingest(item)
                if watch.see(item):
                    stop.set()
                if isinstance(item, Reconnecting | SessionFailed) and item.reason:
                    what = "failed" if isinstance(item, SessionFailed) else "reconnecting"
                    if said.get(item.session) != item.reason:
                        said[item.session] = item.reason
                        print(f"krfeed web: {item.session} {what}: {item.reason}", file=err)
                if isinstance(item, SessionFailed):
                    failed[item.session] = item.reason
                    if all(s.failed for s in feed.sessions):
                        return

        await run_until(consume(), stop, duration)
    finally:
        checker.cancel()
        remove()
        await server.stop()
        if stream is not None:
            await stream.close()
        await feed.close()
    if reason := all_failed(feed, failed) or watch.outcome():
        raise FeedFailed(reason)
    return state


async def serve_items(
    items: AsyncIterator[Any],
    *,
    mode: str,
    host: str = "127.0.0.1",
    port: int = 8700,
    open_: bool = False,
    duration: float | None = None,
    out: TextIO | None = None,
    announce_extra: str = "",
    ready: Callable[[WebServer, DashboardState], Any] | None = None,
) -> DashboardState:
    """Serve the dashboard over recorded items (a journal's or a database's): the orders are
    folded here with the same OrderTracker; the page stays up after the last item."""
    out = out or sys.stdout
    state = DashboardState(fold_orders=True)
    state.mode = mode
    stop = asyncio.Event()
    remove = _stop_on_signals(stop)
    server = WebServer(state, host=host, port=port, title=f"krfeed {mode}")
    try:
        await server.start()
        _announce(server, out, open_, announce_extra)
        if ready is not None:
            ready(server, state)

        async def consume() -> None:
            async for item in items:
                state.ingest(item)
            state.mode = f"{mode} (finished)"
            state._bump("health")
            await stop.wait()

        await run_until(consume(), stop, duration)
    finally:
        remove()
        await server.stop()
    return state


async def replay_items(path: Path, speed: float | None) -> AsyncIterator[Any]:
    from krfeed.journal import replay

    async for m in replay(path, speed=speed):
        yield m


def db_items(path: Path) -> Iterator[Any]:
    """Records of a SQLite recording (``krfeed record``'s default sink), in receive order."""
    import heapq
    import json
    import sqlite3

    from krfeed.protocol.messages import DecodeError
    from krfeed.schema.catalog import BROKERS, types
    from krfeed.sinks.payload import from_dict
    from krfeed.sinks.tables import table_for

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    streams = []
    for b in BROKERS:
        for code in types(b):
            t = table_for(b, code)
            if t.name not in tables:
                continue
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{t.name}")')]
            kinds = {c.name: c.kind for c in t.columns}

            def rows(
                t_name: str = t.name,
                cols: list[str] = cols,
                kinds: dict[str, str] = kinds,
                b: str = b,
                code: str = code,
            ) -> Iterator[tuple[str, dict[str, Any]]]:
                cur = con.execute(f'SELECT * FROM "{t_name}" ORDER BY received_at')
                for row in cur:
                    obj: dict[str, Any] = {"broker": b, "type": code}
                    for c, v in zip(cols, row, strict=True):
                        if v is not None:  # SQLite's storage back to the JSON form
                            if c == "extra":
                                v = json.loads(v)
                            elif kinds.get(c) == "bool":
                                v = bool(v)
                            elif kinds.get(c) == "decimal":
                                v = str(v)
                        obj[c] = v
                    yield obj["received_at"], obj

            streams.append(rows())
    try:
        for _, obj in heapq.merge(*streams, key=lambda kv: kv[0]):
            try:
                yield from_dict(obj)
            except ValueError as e:  # shown among the page's notices, never dropped silently
                yield DecodeError(
                    broker=obj["broker"],
                    type=obj["type"],
                    raw=str(obj)[:500],
                    reason=f"row not readable: {e}",
                )
    finally:
        con.close()


async def db_async(path: Path, speed: float | None) -> AsyncIterator[Any]:
    """:func:`db_items` as an async iterator, paced like a replay (``speed``) or at once."""
    loop = asyncio.get_running_loop()
    t0: float | None = None
    r0: float | None = None
    for n, item in enumerate(db_items(path), 1):
        if speed is not None:
            at = item.received_at.timestamp()
            if t0 is None or r0 is None:
                t0, r0 = loop.time(), at
            else:
                delay = t0 + (at - r0) / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
        if n % 2000 == 0:
            await asyncio.sleep(0)  # let the server answer
        yield item


async def serve_demo(
    *,
    seed: int = 1,
    host: str = "127.0.0.1",
    port: int = 8700,
    open_: bool = False,
    duration: float | None = None,
    out: TextIO | None = None,
    ready: Callable[[WebServer, DashboardState], Any] | None = None,
) -> DashboardState:
    """The simulator (both brokers, auto-orders on the demo's stocks) and the dashboard on it."""
    from krfeed.sim import SimConfig, Simulator
    from krfeed.sim.market import SECTORS, UNIVERSE

    codes = DEMO_KIS_CODES + DEMO_KIWOOM_CODES
    cfg = SimConfig(port=0, seed=seed, rate=4.0, auto_orders=1.0, ping_interval=5.0, codes=codes)
    async with Simulator(cfg) as sim:
        # the simulator is the broker here: its names are the data's names
        names = {c: n for c, (n, _) in UNIVERSE.items()}
        names.update({c: n for c, (n, _) in SECTORS.items()})
        brokers: list[BrokerConfig] = [Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 2)]
        return await serve_live(
            brokers,
            demo_subscriptions(),
            host=host,
            port=port,
            open_=open_,
            duration=duration,
            names=names,
            sim=sim.url,
            out=out,
            announce_extra=f"  simulator: {sim.url}",
            ready=ready,
        )
