"""The ``krfeed`` command line."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from krfeed.schema.catalog import BROKERS, UnknownType, get_type, types
from krfeed.schema.convert import KST
from krfeed.schema.core import BASE_KINDS, UNIT_NAMES

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def _plain_help_types() -> None:
    """Help shows a parameter's metavar, nothing for flags and arguments (their name says it),
    and a plain word otherwise — not typer's ``<bool>`` / ``<list[str]>`` type labels."""
    from typer.core import TyperArgument, TyperOption

    words = {"str": "TEXT", "int": "N", "float": "NUMBER", "path": "PATH"}

    def display(self: Any, ctx: Any) -> str | None:
        if self.metavar is not None:
            return str(self.metavar)
        if isinstance(self, TyperArgument) or getattr(self, "is_flag", False):
            return None
        label = str(self.display_type(ctx)).strip("<>")
        return words.get(label, label.upper())

    TyperOption.display_type_rich = display  # type: ignore[method-assign]
    TyperArgument.display_type_rich = display  # type: ignore[method-assign]


_plain_help_types()


def say(message: str) -> None:
    """One line to stderr, on one line however long (rich would wrap at 80 columns when
    piped) and printed as is (no rich markup: ``[kiwoom]`` stays)."""
    err.print(escape(message), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear sentence to stderr and return the Exit to raise."""
    err.print(f"[bold red]krfeed:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        from krfeed import __version__

        sys.stdout.write(f"krfeed {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Real-time feeds of Korean brokers (Kiwoom REST API, KIS Open API).

    Exit codes: 0 done (also when stopped by --duration, --count, Ctrl-C or SIGTERM); 1 ran,
    but rows could not be delivered to a sink (saved to a file, see the message), or
    `decode --strict` met errors; 2 could not do what was asked (bad input, a sink or server
    that cannot be reached, credentials or every subscription refused, nothing to replay);
    130 interrupted before starting.
    """


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
        {
            "wire": f.wire,
            "korean": f.korean,
            "name": f.name,
            "kind": f.kind,
            "unit": f.unit,
            "since": f.since,
        }
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
    cols = ["#", "wire", "korean", "name", "kind", "unit"]
    if len(t.layouts) > 1:
        cols.append("since")
    for col in cols:
        table.add_column(col, no_wrap=col == "name")
    for i, f in enumerate(fields, 1):
        table.add_row(str(i), *(f[c] for c in cols[1:]))
    out.print(table)
    if len(t.layouts) > 1:
        versions = ", ".join(f"{w} ({t.layout_label(w)})" for w in t.layouts)
        out.print(f"  layouts (fields per record): {versions}")
    units = sorted({f.unit for f in t.fields if f.unit})
    if units:
        out.print(f"  [dim]unit[/]: {', '.join(f'{u} = {UNIT_NAMES.get(u, u)}' for u in units)}")
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


_VERBOSE = False


def _setup_logging(verbose: bool) -> None:
    import logging

    global _VERBOSE
    _VERBOSE = _VERBOSE or verbose
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


def _check_sinks(urls: list[str]) -> list[str]:
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


def _where(urls: list[str]) -> str:
    from krfeed.sinks import where

    return ", ".join(where(u) for u in urls)


def _journal(path: Path | None) -> Any:
    if path is None:
        return None
    from krfeed.journal import JournalWriter

    try:
        return JournalWriter(path)
    except OSError as e:
        raise fail(f"cannot write the journal at {path}: {e.strerror}") from None


def _run(coro: Any) -> Any:
    """Run a command's coroutine; what it raises goes to the error boundary in :func:`main`."""
    import asyncio

    return asyncio.run(coro)


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
    from krfeed.runner import parse_sub
    from krfeed.views import check_fields

    b = _broker(broker)
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
    mode = fmt_ or ("table" if sys.stdout.isatty() else "jsonl")
    if mode not in ("table", "jsonl"):
        raise fail(f"--format must be table or jsonl, not {mode!r}")
    _setup_logging(verbose)
    brokers = _brokers_for(config, mock, sim, {b})
    options = _session_options(config, mock, sim, idle_timeout)
    _run(
        _stream(
            brokers,
            sub,
            mode,
            count,
            duration,
            _journal(journal),
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
    from krfeed.runner import run_feed

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

        from krfeed.views import LiveView

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


from krfeed.sim.cli import sim_command  # noqa: E402

app.command("sim")(sim_command)


@app.command()
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
) -> None:
    """Record records and control events into SQLite (default), JSONL, Parquet, PostgreSQL, NATS.

    Example: krfeed record kis:H0STPGM0:005930 kiwoom:00 --to day.db --duration 60"""
    from krfeed.runner import parse_sub

    try:
        subs = [parse_sub(s) for s in subscriptions]
    except ValueError as e:
        raise fail(str(e)) from None
    urls = _check_sinks(to or ["sqlite:///krfeed.db"])
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
    say(f"{verb} {status['records']:,} records (and {events:,} control events) into {_where(urls)}")
    refused = status.get("refused") or {}
    if refused:
        say("refused: " + "; ".join(f"{k}: {v}" for k, v in refused.items()))
    lost = {u: v for u, v in status["sinks"].items() if v["abandoned"]}
    for u, v in lost.items():
        saved = f"; saved in {v['spilled_to']}" if v.get("spilled_to") else ""
        say(
            f"{v['abandoned']:,} items could not be written to {_where([u])} "
            f"({v['last_error']}){saved}"
        )
    if lost:
        raise fail("some rows were not delivered (see above)", 1)


@app.command()
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
    if speed == "max":
        spd: float | None = None
    else:
        try:
            spd = float(speed)
        except ValueError:
            raise fail(f"--speed takes a number or max, not {speed!r}") from None
        if spd <= 0:
            raise fail("--speed must be positive")
    urls = _check_sinks(to or ["jsonl:-"])
    _setup_logging(verbose)
    from krfeed.commands import replay_to

    status = _run(replay_to(path, urls, spd))
    if to:
        _record_summary("replayed", status, urls)


@app.command()
def demo(
    ctx: typer.Context,
    duration: Annotated[float, typer.Option(help="seconds to run")] = 30.0,
    db: Annotated[Path, typer.Option(help="SQLite file to record into")] = Path("krfeed-demo.db"),
    seed: Annotated[int, typer.Option(help="simulator seed")] = 1,
    web: Annotated[bool, typer.Option("--web", help="show it in the browser dashboard")] = False,
    port: Annotated[int, typer.Option(help="--web: port (0: any free port)")] = 8700,
    open_: Annotated[bool, typer.Option("--open", help="--web: open the page")] = False,
) -> None:
    """Run the simulator in-process and watch Kiwoom orders/trades and KIS program trading live."""
    if web:  # until Ctrl-C unless --duration is given
        from krfeed.web.cli import demo_web

        given = ctx.get_parameter_source("duration")
        until = duration if given is not None and given.name != "DEFAULT" else None
        return demo_web(seed=seed, port=port, host="127.0.0.1", open_=open_, duration=until)
    from krfeed.commands import demo as run_demo

    if db.exists():
        say(f"replacing the previous demo database {db.absolute()}")
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
    db_: Annotated[
        str, typer.Argument(metavar="DB", help="a SQLite recording: day.db or sqlite:///day.db")
    ],
    sql: Annotated[str, typer.Argument(help="SQL to run (read-only)")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Query a SQLite recording (read-only) and print the rows.

    Example: krfeed query day.db "SELECT code, net_buy_qty FROM kis_program_trading LIMIT 5"
    """
    import sqlite3

    from krfeed.commands import query as run_query

    if ":" in db_ and not db_.lower().startswith("sqlite:"):
        raise fail(
            f"query reads SQLite recordings only (day.db or sqlite:///day.db), not {db_!r}; "
            "use psql for PostgreSQL"
        )
    if db_.lower().startswith("sqlite:"):
        from krfeed.sinks.urls import parse_path_url

        try:
            db = Path(parse_path_url(db_, "sqlite")[0])
        except ValueError as e:
            raise fail(str(e)) from None
    else:
        db = Path(db_)
    if not db.exists():
        raise fail(f"no database at {db.absolute()}")
    try:
        run_query(db, sql, as_json=as_json)
    except sqlite3.Error as e:
        raise fail(f"SQL error: {e}") from None


@app.command()
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
    to = _check_sinks(to)
    _setup_logging(verbose)
    status = _run(_consume(url, to, durable, duration, connect_timeout, status_every))
    say(
        f"consumed {status.messages:,} messages ({status.records:,} records) into {_where(to)}; "
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
    import asyncio
    import contextlib
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

    def line() -> str:
        failing = f", sink failing: {status.last_error}" if status.last_error else ""
        return (
            f"{status.messages:,} messages, {status.records:,} records, "
            f"sink failures {status.sink_failures}{failing}"
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

    task = asyncio.create_task(progress())
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
            from krfeed.commands import Interrupted

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


def nats_errors() -> tuple[type[BaseException], ...]:
    import nats.errors
    import nats.js.errors

    return (nats.errors.Error, nats.js.errors.Error)


from krfeed.orders.cli import orders_command  # noqa: E402

app.command("orders")(orders_command)

from krfeed.conditions_cli import conditions_app  # noqa: E402

app.add_typer(conditions_app, name="conditions")

from krfeed.web.cli import web_command  # noqa: E402

app.command("web")(web_command)


def main() -> None:
    """The ``krfeed`` command, behind the one error boundary of the CLI: whatever a command
    raises reaches the user as one sentence and an exit code, never as a traceback (logged
    at debug level; ``-v`` prints it)."""
    try:
        app()
    except KeyboardInterrupt:
        say("krfeed: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        # The reader of our stdout went away (| head): stop quietly, like other CLI tools.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as e:
        import logging

        from krfeed.logs import get_logger

        message, code = explain(e)
        log = get_logger("krfeed.cli")
        verbose = _VERBOSE or any(a in ("-v", "--verbose") for a in sys.argv[1:])
        if verbose:
            if not logging.getLogger().handlers:
                _setup_logging(True)
            log.error("the error below stopped krfeed", exc_info=e)
        else:
            log.debug("the error below stopped krfeed", exc_info=e)
        err.print(f"[bold red]krfeed:[/] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(code)


def explain(e: BaseException) -> tuple[str, int]:
    """One sentence for an exception that reached the top of a command, and the exit code:
    2 for what the user can fix (input, files, servers, credentials), 1 for a krfeed bug."""
    import sqlite3

    from krfeed.commands import Interrupted
    from krfeed.runner import FeedFailed

    if isinstance(e, Interrupted):
        return str(e), 130
    if isinstance(e, FeedFailed):
        return f"stopped: {e}", 2
    if isinstance(e, OSError):
        what = e.strerror or str(e) or type(e).__name__
        where = f" ({e.filename})" if e.filename else ""
        return f"{what}{where}", 2
    if isinstance(e, sqlite3.Error):
        return f"SQLite: {e}", 2
    module = type(e).__module__.split(".")[0]
    if module == "asyncpg":
        return f"PostgreSQL: {e}", 2
    if module == "nats":
        return f"NATS: {e or type(e).__name__}", 2
    if isinstance(e, ValueError | LookupError) or module == "krfeed":
        # krfeed's own errors (KrfeedError, SinkError, ConfigError, JournalError) are sentences
        return str(e) or type(e).__name__, 2
    return (
        f"internal error ({type(e).__name__}: {e}); run with -v for the traceback "
        "and please report it",
        1,
    )


if __name__ == "__main__":
    main()
