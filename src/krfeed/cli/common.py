"""What every command shares: one-line messages and failures, the common options, and
turning config, sink URLs and journal paths into what a command runs with."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from krfeed.schema.catalog import BROKERS

err = Console(stderr=True)


def say(message: str) -> None:
    """One line to stderr, on one line however long (rich would wrap at 80 columns when
    piped) and printed as is (no rich markup: ``[kiwoom]`` stays)."""
    err.print(escape(message), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear sentence to stderr and return the Exit to raise."""
    err.print(f"[bold red]krfeed:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def broker_arg(broker: str) -> str:
    b = broker.lower()
    if b not in BROKERS:
        raise fail(f"unknown broker {broker!r}: use one of {', '.join(BROKERS)}")
    return b


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", metavar="FILE", help="krfeed.toml (default: $KRFEED_CONFIG, ./krfeed.toml)"
    ),
]
MockOpt = Annotated[bool, typer.Option("--mock", help="use the brokers' mock (모의투자) servers")]
SimOpt = Annotated[
    str | None,
    typer.Option("--sim", metavar="URL", help="a running `krfeed sim` URL (uses its credentials)"),
]
JournalOpt = Annotated[
    Path | None,
    typer.Option("--journal", metavar="DIR", help="also write every raw frame to this journal"),
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="log to stderr (and the traceback of an error)")
]
ConnectTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--connect-timeout",
        metavar="S",
        help="seconds to reach each sink, and the brokers, at start before giving up",
        min=0.1,
    ),
]
StatusEveryOpt = Annotated[
    float,
    typer.Option(
        "--status-every",
        metavar="S",
        help="without a terminal: a status line to stderr every S seconds (0: none)",
        min=0,
    ),
]
IdleTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--idle-timeout",
        help="seconds without any frame before a socket counts as dead, until the "
        "heartbeat cadence is learned (then 3 heartbeats, at most this; default 90, or "
        "[session] idle_timeout in krfeed.toml)",
    ),
]


FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="table (default in a terminal) or jsonl (default when piped)"),
]


def output_mode(fmt: str | None) -> str:
    """``--format``: table or jsonl; by default table in a terminal, jsonl when piped."""
    mode = fmt or ("table" if sys.stdout.isatty() else "jsonl")
    if mode not in ("table", "jsonl"):
        raise fail(f"--format must be table or jsonl, not {mode!r}")
    return mode


def parse_speed(speed: str) -> float | None:
    """``--speed``: a positive pace (1 is real time), or None for ``max`` (no waiting)."""
    if speed == "max":
        return None
    try:
        spd = float(speed)
    except ValueError:
        raise fail(f"--speed takes a number or max, not {speed!r}") from None
    if spd <= 0:
        raise fail("--speed must be positive")
    return spd


def session_options(
    config: Path | None, mock: bool, sim: str | None, idle_timeout: float | None
) -> Any:
    """SessionOptions from krfeed.toml's [session] table and the command's options."""
    from krfeed.config import ConfigError, load_config

    if idle_timeout is not None and idle_timeout <= 0:
        raise fail("--idle-timeout must be positive")
    try:
        cfg = load_config(config, mock=mock, sim=sim)
    except (ConfigError, ValueError) as e:
        raise fail(str(e)) from None
    return cfg.session_options(idle_timeout=idle_timeout)


class _Logging:
    verbose = False  # -v given to a command of this process (the error boundary shows tracebacks)


def setup_logging(verbose: bool) -> None:
    """Log to stderr: INFO with ``-v``, else errors only."""
    import logging

    _Logging.verbose = _Logging.verbose or verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def verbose() -> bool:
    """Whether a command of this process was given ``-v``."""
    return _Logging.verbose


def brokers_for(config: Path | None, mock: bool, sim: str | None, which: set[str]) -> list[Any]:
    """The broker configs of ``which`` brokers (krfeed.toml, environment, or ``--sim``)."""
    from krfeed.config import ConfigError, load_config

    try:
        cfg = load_config(config, mock=mock, sim=sim)
    except (ConfigError, ValueError) as e:
        raise fail(str(e)) from None
    out = []
    for b in sorted(which):
        got = cfg.brokers(b)
        if not got:
            env = (
                "KRFEED_KIWOOM_APPKEY/SECRETKEY" if b == "kiwoom" else "KRFEED_KIS_APPKEY/SECRETKEY"
            )
            raise fail(
                f"no {b} credentials: add a [{b}] table to krfeed.toml, set {env}, or use --sim URL"
            )
        out.extend(got)
    return out


def check_sinks(urls: list[str]) -> list[str]:
    """The sink URLs (plain paths made URLs); fails with one line for one that cannot work,
    before connecting anywhere."""
    from krfeed.sinks import SinkError, normalize_url, open_sink

    out = []
    for u in urls:
        try:
            open_sink(u)
            out.append(normalize_url(u))
        except (SinkError, ValueError) as e:
            raise fail(str(e)) from None
    return out


def where_all(urls: list[str]) -> str:
    """The sinks, as the user would name them (absolute paths)."""
    from krfeed.sinks import where

    return ", ".join(where(u) for u in urls)


def open_journal(path: Path | None) -> Any:
    """The journal writer of ``--journal``, or None."""
    if path is None:
        return None
    from krfeed.journal import JournalWriter

    try:
        return JournalWriter(path)
    except OSError as e:
        raise fail(f"cannot write the journal at {path}: {e.strerror}") from None


def run(coro: Any) -> Any:
    """Run a command's coroutine; what it raises goes to the error boundary in :func:`main`."""
    import asyncio

    return asyncio.run(coro)


def nats_errors() -> tuple[type[BaseException], ...]:
    """The NATS client's exception bases (imported only when needed)."""
    import nats.errors
    import nats.js.errors

    return (nats.errors.Error, nats.js.errors.Error)
