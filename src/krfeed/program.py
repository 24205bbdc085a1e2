"""Program trading (프로그램매매) per stock, one shape for Kiwoom 0w and KIS H0ST/H0NX/H0UN PGM0.

Both brokers send the day's running totals per stock: program sell and buy quantities and
amounts and their difference (net buy). Units differ, so :func:`normalize_program` converts:

- Kiwoom 0w 204 매도금액 / 208 매수금액 / 212 순매수금액 / 213 순매수금액증감 are in **백만원**
  (millions of won): the guide's own example has 206 매수수량 ``8043`` shares at ~60,200 won
  and 208 매수금액 ``483`` (8,043 × 60,200 ≈ 484 million), although 204's row says "단위: 원".
  They become won (× 1,000,000) and ``amount_unit`` says 1,000,000 (the precision).
- KIS SELN_TR_PBMN / SHNU_TR_PBMN / NTBY_TR_PBMN (거래대금) are taken as won (the document gives
  no unit; UNVERIFIED); ``amount_unit`` is 1.

Quantities are shares on both sides. KIS's "매수2체결량" (SHNU_CNQN) is the program buy quantity.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

import msgspec

from krfeed.records.base import Record
from krfeed.records.kis import ProgramTrading as KISProgram
from krfeed.records.kis import ProgramTradingNxt as KISProgramNxt
from krfeed.records.kis import ProgramTradingTotal as KISProgramTotal
from krfeed.records.kiwoom import ProgramTrading as KiwoomProgram

#: Kiwoom 0w amounts are in 백만원.
KIWOOM_AMOUNT_UNIT = 1_000_000

_KIS_EXCHANGE = {"H0STPGM0": "KRX", "H0NXPGM0": "NXT", "H0UNPGM0": "ALL"}


def _now() -> datetime:
    return datetime.now(UTC)


class ProgramTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Program trading of one stock so far today (amounts in won)."""

    broker: str
    code: str
    exchange: str  # KRX, NXT or ALL (KRX and NXT together)
    time: datetime | None
    sell_qty: int | None
    buy_qty: int | None
    net_buy_qty: int | None
    sell_amount: int | None
    buy_amount: int | None
    net_buy_amount: int | None
    #: precision of the amounts in won (Kiwoom sends 백만원: 1,000,000)
    amount_unit: int = 1
    price: int | None = None
    net_buy_qty_change: int | None = None
    net_buy_amount_change: int | None = None
    received_at: datetime = msgspec.field(default_factory=_now)
    record: Record | None = None


def _won(v: int | None, unit: int) -> int | None:
    return None if v is None else v * unit


def split_kiwoom_item(item: str) -> tuple[str, str]:
    """(code, exchange) of a Kiwoom item: ``005930_NX`` is NXT, ``005930_AL`` both, else KRX."""
    if item.endswith("_NX"):
        return item[:-3], "NXT"
    if item.endswith("_AL"):
        return item[:-3], "ALL"
    return item, "KRX"


def normalize_program(record: Record) -> ProgramTotals | None:
    """The :class:`ProgramTotals` of a Kiwoom 0w or KIS H0STPGM0/H0NXPGM0/H0UNPGM0 record
    (None for anything else)."""
    if isinstance(record, KiwoomProgram):
        code, exchange = split_kiwoom_item(record.item)
        u = KIWOOM_AMOUNT_UNIT
        return ProgramTotals(
            broker="kiwoom",
            code=code,
            exchange=exchange,
            time=record.trade_time,
            sell_qty=record.program_sell_qty,
            buy_qty=record.program_buy_qty,
            net_buy_qty=record.program_net_buy_qty,
            sell_amount=_won(record.program_sell_amount, u),
            buy_amount=_won(record.program_buy_amount, u),
            net_buy_amount=_won(record.program_net_buy_amount, u),
            amount_unit=u,
            price=record.current_price,
            net_buy_qty_change=record.program_net_buy_qty_change,
            net_buy_amount_change=_won(record.program_net_buy_amount_change, u),
            received_at=record.received_at,
            record=record,
        )
    if isinstance(record, KISProgram | KISProgramNxt | KISProgramTotal):
        return ProgramTotals(
            broker="kis",
            code=(record.code or record.item).strip(),
            exchange=_KIS_EXCHANGE.get(record.type, "KRX"),
            time=record.time,
            sell_qty=record.sell_qty,
            buy_qty=record.buy_qty,
            net_buy_qty=record.net_buy_qty,
            sell_amount=record.sell_value,
            buy_amount=record.buy_value,
            net_buy_amount=record.net_buy_value,
            amount_unit=1,
            received_at=record.received_at,
            record=record,
        )
    return None


class ProgramFlow:
    """The latest program trading per (broker, code, exchange) and a bounded history of it —
    net buy quantity and amount over time, for charts and tables."""

    def __init__(self, history: int = 600) -> None:
        self.latest: dict[tuple[str, str, str], ProgramTotals] = {}
        self.history: dict[tuple[str, str, str], deque[ProgramTotals]] = {}
        self._size = history

    def update(self, record: Record) -> ProgramTotals | None:
        p = normalize_program(record)
        if p is None:
            return None
        key = (p.broker, p.code, p.exchange)
        self.latest[key] = p
        self.history.setdefault(key, deque(maxlen=self._size)).append(p)
        return p

    def series(
        self, code: str, broker: str | None = None, exchange: str = "KRX"
    ) -> list[tuple[datetime | None, int | None, int | None]]:
        """(time, net buy qty, net buy amount in won) of ``code``, oldest first."""
        out: list[tuple[datetime | None, int | None, int | None]] = []
        for (b, c, x), points in self.history.items():
            if c == code and x == exchange and (broker is None or b == broker):
                out.extend((p.time, p.net_buy_qty, p.net_buy_amount) for p in points)
        return out


#: The former name (``krfeed.orders.ProgramTrading``), kept for code that imports it; the
#: broker records of the same name are ``krfeed.records.kis/kiwoom.ProgramTrading``.
ProgramTrading = ProgramTotals
