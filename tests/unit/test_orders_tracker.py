"""OrderTracker: partial fills and average price, duplicates, gaps closed from Kiwoom's cumulative
fields, modify/cancel moves, impossible transitions as anomalies, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from krfeed.orders import OrderAnomaly, OrderEvent, OrderTracker
from krfeed.orders.tracker import Output
from krfeed.schema.enums import Side

T0 = datetime(2025, 3, 14, 1, 0, tzinfo=UTC)


def ev(kind: str, order_no: str = "0000001", broker: str = "kiwoom", **kw: Any) -> OrderEvent:
    base: dict[str, Any] = {
        "broker": broker,
        "account": "5000000001",
        "order_no": order_no,
        "kind": kind,
        "code": "005930",
        "side": Side.BUY,
        "order_qty": 10,
        "order_price": 60000,
        "received_at": T0,
    }
    base.update(kw)
    return OrderEvent(**base)


def kw_fill(cum: int, unit: int, price: int, amount: int, fill_no: str, **kw: Any) -> OrderEvent:
    """A Kiwoom fill: 911 cumulative, 915 unit, 903 cumulative amount, 909 fill number."""
    return ev(
        "filled",
        fill_no=fill_no,
        fill_qty=unit,
        fill_price=price,
        filled_qty=cum,
        filled_amount=amount,
        remaining_qty=10 - cum,
        **kw,
    )


def events(out: list[Output]) -> list[OrderEvent]:
    return [o for o in out if isinstance(o, OrderEvent)]


def anomalies(out: list[Output]) -> list[OrderAnomaly]:
    return [o for o in out if isinstance(o, OrderAnomaly)]


def test_partial_fills_average_price_and_completion() -> None:
    t = OrderTracker()
    (acc,) = t.apply(ev("accepted", remaining_qty=10))
    assert isinstance(acc, OrderEvent) and acc.remaining_qty == 10
    (f1,) = events(t.apply(kw_fill(3, 3, 60000, 180000, "0000101")))
    assert (f1.fill_qty, f1.filled_qty, f1.remaining_qty, f1.complete) == (3, 3, 7, False)
    (f2,) = events(t.apply(kw_fill(10, 7, 60100, 600700, "0000102")))
    assert (f2.fill_qty, f2.fill_price, f2.filled_qty, f2.complete) == (7, 60100, 10, True)
    s = t.get("kiwoom", "0000001")
    assert s is not None
    assert (s.filled_qty, s.filled_amount, s.remaining_qty, s.status) == (10, 600700, 0, "filled")
    assert s.avg_price == Decimal("60070.00")
    assert [f.fill_no for f in s.fills] == ["0000101", "0000102"]


def test_repeated_event_and_repeated_fill_are_dropped() -> None:
    t = OrderTracker()
    t.apply(ev("accepted"))
    assert t.apply(ev("accepted")) == []
    fill = kw_fill(3, 3, 60000, 180000, "0000101")
    assert len(events(t.apply(fill))) == 1
    assert t.apply(fill) == []  # the same fill number
    assert t.counts["duplicates"] == 2
    s = t.get("kiwoom", "0000001")
    assert s is not None and s.filled_qty == 3


def test_kiwoom_cumulative_jump_closes_the_gap_first() -> None:
    t = OrderTracker()
    t.apply(ev("accepted"))
    t.apply(kw_fill(2, 2, 60000, 120000, "0000101"))
    # fills 0000102 (3 @ 60,100) and 0000103 were missed; 0000104 (1 @ 60,200) arrives
    out = events(t.apply(kw_fill(9, 1, 60200, 120000 + 3 * 60100 + 3 * 60000 + 60200, "0000104")))
    gap, live = out
    assert (gap.source, gap.fill_qty, gap.filled_qty, gap.record) == ("reconciled", 6, 8, None)
    assert gap.fill_no == "0000001:8"
    assert gap.filled_amount == 120000 + 3 * 60100 + 3 * 60000
    assert (live.source, live.fill_no, live.fill_qty, live.filled_qty) == ("live", "0000104", 1, 9)
    assert t.counts["gaps_closed"] == 1


def test_event_already_counted_by_a_reconciliation_is_stale() -> None:
    t = OrderTracker()
    t.apply(ev("accepted"))
    rec = ev("filled", fill_qty=5, fill_price=60000, filled_qty=5, filled_amount=300000)
    rec = OrderEvent(
        **{**{f: getattr(rec, f) for f in rec.__struct_fields__}, "source": "reconciled"}
    )
    (r,) = events(t.apply(rec))
    assert (r.fill_no, r.source) == ("0000001:5", "reconciled")
    assert t.apply(kw_fill(2, 2, 60000, 120000, "0000101")) == []  # inside the reconciled 5
    assert t.apply(kw_fill(5, 3, 60000, 300000, "0000102")) == []
    (nxt,) = events(t.apply(kw_fill(6, 1, 60000, 360000, "0000103")))
    assert (nxt.fill_qty, nxt.filled_qty) == (1, 6)
    assert t.counts["stale"] == 2


def test_kis_fills_get_cumulative_fill_numbers_and_overfill_is_an_anomaly() -> None:
    t = OrderTracker()
    t.apply(ev("accepted", broker="kis", order_no="0000012345"))

    def kis_fill(qty: int, price: int) -> OrderEvent:
        return ev("filled", broker="kis", order_no="0000012345", fill_qty=qty, fill_price=price)

    (a,) = events(t.apply(kis_fill(4, 73100)))
    (b,) = events(t.apply(kis_fill(6, 73200)))
    assert (a.fill_no, a.filled_qty, a.complete) == ("0000012345:4", 4, False)
    assert (b.fill_no, b.filled_qty, b.complete, b.filled_amount) == (
        "0000012345:10",
        10,
        True,
        4 * 73100 + 6 * 73200,
    )
    (bad,) = t.apply(ev("filled", broker="kis", order_no="0000012345", fill_qty=1, fill_price=1))
    assert isinstance(bad, OrderAnomaly) and bad.problem == "overfill"
    s = t.get("kis", "0000012345")
    assert s is not None and s.filled_qty == 10


def test_fill_without_acceptance_announces_the_order_first() -> None:
    t = OrderTracker()
    out = events(t.apply(kw_fill(3, 3, 60000, 180000, "0000101")))
    assert [(e.kind, e.source) for e in out] == [("accepted", "reconciled"), ("filled", "live")]


def test_cancel_request_moves_quantity_and_is_confirmed() -> None:
    t = OrderTracker()
    t.apply(ev("accepted"))
    t.apply(kw_fill(4, 4, 60000, 240000, "0000101"))
    cancel = dict(action="cancel", original_order_no="0000001", order_qty=6, order_price=0)
    (acc,) = events(t.apply(ev("accepted", order_no="0000002", **cancel)))
    assert acc.remaining_qty == 0
    orig = t.get("kiwoom", "0000001")
    req = t.get("kiwoom", "0000002")
    assert orig is not None and req is not None
    assert (orig.remaining_qty, orig.cancelled_qty, orig.status) == (0, 6, "cancelled")
    assert req.status == "pending"
    (conf,) = events(t.apply(ev("cancelled", order_no="0000002", **cancel)))
    assert conf.kind == "cancelled" and req.status == "confirmed" and req.final
    assert t.apply(ev("cancelled", order_no="0000002", **cancel)) == []


def test_modify_moves_quantity_to_the_new_order_which_fills() -> None:
    t = OrderTracker()
    t.apply(ev("accepted"))
    mod = dict(action="modify", original_order_no="0000001", order_qty=10, order_price=60500)
    t.apply(ev("accepted", order_no="0000002", **mod))
    t.apply(ev("modified", order_no="0000002", **mod))
    t.apply(
        ev(
            "filled",
            order_no="0000002",
            fill_no="0000201",
            fill_qty=10,
            fill_price=60500,
            filled_qty=10,
            filled_amount=605000,
            **mod,
        )
    )
    orig, new = t.get("kiwoom", "0000001"), t.get("kiwoom", "0000002")
    assert orig is not None and new is not None
    assert (orig.status, orig.cancelled_qty, orig.moved) == ("cancelled", 10, {"0000002": 10})
    assert (new.status, new.confirmed, new.filled_qty) == ("filled", True, 10)


def test_rejected_modify_gives_the_quantity_back() -> None:
    t = OrderTracker()
    t.apply(ev("accepted"))
    mod = dict(action="modify", original_order_no="0000001", order_qty=10, order_price=60500)
    t.apply(ev("accepted", order_no="0000002", **mod))
    assert len(events(t.apply(ev("rejected", order_no="0000002", reason="정정불가", **mod)))) == 1
    orig, new = t.get("kiwoom", "0000001"), t.get("kiwoom", "0000002")
    assert orig is not None and new is not None
    assert (orig.remaining_qty, orig.status) == (10, "open")
    assert (new.status, new.reason) == ("rejected", "정정불가")


def test_ioc_remainder_cancelled_and_rejections() -> None:
    t = OrderTracker()
    t.apply(ev("accepted", order_type="limit_ioc"))
    t.apply(kw_fill(3, 3, 60000, 180000, "0000101"))
    (c,) = events(t.apply(ev("cancelled", remaining_qty=0)))
    assert c.remaining_qty == 0
    s = t.get("kiwoom", "0000001")
    assert s is not None and (s.status, s.cancelled_qty, s.final) == ("cancelled", 7, True)
    t.apply(ev("accepted", order_no="0000003"))
    t.apply(ev("rejected", order_no="0000003", reason="가격제한폭을 벗어난 주문입니다"))
    r = t.get("kiwoom", "0000003")
    assert r is not None and (r.status, r.rejected_qty, r.remaining_qty) == ("rejected", 10, 0)


@pytest.mark.parametrize(
    ("setup", "bad", "problem"),
    [
        (["rejected"], kw_fill(1, 1, 60000, 60000, "1"), "fill_after_reject"),
        ([], kw_fill(11, 11, 60000, 660000, "1"), "overfill"),
        ([], ev("filled", fill_qty=0, fill_price=1), "bad_fill"),
    ],
)
def test_impossible_transitions_are_anomalies(
    setup: list[str], bad: OrderEvent, problem: str
) -> None:
    t = OrderTracker()
    t.apply(ev("accepted"))
    for kind in setup:
        t.apply(ev(kind))
    before = t.get("kiwoom", "0000001")
    assert before is not None
    snapshot = (before.filled_qty, before.rejected_qty, before.cancelled_qty)
    (a,) = anomalies(t.apply(bad))
    assert a.problem == problem and a.cause == bad
    assert (before.filled_qty, before.rejected_qty, before.cancelled_qty) == snapshot


def test_fill_on_a_cancel_request_and_too_large_a_move() -> None:
    t = OrderTracker()
    t.apply(ev("accepted", order_qty=5))
    cancel = dict(action="cancel", original_order_no="0000001", order_qty=8)
    out = t.apply(ev("accepted", order_no="0000002", **cancel))
    assert [a.problem for a in anomalies(out)] == ["move_exceeds_open_qty"]
    orig = t.get("kiwoom", "0000001")
    assert orig is not None and orig.cancelled_qty == 5  # only what was open
    (a,) = anomalies(t.apply(ev("filled", order_no="0000002", fill_qty=1, fill_price=1, **cancel)))
    assert a.problem == "fill_on_cancel_request"


def test_account_adoption_and_summary() -> None:
    t = OrderTracker()
    t.apply(ev("accepted", account=None, side=Side.SELL))
    t.apply(kw_fill(10, 10, 61000, 610000, "9", commission=90, tax=1098, side=Side.SELL))
    s = t.get("kiwoom", "0000001", "5000000001")
    assert s is not None and s.account == "5000000001"
    t.apply(ev("accepted", order_no="0000002"))
    t.apply(kw_fill(4, 4, 60000, 240000, "10", order_no="0000002", commission=30))
    d = t.summary()
    assert (d.orders, d.open_orders, d.fills, d.bought_qty, d.sold_qty) == (2, 1, 2, 4, 10)
    assert (d.buy_amount, d.sell_amount, d.commission, d.tax) == (240000, 610000, 120, 1098)
    assert d.net_cash == 610000 - 240000 - 120 - 1098


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.builds(
            OrderEvent,
            broker=st.sampled_from(["kiwoom", "kis"]),
            account=st.sampled_from([None, "1", "2"]),
            order_no=st.sampled_from(["0000001", "0000002", "0000003"]),
            kind=st.sampled_from(["accepted", "filled", "modified", "cancelled", "rejected"]),
            original_order_no=st.sampled_from([None, "0000001", "0000002"]),
            action=st.sampled_from(["new", "modify", "cancel"]),
            order_qty=st.one_of(st.none(), st.integers(-5, 20)),
            fill_qty=st.one_of(st.none(), st.integers(-5, 20)),
            fill_price=st.one_of(st.none(), st.integers(-1, 100000)),
            filled_qty=st.one_of(st.none(), st.integers(-5, 25)),
            filled_amount=st.one_of(st.none(), st.integers(-10, 10**7)),
            remaining_qty=st.one_of(st.none(), st.integers(-5, 20)),
            fill_no=st.one_of(st.none(), st.sampled_from(["a", "b"])),
            source=st.sampled_from(["live", "reconciled"]),
        ),
        max_size=30,
    )
)
def test_never_raises_and_keeps_quantities_sane(evs: list[OrderEvent]) -> None:
    t = OrderTracker()
    for e in evs:
        for out in t.apply(e):
            assert isinstance(out, OrderEvent | OrderAnomaly)
            if isinstance(out, OrderAnomaly):
                assert out.problem != "internal_error", out.message
    for s in t.orders():
        assert s.filled_qty >= 0 and s.remaining_qty >= 0 and s.cancelled_qty >= 0
        assert s.status in (
            "open",
            "partially_filled",
            "filled",
            "cancelled",
            "rejected",
            "pending",
            "confirmed",
        )


# ---- invariants: one order is one (broker, account, order number); fills <= order qty ----

KIWOOM_ACCT = "5014465811"  # the Kiwoom account of the run
KIS_ACCT_OF_SAME_APPKEY = "5862881201"  # the KIS account wrongly given to the Kiwoom session


def test_reconciled_fill_for_an_order_known_under_another_account_is_refused() -> None:
    t = OrderTracker()
    t.apply(ev("accepted", account=KIWOOM_ACCT, order_qty=8))
    t.apply(kw_fill(3, 3, 60000, 180000, "0000005", account=KIWOOM_ACCT, order_qty=8))
    t.apply(kw_fill(8, 5, 60100, 480500, "0000006", account=KIWOOM_ACCT, order_qty=8))
    # the synthetic fill: the same 8 shares, reconciled under the other broker's account
    wrong = ev(
        "filled",
        account=KIS_ACCT_OF_SAME_APPKEY,
        order_qty=8,
        fill_qty=8,
        fill_price=60063,
        filled_qty=8,
        filled_amount=480500,
        source="reconciled",
    )
    (out,) = t.apply(wrong)
    assert isinstance(out, OrderAnomaly)
    assert (out.problem, out.account, out.order_no) == (
        "account_mismatch",
        KIS_ACCT_OF_SAME_APPKEY,
        "0000001",
    )
    assert "kiwoom:5014465811" in out.message and "refused" in out.message
    assert out.cause is wrong
    assert len(t) == 1  # no phantom order beside the live one
    s = t.get("kiwoom", "0000001")
    assert s is not None and s.account == KIWOOM_ACCT
    assert [(f.fill_no, f.qty) for f in s.fills] == [("0000005", 3), ("0000006", 5)]
    assert (s.filled_qty, s.status) == (8, "filled")
    assert t.counts["refused"] == 1 and t.counts["anomalies"] == 1


def test_a_live_event_under_another_account_is_applied_and_reported() -> None:
    t = OrderTracker()
    t.apply(ev("accepted", account=KIS_ACCT_OF_SAME_APPKEY, source="reconciled"))
    out = t.apply(ev("accepted", account=KIWOOM_ACCT))
    (problem,) = anomalies(out)
    assert problem.problem == "account_mismatch" and "applied" in problem.message
    assert [e.kind for e in events(out)] == ["accepted"]
    assert [s.account for s in t.orders("kiwoom")] == [KIWOOM_ACCT, KIS_ACCT_OF_SAME_APPKEY]


def test_the_same_number_for_a_different_order_of_another_account_is_no_anomaly() -> None:
    t = OrderTracker()
    t.apply(ev("accepted", account="5000000001", code="005930"))
    out = t.apply(ev("accepted", account="5000000002", code="000660", source="reconciled"))
    assert anomalies(out) == [] and [e.kind for e in events(out)] == ["accepted"]
    assert len(t) == 2


def test_fills_never_exceed_the_order_quantity() -> None:
    t = OrderTracker()
    t.apply(ev("accepted", "0000000007", broker="kis", order_qty=10))
    for qty in (6, 4):  # KIS notices: no cumulative quantity
        t.apply(ev("filled", "0000000007", broker="kis", fill_qty=qty, fill_price=50000))
    (over,) = t.apply(ev("filled", "0000000007", broker="kis", fill_qty=1, fill_price=50000))
    assert isinstance(over, OrderAnomaly) and over.problem == "overfill"
    assert "11 filled of 10" in over.message
    reconciled = ev(
        "filled", "0000000007", broker="kis", fill_qty=3, fill_price=50000, source="reconciled"
    )
    (over2,) = t.apply(reconciled)
    assert isinstance(over2, OrderAnomaly) and over2.problem == "overfill"
    s = t.get("kis", "0000000007")
    assert s is not None
    assert [f.qty for f in s.fills] == [6, 4] and s.filled_qty == 10
    assert s.filled_amount == 500000 and s.status == "filled"


def test_a_cumulative_fill_beyond_the_order_quantity_is_refused() -> None:
    t = OrderTracker()
    t.apply(ev("accepted"))
    t.apply(kw_fill(7, 7, 60000, 420000, "0000101"))
    (over,) = t.apply(kw_fill(12, 5, 60000, 720000, "0000102"))
    assert isinstance(over, OrderAnomaly) and over.problem == "overfill"
    s = t.get("kiwoom", "0000001")
    assert s is not None and (s.filled_qty, len(s.fills), s.remaining_qty) == (7, 1, 3)


def test_account_refs_of_two_brokers_never_match() -> None:
    from krfeed.orders import AccountRef

    assert AccountRef("kiwoom", "5014465811") != AccountRef("kis", "5014465811")
    assert AccountRef("kis", "58628812-01") == AccountRef("kis", "5862881201")
    assert str(AccountRef("kis", "58628812-01")) == "kis:5862881201"
    assert AccountRef.of("kis", "  ") is None
    with pytest.raises(ValueError, match="kiwoom or kis"):
        AccountRef("nasdaq", "1")
    t = OrderTracker()
    t.apply(ev("accepted", account=KIWOOM_ACCT))
    assert t.get("kiwoom", "0000001", AccountRef("kiwoom", KIWOOM_ACCT)) is not None
    with pytest.raises(ValueError, match="not a kiwoom account"):
        t.get("kiwoom", "0000001", AccountRef("kis", KIWOOM_ACCT))
    assert [s.account_ref for s in t.orders(account=AccountRef("kiwoom", KIWOOM_ACCT))] == [
        AccountRef("kiwoom", KIWOOM_ACCT)
    ]


def test_order_stream_keeps_the_tracker_it_is_given_even_empty() -> None:
    # an empty OrderTracker is falsy (it has a length): it must still be the one used
    from krfeed import Feed, Kiwoom
    from krfeed.orders import OrderStream

    mine = OrderTracker()
    assert not mine
    feed = Feed(Kiwoom(appkey="a" * 36, secretkey="s" * 36))  # never opened
    assert OrderStream(feed, tracker=mine).tracker is mine
