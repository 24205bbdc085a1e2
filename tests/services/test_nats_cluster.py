"""Past one machine: simulator → Feed → Recorder → a 3-node NATS JetStream cluster (R3 stream)
→ two ``consume`` members of one durable group → PostgreSQL. The stream's leader is killed
(SIGKILL) mid-stream and restarted: every record reaches PostgreSQL exactly once.

The cluster is three real ``nats-server`` processes on free loopback ports with cluster routes
between them (tests/services/natscluster.py), started and stopped by the test.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import nats
import pytest

from krfeed import KIS, Feed
from krfeed.consume import ConsumeStatus, consume
from krfeed.feed import FeedItem
from krfeed.recorder import Recorder
from krfeed.records.base import Record
from krfeed.sim import SimConfig, Simulator
from krfeed.sim.universe import OpeningProfile, universe_codes
from krfeed.sinks.codec import encode_with_id
from krfeed.sinks.nats import NATSSink
from krfeed.sinks.tables import table_for

from .conftest import drop_postgres_schema, fresh_postgres_url, schema_of, server_dsn
from .natscluster import NatsCluster, nats_server_binary

pytestmark = pytest.mark.services

RECORDS = 6000  # 2,000/s for 3 s over 20 codes


async def _until(cond: object, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not cond():  # type: ignore[operator]
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout:g}s") from None


async def _leader(url: str, stream: str) -> str:
    nc = await nats.connect(url, connect_timeout=2)
    try:
        info = await nc.jetstream().stream_info(stream)
        assert info.cluster is not None and info.cluster.leader
        assert info.config.num_replicas == 3
        return str(info.cluster.leader)
    finally:
        await nc.close()


@pytest.mark.parametrize("bundle", [1, 50])
async def test_cluster_loses_its_leader_mid_stream_nothing_lost_nothing_twice(
    postgres: str, tmp_path: Path, bundle: int
) -> None:
    if nats_server_binary() is None:
        msg = "nats-server is not installed (set KRFEED_NATS_SERVER)"
        if os.environ.get("KRFEED_REQUIRE_SERVICES") == "1":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    pg = fresh_postgres_url("cluster", postgres)
    stream, prefix = "KRFEED_CLUSTER", "krfeedcluster"
    profile = OpeningProfile(burst_rate=2000, burst_seconds=3, steady_rate=0, duration=3)
    sent_ids: set[bytes] = set()
    try:
        async with (
            NatsCluster(tmp_path / "nats", 3) as cluster,
            Simulator(SimConfig(profile=profile, profile_start="manual")) as sim,
            Feed(KIS.sim(sim.url)) as feed,
        ):
            url = f"{cluster.url}?stream={stream}&prefix={prefix}&replicas=3&bundle={bundle}"
            await feed.subscribe(KIS.TRADE, universe_codes("krx", 20))

            async def source() -> AsyncIterator[FeedItem]:
                async for item in feed:
                    if isinstance(item, Record):
                        sent_ids.add(encode_with_id(item)[1])
                    yield item

            sink = NATSSink(url, ack_timeout=2.0, retry_for=60.0)
            recorder = Recorder(source(), [sink], batch_size=200, batch_interval=0.05)
            rec_task = asyncio.create_task(recorder.run())
            await _until(lambda: recorder.status()["written"] > 0, 20, "stream created")
            assert await _leader(cluster.node_url(0), stream) in {"n1", "n2", "n3"}

            stop = asyncio.Event()
            group = [ConsumeStatus(), ConsumeStatus()]
            members = [
                asyncio.create_task(
                    consume(url, [pg], durable="pg", batch=200, ack_wait=5, stop=stop, status=st)
                )
                for st in group
            ]
            # both members are pulling (each asks for the group's lag before its first fetch)
            await _until(lambda: all(st.lag is not None for st in group), 20, "members up")
            sim.profile.start()  # type: ignore[union-attr]
            await _until(lambda: sum(st.records for st in group) >= 1500, 20, "mid-stream")

            leader = cluster.index_of(await _leader(cluster.node_url(0), stream))
            cluster.kill(leader)
            written = recorder.status()["written"]
            await _until(lambda: recorder.status()["written"] >= written + 1500, 30, "failover")
            await cluster.restart(leader)

            await _until(lambda: len(sent_ids) >= RECORDS, 30, "the profile's records")
            await _until(lambda: sum(st.records for st in group) >= RECORDS, 40, "consumed")
            recorder.stop()
            await rec_task
            # the group's lag, as the server reports it, drains to nothing
            await _until(lambda: all(st.lag == 0 for st in group), 20, "lag of 0")
            stop.set()
            await asyncio.gather(*members)
            # every record acknowledged by the cluster, retried ones with their first Msg-Id
            assert sink.stats.items >= RECORDS
            if bundle == 1:
                assert sink.stats.published - sink.stats.duplicates >= RECORDS
    finally:
        rows = await _record_ids(pg)
        await drop_postgres_schema(pg)
    assert sim.stats()["profile"]["records_queued"] == RECORDS
    assert len(sent_ids) == RECORDS
    # nothing lost, nothing twice: exactly the ids the recorder saw, each once
    assert len(rows) == RECORDS
    assert set(rows) == sent_ids
    # How the server spreads a failover's deliveries between the members is its own business
    # (one member may sit out a leader change); that a group shares the work is tested on one
    # server in test_consume.py. Here: the group as a whole delivered every record.
    assert sum(st.records for st in group) >= RECORDS


async def _record_ids(pg: str) -> list[bytes]:
    table = table_for("kis", "H0STCNT0").name
    conn = await asyncpg.connect(server_dsn(pg))
    try:
        rows = await conn.fetch(f'SELECT record_id FROM "{schema_of(pg)}"."{table}"')
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()
    return [r["record_id"].bytes for r in rows]
