"""The simulator's order data (:mod:`krfeed.sim.orders`, which re-exports every name here): the
order types of both brokers, orders, fills, holdings, accounts and the events the engine
announces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from krfeed.schema.convert import KST

BROKERS = ("kiwoom", "kis")


class OrderError(Exception):
    """An order the broker refuses synchronously (the REST call fails, no push is sent)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class OrderType:
    """매매구분: Kiwoom trde_tp code, KIS ORD_DVSN code, Korean label (Kiwoom 906)."""

    kiwoom: str
    kis: str
    label: str
    market: bool  # executes at the opposite best price, no limit
    condition: str  # "", "IOC" or "FOK"

    @property
    def kis_condition(self) -> str:
        """KIS ODER_COND: 0 none, 1 IOC, 2 FOK."""
        return {"": "0", "IOC": "1", "FOK": "2"}[self.condition]


ORDER_TYPES: tuple[OrderType, ...] = (
    OrderType("0", "00", "보통", False, ""),
    OrderType("3", "01", "시장가", True, ""),
    OrderType("5", "02", "조건부지정가", False, ""),
    OrderType("6", "03", "최유리지정가", True, ""),
    OrderType("7", "04", "최우선지정가", True, ""),
    OrderType("10", "11", "보통(IOC)", False, "IOC"),
    OrderType("20", "12", "보통(FOK)", False, "FOK"),
    OrderType("13", "13", "시장가(IOC)", True, "IOC"),
    OrderType("23", "14", "시장가(FOK)", True, "FOK"),
    OrderType("16", "15", "최유리(IOC)", True, "IOC"),
    OrderType("26", "16", "최유리(FOK)", True, "FOK"),
)
LIMIT = ORDER_TYPES[0]
MARKET = ORDER_TYPES[1]
LIMIT_IOC = ORDER_TYPES[5]
_BY_KIWOOM = {t.kiwoom: t for t in ORDER_TYPES}
_BY_KIS = {t.kis: t for t in ORDER_TYPES}
_BY_LABEL = {t.label: t for t in ORDER_TYPES}


def order_type(broker: str, code: str) -> OrderType:
    """The order type of a Kiwoom ``trde_tp`` or KIS ``ORD_DVSN`` code (labels work too)."""
    table = _BY_KIWOOM if broker == "kiwoom" else _BY_KIS
    t = table.get(code.strip()) or _BY_LABEL.get(code.strip())
    if t is None:
        raise OrderError("trde_tp", f"지원하지 않는 매매구분입니다: {code!r}")
    return t


@dataclass
class Fill:
    fill_no: str
    qty: int
    price: int
    time: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "fill_no": self.fill_no,
            "qty": self.qty,
            "price": self.price,
            "time": self.time.isoformat(),
        }


@dataclass
class Holding:
    code: str
    name: str
    qty: int
    cost: int  # total purchase amount of the current quantity
    orderable: int
    today_buy_qty: int = 0
    today_sell_qty: int = 0
    realized_pnl: int = 0

    @property
    def avg_price(self) -> int:
        return self.cost // self.qty if self.qty else 0


#: Account names: the mock server's, and placeholder holder names for real mode (made up).
MOCK_ACCOUNT_NAME = "모의계좌"
HOLDER_NAMES = ("홍길동", "김민준", "이서연", "박지호", "최수아", "정도윤", "강하은", "윤시우")


@dataclass
class Account:
    broker: str
    appkey: str
    number: str  # Kiwoom 10 digits; KIS CANO (8 digits)
    product: str = "01"  # KIS ACNT_PRDT_CD
    name: str = MOCK_ACCOUNT_NAME
    holdings: dict[str, Holding] = field(default_factory=dict)


@dataclass
class Order:
    broker: str
    appkey: str
    account: str
    order_no: str
    code: str
    name: str
    side: str  # "buy" | "sell"
    qty: int
    price: int  # 0 = market
    type: OrderType
    kind: str  # "new" | "modify" | "cancel"
    original_order_no: str
    time: datetime
    exchange: str = "KRX"
    status: str = "접수"  # 접수 체결 확인 취소 거부
    filled: int = 0
    cancelled: int = 0  # quantity moved away by cancel/modify, or cancelled by IOC/FOK
    rejected: int = 0
    amount: int = 0  # cumulative fill amount
    commission: int = 0
    tax: int = 0
    reject_reason: str = ""
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        if self.kind == "cancel":
            return 0
        return self.qty - self.filled - self.cancelled - self.rejected

    @property
    def avg_price(self) -> int:
        return self.amount // self.filled if self.filled else 0

    @property
    def side_label(self) -> str:
        """Kiwoom 905 주문구분."""
        base = "매수" if self.side == "buy" else "매도"
        if self.kind == "modify":
            return base + "정정"
        if self.kind == "cancel":
            return base + "취소"
        return ("+" if self.side == "buy" else "-") + base

    def to_dict(self) -> dict[str, Any]:
        return {
            "broker": self.broker,
            "account": self.account,
            "order_no": self.order_no,
            "original_order_no": self.original_order_no,
            "kind": self.kind,
            "code": self.code,
            "name": self.name,
            "side": self.side,
            "qty": self.qty,
            "price": self.price,
            "trade_type": self.type.label,
            "status": self.status,
            "filled": self.filled,
            "remaining": self.remaining,
            "cancelled": self.cancelled,
            "rejected": self.rejected,
            "avg_price": self.avg_price,
            "amount": self.amount,
            "commission": self.commission,
            "tax": self.tax,
            "reject_reason": self.reject_reason,
            "time": self.time.isoformat(),
            "fills": [f.to_dict() for f in self.fills],
        }


@dataclass
class OrderEvent:
    """A state change of an order: accepted 접수, filled 체결, confirmed 확인 (modify/cancel),
    cancelled 취소 (IOC/FOK remainder), rejected 거부."""

    kind: str
    order: Order
    time: datetime
    fill: Fill | None = None
    holding: Holding | None = None


Listener = Callable[[OrderEvent], None]


def _now() -> datetime:
    return datetime.now(KST)
