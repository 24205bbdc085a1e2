"""Subscribe and unsubscribe requests on one connection, for
:class:`~krfeed.engine.session.Session`: their frames queued for the paced sender, the broker's
replies turned into state changes and events, and a bounded wait for a reply that never comes.

Each frame is waited for ``SessionOptions.reply_timeout`` once it went out. Then the adapter
forgets it (:meth:`Requests._forget_request`: replies that come later line up with the frames
still waiting), and the frame is sent again for those of its subscriptions still waiting; after
another ``reply_timeout`` without a reply a subscribe fails *unanswered* (``SubscribeFailed``,
reason "no reply from the broker within 10 s (sent twice)") and an unsubscribe counts as done
(``Unsubscribed`` with that reason). Data for a subscription whose reply is awaited confirms it
(the broker only sends data for what it holds), and so does a reply that comes late.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from krfeed.engine.subscriptions import (
    Change,
    Subscription,
    SubscriptionTable,
    SubState,
    transition,
)
from krfeed.events import Event, Subscribed, SubscribeFailed, Unsubscribed
from krfeed.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from krfeed.engine.options import SessionOptions, SessionStats
    from krfeed.protocol.messages import DecodeError
    from krfeed.records.base import Record

log = get_logger("krfeed.session")

#: (frame, the subscriptions it carries), as an adapter builds them
Frames = list[tuple[str, list[Subscription]]]


class Requests:
    """The (un)subscribe half of a session (state lives on the session)."""

    broker: str
    name: str
    opts: SessionOptions
    stats: SessionStats
    table: SubscriptionTable
    subs: dict[tuple[str, str], Subscription]
    _ops: asyncio.Queue[tuple[str, Callable[[], None]]] | None
    #: (sent at, unsubscribe?, subscriptions) of every frame sent on this connection whose
    #: reply_timeout has not run out yet, oldest first
    _requests: deque[tuple[float, bool, list[Subscription]]]
    #: a subscribe went out and may still be confirmed by its data (checked per record)
    _awaiting: bool

    def _emit(self, ev: Event | DecodeError) -> None:
        raise NotImplementedError

    # ---- adapter hooks ----

    def _subscribe_frames(self, subs: list[Subscription]) -> Frames:
        raise NotImplementedError

    def _unsubscribe_frames(self, subs: list[Subscription]) -> Frames:
        raise NotImplementedError

    def _sent_subscribe(self, subs: list[Subscription]) -> None:
        """Called just before a subscribe frame for ``subs`` goes out."""

    def _sent_unsubscribe(self, subs: list[Subscription]) -> None:
        """Called just before an unsubscribe frame for ``subs`` goes out."""

    def _forget_request(self, unsub: bool, subs: list[Subscription]) -> None:
        """The engine no longer waits for the reply to the frame sent for ``subs`` (the list
        handed to ``_sent_subscribe`` / ``_sent_unsubscribe``): drop it from the reply
        matching if it is still there, so that later replies line up with later frames."""

    # ---- for adapters: replies ----

    def _confirmed(self, s: Subscription) -> bool:
        """The broker accepted ``s``'s subscribe (ignored when superseded)."""
        if s.unanswered and self.subs.get(s.key) is not s:
            return False  # replaced by a new subscribe since
        if not transition(s, Change.CONFIRM):
            return False
        self._emit(Subscribed(broker=self.broker, session=self.name, type=s.type, item=s.item))
        return True

    def _refused(self, s: Subscription, reason: str, code: str) -> bool:
        """The broker refused ``s``'s subscribe (ignored when superseded)."""
        if s.unanswered and self.subs.get(s.key) is not s:
            return False
        if not transition(s, Change.REFUSE, reason, code):
            return False
        self._failed(s, reason, code)
        return True

    def _failed(self, s: Subscription, reason: str, code: str, unanswered: bool = False) -> None:
        self._emit(
            SubscribeFailed(
                broker=self.broker,
                session=self.name,
                type=s.type,
                item=s.item,
                reason=reason,
                code=code,
                unanswered=unanswered,
            )
        )

    def _refused_maybe(self, s: Subscription, reason: str, code: str) -> None:
        """A refusal that may answer another request (a broker whose replies name none, with
        later requests in flight and this one's reply possibly lost): ``s`` fails
        *unanswered*, so its data, a late reply or the next connection still settles it."""
        if s.unanswered or not transition(s, Change.TIMEOUT, reason, code):
            return
        log.warning("session %s: subscribe %s %s: %s", self.name, s.type, s.item, reason)
        self._failed(s, reason, code, unanswered=True)

    def _removed(self, s: Subscription, reason: str = "") -> None:
        """``s`` is no longer registered: forget it and say so (``reason``: why without the
        broker's word)."""
        self.table.forget(s)
        self._emit(
            Unsubscribed(
                broker=self.broker, session=self.name, type=s.type, item=s.item, reason=reason
            )
        )

    # ---- sending ----

    def _queue_subscribe(self, subs: list[Subscription]) -> None:
        for s in subs:
            transition(s, Change.SEND)
        self._queue_frames(False, subs)

    def _queue_unsubscribe(self, subs: list[Subscription]) -> None:
        for s in subs:
            transition(s, Change.UNSEND)
        self._queue_frames(True, subs)

    def _queue_frames(self, unsub: bool, subs: list[Subscription]) -> None:
        assert self._ops is not None
        frames = self._unsubscribe_frames(subs) if unsub else self._subscribe_frames(subs)
        for frame, group in frames:
            self._ops.put_nowait((frame, self._sending(unsub, group)))

    def _sending(self, unsub: bool, subs: list[Subscription]) -> Callable[[], None]:
        """What the sender does just before the frame for ``subs`` goes out."""
        hook = self._sent_unsubscribe if unsub else self._sent_subscribe

        def before() -> None:
            for s in subs:
                if s.removing is unsub:  # not a subscribe frame of one unsubscribed since
                    s.sends += 1
            hook(subs)
            if self.opts.reply_timeout is not None:
                self._requests.append((time.monotonic(), unsub, subs))
            if not unsub:
                self._awaiting = True

        return before

    # ---- replies that do not come ----

    def _check_replies(self, now: float) -> None:
        """Called by the watchdog while logged in: stop waiting for the frames sent
        ``reply_timeout`` ago; send each once more for what still waits, then give up."""
        if self._awaiting:
            self._awaiting = any(s.awaited for s in self.subs.values())
        limit = self.opts.reply_timeout
        reqs = self._requests
        if limit is None:
            return
        again: dict[bool, list[Subscription]] = {False: [], True: []}
        while reqs and reqs[0][0] <= now - limit:
            _, unsub, subs = reqs.popleft()
            self._forget_request(unsub, subs)
            waiting = [s for s in subs if self._waits(s, unsub)]
            if not waiting:
                continue  # answered (or confirmed by its data, or superseded)
            self.stats.reply_timeouts += 1
            for s in waiting:
                if unsub and self.subs.get(s.key) is not s:
                    # subscribed again since: sent now, the REMOVE would follow that new
                    # REG / tr_type 1 and take the new registration away
                    self._removed(s, "subscribed again before the broker's reply")
                elif s.sends < 2:
                    again[unsub].append(s)
                else:
                    self._no_reply(s, unsub, limit)
        for unsub, subs in again.items():
            if subs:
                log.info(
                    "session %s: no reply within %gs to the %s of %s; sending it again",
                    self.name,
                    limit,
                    "unsubscribe" if unsub else "subscribe",
                    ", ".join(f"{s.type} {s.item}".rstrip() for s in subs[:5]),
                )
                self._queue_frames(unsub, subs)

    def _waits(self, s: Subscription, unsub: bool) -> bool:
        """``s`` still waits for the reply to its (un)subscribe sent on this connection."""
        if s.state is not SubState.PENDING or s.removing is not unsub or not s.sends:
            return False
        return unsub or self.subs.get(s.key) is s

    def _no_reply(self, s: Subscription, unsub: bool, limit: float) -> None:
        reason = f"no reply from the broker within {limit:g} s (sent twice)"
        what = f"{s.type} {s.item}".rstrip()
        if unsub:
            log.warning(
                "session %s: unsubscribe %s: %s; counted as removed", self.name, what, reason
            )
            self._removed(s, f"{reason}; counted as removed")
        elif transition(s, Change.TIMEOUT, reason):
            log.warning("session %s: subscribe %s failed: %s", self.name, what, reason)
            self._failed(s, reason, "", unanswered=True)

    def _data_for(self, rec: Record) -> None:
        """A record arrived while a subscribe awaits its reply: if it is that subscription's
        data, the broker holds the registration — confirmed."""
        s = self.subs.get((rec.type, rec.item))
        if s is None and rec.account:
            s = self.subs.get((rec.type, ""))  # account types are subscribed without an item
        if s is None or not s.awaited:
            return
        if self.table.leaving and any(o.key == s.key for o in self.table.leaving):
            return  # it may be data of the registration being removed
        log.info(
            "session %s: data for %s %s before the broker's reply: confirmed",
            self.name,
            s.type,
            s.item,
        )
        self._confirmed(s)
