"""What the dashboard shows, folded from the same items the rest of krfeed delivers.

:class:`DashboardState` takes feed items (records, control events, decode errors) and the order
stream's outputs (:class:`~krfeed.orders.OrderEvent`, anomalies, reconciliation reports) and keeps,
in bounded memory whatever the rate or the length of the session:

- program trading per stock (via :func:`krfeed.orders.normalize_program`): the latest totals, the
  net buying as a line with at most one point per second, and buy/sell per minute;
- the market-wide program trading of H0UPPGM0 (latest and a line per index);
- the tape (last trades) and the 10-level book of every stock;
- the orders of an :class:`~krfeed.orders.OrderTracker`, fills, reports and anomalies;
- health: sessions, subscriptions, counters of ``feed.stats()``, notices.

Each panel has a version that changes when its content does; :class:`ClientView` turns the state
into messages for one page, at most ``rate`` per second per panel (latest state, not every
change), with the program lines sent incrementally.
"""

from __future__ import annotations

import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from krfeed.events import (
    Connected,
    Disconnected,
    Dropped,
    Event,
    LayoutChanged,
    LoggedIn,
    Reconnected,
    Reconnecting,
    SessionFailed,
    Stalled,
    Subscribed,
    SubscribeFailed,
)
from krfeed.orders.model import (
    OrderAnomaly,
    OrderEvent,
    OrderState,
    ReconcileReport,
    is_order_record,
)
from krfeed.orders.tracker import OrderTracker
from krfeed.program import ProgramTotals, normalize_program, split_kiwoom_item
from krfeed.protocol.messages import DecodeError
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


@dataclass
class SessionView:
    state: str = "starting"
    reason: str = ""
    since: float = field(default_factory=_time.time)


class DashboardState:
    """Everything the page shows; fold items in with :meth:`ingest`.

    ``tracker``: the :class:`OrderTracker` whose orders the blotter lists (an OrderStream's).
    ``fold_orders``: also fold order records into it here (replays, where no OrderStream runs).
    ``names``: stock names known beforehand (names also come from order events).
    """

    def __init__(
        self,
        *,
        tracker: OrderTracker | None = None,
        fold_orders: bool = False,
        names: dict[str, str] | None = None,
        max_codes: int = 200,
        line_points: int = 8 * 3600,
        tape_size: int = 50,
        clock: Callable[[], float] = _time.time,
    ) -> None:
        self.tracker = tracker if tracker is not None else OrderTracker()
        self.fold_orders = fold_orders
        self.names: dict[str, str] = dict(names or {})
        self.max_codes = max_codes
        self.line_points = line_points
        self.tape_size = tape_size
        self.clock = clock
        self.versions: dict[str, int] = dict.fromkeys(PANELS, 0)
        #: per stock versions of the tape and book (a page shows one stock's)
        self.tape_versions: dict[str, int] = {}
        self.book_versions: dict[str, int] = {}
        self.program: dict[str, StockProgram] = {}
        self.market: dict[str, dict[str, Any]] = {}
        self.market_lines: dict[str, Line] = {}
        self.tapes: dict[str, deque[Trade]] = {}
        self.tape_source: dict[str, str] = {}
        self.quotes: dict[str, Quote] = {}
        self.books: dict[str, dict[str, Any]] = {}
        #: the keys of program, tapes and books together (what counts against max_codes)
        self.shown: set[str] = set()
        self.fills: deque[dict[str, Any]] = deque(maxlen=200)
        self.reports: deque[dict[str, Any]] = deque(maxlen=30)
        self.anomalies: deque[dict[str, Any]] = deque(maxlen=30)
        self.notices: deque[dict[str, Any]] = deque(maxlen=50)
        self.sessions: dict[str, SessionView] = {}
        self.counts: dict[str, int] = {
            "records": 0,
            "decode_errors": 0,
            "layout_notices": 0,
            "dropped": 0,
            "order_events": 0,
            "ignored_codes": 0,
        }
        self.mode = "live"
        self.started = clock()

    # ---- folding ----

    def _bump(self, panel: str) -> None:
        self.versions[panel] += 1

    def ingest(self, item: Any) -> None:
        """Fold one item (anything a Feed or an OrderStream yields; others are ignored)."""
        if isinstance(item, Record):
            self.counts["records"] += 1
            self._record(item)
        elif isinstance(item, OrderEvent):
            self._order_event(item)
        elif isinstance(item, ReconcileReport):
            self.reports.append(_report_dict(item))
            if not item.ok:
                self._notice("warn", f"reconciliation of {item.session} failed: {item.error}")
            self._bump("orders")
        elif isinstance(item, OrderAnomaly):
            self.anomalies.append(
                {
                    "t": item.received_at.timestamp(),
                    "broker": item.broker,
                    "order_no": item.order_no,
                    "problem": item.problem,
                    "message": item.message,
                }
            )
            self._bump("orders")
        elif isinstance(item, DecodeError):
            self.counts["decode_errors"] += 1
            self._notice("error", f"{item.broker} {item.type or '?'}: {item.reason}")
        elif isinstance(item, Event):
            self._event(item)

    def _record(self, r: Record) -> None:
        if r.account:
            if self.fold_orders and is_order_record(r):
                for out in self.tracker.update(r):
                    self.ingest(out)
            return
        p = normalize_program(r)
        if p is not None:
            self._program(p)
            return
        if isinstance(r, kis_records.IndexProgramTrading):
            self._market(r)
            return
        tr = _trade_of(r)
        if tr is not None:
            self._trade(r.broker, *tr)
            return
        bk = _book_of(r)
        if bk is not None:
            code, book = bk
            old = self.books.get(code)
            if old is not None and _PREFERENCE[r.broker] > _PREFERENCE[old["broker"]]:
                return
            if old is None and not self._room(code):
                return
            self.books[code] = book
            self.book_versions[code] = self.book_versions.get(code, 0) + 1
            self._bump("book")

    def _room(self, code: str) -> bool:
        """Whether ``code`` is shown or may be (counted in ``shown``); at ``max_codes`` a new
        one is ignored. Checked per record of a new or ignored code, so a set lookup."""
        if code in self.shown:
            return True
        if len(self.shown) < self.max_codes:
            self.shown.add(code)
            return True
        self.counts["ignored_codes"] += 1
        return False

    def _program(self, p: ProgramTotals) -> None:
        key = p.code if p.exchange == "KRX" else f"{p.code}_{p.exchange}"
        st = self.program.get(key)
        if st is None or _PREFERENCE[p.broker] < _PREFERENCE[st.broker]:
            if st is None and not self._room(key):
                return
            st = StockProgram(key, p.broker, p, Line(self.line_points))
            self.program[key] = st
        elif p.broker != st.broker:
            return  # the other broker's view of a stock already shown
        st.latest = p
        st.updates += 1
        t = _ts(p.time, p.received_at)
        st.line.add(t, p.net_buy_qty, p.net_buy_amount)
        totals = [p.buy_amount or 0, p.sell_amount or 0, p.buy_qty or 0, p.sell_qty or 0]
        minute = int(t) // 60 * 60
        if st.minutes and st.minutes[-1][0] == minute:
            st.minutes[-1] = (minute, totals)
        elif not st.minutes or minute > st.minutes[-1][0]:
            if not st.minutes:
                st.base = list(totals)  # the first minute counts from the first record seen
            st.minutes.append((minute, totals))
        self._bump("program")

    def _market(self, r: kis_records.IndexProgramTrading) -> None:
        code = (r.code or r.item).strip()
        if code not in self.market and len(self.market) >= 20:
            return
        t = _ts(r.time, r.received_at)
        self.market[code] = {
            "code": code,
            "t": t,
            "net_value": r.total_net_buy_value,
            "net_qty": r.total_net_buy_qty,
            "arb_net_value": r.arb_total_net_buy_value,
            "non_arb_net_value": r.non_arb_total_net_buy_value,
            "buy_value": r.total_buy_value,
            "sell_value": r.total_sell_value,
        }
        line = self.market_lines.setdefault(code, Line(self.line_points))
        line.add(t, r.total_net_buy_value, r.arb_total_net_buy_value, r.non_arb_total_net_buy_value)
        self._bump("market")

    def _trade(self, broker: str, code: str, trade: Trade, volume: int | None) -> None:
        src = self.tape_source.get(code)
        if src is not None and src != broker:
            if _PREFERENCE[broker] > _PREFERENCE[src]:
                return
            self.tapes.pop(code, None)  # the preferred broker's tape replaces the other's
        if src is None and not self._room(code):
            return
        self.tape_source[code] = broker
        tape = self.tapes.get(code)
        if tape is None:
            tape = self.tapes[code] = deque(maxlen=self.tape_size)
        tape.append(trade)
        q = self.quotes.get(code)
        if q is None:
            q = self.quotes[code] = Quote()
        q.price, q.change, q.rate, q.volume, q.t = (
            trade.price,
            trade.change,
            trade.rate,
            volume,
            trade.t,
        )
        self.tape_versions[code] = self.tape_versions.get(code, 0) + 1
        self._bump("tape")
        self._bump("program")  # the ranking shows the last price

    def _order_event(self, ev: OrderEvent) -> None:
        self.counts["order_events"] += 1
        if ev.code and ev.name and ev.code not in self.names:
            self.names[ev.code] = ev.name.strip()
        if ev.kind == "filled":
            self.fills.appendleft(
                {
                    "t": _ts(ev.time, ev.received_at),
                    "broker": ev.broker,
                    "order_no": ev.order_no,
                    "code": ev.code,
                    "side": ev.side,
                    "qty": ev.fill_qty,
                    "price": ev.fill_price,
                    "filled": ev.filled_qty,
                    "order_qty": ev.order_qty,
                    "source": ev.source,
                }
            )
        elif ev.kind == "rejected":
            why = f": {ev.reason}" if ev.reason else ""
            self._notice("warn", f"{ev.broker} order {ev.order_no} rejected{why}")
        self._bump("orders")

    def _event(self, e: Event) -> None:
        s = self.sessions.get(e.session) if e.session else None
        if s is None and e.session:
            s = self.sessions[e.session] = SessionView()
        now = self.clock()
        if isinstance(e, Connected) and s is not None:
            s.state, s.reason, s.since = "connected", "", now
        elif isinstance(e, LoggedIn | Reconnected | Subscribed) and s is not None:
            if s.state != "live":
                s.state, s.reason, s.since = "live", "", now
        elif isinstance(e, Disconnected) and s is not None:
            s.state = "failed" if e.fatal else "reconnecting"
            s.reason, s.since = e.reason, now
            self._notice("warn", f"{e.session} disconnected: {e.reason}")
        elif isinstance(e, Reconnecting) and s is not None:
            s.state = "reconnecting"
            s.reason = e.reason or s.reason
        elif isinstance(e, SessionFailed) and s is not None:
            s.state, s.reason, s.since = "failed", e.reason, now
            self._notice("error", f"{e.session} stopped: {e.reason}")
        elif isinstance(e, SubscribeFailed):
            self._notice("error", f"{e.session} {e.type} {e.item} refused: {e.reason}")
        elif isinstance(e, LayoutChanged):
            self.counts["layout_notices"] += 1
            self._notice("info", e.message or f"{e.type}: layout with {e.fields} fields")
        elif isinstance(e, Dropped):
            self.counts["dropped"] = e.total
            self._notice("warn", f"{e.count} market-data records dropped (consumer behind)")
        elif isinstance(e, Stalled):
            self._notice("warn", f"{e.session}: no data for {e.silent_for:.0f}s")
        self._bump("health")

    def _notice(self, level: str, text: str) -> None:
        self.notices.appendleft({"t": self.clock(), "level": level, "text": text})
        self._bump("health")

    # ---- views (plain JSON-able dicts) ----

    def name(self, code: str) -> str:
        return self.names.get(code.split("_", 1)[0], "")

    def codes(self) -> list[str]:
        """Every stock the dashboard has data of, program-traded first (by net value)."""
        out = [c for c, _ in self.ranking_keys()]
        for c in list(self.tapes) + list(self.books):
            if c not in out:
                out.append(c)
        return out

    def ranking_keys(self) -> list[tuple[str, int]]:
        keys = [(c, st.latest.net_buy_amount or 0) for c, st in self.program.items()]
        keys.sort(key=lambda kv: (-kv[1], kv[0]))
        return keys

    def ranking(self) -> list[dict[str, Any]]:
        """Stocks by net program buying value (won), largest first."""
        out = []
        for code, _ in self.ranking_keys():
            st = self.program[code]
            p = st.latest
            q = self.quotes.get(code)
            out.append(
                {
                    "code": code,
                    "name": self.name(code),
                    "broker": st.broker,
                    "t": _ts(p.time, p.received_at),
                    "net_qty": p.net_buy_qty,
                    "net_amount": p.net_buy_amount,
                    "buy_qty": p.buy_qty,
                    "sell_qty": p.sell_qty,
                    "buy_amount": p.buy_amount,
                    "sell_amount": p.sell_amount,
                    "amount_unit": p.amount_unit,
                    "price": q.price if q else p.price,
                    "change": q.change if q else None,
                    "rate": q.rate if q else None,
                }
            )
        return out

    def tape_view(self, code: str) -> dict[str, Any]:
        tape = self.tapes.get(code, ())
        q = self.quotes.get(code)
        return {
            "code": code,
            "name": self.name(code),
            "broker": self.tape_source.get(code),
            "quote": None if q is None else vars(q),
            "trades": [vars(t) for t in reversed(tape)],
        }

    def book_view(self, code: str) -> dict[str, Any]:
        return {"code": code, "name": self.name(code), "book": self.books.get(code)}

    def market_view(self) -> dict[str, Any]:
        return {"latest": sorted(self.market.values(), key=lambda m: m["code"])}

    def orders_view(self, limit: int = 100) -> dict[str, Any]:
        states = self.tracker.orders()
        states.sort(key=_order_time, reverse=True)
        shown = states[:limit]
        brokers = sorted({s.broker for s in states})
        summary = {b: self.tracker.summary(b).to_dict() for b in brokers}
        return {
            "orders": [_order_dict(s, self.names) for s in shown],
            "total": len(states),
            "open": sum(1 for s in states if not s.final),
            "summary": summary,
            "fills": list(self.fills)[:50],
            "reports": list(self.reports),
            "anomalies": list(self.anomalies),
        }

    def health_view(self, stats: dict[str, Any] | None, subs: list[Any]) -> dict[str, Any]:
        """Sessions, subscriptions and counters (``stats``: ``feed.stats()``, if live)."""
        sessions = []
        st_sessions = (stats or {}).get("sessions", {})
        names = sorted(set(self.sessions) | set(st_sessions))
        for name in names:
            view = self.sessions.get(name) or SessionView()
            s = st_sessions.get(name, {})
            state = view.state
            if s.get("failed"):
                state = "failed"
            sessions.append(
                {
                    "name": name,
                    "state": state,
                    "engine_state": str(s.get("state", "")),
                    "reason": s.get("failed") or view.reason,
                    "since": view.since,
                    "reconnects": s.get("reconnects", 0),
                    "records": s.get("records", 0),
                    "decode_errors": s.get("decode_errors", 0),
                    "layout_notices": s.get("layout_notices", 0),
                    "registrations": s.get("registrations", 0),
                }
            )
        sub_rows = [
            {
                "session": sub.session,
                "type": sub.type,
                "item": sub.item,
                "state": getattr(sub.state, "value", str(sub.state)),
                "reason": sub.reason,
            }
            for sub in subs
        ]
        out: dict[str, Any] = {
            "mode": self.mode,
            "sessions": sessions,
            "subscriptions": sub_rows,
            "counts": dict(self.counts),
            "notices": list(self.notices)[:20],
        }
        if stats is not None:
            out["stats"] = {
                k: stats.get(k)
                for k in (
                    "uptime",
                    "frames",
                    "records_received",
                    "delivered",
                    "decode_errors",
                    "layout_notices",
                    "reconnects",
                    "queue_depth",
                    "queue_high_water",
                    "dropped",
                    "latency_ms",
                )
            }
        return out


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


class ClientView:
    """What one page has been sent, and what to send it next: each panel at most ``rate`` times
    a second, only when it changed, always its latest state. Program lines go incrementally (the
    points the page does not have yet, plus its last point, which may have moved on)."""

    def __init__(
        self,
        state: DashboardState,
        *,
        rate: float = 10.0,
        health_interval: float = 1.0,
        health: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.state = state
        self.min_gap = 1.0 / rate
        self.health_interval = max(health_interval, self.min_gap)
        self.health = health or (lambda: state.health_view(None, []))
        self.selected: str | None = None
        self.sent_versions: dict[str, Any] = {}
        self.sent_at: dict[str, float] = dict.fromkeys(PANELS, float("-inf"))
        self.line_n: dict[str, int] = {}
        self.market_n: dict[str, int] = {}
        self.sent = dict.fromkeys(PANELS, 0)

    def select(self, code: str) -> None:
        """Show ``code``'s tape, book and minute bars (sent on the next poll)."""
        if code != self.selected:
            self.selected = code
            for p in ("tape", "book", "program"):
                self.sent_versions.pop(p, None)
                self.sent_at[p] = float("-inf")

    def _due(self, panel: str, version: Any, now: float) -> bool:
        if now - self.sent_at[panel] < self.min_gap - 1e-9:
            return False
        return bool(self.sent_versions.get(panel) != version)

    def _mark(self, panel: str, version: Any, now: float) -> None:
        self.sent_versions[panel] = version
        self.sent_at[panel] = now
        self.sent[panel] += 1

    def poll(self, now: float) -> list[dict[str, Any]]:
        """The messages due at ``now`` (monotonic seconds)."""
        st = self.state
        out: list[dict[str, Any]] = []
        if self.selected is None or (
            self.selected not in st.program
            and self.selected not in st.tapes
            and self.selected not in st.books
        ):
            codes = st.codes()
            if codes:
                self.select(codes[0])
        sel = self.selected or ""
        v = st.versions["program"]
        if self._due("program", v, now):
            out.append(self._program(sel))
            self._mark("program", v, now)
        v = st.versions["market"]
        if self._due("market", v, now):
            out.append(self._market())
            self._mark("market", v, now)
        tv = (sel, st.tape_versions.get(sel, 0))
        if self._due("tape", tv, now):
            out.append({"type": "tape", **st.tape_view(sel)})
            self._mark("tape", tv, now)
        bv = (sel, st.book_versions.get(sel, 0))
        if self._due("book", bv, now):
            out.append({"type": "book", **st.book_view(sel)})
            self._mark("book", bv, now)
        v = st.versions["orders"]
        if self._due("orders", v, now):
            out.append({"type": "orders", **st.orders_view()})
            self._mark("orders", v, now)
        if now - self.sent_at["health"] >= self.health_interval - 1e-9:
            out.append({"type": "health", **self.health()})
            self._mark("health", st.versions["health"], now)
        return out

    def _program(self, sel: str) -> dict[str, Any]:
        st = self.state
        lines: dict[str, Any] = {}
        for code, sp in st.program.items():
            have = self.line_n.get(code, 0)
            first, pts = sp.line.since(max(0, have - 1))
            if have and first > have - 1:
                first, pts = sp.line.since(0)  # fell behind the kept window: everything kept
                first = -first - 1  # negative: replace, do not append
            self.line_n[code] = sp.line.end
            if pts or not have:
                lines[code] = {"from": first, "points": pts}
        chosen = st.program.get(sel)
        return {
            "type": "program",
            "ranking": st.ranking(),
            "lines": lines,
            "selected": sel,
            "name": st.name(sel),
            "bars": chosen.bars() if chosen else [],
            "codes": st.codes(),
        }

    def _market(self) -> dict[str, Any]:
        lines: dict[str, Any] = {}
        for code, line in self.state.market_lines.items():
            have = self.market_n.get(code, 0)
            first, pts = line.since(max(0, have - 1))
            if have and first > have - 1:
                first, pts = line.since(0)
                first = -first - 1
            self.market_n[code] = line.end
            lines[code] = {"from": first, "points": pts}
        return {"type": "market", **self.state.market_view(), "lines": lines}
