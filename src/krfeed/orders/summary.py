"""The day's totals of an :class:`~krfeed.orders.tracker.OrderTracker`'s orders (re-exported by
:mod:`krfeed.orders.tracker`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from krfeed.orders.model import OrderState
from krfeed.schema.enums import Side


@dataclass(frozen=True)
class DaySummary:
    """Totals of the orders in the tracker (won and shares)."""

    orders: int
    open_orders: int
    fills: int
    reconciled_fills: int
    bought_qty: int
    sold_qty: int
    buy_amount: int
    sell_amount: int
    commission: int
    tax: int

    @property
    def net_cash(self) -> int:
        """Sell amount − buy amount − fees − taxes: the day's cash flow from trading."""
        return self.sell_amount - self.buy_amount - self.commission - self.tax

    def to_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "open_orders": self.open_orders,
            "fills": self.fills,
            "reconciled_fills": self.reconciled_fills,
            "bought_qty": self.bought_qty,
            "sold_qty": self.sold_qty,
            "buy_amount": self.buy_amount,
            "sell_amount": self.sell_amount,
            "commission": self.commission,
            "tax": self.tax,
            "net_cash": self.net_cash,
        }


def day_summary(states: Sequence[OrderState]) -> DaySummary:
    """The totals of ``states`` (won and shares)."""
    buy = [s for s in states if s.side is Side.BUY]
    sell = [s for s in states if s.side is Side.SELL]
    return DaySummary(
        orders=sum(1 for s in states if s.action != "cancel"),
        open_orders=sum(1 for s in states if s.remaining_qty > 0),
        fills=sum(len(s.fills) for s in states),
        reconciled_fills=sum(1 for s in states for f in s.fills if f.source == "reconciled"),
        bought_qty=sum(s.filled_qty for s in buy),
        sold_qty=sum(s.filled_qty for s in sell),
        buy_amount=sum(s.filled_amount for s in buy),
        sell_amount=sum(s.filled_amount for s in sell),
        commission=sum(s.commission or 0 for s in states),
        tax=sum(s.tax or 0 for s in states),
    )
