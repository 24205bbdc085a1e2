"""The embedded default sink: one SQLite database, one table per record type.

``sqlite:///krfeed.db`` (relative), ``sqlite:////abs/path.db``, ``sqlite:///:memory:`` (tests).

- Tables come from :mod:`krfeed.sinks.tables`, created on first use (and missing columns added
  to an existing table): ``INTEGER`` for won/shares/counts, ``NUMERIC`` for decimals (SQLite
  keeps up to 15 significant digits: read them back with ``Decimal(str(value))``), ``TEXT``
  ISO-8601 for times with their offset (broker times in KST as the record carries them,
  ``received_at`` in UTC with microseconds), ``TEXT`` ``YYYY-MM-DD`` dates, ``INTEGER`` 0/1
  booleans, enums as their value, ``NULL`` for empty fields.
- ``krfeed_events`` holds control events (at, broker, session, event, JSON detail) and
  ``krfeed_decode_errors`` the frames that could not be decoded (received_at, broker, type,
  reason, raw).
- WAL mode, so other processes read while recording; one transaction per ``write`` call;
  ``synchronous=FULL`` by default, so a batch is on disk when ``write`` returns and survives
  kill -9 and power loss (``?synchronous=normal``: survives kill -9, not a power cut).
- An index on ``(item, received_at)`` in every record table. Account-event tables (orders,
  fills) have a unique index on their identifying columns (``NULL`` counted as ``''``) and are
  written with ``INSERT OR IGNORE``, so retries and replays never duplicate them.
- All database work runs on one dedicated thread; the event loop never waits on disk.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from krfeed.events import Event
from krfeed.jsonout import dumps
from krfeed.logs import get_logger
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.schema.convert import KST
from krfeed.sinks.base import Item
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

log = get_logger("krfeed.sinks.sqlite")
T = TypeVar("T")

SQL_TYPES = {
    "text": "TEXT",
    "int": "INTEGER",
    "decimal": "NUMERIC",
    "timestamp": "TEXT",
    "date": "TEXT",
    "bool": "INTEGER",
}
_SYNCHRONOUS = ("off", "normal", "full", "extra")


def _decimal(v: Any) -> Any:
    # NUMERIC affinity stores the text as INTEGER or REAL, whichever is exact.
    return str(v) if isinstance(v, Decimal) else v


#: Broker times (KST) -> their ISO text: a record carries up to a dozen, they repeat all day
#: (a second is shared by every record in it), and isoformat() costs a microsecond.
_KST_TEXT: dict[datetime, str] = {}
_KST_TEXT_MAX = 100_000


def _timestamp(v: Any) -> Any:
    if isinstance(v, datetime):
        if v.tzinfo is not KST:  # equal instants in other zones hash alike: not cached
            return v.isoformat()
        text = _KST_TEXT.get(v)
        if text is None:
            if len(_KST_TEXT) >= _KST_TEXT_MAX:
                _KST_TEXT.clear()
            text = _KST_TEXT[v] = v.isoformat()
        return text
    return v


def _utc_timestamp(v: Any) -> Any:
    # fixed width, so text order is time order (isoformat() alone omits zero microseconds)
    if isinstance(v, datetime):
        return v.isoformat() if v.microsecond else v.isoformat(timespec="microseconds")
    return v


def _date(v: Any) -> Any:
    return v.isoformat() if isinstance(v, date) else v


# Values of the other kinds bind as they are: int, bool (an int: 0/1), str and the StrEnums
# (a str whose text is the enum's value).
_ADAPT: dict[str, Callable[[Any], Any]] = {
    "decimal": _decimal,
    "timestamp": _timestamp,
    "date": _date,
}


def _adapter(columns: Sequence[Column]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """Record values -> SQLite values, touching only the columns that need converting."""
    convert = tuple(
        (i, _utc_timestamp if c.name in ("received_at", "at") else _ADAPT[c.kind])
        for i, c in enumerate(columns)
        if c.kind in _ADAPT
    )

    def adapt(values: tuple[Any, ...]) -> tuple[Any, ...]:
        row = list(values)
        for i, f in convert:
            v = row[i]
            if v is not None:
                row[i] = f(v)
        return tuple(row)

    return adapt


def _record_row(columns: Sequence[Column]) -> Callable[[Any], tuple[Any, ...]]:
    """Compiled per record table: a record's SQLite row in one call, straight from its
    attributes (what ``table.row`` and ``_adapter`` do in two, for control events)."""
    parts = []
    for c in columns:
        attr = f"r.{c.name}"
        if c.name == "received_at":
            parts.append(f"utc_timestamp({attr})")
        elif c.name == "extra":
            parts.append(f"dumps(x) if (x := {attr}) else None")
        elif c.kind == "timestamp":
            parts.append(f"timestamp({attr})")
        elif c.kind == "decimal":
            parts.append(f"str(x) if isinstance(x := {attr}, Decimal) else x")
        elif c.kind == "date":
            parts.append(f"x.isoformat() if isinstance(x := {attr}, date) else x")
        else:
            parts.append(attr)
    src = "def row(r):\n    return (\n" + "".join(f"        {p},\n" for p in parts) + "    )\n"
    ns: dict[str, Any] = {
        "dumps": dumps,
        "Decimal": Decimal,
        "date": date,
        "timestamp": _timestamp,
        "utc_timestamp": _utc_timestamp,
    }
    exec(compile(src, "<krfeed sqlite row>", "exec"), ns)
    row: Callable[[Any], tuple[Any, ...]] = ns["row"]
    return row


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Prepared:
    """What writing rows of one table needs: the INSERT statement and ``row(item)``, the
    item's values as SQLite takes them."""

    __slots__ = ("insert", "row")

    def __init__(self, insert: str, row: Callable[[Any], tuple[Any, ...]]) -> None:
        self.insert = insert
        self.row = row


class SQLiteSink:
    """Records, control events and decode errors into one SQLite database (see module doc).

    ``synchronous``: ``full`` (default), ``normal``, ``off``; ``busy_timeout``: seconds to wait
    for a lock held by another connection before a write fails (and is retried by the
    Recorder). Both may also be given in the URL query.
    """

    def __init__(
        self,
        url: str,
        *,
        synchronous: str | None = None,
        busy_timeout: float | None = None,
    ) -> None:
        path, opts = parse_path_url(url, "sqlite")
        check_options(url, opts, {"synchronous", "busy_timeout"})
        self.url = url
        self.path = path
        sync = (synchronous or opts.get("synchronous") or "full").lower()
        if sync not in _SYNCHRONOUS:
            raise SinkURLError(f"{url!r}: synchronous must be one of {', '.join(_SYNCHRONOUS)}")
        self.synchronous = sync
        try:
            self.busy_timeout = float(
                busy_timeout if busy_timeout is not None else opts.get("busy_timeout", 5.0)
            )
        except ValueError:
            raise SinkURLError(f"{url!r}: busy_timeout must be a number of seconds") from None
        self.rows_written = 0
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._prepared: dict[str, _Prepared] = {}
        self._records: dict[tuple[str, str], _Prepared] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteSink({self.url!r})"

    # ---- the database thread ----

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError(f"{self!r} is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args))

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._closed = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="krfeed-sqlite")
        try:
            await self._run(self._open_sync)
        except (sqlite3.Error, OSError) as e:
            self._executor.shutdown(wait=False)
            self._executor = None
            if isinstance(e, sqlite3.DatabaseError) and "not a database" in str(e):
                raise SinkURLError(
                    f"cannot open the SQLite database {os.path.abspath(self.path)}: "
                    "the file is not an SQLite database"
                ) from None
            raise open_error("SQLite database", self.path, e) from None
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def write(self, batch: list[Item]) -> None:
        if not batch:
            return
        await self._run(self._write_sync, batch)

    async def close(self) -> None:
        if self._executor is None or self._closed:
            return
        self._closed = True
        executor = self._executor
        try:
            await self._run(self._close_sync)
        finally:
            self._executor = None
            await asyncio.to_thread(executor.shutdown, True)

    # ---- synchronous parts (database thread only) ----

    def _open_sync(self) -> None:
        # Another writer opening the same file at the same moment (two --shard collectors)
        # holds the lock that switching to WAL needs, and SQLite does not wait for it.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                self._open_once()
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)

    def _open_once(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal" and self.path != ":memory:":
                log.warning("%s: journal_mode is %s, not WAL", self.path, mode)
            conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            self._create(conn, EVENTS_TABLE, EVENT_COLUMNS, ())
            self._create(conn, DECODE_ERRORS_TABLE, DECODE_ERROR_COLUMNS, ())
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {_q(EVENTS_TABLE + '_at')} ON {_q(EVENTS_TABLE)} (at)"
            )
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._prepared = {
            EVENTS_TABLE: self._prepare(EVENTS_TABLE, EVENT_COLUMNS, event_row, False),
            DECODE_ERRORS_TABLE: self._prepare(
                DECODE_ERRORS_TABLE,
                DECODE_ERROR_COLUMNS,
                decode_error_row,
                False,
            ),
        }

    @staticmethod
    def _prepare(
        name: str,
        columns: Sequence[Column],
        values: Callable[[Any], tuple[Any, ...]] | None,
        ignore_duplicates: bool,
    ) -> _Prepared:
        """``values(item)``: the item's values in column order, to be adapted; None for a
        record table (its rows come from a compiled :func:`_record_row`)."""
        cols = ", ".join(_q(c.name) for c in columns)
        marks = ", ".join("?" * len(columns))
        verb = "INSERT OR IGNORE" if ignore_duplicates else "INSERT"
        insert = f"{verb} INTO {_q(name)} ({cols}) VALUES ({marks})"
        if values is None:
            return _Prepared(insert, _record_row(columns))
        adapt = _adapter(columns)
        get = values
        return _Prepared(insert, lambda item: adapt(get(item)))

    @staticmethod
    def _create(
        conn: sqlite3.Connection, name: str, columns: Sequence[Column], key: Sequence[str]
    ) -> None:
        defs = ", ".join(f"{_q(c.name)} {SQL_TYPES[c.kind]}" for c in columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_q(name)} ({defs})")
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({_q(name)})")}
        for c in columns:
            if c.name not in have:  # a table recorded by an older krfeed
                conn.execute(f"ALTER TABLE {_q(name)} ADD COLUMN {_q(c.name)} {SQL_TYPES[c.kind]}")
        if key:
            expr = ", ".join(f"ifnull({_q(k)}, '')" for k in key)
            index = _q(name + "_key")
            conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {_q(name)} ({expr})")

    def _table(self, conn: sqlite3.Connection, record: Record) -> _Prepared:
        prep = self._records.get((record.broker, record.type))
        if prep is None:
            table = table_of(record)
            self._create(conn, table.name, table.columns, table.key)
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {_q(table.name + '_item_time')} "
                f"ON {_q(table.name)} (item, received_at)"
            )
            prep = self._prepare(table.name, table.columns, None, bool(table.key))
            self._records[(record.broker, record.type)] = prep
        return prep

    def _write_sync(self, batch: list[Item]) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"{self!r} is closed")
        groups: dict[str, tuple[_Prepared, list[tuple[Any, ...]]]] = {}
        for item in batch:
            if isinstance(item, Record):
                name = item.broker + ":" + item.type
                group = groups.get(name)
                if group is None:
                    group = groups[name] = (self._table(conn, item), [])
            elif isinstance(item, Event):
                group = groups.get(EVENTS_TABLE)
                if group is None:
                    group = groups[EVENTS_TABLE] = (self._prepared[EVENTS_TABLE], [])
            elif isinstance(item, DecodeError):
                group = groups.get(DECODE_ERRORS_TABLE)
                if group is None:
                    prep = self._prepared[DECODE_ERRORS_TABLE]
                    group = groups[DECODE_ERRORS_TABLE] = (prep, [])
            else:
                raise TypeError(f"cannot record {type(item).__name__} in SQLite")
            prep, rows = group
            rows.append(prep.row(item))
        conn.execute("BEGIN IMMEDIATE")
        try:
            for prep, rows in groups.values():
                conn.executemany(prep.insert, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.rows_written += len(batch)

    def _close_sync(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # fold the WAL back into the database so a copied .db file is complete
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:  # another reader holds it: the WAL stays, nothing is lost
            log.debug("%s: checkpoint on close skipped: %s", self.path, e)
        finally:
            conn.close()


__all__ = ["SQL_TYPES", "SQLiteSink"]
