"""One connection's wire work, for :class:`~krfeed.engine.session.Session`: open the socket,
read and dispatch frames, send paced (un)subscribe frames, and watch for a half-open socket,
a missing login, stalled data and replies that do not come (:mod:`krfeed.engine.requests`)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp

from krfeed.engine.backoff import in_market_hours
from krfeed.engine.classify import describe
from krfeed.engine.liveness import Liveness
from krfeed.engine.options import SessionOptions, SessionStats
from krfeed.engine.requests import Requests
from krfeed.engine.subscriptions import Subscription, SubState
from krfeed.errors import TransientError
from krfeed.events import Event, LayoutChanged, Stalled
from krfeed.logs import get_logger
from krfeed.protocol.messages import DecodeError, LayoutNotice, Ping
from krfeed.protocol.text import CP949, frame_text, with_raw_bytes
from krfeed.records.base import Record

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Literal

    from krfeed.engine.delivery import Delivery

    #: the client socket hands text frames over as bytes (``decode_text=False``)
    _WebSocket = aiohttp.ClientWebSocketResponse[Literal[False]]

log = get_logger("krfeed.session")


class Connection(Requests):
    """The per-connection half of a session (state lives on the session)."""

    broker: str
    name: str
    url: str
    opts: SessionOptions
    stats: SessionStats
    live: Liveness
    subs: dict[tuple[str, str], Subscription]
    decode: Callable[[str | bytes, datetime], list[Any]]
    _http: aiohttp.ClientSession
    _sink: Delivery
    _layouts_seen: set[tuple[str, int, tuple[str, ...]]]
    _ready: bool
    _healthy: bool
    _ready_at: float
    _opened_at: float
    _idle_reason: str
    _waiting_since: float
    _got_data: bool
    _conn_no: int

    def _emit(self, ev: Event | DecodeError) -> None:
        self._sink.control(ev)

    async def _on_message(self, msg: Any, ws: _WebSocket) -> None:
        raise NotImplementedError

    def idle_limit(self) -> tuple[float, str]:
        """Seconds without any frame after which the socket counts as half-open, and why."""
        return self.live.idle_limit()

    async def _open_socket(self) -> _WebSocket:
        try:
            async with asyncio.timeout(self.opts.connect_timeout):
                return await self._http.ws_connect(
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
                return f"connection error: {describe(ws.exception())}"
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
                sink.raw(self.name, self._conn_no, received_at, text, data)
            else:
                sink.raw(self.name, self._conn_no, received_at, text)
            msgs = self.decode(text, received_at)
            if how is not None:
                msgs = with_raw_bytes(msgs, data, how)
            for m in msgs:
                if isinstance(m, Record):
                    stats.records += 1
                    stats.last_data_at = now
                    self._got_data = True
                    if self._awaiting:
                        self._data_for(m)  # before the record: Subscribed comes first
                    if not offer(m):
                        await sink.record(m)
                elif isinstance(m, Ping):
                    stats.pings += 1
                    self.live.heartbeat(now)
                    await ws.send_str(m.raw)
                elif isinstance(m, DecodeError):
                    stats.decode_errors += 1
                    await sink.decode_error(m)
                elif isinstance(m, LayoutNotice):
                    self._layout_notice(m)
                else:
                    await self._on_message(m, ws)

    def _heartbeat(self, now: float) -> None:
        self.live.heartbeat(now)

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
        if opts.reply_timeout is not None:
            base = min(base, max(0.05, opts.reply_timeout / 4))
        while not ws.closed:
            limit = self.idle_limit()[0]
            await asyncio.sleep(min(base, max(0.05, limit / 8)))
            now = time.monotonic()
            if self._ready:
                self._check_replies(now)
            reason = self._watch_once(now)
            if reason is not None:
                await ws.close(code=1000, message=reason.encode())
                return

    def _watch_once(self, now: float) -> str | None:
        """One look of the watchdog: the close message when the socket must go, else None."""
        opts = self.opts
        waiting = self._waiting_since
        limit, why = self.idle_limit()
        if waiting and now - waiting > limit:
            # the read loop returns this reason when its receive() ends with the close
            self._idle_reason = f"{why} (half-open connection)"
            log.warning("session %s: %s, reconnecting", self.name, self._idle_reason)
            return "idle"
        if not self._ready:
            if now - self._opened_at > opts.login_timeout:
                log.warning("session %s: not logged in after %.0fs", self.name, opts.login_timeout)
                return "login timeout"
            return None
        up = now - self._ready_at
        if not self._healthy and (self._got_data or up >= opts.healthy_after):
            self._healthy = True
        st = opts.stall_timeout
        if st is None or not in_market_hours(opts.market_hours):
            return None
        if not any(s.state == SubState.CONFIRMED and not s.account for s in self.subs.values()):
            return None
        since = self.live.stalled(now, self._ready_at, st)
        if since is None:
            return None
        self._emit(Stalled(broker=self.broker, session=self.name, silent_for=round(since, 1)))
        log.warning("session %s: no data for %.0fs, reconnecting", self.name, since)
        return "stalled"

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

    # ---- the loop ----


async def _close_quietly(ws: _WebSocket, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            await ws.close()
    except (TimeoutError, ConnectionError, aiohttp.ClientError):
        pass
