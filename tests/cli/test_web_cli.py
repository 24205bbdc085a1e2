"""`krfeed web` refuses bad input with one sentence and exit code 2, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .helpers import run


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "name what to show"),
        (("--port", "99999"), "is not a port"),
        (("--replay", "no-such-dir"), "no journal at no-such-dir"),
        (("--db", "no-such.db"), "no database at no-such.db"),
        (("--replay", ".", "--speed", "0"), "--speed must be positive"),
        (("--replay", ".", "--speed", "fast"), "--speed takes a number or max, not 'fast'"),
        (("--replay", ".", "--db", "x.db"), "not both"),
        (("kis:H0STPGM0",), "needs codes"),
    ],
)
def test_bad_input_is_one_sentence(args: tuple[str, ...], says: str, tmp_path: Path) -> None:
    r = run("web", *args)
    assert r.returncode == 2, r.stderr
    assert says in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_port_in_use_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        (tmp_path / "journal").mkdir()
        r = run("web", "--replay", str(tmp_path / "journal"), "--port", str(port))
    assert r.returncode == 2, r.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr
