"""``krfeed stream``: one subscription live, a table in a terminal or JSON lines."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from krfeed.cli.common import (
    ConfigOpt,
    ConnectTimeoutOpt,
    FormatOpt,
    IdleTimeoutOpt,
    JournalOpt,
    MockOpt,
    SimOpt,
    VerboseOpt,
    broker_arg,
    brokers_for,
    fail,
    open_journal,
    output_mode,
    run,
    session_options,
    setup_logging,
)
from krfeed.cli.views import LiveView, check_fields
from krfeed.runner import parse_sub, run_feed
from krfeed.schema.catalog import get_type


def stream(
    broker: Annotated[str, typer.Argument(help="kiwoom or kis")],
    type_: Annotated[
        str, typer.Argument(metavar="TYPE", help="type code or constant (00, 0B, H0STPGM0)")
    ],
    codes: Annotated[
        list[str] | None, typer.Argument(help="codes (none for 00/04/H0STCNI0)")
    ] = None,
    fmt_: FormatOpt = None,
    count: Annotated[int | None, typer.Option(metavar="N", help="stop after N records")] = None,
    duration: Annotated[
        float | None, typer.Option(metavar="S", help="stop after S seconds")
    ] = None,
    config: ConfigOpt = None,
    mock: MockOpt = False,
    sim: SimOpt = None,
    journal: JournalOpt = None,
    connect_timeout: ConnectTimeoutOpt = 10.0,
    verbose: VerboseOpt = False,
    idle_timeout: IdleTimeoutOpt = None,
    fields: Annotated[
        str | None,
        typer.Option(
            metavar="A,B,C",
            help="the columns of the table (field names, see krfeed schema BROKER TYPE)",
        ),
    ] = None,
) -> None:
    """Watch a feed live: a table in a terminal, JSON lines when piped.

    Each kind of type has its view: an order-book ladder, a trade tape, a blotter of orders
    and fills, program trading columns; --fields picks the columns instead.

    Example: krfeed stream kis H0STPGM0 005930 --sim http://127.0.0.1:8765"""
    b = broker_arg(broker)
    spec = f"{b}:{type_}" + (":" + ",".join(codes) if codes else "")
    try:
        sub = parse_sub(spec)
        picked = (
            check_fields(get_type(b, sub.type), [f.strip() for f in fields.split(",") if f.strip()])
            if fields is not None
            else None
        )
    except ValueError as e:
        raise fail(str(e)) from None
    mode = output_mode(fmt_)
    setup_logging(verbose)
    brokers = brokers_for(config, mock, sim, {b})
    options = session_options(config, mock, sim, idle_timeout)
    run(
        _stream(
            brokers,
            sub,
            mode,
            count,
            duration,
            open_journal(journal),
            options,
            connect_timeout,
            picked,
        )
    )


async def _stream(
    brokers: list[Any],
    sub: Any,
    mode: str,
    count: int | None,
    duration: float | None,
    journal: Any,
    options: Any = None,
    connect_timeout: float = 10.0,
    fields: list[str] | None = None,
) -> None:
    from krfeed.jsonout import encode_line

    on_raw = journal
    try:
        if mode == "jsonl":
            out = sys.stdout.buffer

            def emit(item: Any) -> None:
                out.write(encode_line(item))
                out.flush()

            await run_feed(
                brokers,
                [sub],
                emit,
                count=count,
                duration=duration,
                on_raw=on_raw,
                connect_timeout=connect_timeout,
                options=options,
            )
            return
        from rich.live import Live

        view = LiveView(fields=fields)
        with Live(view.render(), console=Console(), refresh_per_second=4, transient=False) as live:

            def update(item: Any) -> None:
                view.update(item)
                live.update(view.render())

            await run_feed(
                brokers,
                [sub],
                update,
                count=count,
                duration=duration,
                on_raw=on_raw,
                connect_timeout=connect_timeout,
                options=options,
            )
    finally:
        if journal is not None:
            await journal.aclose()
