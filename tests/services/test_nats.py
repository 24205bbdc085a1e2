"""NATSSink against the real JetStream server: subjects, Msg-Id de-duplication, lost acks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
from nats.js import api

from krfeed.events import Reconnected
from krfeed.protocol.messages import DecodeError
from krfeed.records.kis import RECORDS as KIS
from krfeed.records.kiwoom import RECORDS as KIWOOM
from krfeed.sinks import SinkError, open_sink
from krfeed.sinks.nats import NATSSink, subject_of, token
from krfeed.sinks.payload import decode_payload, encode_with_id

from .conftest import (
    RECEIVED_AT,
    NATSTarget,
    TcpProxy,
    delete_nats_stream,
    fresh_nats_stream,
    kis_program_trading,
    kiwoom_example,
    sample_records,
)

pytestmark = pytest.mark.services


async def stored(target: NATSTarget) -> list[Any]:
    """Every message of the stream, in stream order."""
    nc = await nats.connect(target.server)
    try:
        js = nc.jetstream()
        info = await js.stream_info(target.stream)
        if not info.state.messages:
            return []
        first, last = info.state.first_seq, info.state.last_seq
        return [await js.get_msg(target.stream, seq) for seq in range(first, last + 1)]
    finally:
        await nc.close()


@pytest.fixture
async def sink(nats_stream: NATSTarget) -> AsyncIterator[NATSSink]:
    s = NATSSink(nats_stream.url)
    await s.open()
    yield s
    await s.close()


def test_subject_tokens() -> None:
    assert token("") == "_"
    assert token("039490_AL") == "039490_AL"
    assert token("a.b c*>") == "a_b_c__"
    assert token("홍길동") == "___"
    (order,) = kiwoom_example("00")
    assert subject_of(order) == "krfeed.kiwoom.00.005930"
    account_push = type(order)(received_at=RECEIVED_AT, item="")
    assert subject_of(account_push, "p.q") == "p.q.kiwoom.00._"
    ev = Reconnected(broker="kis", session="kis#1", attempt=1, gap=0.5)
    assert subject_of(ev) == "krfeed.kis._event.Reconnected"
    assert subject_of(DecodeError(broker="kis", raw="x", reason="r")) == "krfeed.kis._error._"


async def test_records_subjects_msg_ids_payloads(sink: NATSSink, nats_stream: NATSTarget) -> None:
    (order,) = kiwoom_example("00")
    account_push = type(order)(received_at=RECEIVED_AT, item="", order_no="0000019")
    batch: list[Any] = [
        order,
        account_push,
        *kis_program_trading(),
        Reconnected(broker="kis", session="kis#1", attempt=2, gap=1.25),
        DecodeError(broker="kiwoom", raw="{", reason="bad JSON", type="0B"),
    ]
    await sink.write(batch)
    msgs = await stored(nats_stream)
    p = nats_stream.prefix
    assert [m.subject for m in msgs] == [
        f"{p}.kiwoom.00.005930",
        f"{p}.kiwoom.00._",
        f"{p}.kis.H0STPGM0.005930",
        f"{p}.kis._event.Reconnected",
        f"{p}.kiwoom._error.0B",
    ]
    for m, item in zip(msgs, batch, strict=True):
        assert m.headers["Nats-Msg-Id"] == encode_with_id(item)[1].hex()
        assert decode_payload(m.data) == item
        assert type(decode_payload(m.data)) is type(item)
    assert (sink.stats.published, sink.stats.duplicates) == (5, 0)


async def test_same_batch_twice_is_stored_once(sink: NATSSink, nats_stream: NATSTarget) -> None:
    batch = sample_records(300, seed=5, classes=[KIS["H0STPGM0"], KIWOOM["00"], KIWOOM["0B"]])
    await sink.write(batch)
    await sink.write(batch)
    await sink.write(batch[100:150])
    msgs = await stored(nats_stream)
    assert len(msgs) == 300
    assert [decode_payload(m.data) for m in msgs] == batch
    assert sink.stats.duplicates == 350


async def test_bundles_per_type_with_deterministic_ids(nats_stream: NATSTarget) -> None:
    """``bundle=40``: records of one (broker, type) share a message (JSON lines), events stay
    single; writing the same batch again is dropped whole by the server."""
    s = NATSSink(nats_stream.url + "&bundle=40")
    await s.open()
    classes = [KIS["H0STPGM0"], KIWOOM["00"], KIWOOM["0B"]]
    batch: list[Any] = sample_records(100, seed=8, classes=classes)
    ev = Reconnected(broker="kis", session="kis#1", attempt=1, gap=0.5)
    batch.insert(50, ev)
    try:
        await s.write(batch)
        await s.write(batch)
    finally:
        await s.close()
    msgs = await stored(nats_stream)
    p = nats_stream.prefix
    # 34 H0STPGM0, 33 00, 33 0B: each type's records fit one bundle; the event is published first
    assert [(m.subject, m.headers.get("Krfeed-Items")) for m in msgs] == [
        (f"{p}.kis._event.Reconnected", None),
        (f"{p}.kis.H0STPGM0._bundle", "34"),
        (f"{p}.kiwoom.00._bundle", "33"),
        (f"{p}.kiwoom.0B._bundle", "33"),
    ]
    assert decode_payload(msgs[0].data) == ev
    records = [r for r in batch if r is not ev]
    for m, cls in zip(msgs[1:], classes, strict=True):
        lines = m.data.split(b"\n")
        assert [decode_payload(x) for x in lines] == [r for r in records if type(r) is cls]
    assert (s.stats.published, s.stats.items, s.stats.duplicates) == (8, 202, 4)


async def test_bundles_split_at_the_limit(nats_stream: NATSTarget) -> None:
    s = NATSSink(nats_stream.url, bundle=7)
    await s.open()
    batch = sample_records(30, seed=9, classes=[KIS["H0STPGM0"]])
    try:
        await s.write(batch)
    finally:
        await s.close()
    msgs = await stored(nats_stream)
    assert [m.headers["Krfeed-Items"] for m in msgs] == ["7", "7", "7", "7", "2"]
    assert [decode_payload(x) for m in msgs for x in m.data.split(b"\n")] == batch
    assert len({m.headers["Nats-Msg-Id"] for m in msgs}) == 5


@pytest.mark.parametrize("bad", ["0", "1001", "many"])
def test_bundle_size_is_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="bundle must be 1 to 1000"):
        NATSSink(f"nats://127.0.0.1:4222?bundle={bad}")
    if bad.isdigit():
        with pytest.raises(ValueError, match="bundle must be 1 to 1000"):
            NATSSink("nats://127.0.0.1:4222", bundle=int(bad))


async def test_lost_acks_are_republished_and_stored_once(nats_stream: NATSTarget) -> None:
    """The server stored the message but its acknowledgement never arrived: write publishes it
    again with the same Msg-Id, and the server drops the copy."""
    s = NATSSink(nats_stream.url, ack_timeout=0.5)
    await s.open()
    try:
        js: Any = s._js
        deliver = js._handle_async_reply
        lost = 0

        async def lossy(msg: Any) -> None:
            nonlocal lost
            if lost < 7:
                lost += 1
                return
            await deliver(msg)

        js._handle_async_reply = lossy  # before the first publish subscribes it
        batch = sample_records(40, seed=6, classes=[KIS["H0STPGM0"]])
        await s.write(batch)
        assert lost == 7
        assert (s.stats.retries, s.stats.duplicates, s.stats.published) == (7, 7, 40)
    finally:
        await s.close()
    msgs = await stored(nats_stream)
    assert sorted(m.headers["Nats-Msg-Id"] for m in msgs) == sorted(
        encode_with_id(r)[1].hex() for r in batch
    )


async def test_server_away_and_back(nats_server: str) -> None:
    """Connection dropped and refused for a second: pending publishes are sent again after
    the reconnect; every record is stored once."""
    real = urlsplit(nats_server)
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 4222)
    await proxy.start()
    target = fresh_nats_stream("away", f"nats://127.0.0.1:{proxy.port}")
    s = NATSSink(target.url, ack_timeout=1.0, retry_for=20)
    try:
        await s.open()
        batch = sample_records(2000, seed=8, classes=[KIS["H0STPGM0"], KIWOOM["0B"]])
        await s.write(batch[:500])
        await proxy.stop()
        task = asyncio.create_task(s.write(batch[500:]))
        await asyncio.sleep(1.0)
        assert not task.done()
        await proxy.start()
        await asyncio.wait_for(task, 30)
        msgs = await stored(NATSTarget(nats_server, target.stream, target.prefix))
        assert len(msgs) == 2000
        assert {m.headers["Nats-Msg-Id"] for m in msgs} == {
            encode_with_id(r)[1].hex() for r in batch
        }
    finally:
        await s.close()
        await proxy.stop()
        await delete_nats_stream(NATSTarget(nats_server, target.stream, target.prefix))


async def test_stream_created_or_checked(nats_stream: NATSTarget) -> None:
    s = open_sink(nats_stream.url, duplicate_window=30)
    assert isinstance(s, NATSSink)
    await s.open()
    await s.close()
    await s.close()
    nc = await nats.connect(nats_stream.server)
    try:
        info = await nc.jetstream().stream_info(nats_stream.stream)
        assert info.config.subjects == [nats_stream.subjects]
        assert info.config.duplicate_window == 30
        assert info.config.storage == api.StorageType.FILE
    finally:
        await nc.close()
    again = NATSSink(nats_stream.url)  # exists: checked, not changed
    await again.open()
    assert again.duplicate_window == 30
    await again.close()


async def test_stream_that_does_not_capture_the_prefix(nats_server: str) -> None:
    target = fresh_nats_stream("other", nats_server)
    nc = await nats.connect(nats_server)
    try:
        await nc.jetstream().add_stream(name=target.stream, subjects=[f"{target.prefix}.x.>"])
        s = NATSSink(target.url)
        with pytest.raises(ValueError, match="do not capture"):
            await s.open()
        await s.close()
    finally:
        await nc.close()
        await delete_nats_stream(target)


def test_unknown_url_options_are_refused() -> None:
    with pytest.raises(SinkError, match=r"unknown option\(s\) bundel \(allowed: bundle, prefix"):
        NATSSink("nats://127.0.0.1:4222?stream=S&bundel=50")


async def test_a_prefix_another_stream_captures_is_one_sentence(nats_stream: NATSTarget) -> None:
    """The prefix's subjects belong to another stream: creating a second one fails, and the
    error names the stream that holds them."""
    first = NATSSink(nats_stream.url)
    await first.open()
    await first.close()
    other = f"{nats_stream.stream}_B"
    second = NATSSink(f"{nats_stream.server}?stream={other}&prefix={nats_stream.prefix}")
    with pytest.raises(SinkError) as caught:
        await second.open()
    msg = str(caught.value)
    assert msg.startswith(f"cannot create the NATS stream {other!r} for {nats_stream.prefix}.>:")
    assert msg.endswith(
        f": stream {nats_stream.stream!r} already captures {nats_stream.prefix}.> (record into "
        f"it with ?stream={nats_stream.stream}, or use another ?prefix=)"
    )
    assert "overlap" in msg
