"""Kiwoom condition search (조건검색) on a :class:`~krfeed.Feed`: the saved conditions
(CNSRLST, ka10171), a one-off search (CNSRREQ ``search_type`` 0, ka10172, paged with
``cont_yn``/``next_key``), a real-time watch (CNSRREQ ``search_type`` 1, ka10173: the current
matches, then type 02 records as stocks enter or leave), and its end (CNSRCLR, ka10174).

    conds = await feed.conditions()          # [Condition(seq='0', name='…'), …]
    rows = await feed.search("0")            # [ConditionMatch(code='005930', …), …]
    watch = await feed.watch("0")            # watch.codes: the set as krfeed knows it
    async for item in feed: ...              # ConditionWatched, then 02 ConditionHit records
    await feed.unwatch("0")

The requests travel on a Kiwoom session's WebSocket, one at a time and paced; the list is
requested first on every connection (Kiwoom requires it before a real-time search). After a
reconnect every watch is requested again and the difference to the set krfeed held is put in
the stream as 02 records (``ConditionRestored`` says which), so a consumer that applies the
02 records keeps the right set. 02 records of a watch are never dropped by the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from krfeed.condition_data import (
    Condition,
    ConditionError,
    ConditionLimits,
    ConditionMatch,
    ConditionSet,
    _codes,
    check_seq,
    hit_event,
    match_of,
    plain_code,
)
from krfeed.errors import FeedClosed
from krfeed.events import (
    ConditionRestored,
    ConditionUnwatched,
    ConditionWatched,
    SubscribeFailed,
)
from krfeed.logs import get_logger
from krfeed.protocol.messages import ConditionList, ConditionResult, Message
from krfeed.records.kiwoom import ConditionHit
from krfeed.schema.enums import ConditionEvent

if TYPE_CHECKING:
    from krfeed.brokers.kiwoom.session import KiwoomSession
    from krfeed.engine import Session

log = get_logger("krfeed.conditions")

BROKER = "kiwoom"

# ---- the session side ----


class ConditionWatch:
    """A real-time condition search krfeed holds. ``codes`` is the set as krfeed last heard it
    from the broker (it may be ahead of the records you have consumed)."""

    def __init__(self, seq: str, name: str, session: str, codes: Iterable[str]) -> None:
        self.seq = seq
        self.name = name
        self.session = session
        self.initial: tuple[str, ...] = tuple(codes)
        self._codes: set[str] = set(self.initial)
        self.active = True
        self.conn = 0  # the connection it was last requested on

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(self._codes)

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"<ConditionWatch {self.seq} {self.name!r} {len(self._codes)} codes, {state}>"


class _Hit(Message, frozen=True, kw_only=True):
    """A 02 record routed through the condition manager (so that it is never dropped)."""

    record: Any


@dataclass
class _Pending:
    trnm: str
    seq: str
    future: asyncio.Future[ConditionList | ConditionResult | None]
    apply: Callable[[Any], None] | None = None


class ConditionManager:
    """Condition search on one Kiwoom session (created by the Feed on first use)."""

    def __init__(
        self,
        inject: Callable[[Any], None],
        closed: Callable[[], bool],
        session: KiwoomSession,
        limits: ConditionLimits,
    ) -> None:
        self._inject = inject  # into the Feed's stream (never dropped)
        self._feed_closed = closed
        self.session = session
        self.limits = limits
        self.watches: dict[str, ConditionWatch] = {}
        self.names: dict[str, str] | None = None  # the last list
        self._lock = asyncio.Lock()
        self._pending: _Pending | None = None
        self._ready = asyncio.Event()
        self._conn = 0
        self._listed_on = -1
        self._last_sent = 0.0
        self._pacing = False
        self._restore: asyncio.Task[None] | None = None
        self._receive = session.codec.receive
        if session.connected:
            self._conn = 1
            self._ready.set()

    # ---- hooks the session calls ----

    def on_ready(self) -> None:
        """Logged in on a new connection: the list comes first, then every watch again."""
        self._conn += 1
        self._ready.set()
        if self._restore is not None:
            self._restore.cancel()
        self._restore = None
        if self.watches:
            self._restore = asyncio.create_task(self._restore_all(), name="krfeed-conditions")

    def on_lost(self) -> None:
        self._ready.clear()
        p, self._pending = self._pending, None
        if p is not None and not p.future.done():
            p.future.set_result(None)

    def handles(self, msg: object) -> bool:
        return isinstance(msg, ConditionList | ConditionResult | _Hit)

    def on_message(self, msg: Any) -> None:
        if isinstance(msg, _Hit):
            self._on_hit(msg.record)
            return
        p = self._pending
        trnm = "CNSRLST" if isinstance(msg, ConditionList) else msg.trnm
        other_seq = isinstance(msg, ConditionResult) and msg.seq and p and p.seq != msg.seq
        if p is None or p.trnm != trnm or (p.seq and other_seq):
            log.warning("session %s: unexpected %s reply ignored", self.session.name, trnm)
            return
        self._pending = None
        if p.apply is not None:
            p.apply(msg)
        if not p.future.done():
            p.future.set_result(msg)

    def decode(self, data: str | bytes, received_at: datetime) -> list[Any]:
        """The codec's decode, with 02 records handed to :meth:`on_message` in order."""
        msgs: list[Any] = self._receive(data, received_at)
        for i, m in enumerate(msgs):
            if m.__class__ is ConditionHit:
                msgs[i] = _Hit(broker=BROKER, record=m)
        return msgs

    # ---- requests ----

    async def saved(self) -> list[Condition]:
        reply = await self._request("CNSRLST", "", self.session.codec.condition_list())
        assert isinstance(reply, ConditionList)
        return [Condition(s, n) for s, n in reply.conditions]

    async def search(self, seq: str | int) -> list[ConditionMatch]:
        s = check_seq(seq)
        codec = self.session.codec
        out: list[ConditionMatch] = []
        cont, key = "N", ""
        seen: set[str] = set()
        for _ in range(self.limits.max_pages):
            frame = codec.condition_request(s, realtime=False, cont_yn=cont, next_key=key)
            reply = await self._request("CNSRREQ", s, frame)
            assert isinstance(reply, ConditionResult)
            self._check(reply, f"search of condition {s}")
            rows = reply.data if isinstance(reply.data, list) else []
            out.extend(match_of(r) for r in rows if isinstance(r, dict))
            if reply.cont_yn.strip().upper() != "Y":
                return out
            key = reply.next_key.strip()
            if not key or key in seen:
                raise ConditionError(
                    f"the search of condition {s} says there is more (cont_yn=Y) but gives "
                    f"no new next_key ({key!r})"
                )
            seen.add(key)
            cont = "Y"
        raise ConditionError(
            f"the search of condition {s} did not end within {self.limits.max_pages} pages"
        )

    async def watch(self, seq: str | int) -> ConditionWatch:
        s = check_seq(seq)
        w = self.watches.get(s)
        if w is not None:
            return w
        if len(self.watches) >= self.limits.max_watches:
            raise ConditionError(
                f"Kiwoom allows {self.limits.max_watches} real-time condition searches at once "
                f"per login and {len(self.watches)} are watched "
                f"({', '.join(sorted(self.watches))}): unwatch one first"
            )
        frame = self.session.codec.condition_request(s, realtime=True)
        reply = await self._request("CNSRREQ", s, frame, lambda m: self._apply_watch(s, m))
        assert isinstance(reply, ConditionResult)
        self._check(reply, f"real-time search of condition {s}")
        return self.watches[s]

    async def unwatch(self, seq: str | int) -> None:
        s = check_seq(seq)
        if s not in self.watches:
            return
        if not self._ready.is_set():
            # not registered on any connection now; the next one will not request it again
            self._drop(s, "unwatched")
            return
        frame = self.session.codec.condition_clear(s)
        reply = await self._request("CNSRCLR", s, frame)
        assert isinstance(reply, ConditionResult)
        self._drop(s, "unwatched")
        self._check(reply, f"end of the real-time search of condition {s}")

    # ---- machinery ----

    def _check(self, reply: ConditionResult, what: str) -> None:
        if not reply.ok:
            raise ConditionError(
                f"Kiwoom refused the {what}: {reply.message or 'no reason given'} "
                f"(return_code {reply.return_code})"
            )

    async def _request(
        self,
        trnm: str,
        seq: str,
        frame: str,
        apply: Callable[[Any], None] | None = None,
    ) -> ConditionList | ConditionResult:
        """Send ``frame`` and return its answer; the list first on a new connection; again on
        the next connection when this one drops before the answer."""
        timeout = self.limits.timeout
        try:
            async with asyncio.timeout(timeout), self._lock:
                while True:
                    await self._wait_ready()
                    if trnm != "CNSRLST" and self._listed_on != self._conn:
                        codec = self.session.codec
                        lst = await self._exchange("CNSRLST", "", codec.condition_list(), None)
                        if lst is None:
                            continue
                    if seq and self.names is not None and seq not in self.names:
                        saved = ", ".join(f"{k} ({v})" for k, v in self.names.items()) or "none"
                        raise ConditionError(f"there is no saved condition {seq}; saved: {saved}")
                    reply = await self._exchange(trnm, seq, frame, apply)
                    if reply is not None:
                        return reply
        except TimeoutError:
            what = f"{trnm} {seq}".strip()
            if self._pacing:
                self._pacing = False
                raise ConditionError(
                    f"condition requests are paced at one per {self.limits.request_interval:g}s "
                    f"(ConditionLimits.request_interval) and {what} did not get its turn "
                    f"within {timeout:g}s"
                ) from None
            if not self._ready.is_set():
                st = self.session.stats
                why = f"{st.state}: {st.last_error}" if st.last_error else st.state
                raise ConditionError(
                    f"the Kiwoom session {self.session.name} was not connected within "
                    f"{timeout:g}s ({why}); {what} was not answered"
                ) from None
            raise ConditionError(f"Kiwoom did not answer {what} within {timeout:g}s") from None

    async def _wait_ready(self) -> None:
        s = self.session
        while True:
            if s.failed is not None:
                raise ConditionError(f"the Kiwoom session {s.name} stopped: {s.failed}")
            if s.stats.state == "closed" or self._feed_closed():
                raise FeedClosed("the feed was closed before the condition request was answered")
            if self._ready.is_set() and s.connected:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), 0.25)

    async def _exchange(
        self, trnm: str, seq: str, frame: str, apply: Callable[[Any], None] | None
    ) -> ConditionList | ConditionResult | None:
        """One request and its answer on the current connection (None: it dropped)."""
        self._pacing = False
        wait = self._last_sent + self.limits.request_interval - time.monotonic()
        if wait > 0:
            self._pacing = True  # stays set when the caller's timeout ends the wait
            await asyncio.sleep(wait)
            self._pacing = False
        if not self._ready.is_set():
            return None
        conn = self._conn
        then = apply
        if trnm == "CNSRLST":

            def then(m: Any) -> None:
                self._apply_list(m, conn)
                if apply is not None:
                    apply(m)

        fut: asyncio.Future[ConditionList | ConditionResult | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending = _Pending(trnm, seq, fut, then)
        if not self.session.send_frame(frame):
            self._pending = None
            return None
        self._last_sent = time.monotonic()
        try:
            return await fut
        finally:
            if self._pending is not None and self._pending.future is fut:
                self._pending = None

    def _apply_list(self, msg: ConditionList, conn: int) -> None:
        if msg.ok:
            self.names = dict(msg.conditions)
            self._listed_on = conn

    def _apply_watch(self, seq: str, msg: ConditionResult) -> None:
        if not msg.ok:
            return
        codes = _codes(msg.data)
        name = (self.names or {}).get(seq, "")
        w = ConditionWatch(seq, name, self.session.name, codes)
        w.conn = self._conn
        self.watches[seq] = w
        self.session.decode = self.decode
        self._inject(
            ConditionWatched(
                broker=BROKER, session=self.session.name, seq=seq, name=name, codes=tuple(codes)
            )
        )

    async def _restore_all(self) -> None:
        codec = self.session.codec
        for seq in list(self.watches):
            w = self.watches.get(seq)
            if w is None or w.conn == self._conn:
                continue
            try:
                reply = await self._request(
                    "CNSRREQ",
                    seq,
                    codec.condition_request(seq, realtime=True),
                    lambda m, w=w: self._apply_restore(w, m),  # type: ignore[misc]
                )
            except ConditionError as e:
                if seq in self.watches:
                    self._refused(seq, str(e))
                continue
            assert isinstance(reply, ConditionResult)
            if not reply.ok:
                reason = f"{reply.message or 'refused'} (return_code {reply.return_code})"
                self._refused(seq, reason)

    def _apply_restore(self, w: ConditionWatch, msg: ConditionResult) -> None:
        if not msg.ok or self.watches.get(w.seq) is not w:
            return
        codes = _codes(msg.data)
        now = set(codes)
        entered = [c for c in codes if c not in w._codes]
        left = sorted(w._codes - now)
        w._codes = now
        w.conn = self._conn
        name = self.session.name
        self._inject(
            ConditionRestored(
                broker=BROKER,
                session=name,
                seq=w.seq,
                codes=tuple(codes),
                entered=tuple(entered),
                left=tuple(left),
            )
        )
        at = datetime.now(UTC)
        changes = [(c, ConditionEvent.EXIT) for c in left]
        changes += [(c, ConditionEvent.ENTER) for c in entered]
        for code, ev in changes:
            hit = ConditionHit(
                received_at=at, item=code, condition_seq=w.seq, code=code, condition_event=ev
            )
            self._inject(hit)
        if entered or left:
            log.info(
                "session %s: condition %s restored, %d entered and %d left meanwhile",
                name,
                w.seq,
                len(entered),
                len(left),
            )

    def _refused(self, seq: str, reason: str) -> None:
        name = self.session.name
        log.warning("session %s: condition %s not restored: %s", name, seq, reason)
        self._inject(
            SubscribeFailed(broker=BROKER, session=name, type="02", item=seq, reason=reason)
        )
        self._drop(seq, f"not restored: {reason}")

    def _drop(self, seq: str, reason: str) -> None:
        w = self.watches.pop(seq, None)
        if w is None:
            return
        w.active = False
        self._inject(
            ConditionUnwatched(broker=BROKER, session=self.session.name, seq=seq, reason=reason)
        )
        if not self.watches:
            self.session.decode = self._receive

    def _on_hit(self, rec: ConditionHit) -> None:
        seq = (rec.condition_seq or "").strip()
        code = plain_code(rec.code or rec.item)
        ev = hit_event(rec.condition_event)
        if (
            seq != rec.condition_seq
            or code != rec.code
            or (ev is not None and ev is not rec.condition_event)
        ):
            rec = msgspec.structs.replace(
                rec, condition_seq=seq, code=code, condition_event=ev or rec.condition_event
            )
        w = self.watches.get(seq)
        if w is not None:
            if ev is ConditionEvent.ENTER:
                w._codes.add(code)
            elif ev is ConditionEvent.EXIT:
                w._codes.discard(code)
        stats = self.session.stats
        stats.records += 1
        stats.last_data_at = time.monotonic()
        self._inject(rec)

    async def close(self) -> None:
        if self._restore is not None:
            self._restore.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._restore
            self._restore = None


def manager_for(
    sessions: Sequence[Session],
    limits: ConditionLimits,
    inject: Callable[[Any], None],
    closed: Callable[[], bool],
    session: str | None = None,
) -> ConditionManager:
    """The condition manager of a Feed's Kiwoom session (named, or the first working one),
    made on first use; ``inject`` and ``closed`` are the Feed's (this module does not import
    the Feed, which imports it)."""
    from krfeed.brokers.kiwoom.session import KiwoomSession

    kiwoom = [s for s in sessions if isinstance(s, KiwoomSession)]
    if session is not None:
        kiwoom = [s for s in kiwoom if s.name == session]
        if not kiwoom:
            names = ", ".join(s.name for s in sessions if isinstance(s, KiwoomSession))
            raise ConditionError(
                f"no Kiwoom session named {session!r} (sessions: {names or 'none'})"
            )
    else:
        held = [s for s in kiwoom if s.cond is not None and s.failed is None]
        kiwoom = held or [s for s in kiwoom if s.failed is None] or kiwoom
    if not kiwoom:
        raise ConditionError("condition search needs a Kiwoom session: add Kiwoom(...) to Feed")
    s = kiwoom[0]
    if not isinstance(s.cond, ConditionManager):
        s.cond = ConditionManager(inject, closed, s, limits)
    return s.cond


# the data types and wire forms moved to krfeed.condition_data; importable from here as before
__all__ = [
    "BROKER",
    "Condition",
    "ConditionError",
    "ConditionLimits",
    "ConditionManager",
    "ConditionMatch",
    "ConditionSet",
    "ConditionWatch",
    "check_seq",
    "hit_event",
    "manager_for",
    "match_of",
    "plain_code",
]
