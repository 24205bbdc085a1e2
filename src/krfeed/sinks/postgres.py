"""PostgreSQL sink (``postgresql://user@host:5432/db?schema=krfeed``, extra ``krfeed[postgres]``).

One table per record type in the chosen schema (default ``krfeed``), created on first use from
the catalog (:mod:`krfeed.sinks.tables`): ``record_id uuid`` primary key, ``broker``,
``received_at timestamptz``, ``item``, then every field with a typed column (bigint, numeric,
timestamptz, date, boolean, text), an index on ``(item, received_at)`` and the Korean names as
column comments. Control events go to ``krfeed_events`` (fields beyond broker/session/at in a
``detail`` jsonb), decode errors with their raw frame to ``krfeed_decode_errors`` (the layouts
shared with the other table sinks, :mod:`krfeed.sinks.tables`). With the TimescaleDB
extension installed in the database, market-data tables become hypertables on ``received_at``.

Idempotency: ``record_id`` is the deterministic id of the item
(:func:`krfeed.sinks.payload.item_id`), and account-event tables (Kiwoom ``00``, KIS
``H0STCNI0``/``H0STCNI9``) also have a unique index over
:attr:`Table.key <krfeed.sinks.tables.Table.key>` (``NULLS NOT DISTINCT``). Every batch is
one transaction: rows are COPYed (binary) into per-connection temporary staging tables, then
``INSERT … SELECT … ON CONFLICT DO NOTHING`` moves them into the real tables. A batch written
twice — a retry after a commit whose acknowledgement was lost, a replayed journal, a redelivered
NATS message — is stored once.

Opening (:meth:`PostgresSink.open`) retries a server that cannot be reached for at most
``open_timeout`` seconds (default 10), then raises :class:`~krfeed.sinks.SinkUnavailable`; a
refused login or a missing database raises :class:`~krfeed.sinks.SinkError` at once, each with
one sentence saying which.

Connection failures (server restart, ``pg_terminate_backend``, a network drop) roll the whole
transaction back; ``write`` reconnects through the pool and retries the whole batch for up to
``retry_for`` seconds before raising (the Recorder then retries it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from krfeed.events import Event
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.sinks.base import Item
from krfeed.sinks.payload import encode_with_id
from krfeed.sinks.tables import (
    DECODE_ERROR_COLUMNS,
    DECODE_ERRORS_TABLE,
    EVENT_COLUMNS,
    EVENTS_TABLE,
    Table,
    decode_error_row,
    event_row,
    table_for,
)
from krfeed.sinks.urls import redact_url

_SQL_TYPE = {
    "text": "text",
    "int": "bigint",
    "decimal": "numeric",
    "timestamp": "timestamptz",
    "date": "date",
    "bool": "boolean",
}
# Typed stand-ins for NULL in the unique key index on servers older than 15 (no NULLS NOT
# DISTINCT). '' is never stored as text: decoding turns '' into NULL.
_NULL_STANDIN = {
    "text": "''",
    "int": "(-9223372036854775808)::bigint",
    "decimal": "'NaN'::numeric",
    "timestamp": "'-infinity'::timestamptz",
    "date": "'-infinity'::date",
}

_EVENT_COLUMNS = ("record_id", *(c.name for c in EVENT_COLUMNS))
_ERROR_COLUMNS = ("record_id", *(c.name for c in DECODE_ERROR_COLUMNS))
_NOT_NULL = frozenset({"received_at", "item"})
_DDL_LOCK = 0x6B72_6665_6564  # pg_advisory_xact_lock key serialising krfeed's DDL ("krfeed")

#: Errors after which the batch is retried on a fresh connection.
RETRYABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # 08xxx, connection lost / does not exist
    asyncpg.exceptions.OperatorInterventionError,  # 57xxx: admin shutdown, cannot connect now
    asyncpg.exceptions.TransactionRollbackError,  # 40xxx: serialization failure, deadlock
    asyncpg.exceptions.InsufficientResourcesError,  # 53xxx: too many connections
    asyncpg.exceptions.UndefinedTableError,  # staging/real table vanished: recreated on retry
    asyncpg.InterfaceError,  # connection closed under us
    asyncpg.exceptions.InternalClientError,  # protocol state after a backend was killed
    OSError,  # refused, reset, unreachable
    TimeoutError,
)

T = TypeVar("T")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(slots=True)
class PostgresStats:
    batches: int = 0
    rows: int = 0  # rows newly stored
    duplicates: int = 0  # rows already present (retries, replays, redeliveries)
    retries: int = 0  # batch attempts that failed and were retried
    nul_replaced: int = 0  # batches stored with NUL characters replaced by U+FFFD
    last_error: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class _Target:
    """Where one group of a batch goes: the table (staged as ``stage_<table>``) and columns."""

    table: str
    columns: tuple[str, ...]
    table_def: Table | None = None  # None for control_events / decode_errors


_EVENTS_TARGET = _Target(EVENTS_TABLE, _EVENT_COLUMNS)
_ERRORS_TARGET = _Target(DECODE_ERRORS_TABLE, _ERROR_COLUMNS)


@cache
def _record_target(broker: str, code: str) -> _Target:
    t = table_for(broker, code)
    return _Target(t.name, ("record_id", "broker", *(c.name for c in t.columns)), t)


class PostgresSink:
    """Stores batches in PostgreSQL, one transaction per batch, idempotently.

    ``url``: a libpq-style URL; ``schema`` (query parameter or keyword) names the schema
    (created if missing, default ``krfeed``); other query parameters go to asyncpg (e.g.
    ``application_name``). ``retry_for``: seconds during which a batch that failed on a
    connection error is retried before ``write`` raises. ``open_timeout``: seconds
    :meth:`open` tries to reach the server.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        retry_for: float = 30.0,
        open_timeout: float = 10.0,
        pool_size: int = 2,
        command_timeout: float = 60.0,
        hypertables: bool = True,
    ) -> None:
        self.url = redact_url(url)  # shown in status and errors; the DSN keeps the password
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.schema: str = schema or query.pop("schema", "") or "krfeed"
        query.pop("schema", None)
        query.setdefault("application_name", "krfeed")
        self._dsn = urlunsplit(parts._replace(query=urlencode(query)))
        self.retry_for = retry_for
        self.open_timeout = open_timeout
        self.pool_size = pool_size
        self.command_timeout = command_timeout
        self.hypertables = hypertables
        self.stats = PostgresStats()
        self._pool: asyncpg.Pool | None = None
        self._ensured: set[str] = set()
        self._staged: dict[int, set[str]] = {}  # backend pid -> staging tables it has
        self._timescale = False
        self._nulls_not_distinct = True
        self._closed = False

    def __repr__(self) -> str:
        # The URL can carry a password: show where, not who.
        p = urlsplit(self._dsn)
        return f"PostgresSink({p.hostname}:{p.port or 5432}{p.path}, schema={self.schema!r})"

    # ---- lifecycle ----

    async def open(self) -> None:
        """Connect and create the schema and the event / error tables."""
        if self._pool is not None:
            return
        self._closed = False

        async def no_reset(conn: asyncpg.Connection) -> None:
            # Nothing to reset (krfeed changes no session state); skipping the default RESET
            # ALL saves a round trip per batch. Temporary staging tables stay, on purpose.
            return None

        from krfeed.sinks import SinkError, SinkUnavailable

        where = repr(self).removeprefix("PostgresSink(").split(",")[0]
        try:
            self._pool = await self._retrying(
                lambda: asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self.pool_size,
                    command_timeout=self.command_timeout,
                    reset=no_reset,
                    timeout=max(1.0, min(10.0, self.open_timeout)),
                ),
                self.open_timeout,
            )
            await self._retrying(self._setup, self.open_timeout)
        except RETRYABLE as e:
            await self.close()
            self._closed = False
            raise SinkUnavailable(
                f"cannot reach PostgreSQL at {where} within {self.open_timeout:g}s: {_why(e)}"
            ) from None
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            await self.close()
            self._closed = False
            raise SinkError(f"PostgreSQL at {where} refused: {e}") from None

    async def _setup(self) -> None:
        async with self._acquire() as conn:
            version = conn.get_server_version()
            self._nulls_not_distinct = version.major >= 15
            has_ts = await conn.fetchval(
                "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
            )
            self._timescale = bool(has_ts) and self.hypertables
            await self._ensure(conn, ())

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        self._closed = True
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except RETRYABLE:
                pool.terminate()

    def _acquire(self) -> Any:
        if self._pool is None:
            raise RuntimeError("PostgresSink is not open (await sink.open() first)")
        return self._pool.acquire()

    # ---- DDL ----

    def _q(self, table: str) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(table)}"

    def _control_ddl(self) -> str:
        out = []
        for table, columns, time_col, note in (
            (EVENTS_TABLE, EVENT_COLUMNS, "at", "krfeed control events (detail: other fields)"),
            (DECODE_ERRORS_TABLE, DECODE_ERROR_COLUMNS, "received_at", "undecodable frames"),
        ):
            cols = ", ".join(
                f"{quote_ident(c.name)} "
                + ("jsonb" if c.name == "detail" else _SQL_TYPE[c.kind])
                + ("" if c.name == "received_at" else " NOT NULL")  # a DecodeError may lack it
                for c in columns
            )
            out += [
                f"CREATE TABLE IF NOT EXISTS {self._q(table)} (record_id uuid PRIMARY KEY, {cols})",
                f"CREATE INDEX IF NOT EXISTS {quote_ident(table + '_' + time_col)} "
                f"ON {self._q(table)} ({quote_ident(time_col)})",
                f"COMMENT ON TABLE {self._q(table)} IS {_literal(note)}",
            ]
        return ";\n".join(out)

    def _table_ddl(self, t: Table) -> list[str]:
        name = self._q(t.name)
        hyper = self._timescale and not t.key
        cols = ["record_id uuid NOT NULL", "broker text NOT NULL"]
        for c in t.columns:
            null = " NOT NULL" if c.name in _NOT_NULL else ""
            cols.append(f"{quote_ident(c.name)} {_SQL_TYPE[c.kind]}{null}")
        # A hypertable's unique indexes must include its time column.
        cols.append("PRIMARY KEY (record_id, received_at)" if hyper else "PRIMARY KEY (record_id)")
        stmts = [
            f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(cols)})",
            # columns a newer declaration added (a layout version) to a table made before it
            *(
                f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {quote_ident(c.name)} "
                f"{_SQL_TYPE[c.kind]}"
                for c in t.columns
                if c.name not in _NOT_NULL
            ),
            f"CREATE INDEX IF NOT EXISTS {quote_ident(t.name + '_item_time')} "
            f"ON {name} (item, received_at)",
        ]
        if t.key:
            kinds = {c.name: c.kind for c in t.columns}
            if self._nulls_not_distinct:
                on = ", ".join(quote_ident(k) for k in t.key) + ") NULLS NOT DISTINCT"
            else:
                on = ", ".join(self._standin(k, kinds[k]) for k in t.key) + ")"
            stmts.append(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {quote_ident(t.name + '_key')} ON {name} ({on}"
            )
        if hyper:
            stmts.append(
                f"SELECT create_hypertable({_literal(name)}, "
                "'received_at', if_not_exists => TRUE, migrate_data => TRUE)"
            )
        rt = t.rtype
        stmts.append(f"COMMENT ON TABLE {name} IS {_literal(f'{rt.broker} {rt.code} {rt.title}')}")
        for c in t.columns:
            if c.korean:
                note = f"{c.korean} ({c.wire})" if c.wire else c.korean
                if c.unit:
                    note += f", 단위: {c.unit}"
                stmts.append(f"COMMENT ON COLUMN {name}.{quote_ident(c.name)} IS {_literal(note)}")
        return stmts

    @staticmethod
    def _standin(col: str, kind: str) -> str:
        if kind == "bool":
            return f"(coalesce({quote_ident(col)}::int, -1))"
        return f"(coalesce({quote_ident(col)}, {_NULL_STANDIN[kind]}))"

    async def _ensure(self, conn: asyncpg.Connection, tables: Iterable[Table]) -> None:
        missing = [t for t in tables if t.name not in self._ensured]
        control = EVENTS_TABLE not in self._ensured
        if not missing and not control:
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
            if control:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.schema)}")
                await conn.execute(self._control_ddl())
            for t in missing:
                for stmt in self._table_ddl(t):
                    await conn.execute(stmt)
        self._ensured.update(t.name for t in missing)
        self._ensured.update((EVENTS_TABLE, DECODE_ERRORS_TABLE))

    # ---- writing ----

    async def write(self, batch: list[Item]) -> None:
        """Store ``batch`` in one transaction; returns once committed."""
        if not batch:
            return
        groups = self._group(batch)
        try:
            await self._retrying(lambda: self._write_once(groups))
        except (
            asyncpg.exceptions.CharacterNotInRepertoireError,
            asyncpg.exceptions.UntranslatableCharacterError,
        ):
            # PostgreSQL text cannot hold NUL: store U+FFFD instead (record_id, computed from
            # the item, is unchanged) rather than block the feed on one value.
            groups = {
                t: [_without_nul(r, t is _EVENTS_TARGET) for r in rows]
                for t, rows in groups.items()
            }
            await self._retrying(lambda: self._write_once(groups))
            self.stats.nul_replaced += 1
        self.stats.batches += 1

    def _group(self, batch: Sequence[Item]) -> dict[_Target, list[tuple[Any, ...]]]:
        groups: dict[_Target, list[tuple[Any, ...]]] = {}
        for item in batch:
            _, rid = encode_with_id(item)
            record_id = uuid.UUID(bytes=rid)
            if isinstance(item, Record):
                target = _record_target(item.broker, item.type)
                assert target.table_def is not None
                row = (record_id, item.broker, *target.table_def.row(item))
                groups.setdefault(target, []).append(row)
            elif isinstance(item, DecodeError):
                groups.setdefault(_ERRORS_TARGET, []).append((record_id, *decode_error_row(item)))
            elif isinstance(item, Event):
                groups.setdefault(_EVENTS_TARGET, []).append((record_id, *event_row(item)))
            else:
                raise TypeError(f"PostgresSink cannot store {type(item).__name__}")
        return groups

    async def _write_once(self, groups: dict[_Target, list[tuple[Any, ...]]]) -> None:
        async with self._acquire() as conn:
            pid = conn.get_server_pid()
            try:
                await self._ensure(conn, (g.table_def for g in groups if g.table_def is not None))
                staged = self._staged.setdefault(pid, set())
                inserted = total = 0
                async with conn.transaction():
                    for target, rows in groups.items():
                        stage = quote_ident("stage_" + target.table)
                        if target.table not in staged:
                            await conn.execute(
                                f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                                f"(LIKE {self._q(target.table)}) ON COMMIT DELETE ROWS"
                            )
                        await conn.copy_records_to_table(
                            "stage_" + target.table, records=rows, columns=target.columns
                        )
                        status = await conn.execute(
                            f"INSERT INTO {self._q(target.table)} SELECT * FROM {stage} "
                            "ON CONFLICT DO NOTHING"
                        )
                        inserted += int(status.rsplit(" ", 1)[-1])
                        total += len(rows)
                # Only after the commit: a rolled-back CREATE TEMP TABLE does not exist.
                staged.update(g.table for g in groups)
            except BaseException:
                self._staged.pop(pid, None)
                # The connection's state is unknown (it may hold an unread error from a killed
                # backend): drop it, the pool opens a fresh one for the retry.
                with contextlib.suppress(asyncpg.InterfaceError):  # already released if lost
                    conn.terminate()
                raise
        self.stats.rows += inserted
        self.stats.duplicates += total - inserted

    async def _retrying(
        self, attempt: Callable[[], Awaitable[T]], retry_for: float | None = None
    ) -> T:
        deadline = time.monotonic() + (self.retry_for if retry_for is None else retry_for)
        delay = 0.05
        while True:
            try:
                return await attempt()
            except RETRYABLE as e:
                if isinstance(e, asyncpg.exceptions.UndefinedTableError):
                    self._ensured.clear()
                self.stats.retries += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                if self._closed or time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)


def _why(e: BaseException) -> str:
    """A connection error in words: ``connection refused`` rather than the errno tuple."""
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running there?)"
    if isinstance(e, TimeoutError):
        return "no answer (timed out)"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror[:1].lower() + e.strerror[1:]
    return str(e) or type(e).__name__


def _without_nul(row: tuple[Any, ...], json: bool) -> tuple[Any, ...]:
    out = [v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in row]
    if json:  # the jsonb detail holds NUL as an escape
        out[-1] = out[-1].replace("\\u0000", "\\ufffd")
    return tuple(out)


__all__ = ["RETRYABLE", "PostgresSink", "PostgresStats"]
