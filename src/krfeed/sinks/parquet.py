"""Parquet sink: ``parquet:///DIR`` or ``parquet:////abs/DIR``; needs ``krfeed[parquet]``.

Layout (Hive-style partitions, readable with ``pyarrow.dataset`` / DuckDB / Polars)::

    DIR/date=2025-03-14/type=kis_program_trading/part-00000.parquet
    DIR/date=2025-03-14/type=krfeed_events/part-00000.parquet
    DIR/date=2025-03-14/type=krfeed_decode_errors/part-00000.parquet

``date`` is the KST date of each item's receive time; ``type`` the table name of
:mod:`krfeed.sinks.tables`. Columns are typed from the same table layouts: ``int64``,
``decimal128(38, 12)``, ``timestamp[us, tz=+09:00]`` for broker times (KST) and
``timestamp[us, tz=UTC]`` for ``received_at``, ``date32``, ``bool``, ``string`` (enums as their
value); each field's metadata carries its Korean name and wire key.

Rows are buffered and written as row groups of ``row_group_size`` rows into a hidden
``.part-NNNNN.parquet.inprogress`` file, which becomes ``part-NNNNN.parquet`` when it is closed:
after ``rotate_rows`` rows (default 100 000), when the KST date changes, and on ``close()``.
Readers only ever see complete files.

**Durability:** Parquet cannot be made durable batch by batch. ``write()`` returns (acknowledges)
once the batch is buffered; a file is durable (fsync'ed and renamed) only when it is closed. On
kill -9 or a power cut, everything not yet in a closed file — the open ``.inprogress`` files and
the buffer — is lost. Use the SQLite or JSONL sink (alongside, if you like) when every
acknowledged row must survive a crash.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from krfeed.events import Event
from krfeed.logs import get_logger
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.sinks.base import Item
from krfeed.sinks.jsonl import kst_date
from krfeed.sinks.tables import (
    DECODE_ERROR_COLUMNS,
    DECODE_ERRORS_TABLE,
    EVENT_COLUMNS,
    EVENTS_TABLE,
    Column,
    decode_error_row,
    event_row,
    table_of,
)
from krfeed.sinks.urls import SinkURLError, check_options, open_error, parse_path_url

log = get_logger("krfeed.sinks.parquet")
T = TypeVar("T")

DECIMAL_SCALE = 12
_DECIMAL = pa.decimal128(38, DECIMAL_SCALE)
_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
_PART = re.compile(r"^\.?part-(\d+)\.parquet(\.inprogress)?$")
_UTC_COLUMNS = frozenset({"received_at", "at"})


def arrow_type(column: Column) -> Any:
    """The Arrow type of a table column."""
    kind = column.kind
    if kind == "timestamp":
        return pa.timestamp("us", tz="UTC" if column.name in _UTC_COLUMNS else "+09:00")
    return {
        "text": pa.string(),
        "int": pa.int64(),
        "decimal": _DECIMAL,
        "date": pa.date32(),
        "bool": pa.bool_(),
    }[kind]


def _text(v: Any) -> Any:
    if v is None or type(v) is str:
        return v
    return v.value if isinstance(v, Enum) else str(v)


_warned_scale = False


def _decimal(v: Any) -> Any:
    global _warned_scale
    if v is None:
        return None
    d = v if isinstance(v, Decimal) else Decimal(v)
    exp = d.as_tuple().exponent
    if isinstance(exp, int) and exp < -DECIMAL_SCALE:
        if not _warned_scale:
            _warned_scale = True
            log.warning("a decimal with more than %d places was rounded: %s", DECIMAL_SCALE, d)
        d = d.quantize(_QUANTUM)
    return d


@dataclass(slots=True)
class _Layout:
    name: str
    schema: Any
    row: Callable[[Any], tuple[Any, ...]]
    adapters: tuple[Callable[[Any], Any] | None, ...]


@dataclass(slots=True)
class _Part:
    """The open file of one (date, table) partition."""

    layout: _Layout
    day: date
    final: Path
    temp: Path
    buffer: list[tuple[Any, ...]] = field(default_factory=list)
    rows_in_file: int = 0
    writer: Any = None


def _layout(name: str, columns: Sequence[Column], row: Callable[[Any], tuple[Any, ...]]) -> _Layout:
    fields = []
    for c in columns:
        meta = {}
        if c.korean:
            meta["korean"] = c.korean
        if c.wire:
            meta["wire"] = c.wire
        fields.append(pa.field(c.name, arrow_type(c), nullable=True, metadata=meta or None))
    adapters = tuple(
        _text if c.kind == "text" else _decimal if c.kind == "decimal" else None for c in columns
    )
    return _Layout(name, pa.schema(fields, metadata={"table": name}), row, adapters)


class ParquetSink:
    """Items into a date/type-partitioned Parquet directory (see the module doc: not durable
    per batch).

    ``rotate_rows``: rows per file (default 100 000); ``row_group_size``: rows buffered before
    a row group is written (default 10 000, bounding memory per open table);
    ``compression``: ``zstd`` (default), ``snappy``, ``gzip``, ``none``. Each may also be given
    in the URL query (``parquet:///data?rotate_rows=50000``).
    """

    def __init__(
        self,
        url: str,
        *,
        rotate_rows: int | None = None,
        row_group_size: int | None = None,
        compression: str | None = None,
    ) -> None:
        path, opts = parse_path_url(url, "parquet")
        check_options(url, opts, {"rotate_rows", "row_group_size", "compression"})
        self.url = url
        self.directory = Path(path)
        try:
            self.rotate_rows = int(rotate_rows or opts.get("rotate_rows") or 100_000)
            self.row_group_size = int(row_group_size or opts.get("row_group_size") or 10_000)
        except ValueError:
            raise SinkURLError(f"{url!r}: rotate_rows and row_group_size are numbers") from None
        if self.rotate_rows < 1 or self.row_group_size < 1:
            raise SinkURLError(f"{url!r}: rotate_rows and row_group_size must be positive")
        self.row_group_size = min(self.row_group_size, self.rotate_rows)
        self.compression = (compression or opts.get("compression") or "zstd").lower()
        if self.compression not in ("zstd", "snappy", "gzip", "none"):
            raise SinkURLError(f"{url!r}: compression must be zstd, snappy, gzip or none")
        self.rows_written = 0  # acknowledged (buffered or in files)
        self.rows_durable = 0  # in closed files
        self.files_closed: list[Path] = []
        self._layouts: dict[tuple[str, str], _Layout] = {}
        self._parts: dict[str, _Part] = {}  # table name -> its open part
        self._next_part: dict[Path, int] = {}
        self._executor: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"ParquetSink({self.url!r})"

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError(f"{self!r} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="krfeed-parquet")
        try:
            await self._run(self.directory.mkdir, 0o777, True, True)
        except OSError as e:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise open_error("folder", self.directory, e) from None
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def write(self, batch: list[Item]) -> None:
        if batch:
            await self._run(self._write_sync, batch)

    async def flush(self) -> None:
        """Close every open file now (they become durable, visible ``part-N.parquet`` files)."""
        await self._run(self._close_all)

    async def close(self) -> None:
        executor = self._executor
        if executor is None:
            return
        try:
            await self._run(self._close_all)
        finally:
            self._executor = None
            await asyncio.to_thread(executor.shutdown, True)

    # ---- writer thread ----

    def _layout_of(self, item: Item) -> _Layout:
        if isinstance(item, Record):
            key = (item.broker, item.type)
            lay = self._layouts.get(key)
            if lay is None:
                t = table_of(item)
                lay = self._layouts[key] = _layout(t.name, t.columns, t.row)
            return lay
        if isinstance(item, Event):
            key = ("", EVENTS_TABLE)
            lay = self._layouts.get(key)
            if lay is None:
                lay = self._layouts[key] = _layout(EVENTS_TABLE, EVENT_COLUMNS, event_row)
            return lay
        if isinstance(item, DecodeError):
            key = ("", DECODE_ERRORS_TABLE)
            lay = self._layouts.get(key)
            if lay is None:
                lay = self._layouts[key] = _layout(
                    DECODE_ERRORS_TABLE,
                    DECODE_ERROR_COLUMNS,
                    decode_error_row,
                )
            return lay
        raise TypeError(f"cannot record {type(item).__name__} in Parquet")

    def _write_sync(self, batch: list[Item]) -> None:
        for item in batch:
            lay = self._layout_of(item)
            day = kst_date(item)
            part = self._parts.get(lay.name)
            if part is not None and part.day != day:
                self._close(part)
                part = None
            if part is None:
                part = self._open(lay, day)
            part.buffer.append(lay.row(item))
            n = len(part.buffer)
            if n >= self.row_group_size or part.rows_in_file + n >= self.rotate_rows:
                self._flush(part)
                if part.rows_in_file >= self.rotate_rows:
                    self._close(part)
        self.rows_written += len(batch)

    def _open(self, lay: _Layout, day: date) -> _Part:
        d = self.directory / f"date={day.isoformat()}" / f"type={lay.name}"
        n = self._next_part.get(d)
        if n is None:
            d.mkdir(parents=True, exist_ok=True)
            n = 0
            for p in d.iterdir():
                m = _PART.match(p.name)
                if m:
                    n = max(n, int(m.group(1)) + 1)
                    if m.group(2):
                        log.warning("%s: left by an interrupted recording (its rows are lost)", p)
        self._next_part[d] = n + 1
        part = _Part(lay, day, d / f"part-{n:05d}.parquet", d / f".part-{n:05d}.parquet.inprogress")
        self._parts[lay.name] = part
        return part

    def _flush(self, part: _Part) -> None:
        if not part.buffer:
            return
        lay = part.layout
        rows = part.buffer
        arrays = []
        for i, (f, adapt) in enumerate(zip(lay.schema, lay.adapters, strict=True)):
            values = [r[i] for r in rows]
            if adapt is not None:
                values = [adapt(v) for v in values]
            arrays.append(pa.array(values, type=f.type))
        table = pa.Table.from_arrays(arrays, schema=lay.schema)
        if part.writer is None:
            part.writer = pq.ParquetWriter(str(part.temp), lay.schema, compression=self.compression)
        part.writer.write_table(table)
        part.buffer = []
        part.rows_in_file += len(rows)

    def _close(self, part: _Part) -> None:
        self._flush(part)
        if part.writer is None:
            self._parts.pop(part.layout.name, None)
            return
        part.writer.close()
        self._parts.pop(part.layout.name, None)
        fd = os.open(part.temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part.temp, part.final)
        _fsync_dir(part.final.parent)
        self.rows_durable += part.rows_in_file
        self.files_closed.append(part.final)

    def _close_all(self) -> None:
        errors: list[BaseException] = []
        for part in list(self._parts.values()):
            try:
                self._close(part)
            except Exception as e:  # close the others, then report
                errors.append(e)
        if errors:
            raise errors[0]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["DECIMAL_SCALE", "ParquetSink", "arrow_type"]
