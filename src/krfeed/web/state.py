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

from collections.abc import Callable
from typing import Any

from krfeed.web.dashboard import DashboardState, SessionView
from krfeed.web.panels import PANELS, Line, Quote, StockProgram, Trade


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


# the panel data moved to krfeed.web.panels, the state to krfeed.web.dashboard; importable
# from here as before
__all__ = [
    "PANELS",
    "ClientView",
    "DashboardState",
    "Line",
    "Quote",
    "SessionView",
    "StockProgram",
    "Trade",
]
