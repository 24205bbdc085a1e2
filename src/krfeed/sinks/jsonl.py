"""JSON Lines sink: one JSON object per line, records and control events in arrival order.

``jsonl:///out.jsonl`` (relative), ``jsonl:////abs/out.jsonl``, ``jsonl:-`` (standard output).
Records are ``{"broker", "type", …fields}``, control events and decode errors
``{"event": "Disconnected", …}`` (see :mod:`krfeed.jsonout`): numbers as JSON numbers, times as
ISO 8601 with their offset.

``?rotate=daily`` writes ``out-YYYYMMDD.jsonl``, by the KST date of each item's receive time
(``at`` for control events), so a replay lands in the same files as the live recording.
Files are opened for appending; every ``write`` is flushed and fsync'ed before it returns
(standard output is flushed only). A write that fails part-way may be repeated whole by the
Recorder's retry: JSONL is at-least-once.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

from krfeed.events import Event
from krfeed.jsonout import encode_line
from krfeed.records.base import Record
from krfeed.sinks.base import Item
from krfeed.sinks.urls import SinkURLError, check_options, open_error, parse_path_url

KST = timezone(timedelta(hours=9), "KST")
T = TypeVar("T")


def item_time(item: Item) -> datetime:
    """When an item was received (control events: when they happened)."""
    if isinstance(item, Record):
        return item.received_at
    if isinstance(item, Event):
        return item.at
    return item.received_at or datetime.now(UTC)


def kst_date(item: Item) -> date:
    """The KST (trading) date of an item's receive time."""
    return item_time(item).astimezone(KST).date()


class JSONLSink:
    """Items as JSON lines into a file (optionally one per KST day) or standard output.

    ``rotate``: ``None`` or ``"daily"`` (also ``?rotate=daily``); ``fsync``: fsync files after
    every write (default True; ``?fsync=0`` to skip).
    """

    def __init__(self, url: str, *, rotate: str | None = None, fsync: bool | None = None) -> None:
        path, opts = parse_path_url(url, "jsonl")
        check_options(url, opts, {"rotate", "fsync"})
        self.url = url
        self.stdout = path == "-"
        self.path = Path(path) if not self.stdout else None
        rot = rotate if rotate is not None else opts.get("rotate") or None
        if rot not in (None, "daily", "none"):
            raise SinkURLError(f"{url!r}: rotate must be 'daily' (or omitted), not {rot!r}")
        self.rotate = rot == "daily"
        if self.rotate and self.stdout:
            raise SinkURLError(f"{url!r}: standard output cannot be rotated")
        if fsync is None:
            fsync = opts.get("fsync", "1").lower() not in ("0", "false", "no", "off")
        self.fsync = fsync
        self.rows_written = 0
        self._file: IO[bytes] | None = None
        self._file_day: date | None = None
        self._executor: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"JSONLSink({self.url!r})"

    def path_for(self, day: date | None) -> Path:
        """The file of ``day`` (the one file when not rotating)."""
        assert self.path is not None
        if not self.rotate or day is None:
            return self.path
        suffix = self.path.suffix or ".jsonl"
        stem = self.path.name[: -len(self.path.suffix)] if self.path.suffix else self.path.name
        return self.path.with_name(f"{stem}-{day:%Y%m%d}{suffix}")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError(f"{self!r} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="krfeed-jsonl")
        if self.path is not None and not self.rotate:
            try:
                await self._run(self._open_file, None)
            except OSError as e:
                self._executor.shutdown(wait=False)
                self._executor = None
                raise open_error("JSONL file", self.path, e) from None
            except BaseException:
                self._executor.shutdown(wait=False)
                self._executor = None
                raise

    async def write(self, batch: list[Item]) -> None:
        if batch:
            await self._run(self._write_sync, batch)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_file)
        finally:
            await asyncio.to_thread(executor.shutdown, True)

    # ---- writer thread ----

    def _open_file(self, day: date | None) -> IO[bytes]:
        self._close_file()
        path = self.path_for(day)
        if path.parent != Path():
            path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - kept open across writes
        self._file_day = day
        return self._file

    def _close_file(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                self._sync(f)
            finally:
                f.close()

    def _sync(self, f: IO[bytes]) -> None:
        f.flush()
        if self.fsync:
            os.fsync(f.fileno())

    def _write_sync(self, batch: list[Item]) -> None:
        if self.stdout:
            out = sys.stdout.buffer
            out.write(b"".join(encode_line(item) for item in batch))
            out.flush()
            self.rows_written += len(batch)
            return
        if not self.rotate:
            f = self._file or self._open_file(None)
            f.write(b"".join(encode_line(item) for item in batch))
            self._sync(f)
            self.rows_written += len(batch)
            return
        # consecutive runs of one day go to that day's file
        run: list[bytes] = []
        run_day: date | None = None
        for item in batch:
            day = kst_date(item)
            if day != run_day and run:
                self._append(run_day, run)
                run = []
            run_day = day
            run.append(encode_line(item))
        if run:
            self._append(run_day, run)
        if self._file is not None:
            self._sync(self._file)
        self.rows_written += len(batch)

    def _append(self, day: date | None, lines: list[bytes]) -> None:
        f = self._file
        if f is None or day != self._file_day:
            f = self._open_file(day)
        f.write(b"".join(lines))


__all__ = ["KST", "JSONLSink", "item_time", "kst_date"]
