"""The dashboard's state (:class:`DashboardState`, described in :mod:`krfeed.web.state`): feed
items and the order stream's outputs folded into one version per panel."""

from __future__ import annotations

import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
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
    ReconcileReport,
    is_order_record,
)
from krfeed.orders.tracker import OrderTracker
from krfeed.program import ProgramTotals, normalize_program
from krfeed.protocol.messages import DecodeError
from krfeed.records import kis as kis_records
from krfeed.records.base import Record
from krfeed.web.panels import (
    _PREFERENCE,
    PANELS,
    Line,
    Quote,
    StockProgram,
    Trade,
    _book_of,
    _order_dict,
    _order_time,
    _report_dict,
    _trade_of,
    _ts,
)


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
            verb = "unanswered" if e.unanswered else "refused"
            self._notice("error", f"{e.session} {e.type} {e.item} {verb}: {e.reason}")
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
