"""``krfeed demo`` (the simulator in-process, recorded and shown live) and ``krfeed query``
(read-only SQL on a recording)."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from krfeed.brokers import KIS, BrokerConfig, Kiwoom
from krfeed.cli.common import fail, run, say
from krfeed.cli.record import record_feed
from krfeed.events import Disconnected, Reconnected, SessionFailed
from krfeed.feed import FeedItem
from krfeed.runner import SubSpec


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
        from krfeed.cli.web import demo_web

        given = ctx.get_parameter_source("duration")
        until = duration if given is not None and given.name != "DEFAULT" else None
        return demo_web(seed=seed, port=port, host="127.0.0.1", open_=open_, duration=until)
    if db.exists():
        say(f"replacing the previous demo database {db.absolute()}")
    status = run(run_demo(duration, db, seed=seed))
    sim_stats = status["sim"]
    orders = sum(v.get("total", 0) for v in sim_stats["orders"].values())
    Console().print(
        f"{status['written']:,} rows in {status['elapsed']}s from {orders} simulated orders "
        f"and live market data; the database is {db}",
        highlight=False,
    )


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


DEMO_CODES = ("005930", "000660", "035720", "051910", "035420")


async def run_demo(
    duration: float = 30.0,
    db: Path = Path("krfeed-demo.db"),
    *,
    seed: int = 1,
    live: bool | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Simulator in-process → Feed (Kiwoom 00/0B/0w, KIS H0STPGM0/H0STCNT0) → SQLite + view."""
    from krfeed.sim import SimConfig, Simulator

    console = console or Console()
    # Auto-orders trade the codes the demo shows.
    cfg = SimConfig(
        port=0, seed=seed, rate=4.0, auto_orders=1.0, ping_interval=5.0, codes=DEMO_CODES
    )
    async with Simulator(cfg) as sim:
        console.print(f"[dim]simulator running at {sim.url}[/]")
        brokers: list[BrokerConfig] = [Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 2)]
        codes = tuple(DEMO_CODES)
        subs = [
            SubSpec("kiwoom", "00", ()),
            SubSpec("kiwoom", "0B", codes),
            SubSpec("kiwoom", "0w", codes),
            SubSpec("kis", "H0STPGM0", codes),
            SubSpec("kis", "H0STCNT0", codes[:3]),
        ]
        # Auto-orders go to the KIS account too once its notices are subscribed.
        subs.append(SubSpec("kis", "H0STCNI0", ()))
        if db.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
        t0 = time.monotonic()
        status = await record_feed(
            brokers,
            subs,
            [f"sqlite:///{db}"],
            duration=duration,
            live=live,
            console=console,
            printer=_DemoPrinter(console),
        )
        status["elapsed"] = round(time.monotonic() - t0, 1)
        status["sim"] = sim.stats()
    summary(db, console)
    return status


class _DemoPrinter:
    """Plain lines when the demo runs without a terminal: every order event, and program
    trading at most once a second per code."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.closed = False
        self._last: dict[str, float] = {}

    def __call__(self, item: FeedItem) -> None:
        from krfeed.records.kis import ExecutionNotice, ProgramTrading
        from krfeed.records.kiwoom import OrderExecution

        line = ""
        if isinstance(item, OrderExecution):
            # 905 주문구분 tells a cancel or modify from the order it amends
            kind = item.order_kind or ""
            what = "cancel " if "취소" in kind else "modify " if "정정" in kind else ""
            fill = (
                f" fill {item.unit_fill_qty} @ {item.unit_fill_price}" if item.unit_fill_qty else ""
            )
            line = (
                f"kiwoom 00 order {item.order_no} {what}{item.order_status} {item.side} "
                f"{item.code} qty {item.order_qty}{fill} filled {item.fill_qty or 0} "
                f"unfilled {item.unfilled_qty}"
            )
        elif isinstance(item, ExecutionNotice):
            what = "" if item.correction is None else f"{item.correction} "
            what = "" if what == "normal " else what
            # on an ack CNTG_QTY/CNTG_UNPR carry the order's quantity and price, not a fill
            shown = (
                f"{item.fill_qty} @ {item.fill_price}"
                if str(item.notice_kind) == "fill"
                else f"qty {item.order_qty} @ {item.order_price}"
            )
            line = (
                f"kis H0STCNI0 order {item.order_no} {what}{item.notice_kind} {item.side} "
                f"{item.code} {shown}"
            )
        elif isinstance(item, ProgramTrading):
            now = time.monotonic()
            if now - self._last.get(item.item, 0.0) < 1.0:
                return
            self._last[item.item] = now
            t = item.time.strftime("%H:%M:%S") if item.time else "-"
            line = (
                f"kis H0STPGM0 {item.code} {t} program buy {item.buy_qty} sell {item.sell_qty} "
                f"net {item.net_buy_qty:+} shares, {item.net_buy_value:+,} won"
            )
        elif isinstance(item, SessionFailed | Disconnected | Reconnected):
            line = f"{type(item).__name__}: {item.session}"
        if line and not self.closed:
            try:
                self.console.print(line, highlight=False, soft_wrap=True)
            except (BrokenPipeError, SystemExit):  # rich exits on a closed pipe
                self.closed = True  # the reader went away (| head): keep recording quietly


def summary(db: Path, console: Console) -> None:
    """Rows per table of a recording, and a query to try."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
            ).fetchall()
        ]
        table = Table(title=f"recorded in {db}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for n in names:
            (rows,) = con.execute(f'SELECT count(*) FROM "{n}"').fetchone()
            table.add_row(n, f"{rows:,}")
    finally:
        con.close()
    console.print(table)
    console.print("Try:")
    krfeed = krfeed_command()
    console.print(
        f'  {krfeed} query {db} "SELECT order_no, order_status, code, side, order_qty, fill_qty, '
        'fill_price FROM kiwoom_order_execution ORDER BY received_at LIMIT 20"',
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f'  {krfeed} query {db} "SELECT code, time, net_buy_qty, net_buy_value '
        'FROM kis_program_trading ORDER BY received_at DESC LIMIT 10"',
        highlight=False,
        soft_wrap=True,
    )


def krfeed_command() -> str:
    """How the user can run krfeed from here: ``krfeed`` when it is on PATH, else the path of
    the script beside this Python (``.venv/bin/krfeed`` after ``make``)."""
    import shutil

    if shutil.which("krfeed"):
        return "krfeed"
    script = Path(sys.executable).parent / "krfeed"
    if not script.exists():
        return f"{sys.executable} -m krfeed"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def run_query(db: Path, sql: str, *, as_json: bool = False, console: Console | None = None) -> int:
    """Run read-only SQL on a recording and print the rows; returns the row count."""
    import msgspec

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description or ()]
        rows = cur.fetchall()
    finally:
        con.close()
    if as_json:
        out = sys.stdout
        for r in rows:
            out.write(msgspec.json.encode(dict(zip(cols, r, strict=True))).decode() + "\n")
        return len(rows)
    console = console or Console()
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    natural = sum(
        max(cell_len(c), *(cell_len(r[i]) for r in cells)) + 3 for i, c in enumerate(cols)
    )
    if natural + 1 > console.width:
        # too wide to be a table here: one block per row, a line per column (psql's \x)
        name_w = max(cell_len(c) for c in cols)
        for n, r in enumerate(cells, 1):
            console.print(f"-[ row {n} ]-", style="bold", highlight=False)
            for c, v in zip(cols, r, strict=True):
                console.print(
                    f"{c}{' ' * (name_w - cell_len(c))} | {v}", markup=False, highlight=False
                )
    else:
        table = Table(show_lines=False)
        for c in cols:
            table.add_column(c)
        for r in cells:
            table.add_row(*r)
        console.print(table)
    console.print(f"[dim]{len(rows)} row(s)[/]")
    return len(rows)
