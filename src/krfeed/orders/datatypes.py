"""The order data of :mod:`krfeed.orders` (described in :mod:`krfeed.orders.model`, which
re-exports every name here): an account, an order event, an anomaly, a reconciliation report,
a fill and an order's folded state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from krfeed.records.base import Record
from krfeed.schema.enums import Side

EventKind = Literal["accepted", "filled", "modified", "cancelled", "rejected"]
Action = Literal["new", "modify", "cancel"]
Source = Literal["live", "reconciled"]

#: Width of order numbers per broker (numbers are zero-padded to it for matching).
ORDER_NO_WIDTH = {"kiwoom": 7, "kis": 10}

#: The real-time types that carry order events.
ORDER_TYPES: dict[str, frozenset[str]] = {
    "kiwoom": frozenset({"00"}),
    "kis": frozenset({"H0STCNI0", "H0STCNI9"}),
}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AccountRef:
    """An account as krfeed identifies it: the broker *and* the broker's account number.

    Accounts of two brokers never compare equal, even with the same digits; a Kiwoom session is
    only ever given a Kiwoom ``AccountRef`` (see :class:`~krfeed.orders.ReconcileOptions`).
    ``number`` is kept without spaces or dashes (KIS: CANO + product code, 10 digits)."""

    broker: str
    number: str

    def __post_init__(self) -> None:
        if self.broker not in ORDER_NO_WIDTH:
            raise ValueError(f"an account's broker is kiwoom or kis, not {self.broker!r}")
        number = str(self.number).strip().replace("-", "")
        if not number:
            raise ValueError(f"a {self.broker} account number cannot be empty")
        object.__setattr__(self, "number", number)

    @classmethod
    def of(cls, broker: str, number: str | None) -> AccountRef | None:
        """The account ``number`` of ``broker``; None for a missing or empty number."""
        if number is None or not str(number).strip().replace("-", ""):
            return None
        return cls(broker, number)

    def __str__(self) -> str:
        return f"{self.broker}:{self.number}"


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One change of one order, the same shape for both brokers (see the module doc)."""

    broker: str
    account: str | None
    order_no: str
    kind: EventKind
    original_order_no: str | None = None
    code: str | None = None
    name: str | None = None
    side: Side | None = None
    action: Action = "new"
    order_type: str | None = None
    order_qty: int | None = None
    order_price: int | None = None
    complete: bool = False
    fill_no: str | None = None
    fill_qty: int | None = None
    fill_price: int | None = None
    filled_qty: int | None = None
    filled_amount: int | None = None
    remaining_qty: int | None = None
    exchange: str | None = None
    time: datetime | None = None
    reason: str | None = None
    commission: int | None = None
    tax: int | None = None
    source: Source = "live"
    received_at: datetime = msgspec.field(default_factory=_now)
    record: Record | None = None

    @property
    def account_ref(self) -> AccountRef | None:
        """(broker, account) of this event; None when the event names no account."""
        return AccountRef.of(self.broker, self.account)

    def to_dict(self, *, with_record: bool = True) -> dict[str, Any]:
        """A plain dict (``event`` first); the broker record as its own dict."""
        out: dict[str, Any] = {"event": "OrderEvent"}
        for name in self.__struct_fields__:
            out[name] = getattr(self, name)
        rec = self.record
        out["record"] = rec.to_dict() if (rec is not None and with_record) else None
        return out


class OrderAnomaly(msgspec.Struct, frozen=True, kw_only=True):
    """An event the tracker could not apply (an impossible transition) or a disagreement with
    the broker's inquiry. Reported, never raised; the tracker's state is left as it was."""

    broker: str
    account: str | None
    order_no: str | None
    problem: str
    message: str
    cause: OrderEvent | None = None
    received_at: datetime = msgspec.field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": "OrderAnomaly"}
        for name in self.__struct_fields__:
            out[name] = getattr(self, name)
        if self.cause is not None:
            out["cause"] = self.cause.to_dict(with_record=False)
        return out


class ReconcileReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one reconciliation round of one session."""

    broker: str
    session: str
    trigger: str
    ok: bool
    error: str | None = None
    #: the session dropped during the round: cancellations inferred from it were left for
    #: the next round (their orders are in ``deferred``)
    partial: bool = False
    requests: int = 0
    orders_listed: int = 0
    events: int = 0
    fills: int = 0
    fill_qty: int = 0
    deferred: tuple[str, ...] = ()
    seconds: float = 0.0
    received_at: datetime = msgspec.field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": "ReconcileReport"}
        for name in self.__struct_fields__:
            out[name] = getattr(self, name)
        return out


@dataclass(slots=True)
class Fill:
    """One fill as the tracker holds it (a reconciled fill may stand for several)."""

    fill_no: str
    qty: int
    price: int
    time: datetime | None
    source: Source


@dataclass
class OrderState:
    """The tracker's view of one order."""

    broker: str
    account: str | None
    order_no: str
    action: Action = "new"
    original_order_no: str | None = None
    code: str | None = None
    name: str | None = None
    side: Side | None = None
    order_type: str | None = None
    order_qty: int = 0
    order_price: int | None = None
    exchange: str | None = None
    filled_qty: int = 0
    filled_amount: int = 0
    cancelled_qty: int = 0
    rejected_qty: int = 0
    confirmed: bool = False
    reason: str | None = None
    commission: int | None = None
    tax: int | None = None
    accepted_at: datetime | None = None
    updated_at: datetime | None = None
    fills: list[Fill] = field(default_factory=list)
    #: quantity moved to modify/cancel requests: child order number -> quantity
    moved: dict[str, int] = field(default_factory=dict)
    events: int = 0
    last_live_seq: int = 0

    @property
    def account_ref(self) -> AccountRef | None:
        """(broker, account) of this order; None while its account is unknown."""
        return AccountRef.of(self.broker, self.account)

    @property
    def remaining_qty(self) -> int:
        """Open quantity (0 for a cancel request, which never works in the market)."""
        if self.action == "cancel":
            return 0
        return max(0, self.order_qty - self.filled_qty - self.cancelled_qty - self.rejected_qty)

    @property
    def avg_price(self) -> Decimal | None:
        """Average fill price (won, two decimals), None before the first fill."""
        if not self.filled_qty:
            return None
        return (Decimal(self.filled_amount) / Decimal(self.filled_qty)).quantize(Decimal("0.01"))

    @property
    def status(self) -> str:
        """open | partially_filled | filled | cancelled | rejected | pending | confirmed.

        ``pending``/``confirmed`` are for cancel requests; a new or modify order whose remaining
        quantity went away (cancelled, moved by a modify, IOC/FOK remainder) is ``cancelled``.
        """
        if self.rejected_qty > 0:
            return "rejected"
        if self.action == "cancel":
            return "confirmed" if self.confirmed else "pending"
        if self.remaining_qty > 0:
            return "partially_filled" if self.filled_qty else "open"
        if self.order_qty and self.filled_qty >= self.order_qty:
            return "filled"
        return "cancelled"

    @property
    def final(self) -> bool:
        """Nothing about this order can change any more."""
        if self.rejected_qty > 0:
            return True
        if self.action == "cancel":
            return self.confirmed
        if self.remaining_qty > 0:
            return False
        return self.action != "modify" or self.confirmed or self.filled_qty > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "account": self.account,
            "order_no": self.order_no,
            "original_order_no": self.original_order_no,
            "action": self.action,
            "code": self.code,
            "name": self.name,
            "side": self.side,
            "order_type": self.order_type,
            "order_qty": self.order_qty,
            "order_price": self.order_price,
            "filled_qty": self.filled_qty,
            "filled_amount": self.filled_amount,
            "avg_price": self.avg_price,
            "remaining_qty": self.remaining_qty,
            "cancelled_qty": self.cancelled_qty,
            "rejected_qty": self.rejected_qty,
            "status": self.status,
            "confirmed": self.confirmed,
            "exchange": self.exchange,
            "reason": self.reason,
            "commission": self.commission,
            "tax": self.tax,
            "fills": len(self.fills),
        }
