"""The orders blotter's log: fills learned at start are the day so far, fills learned after a
gap are missed ones."""

from __future__ import annotations

from krfeed.cli.orders import OrdersView
from krfeed.orders.datatypes import ReconcileReport
from krfeed.orders.tracker import OrderTracker


def report(trigger: str, fills: int, qty: int) -> ReconcileReport:
    return ReconcileReport(
        broker="kiwoom", session="kiwoom#1", trigger=trigger, ok=True, fills=fills, fill_qty=qty
    )


def test_the_log_tells_the_day_so_far_from_missed_fills() -> None:
    view, tracker = OrdersView(), OrderTracker()
    view.update(report("initial", 27, 310), tracker)
    view.update(report("reconnect", 2, 15), tracker)
    view.update(report("reconnect", 0, 0), tracker)
    assert list(view.log) == [
        "kiwoom#1: 27 fill(s) of today before the start (310 shares), learned over REST",
        "reconciled kiwoom#1 after reconnect: 2 missed fill(s), 15 shares",
    ]
