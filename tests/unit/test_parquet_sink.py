"""The Parquet sink: typed columns, date/type partitions, files closed at rotation and on close."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import msgspec
import pytest
from recording_samples import RECEIVED_AT, kis_records, kiwoom_records

from krfeed.events import Disconnected
from krfeed.protocol.messages import DecodeError
from krfeed.sinks import open_sink
from krfeed.sinks.tables import table_of

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from krfeed.sinks.parquet import ParquetSink  # noqa: E402 - needs pyarrow

DAY = "date=2025-03-14"


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def plain(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v


async def test_typed_columns_round_trip(tmp_path: Path) -> None:
    records = kiwoom_records() + kis_records()
    ev = Disconnected(broker="kis", session="kis#1", reason="connection lost", at=RECEIVED_AT)
    err = DecodeError(broker="kiwoom", raw="{", reason="not JSON", received_at=RECEIVED_AT)
    sink = open_sink(f"parquet:///{tmp_path}")
    assert isinstance(sink, ParquetSink)
    await sink.open()
    await sink.write([*records, ev, err])
    assert sink.rows_written == len(records) + 2
    assert not any(f.endswith(".parquet") for f in files(tmp_path))  # not before close
    await sink.close()
    assert sink.rows_durable == len(records) + 2
    for rec in records:
        t = table_of(rec)
        path = tmp_path / DAY / f"type={t.name}" / "part-00000.parquet"
        table = pq.read_table(path)
        assert table.column_names == [c.name for c in t.columns]
        (row,) = table.to_pylist()
        for col, want in zip(t.columns, t.row(rec), strict=True):
            got = row[col.name]
            assert got == plain(want), (t.name, col.name, got, want)
            if want is not None and col.kind == "timestamp":
                assert got.utcoffset() == want.utcoffset()
    trade = pq.read_table(tmp_path / DAY / "type=kis_trade" / "part-00000.parquet")
    schema = trade.schema
    assert schema.field("received_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("time").type == pa.timestamp("us", tz="+09:00")
    assert schema.field("cumulative_value").type == pa.int64()
    assert schema.field("change_rate").type == pa.decimal128(38, 12)
    assert schema.field("business_date").type == pa.date32()
    assert schema.field("halted").type == pa.bool_()
    assert schema.field("change_sign").type == pa.string()
    assert schema.field("change_rate").metadata[b"korean"] == "전일대비율".encode()
    assert trade.column("change_rate").to_pylist() == [Decimal("-0.81")]
    assert trade.column("change_sign").to_pylist() == ["down"]
    events = pq.read_table(tmp_path / DAY / "type=krfeed_events" / "part-00000.parquet")
    assert events.to_pylist() == [
        {
            "at": RECEIVED_AT,
            "broker": "kis",
            "session": "kis#1",
            "event": "Disconnected",
            "detail": '{"reason":"connection lost","fatal":false}',
        }
    ]
    errors = pq.read_table(tmp_path / DAY / "type=krfeed_decode_errors" / "part-00000.parquet")
    assert errors.to_pylist() == [
        {
            "received_at": RECEIVED_AT,
            "broker": "kiwoom",
            "type": "",
            "reason": "not JSON",
            "raw": "{",
        }
    ]


async def test_rotation_by_rows_and_by_date(tmp_path: Path) -> None:
    pgm0 = kis_records()[1]
    day1 = [msgspec.structs.replace(pgm0, item=f"{i:06d}") for i in range(12)]
    late = datetime(2025, 3, 14, 15, 0, 1, tzinfo=UTC)  # 00:00:01 KST on the 15th
    day2 = [msgspec.structs.replace(pgm0, received_at=late)]
    sink = ParquetSink(f"parquet:///{tmp_path}", rotate_rows=5, row_group_size=2)
    await sink.open()
    await sink.write(day1)
    part = f"{DAY}/type=kis_program_trading"
    assert files(tmp_path) == [
        f"{part}/.part-00002.parquet.inprogress",  # 2 rows, not yet visible
        f"{part}/part-00000.parquet",
        f"{part}/part-00001.parquet",
    ]
    await sink.write(day2)  # the date changes: the open file of the 14th is closed
    assert f"{part}/part-00002.parquet" in files(tmp_path)
    await sink.close()
    assert files(tmp_path) == [
        f"{part}/part-00000.parquet",
        f"{part}/part-00001.parquet",
        f"{part}/part-00002.parquet",
        "date=2025-03-15/type=kis_program_trading/part-00000.parquet",
    ]
    counts = [pq.read_table(tmp_path / f).num_rows for f in files(tmp_path)]
    assert counts == [5, 5, 2, 1]
    items = [
        r["item"] for f in files(tmp_path)[:3] for r in pq.read_table(tmp_path / f).to_pylist()
    ]
    assert items == [f"{i:06d}" for i in range(12)]  # in order
    # a second recording into the same directory continues the numbering
    again = ParquetSink(f"parquet:///{tmp_path}")
    await again.open()
    await again.write(day1[:1])
    await again.close()
    assert (tmp_path / part / "part-00003.parquet").exists()


async def test_whole_directory_reads_as_a_dataset(tmp_path: Path) -> None:
    ds = pytest.importorskip("pyarrow.dataset")
    pgm0 = kis_records()[1]
    sink = ParquetSink(f"parquet:///{tmp_path}", rotate_rows=3)
    await sink.open()
    await sink.write([msgspec.structs.replace(pgm0, item=f"{i:06d}") for i in range(7)])
    await sink.close()
    dataset = ds.dataset(tmp_path / DAY / "type=kis_program_trading", format="parquet")
    assert dataset.count_rows() == 7
