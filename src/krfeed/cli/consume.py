"""``krfeed consume``: NATS JetStream into sinks."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Coroutine
from typing import Annotated, Any

import typer

from krfeed.cli.common import (
    ConnectTimeoutOpt,
    StatusEveryOpt,
    VerboseOpt,
    check_sinks,
    fail,
    nats_errors,
    run,
    say,
    setup_logging,
    where_all,
)
from krfeed.runner import Interrupted, on_stop_signals


def consume(
    url: Annotated[str, typer.Argument(help="nats://HOST:PORT?stream=KRFEED")],
    to: Annotated[list[str], typer.Option("--to", metavar="URL", help="sink URL (repeatable)")],
    durable: Annotated[str, typer.Option(help="durable consumer name")] = "krfeed-consume",
    duration: Annotated[
        float | None, typer.Option(metavar="S", help="stop after S seconds")
    ] = None,
    connect_timeout: ConnectTimeoutOpt = 10.0,
    status_every: StatusEveryOpt = 10.0,
    verbose: VerboseOpt = False,
) -> None:
    """Move recorded items from NATS JetStream into sinks, acking only after they committed.

    Example: krfeed consume nats://127.0.0.1:4222 --to postgresql://127.0.0.1/krfeed"""
    if not url.startswith("nats://"):
        raise fail(f"consume reads from a nats:// URL, not {url!r}")
    to = check_sinks(to)
    setup_logging(verbose)
    status = run(_consume(url, to, durable, duration, connect_timeout, status_every))
    say(
        f"consumed {status.messages:,} messages ({status.records:,} records) into {where_all(to)}; "
        f"{status.events:,} of them control events"
    )


async def _consume(
    url: str,
    to: list[str],
    durable: str,
    duration: float | None,
    connect_timeout: float,
    status_every: float,
) -> Any:
    from krfeed.consume import ConsumeStatus

    stop = asyncio.Event()
    status = ConsumeStatus()
    loop = asyncio.get_running_loop()
    if duration is not None:
        loop.call_later(duration, stop.set)
    live = sys.stderr.isatty()

    def line() -> str:
        failing = f", sink failing: {status.last_error}" if status.last_error else ""
        lag = "-" if status.lag is None else f"{status.lag:,}"
        return (
            f"{status.messages:,} messages, {status.records:,} records, lag {lag}, "
            f"redelivered {status.redelivered:,}, sink failures {status.sink_failures}{failing}"
        )

    async def progress() -> None:
        # a terminal: one line rewritten in place; otherwise a line every status_every s
        while live or status_every:
            await asyncio.sleep(1 if live else status_every)
            if live:
                sys.stderr.write("\r\x1b[2K" + line())
                sys.stderr.flush()
            else:
                say(line())

    with on_stop_signals(stop.set):
        return await _until_stopped(url, to, durable, stop, status, connect_timeout, progress())


async def _until_stopped(
    url: str,
    to: list[str],
    durable: str,
    stop: asyncio.Event,
    status: Any,
    connect_timeout: float,
    progress: Coroutine[Any, Any, None],
) -> Any:
    from krfeed.consume import consume as run_consume

    live = sys.stderr.isatty()
    task = asyncio.create_task(progress)
    work = asyncio.ensure_future(
        run_consume(
            url, to, durable=durable, stop=stop, status=status, open_timeout=connect_timeout
        )
    )
    try:
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait((work, waiter), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not work.done() and not status.running:  # stopped while still connecting
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            raise Interrupted("stopped before consuming anything")
        await work
    except nats_errors() as e:
        from krfeed.errors import KrfeedError

        raise KrfeedError(f"consume from {url} failed: {e or type(e).__name__}") from None
    finally:
        task.cancel()
        if live:
            sys.stderr.write("\n")
    return status
