"""Fixtures and helpers for the tests against the real PostgreSQL and NATS servers.

The servers are expected at ``KRFEED_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and ``KRFEED_TEST_NATS`` (default
``nats://127.0.0.1:4222``). A test that needs one that is not reachable is skipped with a message
naming it, or fails when ``KRFEED_REQUIRE_SERVICES=1`` (CI).

For other tests (e.g. simulator → krfeed → PostgreSQL):

- :func:`fresh_postgres_url` — a sink URL with a schema of its own (drop it with
  :func:`drop_postgres_schema`, or use the ``pg_url`` fixture, which does),
- :func:`fresh_nats_stream` — a stream name and subject prefix of their own, as a
  :class:`NATSTarget` whose ``url`` is a NATSSink URL (delete it with :func:`delete_nats_stream`,
  or use the ``nats_stream`` fixture, which does),
- :func:`pg_rows` — read a table back.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from krfeed.protocol.kis import KISCodec
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.records.base import Record
from krfeed.schema.convert import KST
from krfeed.schema.enums import ENUM_KINDS, Direction, Side

POSTGRES_URL = os.environ.get("KRFEED_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("KRFEED_TEST_NATS", "nats://127.0.0.1:4222")
FIXTURES = Path(__file__).parent.parent / "fixtures" / "official"


# ---- service checks ----


def _reachable(url: str, default_port: int) -> bool:
    p = urlsplit(url)
    try:
        with socket.create_connection((p.hostname or "127.0.0.1", p.port or default_port), 2):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> None:
    """Skip (or fail under KRFEED_REQUIRE_SERVICES=1) when the service does not answer."""
    if _reachable(url, default_port):
        return
    p = urlsplit(url)
    msg = f"{name} is not reachable at {p.hostname}:{p.port or default_port}"
    if os.environ.get("KRFEED_REQUIRE_SERVICES") == "1":
        pytest.fail(msg + " (KRFEED_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def postgres() -> str:
    """The server URL (no schema); skips/fails when PostgreSQL is down."""
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def nats_server() -> str:
    """The server URL; skips/fails when NATS is down."""
    require_service("NATS", NATS_URL, 4222)
    return NATS_URL


# ---- fresh schemas and streams ----


def _tag(tag: str) -> str:
    return f"{tag}_{uuid.uuid4().hex[:10]}".lower()


def fresh_postgres_url(tag: str = "t", base: str = POSTGRES_URL) -> str:
    """A PostgresSink URL with a new schema (``krfeed_test_<tag>_<random>``), also used as the
    connections' ``application_name`` so a test can find (and kill) the sink's connections."""
    name = "krfeed_test_" + _tag(tag)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema={name}&application_name={name}"


def schema_of(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))["schema"]


def server_dsn(url: str) -> str:
    """The URL without krfeed's query parameters, for a plain asyncpg connection."""
    return url.split("?", 1)[0]


async def drop_postgres_schema(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_dsn(url))
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = $1 AND pid <> pg_backend_pid()",
            schema_of(url),
        )
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema_of(url)}" CASCADE')
    finally:
        await conn.close()


async def pg_rows(url: str, table: str, order: str = "received_at, record_id") -> list[Any]:
    """All rows of ``table`` in the URL's schema."""
    import asyncpg

    conn = await asyncpg.connect(server_dsn(url))
    try:
        return list(
            await conn.fetch(f'SELECT * FROM "{schema_of(url)}"."{table}" ORDER BY {order}')
        )
    finally:
        await conn.close()


async def pg_count(url: str, table: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(server_dsn(url))
    try:
        n = await conn.fetchval(f'SELECT count(*) FROM "{schema_of(url)}"."{table}"')
        return int(n)
    finally:
        await conn.close()


@dataclass(frozen=True)
class NATSTarget:
    server: str  # nats://host:port
    stream: str
    prefix: str

    @property
    def url(self) -> str:
        """A NATSSink / consume URL for this stream and prefix."""
        return f"{self.server}?stream={self.stream}&prefix={self.prefix}"

    @property
    def subjects(self) -> str:
        return f"{self.prefix}.>"


def fresh_nats_stream(tag: str = "t", server: str = NATS_URL) -> NATSTarget:
    """A new stream name and subject prefix (streams cannot share subjects)."""
    t = _tag(tag)
    return NATSTarget(server, "KRFEED_TEST_" + t.upper(), "krfeedtest_" + t)


async def delete_nats_stream(target: NATSTarget) -> None:
    import nats
    import nats.js.errors

    nc = await nats.connect(target.server)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(target.stream)
    finally:
        await nc.close()


@pytest.fixture
async def pg_url(postgres: str) -> AsyncIterator[str]:
    url = fresh_postgres_url("pg", postgres)
    yield url
    await drop_postgres_schema(url)


@pytest.fixture
async def nats_stream(nats_server: str) -> AsyncIterator[NATSTarget]:
    target = fresh_nats_stream("js", nats_server)
    yield target
    await delete_nats_stream(target)


# ---- records ----

RECEIVED_AT = datetime(2025, 3, 14, 3, 0, tzinfo=UTC)  # 12:00 KST
# H0STPGM0 has no official example frame: one record built from the documented layout (seed 001).
H0STPGM0_FROM_DOCUMENTED_LAYOUT = (
    "0|H0STPGM0|001|005930^093015^1000^60500000^1500^90750000^500^30250000^120000^95000^-25000"
)


def kiwoom_example(code: str, received_at: datetime = RECEIVED_AT) -> list[Record]:
    """The records of Kiwoom's official REAL example of ``code``."""
    spec = json.loads((FIXTURES / "kiwoom_api_spec_subset.json").read_text(encoding="utf-8"))
    text = spec[code]["response_example"].split("#실시간 수신", 1)[1].strip()
    frame = json.dumps(ast.literal_eval(text), ensure_ascii=False)
    out = [m for m in KiwoomCodec().receive(frame, received_at) if isinstance(m, Record)]
    assert out, f"no record in the official {code} example"
    return out


def kis_program_trading(received_at: datetime = RECEIVED_AT) -> list[Record]:
    out = KISCodec("approval").receive(H0STPGM0_FROM_DOCUMENTED_LAYOUT, received_at)
    assert all(isinstance(m, Record) for m in out)
    return out  # type: ignore[return-value]


_TEXT = ["삼성전자", "KRX", "0000018", "a'b", 'q"t', "back\\slash", "tab\tnl\n", "x,y", "🙂", "N"]


def sample_record(cls: type[Record], rng: random.Random, received_at: datetime) -> Record:
    """A record of ``cls`` with generated values of every declared kind (some None)."""
    account = cls.account
    item = "" if account and cls.broker == "kiwoom" else f"{rng.randrange(1_000_000):06d}"
    values: dict[str, Any] = {"received_at": received_at, "item": item}
    for f in cls.schema().fields:
        if rng.random() < 0.1:
            continue
        k = f.kind
        if k == "text":
            values[f.name] = rng.choice(_TEXT) + str(rng.randrange(100))
        elif k == "int":
            values[f.name] = rng.randrange(-(10**12), 10**12)
        elif k == "decimal":
            values[f.name] = Decimal(rng.randrange(-100_000, 100_000)).scaleb(-rng.randrange(5))
        elif k in ("price", "price_decimal"):
            level: Any = rng.randrange(10**7)
            if k == "price_decimal":
                level = Decimal(level).scaleb(-2)
            values[f.name], values[f.name + "_dir"] = level, rng.choice(list(Direction))
        elif k == "aggressor_qty":
            values[f.name] = rng.randrange(10**6)
            values[f.name + "_side"] = rng.choice([*Side, None])
        elif k == "time":
            sec = rng.randrange(8 * 3600, 16 * 3600)
            values[f.name] = datetime(2025, 3, 14, tzinfo=KST) + timedelta(seconds=sec)
        elif k == "date":
            values[f.name] = date(2025, 1, 1) + timedelta(days=rng.randrange(400))
        elif k in ("yn", "flag01"):
            values[f.name] = rng.random() < 0.5
        elif k.startswith("enum:"):
            members = list(ENUM_KINDS[k[5:]][0])
            values[f.name] = rng.choice([*members, "9"])  # "9": a code krfeed does not know
        else:  # pragma: no cover - a new kind needs a generator here
            raise AssertionError(f"no generator for kind {k}")
    return cls(**values)


def all_record_classes() -> list[type[Record]]:
    from krfeed.records.kis import RECORDS as KIS
    from krfeed.records.kiwoom import RECORDS as KIWOOM

    return [*KIWOOM.values(), *KIS.values()]


def sample_records(
    n: int, seed: int = 0, classes: list[type[Record]] | None = None
) -> list[Record]:
    """``n`` generated records cycling through ``classes`` (default: every declared type),
    received 1 ms apart from :data:`RECEIVED_AT`."""
    rng = random.Random(seed)
    classes = classes or all_record_classes()
    return [
        sample_record(classes[i % len(classes)], rng, RECEIVED_AT + timedelta(milliseconds=i))
        for i in range(n)
    ]


# ---- a TCP proxy to simulate a server that goes away and comes back ----


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``stop()`` closes every connection and refuses
    new ones (as a restarting server does), ``start()`` accepts again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, uw))

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.transport.abort()

        await asyncio.gather(pipe(reader, uw), pipe(ur, writer))
        self._writers.difference_update((writer, uw))


async def terminate_connections(url: str, *, busy_only: bool = False) -> int:
    """``pg_terminate_backend`` every connection of the sink at ``url`` (by application_name);
    with ``busy_only``, only those inside a transaction. Returns how many were terminated."""
    import asyncpg

    conn = await asyncpg.connect(server_dsn(url))
    try:
        busy = " AND xact_start IS NOT NULL" if busy_only else ""
        n = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE application_name = $1 AND pid <> pg_backend_pid(){busy}",
            schema_of(url),
        )
        return int(n)
    finally:
        await conn.close()
