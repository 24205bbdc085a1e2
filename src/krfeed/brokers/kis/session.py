"""The KIS session adapter: the approval key, one subscribe frame per (tr_id, tr_key),
PINGPONG echo, AES keys from the subscribe replies."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

import aiohttp

from krfeed.brokers.credentials import mask
from krfeed.brokers.kis.auth import KISApprovalKey
from krfeed.brokers.kis.config import KIS
from krfeed.engine import FatalSession, Reconnect, Session, SessionOptions, Subscription
from krfeed.engine.delivery import Delivery
from krfeed.engine.session import Frames
from krfeed.errors import AuthError
from krfeed.logs import get_logger
from krfeed.protocol.kis import KISCodec
from krfeed.protocol.messages import ControlReply
from krfeed.schema.catalog import get_type

if TYPE_CHECKING:
    from typing import Literal

    _WebSocket = aiohttp.ClientWebSocketResponse[Literal[False]]

log = get_logger("krfeed.session")

#: The replies to an unsubscribe (UNSUBSCRIBE SUCCESS, and "not found": not registered either way)
UNSUBSCRIBE_REPLIES = frozenset({"OPSP0001", "OPSP0003"})


class KISSession(Session):
    """KIS: approval key, one subscribe frame per (tr_id, tr_key), PINGPONG echo, AES keys."""

    broker = "kis"

    def __init__(
        self,
        name: str,
        config: KIS,
        http: aiohttp.ClientSession,
        sink: Delivery,
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

    def _subscribe_frames(self, subs: list[Subscription]) -> Frames:
        return [(self.codec.subscribe(s.type, s.item), [s]) for s in subs]

    def _unsubscribe_frames(self, subs: list[Subscription]) -> Frames:
        return [(self.codec.unsubscribe(s.type, s.item), [s]) for s in subs]

    def _sent_subscribe(self, subs: list[Subscription]) -> None:
        for s in subs:
            self._pending.setdefault(s.key, deque()).append(("sub", s))

    def _sent_unsubscribe(self, subs: list[Subscription]) -> None:
        for s in subs:
            self._pending.setdefault(s.key, deque()).append(("unsub", s))

    def _forget_request(self, unsub: bool, subs: list[Subscription]) -> None:
        op = "unsub" if unsub else "sub"
        for s in subs:
            waiting = self._pending.get(s.key)
            if waiting is None:
                continue
            for i, (o, x) in enumerate(waiting):
                if o == op and x is s:
                    del waiting[i]
                    break
            if not waiting:
                del self._pending[s.key]

    async def _on_message(self, msg: Any, ws: _WebSocket) -> None:
        if not isinstance(msg, ControlReply):
            log.debug("session %s: ignoring %r", self.name, msg)
            return
        code = msg.msg_cd
        if code == "OPSP8996":
            self._key_in_use()
        if code == "OPSP0011":
            await self._key_refused()
        waiting = self._pending.get((msg.tr_id, msg.tr_key))
        pending = waiting.popleft() if waiting else None
        if waiting is not None and not waiting:
            del self._pending[(msg.tr_id, msg.tr_key)]
        if pending is None:
            # a reply the engine stopped waiting for (reply_timeout): the key says whose
            late = self.subs.get((msg.tr_id, msg.tr_key))
            if late is not None and late.awaited and code not in UNSUBSCRIBE_REPLIES:
                pending = ("sub", late)
        if pending is None:
            if not msg.ok:
                log.warning(
                    "session %s: %s %s for %s/%s", self.name, code, msg.msg1, msg.tr_id, msg.tr_key
                )
            return
        op, s = pending
        if op != "sub":
            if s.removing:
                # OPSP0001, or OPSP0003 "not found": either way it is not registered now.
                self._removed(s)
        elif msg.ok:
            if self._confirmed(s):
                self._approval_retried = False
            if get_type("kis", msg.tr_id).encrypted and not self.codec.has_key(msg.tr_id):
                # The reply with the AES key was lost and the repeat was answered OPSP0002,
                # which carries none: every notice would be undecryptable on this connection.
                # A new connection registers afresh (and gets a key); orders are reconciled
                # over REST after the gap.
                raise Reconnect(
                    f"no AES key for {msg.tr_id}: its subscribe reply was lost and the repeat "
                    f"was answered {code} without one",
                    immediate=True,
                )
        else:
            self._refused(s, f"{msg.msg1} ({code})", code)

    def _key_in_use(self) -> None:
        """OPSP8996: retried soon after a working connection was lost (the broker may still
        hold it), else fatal."""
        lost = self._lost_good_at
        if lost is not None and time.monotonic() - lost < self.opts.in_use_retry_for:
            raise Reconnect(
                "app key still in use (OPSP8996), most likely by this session's previous "
                "connection, which the broker has not dropped yet"
            )
        raise FatalSession(
            f"app key {mask(self.config.appkey)} is already in use by another session "
            "(OPSP8996): not reconnecting",
            "OPSP8996",
        )

    async def _key_refused(self) -> None:
        """OPSP0011: re-issue the approval key once and reconnect at once; then fatal."""
        if not self._approval_retried:
            self._approval_retried = True
            try:
                await self.approval.renew(self._key)
            except AuthError as e:
                raise FatalSession(str(e), e.code) from None
            raise Reconnect("approval key refused (OPSP0011); got a new one", immediate=True)
        raise FatalSession(
            "KIS refuses the approval key even after re-issuing it (OPSP0011)", "OPSP0011"
        )
