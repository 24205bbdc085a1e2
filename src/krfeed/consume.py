"""The other half of the NATS sink: a durable JetStream consumer that moves recorded items from
the bus into sinks (``krfeed consume nats://… --to postgresql://…``).

Delivery: messages are fetched in batches from a durable pull consumer (explicit acks), decoded
(:func:`krfeed.sinks.payload.decode_payload`) and written to every sink; the batch is acknowledged
only after every sink's ``write`` returned, i.e. committed. A sink that fails is retried (only
that sink) with backoff while the messages' ack timers are extended; a consumer that stops,
crashes or is cancelled before acking leaves the messages to be redelivered — at-least-once, made
effectively exactly-once by sinks that are idempotent on the item id (PostgreSQL).

A message is one item, or a bundle of records (JSON lines, see :mod:`krfeed.sinks.nats`).
A message that is not a krfeed payload is not dropped: it is written to the sinks as a
:class:`~krfeed.protocol.messages.DecodeError` carrying the payload, then acknowledged.

Nothing is printed: progress is in the :class:`ConsumeStatus` the function updates and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from krfeed.errors import KrfeedError
from krfeed.events import Event
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.sinks import open_sink, timeout_option
from krfeed.sinks.base import Item, Sink
from krfeed.sinks.nats import ITEMS, OPTIONS, connect, split_url
from krfeed.sinks.payload import PayloadError, decode_payload
from krfeed.sinks.urls import check_options, redact_url


@dataclass(slots=True)
class ConsumeStatus:
    """Live counters of one :func:`consume` run (updated in place)."""

    stream: str = ""
    durable: str = ""
    running: bool = False
    batches: int = 0  # batches written to every sink and acknowledged
    messages: int = 0  # messages acknowledged
    records: int = 0
    events: int = 0
    errors: int = 0  # DecodeError items (recorded ones and undecodable messages)
    undecodable: int = 0  # payloads (messages, lines of bundles) that were not krfeed items
    redelivered: int = 0  # messages delivered more than once (a previous consumer did not ack)
    sink_failures: int = 0  # failed sink writes (each retried)
    #: The durable consumer as the server sees it (all members of the group together),
    #: refreshed about every ``lag_interval`` seconds: messages not yet delivered (the lag),
    #: delivered and not yet acknowledged, and redelivered.
    lag: int | None = None
    ack_pending: int | None = None
    redeliveries: int | None = None
    last_error: str = ""
    started: float = field(default_factory=time.time)


async def consume(
    nats_url: str,
    sinks: Sequence[Sink | str],
    *,
    durable: str = "krfeed-consume",
    subjects: str | None = None,
    stream: str | None = None,
    batch: int = 500,
    max_wait: float = 1.0,
    ack_wait: float = 30.0,
    stop: asyncio.Event | None = None,
    status: ConsumeStatus | None = None,
    open_timeout: float = 10.0,
    lag_interval: float = 1.0,
) -> ConsumeStatus:
    """Move items from JetStream into ``sinks`` until ``stop`` is set (or the task is cancelled).

    ``nats_url``: ``nats://host:4222``, optionally with ``?stream=NAME&prefix=TOKEN`` as for
    the NATS sink. ``subjects``: what to consume (default ``<prefix>.>``, i.e. ``krfeed.>``);
    without ``stream`` the stream that captures ``subjects`` is looked up. ``sinks``: opened
    :class:`~krfeed.sinks.base.Sink` objects (left open) or sink URLs (opened and closed
    here). ``durable``: the consumer's name — restarting with the same name resumes after the
    last acknowledged message, and several processes with the same name share the work (each
    message goes to one of them).
    ``batch``: items fetched and written per transaction (whole messages are fetched: with
    bundles, as many as hold about ``batch`` items, judged by the last fetch); ``max_wait``:
    seconds a fetch waits for messages (and so how soon ``stop`` is noticed); ``ack_wait``:
    seconds before an unacknowledged message is redelivered (set when the consumer is created).
    ``open_timeout``: seconds to reach the NATS server (and each sink given by URL) at start
    before raising :class:`~krfeed.sinks.SinkUnavailable`; later outages are retried.
    """
    st = status if status is not None else ConsumeStatus()
    st.durable = durable
    stop = stop if stop is not None else asyncio.Event()
    server, query = split_url(nats_url)
    check_options(redact_url(nats_url), query, OPTIONS)
    subjects = subjects or f"{query.get('prefix') or 'krfeed'}.>"
    owned: list[Sink] = []
    targets: list[Sink] = []
    nc = None
    try:
        for s in sinks:
            if isinstance(s, str):
                sink = open_sink(s, **timeout_option(s, open_timeout))
                await sink.open()
                owned.append(sink)
                targets.append(sink)
            else:
                targets.append(s)
        if not targets:
            raise ValueError("consume needs at least one sink")

        async def on_error(e: Exception) -> None:
            st.last_error = f"{type(e).__name__}: {e}"

        nc = await connect(
            server, f"krfeed-consume:{durable}", open_timeout, on_error, st, "source"
        )
        js = nc.jetstream()
        stream_name = stream or query.get("stream")
        try:
            stream_name = stream_name or await js.find_stream_name_by_subject(subjects)
            await js.stream_info(stream_name)
        except nats.js.errors.NotFoundError:
            what = f"stream {stream_name!r}" if stream_name else f"stream capturing {subjects}"
            raise KrfeedError(
                f"no {what} on NATS at {redact_url(server)}: a collector creates it "
                "(krfeed record … --to nats://…), or name an existing one (?stream=NAME)"
            ) from None
        st.stream = stream_name
        config = api.ConsumerConfig(
            durable_name=durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=ack_wait,
            max_deliver=-1,
            filter_subject=subjects,
            max_ack_pending=max(batch * 4, 1000),
        )
        psub = await js.pull_subscribe(subjects, durable=durable, stream=stream_name, config=config)
        st.running = True
        lag_at = 0.0
        per_msg = 1.0  # items per message in the last fetch (bundles hold many)
        while not stop.is_set():
            if time.monotonic() >= lag_at:
                lag_at = time.monotonic() + lag_interval
                await _lag(psub, st)
            try:
                msgs = await psub.fetch(max(1, int(batch / per_msg)), timeout=max_wait)
            except nats.errors.TimeoutError:
                continue
            except (nats.errors.Error, nats.js.errors.Error, OSError) as e:
                st.last_error = f"fetch: {type(e).__name__}: {e}"
                await _sleep_or_stop(stop, 0.5)
                continue
            if not msgs:
                continue
            items = [it for m in msgs for it in _decode(m, st)]
            per_msg = max(1.0, len(items) / len(msgs))
            if not await _write_chunks(targets, items, msgs, batch, ack_wait, stop, st):
                # Stopped before every sink committed: hand the messages back now rather than
                # after ack_wait (a sink that did commit them stores them once: idempotent ids).
                for m in msgs:
                    with contextlib.suppress(Exception):
                        await m.nak()
                break
            for m in msgs:
                await m.ack()
            await nc.flush()
            st.batches += 1
            st.messages += len(msgs)
            for it in items:
                if isinstance(it, Record):
                    st.records += 1
                elif isinstance(it, DecodeError):
                    st.errors += 1
                elif isinstance(it, Event):
                    st.events += 1
    finally:
        st.running = False
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), timeout=5)
        for sink in owned:
            with contextlib.suppress(Exception):
                await sink.close()
    return st


async def _lag(psub: Any, st: ConsumeStatus) -> None:
    """The durable consumer's lag, acks pending and redeliveries, from the server."""
    try:
        info = await asyncio.wait_for(psub.consumer_info(), timeout=2.0)
    except (nats.errors.Error, nats.js.errors.Error, OSError, TimeoutError) as e:
        st.last_error = f"consumer info: {type(e).__name__}: {e}"
        return
    st.lag = info.num_pending
    st.ack_pending = info.num_ack_pending
    st.redeliveries = info.num_redelivered


def _decode(msg: Msg, st: ConsumeStatus) -> list[Item]:
    """The items of one message: one, or the lines of a bundle (:data:`ITEMS` header)."""
    md = msg.metadata
    if md.num_delivered > 1:
        st.redelivered += 1
    bundled = msg.headers is not None and ITEMS in msg.headers
    lines = msg.data.split(b"\n") if bundled else [msg.data]
    out: list[Item] = []
    for n, line in enumerate(lines, 1):
        try:
            out.append(decode_payload(line))
        except PayloadError as e:
            st.undecodable += 1
            where = f" line {n}" if bundled else ""
            # Deterministic (no receive time): a redelivered bad message is recorded once.
            out.append(
                DecodeError(
                    broker="",
                    raw=line.decode("utf-8", "replace"),
                    reason=f"NATS {md.stream} seq {md.sequence.stream}{where} ({msg.subject}): {e}",
                )
            )
    return out


async def _write_chunks(
    sinks: list[Sink],
    items: list[Item],
    msgs: list[Msg],
    batch: int,
    ack_wait: float,
    stop: asyncio.Event,
    st: ConsumeStatus,
) -> bool:
    """:func:`_write_all` in transactions of ``batch`` items when a fetch brought far more
    (the first fetch of bundles, sized before their size was known), keeping the messages
    ours meanwhile; False if stopped before done."""
    if len(items) <= 2 * batch:
        return await _write_all(sinks, items, msgs, stop, st)
    extend_at = time.monotonic() + ack_wait / 3
    for i in range(0, len(items), batch):
        if time.monotonic() >= extend_at:
            extend_at = time.monotonic() + ack_wait / 3
            await _keep(msgs)
        if not await _write_all(sinks, items[i : i + batch], msgs, stop, st):
            return False
    return True


async def _write_all(
    sinks: list[Sink],
    items: list[Item],
    msgs: list[Msg],
    stop: asyncio.Event,
    st: ConsumeStatus,
) -> bool:
    """Write ``items`` to every sink, retrying failed ones; False if stopped before done."""
    todo = list(sinks)
    delay = 0.2
    while todo:
        results = await asyncio.gather(*(s.write(items) for s in todo), return_exceptions=True)
        failed: list[Sink] = []
        for sink, res in zip(todo, results, strict=True):
            if isinstance(res, BaseException):
                if not isinstance(res, Exception):
                    raise res  # cancellation and the like
                st.sink_failures += 1
                st.last_error = f"{sink!r}: {type(res).__name__}: {res}"
                failed.append(sink)
        todo = failed
        if not todo:
            return True
        await _keep(msgs)  # ours while the sink recovers
        if await _sleep_or_stop(stop, delay * (0.5 + random.random())):
            return False
        delay = min(delay * 2, 5.0)
    return True


async def _keep(msgs: list[Msg]) -> None:
    """Restart the messages' ack timers (``in_progress``): not redelivered meanwhile."""
    for m in msgs:
        with contextlib.suppress(Exception):
            await m.in_progress()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; True if ``stop`` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


__all__ = ["ConsumeStatus", "consume"]
