"""The README's runnable example really runs (against the simulator)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_prints_typed_orders_and_program_trading() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert re.search(r"^order \d{7} accepted (buy|sell) \d{6} qty=\d+", out, re.M), out
    pgm = re.findall(r"^(\d{6}) \d\d:\d\d:\d\d program net buy ([+-][\d,]+) shares", out, re.M)
    assert pgm and {code for code, _ in pgm} <= {"005930", "000660"}
    assert "'kis:H0STPGM0'" in out.splitlines()[-1]
