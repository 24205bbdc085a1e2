"""The ``krfeed`` command line."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from krfeed.schema.catalog import BROKERS, UnknownType, get_type, types
from krfeed.schema.convert import KST
from krfeed.schema.core import BASE_KINDS

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Real-time feeds of Korean brokers (Kiwoom REST API, KIS Open API).",
)
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear sentence to stderr and return the Exit to raise."""
    # soft_wrap: one line however long (rich would wrap at 80 columns when piped)
    err.print(f"[bold red]krfeed:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _broker(broker: str) -> str:
    b = broker.lower()
    if b not in BROKERS:
        raise fail(f"unknown broker {broker!r}: use one of {', '.join(BROKERS)}")
    return b


@app.command()
def schema(
    broker: Annotated[str | None, typer.Argument(help="kiwoom or kis")] = None,
    type_: Annotated[
        str | None,
        typer.Argument(metavar="TYPE", help="type code (00, 0B, H0STPGM0) or constant"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List real-time types, or the fields of one type."""
    import msgspec

    out = Console()
    brokers = [_broker(broker)] if broker else list(BROKERS)
    if type_ is None:
        rows = [
            {
                "broker": b,
                "code": t.code,
                "title": t.title,
                "class": t.name,
                "constant": t.constant,
                "fields": len(t.fields),
            }
            for b in brokers
            for t in types(b).values()
        ]
        if as_json:
            sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
            return
        table = Table(title="krfeed real-time types")
        for col in ("broker", "code", "title", "class", "constant", "fields"):
            table.add_column(col)
        for r in rows:
            table.add_row(*(str(r[c]) for c in r))
        out.print(table)
        return
    try:
        t = get_type(brokers[0], type_)
    except UnknownType as e:
        raise fail(str(e)) from None
    fields = [
        {"wire": f.wire, "korean": f.korean, "name": f.name, "kind": f.kind, "since": f.since}
        for f in t.fields
    ]
    if as_json:
        doc = {
            "broker": t.broker,
            "code": t.code,
            "title": t.title,
            "class": t.name,
            "constant": t.constant,
            "description": t.description,
            "encrypted": t.encrypted,
            "account": t.account,
            "layouts": list(t.layouts),
            "fields": fields,
        }
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
        return
    table = Table(title=f"{t.broker} {t.code} {t.title} — {t.name}", caption=t.description)
    for col in ("#", "wire", "korean", "name", "kind", "since"):
        table.add_column(col)
    for i, f in enumerate(fields, 1):
        table.add_row(str(i), f["wire"], f["korean"], f["name"], f["kind"], f["since"])
    out.print(table)
    if len(t.layouts) > 1:
        versions = ", ".join(f"{w} ({t.layout_label(w)})" for w in t.layouts)
        out.print(f"  layouts (fields per record): {versions}")
    kinds = sorted({f.kind for f in t.fields})
    for k in kinds:
        out.print(f"  [dim]{k}[/]: {BASE_KINDS.get(k, 'coded value, see krfeed.schema.enums')}")


@app.command()
def decode(
    broker: Annotated[str, typer.Argument(help="kiwoom or kis")],
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="files of raw frames, one per line (default: stdin)"),
    ] = None,
    key: Annotated[str | None, typer.Option(help="AES key for encrypted KIS frames")] = None,
    iv: Annotated[str | None, typer.Option(help="AES iv for encrypted KIS frames")] = None,
    strict: Annotated[bool, typer.Option(help="exit 1 if any frame fails to decode")] = False,
    control: Annotated[
        bool, typer.Option(help="also print control messages (login, ping, replies)")
    ] = False,
    on: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="YYYYMMDD",
            help="the trading date of the frames (for captures; default: today, KST); "
            "records that carry their own business date keep it",
        ),
    ] = None,
) -> None:
    """Decode raw frames (one per line) into JSON lines: records to stdout, errors to stderr."""
    from krfeed.jsonout import encode_line
    from krfeed.protocol import KISCodec, KiwoomCodec
    from krfeed.protocol.messages import DecodeError, LayoutNotice
    from krfeed.records.base import Record

    received_at = _noon_kst(on) if on is not None else None
    b = _broker(broker)
    if (key is None) != (iv is None):
        raise fail("give both --key and --iv, or neither")
    if b == "kiwoom" and key:
        raise fail("--key/--iv apply to KIS frames only")
    try:
        codec: KISCodec | KiwoomCodec = KISCodec(key=key, iv=iv) if b == "kis" else KiwoomCodec()
    except ValueError as e:
        raise fail(str(e)) from None
    errors = 0
    stdout = sys.stdout.buffer
    stderr = sys.stderr.buffer

    def lines() -> object:
        if not files:
            yield from sys.stdin.buffer
            return
        for p in files:
            try:
                fh = p.open("rb")
            except OSError as e:
                raise fail(f"cannot read {p}: {e.strerror}") from None
            with fh:
                yield from fh

    for raw in lines():  # type: ignore[attr-defined]
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        for msg in codec.receive(line, received_at):
            if isinstance(msg, Record):
                stdout.write(encode_line(msg))
            elif isinstance(msg, DecodeError):
                errors += 1
                stderr.write(encode_line(msg))
            elif isinstance(msg, LayoutNotice):  # once per type and layout
                stderr.write(f"note: {msg.message}\n".encode())
            elif control:
                stdout.write(encode_line(msg))
    stdout.flush()
    if strict and errors:
        raise typer.Exit(1)


def _noon_kst(yyyymmdd: str) -> datetime:
    """Noon (KST) of a trading date given as YYYYMMDD: every HHmmss of that day is within 12 h
    of it, so the broker times of captured frames land on that date."""
    try:
        if len(yyyymmdd) != 8 or not yyyymmdd.isdigit():
            raise ValueError
        d = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise fail(f"--date {yyyymmdd!r} is not a date as YYYYMMDD (e.g. 20230324)") from None
    return datetime.combine(d, time(12), KST).astimezone(UTC)


# ---- live commands ----

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="krfeed.toml (default: $KRFEED_CONFIG, ./krfeed.toml)"),
]
MockOpt = Annotated[bool, typer.Option("--mock", help="use the brokers' mock (모의투자) servers")]
SimOpt = Annotated[
    str | None,
    typer.Option("--sim", help="a running `krfeed sim` URL (uses its credentials)"),
]
JournalOpt = Annotated[
    Path | None,
    typer.Option("--journal", help="also write every raw frame to this journal"),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="log to stderr")]
IdleTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--idle-timeout",
        help="seconds without any frame before a socket counts as dead, until the "
        "heartbeat cadence is learned (then 3 heartbeats, at most this; default 90, or "
        "[session] idle_timeout in krfeed.toml)",
    ),
]


def _session_options(
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


def _setup_logging(verbose: bool) -> None:
    import logging

    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _brokers_for(config: Path | None, mock: bool, sim: str | None, which: set[str]) -> list[Any]:
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


def _check_sinks(urls: list[str]) -> None:
    """Fail with one line for a sink URL that cannot work, before connecting anywhere."""
    from krfeed.sinks import SinkError, open_sink

    for u in urls:
        try:
            open_sink(u)
        except (SinkError, ValueError) as e:
            raise fail(str(e)) from None


def _journal(path: Path | None) -> Any:
    if path is None:
        return None
    from krfeed.journal import JournalWriter

    try:
        return JournalWriter(path)
    except OSError as e:
        raise fail(f"cannot write the journal at {path}: {e.strerror}") from None


def _run(coro: Any) -> Any:
    import asyncio

    from krfeed.errors import KrfeedError, SubscriptionError
    from krfeed.runner import FeedFailed

    try:
        return asyncio.run(coro)
    except FeedFailed as e:
        raise fail(f"stopped: {e}") from None
    except (SubscriptionError, KrfeedError) as e:
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # The reader of our stdout went away (| head): stop quietly, like other CLI tools.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


@app.command()
def stream(
    broker: Annotated[str, typer.Argument(help="kiwoom or kis")],
    type_: Annotated[
        str, typer.Argument(metavar="TYPE", help="type code or constant (00, 0B, H0STPGM0)")
    ],
    codes: Annotated[
        list[str] | None, typer.Argument(help="codes (none for 00/04/H0STCNI0)")
    ] = None,
    fmt_: Annotated[
        str | None,
        typer.Option(
            "--format", help="table (default in a terminal) or jsonl (default when piped)"
        ),
    ] = None,
    count: Annotated[int | None, typer.Option(help="stop after N records")] = None,
    duration: Annotated[float | None, typer.Option(help="stop after S seconds")] = None,
    config: ConfigOpt = None,
    mock: MockOpt = False,
    sim: SimOpt = None,
    journal: JournalOpt = None,
    verbose: VerboseOpt = False,
    idle_timeout: IdleTimeoutOpt = None,
) -> None:
    """Watch a feed live: a table in a terminal, JSON lines when piped."""
    from krfeed.runner import parse_sub

    b = _broker(broker)
    spec = f"{b}:{type_}" + (":" + ",".join(codes) if codes else "")
    try:
        sub = parse_sub(spec)
    except ValueError as e:
        raise fail(str(e)) from None
    mode = fmt_ or ("table" if sys.stdout.isatty() else "jsonl")
    if mode not in ("table", "jsonl"):
        raise fail(f"--format must be table or jsonl, not {mode!r}")
    _setup_logging(verbose)
    brokers = _brokers_for(config, mock, sim, {b})
    options = _session_options(config, mock, sim, idle_timeout)
    _run(_stream(brokers, sub, mode, count, duration, _journal(journal), options))


async def _stream(
    brokers: list[Any],
    sub: Any,
    mode: str,
    count: int | None,
    duration: float | None,
    journal: Any,
    options: Any = None,
) -> None:
    from krfeed.jsonout import encode_line
    from krfeed.runner import run_feed

    on_raw = journal
    try:
        if mode == "jsonl":
            out = sys.stdout.buffer

            def emit(item: Any) -> None:
                out.write(encode_line(item))
                out.flush()

            await run_feed(
                brokers, [sub], emit, count=count, duration=duration, on_raw=on_raw, options=options
            )
            return
        from rich.live import Live

        from krfeed.views import LiveView

        view = LiveView()
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
                options=options,
            )
    finally:
        if journal is not None:
            await journal.aclose()


from krfeed.sim.cli import sim_command  # noqa: E402

app.command("sim")(sim_command)


@app.command()
def record(
    subscriptions: Annotated[
        list[str],
        typer.Argument(help="BROKER:TYPE[:CODE,CODE…], e.g. kis:H0STPGM0:005930,000660 kiwoom:00"),
    ],
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="sink URL (repeatable); default sqlite:///krfeed.db"),
    ] = None,
    duration: Annotated[float | None, typer.Option(help="stop after S seconds")] = None,
    count: Annotated[int | None, typer.Option(help="stop after N records")] = None,
    config: ConfigOpt = None,
    mock: MockOpt = False,
    sim: SimOpt = None,
    journal: JournalOpt = None,
    verbose: VerboseOpt = False,
    idle_timeout: IdleTimeoutOpt = None,
) -> None:
    """Record records and control events into SQLite (default), JSONL, Parquet, PostgreSQL, NATS."""
    from krfeed.runner import parse_sub

    try:
        subs = [parse_sub(s) for s in subscriptions]
    except ValueError as e:
        raise fail(str(e)) from None
    urls = to or ["sqlite:///krfeed.db"]
    _check_sinks(urls)
    _setup_logging(verbose)
    brokers = _brokers_for(config, mock, sim, {s.broker for s in subs})
    options = _session_options(config, mock, sim, idle_timeout)
    from krfeed.commands import record as run_record

    status = _run(
        run_record(
            brokers,
            subs,
            urls,
            duration=duration,
            count=count,
            journal=_journal(journal),
            options=options,
        )
    )
    err.print(
        f"recorded {status['written']:,} rows into {', '.join(urls)}"
        + (f"; sink errors {status['errors']}" if status["errors"] else ""),
        highlight=False,
    )


@app.command()
def replay(
    path: Annotated[Path, typer.Argument(help="journal directory written with --journal")],
    speed: Annotated[str, typer.Option(help="1 (real time), 10, … or max")] = "max",
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="sink URL (repeatable); default: JSON lines to stdout"),
    ] = None,
) -> None:
    """Feed a journal back through the decoders into sinks, reproducing the live records."""
    if not path.exists():
        raise fail(f"no journal at {path}")
    if speed == "max":
        spd: float | None = None
    else:
        try:
            spd = float(speed)
        except ValueError:
            raise fail(f"--speed takes a number or max, not {speed!r}") from None
        if spd <= 0:
            raise fail("--speed must be positive")
    urls = to or ["jsonl:-"]
    _check_sinks(urls)
    from krfeed.commands import replay_to

    status = _run(replay_to(path, urls, spd))
    if to:
        err.print(f"replayed {status['written']:,} rows into {', '.join(urls)}", highlight=False)


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="seconds to run")] = 30.0,
    db: Annotated[Path, typer.Option(help="SQLite file to record into")] = Path("krfeed-demo.db"),
    seed: Annotated[int, typer.Option(help="simulator seed")] = 1,
) -> None:
    """Run the simulator in-process and watch Kiwoom orders/trades and KIS program trading live."""
    from krfeed.commands import demo as run_demo

    status = _run(run_demo(duration, db, seed=seed))
    sim_stats = status["sim"]
    orders = sum(v.get("total", 0) for v in sim_stats["orders"].values())
    Console().print(
        f"{status['written']:,} rows in {status['elapsed']}s from {orders} simulated orders "
        f"and live market data; the database is {db}",
        highlight=False,
    )


@app.command()
def query(
    db: Annotated[Path, typer.Argument(help="a recording (SQLite)")],
    sql: Annotated[str, typer.Argument(help="SQL to run (read-only)")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Query a recording and print the rows."""
    import sqlite3

    from krfeed.commands import query as run_query

    if not db.exists():
        raise fail(f"no database at {db}")
    try:
        run_query(db, sql, as_json=as_json)
    except sqlite3.Error as e:
        raise fail(f"SQL error: {e}") from None


@app.command()
def consume(
    url: Annotated[str, typer.Argument(help="nats://HOST:PORT?stream=KRFEED")],
    to: Annotated[list[str], typer.Option("--to", help="sink URL (repeatable)")],
    durable: Annotated[str, typer.Option(help="durable consumer name")] = "krfeed-consume",
    duration: Annotated[float | None, typer.Option(help="stop after S seconds")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Move recorded items from NATS JetStream into sinks, acking only after they committed."""
    if not url.startswith("nats://"):
        raise fail(f"consume reads from a nats:// URL, not {url!r}")
    _check_sinks(to)
    _setup_logging(verbose)
    status = _run(_consume(url, to, durable, duration))
    err.print(
        f"consumed {status.messages:,} messages ({status.records:,} records) into {', '.join(to)}",
        highlight=False,
    )


async def _consume(url: str, to: list[str], durable: str, duration: float | None) -> Any:
    import asyncio
    import signal

    from krfeed.consume import ConsumeStatus
    from krfeed.consume import consume as run_consume

    stop = asyncio.Event()
    status = ConsumeStatus()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    live = sys.stderr.isatty()

    async def progress() -> None:
        while live:
            await asyncio.sleep(1)
            err.print(
                f"\r{status.messages:,} messages, {status.records:,} records, "
                f"sink failures {status.sink_failures}",
                end="",
                highlight=False,
            )

    task = asyncio.create_task(progress())
    try:
        await run_consume(url, to, durable=durable, stop=stop, status=status)
    except Exception as e:  # one clear line instead of a traceback
        from krfeed.errors import KrfeedError

        raise KrfeedError(f"consume failed: {e}") from None
    finally:
        task.cancel()
        if live:
            err.print()
    return status


from krfeed.orders.cli import orders_command  # noqa: E402

app.command("orders")(orders_command)

from krfeed.conditions_cli import conditions_app  # noqa: E402

app.add_typer(conditions_app, name="conditions")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
