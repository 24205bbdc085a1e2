"""The real commands in a subprocess against a `krfeed sim` subprocess: stream, record, replay,
demo, query, and clear one-line errors for bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from . import helpers
from .helpers import KRFEED, clean_env, in_pty, sim, sim_json

# the commands here get longer than the shared default
run = partial(helpers.run, timeout=90)


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    yield from sim("--seed", "11", "--auto-orders", "4", "--rate", "20")


def test_stream_jsonl_parses_and_matches_the_simulator(sim_url: str) -> None:
    p = run("stream", "kis", "H0STCNT0", "005930", "000660", "--sim", sim_url, "--count", "30")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    records = [x for x in lines if "event" not in x]
    events = [x["event"] for x in lines if "event" in x]
    assert len(records) == 30
    assert {"Connected", "LoggedIn", "Subscribed"} <= set(events)
    for r in records:
        assert r["broker"] == "kis" and r["type"] == "H0STCNT0"
        assert r["item"] in ("005930", "000660") and r["code"] == r["item"]
        assert isinstance(r["current_price"], int) and r["current_price"] > 0
        assert r["time"].endswith("+09:00")
    sent = sim_json(sim_url, "/_sim/stats")["records_sent"]["kis"].get("H0STCNT0", 0)
    assert sent >= 30


def test_record_to_sqlite_counts_equal_records_delivered(sim_url: str, tmp_path: Path) -> None:
    db = tmp_path / "rec.db"
    p = run(
        "record",
        "kis:H0STCNT0:005930",
        "kiwoom:0B:005930,000660",
        "--sim",
        sim_url,
        "--to",
        f"sqlite:///{db}",
        "--count",
        "120",
    )
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(db)
    kis = con.execute("SELECT count(*) FROM kis_trade").fetchone()[0]
    kiwoom = con.execute("SELECT count(*) FROM kiwoom_stock_trade").fetchone()[0]
    events = [r[0] for r in con.execute("SELECT event FROM krfeed_events")]
    items = {r[0] for r in con.execute("SELECT item FROM kiwoom_stock_trade")}
    con.close()
    assert kis + kiwoom == 120
    assert items <= {"005930", "000660"}
    assert "Subscribed" in events
    assert "recorded" in p.stderr


def test_journal_replay_reproduces_the_same_rows(sim_url: str, tmp_path: Path) -> None:
    live, again, journal = tmp_path / "live.db", tmp_path / "again.db", tmp_path / "journal"
    p = run(
        "record",
        "kis:H0STPGM0:005930",
        "kiwoom:00",
        "--sim",
        sim_url,
        "--to",
        f"sqlite:///{live}",
        "--journal",
        str(journal),
        "--count",
        "60",
    )
    assert p.returncode == 0, p.stderr
    p = run("replay", str(journal), "--to", f"sqlite:///{again}")
    assert p.returncode == 0, p.stderr

    def rows(db: Path, table: str) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(db)
        try:
            return con.execute(f"SELECT * FROM {table} ORDER BY received_at").fetchall()
        finally:
            con.close()

    live_pgm = rows(live, "kis_program_trading")
    assert live_pgm and rows(again, "kis_program_trading")[: len(live_pgm)] == live_pgm
    # replay also prints JSON lines when no sink is given
    p = run("replay", str(journal))
    assert p.returncode == 0
    first = json.loads(p.stdout.splitlines()[0])
    assert first["broker"] in ("kis", "kiwoom")


def test_kill_9_while_recording_loses_no_committed_row(sim_url: str, tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [
            *KRFEED,
            "record",
            "kis:H0STCNT0:005930,000660,035720",
            "--sim",
            sim_url,
            "--to",
            f"sqlite:///{db}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen = 0
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if not db.exists():
                continue
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                seen = con.execute("SELECT count(*) FROM kis_trade").fetchone()[0]
                con.close()
            except sqlite3.OperationalError:
                continue
            if seen >= 50:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert seen >= 50
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    after = con.execute("SELECT count(*) FROM kis_trade").fetchone()[0]
    con.close()
    assert after >= seen


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stream", "kis", "H0STCNT0", "005930"], "no kis credentials"),
        (["stream", "kis", "NOPE", "005930", "--sim", "http://127.0.0.1:9"], "no real-time type"),
        (["stream", "kiwoom", "0B", "--sim", "http://127.0.0.1:9"], "needs codes"),
        (["stream", "nasdaq", "0B"], "unknown broker"),
        (
            ["stream", "kis", "H0STCNT0", "005930", "--config", "/nonexistent.toml"],
            "does not exist",
        ),
        (
            ["record", "kiwoom:0B:005930", "--to", "ftp://x", "--sim", "http://127.0.0.1:9"],
            "unknown sink URL",
        ),
        (["record", "kiwoom0B"], "should look like BROKER:TYPE"),
        (["stream", "kis", "H0STCNT0", "005930", "--sim", "127.0.0.1:8765"], "--sim takes"),
        (["query", "/nonexistent.db", "SELECT 1"], "no database"),
        (["replay", "/nonexistent-journal"], "no journal"),
    ],
)
def test_bad_input_gives_one_clear_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    p = run(*args, env=clean_env(tmp_path), cwd=tmp_path, timeout=30)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    assert message in lines[0]
    assert "Traceback" not in p.stderr


def test_wrong_credentials_stop_with_a_clear_line(sim_url: str, tmp_path: Path) -> None:
    (tmp_path / "krfeed.toml").write_text(
        f'[[kis]]\nappkey = "wrong-app"\nsecretkey = "wrong-secret-value"\nrest_url = "{sim_url}"\n'
    )
    p = run(
        "stream",
        "kis",
        "H0STCNT0",
        "005930",
        "--duration",
        "20",
        env=clean_env(tmp_path),
        cwd=tmp_path,
    )
    assert p.returncode == 2
    err = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "refused the app key/secret" in err[0], p.stderr
    assert "wrong-secret-value" not in p.stderr + p.stdout


def test_terminal_shows_the_live_table(sim_url: str) -> None:
    args = ["stream", "kiwoom", "0B", "005930", "000660", "--sim", sim_url, "--duration", "3"]
    code, text = in_pty(*args, cols=160, rows=40, timeout=30)
    assert code == 0, text[-2000:]
    assert "kiwoom 0B 주식체결" in text
    assert "cum value 백만원" in text and "005930" in text and "000660" in text
    assert "kiwoom#1:live" in text


def test_demo_leaves_a_database_a_person_can_query(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    p = run("demo", "--duration", "6", "--db", str(db), cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "krfeed query" in p.stdout
    con = sqlite3.connect(db)
    counts = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    con.close()
    for t in ("kiwoom_stock_trade", "kiwoom_program_trading", "kis_program_trading", "kis_trade"):
        assert counts.get(t, 0) > 0, counts
    assert counts.get("kiwoom_order_execution", 0) > 0, counts
    q = run("query", str(db), "SELECT count(*) AS n FROM kis_program_trading", "--json")
    assert q.returncode == 0
    assert json.loads(q.stdout)["n"] == counts["kis_program_trading"]
    # a row wider than the terminal: a line per column, not a table of empty columns
    con = sqlite3.connect(db)
    item, price = con.execute(
        "SELECT item, current_price FROM kiwoom_stock_trade ORDER BY rowid LIMIT 1"
    ).fetchone()
    con.close()
    wide = run(
        "query",
        f"sqlite:///{db}",
        "SELECT * FROM kiwoom_stock_trade ORDER BY rowid LIMIT 1",
        env={**os.environ, "COLUMNS": "160"},
    )
    assert wide.returncode == 0, wide.stderr
    lines = wide.stdout.splitlines()
    assert lines[0] == "-[ row 1 ]-"
    fields = {k.rstrip(): v for k, v in (line.split(" | ", 1) for line in lines[1:-1])}
    assert fields["current_price"] == str(price)
    assert fields["item"] == item
    assert fields["received_at"]
    assert lines[-1] == "1 row(s)"
