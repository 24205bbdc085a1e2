"""The orders blotter's log: fills learned at start are the day so far, fills learned after a
gap are missed ones."""

from __future__ import annotations

from rich.console import Console

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


def test_the_day_fits_80_columns() -> None:
    """Ten figures per broker, amounts in the hundreds of millions of won: a column per
    broker on an 80-column screen, whole; a row per broker on a wide one."""
    from test_orders_tracker import ev

    from krfeed.schema.enums import Side

    tracker = OrderTracker()
    for n, (broker, side, qty, price) in enumerate(
        [("kiwoom", Side.BUY, 1200, 215_500), ("kis", Side.SELL, 3300, 57_100)], 1
    ):
        base = {"broker": broker, "order_no": f"{n:07d}", "side": side, "order_qty": qty,
                "order_price": price}  # fmt: skip
        tracker.apply(ev("accepted", **base))
        tracker.apply(ev("filled", fill_no="1", fill_qty=qty, fill_price=price, filled_qty=qty,
                         filled_amount=qty * price, remaining_qty=0, **base))  # fmt: skip
    for width in (80, 160):
        console = Console(width=width, record=True)
        console.print(OrdersView()._today(tracker, width=width))
        text = console.export_text()
        assert "…" not in text, text
        assert "258,600,000" in text and "188,430,000" in text, text  # buy and sell amounts
    assert max(len(line) for line in text.splitlines()) > 80  # the wide one is a row each
