"""``krfeed web``: the live dashboard in the browser (and ``krfeed demo --web``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from krfeed.cli.common import (
    ConfigOpt,
    ConnectTimeoutOpt,
    MockOpt,
    SimOpt,
    VerboseOpt,
    brokers_for,
    fail,
    parse_speed,
    run,
    setup_logging,
)
from krfeed.runner import CONNECT_TIMEOUT

DEFAULT_PORT = 8700


def _check_listen(host: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise fail(f"--port {port} is not a port (0-65535; 0 picks a free one)")
    if not host:
        raise fail("--host cannot be empty")


def web_command(
    subscriptions: Annotated[
        list[str] | None,
        typer.Argument(
            help="BROKER:TYPE[:CODE,CODE…], e.g. kis:H0STPGM0:005930,000660 kiwoom:00 "
            "(order notices are added for every broker used)"
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="port to serve on (0: any free port)")] = DEFAULT_PORT,
    host: Annotated[
        str,
        typer.Option(
            help="address to serve on; beyond loopback a secret token is required "
            "(carried in the printed URL)"
        ),
    ] = "127.0.0.1",
    open_: Annotated[bool, typer.Option("--open", help="open the page in a browser")] = False,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="show a journal (written with --journal)")
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="show a recording (SQLite, from krfeed record)")
    ] = None,
    speed: Annotated[
        str, typer.Option(help="--replay/--db pace: 1 (real time), 10, … or max")
    ] = "10",
    duration: Annotated[float | None, typer.Option(help="stop after S seconds")] = None,
    connect_timeout: ConnectTimeoutOpt = CONNECT_TIMEOUT,
    config: ConfigOpt = None,
    mock: MockOpt = False,
    sim: SimOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve a live dashboard: program trading, tape and book, your orders, feed health."""
    from krfeed.runner import SubSpec, parse_sub
    from krfeed.web import app

    _check_listen(host, port)
    if replay is not None and db is not None:
        raise fail("give --replay DIR or --db FILE, not both")
    spd = parse_speed(speed)
    setup_logging(verbose)
    if replay is not None or db is not None:
        if subscriptions:
            raise fail("subscriptions do not apply to --replay/--db")
        if replay is not None:
            if not replay.exists():
                raise fail(f"no journal at {replay}")
            items: Any = app.replay_items(replay, spd)
            mode = "replay"
        else:
            assert db is not None
            if not db.is_file():
                raise fail(f"no database at {db}")
            items = app.db_async(db, spd)
            mode = "recording"
        run(app.serve_items(items, mode=mode, host=host, port=port, open_=open_, duration=duration))
        return
    if not subscriptions:
        raise fail(
            "name what to show, e.g. `krfeed web kis:H0STPGM0:005930,000660 "
            "kis:H0STCNT0:005930 kis:H0STASP0:005930` (or try `krfeed demo --web`)"
        )
    try:
        subs = [parse_sub(s) for s in subscriptions]
    except ValueError as e:
        raise fail(str(e)) from None
    which = {s.broker for s in subs}
    brokers = brokers_for(config, mock, sim, which)
    have = {(s.broker, s.type) for s in subs}
    if "kiwoom" in which and ("kiwoom", "00") not in have:
        subs.append(SubSpec("kiwoom", "00", ()))
    if "kis" in which and not have & {("kis", "H0STCNI0"), ("kis", "H0STCNI9")}:
        subs.append(SubSpec("kis", "H0STCNI9" if mock else "H0STCNI0", ()))
    run(
        app.serve_live(
            brokers,
            subs,
            host=host,
            port=port,
            open_=open_,
            duration=duration,
            sim=sim,
            connect_timeout=connect_timeout,
        )
    )


def demo_web(*, seed: int, port: int, host: str, open_: bool, duration: float | None) -> None:
    """``krfeed demo --web``: the simulator with auto-orders and the dashboard on it."""
    from krfeed.web import app

    _check_listen(host, port)
    run(app.serve_demo(seed=seed, host=host, port=port, open_=open_, duration=duration))
