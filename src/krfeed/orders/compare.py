"""Comparing a snapshot with the tracker: what the inquiry shows and the tracker lacks,
applied as ``source="reconciled"`` events (never twice)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from krfeed.orders.model import AccountRef, OrderAnomaly, OrderEvent
from krfeed.orders.snapshots import OrderSnapshot, Snapshot
from krfeed.orders.tracker import OrderTracker, Output


@dataclass
class RoundResult:
    outputs: list[Output]
    deferred: list[str]
    events: int = 0
    fills: int = 0
    fill_qty: int = 0


def _no_int(no: str) -> int:
    return int(no) if no.isdigit() else 0


def compare(
    snapshot: Snapshot,
    tracker: OrderTracker,
    since_seq: int,
    account: AccountRef | None = None,
    *,
    infer_cancels: bool = True,
) -> RoundResult:
    """Apply to ``tracker`` what ``snapshot`` shows and it lacks; return what was emitted.

    Orders with a live event after ``since_seq`` (the tracker clock when the inquiry started),
    and orders the inquiries saw inconsistently, are deferred; so are orders that would get a
    cancellation inferred from open quantities when ``infer_cancels`` is false.
    """
    broker = snapshot.broker
    ref = account or snapshot.account
    if ref is not None and ref.broker != broker:
        raise ValueError(f"{ref} cannot be compared with a {broker} inquiry")
    number = ref.number if ref is not None else None
    orders = snapshot.orders
    known = {no: tracker.get(broker, no, number) for no in orders}
    # requests this round will introduce: their quantity is not yet moved off the original
    pending: dict[str, int] = {}
    for no, s in orders.items():
        if s.action != "new" and s.original_order_no and known[no] is None and s.consistent:
            pending[s.original_order_no] = pending.get(s.original_order_no, 0) + s.order_qty
    res = RoundResult([], [])
    for no in sorted(orders, key=_no_int):
        s = orders[no]
        st = tracker.get(broker, no, number)
        if not s.consistent or (st is not None and st.last_live_seq > since_seq):
            res.deferred.append(no)
            continue
        events, anomalies = _events_for(s, st, pending.get(no, 0), number)
        if not infer_cancels and any(
            e.kind == "cancelled" and e.action != "cancel" for e in events
        ):
            events = [e for e in events if not (e.kind == "cancelled" and e.action != "cancel")]
            res.deferred.append(no)
        res.outputs.extend(anomalies)
        for ev in events:
            outs = tracker.apply(ev)
            res.outputs.extend(outs)
            for o in outs:
                if isinstance(o, OrderEvent):
                    res.events += 1
                    if o.kind == "filled":
                        res.fills += 1
                        res.fill_qty += o.fill_qty or 0
    return res


def _events_for(
    s: OrderSnapshot, st: Any, pending_move: int, account: str | None
) -> tuple[list[OrderEvent], list[OrderAnomaly]]:
    base: dict[str, Any] = {
        "broker": s.broker,
        "account": account or s.account or (st.account if st is not None else None),
        "order_no": s.order_no,
        "original_order_no": s.original_order_no,
        "code": s.code,
        "name": s.name,
        "side": s.side,
        "action": s.action,
        "order_type": s.order_type,
        "order_qty": s.order_qty,
        "order_price": s.order_price,
        "exchange": s.exchange,
        "commission": s.commission,
        "tax": s.tax,
        "source": "reconciled",
    }
    events: list[OrderEvent] = []
    anomalies: list[OrderAnomaly] = []
    if st is None:
        events.append(OrderEvent(kind="accepted", time=s.order_time, **base))
        filled, amount, cancelled, rejected, confirmed = 0, 0, 0, 0, False
    else:
        filled, amount = st.filled_qty, st.filled_amount
        cancelled, rejected, confirmed = st.cancelled_qty, st.rejected_qty, st.confirmed
    if s.action == "cancel":
        if s.rejected_qty and not rejected:
            events.append(OrderEvent(kind="rejected", reason=s.reason, **base))
        elif s.confirmed and not confirmed:
            events.append(OrderEvent(kind="cancelled", time=s.fill_time, **base))
        return events, anomalies
    if s.action == "modify" and not confirmed and (s.confirmed or s.filled_qty > 0):
        events.append(OrderEvent(kind="modified", **base))
    if s.filled_qty > filled:
        delta = s.filled_qty - filled
        total = s.amount()
        if total is None or total < amount:
            total = amount + delta * (s.avg_price or s.order_price or 0)
        events.append(
            OrderEvent(
                kind="filled",
                fill_qty=delta,
                fill_price=round((total - amount) / delta),
                filled_qty=s.filled_qty,
                filled_amount=total,
                time=s.fill_time,
                **base,
            )
        )
    elif s.filled_qty < filled:
        anomalies.append(
            OrderAnomaly(
                broker=s.broker,
                account=base["account"],
                order_no=s.order_no,
                problem="regressed",
                message=f"the tracker has {filled} filled, the broker's inquiry {s.filled_qty}",
            )
        )
    if s.rejected_qty > rejected:
        events.append(
            OrderEvent(
                kind="rejected",
                remaining_qty=s.remaining_qty + pending_move,
                reason=s.reason,
                **base,
            )
        )
    elif s.cancelled_qty - pending_move > cancelled:
        events.append(
            OrderEvent(kind="cancelled", remaining_qty=s.remaining_qty + pending_move, **base)
        )
    return events, anomalies
