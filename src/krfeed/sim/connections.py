"""The simulator's WebSocket connections: one :class:`Conn` per socket, with one writer task
draining its queue so replies, data and heartbeats leave in order and the faults (silence,
half-open, malformed frames, invalid UTF-8) apply at one place; the tokens it issues; and
:class:`ConnHost`, what a connection needs of the simulator that owns it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import msgspec
from aiohttp import WSMsgType, web

from krfeed.protocol.kis import AesKey
from krfeed.schema.convert import KST
from krfeed.sim.config import SimConfig
from krfeed.sim.faults import invalid_utf8_frame, malformed_kis, malformed_kiwoom

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class ConnHost(Protocol):
    """What a connection uses of its simulator (:class:`~krfeed.sim.server.Simulator`)."""

    config: SimConfig
    counters: Counter[str]
    fault_rng: random.Random
    ping_timeouts: Counter[str]
    account_sent: Counter[str]
    events: dict[str, deque[dict[str, Any]]]
    frames_sent: dict[str, Counter[str]]
    records_sent: dict[str, Counter[str]]

    def heartbeat(self, broker: str) -> str: ...


def dumps(obj: Any) -> str:
    return _encoder.encode(obj).decode()


def loads(text: str | bytes) -> Any:
    return _decoder.decode(text)


def now_kst() -> datetime:
    return datetime.now(KST)


@dataclass
class Token:
    """A Kiwoom token, KIS access token or KIS approval key."""

    value: str
    kind: str  # "kiwoom" | "kis_access" | "kis_approval"
    appkey: str
    expires: float  # time.time()
    revoked: bool = False

    @property
    def broker(self) -> str:
        return "kiwoom" if self.kind == "kiwoom" else "kis"

    def valid(self) -> bool:
        return not self.revoked and time.time() < self.expires


class Out:
    """One queued outbound frame. kind: data | account | control | heartbeat | close."""

    __slots__ = ("account", "code", "kind", "label", "records", "text")

    def __init__(
        self,
        text: str,
        kind: str,
        label: str,
        records: dict[str, int] | None = None,
        account: list[dict[str, Any]] | None = None,
        code: int = 1000,
    ) -> None:
        self.text = text
        self.kind = kind
        self.label = label
        self.records = records
        self.account = account
        self.code = code


class Conn:
    """One WebSocket connection of either broker."""

    def __init__(
        self,
        sim: ConnHost,
        broker: str,
        cid: int,
        ws: web.WebSocketResponse,
        request: web.Request,
    ) -> None:
        self.sim = sim
        self.broker = broker
        self.id = cid
        self.ws = ws
        self.request = request
        self.appkey: str | None = None
        self.logged_in = False
        self.queue: deque[Out] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        # Kiwoom: grp_no -> {(type, item)} (condition searches: Simulator.condition_book)
        self.groups: dict[str, set[tuple[str, str]]] = {}
        # KIS: (tr_id, tr_key) -> key of that subscription; tr_id -> (key, iv) of this session
        self.kis_subs: dict[tuple[str, str], AesKey] = {}
        self.kis_keys: dict[str, tuple[str, str]] = {}
        self.ping_pending_since: float | None = None
        self.silence_until = 0.0
        self.half_open_until = 0.0
        self.hold_session = False
        self.malformed_left = 0
        self.malformed_rate = 0.0
        self.malformed_until = 0.0
        self.malformed_n = 0
        self.invalid_utf8_left = 0
        self.invalid_utf8_rate = 0.0
        self.invalid_utf8_until = 0.0
        self.invalid_utf8_n = 0
        #: replies still to swallow, by kind of request (the swallow_replies fault)
        self.swallow_left: Counter[str] = Counter()
        self.closed = False
        self.tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        return f"Conn({self.broker} #{self.id})"

    # ---- queueing ----

    def push(self, out: Out, *, front: bool = False) -> bool:
        if self.closed:
            return False
        if out.kind == "data" and len(self.queue) >= self.sim.config.max_queue:
            self.sim.counters["frames_dropped"] += 1
            return False
        if front:
            self.queue.appendleft(out)
        else:
            self.queue.append(out)
        self._drained.clear()
        self._wake.set()
        return True

    async def push_wait(self, out: Out, limit: int = 256) -> bool:
        """Queue with backpressure: wait while more than ``limit`` frames are queued."""
        while len(self.queue) >= limit and not self.closed:
            await self.wait_drained(limit // 2)
        return self.push(out)

    async def wait_drained(self, below: int = 1) -> None:
        while len(self.queue) >= below and not self.closed:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), 0.5)

    def control(self, obj: Any, label: str) -> None:
        self.push(Out(obj if isinstance(obj, str) else dumps(obj), "control", label))

    def swallows(self, op: str) -> bool:
        """The reply to this ``op`` request ("subscribe" / "unsubscribe") is not to be sent
        (the ``swallow_replies`` fault); counted in ``replies_swallowed``."""
        for kind in (op, "any"):
            if self.swallow_left[kind] > 0:
                self.swallow_left[kind] -= 1
                self.sim.counters["replies_swallowed"] += 1
                return True
        return False

    def close_after(self, code: int = 1000, reason: str = "", *, front: bool = False) -> None:
        """Close cleanly once what is queued before this has been sent."""
        self.push(Out(reason, "close", "close", code=code), front=front)

    def echo(self) -> None:
        """The client echoed a heartbeat."""
        self.ping_pending_since = None

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    # ---- tasks ----

    async def writer(self) -> None:
        sim = self.sim
        while True:
            if not self.queue:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            out = self.queue.popleft()
            if len(self.queue) < 128:
                self._drained.set()
            now = time.monotonic()
            if out.kind == "close":
                try:
                    reason = out.text.encode()[:123]  # a close reason is at most 123 bytes
                    await self.ws.close(code=out.code, message=reason)
                except Exception:
                    self.abort()
                self.closed = True
                return
            if self.half_open_until > now:
                continue
            if out.kind in ("data", "account") and self.silence_until > now:
                sim.counters["silenced_frames"] += 1
                continue
            text, label, records = out.text, out.label, out.records
            raw: bytes | None = None
            if out.kind == "data" and self._malformed_now(now):
                n = self.malformed_n
                self.malformed_n += 1
                bad = malformed_kiwoom if self.broker == "kiwoom" else malformed_kis
                text, label, records = bad(n, text), "malformed", None
                sim.counters["malformed_sent"] += 1
            elif out.kind == "data" and self._invalid_utf8_now(now):
                raw, kind = invalid_utf8_frame(self.invalid_utf8_n, self.broker, text)
                self.invalid_utf8_n += 1
                sim.counters["invalid_utf8_sent"] += 1
                sim.counters[f"invalid_utf8_{kind}"] += 1
                if kind == "undecodable":
                    label, records = "invalid_utf8", None
            try:
                if raw is None:
                    await self.ws.send_str(text)
                else:
                    await self.ws.send_frame(raw, WSMsgType.TEXT)
            except Exception:
                self.abort()
                return
            sim.frames_sent[self.broker][label] += 1
            if records:
                sim.records_sent[self.broker].update(records)
            if out.account:
                for ev in out.account:
                    sim.events[self.broker].append(ev)
                    sim.account_sent[self.broker] += 1
            if out.kind == "heartbeat" and self.ping_pending_since is None:
                self.ping_pending_since = time.monotonic()

    def _malformed_now(self, now: float) -> bool:
        if self.malformed_left > 0:
            self.malformed_left -= 1
            return True
        if self.malformed_rate > 0:
            if self.malformed_until and now > self.malformed_until:
                self.malformed_rate = 0.0
                return False
            return self.sim.fault_rng.random() < self.malformed_rate
        return False

    def _invalid_utf8_now(self, now: float) -> bool:
        if self.invalid_utf8_left > 0:
            self.invalid_utf8_left -= 1
            return True
        if self.invalid_utf8_rate > 0:
            if self.invalid_utf8_until and now > self.invalid_utf8_until:
                self.invalid_utf8_rate = 0.0
                return False
            return self.sim.fault_rng.random() < self.invalid_utf8_rate
        return False

    async def pinger(self) -> None:
        cfg = self.sim.config
        interval = cfg.ping_interval
        timeout = cfg.effective_ping_timeout
        step = max(0.02, min(interval, timeout) / 4)
        next_ping = time.monotonic() + interval
        while not self.closed:
            await asyncio.sleep(step)
            now = time.monotonic()
            if self.half_open_until > now:
                self.ping_pending_since = None
                next_ping = now + interval
                continue
            pending = self.ping_pending_since
            if pending is not None and now - pending > timeout:
                self.sim.ping_timeouts[self.broker] += 1
                self.close_after(1000, "heartbeat not echoed", front=True)
                return
            if now >= next_ping:
                self.push(Out(self.sim.heartbeat(self.broker), "heartbeat", _hb_label(self.broker)))
                next_ping = now + interval

    def start_pinger(self) -> None:
        if not any(t.get_name() == "pinger" for t in self.tasks):
            self.tasks.append(asyncio.create_task(self.pinger(), name="pinger"))

    async def half_open_then_abort(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.abort()

    # ---- Kiwoom registrations ----

    def registrations(self) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for regs in self.groups.values():
            out |= regs
        return out

    def registered_types(self) -> set[str]:
        return {t for t, _ in self.registrations()}


def _hb_label(broker: str) -> str:
    return "PING" if broker == "kiwoom" else "PINGPONG"
