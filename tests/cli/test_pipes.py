"""A reader closing krfeed's stdout (``krfeed … | head -1``) is normal Unix use: the command
stops quietly with exit 0 — no message, no traceback, no "Exception ignored" at exit."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import KRFEED, sim


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    yield from sim("--seed", "3", "--rate", "20", check_exit=False)


def head_1(*args: str, cwd: Path, record: bool = False) -> tuple[str, int, str]:
    """``krfeed *args | head -1``: the first line (with ``record``, the first record's line),
    then the exit code and stderr once the pipe is closed."""
    proc = subprocess.Popen(
        [*KRFEED, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    while record and first and "event" in json.loads(first):
        first = proc.stdout.readline()
    proc.stdout.close()
    try:
        code = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"krfeed {' '.join(args)} went on after its stdout was closed"
        ) from None
    return first, code, proc.stderr.read()


def test_stream_stops_quietly_when_the_reader_closes_stdout(sim_url: str, tmp_path: Path) -> None:
    first, code, stderr = head_1(
        "stream", "kis", "H0STCNT0", "005930", "--sim", sim_url, "--format", "jsonl", cwd=tmp_path
    )
    assert json.loads(first)["event"] == "Connected"
    assert (code, stderr) == (0, "")


def test_record_to_stdout_stops_quietly_and_keeps_its_journal(sim_url: str, tmp_path: Path) -> None:
    first, code, stderr = head_1(
        "record", "kis:H0STCNT0:005930", "--sim", sim_url, "--to", "-", "--journal", "j",
        cwd=tmp_path, record=True,
    )  # fmt: skip
    received = json.loads(first)
    assert (received["type"], received["item"]) == ("H0STCNT0", "005930")
    assert (code, stderr) == (0, "")
    replayed = subprocess.run(
        [*KRFEED, "replay", "j", "--speed", "max", "--to", "-"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    # the record the reader saw is in the journal
    replayed_first = json.loads(replayed.stdout.splitlines()[0])
    assert replayed_first["received_at"] == received["received_at"]


def test_decode_stops_quietly_when_the_reader_closes_stdout(tmp_path: Path) -> None:
    # a real H0STCNT0 frame (tests/fixtures/captured/kis_frames.json), repeated: far more
    # output than a pipe holds, so the writes after the first line meet the closed pipe
    captured = Path(__file__).parents[1] / "fixtures" / "captured" / "kis_frames.json"
    frame = next(
        x["frame"] for x in json.loads(captured.read_text()) if x["frame"].startswith("0|H0STCNT0")
    )
    (tmp_path / "frames.txt").write_text((frame + "\n") * 5000)
    first, code, stderr = head_1("decode", "kis", "frames.txt", cwd=tmp_path)
    assert (json.loads(first)["code"], json.loads(first)["current_price"]) == ("005930", 62700)
    assert (code, stderr) == (0, "")


def test_query_json_stops_quietly_when_the_reader_closes_stdout(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "day.db").execute("CREATE TABLE t (x)").connection.close()
    sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) "
    first, code, stderr = head_1("query", "day.db", sql + "SELECT i FROM n", "--json", cwd=tmp_path)
    assert json.loads(first) == {"i": 1}
    assert (code, stderr) == (0, "")
