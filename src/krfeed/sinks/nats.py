"""NATS JetStream sink (``nats://host:4222?stream=KRFEED``, extra ``krfeed[nats]``).

Each item becomes one message:

- records on ``<prefix>.<broker>.<type>.<item>`` (``krfeed.kis.H0STPGM0.005930``,
  ``krfeed.kiwoom.00._`` for an account push with an empty item),
- control events on ``<prefix>.<broker>._event.<EventName>``,
- decode errors on ``<prefix>.<broker>._error.<type>``.

Subject tokens keep ``A-Z a-z 0-9 _ -``; any other character becomes ``_`` and an empty token is
``_`` (the payload carries the exact values). ``prefix`` defaults to ``krfeed``; the stream
(``stream=``, default ``KRFEED``) is created with subjects ``<prefix>.>`` if it does not exist
(``replicas=3``: on three servers of a cluster), and an existing stream must capture
``<prefix>.>``. A cluster is named by its servers: ``nats://a:4222,b:4222,c:4222?stream=…``;
the client fails over between them (and the ones the cluster announces).

Payload: JSON (via msgspec), the same object as a line of krfeed's JSONL output — chosen over
msgpack because any NATS client, ``nats sub`` and ``jq`` read it without a schema, and it needs
no extra dependency; :func:`krfeed.sinks.payload.decode_payload` turns it back into the exact
record. Messages carry ``Nats-Msg-Id`` = the hex of the item's deterministic id
(:func:`krfeed.sinks.payload.item_id`), so JetStream drops a republished duplicate that arrives
within the stream's duplicate window (``duplicate_window``, 2 minutes by default, set when this
sink creates the stream); a duplicate that arrives later is stored again and removed downstream
by the PostgreSQL sink, whose primary key is the same id.

**Bundles** (``bundle=N``, for the whole market): records of one (broker, type) are sent up to
``N`` to a message, on ``<prefix>.<broker>.<type>._bundle``, the payload being their payloads one
per line (JSON lines) and the header ``Krfeed-Items`` their number; the Msg-Id is the digest of
their ids, so a retried batch is still dropped as a duplicate. A publish and its acknowledgement
cost ~35 µs of CPU in nats-py, the same for 1 item or 500: bundles take that cost off each
record (a subscriber then filters by type, not by stock code). Control events and decode errors
are always single messages. :func:`krfeed.consume.consume` reads both forms.

``write`` publishes the whole batch without waiting in between (pipelined), then waits for every
publish acknowledgement; messages not acknowledged within ``ack_timeout`` are published again
(same Msg-Id) until ``retry_for`` seconds have passed, then ``write`` raises. A retried message
can land after later ones of its batch: order is by ``received_at``, not by stream sequence.

``open`` tries to reach the server for at most ``open_timeout`` seconds (default 10), then
raises :class:`~krfeed.sinks.SinkUnavailable`; once connected, the client reconnects for ever
after an outage (writes meanwhile fail and are retried as above).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
from nats.js import api

from krfeed.events import Event
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.sinks.base import Item, SinkError
from krfeed.sinks.payload import encode_with_id
from krfeed.sinks.urls import check_options, redact_url

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
MSG_ID = "Nats-Msg-Id"
#: Header of a bundle: how many items (JSON lines) its payload holds.
ITEMS = "Krfeed-Items"
#: The last subject token of a bundle (never a code: codes have no leading underscore).
BUNDLE = "_bundle"
MAX_BUNDLE = 1000
#: The query options of a ``nats://`` URL (``consume`` reads the same URL).
OPTIONS = {"stream", "prefix", "replicas", "bundle"}


#: A message to publish: subject, payload, headers, number of items.
_Message = tuple[str, bytes, dict[str, str], int]


def token(text: str) -> str:
    """A safe NATS subject token for ``text``."""
    return _UNSAFE.sub("_", text) or "_"


def subject_of(item: Item, prefix: str = "krfeed") -> str:
    """The subject an item is published on."""
    if isinstance(item, Record):
        return f"{prefix}.{item.broker}.{token(item.type)}.{token(item.item)}"
    if isinstance(item, DecodeError):
        return f"{prefix}.{token(item.broker)}._error.{token(item.type)}"
    if isinstance(item, Event):
        return f"{prefix}.{token(item.broker)}._event.{type(item).__name__}"
    raise TypeError(f"cannot publish {type(item).__name__}")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """``nats://host:port?a=b`` -> (server URL without the query, query parameters)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(query="", fragment="")), query


@dataclass(slots=True)
class NATSStats:
    batches: int = 0
    published: int = 0  # messages acknowledged by JetStream (new or duplicate)
    items: int = 0  # items in those messages (more than ``published`` with bundles)
    duplicates: int = 0  # of those, dropped by the server as already stored (Msg-Id)
    retries: int = 0  # publishes sent again after an error or a missing ack
    last_error: str = ""


class NATSSink:
    """Publishes every item to JetStream and returns from ``write`` once all are acknowledged.

    ``url``: ``nats://[user:pass@]host:port[?stream=NAME&prefix=TOKEN&replicas=R&bundle=N]``;
    keywords override the query. ``duplicate_window`` (seconds) applies when this sink creates
    the stream. ``bundle``: records per message (1, the default: one message per record).
    ``open_timeout``: seconds :meth:`open` tries to reach the server.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str | None = None,
        prefix: str | None = None,
        duplicate_window: float = 120.0,
        replicas: int | None = None,
        ack_timeout: float = 10.0,
        retry_for: float = 30.0,
        open_timeout: float = 10.0,
        max_pending: int = 4000,
        create_stream: bool = True,
        bundle: int | None = None,
    ) -> None:
        self.url = redact_url(url)
        self._server, query = split_url(url)
        check_options(self.url, query, OPTIONS)
        self.stream: str = stream or query.get("stream") or "KRFEED"
        self.prefix: str = prefix or query.get("prefix") or "krfeed"
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", self.stream):
            raise ValueError(f"bad stream name {self.stream!r}")
        if not all(re.fullmatch(r"[A-Za-z0-9_\-]+", t) for t in self.prefix.split(".")):
            raise ValueError(f"bad subject prefix {self.prefix!r}")
        self.duplicate_window = duplicate_window
        try:
            self.replicas = int(replicas or query.get("replicas") or 1)
        except ValueError:
            raise ValueError(f"replicas must be 1 to 5, not {query.get('replicas')!r}") from None
        if not 1 <= self.replicas <= 5:
            raise ValueError(f"replicas must be 1 to 5, not {self.replicas}")
        try:
            self.bundle = int(bundle if bundle is not None else query.get("bundle") or 1)
        except ValueError:
            raise ValueError(
                f"bundle must be 1 to {MAX_BUNDLE}, not {query.get('bundle')!r}"
            ) from None
        if not 1 <= self.bundle <= MAX_BUNDLE:
            raise ValueError(f"bundle must be 1 to {MAX_BUNDLE}, not {self.bundle}")
        self.ack_timeout = ack_timeout
        self.retry_for = retry_for
        self.open_timeout = open_timeout
        self.max_pending = max_pending
        self.create_stream = create_stream
        self.stats = NATSStats()
        self._nc: Any = None
        self._js: Any = None

    def __repr__(self) -> str:
        hosts = ",".join(urlsplit(u).netloc.rsplit("@", 1)[-1] for u in servers_of(self._server))
        return f"NATSSink({hosts}, stream={self.stream!r})"

    async def open(self) -> None:
        if self._nc is not None:
            return

        async def on_error(e: Exception) -> None:
            self.stats.last_error = f"{type(e).__name__}: {e}"

        self._nc = await connect(
            self._server, "krfeed", self.open_timeout, on_error, self.stats, "NATS sink"
        )
        self._js = self._nc.jetstream(publish_async_max_pending=self.max_pending)
        try:
            await self._check_stream()
        except BaseException:
            await self.close()
            raise

    async def _check_stream(self) -> None:
        wanted = f"{self.prefix}.>"
        try:
            info = await self._js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            if not self.create_stream:
                raise
            cfg = api.StreamConfig(
                name=self.stream,
                subjects=[wanted],
                storage=api.StorageType.FILE,
                duplicate_window=self.duplicate_window,
                num_replicas=self.replicas,
            )
            try:
                info = await self._js.add_stream(cfg)
            except nats.js.errors.BadRequestError as e:
                try:
                    info = await self._js.stream_info(self.stream)  # created meanwhile by a peer
                except nats.js.errors.NotFoundError:
                    raise await self._not_created(e) from None
        subjects = info.config.subjects or []
        if not any(_covers(s, wanted) for s in subjects):
            raise ValueError(
                f"stream {self.stream!r} has subjects {subjects}, which do not capture {wanted!r}"
            )
        if info.config.duplicate_window:
            self.duplicate_window = float(info.config.duplicate_window)

    async def _not_created(self, e: nats.js.errors.BadRequestError) -> SinkError:
        """Why the stream could not be created, in one sentence (another stream holding the
        subjects is the usual reason: name it)."""
        why = e.description or str(e)
        wanted = f"{self.prefix}.>"
        other = ""
        with contextlib.suppress(Exception):
            other = await self._js.find_stream_name_by_subject(wanted)
        hint = (
            f": stream {other!r} already captures {wanted} (record into it with ?stream={other}, "
            "or use another ?prefix=)"
            if other
            else ""
        )
        return SinkError(f"cannot create the NATS stream {self.stream!r} for {wanted}: {why}{hint}")

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                await asyncio.wait_for(nc.close(), timeout=5)

    async def write(self, batch: list[Item]) -> None:
        """Publish ``batch``; returns when JetStream acknowledged every message."""
        if not batch:
            return
        if self._js is None:
            raise RuntimeError("NATSSink is not open (await sink.open() first)")
        msgs = self._messages(batch)
        pending = msgs
        deadline = time.monotonic() + self.retry_for
        delay = 0.1
        while True:
            pending, error = await self._publish(pending)
            if not pending:
                break
            self.stats.retries += len(pending)
            self.stats.last_error = error
            if time.monotonic() + delay > deadline:
                raise ConnectionError(f"{len(pending)} of {len(msgs)} not acknowledged: {error}")
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
        self.stats.batches += 1

    def _messages(self, batch: list[Item]) -> list[_Message]:
        """The messages of ``batch``: one per item, or records bundled per (broker, type)."""
        msgs: list[_Message] = []
        if self.bundle == 1:
            for item in batch:
                payload, rid = encode_with_id(item)
                msgs.append((subject_of(item, self.prefix), payload, {MSG_ID: rid.hex()}, 1))
            return msgs
        open_: dict[tuple[str, str], tuple[list[bytes], list[bytes]]] = {}
        for item in batch:
            payload, rid = encode_with_id(item)
            if not isinstance(item, Record):
                msgs.append((subject_of(item, self.prefix), payload, {MSG_ID: rid.hex()}, 1))
                continue
            key = (item.broker, item.type)
            group = open_.get(key)
            if group is None:
                group = open_[key] = ([], [])
            group[0].append(payload)
            group[1].append(rid)
            if len(group[0]) >= self.bundle:
                msgs.append(self._bundle(key, *open_.pop(key)))
        msgs.extend(self._bundle(key, *group) for key, group in open_.items())
        return msgs

    def _bundle(self, key: tuple[str, str], payloads: list[bytes], ids: list[bytes]) -> _Message:
        subject = f"{self.prefix}.{key[0]}.{token(key[1])}.{BUNDLE}"
        rid = hashlib.blake2b(b"".join(ids), digest_size=16).hexdigest()
        return subject, b"\n".join(payloads), {MSG_ID: rid, ITEMS: str(len(payloads))}, len(ids)

    async def _publish(self, msgs: list[_Message]) -> tuple[list[_Message], str]:
        """Publish all, await all acks; returns (messages to send again, last error)."""
        again: list[_Message] = []
        error = ""
        # Chunks of at most max_pending: publish_async never waits for a free slot.
        for i in range(0, len(msgs), self.max_pending):
            chunk = msgs[i : i + self.max_pending]
            futures: list[asyncio.Future[Any] | None] = []
            for subject, payload, headers, _ in chunk:
                try:
                    fut = await self._js.publish_async(
                        subject, payload, stream=self.stream, headers=dict(headers)
                    )
                except Exception as e:  # not sent (e.g. reconnect buffer full): send again
                    error = f"{type(e).__name__}: {e}"
                    fut = None
                futures.append(fut)
            live = [f for f in futures if f is not None]
            if live:
                _, not_done = await asyncio.wait(live, timeout=self.ack_timeout)
                for f in not_done:
                    f.cancel()  # frees its slot; the message is published again
            for msg, fut in zip(chunk, futures, strict=True):
                if fut is None or fut.cancelled():
                    error = error or f"no acknowledgement within {self.ack_timeout}s"
                    again.append(msg)
                    continue
                exc = fut.exception()
                if exc is not None:
                    error = f"{type(exc).__name__}: {exc}"
                    again.append(msg)
                    continue
                self.stats.published += 1
                self.stats.items += msg[3]
                if fut.result().duplicate:
                    self.stats.duplicates += 1
        return again, error


async def connect(
    server: str, name: str, open_timeout: float, on_error: Any, stats: Any, what: str
) -> Any:
    """Connect to ``server`` trying for at most ``open_timeout`` seconds, then raise
    :class:`~krfeed.sinks.SinkUnavailable`; the client returned reconnects for ever.

    nats-py retries a failed *first* connection for ever when reconnecting is unlimited, so
    the first connection is made with reconnecting off (one attempt each, in a bounded loop)
    and unlimited reconnecting is switched on once connected."""
    from krfeed.sinks import SinkUnavailable

    deadline = time.monotonic() + open_timeout
    causes: list[BaseException] = []

    async def first_error(e: Exception) -> None:
        if len(causes) < 4:
            causes.append(e)
        await on_error(e)

    while True:
        left = deadline - time.monotonic()
        causes.clear()
        try:
            nc = await nats.connect(
                servers=servers_of(server),
                name=name,
                allow_reconnect=False,
                max_reconnect_attempts=1,  # 0 would mean for ever in nats-py
                connect_timeout=max(0.5, min(2.0, left)),
                reconnect_time_wait=0.5,
                error_cb=first_error,
            )
            break
        except (nats.errors.Error, OSError, TimeoutError) as e:
            last = _why(causes[0] if causes else e)
            stats.last_error = f"{type(e).__name__}: {e}"
            if time.monotonic() + 0.5 > deadline:
                hosts = ",".join(urlsplit(u).netloc.rsplit("@", 1)[-1] for u in servers_of(server))
                raise SinkUnavailable(
                    f"cannot reach NATS at {hosts} within {open_timeout:g}s ({what}): {last}"
                ) from None
            await asyncio.sleep(0.5)
    # read by the client whenever the connection drops
    nc.options["allow_reconnect"] = True
    nc.options["max_reconnect_attempts"] = -1
    return nc


def _why(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is nats-server running there?)"
    if isinstance(e, TimeoutError):
        return "no answer (timed out)"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror[:1].lower() + e.strerror[1:]
    return str(e) or type(e).__name__


def servers_of(server: str) -> list[str]:
    """The servers of a URL that names several (a cluster): ``nats://a:4222,b:4222`` ->
    ``["nats://a:4222", "nats://b:4222"]``; a user and password apply to each."""
    parts = urlsplit(server)
    netloc = parts.netloc
    auth = ""
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        auth += "@"
    hosts = [h.strip() for h in netloc.split(",") if h.strip()]
    scheme = parts.scheme or "nats"
    return [f"{scheme}://{auth}{h}" for h in hosts] or [server]


def _covers(pattern: str, subject: str) -> bool:
    """Whether stream subject ``pattern`` captures every subject matched by ``subject``."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return True
        if i >= len(s) or s[i] == ">" or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


__all__ = [
    "BUNDLE",
    "ITEMS",
    "MSG_ID",
    "NATSSink",
    "NATSStats",
    "servers_of",
    "split_url",
    "subject_of",
    "token",
]
