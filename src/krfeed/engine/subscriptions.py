"""Subscription state: every change of a :class:`Subscription`'s state goes through
:func:`transition`, and a session's set of them lives in one :class:`SubscriptionTable`.

    DESIRED --send--> PENDING --confirm--> CONFIRMED   (the broker's reply, or data for it)
                              --refuse---> FAILED
                              --timeout--> FAILED (unanswered) --confirm/refuse--> as above
    PENDING/CONFIRMED --unsend--> PENDING (removing) --gone--> REMOVED
    PENDING/CONFIRMED/unanswered --lost--> DESIRED   (the connection ended: replayed next time)
    any live state or unanswered --stop--> FAILED    (the session gave up)

A subscribe that got no reply (sent twice) fails *unanswered*: the broker may hold it all the
same, so a late reply or data still settles it, an unsubscribe is still sent for it, it counts
among the registrations held, and the next connection replays it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum


class SubState(StrEnum):
    DESIRED = "desired"  # wanted, not sent on the current connection
    PENDING = "pending"  # sent (or queued to send), no reply yet
    CONFIRMED = "confirmed"
    FAILED = "failed"
    REMOVED = "removed"


class Change(StrEnum):
    """What happened to a subscription (the input of :func:`transition`)."""

    WANT = "want"  # taken over by a session: (again) desired
    SEND = "send"  # a subscribe frame is queued
    UNSEND = "unsend"  # an unsubscribe frame is queued
    CONFIRM = "confirm"  # the broker accepted the subscribe (or its data arrived)
    REFUSE = "refuse"  # the broker refused the subscribe
    TIMEOUT = "timeout"  # no reply to the subscribe, sent twice
    GONE = "gone"  # no longer registered (unsubscribed, or never sent)
    LOST = "lost"  # the connection ended
    STOP = "stop"  # the session stopped for good


_SETTLED = (SubState.CONFIRMED, SubState.FAILED, SubState.REMOVED)
_ENDED = (SubState.FAILED, SubState.REMOVED)


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
    #: FAILED because the broker never answered (not refused): a late answer still settles it.
    unanswered: bool = field(default=False, init=False, repr=False)
    #: Frames sent for the current subscribe or unsubscribe on this connection (the engine's).
    sends: int = field(default=0, init=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.type, self.item)

    @property
    def live(self) -> bool:
        """Desired, pending or confirmed (not failed, not removed)."""
        return self.state not in _ENDED

    @property
    def awaited(self) -> bool:
        """Its subscribe went out and a reply (or data) would confirm it now: pending and sent
        on this connection, or failed unanswered."""
        if self.state is SubState.PENDING:
            return self.sends > 0 and not self.removing
        return self.unanswered


def transition(sub: Subscription, change: Change, reason: str = "", code: str = "") -> bool:
    """Apply ``change`` to ``sub``; False (and nothing changed) when it does not apply in the
    current state — a reply to a subscribe already superseded, a loss of one never sent."""
    state = sub.state
    if change is Change.WANT:
        new = SubState.DESIRED
    elif change is Change.SEND:
        new = SubState.PENDING
    elif change is Change.UNSEND:
        new, reason = SubState.PENDING, "unsubscribing"
    elif change is Change.CONFIRM or change is Change.REFUSE:
        if (state is not SubState.PENDING or sub.removing) and not sub.unanswered:
            return False
        new = SubState.CONFIRMED if change is Change.CONFIRM else SubState.FAILED
    elif change is Change.TIMEOUT:
        if state is not SubState.PENDING or sub.removing:
            return False
        new = SubState.FAILED
    elif change is Change.GONE:
        new = SubState.REMOVED
    elif change is Change.LOST:
        if state not in (SubState.PENDING, SubState.CONFIRMED) and not sub.unanswered:
            return False
        new = SubState.DESIRED
    else:  # STOP
        if state in _ENDED and not sub.unanswered:
            return False
        new = SubState.FAILED
    sub.state = new
    sub.reason = reason
    sub.code = code
    # a stopped session keeps the note of an unsubscribe in flight (it is dead either way)
    sub.removing = change is Change.UNSEND or (change is Change.STOP and sub.removing)
    sub.unanswered = change is Change.TIMEOUT
    if change is Change.SEND or change is Change.UNSEND:
        sub.sends = 0
    if new in _SETTLED:
        sub.settled.set()
    else:
        sub.settled.clear()
    return True


#: The keys of :func:`count_states`.
COUNTED_STATES = ("desired", "pending", "confirmed", "failed", "unanswered")


def count_states(subs: Iterable[Subscription]) -> dict[str, int]:
    """How many of ``subs`` are in each state but removed; ``unanswered``: of the failed,
    those the broker never answered."""
    n = dict.fromkeys(COUNTED_STATES, 0)
    for s in subs:
        if s.state.value in n:
            n[s.state.value] += 1
        n["unanswered"] += s.unanswered
    return n


class SubscriptionTable:
    """A session's subscriptions by (type, item), and those replaced while their unsubscribe
    is in flight."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.by_key: dict[tuple[str, str], Subscription] = {}
        self.leaving: list[Subscription] = []

    def __iter__(self) -> Iterator[Subscription]:
        return iter(self.by_key.values())

    def count_live(self) -> int:
        """Registrations held or maybe held: live, or failed unanswered."""
        return sum(1 for s in self.by_key.values() if s.live or s.unanswered)

    def in_state(self, state: SubState) -> list[Subscription]:
        return [s for s in self.by_key.values() if s.state == state]

    def take(self, subs: Iterable[Subscription]) -> list[Subscription]:
        """Take over ``subs``; returns those that are new here (now desired)."""
        new = []
        for s in subs:
            old = self.by_key.get(s.key)
            if old is not None and old.live:
                if not old.removing:
                    continue
                # subscribed again while its unsubscribe is in flight: the new registration
                # goes out after the unsubscribe, whose reply then settles only the old one
                self.leaving.append(old)
            s.session = self.session
            transition(s, Change.WANT)
            self.by_key[s.key] = s
            new.append(s)
        return new

    def forget(self, s: Subscription) -> None:
        """``s`` is no longer registered: drop it and mark it removed."""
        if self.by_key.get(s.key) is s:
            del self.by_key[s.key]
        elif s in self.leaving:
            self.leaving.remove(s)
        transition(s, Change.GONE)

    def cut_off(self) -> list[Subscription]:
        """The connection ended: returns the unsubscribes it cut off (complete now — the next
        connection starts with nothing registered, so they must not be replayed, and the
        caller forgets them); everything else pending or confirmed is desired again."""
        cut = [*self.leaving, *(s for s in self.by_key.values() if s.removing)]
        for s in self.by_key.values():
            if not s.removing:
                transition(s, Change.LOST)
        return cut

    def stop(self, reason: str, code: str) -> None:
        for s in self.by_key.values():
            transition(s, Change.STOP, f"session stopped: {reason}", code)
