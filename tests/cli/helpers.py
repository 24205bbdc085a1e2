"""What the command tests share: running ``krfeed`` in a subprocess (piped or in a pty), a
``krfeed sim`` subprocess for a module's tests, and reading the simulator's /_sim/ endpoints."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KRFEED = [sys.executable, "-m", "krfeed"]


def run(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``krfeed *args`` to the end (bounded by ``timeout``), its output captured as text."""
    return subprocess.run(
        [*KRFEED, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )


def clean_env(tmp: Path) -> dict[str, str]:
    """This environment without KRFEED_* variables, with ``tmp`` as HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRFEED_")}
    env["HOME"] = str(tmp)
    return env


def in_pty(
    *args: str, cols: int, rows: int, timeout: float, cwd: Path | None = None
) -> tuple[int, str]:
    """Run ``krfeed *args`` in a pty of ``cols`` x ``rows`` until it exits (or ``timeout``
    passes): its exit code and all it wrote (decoded, escapes kept)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": str(cols), "LINES": str(rows), "TERM": "xterm"}
    proc = subprocess.Popen(
        [*KRFEED, *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, close_fds=True
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(10)
    os.close(master)
    return proc.returncode, out.decode("utf-8", "replace")


def sim(*args: str, check_exit: bool = True) -> Iterator[str]:
    """A ``krfeed sim --port 0 *args`` subprocess for a module fixture (``yield from``): yields
    its URL, then stops it with SIGTERM (and, with ``check_exit``, asserts it exited 0)."""
    proc = subprocess.Popen(
        [*KRFEED, "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline().strip()
    # an empty line: it exited, and stderr says why
    assert line.startswith("krfeed sim ready: http://"), line or proc.stderr.read()
    try:
        yield line.split(": ", 1)[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
        if check_exit:
            assert code == 0


def sim_json(url: str, path: str) -> Any:
    """The JSON the simulator at ``url`` answers on ``path`` (e.g. ``/_sim/stats``)."""
    with urllib.request.urlopen(url + path, timeout=5) as r:
        return json.loads(r.read())
