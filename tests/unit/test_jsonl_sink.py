"""The JSONL sink: one JSON object per line, fsync'ed per batch, optional daily (KST) files."""

from __future__ import annotations

import io
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from recording_samples import RECEIVED_AT, kis_records, kiwoom_records

from krfeed.events import Disconnected
from krfeed.jsonout import dumps
from krfeed.protocol.messages import DecodeError
from krfeed.sinks import SinkError, open_sink
from krfeed.sinks.jsonl import JSONLSink


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def write_all(url: str, *batches: list[Any]) -> JSONLSink:
    sink = open_sink(url)
    assert isinstance(sink, JSONLSink)
    await sink.open()
    for b in batches:
        await sink.write(b)
    await sink.close()
    return sink


async def test_records_events_and_errors_one_per_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    records = kiwoom_records() + kis_records()
    err = DecodeError(
        broker="kiwoom", raw="{", reason="frame is not valid JSON", received_at=RECEIVED_AT
    )
    ev = Disconnected(broker="kis", session="kis#1", reason="connection lost", at=RECEIVED_AT)
    await write_all(f"jsonl:///{out}", [*records[:10], ev], [*records[10:], err])
    got = lines(out)
    items: list[Any] = [*records[:10], ev, *records[10:], err]
    assert len(got) == len(items)
    assert out.read_text(encoding="utf-8").splitlines() == [dumps(i) for i in items]
    notice = got[len(records)]  # KIS H0STCNI0 (after the event)
    assert notice["broker"] == "kis" and notice["type"] == "H0STCNI0"
    assert notice["time"] == "2025-03-14T10:15:23+09:00"
    assert notice["received_at"] == "2025-03-14T03:00:00.123456Z"
    assert (
        notice["side"] == "buy" and notice["popup"] is True and notice["original_order_no"] is None
    )
    trade = got[len(records) - 2]
    assert trade["change_rate"] == -0.81  # a JSON number
    assert got[10] == {
        "event": "Disconnected",
        "broker": "kis",
        "session": "kis#1",
        "at": "2025-03-14T03:00:00.123456Z",
        "reason": "connection lost",
        "fatal": False,
    }
    assert got[-1]["event"] == "DecodeError" and got[-1]["raw"] == "{"


async def test_appends_and_fsyncs_every_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "sub" / "out.jsonl"
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    recs = kis_records()
    await write_all(f"jsonl:///{out}", recs, recs)
    assert len(synced) >= 2
    await write_all(f"jsonl:///{out}", recs)  # a second recording appends
    assert len(lines(out)) == 9


async def test_daily_rotation_by_kst_date(tmp_path: Path) -> None:
    base = tmp_path / "feed.jsonl"
    (rec,) = kis_records()[1:2]
    before = msgspec.structs.replace(rec, received_at=datetime(2025, 3, 14, 14, 59, 59, tzinfo=UTC))
    after = msgspec.structs.replace(rec, received_at=datetime(2025, 3, 14, 15, 0, 0, tzinfo=UTC))
    ev = Disconnected(
        broker="kis", session="kis#1", reason="x", at=datetime(2025, 3, 15, 1, tzinfo=UTC)
    )
    await write_all(f"jsonl:///{base}?rotate=daily", [rec, before, after], [ev])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "feed-20250314.jsonl",
        "feed-20250315.jsonl",
    ]
    day1 = lines(tmp_path / "feed-20250314.jsonl")
    day2 = lines(tmp_path / "feed-20250315.jsonl")
    assert [d["received_at"] for d in day1] == [
        "2025-03-14T03:00:00.123456Z",
        "2025-03-14T14:59:59Z",
    ]
    assert [d.get("received_at", d.get("at")) for d in day2] == [
        "2025-03-14T15:00:00Z",
        "2025-03-15T01:00:00Z",
    ]


async def test_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buf, encoding="utf-8"))
    recs = kis_records()
    await write_all("jsonl:-", recs)
    assert buf.getvalue().decode().splitlines() == [dumps(r) for r in recs]


def test_bad_urls() -> None:
    with pytest.raises(SinkError, match="rotate"):
        JSONLSink("jsonl:///x.jsonl?rotate=hourly")
    with pytest.raises(SinkError, match="standard output"):
        JSONLSink("jsonl:-?rotate=daily")
    with pytest.raises(SinkError, match="unknown option"):
        JSONLSink("jsonl:///x.jsonl?compress=1")


def test_where_names_the_files_written(tmp_path: Path) -> None:
    from krfeed.sinks import where

    assert where(f"jsonl:///{tmp_path}/day.jsonl") == f"{tmp_path}/day.jsonl"
    # rotated daily: one file a day, named by the pattern (the summary said day.jsonl)
    assert where(f"jsonl:///{tmp_path}/day.jsonl?rotate=daily") == f"{tmp_path}/day-YYYYMMDD.jsonl"
    assert where("jsonl:-") == "standard output"
    assert where(f"sqlite:///{tmp_path}/x.db") == f"{tmp_path}/x.db"
