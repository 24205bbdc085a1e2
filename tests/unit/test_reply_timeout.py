"""The engine's wait for (un)subscribe replies, without a network: a toy adapter's frames are
"sent" by hand and the watchdog's look is called with times past ``reply_timeout``. Sent once
more, then failed unanswered (or, for an unsubscribe, counted as removed); data for a
subscription whose reply is awaited confirms it; a late confirmation still settles it. Then the
two adapters: Kiwoom's in-order reply matching stays in line after a lost reply, and a late
reply is still taken (Kiwoom: the oldest frame given up on; KIS: by its key)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from krfeed.engine import Session, SessionOptions, Subscription, SubState
from krfeed.engine.requests import Frames
from krfeed.events import Subscribed, SubscribeFailed, Unsubscribed
from krfeed.records.kis import Trade
from krfeed.records.kiwoom import OrderExecution, StockTrade

NO_REPLY = "no reply from the broker within 10 s (sent twice)"


class Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def control(self, event: Any) -> None:
        self.events.append(event)


class Toy(Session):
    """One frame per subscription; the frames go nowhere (see :meth:`send_queued`)."""

    def __init__(self, broker: str, opts: SessionOptions | None = None) -> None:
        self.sink = Sink()
        super().__init__(
            f"{broker}#1", "ws://127.0.0.1:9", None, self.sink, opts or SessionOptions()
        )  # type: ignore[arg-type]
        self.broker = broker
        self.forgotten: list[tuple[bool, list[str]]] = []
        self._ready = True
        self._ops = asyncio.Queue()

    def _subscribe_frames(self, subs: list[Subscription]) -> Frames:
        return [(f"subscribe {s.type} {s.item}", [s]) for s in subs]

    def _unsubscribe_frames(self, subs: list[Subscription]) -> Frames:
        return [(f"unsubscribe {s.type} {s.item}", [s]) for s in subs]

    def _forget_request(self, unsub: bool, subs: list[Subscription]) -> None:
        self.forgotten.append((unsub, [s.item for s in subs]))

    def send_queued(self) -> list[str]:
        """What the paced sender would send now; returns the frames."""
        assert self._ops is not None
        out = []
        while not self._ops.empty():
            frame, before = self._ops.get_nowait()
            before()
            out.append(frame)
        return out

    def kinds(self) -> list[tuple[str, str, str]]:
        return [(type(e).__name__, e.item, getattr(e, "reason", "")) for e in self.sink.events]


def trade(item: str) -> Trade:
    return Trade(received_at=datetime(2025, 3, 14, 1, 0, tzinfo=UTC), item=item)


def test_a_subscribe_without_reply_is_sent_again_then_fails_then_data_confirms_it() -> None:
    toy = Toy("kis")
    s = Subscription("kis", "H0STCNT0", "005930")
    toy.add([s])
    assert toy.send_queued() == ["subscribe H0STCNT0 005930"]
    sent = time.monotonic()
    toy._check_replies(sent + 5.0)  # not yet overdue
    assert (s.state, toy.forgotten, toy.stats.reply_timeouts) == (SubState.PENDING, [], 0)

    toy._check_replies(sent + 10.5)
    assert toy.forgotten == [(False, ["005930"])]
    assert toy.send_queued() == ["subscribe H0STCNT0 005930"]  # once more
    assert (s.state, s.sends, toy.stats.reply_timeouts, toy.sink.events) == (
        SubState.PENDING,
        2,
        1,
        [],
    )

    toy._check_replies(time.monotonic() + 10.5)
    assert (s.state, s.reason, s.unanswered) == (SubState.FAILED, NO_REPLY, True)
    assert toy.kinds() == [("SubscribeFailed", "005930", NO_REPLY)]
    assert (toy.sink.events[0].code, toy.sink.events[0].unanswered) == ("", True)
    assert toy.send_queued() == [] and toy.stats.reply_timeouts == 2
    assert toy.registrations() == 1  # the broker may hold it

    toy._data_for(trade("000660"))  # another code's data says nothing about this one
    assert s.state is SubState.FAILED
    toy._data_for(trade("005930"))
    assert (s.state, s.reason, s.unanswered) == (SubState.CONFIRMED, "", False)
    assert toy.kinds()[1:] == [("Subscribed", "005930", "")]
    toy._check_replies(time.monotonic())
    assert toy._awaiting is False  # the read loop is back on its fast path


def test_data_confirms_a_pending_subscribe_and_nothing_is_sent_again() -> None:
    toy = Toy("kis")
    s = Subscription("kis", "H0STCNT0", "005930")
    toy.add([s])
    toy._data_for(trade("005930"))  # not sent yet: it cannot be this subscribe's data
    assert s.state is SubState.PENDING
    toy.send_queued()
    toy._data_for(trade("005930"))
    assert s.state is SubState.CONFIRMED
    toy._check_replies(time.monotonic() + 10.5)
    assert toy.forgotten == [(False, ["005930"])]  # its reply is no longer awaited …
    assert toy.send_queued() == [] and toy.stats.reply_timeouts == 0  # … nor missed
    assert toy.kinds() == [("Subscribed", "005930", "")]


def test_account_data_confirms_the_itemless_subscription() -> None:
    toy = Toy("kiwoom")
    orders = Subscription("kiwoom", "00", "", account=True)
    trades = Subscription("kiwoom", "0B", "005930")
    toy.add([orders, trades])
    toy.send_queued()
    toy._data_for(OrderExecution(received_at=datetime(2025, 3, 14, tzinfo=UTC), item="005930"))
    assert (orders.state, trades.state) == (SubState.CONFIRMED, SubState.PENDING)
    toy._data_for(StockTrade(received_at=datetime(2025, 3, 14, tzinfo=UTC), item="005930"))
    assert trades.state is SubState.CONFIRMED


def test_a_late_reply_confirms_an_unanswered_subscribe_unless_replaced() -> None:
    toy = Toy("kis")
    s = Subscription("kis", "H0STCNT0", "005930")
    toy.add([s])
    for _ in range(2):
        toy.send_queued()
        toy._check_replies(time.monotonic() + 10.5)
    assert s.unanswered
    again = Subscription("kis", "H0STCNT0", "005930")
    toy.add([again])  # subscribed anew: the old one is no longer this session's
    assert not toy._confirmed(s) and s.state is SubState.FAILED
    toy.send_queued()
    assert toy._confirmed(again) and again.state is SubState.CONFIRMED


def test_an_unsubscribe_without_reply_counts_as_removed() -> None:
    toy = Toy("kis")
    s = Subscription("kis", "H0STCNT0", "005930")
    toy.add([s])
    toy.send_queued()
    toy._confirmed(s)
    toy.remove([s.key])
    assert toy.send_queued() == ["unsubscribe H0STCNT0 005930"]
    toy._check_replies(time.monotonic() + 10.5)
    assert toy.send_queued() == ["unsubscribe H0STCNT0 005930"]
    assert (s.state, s.removing) == (SubState.PENDING, True)
    toy._check_replies(time.monotonic() + 10.5)
    assert (s.state, toy.subs, toy.stats.reply_timeouts) == (SubState.REMOVED, {}, 2)
    assert toy.forgotten == [(False, ["005930"]), (True, ["005930"]), (True, ["005930"])]
    assert toy.kinds() == [
        ("Subscribed", "005930", ""),
        ("Unsubscribed", "005930", f"{NO_REPLY}; counted as removed"),
    ]


def test_an_unsubscribe_queued_behind_its_subscribe_is_still_sent_twice() -> None:
    """Subscribed and unsubscribed before the subscribe frame went out: that frame does not
    count as a send of the unsubscribe, which still gets its repeat."""
    toy = Toy("kis")
    s = Subscription("kis", "H0STCNT0", "005930")
    toy.add([s])
    toy.remove([s.key])  # both frames still queued
    assert toy.send_queued() == ["subscribe H0STCNT0 005930", "unsubscribe H0STCNT0 005930"]
    assert s.sends == 1
    toy._check_replies(time.monotonic() + 10.5)
    assert toy.send_queued() == ["unsubscribe H0STCNT0 005930"]
    assert (s.state, s.removing) == (SubState.PENDING, True)


def test_an_unanswered_subscribe_is_unsubscribed_on_the_wire() -> None:
    toy = Toy("kis")
    s = Subscription("kis", "H0STCNT0", "005930")
    toy.add([s])
    for _ in range(2):
        toy.send_queued()
        toy._check_replies(time.monotonic() + 10.5)
    toy.remove([s.key])
    assert toy.send_queued() == ["unsubscribe H0STCNT0 005930"]  # the broker may hold it


def test_without_a_reply_timeout_the_wait_lasts_as_long_as_the_connection() -> None:
    toy = Toy("kis", SessionOptions(reply_timeout=None))
    s = Subscription("kis", "H0STCNT0", "005930")
    toy.add([s])
    toy.send_queued()
    toy._check_replies(time.monotonic() + 86_400)
    assert (s.state, toy.forgotten, toy.send_queued(), list(toy._requests)) == (
        SubState.PENDING,
        [],
        [],
        [],
    )
    toy._data_for(trade("005930"))  # data still confirms it
    assert [type(e) for e in toy.sink.events] == [Subscribed]
    assert not any(isinstance(e, SubscribeFailed | Unsubscribed) for e in toy.sink.events)


# ---- the adapters: a frame no longer waited for, and a reply that comes after all ----

#: The replies as the protocol documents show them (protocols/kiwoom.md REG, protocols/kis.md).
KIWOOM_REG_OK = '{"trnm":"REG","return_code":0,"return_msg":""}'
KIWOOM_REG_REFUSED = '{"trnm":"REG","return_code":1,"return_msg":"등록 종목수 초과"}'
KIS_SUBSCRIBED = (
    '{"header":{"tr_id":"H0STASP0","tr_key":"005930","encrypt":"N"},'
    '"body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS",'
    '"output":{"iv":"d59d91fcf9fd0044","key":"iuheqrmvfxoceaxeyqgjwesozgizmmgx"}}}'
)
#: built from the documented reply layout with msg_cd OPSP0001 (UNSUBSCRIBE SUCCESS)
KIS_UNSUBSCRIBED_BUILT = KIS_SUBSCRIBED.replace('"msg_cd":"OPSP0000"', '"msg_cd":"OPSP0001"')


def adapter(session: Session) -> Session:
    session._ready = True
    session._ops = asyncio.Queue()
    return session


def send_queued(session: Session) -> None:
    assert session._ops is not None
    while not session._ops.empty():
        session._ops.get_nowait()[1]()


def kiwoom() -> Any:
    from krfeed.brokers import Kiwoom
    from krfeed.brokers.kiwoom.session import KiwoomSession

    cfg = Kiwoom.sim("http://127.0.0.1:9")
    return adapter(KiwoomSession("kiwoom#1", cfg, None, Sink(), SessionOptions()))  # type: ignore[arg-type]


def kis() -> Any:
    from krfeed.brokers import KIS
    from krfeed.brokers.kis.session import KISSession

    cfg = KIS.sim("http://127.0.0.1:9")
    return adapter(KISSession("kis#1", cfg, None, Sink(), SessionOptions()))  # type: ignore[arg-type]


def test_kiwoom_replies_stay_in_line_after_a_reply_that_never_came() -> None:
    ks = kiwoom()
    a = Subscription("kiwoom", "0B", "005930")
    ks.add([a])
    send_queued(ks)
    ks._data_for(StockTrade(received_at=datetime(2025, 3, 14, tzinfo=UTC), item="005930"))
    assert a.state is SubState.CONFIRMED  # by its data; its REG reply never comes
    ks._check_replies(time.monotonic() + 10.5)  # a's frame leaves the reply queue
    b = Subscription("kiwoom", "0B", "000660")
    ks.add([b])
    send_queued(ks)
    for msg in ks.codec.receive(KIWOOM_REG_REFUSED):
        ks._on_reg(msg)
    # the refusal is b's (the only frame waiting), not taken for a's lost reply
    assert (a.state, b.state, b.reason) == (SubState.CONFIRMED, SubState.FAILED, "등록 종목수 초과")


def test_kiwoom_a_late_reply_confirms_the_oldest_frame_given_up_on() -> None:
    ks = kiwoom()
    a = Subscription("kiwoom", "0B", "005930")
    ks.add([a])
    for _ in range(2):
        send_queued(ks)
        ks._check_replies(time.monotonic() + 10.5)
    assert a.unanswered and not ks._reg_fifo
    for msg in ks.codec.receive(KIWOOM_REG_OK):
        ks._on_reg(msg)
    assert (a.state, a.unanswered) == (SubState.CONFIRMED, False)


async def test_kis_a_late_reply_is_matched_by_its_key() -> None:
    ks = kis()
    a = Subscription("kis", "H0STASP0", "005930")
    ks.add([a])
    for _ in range(2):
        send_queued(ks)
        ks._check_replies(time.monotonic() + 10.5)
    assert a.unanswered and not ks._pending
    (unsubscribed,) = ks.codec.receive(KIS_UNSUBSCRIBED_BUILT)
    await ks._on_message(unsubscribed, None)  # an unsubscribe's reply does not confirm it
    assert a.state is SubState.FAILED
    (subscribed,) = ks.codec.receive(KIS_SUBSCRIBED)
    await ks._on_message(subscribed, None)
    assert (a.state, a.unanswered) == (SubState.CONFIRMED, False)
    assert [type(e).__name__ for e in ks._sink.events] == ["SubscribeFailed", "Subscribed"]
