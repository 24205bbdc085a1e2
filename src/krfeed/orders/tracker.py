"""The order book of the account: :class:`OrderTracker` folds :class:`OrderEvent` s into one
:class:`~krfeed.orders.model.OrderState` per order.

:meth:`OrderTracker.apply` returns what the event changed, as events to pass on: the event
itself completed with the tracker's view (cumulative filled quantity and amount, remaining
quantity, ``complete``, a fill number where the broker sends none), nothing for a duplicate, or an
:class:`~krfeed.orders.model.OrderAnomaly` for an impossible transition. It never raises.

Rules:

- A fill is identified by its fill number (Kiwoom 909) and, where the broker sends it, by the
  order's cumulative filled quantity (Kiwoom 911): an event whose cumulative quantity is not
  above what the tracker holds is a duplicate (or was already counted by a reconciliation), and
  one that jumps by more than its own quantity reveals fills that were missed — the tracker
  emits those first as one ``source="reconciled"`` fill (amount from 903 체결누계금액), then the
  live fill. KIS notices carry neither a fill number nor a cumulative quantity: a KIS fill is
  counted unless it would fill more than the order quantity (an ``overfill`` anomaly). A repeated
  KIS notice is therefore indistinguishable from a second identical fill in the same second;
  reconciliation (:mod:`krfeed.orders.reconcile`) reports any resulting excess as ``regressed``.
- Fills without a broker fill number — every KIS fill, and reconciled fills — get
  ``<order_no>:<filled quantity after the fill>``: unique within the day, and the same each time
  the same events are folded.
- A modify or cancel request moves its quantity off the original order when it is accepted
  (the original's ``cancelled_qty``); a rejected request gives it back. A fill that arrives for
  quantity already moved wins (the request then covered less).
- A fill or status for an order never seen accepted first creates the order and emits an
  ``accepted`` event rebuilt from it (``source="reconciled"``).
- Impossible transitions — a fill on a rejected order or on a cancel request, a fill beyond the
  order quantity, a request moving more than is open — become anomalies; the state is unchanged.
- Invariants, checked on every event: the fills held for an order never add up to more than its
  order quantity (a fill that would is refused as an ``overfill`` anomaly), and an order is one
  (broker, account, order number): a *reconciled* event naming another account than the one the
  same order is known under is refused as an ``account_mismatch`` anomaly (a reconciliation
  given the wrong account must not add a phantom order beside the live one, nor merge into it);
  a *live* event in that case is applied — the broker's push is the truth — and reported the
  same way. An order counts as "the same" when its code and order quantity agree.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from krfeed.orders.model import (
    AccountRef,
    Fill,
    OrderAnomaly,
    OrderEvent,
    OrderState,
    Source,
    normalize,
)
from krfeed.orders.summary import DaySummary, day_summary
from krfeed.records.base import Record

Output = OrderEvent | OrderAnomaly


def _no_key(order_no: str) -> tuple[int, str]:
    return (int(order_no), "") if order_no.isdigit() else (0, order_no)


class _Ambiguous(Exception):
    pass


class _Refused(Exception):
    """An event that would break an invariant: reported as this anomaly, state unchanged."""

    def __init__(self, anomaly: OrderAnomaly) -> None:
        super().__init__(anomaly.message)
        self.anomaly = anomaly


def _number(broker: str, account: AccountRef | str | None) -> str | None:
    """The account number to look up under ``broker``; another broker's account is an error."""
    if isinstance(account, AccountRef):
        if account.broker != broker:
            raise ValueError(f"{account} is not a {broker} account")
        return account.number
    return account


class OrderTracker:
    """Per-order state of one or more accounts, folded from order events."""

    def __init__(self) -> None:
        self._orders: dict[tuple[str, str, str], OrderState] = {}
        self._by_no: dict[tuple[str, str], list[OrderState]] = {}
        #: Incremented for every live event applied (the reconciler's clock).
        self.seq = 0
        self.counts: Counter[str] = Counter()

    # ---- reading ----

    def __len__(self) -> int:
        return len(self._orders)

    def get(
        self, broker: str, order_no: str, account: AccountRef | str | None = None
    ) -> OrderState | None:
        """The state of an order (``account`` may be omitted when only one account has it; an
        :class:`AccountRef` of another broker raises ValueError)."""
        try:
            return self._find(broker, _number(broker, account), order_no, adopt=False)
        except _Ambiguous:
            return None

    def orders(
        self, broker: str | None = None, account: AccountRef | str | None = None
    ) -> list[OrderState]:
        """Orders in (broker, account, order number) order."""
        if isinstance(account, AccountRef):
            if broker is not None and broker != account.broker:
                raise ValueError(f"{account} is not a {broker} account")
            broker, account = account.broker, account.number
        out = [
            s
            for s in self._orders.values()
            if (broker is None or s.broker == broker) and (account is None or s.account == account)
        ]
        out.sort(key=lambda s: (s.broker, s.account or "", _no_key(s.order_no)))
        return out

    def open_orders(self, broker: str | None = None) -> list[OrderState]:
        return [s for s in self.orders(broker) if not s.final]

    def summary(self, broker: str | None = None) -> DaySummary:
        return day_summary(self.orders(broker))

    # ---- folding ----

    def update(self, record: Record) -> list[Output]:
        """Normalize a broker record and apply it ([] for records that are not order events)."""
        ev = normalize(record)
        return [] if ev is None else self.apply(ev)

    def apply(self, ev: OrderEvent) -> list[Output]:
        """Fold one event; returns the events to pass on (see the module doc). Never raises."""
        try:
            return self._apply(ev)
        except _Refused as e:
            return [e.anomaly]
        except _Ambiguous:
            return [
                self._anomaly(
                    ev,
                    "ambiguous_order",
                    f"order {ev.order_no} exists in several accounts; the event names none",
                )
            ]
        except Exception as e:  # a bug or absurd input must not stop the stream
            return [self._anomaly(ev, "internal_error", f"{type(e).__name__}: {e}")]

    def _apply(self, ev: OrderEvent) -> list[Output]:
        live = ev.source == "live"
        if live:
            self.seq += 1
        self.counts["events"] += 1
        out: list[Output] = []
        st = self._find(ev.broker, ev.account, ev.order_no)
        if st is None:
            other = self._known_elsewhere(ev)
            if other is not None:
                problem = self._anomaly(
                    ev,
                    "account_mismatch",
                    f"{ev.source} {ev.kind} event for order {ev.order_no} of account "
                    f"{ev.account_ref}, which is known under {other.account_ref}"
                    + ("; refused" if ev.source != "live" else "; applied as its own order"),
                )
                if ev.source != "live":
                    self.counts["refused"] += 1
                    return [problem]
                out.append(problem)
            st = self._create(ev)
            self._touch(st, ev, live)
            if ev.kind == "accepted":
                out.append(self._view(ev, st))
                out.extend(self._move_from_original(st, ev))
                return out
            accepted = msgspec.structs.replace(
                ev,
                kind="accepted",
                complete=False,
                fill_no=None,
                fill_qty=None,
                fill_price=None,
                reason=None,
                source="reconciled",
                record=None,
            )
            out.append(self._view(accepted, st))
            out.extend(self._move_from_original(st, ev))
        else:
            self._touch(st, ev, live)
        handler = {
            "accepted": self._on_accepted,
            "filled": self._on_filled,
            "modified": self._on_modified,
            "cancelled": self._on_cancelled,
            "rejected": self._on_rejected,
        }[ev.kind]
        out.extend(handler(st, ev))
        return out

    # ---- handlers ----

    def _on_accepted(self, st: OrderState, ev: OrderEvent) -> list[Output]:
        self.counts["duplicates"] += 1
        return []

    def _on_filled(self, st: OrderState, ev: OrderEvent) -> list[Output]:
        if st.action == "cancel":
            return [self._anomaly(ev, "fill_on_cancel_request", "a cancel request cannot fill")]
        if st.rejected_qty > 0:
            return [self._anomaly(ev, "fill_after_reject", "fill on a rejected order")]
        if ev.fill_no is not None and any(f.fill_no == ev.fill_no for f in st.fills):
            self.counts["duplicates"] += 1
            return []
        if ev.filled_qty is not None:
            return self._fill_cumulative(st, ev)
        qty = ev.fill_qty
        if qty is None or qty <= 0:
            return [self._anomaly(ev, "bad_fill", f"fill quantity {qty!r}")]
        if st.order_qty and st.filled_qty + qty > st.order_qty:
            return [
                self._anomaly(
                    ev,
                    "overfill",
                    f"fill of {qty} would make {st.filled_qty + qty} filled of {st.order_qty}",
                )
            ]
        price = ev.fill_price or 0
        return [self._add_fill(st, ev, qty, price, None, ev.fill_no, ev.source, ev.record)]

    def _fill_cumulative(self, st: OrderState, ev: OrderEvent) -> list[Output]:
        cum = ev.filled_qty
        assert cum is not None
        if cum <= st.filled_qty:
            self.counts["stale"] += 1
            return []
        if st.order_qty and cum > st.order_qty:
            return [
                self._anomaly(
                    ev, "overfill", f"cumulative fill {cum} is above the order qty {st.order_qty}"
                )
            ]
        delta = cum - st.filled_qty
        unit = ev.fill_qty if ev.fill_qty is not None and 0 < ev.fill_qty <= cum else delta
        amount_cum = ev.filled_amount
        price = ev.fill_price
        out: list[Output] = []
        if delta > unit:
            # fills between the last one seen and this one were missed: close the gap first
            gap = delta - unit
            gap_amount: int | None = None
            if amount_cum is not None and price is not None:
                gap_amount = amount_cum - unit * price - st.filled_amount
                if gap_amount <= 0:
                    gap_amount = None
            gap_price = round(gap_amount / gap) if gap_amount else (price or 0)
            gap_cum = st.filled_amount + (gap_amount if gap_amount else gap * gap_price)
            self.counts["gaps_closed"] += 1
            out.append(self._add_fill(st, ev, gap, gap_price, gap_cum, None, "reconciled", None))
            delta = unit
        elif delta < unit:
            # part of this fill was already counted by a reconciliation
            unit = delta
            if amount_cum is not None:
                price = round((amount_cum - st.filled_amount) / delta)
        if price is None:
            price = round((amount_cum - st.filled_amount) / delta) if amount_cum is not None else 0
        fill = self._add_fill(st, ev, delta, price, amount_cum, ev.fill_no, ev.source, ev.record)
        out.append(fill)
        return out

    def _add_fill(
        self,
        st: OrderState,
        ev: OrderEvent,
        qty: int,
        price: int,
        amount_cum: int | None,
        fill_no: str | None,
        source: Source,
        record: Record | None,
    ) -> OrderEvent:
        held = sum(f.qty for f in st.fills)
        if qty <= 0 or (st.order_qty and held + qty > st.order_qty):
            self.counts["refused"] += 1
            raise _Refused(
                self._anomaly(
                    ev,
                    "overfill",
                    f"a {source} fill of {qty} on top of fills of {held} would exceed the "
                    f"order quantity {st.order_qty}; refused",
                )
            )
        st.filled_qty += qty
        st.filled_amount = amount_cum if amount_cum is not None else st.filled_amount + qty * price
        excess = st.filled_qty + st.cancelled_qty + st.rejected_qty - st.order_qty
        if st.order_qty and excess > 0 and st.cancelled_qty:
            st.cancelled_qty -= min(excess, st.cancelled_qty)
        fno = fill_no or f"{st.order_no}:{st.filled_qty}"
        st.fills.append(Fill(fno, qty, price, ev.time, source))
        self.counts["fills"] += 1
        self.counts["fill_qty"] += qty
        return msgspec.structs.replace(
            ev,
            kind="filled",
            fill_no=fno,
            fill_qty=qty,
            fill_price=price,
            filled_qty=st.filled_qty,
            filled_amount=st.filled_amount,
            remaining_qty=st.remaining_qty,
            complete=st.remaining_qty == 0,
            source=source,
            record=record,
        )

    def _on_modified(self, st: OrderState, ev: OrderEvent) -> list[Output]:
        if st.confirmed:
            self.counts["duplicates"] += 1
            return []
        st.confirmed = True
        return [self._view(ev, st)]

    def _on_cancelled(self, st: OrderState, ev: OrderEvent) -> list[Output]:
        if st.action == "cancel":
            if st.confirmed:
                self.counts["duplicates"] += 1
                return []
            st.confirmed = True
            return [self._view(ev, st)]
        # The exchange cancelled the remainder (IOC/FOK): all of it. A reconciliation says how
        # much stays open (other quantity may still be moved by requests it also reports).
        target = 0
        if ev.source == "reconciled" and ev.remaining_qty is not None:
            target = max(0, ev.remaining_qty)
        qty = st.remaining_qty - target
        if qty <= 0:
            self.counts["duplicates"] += 1
            return []
        st.cancelled_qty += qty
        return [self._view(ev, st)]

    def _on_rejected(self, st: OrderState, ev: OrderEvent) -> list[Output]:
        if st.rejected_qty > 0:
            self.counts["duplicates"] += 1
            return []
        self._give_back(st)
        if st.action == "cancel":
            st.rejected_qty = max(1, st.order_qty)
        else:
            target = 0
            if ev.source == "reconciled" and ev.remaining_qty is not None:
                target = max(0, ev.remaining_qty)
            qty = st.remaining_qty - target
            if qty <= 0:
                return [self._anomaly(ev, "reject_without_open_qty", "nothing open to be rejected")]
            st.rejected_qty += qty
        st.reason = ev.reason or st.reason
        return [self._view(ev, st)]

    # ---- helpers ----

    def _find(
        self, broker: str, account: str | None, order_no: str, *, adopt: bool = True
    ) -> OrderState | None:
        cands = self._by_no.get((broker, order_no), [])
        if not cands:
            return None
        if account:
            for s in cands:
                if s.account == account:
                    return s
            unknown = [s for s in cands if s.account is None]
            if len(unknown) == 1:
                s = unknown[0]
                if adopt:
                    del self._orders[(broker, "", order_no)]
                    s.account = account
                    self._orders[(broker, account, order_no)] = s
                return s
            return None
        if len(cands) == 1:
            return cands[0]
        raise _Ambiguous

    def _known_elsewhere(self, ev: OrderEvent) -> OrderState | None:
        """The same order (code and quantity agree) known under another account of its broker."""
        if not ev.account:
            return None
        for s in self._by_no.get((ev.broker, ev.order_no), []):
            if s.account is None or s.account == ev.account:
                continue
            if ev.code and s.code and ev.code != s.code:
                continue
            if ev.order_qty and s.order_qty and ev.order_qty != s.order_qty:
                continue
            return s
        return None

    def _create(self, ev: OrderEvent) -> OrderState:
        st = OrderState(
            broker=ev.broker,
            account=ev.account,
            order_no=ev.order_no,
            action=ev.action,
            original_order_no=ev.original_order_no,
            accepted_at=ev.time,
        )
        self._orders[(ev.broker, ev.account or "", ev.order_no)] = st
        self._by_no.setdefault((ev.broker, ev.order_no), []).append(st)
        return st

    def _touch(self, st: OrderState, ev: OrderEvent, live: bool) -> None:
        st.events += 1
        if live:
            st.last_live_seq = self.seq
        if st.code is None:
            st.code = ev.code
        if st.name is None:
            st.name = ev.name
        if st.side is None:
            st.side = ev.side
        if st.order_type is None:
            st.order_type = ev.order_type
        if not st.order_qty and ev.order_qty:
            st.order_qty = ev.order_qty
        if st.order_price is None:
            st.order_price = ev.order_price
        if st.exchange is None:
            st.exchange = ev.exchange
        if st.original_order_no is None:
            st.original_order_no = ev.original_order_no
        if ev.commission is not None:
            st.commission = max(st.commission or 0, ev.commission)
        if ev.tax is not None:
            st.tax = max(st.tax or 0, ev.tax)
        if ev.time is not None:
            st.updated_at = ev.time

    def _move_from_original(self, st: OrderState, ev: OrderEvent) -> list[Output]:
        """A modify/cancel request takes its quantity off the original order."""
        if st.action == "new" or not st.original_order_no or st.order_qty <= 0:
            return []
        try:
            orig = self._find(st.broker, st.account, st.original_order_no)
        except _Ambiguous:
            orig = None
        if orig is None or st.order_no in orig.moved:
            return []
        qty = st.order_qty
        out: list[Output] = []
        if qty > orig.remaining_qty:
            out.append(
                self._anomaly(
                    ev,
                    "move_exceeds_open_qty",
                    f"{st.action} request for {qty} but order {orig.order_no} "
                    f"has {orig.remaining_qty} open",
                )
            )
            qty = orig.remaining_qty
        if qty > 0:
            orig.cancelled_qty += qty
            orig.moved[st.order_no] = qty
        return out

    def _give_back(self, st: OrderState) -> None:
        """A rejected modify/cancel request returns its quantity to the original order."""
        if st.action == "new" or not st.original_order_no:
            return
        try:
            orig = self._find(st.broker, st.account, st.original_order_no)
        except _Ambiguous:
            return
        if orig is None:
            return
        qty = orig.moved.pop(st.order_no, 0)
        orig.cancelled_qty = max(0, orig.cancelled_qty - qty)

    def _view(self, ev: OrderEvent, st: OrderState) -> OrderEvent:
        """``ev`` with the tracker's cumulative view of its order."""
        return msgspec.structs.replace(
            ev,
            filled_qty=st.filled_qty,
            filled_amount=st.filled_amount,
            remaining_qty=st.remaining_qty,
            complete=False,
        )

    def _anomaly(self, ev: OrderEvent, problem: str, message: str) -> OrderAnomaly:
        self.counts["anomalies"] += 1
        return OrderAnomaly(
            broker=ev.broker,
            account=ev.account,
            order_no=ev.order_no,
            problem=problem,
            message=message,
            cause=ev,
        )


# DaySummary moved to krfeed.orders.summary; importable from here as before
__all__ = ["DaySummary", "OrderTracker", "Output"]
