"""kill -9 while recording to SQLite: the database opens cleanly and holds every row that was
acknowledged (every ``write`` that returned), with no gap."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

RECORDER_SCRIPT = r'''
import asyncio
import sys
from datetime import UTC, datetime, timedelta

from krfeed.recorder import Recorder
from krfeed.records.kis import ExecutionNotice, ProgramTrading
from krfeed.sinks.sqlite import SQLiteSink

T0 = datetime(2025, 3, 14, 0, 0, tzinfo=UTC)


class AckedSQLiteSink(SQLiteSink):
    """Prints the number of rows acknowledged so far, after each write returns."""

    acked = 0

    async def write(self, batch):
        await super().write(batch)
        self.acked += len(batch)
        print(self.acked, flush=True)


async def synthetic():
    i = 0
    while True:
        at = T0 + timedelta(microseconds=i)
        if i % 5 == 0:  # an order event: keyed, INSERT OR IGNORE
            yield ExecutionNotice(received_at=at, item="hts_user01", order_no=str(i), fill_qty=i)
        else:
            yield ProgramTrading(received_at=at, item="005930", code="005930", sell_qty=i)
        i += 1
        if i % 50 == 0:
            await asyncio.sleep(0)


async def main():
    sink = AckedSQLiteSink("sqlite:///" + sys.argv[1])
    await Recorder(synthetic(), sink, batch_size=int(sys.argv[2]), batch_interval=10).run()


asyncio.run(main())
'''


def count_rows(db: Path) -> tuple[str, int, list[int]]:
    conn = sqlite3.connect(db)
    try:
        (check,) = conn.execute("PRAGMA integrity_check").fetchone()
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal"
        market = conn.execute("SELECT sell_qty FROM kis_program_trading ORDER BY rowid").fetchall()
        orders = conn.execute("SELECT fill_qty FROM kis_execution_notice ORDER BY rowid").fetchall()
    finally:
        conn.close()
    ids = sorted([r[0] for r in market] + [r[0] for r in orders])
    return check, len(ids), ids


@pytest.mark.parametrize(("batch_size", "kill_after"), [(200, 3000), (500, 10000), (37, 1500)])
def test_kill_9_loses_no_acknowledged_row(tmp_path: Path, batch_size: int, kill_after: int) -> None:
    script = tmp_path / "record.py"
    script.write_text(RECORDER_SCRIPT)
    db = tmp_path / "rec.db"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), str(batch_size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acked = 0
    deadline = time.monotonic() + 60
    try:
        while acked < kill_after:
            line = proc.stdout.readline()
            if not line:
                assert proc.stderr is not None
                pytest.fail(f"recorder exited early: {proc.stderr.read()}")
            acked = int(line)
            assert time.monotonic() < deadline, "recorder too slow"
        os.kill(proc.pid, signal.SIGKILL)  # mid-way: it keeps writing until the kill lands
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # what a reader sees after the crash (SQLite recovers the WAL on open)
    check, n, ids = count_rows(db)
    assert check == "ok"
    assert n >= acked
    assert ids == list(range(n))  # every row up to the last commit, no gap, no duplicate
    assert n % batch_size == 0  # whole batches only (filled by size): one transaction each
