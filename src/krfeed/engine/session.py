"""The engine of one WebSocket session: connect → authenticate → replay subscriptions → read,
for as long as the feed runs.

:class:`Session` is written once: reconnect on two paths (:mod:`krfeed.engine.backoff`), heartbeat
echo, an idle timeout for half-open sockets and a data watchdog
(:mod:`krfeed.engine.liveness`), subscription state (:mod:`krfeed.engine.subscriptions`), paced
sends and the wait for their replies (:mod:`krfeed.engine.requests`), and shutdown. A broker's
session adapter (``krfeed.brokers.<broker>.session``) adds what differs: authentication,
framing and the meaning of replies; it raises :class:`FatalSession` / :class:`Reconnect`, and
its ``classify`` turns an exception into the engine's :class:`Verdict`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp

from krfeed.engine import backoff as _backoff
from krfeed.engine.classify import FatalSession, Reconnect, Verdict, classify
from krfeed.engine.connection import Connection, _close_quietly
from krfeed.engine.delivery import Delivery
from krfeed.engine.liveness import Liveness
from krfeed.engine.options import SessionOptions, SessionStats
from krfeed.engine.requests import Frames as Frames  # where adapters have imported it from
from krfeed.engine.subscriptions import Subscription, SubscriptionTable, SubState
from krfeed.errors import AuthError, TransientError
from krfeed.events import (
    Connected,
    Disconnected,
    LoggedIn,
    Reconnected,
    Reconnecting,
    SessionFailed,
)
from krfeed.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Literal

    #: the client socket hands text frames over as bytes (``decode_text=False``)
    _WebSocket = aiohttp.ClientWebSocketResponse[Literal[False]]

log = get_logger("krfeed.session")


class Session(Connection):
    """The broker-independent engine of one WebSocket session."""

    broker = ""
    #: exception → what the engine does (an adapter may extend it)
    classify = staticmethod(classify)

    def __init__(
        self,
        name: str,
        url: str,
        http: aiohttp.ClientSession,
        sink: Delivery,
        options: SessionOptions,
    ) -> None:
        self.name = name
        self.url = url
        self._http = http
        self._sink = sink
        self.opts = options
        self.table = SubscriptionTable(name)
        self.subs: dict[tuple[str, str], Subscription] = self.table.by_key
        self.stats = SessionStats()
        self.live = Liveness(options, self.stats)
        self._layouts_seen: set[tuple[str, int, tuple[str, ...]]] = set()
        self._ws: _WebSocket | None = None
        self._ops: asyncio.Queue[tuple[str, Callable[[], None]]] | None = None
        self._requests: deque[tuple[float, bool, list[Subscription]]] = deque()
        self._awaiting = False
        self._ready = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._healthy = False
        self._ready_at = 0.0
        self._opened_at = 0.0
        self._idle_reason = ""
        self._waiting_since = 0.0  # when the read loop's receive() began waiting (0: busy)
        self._got_data = False
        self._conn_no = 0
        self._down_since: float | None = None
        self._attempt = 0  # attempts since the last healthy connection (both paths)
        self._quick: Iterator[float] | None = None  # delays of the socket path …
        self._slow: Iterator[float] | None = None  # … and of the backoff path, since healthy
        self._auth_failures = 0
        self._lost_good_at: float | None = None  # when a connection that had worked ended
        self.failed: str | None = None
        #: Seconds to wait before the first connection (set by the Feed: connect_interval).
        self.start_delay = 0.0

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
        """Registrations held (desired, pending or confirmed) or maybe held (unanswered)."""
        return self.table.count_live()

    def add(self, subs: Iterable[Subscription]) -> None:
        """Take over these subscriptions; sent now when connected, else on (re)connect."""
        new = self.table.take(subs)
        self._assign(new)
        if self._ready and new:
            self._queue_subscribe(new)

    def remove(self, keys: Iterable[tuple[str, str]]) -> list[Subscription]:
        """Drop these subscriptions (unregistering them if connected; also one that failed
        unanswered, which the broker may hold)."""
        gone = [self.subs[k] for k in keys if k in self.subs and not self.subs[k].removing]
        sent = []
        for s in gone:
            if self._ready and (s.state in (SubState.PENDING, SubState.CONFIRMED) or s.unanswered):
                sent.append(s)
            else:
                self._removed(s)
        if sent:
            self._queue_unsubscribe(sent)
        return gone

    def send_frame(self, frame: str) -> bool:
        """Queue a frame of one's own (paced with the subscriptions); False when not connected."""
        if not self._ready or self._ops is None:
            return False
        self._ops.put_nowait((frame, _nothing))
        return True

    async def prepare_close(self) -> None:
        """Called by the Feed on every session before any is closed (adapter extras)."""

    async def close(self, timeout: float = 3.0) -> None:
        """Unsubscribe politely (best effort), close the socket, stop the task."""
        self._closing = True
        ws = self._ws
        if ws is not None and not ws.closed and self._ready:
            live = self.table.in_state(SubState.CONFIRMED)
            try:
                async with asyncio.timeout(min(1.0, timeout / 2)):
                    for frame, _ in self._unsubscribe_frames(live):
                        await ws.send_str(frame)
            except (TimeoutError, ConnectionError, aiohttp.ClientError, RuntimeError):
                pass
        if ws is not None and not ws.closed:
            await _close_quietly(ws, min(1.0, timeout / 2))
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(_swallow(task))
            except TimeoutError:
                log.warning("session %s did not stop within %.1fs", self.name, timeout)
        self.stats.state = "closed"

    # ---- adapter hooks ----

    async def _credential(self, renew: bool = False) -> str:
        raise NotImplementedError

    def _credential_cached(self) -> bool:
        """The next :meth:`_credential` needs no request (a valid one is cached)."""
        return False

    async def _on_open(self, ws: _WebSocket, credential: str) -> None:
        raise NotImplementedError

    def _assign(self, subs: list[Subscription]) -> None:
        """Broker-specific placement (Kiwoom groups)."""

    # (the (un)subscribe frame hooks are krfeed.engine.requests.Requests')

    def _reset_connection_state(self) -> None:
        """Forget per-connection state (pending reply queues)."""

    decode: Callable[[str | bytes, datetime], list[Any]]

    def _retry_path(self, refused: bool, opened: bool, was_healthy: bool) -> str:
        """``"socket"`` or ``"backoff"``: see :func:`krfeed.engine.backoff.retry_path`."""
        return _backoff.retry_path(
            refused=refused,
            opened=opened,
            was_healthy=was_healthy,
            reconnect_cap=self.opts.reconnect_cap,
            in_market_hours=_backoff.in_market_hours(self.opts.market_hours),
            credential_cached=self._credential_cached(),
        )

    async def _run(self) -> None:
        verdict = Verdict("")
        if self.start_delay > 0:  # the feed paces the first connections of many app keys
            await asyncio.sleep(self.start_delay)
        while not self._closing:
            self._opened_at = 0.0
            try:
                verdict = Verdict(await self._connect_once(), immediate=False)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                verdict = self.classify(e)
                if verdict.unexpected:
                    log.exception("session %s: unexpected error", self.name)
                if verdict.fatal:
                    self._fail(verdict.reason, verdict.code)
            finally:
                was_ready = self._connection_ended()
            if verdict.fatal:
                return
            if self._closing:
                break
            await self._wait_to_retry(verdict, was_ready)

    def _connection_ended(self) -> bool:
        """Reset what belonged to the connection; returns whether it had logged in."""
        was_ready = self._ready
        self._ready = False
        self._ws = None
        self._ops = None
        self._requests.clear()
        self._awaiting = False
        self._reset_connection_state()
        for s in self.table.cut_off():
            self._removed(s)
        if was_ready and self._got_data:
            self._healthy = True  # data came (the watchdog may not have looked yet)
        if self._healthy or self._got_data:
            self._lost_good_at = time.monotonic()
        self._got_data = False
        return was_ready

    async def _wait_to_retry(self, verdict: Verdict, was_ready: bool) -> None:
        reason = verdict.reason
        if self._down_since is None:
            self._down_since = time.monotonic()
        if was_ready or self.stats.state == "connected":
            self._emit(Disconnected(broker=self.broker, session=self.name, reason=reason))
        self.stats.state = "reconnecting"
        was_healthy = self._healthy
        if was_healthy:
            self._attempt = 0
            self._quick = self._slow = None
        self._healthy = False
        self._attempt += 1
        opts = self.opts
        path = self._retry_path(verdict.refused, self._opened_at > 0, was_healthy)
        if verdict.immediate:
            path, delay = _backoff.NOW, 0.0
        elif path == _backoff.SOCKET:
            if self._quick is None:
                cap = min(opts.reconnect_cap or 0.0, opts.backoff_cap)
                self._quick = _backoff.backoff(opts.backoff_base, cap)
            delay = next(self._quick)
        else:
            if self._slow is None:
                self._slow = _backoff.backoff(opts.backoff_base, opts.backoff_cap)
            delay = next(self._slow)
        self.stats.last_error = reason
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
        self.table.stop(reason, code)

    async def _connect_once(self) -> str:
        try:
            credential = await self._credential()
        except AuthError as e:
            raise FatalSession(str(e), e.code) from None
        except TransientError as e:
            # the token / approval endpoint failed or asks to wait: the slow path
            raise Reconnect(str(e)) from None
        self._conn_no += 1
        self.stats.state = "connecting"
        ws = await self._open_socket()
        self._ws = ws
        self.stats.connects += 1
        self.stats.state = "connected"
        self._got_data = False
        self._ready_at = 0.0
        self._opened_at = time.monotonic()
        self._idle_reason = ""
        self._waiting_since = 0.0
        self.live.new_connection()
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
                await _close_quietly(ws, 1.0)

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
        todo = self.table.in_state(SubState.DESIRED)
        if todo:
            self._queue_subscribe(todo)


def _nothing() -> None:
    pass


async def _swallow(task: asyncio.Task[Any]) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
