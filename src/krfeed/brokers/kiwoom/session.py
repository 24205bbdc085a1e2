"""The Kiwoom session adapter: LOGIN with the REST token, PING echo, REG/REMOVE in managed
groups, condition search frames handed to :mod:`krfeed.conditions`."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from krfeed.brokers.credentials import mask
from krfeed.brokers.kiwoom.auth import KiwoomToken
from krfeed.brokers.kiwoom.config import Kiwoom
from krfeed.brokers.kiwoom.placement import Groups, blocks
from krfeed.engine import FatalSession, Reconnect, Session, SessionOptions, Subscription
from krfeed.engine.delivery import Delivery
from krfeed.engine.session import Frames
from krfeed.errors import AuthError
from krfeed.logs import get_logger
from krfeed.protocol.kiwoom import TOKEN_ERRORS, KiwoomCodec
from krfeed.protocol.messages import LoginResult, RegResult, SystemMessage

if TYPE_CHECKING:
    from typing import Literal

    _WebSocket = aiohttp.ClientWebSocketResponse[Literal[False]]

log = get_logger("krfeed.session")


class ConditionHooks(Protocol):
    """What the session tells condition search (:class:`krfeed.conditions.ConditionManager`)
    about its connection; declared here so that the session does not import it."""

    def on_ready(self) -> None: ...

    def on_lost(self) -> None: ...

    def handles(self, msg: object) -> bool: ...

    def on_message(self, msg: Any) -> None: ...

    async def close(self) -> None: ...


class KiwoomSession(Session):
    """Kiwoom: LOGIN with the REST token, PING echo, REG/REMOVE in managed groups."""

    broker = "kiwoom"

    def __init__(
        self,
        name: str,
        config: Kiwoom,
        http: aiohttp.ClientSession,
        sink: Delivery,
        options: SessionOptions,
    ) -> None:
        super().__init__(name, config.ws_url, http, sink, options)
        self.config = config
        self.codec = KiwoomCodec()
        self.decode = self.codec.receive
        self.token = KiwoomToken(
            http, config.rest_url, config.appkey, config.secretkey, config.token_cache
        )
        # Kiwoom's REG / REMOVE replies name no request: they are matched to the frames in
        # the order sent. A frame the engine stopped waiting for (no reply within
        # reply_timeout) leaves its queue, so that later replies line up, for _late: a reply
        # that comes while nothing else waits is taken as the oldest of those.
        self._reg_fifo: deque[list[Subscription]] = deque()
        self._remove_fifo: deque[list[Subscription]] = deque()
        self._late: dict[str, deque[list[Subscription]]] = {
            "REG": deque(maxlen=64),
            "REMOVE": deque(maxlen=64),
        }
        self._token_retried = False
        self._login_token = ""
        self.groups = Groups(config.max_items_per_group)
        #: condition search (조건검색), made on first use: krfeed.conditions
        self.cond: ConditionHooks | None = None

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
        for late in self._late.values():
            late.clear()
        if self.cond is not None:
            self.cond.on_lost()

    async def prepare_close(self) -> None:
        if self.cond is not None:
            await self.cond.close()

    def _assign(self, subs: list[Subscription]) -> None:
        self.groups.assign(subs)

    def _subscribe_frames(self, subs: list[Subscription]) -> Frames:
        return [
            (self.codec.register(b, grp_no=g, refresh=True), [s for s in subs if s.group == g])
            for g, b in blocks(subs).items()
        ]

    def _unsubscribe_frames(self, subs: list[Subscription]) -> Frames:
        return [
            (self.codec.remove(b, grp_no=g), [s for s in subs if s.group == g])
            for g, b in blocks(subs).items()
        ]

    def _sent_subscribe(self, subs: list[Subscription]) -> None:
        self._reg_fifo.append(subs)

    def _sent_unsubscribe(self, subs: list[Subscription]) -> None:
        self._remove_fifo.append(subs)

    def _forget_request(self, unsub: bool, subs: list[Subscription]) -> None:
        fifo = self._remove_fifo if unsub else self._reg_fifo
        for i, waiting in enumerate(fifo):
            if waiting is subs:  # this frame's list (another may hold the same subscriptions)
                del fifo[i]
                self._late["REMOVE" if unsub else "REG"].append(subs)
                return

    async def _on_message(self, msg: Any, ws: _WebSocket) -> None:
        if isinstance(msg, LoginResult):
            await self._on_login(msg)
        elif isinstance(msg, RegResult):
            self._on_reg(msg)
        elif self.cond is not None and self.cond.handles(msg):
            self.cond.on_message(msg)
        elif isinstance(msg, SystemMessage):
            if msg.code == "R10001":
                raise FatalSession(
                    "another session logged in with the same app key "
                    f"{mask(self.config.appkey)} (R10001): not reconnecting, "
                    "so the two do not keep closing each other",
                    msg.code,
                )
            log.warning("session %s: SYSTEM %s %s", self.name, msg.code, msg.message)
        else:
            log.debug("session %s: ignoring %r", self.name, msg)

    async def _on_login(self, msg: LoginResult) -> None:
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
                raise Reconnect(f"{why}; got a new token", immediate=True)
            self.token.invalidate()
        if self._auth_failures >= self.opts.max_auth_failures:
            raise FatalSession(
                f"{why}; {self._auth_failures} login failures in a row", msg.error_code or ""
            )
        raise Reconnect(why)

    def _on_reg(self, msg: RegResult) -> None:
        fifo = self._reg_fifo if msg.trnm == "REG" else self._remove_fifo
        late = self._late["REG" if msg.trnm == "REG" else "REMOVE"]
        if fifo:
            subs = fifo.popleft()
        elif late:
            subs = late.popleft()  # settles only those of them still waiting
        else:
            log.warning("session %s: %s reply with nothing pending", self.name, msg.trnm)
            return
        why = msg.message or "REG refused"
        for s in subs:
            if msg.trnm != "REG":
                if s.removing:
                    self._removed(s)
            elif msg.ok:
                self._confirmed(s)
            elif fifo:
                # Replies name no request: with later REGs in flight, this refusal may be
                # theirs (this frame's reply lost). Kept unanswered: its data, a late reply or
                # the next connection settles it (a refusal with nothing else in flight is sure).
                self._refused_maybe(
                    s, f"{why} (possibly the reply to a later REG)", str(msg.return_code)
                )
            else:
                self._refused(s, why, str(msg.return_code))
