"""`krfeed conditions` (list, search, watch) in a subprocess against a `krfeed sim` subprocess,
checked against the simulator's own evaluation (its /_sim/conditions)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from krfeed.sim.market import UNIVERSE

from .helpers import run, sim, sim_json


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    yield from sim("--seed", "19", "--rate", "20", "--page-size", "2")


def sim_conditions(url: str) -> dict[str, Any]:
    return sim_json(url, "/_sim/conditions")  # type: ignore[no-any-return]


def test_list(sim_url: str) -> None:
    saved = sim_conditions(sim_url)["conditions"]
    p = run("conditions", "--sim", sim_url, "--json")
    assert p.returncode == 0, p.stderr
    assert [json.loads(line) for line in p.stdout.splitlines()] == [
        {"seq": s, "name": n} for s, n in saved
    ]
    p = run("conditions", "--sim", sim_url)
    assert p.returncode == 0, p.stderr
    assert "saved conditions" in p.stdout
    for seq, name in saved:
        assert f"│ {seq:>3} │ {name}" in p.stdout


def test_watch_records_then_search(sim_url: str, tmp_path: Path) -> None:
    db = tmp_path / "cond.db"
    p = run(
        "conditions",
        "watch",
        "3",
        "--sim",
        sim_url,
        "--count",
        "6",
        "--with",
        "0B",
        "--to",
        f"sqlite:///{db}",
    )
    assert p.returncode == 0, p.stderr
    assert "recorded" in p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    started = [x for x in lines if x.get("event") == "ConditionWatched"]
    assert len(started) == 1 and started[0]["seq"] == "3" and started[0]["name"] == "전일 대비 상승"
    hits = [x for x in lines if x.get("type") == "02"]
    assert len(hits) == 6
    # the 02 records are what the simulator decided and sent, in order
    pushes = [x for x in sim_conditions(sim_url)["pushes"] if x["seq"] == "3"]
    assert [
        (h["code"], h["condition_event"], h["event_time"][11:19].replace(":", "")) for h in hits
    ] == [(x["code"], "enter" if x["event"] == "I" else "exit", x["time"]) for x in pushes[:6]]
    for x in pushes[:6]:  # entries were up on the day, exits were not
        assert (x["price"] > x["prev_close"]) == (x["event"] == "I")
    # 0B followed the stocks in the set
    ever = set(started[0]["codes"]) | {h["code"] for h in hits}
    trades = [x for x in lines if x.get("type") == "0B"]
    assert {t["item"] for t in trades} <= ever
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT code, condition_event FROM kiwoom_condition_hit ORDER BY rowid"
        ).fetchall()
        events = [r[0] for r in con.execute("SELECT event FROM krfeed_events").fetchall()]
    finally:
        con.close()
    assert [tuple(r) for r in rows] == [(h["code"], h["condition_event"]) for h in hits]
    assert "ConditionWatched" in events

    # nothing moves the simulator's universe now: a search answers its evaluation exactly
    now = sim_conditions(sim_url)["matches"]["3"]
    p = run("conditions", "search", "3", "--sim", sim_url, "--json")
    assert p.returncode == 0, p.stderr
    rows_json = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["code"] for r in rows_json] == now
    for r in rows_json:
        assert r["seq"] == "3" and r["sign"] in ("up", "limit_up") and r["change"] > 0
        name, prev_close = UNIVERSE[r["code"]]
        assert r["name"] == name and r["price"] == prev_close + r["change"]
    p = run("conditions", "search", "3", "--sim", sim_url)
    assert p.returncode == 0, p.stderr
    assert f"condition 3: {len(now)} stock(s)" in p.stdout
    for code in now:
        assert code in p.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "99"], "there is no saved condition 99; saved: 0 (당일 3% 이상 상승)"),
        (["search", "x1"], "condition seq 'x1' is not a number of up to 3 digits"),
        (["watch", "3", "--with", "00"], "--with 00: 00 (주문체결) is not a per-stock"),
        (["watch", "3", "--with", "ZZ"], "--with ZZ: "),
        (["watch", "3", "--format", "csv"], "--format must be table or jsonl"),
    ],
)
def test_bad_input_is_one_line(sim_url: str, args: list[str], message: str) -> None:
    p = run("conditions", *args, "--sim", sim_url)
    assert p.returncode == 2
    assert p.stderr.startswith("krfeed: ") and message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
