"""The engine's pure pieces: every subscription state change through ``transition`` (which
replies it ignores), the table's cut-off on a lost connection, and ``classify`` of the
exceptions that end a connection."""

from __future__ import annotations

import aiohttp
import pytest

from krfeed.engine import Change, FatalSession, Reconnect, Subscription, SubState, transition
from krfeed.engine.classify import classify
from krfeed.engine.subscriptions import SubscriptionTable, count_states
from krfeed.errors import TransientError


def sub(state: SubState = SubState.DESIRED, item: str = "005930") -> Subscription:
    s = Subscription("kis", "H0STCNT0", item)
    s.state = state
    return s


@pytest.mark.parametrize(
    ("start", "change", "applied", "end"),
    [
        (SubState.DESIRED, Change.SEND, True, SubState.PENDING),
        (SubState.PENDING, Change.CONFIRM, True, SubState.CONFIRMED),
        (SubState.PENDING, Change.REFUSE, True, SubState.FAILED),
        (SubState.CONFIRMED, Change.CONFIRM, False, SubState.CONFIRMED),  # a late reply
        (SubState.DESIRED, Change.REFUSE, False, SubState.DESIRED),
        (SubState.CONFIRMED, Change.LOST, True, SubState.DESIRED),
        (SubState.PENDING, Change.LOST, True, SubState.DESIRED),
        (SubState.FAILED, Change.LOST, False, SubState.FAILED),
        (SubState.CONFIRMED, Change.STOP, True, SubState.FAILED),
        (SubState.REMOVED, Change.STOP, False, SubState.REMOVED),
        (SubState.CONFIRMED, Change.GONE, True, SubState.REMOVED),
    ],
)
def test_transitions(start: SubState, change: Change, applied: bool, end: SubState) -> None:
    s = sub(start)
    assert transition(s, change, "why", "C1") is applied
    assert s.state is end
    if applied:
        assert (s.reason, s.code) == ("why", "C1")
        settled = end in (SubState.CONFIRMED, SubState.FAILED, SubState.REMOVED)
        assert s.settled.is_set() is settled


def test_a_reply_to_a_subscribe_being_unsubscribed_is_ignored() -> None:
    s = sub(SubState.CONFIRMED)
    assert transition(s, Change.UNSEND)
    assert (s.state, s.reason, s.removing) == (SubState.PENDING, "unsubscribing", True)
    assert not transition(s, Change.CONFIRM)
    assert transition(s, Change.GONE)
    assert (s.state, s.removing) == (SubState.REMOVED, False)


def test_a_lost_connection_completes_unsubscribes_and_replays_the_rest() -> None:
    table = SubscriptionTable("kis#1")
    a, b, c = sub(item="A"), sub(item="B"), sub(item="C")
    assert table.take([a, b, c]) == [a, b, c]
    assert {s.session for s in (a, b, c)} == {"kis#1"}
    for s in (a, b, c):
        transition(s, Change.SEND)
    transition(a, Change.CONFIRM)
    transition(b, Change.UNSEND)
    again = sub(item="B")  # subscribed again while its unsubscribe is in flight
    assert table.take([again]) == [again] and table.leaving == [b]
    cut = table.cut_off()
    assert cut == [b]
    for s in cut:
        table.forget(s)
    assert (a.state, c.state, again.state, b.state) == (
        SubState.DESIRED,
        SubState.DESIRED,
        SubState.DESIRED,
        SubState.REMOVED,
    )
    assert table.leaving == [] and table.by_key[("H0STCNT0", "B")] is again
    assert table.count_live() == 3


def test_classify() -> None:
    v = classify(FatalSession("app key in use", "OPSP8996"))
    assert (v.fatal, v.reason, v.code) == (True, "app key in use", "OPSP8996")
    v = classify(Reconnect("new token", immediate=True))
    assert (v.fatal, v.refused, v.immediate) == (False, True, True)
    v = classify(TransientError("token endpoint answered HTTP 503"))
    assert (v.fatal, v.refused, v.reason) == (False, False, "token endpoint answered HTTP 503")
    v = classify(aiohttp.ServerDisconnectedError())
    assert (v.fatal, v.refused, v.unexpected) == (False, False, False)
    v = classify(KeyError("x"))
    assert (v.refused, v.unexpected, v.reason) == (True, True, "internal error: KeyError: 'x'")


# ---- a subscribe the broker never answers ----


def unanswered(item: str = "005930") -> Subscription:
    s = sub(SubState.PENDING, item)
    assert transition(s, Change.TIMEOUT, "no reply from the broker within 10 s (sent twice)")
    return s


def test_no_reply_fails_a_pending_subscribe_unanswered() -> None:
    s = unanswered()
    assert (s.state, s.unanswered, s.code) == (SubState.FAILED, True, "")
    assert s.reason == "no reply from the broker within 10 s (sent twice)"
    assert s.settled.is_set() and not s.live and s.awaited
    for state in (SubState.DESIRED, SubState.CONFIRMED, SubState.FAILED, SubState.REMOVED):
        assert not transition(sub(state), Change.TIMEOUT)
    removing = sub(SubState.CONFIRMED)
    transition(removing, Change.UNSEND)
    assert not transition(removing, Change.TIMEOUT)  # an unsubscribe is not failed
    assert (removing.state, removing.removing) == (SubState.PENDING, True)


@pytest.mark.parametrize(
    ("change", "end", "reason"),
    [
        (Change.CONFIRM, SubState.CONFIRMED, ""),  # a late reply, or its data
        (Change.REFUSE, SubState.FAILED, "MAX SUBSCRIBE OVER (OPSP0008)"),  # a late refusal
        (Change.LOST, SubState.DESIRED, ""),  # replayed on the next connection
        (Change.STOP, SubState.FAILED, "session stopped"),
        (Change.GONE, SubState.REMOVED, ""),
    ],
)
def test_what_settles_an_unanswered_subscribe(change: Change, end: SubState, reason: str) -> None:
    s = unanswered()
    assert transition(s, change, reason)
    assert (s.state, s.reason, s.unanswered) == (end, reason, False)


def test_a_refused_subscribe_stays_refused() -> None:
    s = sub(SubState.PENDING)
    assert transition(s, Change.REFUSE, "MAX SUBSCRIBE OVER (OPSP0008)", "OPSP0008")
    for change in (Change.CONFIRM, Change.LOST, Change.STOP, Change.TIMEOUT):
        assert not transition(s, change)
    assert (s.state, s.code, s.unanswered) == (SubState.FAILED, "OPSP0008", False)


def test_awaited_means_sent_and_a_reply_or_data_would_confirm_it() -> None:
    s = sub()
    assert transition(s, Change.SEND) and not s.awaited  # queued, not sent yet
    s.sends = 1  # the engine counts each frame as it goes out
    assert s.awaited
    assert transition(s, Change.CONFIRM) and not s.awaited
    assert transition(s, Change.UNSEND) and s.sends == 0
    s.sends = 1
    assert not s.awaited  # an unsubscribe in flight is not confirmed by data
    assert transition(s, Change.LOST) and transition(s, Change.SEND) and s.sends == 0


def test_an_unanswered_subscribe_counts_as_held() -> None:
    table = SubscriptionTable("kis#1")
    a, b, c = sub(item="A"), sub(item="B"), sub(item="C")
    table.take([a, b, c])
    for s in (a, b, c):
        transition(s, Change.SEND)
    transition(a, Change.TIMEOUT, "no reply")
    transition(b, Change.REFUSE, "refused")
    assert table.count_live() == 2  # a (the broker may hold it) and c
    assert count_states(table) == {
        "desired": 0,
        "pending": 1,
        "confirmed": 0,
        "failed": 2,
        "unanswered": 1,
    }
    assert table.cut_off() == []
    assert (a.state, b.state, c.state) == (SubState.DESIRED, SubState.FAILED, SubState.DESIRED)
