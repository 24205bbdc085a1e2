"""The dashboard's panel data (:mod:`krfeed.web.state`): the panels, a bounded line of points,
per-stock program bars, trades and quotes, what a record adds to the tape and the book, and the
JSON forms of orders and reconciliation reports."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from krfeed.orders.model import (
    OrderState,
    ReconcileReport,
)
from krfeed.program import ProgramTotals, split_kiwoom_item
from krfeed.records import kis as kis_records
from krfeed.records import kiwoom as kiwoom_records
from krfeed.records.base import Record
from krfeed.schema.enums import Side

#: Panels of the page; each has its own version and push budget.
PANELS = ("program", "market", "tape", "book", "orders", "health")

#: Which broker's data a stock's panel shows when both send it: KIS amounts are in won, Kiwoom's
#: 0w amounts in 백만원, so KIS wins.
_PREFERENCE = {"kis": 0, "kiwoom": 1}


def _ts(t: datetime | None, fallback: datetime) -> float:
    return (t or fallback).timestamp()


def _num(v: Any) -> Any:
    """JSON-friendly number: Decimal -> float (display only), others as they are."""
    return float(v) if isinstance(v, Decimal) else v


class Line:
    """A time series with at most one point per second (the latest value of that second), the
    oldest points forgotten past ``size``. ``end`` counts every point ever appended, so a
    reader that has ``n`` points asks for ``since(n - 1)`` (its last point may have changed)."""

    def __init__(self, size: int) -> None:
        self.points: deque[list[float | int | None]] = deque(maxlen=size)
        self.end = 0

    @property
    def start(self) -> int:
        return self.end - len(self.points)

    def add(self, t: float, *values: float | int | None) -> None:
        sec = float(int(t))
        if self.points and self.points[-1][0] == sec:
            self.points[-1] = [sec, *values]
            return
        last = self.points[-1][0] if self.points else None
        if last is not None and sec < last:  # out of order (another session): keep the last
            return
        self.points.append([sec, *values])
        self.end += 1

    def since(self, n: int) -> tuple[int, list[list[float | int | None]]]:
        """(index of the first point returned, the points from index ``n`` on)."""
        first = max(n, self.start)
        skip = first - self.start
        if skip <= 0:
            return first, list(self.points)
        return first, [self.points[i] for i in range(skip, len(self.points))]


@dataclass
class StockProgram:
    """Program trading of one stock (one exchange) as the dashboard keeps it."""

    code: str
    broker: str
    latest: ProgramTotals
    line: Line
    #: minute (epoch seconds) -> [buy amount at its end, sell amount at its end, buy qty, sell qty]
    minutes: deque[tuple[int, list[int]]] = field(default_factory=lambda: deque(maxlen=600))
    base: list[int] | None = None  # the totals before the first minute seen
    updates: int = 0

    def bars(self) -> list[list[int]]:
        """[minute, buy amount, sell amount, buy qty, sell qty] of each minute (the change of the
        day's running totals over that minute)."""
        out: list[list[int]] = []
        prev = self.base
        for minute, end in self.minutes:
            if prev is None:
                prev = end
            out.append([minute, *(e - p for e, p in zip(end, prev, strict=True))])
            prev = end
        return out


@dataclass
class Trade:
    t: float
    price: int | None
    qty: int | None
    side: str | None
    change: int | None
    rate: float | None


@dataclass
class Quote:
    """The last trade of a stock: price, change and the day's volume."""

    price: int | None = None
    change: int | None = None
    rate: float | None = None
    volume: int | None = None
    t: float = 0.0


def _trade_of(r: Record) -> tuple[str, Trade, int | None] | None:
    if isinstance(r, kis_records.Trade | kis_records.TradeNxt | kis_records.TradeTotal):
        side = {"1": "buy", "5": "sell"}.get(r.trade_class or "")
        change = r.change
        return (
            (r.code or r.item).strip(),
            Trade(
                _ts(r.time, r.received_at),
                r.current_price,
                r.trade_volume,
                side,
                change,
                _num(r.change_rate),
            ),
            r.cumulative_volume,
        )
    if isinstance(r, kiwoom_records.StockTrade):
        side = r.trade_volume_side.value if isinstance(r.trade_volume_side, Side) else None
        code = split_kiwoom_item(r.item)[0]
        return (
            code,
            Trade(
                _ts(r.trade_time, r.received_at),
                r.current_price,
                r.trade_volume,
                side,
                r.change,
                _num(r.change_rate),
            ),
            r.cumulative_volume,
        )
    return None


def _book_of(r: Record) -> tuple[str, dict[str, Any]] | None:
    if isinstance(r, kis_records.OrderBook | kis_records.OrderBookNxt | kis_records.OrderBookTotal):
        code = (r.code or r.item).strip()
        t = _ts(r.time, r.received_at)
    elif isinstance(r, kiwoom_records.OrderBook):
        code = split_kiwoom_item(r.item)[0]
        t = _ts(r.quote_time, r.received_at)
    else:
        return None
    g = r.__getattribute__
    asks = [[g(f"ask_price_{i}"), g(f"ask_qty_{i}")] for i in range(1, 11)]
    bids = [[g(f"bid_price_{i}"), g(f"bid_qty_{i}")] for i in range(1, 11)]
    return code, {
        "t": t,
        "broker": r.broker,
        "asks": asks,
        "bids": bids,
        "total_ask": g("total_ask_qty") if hasattr(r, "total_ask_qty") else None,
        "total_bid": g("total_bid_qty") if hasattr(r, "total_bid_qty") else None,
    }


def _order_time(s: OrderState) -> float:
    t = s.updated_at or s.accepted_at
    return t.timestamp() if t else 0.0


def _order_dict(s: OrderState, names: dict[str, str]) -> dict[str, Any]:
    return {
        "broker": s.broker,
        "order_no": s.order_no,
        "action": s.action,
        "code": s.code,
        "name": (s.name or "").strip() or names.get(s.code or "", ""),
        "side": s.side,
        "type": s.order_type,
        "qty": s.order_qty,
        "price": s.order_price,
        "filled": s.filled_qty,
        "avg_price": _num(s.avg_price),
        "remaining": s.remaining_qty,
        "status": s.status,
        "t": _order_time(s),
        "fills": [
            [f.qty, f.price, f.time.timestamp() if f.time else None, f.source] for f in s.fills
        ],
        "reconciled": sum(1 for f in s.fills if f.source == "reconciled"),
    }


def _report_dict(r: ReconcileReport) -> dict[str, Any]:
    return {
        "t": r.received_at.timestamp(),
        "broker": r.broker,
        "session": r.session,
        "trigger": r.trigger,
        "ok": r.ok,
        "error": r.error,
        "orders_listed": r.orders_listed,
        "events": r.events,
        "fills": r.fills,
        "fill_qty": r.fill_qty,
        "seconds": round(r.seconds, 3),
    }
