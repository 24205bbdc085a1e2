"""One WebSocket session: connect → authenticate → replay subscriptions → read, for as long as
the feed runs.

The engine (:class:`Session`) is written once: reconnect on two paths (the socket alone,
quickly, while the cached token or approval key is valid; a capped, fully jittered backoff for
authentication and refusals, reset only after the session proved healthy), heartbeat echo, an
idle timeout for half-open sockets, a data watchdog, subscription state and paced sends, and
shutdown.
:class:`KiwoomSession` and :class:`KISSession` add what differs: authentication, framing and the
meaning of replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from krfeed.auth import KISApprovalKey, KiwoomToken, mask
from krfeed.brokers import KIS, Kiwoom
from krfeed.errors import AuthError, TransientError, network_reason
from krfeed.events import (
    Connected,
    Disconnected,
    Event,
    LayoutChanged,
    LoggedIn,
    Reconnected,
    Reconnecting,
    SessionFailed,
    Stalled,
    Subscribed,
    SubscribeFailed,
    Unsubscribed,
)
from krfeed.logs import get_logger
from krfeed.protocol.kis import KISCodec
from krfeed.protocol.kiwoom import TOKEN_ERRORS, KiwoomCodec
from krfeed.protocol.messages import (
    ControlReply,
    DecodeError,
    LayoutNotice,
    LoginResult,
    Ping,
    RegResult,
    SystemMessage,
)
from krfeed.protocol.text import CP949, frame_text, with_raw_bytes
from krfeed.records.base import Record
from krfeed.schema.convert import KST

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Literal

    #: the client socket hands text frames over as bytes (``decode_text=False``)
    _WebSocket = aiohttp.ClientWebSocketResponse[Literal[False]]

    from krfeed.conditions import ConditionManager

log = get_logger("krfeed.session")


class SubState(StrEnum):
    DESIRED = "desired"  # wanted, not sent on the current connection
    PENDING = "pending"  # sent (or queued to send), no reply yet
    CONFIRMED = "confirmed"
    FAILED = "failed"
    REMOVED = "removed"


@dataclass(eq=False)
class Subscription:
    """One (broker, type, item) registration and its state on its session."""

    broker: str
    type: str
    item: str
    account: bool = False
    state: SubState = SubState.DESIRED
    reason: str = ""
    code: str = ""
    session: str = ""
    group: str = ""
    settled: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    #: An unsubscribe was sent on the current connection and its reply is awaited.
    removing: bool = field(default=False, init=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.type, self.item)

    def _set(self, state: SubState, reason: str = "", code: str = "") -> None:
        self.state = state
        self.reason = reason
        self.code = code
        if state in (SubState.CONFIRMED, SubState.FAILED, SubState.REMOVED):
            self.settled.set()
        else:
            self.settled.clear()


@dataclass
class SessionOptions:
    """Timing and limits of a session; every UNVERIFIED broker behaviour is a setting here."""

    backoff_base: float = 0.5
    #: The cap of the slow path: (re-)authentication, refusals (a LOGIN or approval key
    #: refused, an app key in use, "try again later"), a connection that ended before it
    #: proved healthy, and every retry outside market hours.
    backoff_cap: float = 30.0
    #: The cap of the quick path, within market hours: a healthy connection was lost, or the
    #: broker could not be reached, while the cached token / approval key is still valid, so
    #: only the socket is retried (full jitter, from backoff_base up to this, never above
    #: backoff_cap). Data flows again within about this long after the broker is back.
    #: None: always the slow path.
    reconnect_cap: float | None = 2.0
    connect_timeout: float = 10.0
    login_timeout: float = 10.0
    #: No frame at all (not even a heartbeat) for this long: the socket is half-open. This
    #: fixed limit applies until the session has seen two heartbeats on one connection, and
    #: is the ceiling afterwards. (KIS sends PINGPONG about every 10 s; Kiwoom's PING interval
    #: is undocumented.)
    idle_timeout: float = 90.0
    #: Once the heartbeat cadence is learned (the median of the last intervals between the
    #: broker's PING/PINGPONG frames), give up after this many heartbeats without any frame:
    #: the limit is clamp(idle_heartbeats x interval, idle_floor, idle_timeout). 0 disables
    #: learning (idle_timeout alone).
    idle_heartbeats: float = 3.0
    #: The least the learned limit can be, so that heartbeats in a burst do not make it tiny.
    idle_floor: float = 3.0
    #: Subscribed market data silent this long while heartbeats continue: reconnect.
    #: Each stall in a row without data in between doubles it (up to an hour), so a holiday
    #: or a halted market costs a few reconnects, not one every few minutes. None disables it.
    stall_timeout: float | None = 120.0
    #: The watchdog only runs within these KST hours on weekdays (None: always).
    market_hours: tuple[dtime, dtime] | None = (dtime(8, 0), dtime(20, 0))
    #: A session counts as healthy (backoff resets) after receiving data, or after this long
    #: logged in with its subscriptions confirmed.
    healthy_after: float = 10.0
    subscribe_interval: float = 0.05
    #: Consecutive failed logins / auth errors before a session gives up.
    max_auth_failures: int = 5
    #: KIS OPSP8996 (app key in use) within this long after a working connection was lost is
    #: retried with backoff: the broker may still hold that connection (half-open). Met on a
    #: first connection, or later than this, it is fatal.
    in_use_retry_for: float = 120.0


class EventSink(Protocol):
    """What a session delivers into (the Feed)."""

    def control(self, event: Event | DecodeError) -> None: ...

    def offer(self, record: Record) -> bool:
        """Take ``record`` if that needs no waiting (the common case); False: use record()."""
        ...

    async def record(self, record: Record) -> None: ...

    async def decode_error(self, error: DecodeError) -> None: ...

    def raw(self, session: str, conn: int, received_at: datetime, text: str) -> None: ...


class FatalSession(Exception):
    """This session must stop; reconnecting would not help (or would do harm)."""

    def __init__(self, reason: str, code: str = "") -> None:
        super().__init__(reason)
        self.code = code


class _Reconnect(Exception):
    """End this connection and reconnect (``immediate`` skips the backoff once)."""

    def __init__(self, reason: str, immediate: bool = False) -> None:
        super().__init__(reason)
        self.immediate = immediate


@dataclass
class SessionStats:
    connects: int = 0
    reconnects: int = 0
    frames: int = 0
    records: int = 0
    decode_errors: int = 0
    layout_notices: int = 0  # types seen in a longer layout than krfeed knows
    #: frames that were not valid UTF-8 (decoded leniently; see krfeed.protocol.text)
    invalid_utf8: int = 0
    #: of those, frames that were valid CP949 as a whole
    cp949: int = 0
    pings: int = 0
    stalls: int = 0
    #: the learned heartbeat interval (None until two heartbeats on one connection)
    heartbeat_interval: float | None = None
    last_frame_at: float = 0.0
    last_data_at: float = 0.0
    state: str = "idle"


class Session:
    """The broker-independent engine of one WebSocket session."""

    broker = ""

    def __init__(
        self,
        name: str,
        url: str,
        http: aiohttp.ClientSession,
        sink: EventSink,
        options: SessionOptions,
    ) -> None:
        self.name = name
        self.url = url
        self._http = http
        self._sink = sink
        self.opts = options
        self.subs: dict[tuple[str, str], Subscription] = {}
        self.stats = SessionStats()
        self._layouts_seen: set[tuple[str, int, tuple[str, ...]]] = set()
        self._ws: _WebSocket | None = None
        self._ops: asyncio.Queue[tuple[str, Callable[[], None]]] | None = None
        self._ready = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._healthy = False
        self._ready_at = 0.0
        self._opened_at = 0.0
        self._idle_reason = ""
        self._waiting_since = 0.0  # when the read loop's receive() began waiting (0: busy)
        self._last_beat: float | None = None  # the latest heartbeat on the current connection
        self._beats: deque[float] = deque(maxlen=8)  # intervals between heartbeats
        self._stall_streak = 0
        self._last_stall_at = 0.0
        self._got_data = False
        self._conn_no = 0
        self._down_since: float | None = None
        self._attempt = 0  # attempts since the last healthy connection (both paths)
        self._quick_attempts = 0
        self._slow_attempts = 0
        self._auth_failures = 0
        self._lost_good_at: float | None = None  # when a connection that had worked ended
        self._leaving: list[Subscription] = []  # replaced while their unsubscribe is in flight
        self.failed: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.stats.state}>"

    # ---- public ----

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"krfeed-session-{self.name}")

    @property
    def connected(self) -> bool:
        return self._ready

    def registrations(self) -> int:
        """Registrations held (desired, pending or confirmed)."""
        return sum(
            1 for s in self.subs.values() if s.state not in (SubState.FAILED, SubState.REMOVED)
        )

    def add(self, subs: Iterable[Subscription]) -> None:
        """Take over these subscriptions; sent now when connected, else on (re)connect."""
        new = []
        for s in subs:
            old = self.subs.get(s.key)
            if old is not None and old.state not in (SubState.FAILED, SubState.REMOVED):
                if not old.removing:
                    continue
                # subscribed again while its unsubscribe is in flight: the new registration
                # goes out after the unsubscribe, whose reply then settles only the old one
                self._leaving.append(old)
            s.session = self.name
            s._set(SubState.DESIRED)
            self.subs[s.key] = s
            new.append(s)
        self._assign(new)
        if self._ready and new:
            self._queue_subscribe(new)

    def remove(self, keys: Iterable[tuple[str, str]]) -> list[Subscription]:
        """Drop these subscriptions (unregistering them if connected)."""
        gone = [self.subs[k] for k in keys if k in self.subs and not self.subs[k].removing]
        sent = []
        for s in gone:
            if self._ready and s.state in (SubState.PENDING, SubState.CONFIRMED):
                sent.append(s)
            else:
                del self.subs[s.key]
                s._set(SubState.REMOVED)
                self._sink.control(
                    Unsubscribed(broker=self.broker, session=self.name, type=s.type, item=s.item)
                )
        if sent:
            self._queue_unsubscribe(sent)
        return gone

    def send_frame(self, frame: str) -> bool:
        """Queue a frame of one's own (paced with the subscriptions); False when not connected."""
        if not self._ready or self._ops is None:
            return False
        self._ops.put_nowait((frame, _nothing))
        return True

    async def close(self, timeout: float = 3.0) -> None:
        """Unsubscribe politely (best effort), close the socket, stop the task."""
        self._closing = True
        ws = self._ws
        if ws is not None and not ws.closed and self._ready:
            live = [s for s in self.subs.values() if s.state == SubState.CONFIRMED]
            try:
                async with asyncio.timeout(min(1.0, timeout / 2)):
                    for frame, _ in self._unsubscribe_frames(live):
                        await ws.send_str(frame)
            except (TimeoutError, ConnectionError, aiohttp.ClientError, RuntimeError):
                pass
        if ws is not None and not ws.closed:
            try:
                async with asyncio.timeout(min(1.0, timeout / 2)):
                    await ws.close()
            except (TimeoutError, ConnectionError, aiohttp.ClientError):
                pass
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(_swallow(task))
            except TimeoutError:
                log.warning("session %s did not stop within %.1fs", self.name, timeout)
        self.stats.state = "closed"

    # ---- broker hooks ----

    async def _credential(self, renew: bool = False) -> str:
        raise NotImplementedError

    def _credential_cached(self) -> bool:
        """The next :meth:`_credential` needs no request (a valid one is cached)."""
        return False

    async def _on_open(self, ws: _WebSocket, credential: str) -> None:
        raise NotImplementedError

    async def _on_message(self, msg: Any, ws: _WebSocket) -> None:
        raise NotImplementedError

    def _assign(self, subs: list[Subscription]) -> None:
        """Broker-specific placement (Kiwoom groups)."""

    def _subscribe_frames(self, subs: list[Subscription]) -> list[tuple[str, list[Subscription]]]:
        raise NotImplementedError

    def _unsubscribe_frames(self, subs: list[Subscription]) -> list[tuple[str, list[Subscription]]]:
        raise NotImplementedError

    def _sent_subscribe(self, subs: list[Subscription]) -> None:
        """Called just before a subscribe frame for ``subs`` goes out."""

    def _sent_unsubscribe(self, subs: list[Subscription]) -> None:
        """Called just before an unsubscribe frame for ``subs`` goes out."""

    def _reset_connection_state(self) -> None:
        """Forget per-connection state (pending reply queues)."""

    decode: Callable[[str | bytes, datetime], list[Any]]

    # ---- engine ----

    def _emit(self, ev: Event | DecodeError) -> None:
        self._sink.control(ev)

    def _layout_notice(self, m: LayoutNotice) -> None:
        """A longer layout than krfeed knows: said once per session, type and layout (the
        codec is new on every connection), as an event and in the log."""
        key = (m.type, m.fields, m.unknown)
        if key in self._layouts_seen:
            return
        self._layouts_seen.add(key)
        self.stats.layout_notices += 1
        log.warning("session %s: %s", self.name, m.message)
        self._emit(
            LayoutChanged(
                broker=m.broker,
                session=self.name,
                type=m.type,
                fields=m.fields,
                known=m.known,
                extra=m.extra,
                unknown=m.unknown,
                message=m.message,
            )
        )

    def _backoff(self, attempt: int, cap: float | None = None) -> float:
        cap = self.opts.backoff_cap if cap is None else cap
        return random.uniform(0, min(cap, self.opts.backoff_base * 2 ** (attempt - 1)))

    def _retry_path(self, refused: bool, opened: bool, was_healthy: bool) -> str:
        """How to wait before the next attempt: ``"socket"`` (the short cap) when only the
        socket needs retrying — a healthy connection was lost or no socket could be opened,
        with nothing refused, the cached credential still valid and within market hours —
        else ``"backoff"``. A socket that opened and ended before it proved healthy takes the
        slow path, so a broker that keeps closing new connections is not met with a loop of
        quick reconnects."""
        cap = self.opts.reconnect_cap
        if refused or cap is None or (opened and not was_healthy):
            return "backoff"
        if not _in_market_hours(self.opts.market_hours) or not self._credential_cached():
            return "backoff"
        return "socket"

    async def _run(self) -> None:
        immediate = False
        while not self._closing:
            reason = ""
            refused = False
            self._opened_at = 0.0
            try:
                reason = await self._connect_once()
            except FatalSession as e:
                self._fail(str(e), e.code)
                return
            except _Reconnect as e:
                reason, immediate = str(e), e.immediate
                refused = True
            except asyncio.CancelledError:
                raise
            except TransientError as e:
                reason = str(e)
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                reason = _describe(e)
            except Exception as e:
                log.exception("session %s: unexpected error", self.name)
                reason = f"internal error: {type(e).__name__}: {e}"
                refused = True  # not understood: the slow path
            finally:
                was_ready = self._ready
                self._ready = False
                self._ws = None
                self._ops = None
                self._reset_connection_state()
                # an unsubscribe cut off by the disconnect is complete: the next connection
                # starts with nothing registered, so it must not be replayed
                for s in [*self._leaving, *(s for s in self.subs.values() if s.removing)]:
                    self._removed(s)
                for s in self.subs.values():
                    if s.state in (SubState.PENDING, SubState.CONFIRMED):
                        s._set(SubState.DESIRED)
                if was_ready and self._got_data:
                    self._healthy = True  # data came (the watchdog may not have looked yet)
                if self._healthy or self._got_data:
                    self._lost_good_at = time.monotonic()
                self._got_data = False
            if self._closing:
                break
            if self._down_since is None:
                self._down_since = time.monotonic()
            if was_ready or self.stats.state == "connected":
                self._emit(Disconnected(broker=self.broker, session=self.name, reason=reason))
            self.stats.state = "reconnecting"
            was_healthy = self._healthy
            if was_healthy:
                self._attempt = self._quick_attempts = self._slow_attempts = 0
            self._healthy = False
            self._attempt += 1
            path = self._retry_path(refused, self._opened_at > 0, was_healthy)
            if immediate:
                path, delay = "now", 0.0
            elif path == "socket":
                self._quick_attempts += 1
                cap = min(self.opts.reconnect_cap or 0.0, self.opts.backoff_cap)
                delay = self._backoff(self._quick_attempts, cap)
            else:
                self._slow_attempts += 1
                delay = self._backoff(self._slow_attempts)
            immediate = False
            self._emit(
                Reconnecting(
                    broker=self.broker,
                    session=self.name,
                    attempt=self._attempt,
                    delay=round(delay, 3),
                    reason=reason,
                    path=path,
                )
            )
            log.info("session %s: %s; reconnecting in %.2fs (%s)", self.name, reason, delay, path)
            await asyncio.sleep(delay)

    def _fail(self, reason: str, code: str) -> None:
        self.failed = reason
        self.stats.state = "failed"
        log.warning("session %s stopped: %s", self.name, reason)
        self._emit(SessionFailed(broker=self.broker, session=self.name, reason=reason, code=code))
        self._emit(Disconnected(broker=self.broker, session=self.name, reason=reason, fatal=True))
        for s in self.subs.values():
            if s.state not in (SubState.FAILED, SubState.REMOVED):
                s._set(SubState.FAILED, f"session stopped: {reason}", code)

    def _removed(self, s: Subscription) -> None:
        """``s`` is no longer registered: forget it and say so."""
        if self.subs.get(s.key) is s:
            del self.subs[s.key]
        elif s in self._leaving:
            self._leaving.remove(s)
        s.removing = False
        s._set(SubState.REMOVED)
        self._emit(Unsubscribed(broker=self.broker, session=self.name, type=s.type, item=s.item))

    async def _connect_once(self) -> str:
        try:
            credential = await self._credential()
        except AuthError as e:
            raise FatalSession(str(e), e.code) from None
        except TransientError as e:
            # the token / approval endpoint failed or asks to wait: the slow path
            raise _Reconnect(str(e)) from None
        self._conn_no += 1
        self.stats.state = "connecting"
        try:
            async with asyncio.timeout(self.opts.connect_timeout):
                ws = await self._http.ws_connect(
                    self.url,
                    heartbeat=None,  # the brokers' text-level heartbeats are echoed instead
                    autoping=True,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                    max_msg_size=16 * 1024 * 1024,
                    compress=0,
                    # text frames as bytes: a frame with invalid UTF-8 must not close the
                    # connection with 1007 (seen on the live KIS wire); decoded in _read_loop
                    decode_text=False,
                )
        except TimeoutError:
            raise TransientError(
                f"no WebSocket handshake within {self.opts.connect_timeout:.0f}s"
            ) from None
        self._ws = ws
        self.stats.connects += 1
        self.stats.state = "connected"
        self._got_data = False
        self._ready_at = 0.0
        self._opened_at = time.monotonic()
        self._idle_reason = ""
        self._waiting_since = 0.0
        self._last_beat = None  # an interval spans two heartbeats of one connection
        self._ops = asyncio.Queue()
        self._emit(Connected(broker=self.broker, session=self.name, url=self.url))
        sender = asyncio.create_task(self._sender(ws, self._ops))
        watchdog = asyncio.create_task(self._watchdog(ws))
        try:
            await self._on_open(ws, credential)
            return await self._read_loop(ws)
        finally:
            sender.cancel()
            watchdog.cancel()
            await _swallow(sender)
            await _swallow(watchdog)
            if not ws.closed:
                try:
                    async with asyncio.timeout(1.0):
                        await ws.close()
                except (TimeoutError, ConnectionError, aiohttp.ClientError):
                    pass

    def _became_ready(self) -> None:
        """Logged in: announce it, note a reconnect, replay the desired subscriptions."""
        self._ready = True
        self._auth_failures = 0
        self._ready_at = time.monotonic()
        self._emit(LoggedIn(broker=self.broker, session=self.name))
        if self._down_since is not None:
            self.stats.reconnects += 1
            self._emit(
                Reconnected(
                    broker=self.broker,
                    session=self.name,
                    attempt=self._attempt,
                    gap=round(time.monotonic() - self._down_since, 3),
                )
            )
            self._down_since = None
        todo = [s for s in self.subs.values() if s.state == SubState.DESIRED]
        if todo:
            self._queue_subscribe(todo)

    def _queue_subscribe(self, subs: list[Subscription]) -> None:
        assert self._ops is not None
        for s in subs:
            s._set(SubState.PENDING)
        for frame, group in self._subscribe_frames(subs):
            self._ops.put_nowait((frame, _bind(self._sent_subscribe, group)))

    def _queue_unsubscribe(self, subs: list[Subscription]) -> None:
        assert self._ops is not None
        for s in subs:
            s._set(SubState.PENDING)
            s.reason = "unsubscribing"
            s.removing = True
        for frame, group in self._unsubscribe_frames(subs):
            self._ops.put_nowait((frame, _bind(self._sent_unsubscribe, group)))

    async def _sender(
        self,
        ws: _WebSocket,
        ops: asyncio.Queue[tuple[str, Callable[[], None]]],
    ) -> None:
        """Sends (un)subscribe frames one at a time, paced: brokers block bursts."""
        while True:
            frame, before = await ops.get()
            before()
            await ws.send_str(frame)
            if self.opts.subscribe_interval:
                await asyncio.sleep(self.opts.subscribe_interval)

    async def _read_loop(self, ws: _WebSocket) -> str:
        sink = self._sink
        offer = sink.offer
        stats = self.stats
        while True:
            # No timeout here: a timeout per receive costs more than decoding a small frame.
            # The watchdog closes the socket once this receive() has waited idle_timeout.
            self._waiting_since = time.monotonic()
            msg = await ws.receive()
            self._waiting_since = 0.0
            t = msg.type
            if t is aiohttp.WSMsgType.TEXT or t is aiohttp.WSMsgType.BINARY:
                data = msg.data
            elif t is aiohttp.WSMsgType.ERROR:
                return f"connection error: {_describe(ws.exception())}"
            elif self._idle_reason:
                return self._idle_reason
            else:
                code = ws.close_code
                return f"closed by server (code {code})" if code else "connection lost"
            received_at = datetime.now(UTC)
            now = time.monotonic()
            stats.frames += 1
            stats.last_frame_at = now
            text, how = frame_text(data)
            if how is not None:
                self._lenient_frame(how)
            sink.raw(self.name, self._conn_no, received_at, text)
            msgs = self.decode(text, received_at)
            if how is not None:
                msgs = with_raw_bytes(msgs, data, how)
            for m in msgs:
                if isinstance(m, Record):
                    stats.records += 1
                    stats.last_data_at = now
                    self._got_data = True
                    if not offer(m):
                        await sink.record(m)
                elif isinstance(m, Ping):
                    stats.pings += 1
                    self._heartbeat(now)
                    await ws.send_str(m.raw)
                elif isinstance(m, DecodeError):
                    stats.decode_errors += 1
                    await sink.decode_error(m)
                elif isinstance(m, LayoutNotice):
                    self._layout_notice(m)
                else:
                    await self._on_message(m, ws)

    def _heartbeat(self, now: float) -> None:
        """A PING/PINGPONG arrived: learn the broker's cadence from the gaps between them."""
        if self._last_beat is not None:
            self._beats.append(now - self._last_beat)
            ordered = sorted(self._beats)
            self.stats.heartbeat_interval = ordered[len(ordered) // 2]
        self._last_beat = now

    def idle_limit(self) -> tuple[float, str]:
        """Seconds without any frame after which the socket counts as half-open, and why."""
        opts = self.opts
        beat = self.stats.heartbeat_interval
        if beat is None or opts.idle_heartbeats <= 0:
            return opts.idle_timeout, f"no frame for {opts.idle_timeout:g}s"
        limit = min(opts.idle_timeout, max(opts.idle_floor, opts.idle_heartbeats * beat))
        return limit, (
            f"no frame for {limit:.1f}s, {limit / beat:.1f} heartbeats at the learned "
            f"interval of {beat:.2f}s"
        )

    def _lenient_frame(self, how: str) -> None:
        stats = self.stats
        stats.invalid_utf8 += 1
        if how == CP949:
            stats.cp949 += 1
        if stats.invalid_utf8 == 1:
            log.warning(
                "session %s: a text frame was not valid UTF-8 (decoded as %s); counted in "
                "stats invalid_utf8 from now on",
                self.name,
                "CP949" if how == CP949 else "UTF-8 with replacement characters",
            )

    async def _watchdog(self, ws: _WebSocket) -> None:
        opts = self.opts
        base = 0.5 if opts.stall_timeout is None else max(0.05, min(1.0, opts.stall_timeout / 4))
        while not ws.closed:
            limit, why = self.idle_limit()
            await asyncio.sleep(min(base, max(0.05, limit / 8)))
            now = time.monotonic()
            waiting = self._waiting_since
            limit, why = self.idle_limit()
            if waiting and now - waiting > limit:
                # the read loop returns this reason when its receive() ends with the close
                self._idle_reason = f"{why} (half-open connection)"
                log.warning("session %s: %s, reconnecting", self.name, self._idle_reason)
                await ws.close(code=1000, message=b"idle")
                return
            if not self._ready:
                if now - self._opened_at > opts.login_timeout:
                    log.warning(
                        "session %s: not logged in after %.0fs", self.name, opts.login_timeout
                    )
                    await ws.close(code=1000, message=b"login timeout")
                    return
                continue
            up = now - self._ready_at
            if not self._healthy and (self._got_data or up >= opts.healthy_after):
                self._healthy = True
            st = opts.stall_timeout
            if st is None or not _in_market_hours(opts.market_hours):
                continue
            watched = [
                s for s in self.subs.values() if s.state == SubState.CONFIRMED and not s.account
            ]
            if not watched:
                continue
            if self.stats.last_data_at > self._last_stall_at:
                self._stall_streak = 0
            limit = min(3600.0, st * 2 ** min(self._stall_streak, 8))
            since = now - max(self.stats.last_data_at, self._ready_at)
            if since > limit:
                self._stall_streak += 1
                self._last_stall_at = now
                self.stats.stalls += 1
                self._emit(
                    Stalled(broker=self.broker, session=self.name, silent_for=round(since, 1))
                )
                log.warning("session %s: no data for %.0fs, reconnecting", self.name, since)
                await ws.close(code=1000, message=b"stalled")
                return


class KiwoomSession(Session):
    """Kiwoom: LOGIN with the REST token, PING echo, REG/REMOVE in managed groups."""

    broker = "kiwoom"

    def __init__(
        self,
        name: str,
        config: Kiwoom,
        http: aiohttp.ClientSession,
        sink: EventSink,
        options: SessionOptions,
    ) -> None:
        super().__init__(name, config.ws_url, http, sink, options)
        self.config = config
        self.codec = KiwoomCodec()
        self.decode = self.codec.receive
        self.token = KiwoomToken(
            http, config.rest_url, config.appkey, config.secretkey, config.token_cache
        )
        self._reg_fifo: deque[list[Subscription]] = deque()
        self._remove_fifo: deque[list[Subscription]] = deque()
        self._token_retried = False
        self._login_token = ""
        self._groups: dict[str, set[str]] = {}
        #: condition search (조건검색), made on first use: krfeed.conditions
        self.cond: ConditionManager | None = None

    async def _credential(self, renew: bool = False) -> str:
        return await (self.token.renew() if renew else self.token.get())

    def _credential_cached(self) -> bool:
        return self.token.cached()

    async def _on_open(self, ws: _WebSocket, credential: str) -> None:
        self._login_token = credential
        await ws.send_str(self.codec.login(credential))

    def _reset_connection_state(self) -> None:
        self._reg_fifo.clear()
        self._remove_fifo.clear()
        if self.cond is not None:
            self.cond.on_lost()

    def _assign(self, subs: list[Subscription]) -> None:
        cap = self.config.max_items_per_group
        for s in subs:
            for g, items in self._groups.items():
                if s.item in items:
                    s.group = g
                    break
            else:
                for g, items in self._groups.items():
                    if len(items) < cap:
                        items.add(s.item)
                        s.group = g
                        break
                else:
                    g = str(len(self._groups) + 1)
                    if len(g) > 4:
                        raise ValueError("more than 9999 Kiwoom registration groups")
                    self._groups[g] = {s.item}
                    s.group = g

    @staticmethod
    def _blocks(subs: list[Subscription]) -> dict[str, list[tuple[list[str], list[str]]]]:
        """Per group, REG blocks: one per distinct item set, listing its types."""
        by_group: dict[str, dict[str, list[str]]] = {}
        for s in subs:
            by_group.setdefault(s.group, {}).setdefault(s.type, []).append(s.item)
        out: dict[str, list[tuple[list[str], list[str]]]] = {}
        for g, by_type in by_group.items():
            merged: dict[tuple[str, ...], list[str]] = {}
            for typ, items in by_type.items():
                merged.setdefault(tuple(items), []).append(typ)
            out[g] = [(list(items), types) for items, types in merged.items()]
        return out

    def _subscribe_frames(self, subs: list[Subscription]) -> list[tuple[str, list[Subscription]]]:
        return [
            (self.codec.register(blocks, grp_no=g, refresh=True), [s for s in subs if s.group == g])
            for g, blocks in self._blocks(subs).items()
        ]

    def _unsubscribe_frames(self, subs: list[Subscription]) -> list[tuple[str, list[Subscription]]]:
        return [
            (self.codec.remove(blocks, grp_no=g), [s for s in subs if s.group == g])
            for g, blocks in self._blocks(subs).items()
        ]

    def _sent_subscribe(self, subs: list[Subscription]) -> None:
        self._reg_fifo.append(subs)

    def _sent_unsubscribe(self, subs: list[Subscription]) -> None:
        self._remove_fifo.append(subs)

    async def _on_message(self, msg: Any, ws: _WebSocket) -> None:
        if isinstance(msg, LoginResult):
            if msg.ok:
                self._token_retried = False
                self._became_ready()
                if self.cond is not None:
                    self.cond.on_ready()
                return
            self._auth_failures += 1
            why = f"LOGIN refused: {msg.message} (return_code {msg.return_code})"
            if msg.error_code in TOKEN_ERRORS:
                if not self._token_retried:
                    self._token_retried = True
                    try:
                        await self.token.renew(self._login_token)
                    except AuthError as e:
                        raise FatalSession(str(e), e.code) from None
                    raise _Reconnect(f"{why}; got a new token", immediate=True)
                self.token.invalidate()
            if self._auth_failures >= self.opts.max_auth_failures:
                raise FatalSession(
                    f"{why}; {self._auth_failures} login failures in a row", msg.error_code or ""
                )
            raise _Reconnect(why)
        if isinstance(msg, RegResult):
            fifo = self._reg_fifo if msg.trnm == "REG" else self._remove_fifo
            if not fifo:
                log.warning("session %s: %s reply with nothing pending", self.name, msg.trnm)
                return
            subs = fifo.popleft()
            for s in subs:
                if msg.trnm == "REG":
                    if s.state is not SubState.PENDING or s.removing:
                        continue
                    if msg.ok:
                        s._set(SubState.CONFIRMED)
                        self._emit(
                            Subscribed(
                                broker=self.broker, session=self.name, type=s.type, item=s.item
                            )
                        )
                    else:
                        s._set(SubState.FAILED, msg.message or "REG refused", str(msg.return_code))
                        self._emit(
                            SubscribeFailed(
                                broker=self.broker,
                                session=self.name,
                                type=s.type,
                                item=s.item,
                                reason=msg.message or "REG refused",
                                code=str(msg.return_code),
                            )
                        )
                elif s.removing:
                    self._removed(s)
            return
        if self.cond is not None and self.cond.handles(msg):
            self.cond.on_message(msg)
            return
        if isinstance(msg, SystemMessage):
            if msg.code == "R10001":
                raise FatalSession(
                    "another session logged in with the same app key "
                    f"{mask(self.config.appkey)} (R10001): not reconnecting, "
                    "so the two do not keep closing each other",
                    msg.code,
                )
            log.warning("session %s: SYSTEM %s %s", self.name, msg.code, msg.message)
            return
        log.debug("session %s: ignoring %r", self.name, msg)


class KISSession(Session):
    """KIS: approval key, one subscribe frame per (tr_id, tr_key), PINGPONG echo, AES keys."""

    broker = "kis"

    def __init__(
        self,
        name: str,
        config: KIS,
        http: aiohttp.ClientSession,
        sink: EventSink,
        options: SessionOptions,
    ) -> None:
        super().__init__(name, config.ws_url, http, sink, options)
        self.config = config
        self.approval = KISApprovalKey(
            http, config.rest_url, config.appkey, config.secretkey, config.token_cache
        )
        self.codec = KISCodec("", custtype=config.custtype)
        self.decode = self.codec.receive
        # (tr_id, tr_key) -> requests in flight, in the order sent (replies come in that order)
        self._pending: dict[tuple[str, str], deque[tuple[str, Subscription]]] = {}
        self._approval_retried = False
        self._key = ""

    async def _credential(self, renew: bool = False) -> str:
        return await (self.approval.renew() if renew else self.approval.get())

    def _credential_cached(self) -> bool:
        return self.approval.cached()

    def capacity_left(self) -> int:
        return self.config.max_registrations - self.registrations()

    async def _on_open(self, ws: _WebSocket, credential: str) -> None:
        self._key = credential
        self.codec = KISCodec(credential, custtype=self.config.custtype)
        self.decode = self.codec.receive
        self._became_ready()

    def _reset_connection_state(self) -> None:
        self._pending.clear()

    def _subscribe_frames(self, subs: list[Subscription]) -> list[tuple[str, list[Subscription]]]:
        return [(self.codec.subscribe(s.type, s.item), [s]) for s in subs]

    def _unsubscribe_frames(self, subs: list[Subscription]) -> list[tuple[str, list[Subscription]]]:
        return [(self.codec.unsubscribe(s.type, s.item), [s]) for s in subs]

    def _sent_subscribe(self, subs: list[Subscription]) -> None:
        for s in subs:
            self._pending.setdefault(s.key, deque()).append(("sub", s))

    def _sent_unsubscribe(self, subs: list[Subscription]) -> None:
        for s in subs:
            self._pending.setdefault(s.key, deque()).append(("unsub", s))

    async def _on_message(self, msg: Any, ws: _WebSocket) -> None:
        if not isinstance(msg, ControlReply):
            log.debug("session %s: ignoring %r", self.name, msg)
            return
        code = msg.msg_cd
        if code == "OPSP8996":
            lost = self._lost_good_at
            if lost is not None and time.monotonic() - lost < self.opts.in_use_retry_for:
                raise _Reconnect(
                    "app key still in use (OPSP8996), most likely by this session's previous "
                    "connection, which the broker has not dropped yet"
                )
            raise FatalSession(
                f"app key {mask(self.config.appkey)} is already in use by another session "
                "(OPSP8996): not reconnecting",
                code,
            )
        if code == "OPSP0011":
            if not self._approval_retried:
                self._approval_retried = True
                try:
                    await self.approval.renew(self._key)
                except AuthError as e:
                    raise FatalSession(str(e), e.code) from None
                except TransientError:
                    # the refused key must not be used again: the next connection issues anew
                    self.approval.invalidate()
                    raise
                raise _Reconnect("approval key refused (OPSP0011); got a new one", immediate=True)
            raise FatalSession(
                "KIS refuses the approval key even after re-issuing it (OPSP0011)", code
            )
        waiting = self._pending.get((msg.tr_id, msg.tr_key))
        pending = waiting.popleft() if waiting else None
        if waiting is not None and not waiting:
            del self._pending[(msg.tr_id, msg.tr_key)]
        if pending is None:
            if not msg.ok:
                log.warning(
                    "session %s: %s %s for %s/%s", self.name, code, msg.msg1, msg.tr_id, msg.tr_key
                )
            return
        op, s = pending
        if op == "sub":
            if s.state is not SubState.PENDING or s.removing:
                return
            if msg.ok:
                self._approval_retried = False
                s._set(SubState.CONFIRMED)
                self._emit(
                    Subscribed(broker=self.broker, session=self.name, type=s.type, item=s.item)
                )
            else:
                reason = f"{msg.msg1} ({code})"
                s._set(SubState.FAILED, reason, code)
                self._emit(
                    SubscribeFailed(
                        broker=self.broker,
                        session=self.name,
                        type=s.type,
                        item=s.item,
                        reason=reason,
                        code=code,
                    )
                )
        elif s.removing:
            # OPSP0001, or OPSP0003 "not found": either way it is not registered now.
            self._removed(s)


def _nothing() -> None:
    pass


def _bind(fn: Callable[[list[Subscription]], None], subs: list[Subscription]) -> Callable[[], None]:
    return lambda: fn(subs)


async def _swallow(task: asyncio.Task[Any]) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _describe(e: BaseException | None) -> str:
    if e is None:
        return "unknown error"
    return network_reason(e)


def _in_market_hours(hours: tuple[dtime, dtime] | None) -> bool:
    if hours is None:
        return True
    now = datetime.now(KST)
    if now.weekday() >= 5:
        return False
    return hours[0] <= now.time() <= hours[1]
