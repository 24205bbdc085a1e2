"""The README's examples run: the shell commands of *Commands* against a `krfeed sim`
subprocess (each bounded by a timeout), the API example's fields exist on the records it
matches, and help pages show no type noise. examples/quickstart.py (the API example against
the simulator) runs in test_examples.py."""

from __future__ import annotations

import ast
import json
import re
import shlex
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from krfeed.records import kis, kiwoom

from .helpers import KRFEED, sim

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FIXTURES = ROOT / "tests" / "fixtures" / "captured"


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


@pytest.fixture(scope="module")
def sim_port() -> Iterator[int]:
    for url in sim("--seed", "2", "--auto-orders", "4", "--rate", "20"):
        yield int(url.rsplit(":", 1)[1])


def readme_commands() -> list[str]:
    """The shell commands of the *Commands* examples, continuation lines joined."""
    text = section("Commands")
    assert "Examples, against a simulator started with `krfeed sim --port 8765" in text
    block = text.split("Examples, against a simulator", 1)[1]
    (sh,) = code_blocks(block, "sh")[:1]
    return [c.strip() for c in sh.replace("\\\n", " ").splitlines() if c.strip()]


def test_readme_commands_run_against_the_simulator(sim_port: int, tmp_path: Path) -> None:
    # a capture file for `krfeed decode`: real frames (tests/fixtures/captured, see its README)
    frames = json.loads((FIXTURES / "kiwoom_frames.json").read_text(encoding="utf-8"))
    (tmp_path / "captured.txt").write_text(
        "".join(f["frame"] + "\n" for f in frames), encoding="utf-8"
    )
    commands = readme_commands()
    assert [c.split()[1] for c in commands] == [
        "stream",
        "stream",
        "record",
        "query",
        "replay",
        "decode",
        "schema",
    ]
    for command in commands:
        args = shlex.split(command.replace("8765", str(sim_port)))
        assert args[0] == "krfeed"
        out_file = None
        if ">" in args:
            at = args.index(">")
            out_file = tmp_path / args[at + 1]
            args = args[:at]
        # bounded runs: the README's 60 s recording takes 3 s here; a stream gets a deadline
        args = ["3" if a == "60" and args[i - 1] == "--duration" else a for i, a in enumerate(args)]
        if args[1] == "stream" and "--count" not in args and "--duration" not in args:
            args += ["--duration", "3"]
        p = subprocess.run(
            [*KRFEED, *args[1:]], capture_output=True, text=True, timeout=90, cwd=tmp_path
        )
        assert p.returncode == 0, (command, p.stderr[-2000:])
        if out_file is not None:
            out_file.write_text(p.stdout, encoding="utf-8")
        if args[1] == "stream" and "--count" in args:
            lines = [json.loads(x) for x in p.stdout.splitlines()]
            assert sum(1 for x in lines if x.get("type") == "00" and "event" not in x) == 10
        elif args[1] == "query":
            assert "order_no" in p.stdout and "fill_price" in p.stdout
    con = sqlite3.connect(tmp_path / "day.db")
    try:
        (pgm,) = con.execute("SELECT count(*) FROM kis_program_trading").fetchone()
        (orders,) = con.execute("SELECT count(*) FROM kiwoom_order_execution").fetchone()
    finally:
        con.close()
    assert pgm > 0 and orders > 0
    decoded = [json.loads(x) for x in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert {
        (r["type"], r["item"]) for r in decoded if r.get("type") == "00" and "event" not in r
    } == {("00", "005930")}


def test_readme_api_example_reads_fields_the_records_have() -> None:
    """Every ``event.<name>`` under ``case <Record>():`` in the README's API example (and in
    examples/quickstart.py) is a field of that record class."""
    modules = {"krfeed.records.kis": kis, "krfeed.records.kiwoom": kiwoom}
    sources = [code_blocks(section("The API"), "python")[0]]
    sources.append((ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8"))
    checked = 0
    for src in sources:
        tree = ast.parse(src)
        classes = {
            a.asname or a.name: getattr(modules[imp.module], a.name)
            for imp in ast.walk(tree)
            if isinstance(imp, ast.ImportFrom) and imp.module in modules
            for a in imp.names
        }
        for case in (n for n in ast.walk(tree) if isinstance(n, ast.match_case)):
            pat = case.pattern
            if not isinstance(pat, ast.MatchClass) or not isinstance(pat.cls, ast.Name):
                continue
            cls = classes.get(pat.cls.id)
            if cls is None:
                continue
            for node in (n for stmt in case.body for n in ast.walk(stmt)):
                if isinstance(node, ast.Attribute) and getattr(node.value, "id", "") == "event":
                    assert node.attr in cls.__struct_fields__, (pat.cls.id, node.attr)
                    checked += 1
    assert checked >= 10


def test_help_shows_no_type_noise() -> None:
    for command in ("stream", "record", "demo", "sim", "schema", "query", "replay"):
        p = subprocess.run(
            [*KRFEED, command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
        )
        assert p.returncode == 0, p.stderr
        assert not re.search(r"<(bool|str|int|float|path|list\[str\])>", p.stdout), p.stdout
    stream = subprocess.run(
        [*KRFEED, "stream", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert re.search(r"--fields\s+A,B,C\s", stream), stream
    assert re.search(r"--mock\s+use the brokers", stream), stream
