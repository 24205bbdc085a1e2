"""One order-event model for both brokers: Kiwoom 00 주문체결 and KIS H0STCNI0/H0STCNI9 체결통보.

:func:`normalize` turns a broker record into an :class:`OrderEvent` (or None when the record is
not an order event it understands). It is stateless: what needs memory — cumulative quantities
for KIS, synthesized fill numbers, duplicates — is the job of
:class:`~krfeed.orders.tracker.OrderTracker`.

Event kinds (``OrderEvent.kind``), with ``action`` saying what the order itself is (``new``, a
``modify`` request that moves quantity off an original order, or a ``cancel`` request):

==========  ============================================================================
accepted    the broker took the order / the modify or cancel request (접수)
filled      one fill; ``complete`` when the order has nothing left to fill (체결)
modified    a modify request was confirmed (정정 확인)
cancelled   a cancel request was confirmed (취소 확인, ``action="cancel"``), or the
            exchange cancelled the remainder of an order (IOC/FOK 취소, ``action="new"``)
rejected    the order or request was refused (거부), ``reason`` when the broker says why
==========  ============================================================================

Kiwoom 00 (values as decoded by :mod:`krfeed.records.kiwoom`):

=========================  ==================================================================
OrderEvent                 Kiwoom 00
=========================  ==================================================================
account                    9201 계좌번호
order_no                   9203 주문번호 (7 digits)
original_order_no          904 원주문번호; ``0000000`` → None
code / name                9001 종목코드 / 302 종목명
side                       907 매도수구분 (1 sell, 2 buy); else the sign/word of 905
action                     905 주문구분: ``…정정`` → modify, ``…취소`` → cancel, else new
kind                       913 주문상태: 접수 → accepted, 체결 → filled, 확인 → modified (or
                           cancelled when 905 is a 취소), 취소 → cancelled, 거부 → rejected
order_type                 906 매매구분 (보통 → limit, 시장가 → market, 보통(IOC) → limit_ioc…)
order_qty / order_price    900 주문수량 / 901 주문가격
fill_no                    909 체결번호
fill_qty / fill_price      915 단위체결량 / 914 단위체결가 (this fill; 910 when 914 is empty)
filled_qty                 911 체결량 — the order's *cumulative* filled quantity (OpenAPI+
                           semantics, and what the simulator sends; 915 is this fill)
filled_amount              903 체결누계금액 (cumulative)
remaining_qty              902 미체결수량
complete                   a fill with 902 = 0
exchange                   2134 거래소구분: 0 통합 → SOR, 1 → KRX, 2 → NXT
reason                     919 거부사유 on 거부 (``0``/empty → None)
commission / tax           938 당일매매수수료 / 939 당일매매세금 (the order's running totals)
time                       908 주문/체결시간 (KST, today)
=========================  ==================================================================

KIS H0STCNI0 (real) / H0STCNI9 (mock), 26 fields after decryption:

=========================  ==================================================================
OrderEvent                 KIS notice
=========================  ==================================================================
account                    ACNT_NO (CANO 8 digits + product code 2 digits)
order_no                   ODER_NO (10 digits)
original_order_no          OODER_NO; empty or zeros → None
code / name                STCK_SHRN_ISCD / CNTG_ISNM40
side                       SELN_BYOV_CLS (01 sell, 02 buy)
action                     RCTF_CLS 정정구분 (0 new, 1 modify, 2 cancel)
kind                       CNTG_YN 2 → filled; CNTG_YN 1 → RFUS_YN 1 → rejected, else
                           ACPT_YN 접수여부: 1 → accepted, 2 (확인) → modified / cancelled by
                           RCTF_CLS, 3 (IOC/FOK 취소) → cancelled
order_type                 ODER_KIND (00 → limit, 01 → market, 11 → limit_ioc …)
order_qty / order_price    ODER_QTY / ODER_PRC
fill_qty / fill_price      CNTG_QTY / CNTG_UNPR on fills (on acknowledgements they repeat the
                           order quantity/price and are not used)
fill_no                    none on the wire: OrderTracker assigns ``<order_no>:<filled qty
                           after the fill>`` (the same id whenever the same notices are
                           folded; a reconciled fill covering several gets the id of its end)
filled_qty, remaining_qty  not on the wire: filled in by OrderTracker
exchange                   ORD_EXG_GB 주문거래소구분: 1 → KRX, 2 → NXT, 3/4 (SOR) → SOR
time                       STCK_CNTG_HOUR (KST, today)
reason                     None (the notice carries no reject reason)
=========================  ==================================================================

Events rebuilt from REST inquiries (and gaps the tracker closes from Kiwoom's cumulative
fields) have ``source="reconciled"`` and ``record=None``; see :mod:`krfeed.orders.reconcile`.
"""

from __future__ import annotations

from krfeed.orders.datatypes import (
    ORDER_NO_WIDTH,
    ORDER_TYPES,
    AccountRef,
    Action,
    EventKind,
    Fill,
    OrderAnomaly,
    OrderEvent,
    OrderState,
    ReconcileReport,
    Source,
)
from krfeed.records.base import Record
from krfeed.records.kis import ExecutionNotice, ExecutionNoticeMock
from krfeed.records.kiwoom import OrderExecution
from krfeed.schema.enums import Correction, Exchange, NoticeKind, OrderStatus, Side

# ---- normalization ----

_KIWOOM_TYPES = {
    "보통": "limit",
    "지정가": "limit",
    "시장가": "market",
    "조건부지정가": "conditional_limit",
    "최유리지정가": "best_limit",
    "최우선지정가": "first_limit",
    "보통(IOC)": "limit_ioc",
    "보통(FOK)": "limit_fok",
    "시장가(IOC)": "market_ioc",
    "시장가(FOK)": "market_fok",
    "최유리(IOC)": "best_ioc",
    "최유리(FOK)": "best_fok",
    "스톱지정가": "stop_limit",
    "스톰지정가": "stop_limit",  # sic, in Kiwoom's guide
    "중간가": "mid",
    "중간가(IOC)": "mid_ioc",
    "중간가(FOK)": "mid_fok",
    "장전시간외": "pre_market_close",
    "장후시간외": "after_hours_close",
    "시간외단일가": "after_hours_single",
    "시간외대량": "block",
    "시간외바스켓": "basket",
}
#: KIS ORD_DVSN codes (ODER_KIND of the notice, ord_dvsn_cd of the inquiry).
_KIS_TYPES = {
    "00": "limit",
    "01": "market",
    "02": "conditional_limit",
    "03": "best_limit",
    "04": "first_limit",
    "05": "pre_market_close",
    "06": "after_hours_close",
    "07": "after_hours_single",
    "11": "limit_ioc",
    "12": "limit_fok",
    "13": "market_ioc",
    "14": "market_fok",
    "15": "best_ioc",
    "16": "best_fok",
}
_KIWOOM_EXCHANGE = {Exchange.SOR: "SOR", Exchange.KRX: "KRX", Exchange.NXT: "NXT"}
_KIS_EXCHANGE = {"1": "KRX", "2": "NXT", "3": "SOR", "4": "SOR"}


def order_type_of(broker: str, raw: str | None) -> str | None:
    """The normalized order type of Kiwoom's 매매구분 label or KIS's ORD_DVSN code
    (unknown values are kept as sent)."""
    if raw is None:
        return None
    s = raw.strip()
    if not s:
        return None
    table = _KIWOOM_TYPES if broker == "kiwoom" else _KIS_TYPES
    return table.get(s, s)


def order_no_of(broker: str, raw: str | None) -> str | None:
    """An order number as krfeed compares them: stripped, digits zero-padded to the broker's
    width; ``None`` for empty and for all-zero numbers (Kiwoom's "no original order")."""
    if raw is None:
        return None
    s = raw.strip()
    if not s:
        return None
    if s.isdigit():
        if not s.strip("0"):
            return None
        return s.zfill(ORDER_NO_WIDTH.get(broker, len(s)))
    return s


def action_of(label: str | None) -> Action:
    """new / modify / cancel from a Kiwoom 주문구분 label (905, io_tp_nm) or KIS name."""
    s = label or ""
    if "취소" in s:
        return "cancel"
    if "정정" in s:
        return "modify"
    return "new"


def side_of(label: str | None) -> Side | None:
    """Buy/sell from a Korean label ("+매수", "-매도", "현금매수", "매도정정" …)."""
    s = (label or "").strip()
    if "매수" in s:
        return Side.BUY
    if "매도" in s:
        return Side.SELL
    if s.startswith("+"):
        return Side.BUY
    if s.startswith("-"):
        return Side.SELL
    return None


def _side(value: Side | str | None, fallback: str | None) -> Side | None:
    if isinstance(value, Side):
        return value
    return side_of(fallback)


_KIWOOM_KIND: dict[OrderStatus, EventKind] = {
    OrderStatus.ACCEPTED: "accepted",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REJECTED: "rejected",
}


def _from_kiwoom(r: OrderExecution) -> OrderEvent | None:
    order_no = order_no_of("kiwoom", r.order_no)
    if order_no is None:
        return None
    action = action_of(r.order_kind)
    status = r.order_status
    kind: EventKind
    if status is OrderStatus.CONFIRMED:
        kind = "cancelled" if action == "cancel" else "modified"
    elif isinstance(status, OrderStatus):
        kind = _KIWOOM_KIND[status]
    else:
        return None
    filled = kind == "filled"
    unit_price = r.unit_fill_price if r.unit_fill_price is not None else r.fill_price
    reason = (r.reject_reason or "").strip()
    exchange = r.exchange
    return OrderEvent(
        broker="kiwoom",
        account=(r.account_no or "").strip() or None,
        order_no=order_no,
        kind=kind,
        original_order_no=order_no_of("kiwoom", r.original_order_no),
        code=(r.code or r.item or "").strip() or None,
        name=r.stock_name,
        side=_side(r.side, r.order_kind),
        action=action,
        order_type=order_type_of("kiwoom", r.trade_type),
        order_qty=r.order_qty,
        order_price=r.order_price,
        complete=filled and r.unfilled_qty == 0,
        fill_no=((r.fill_no or "").strip() or None) if filled else None,
        fill_qty=r.unit_fill_qty if filled else None,
        fill_price=unit_price if filled else None,
        filled_qty=r.fill_qty,
        filled_amount=r.cumulative_fill_amount,
        remaining_qty=r.unfilled_qty,
        exchange=_KIWOOM_EXCHANGE.get(exchange, r.exchange_name)
        if isinstance(exchange, Exchange)
        else (r.exchange_name or None),
        time=r.order_fill_time,
        reason=reason if kind == "rejected" and reason not in ("", "0") else None,
        commission=r.today_commission,
        tax=r.today_tax,
        source="live",
        received_at=r.received_at,
        record=r,
    )


def _from_kis(r: ExecutionNotice | ExecutionNoticeMock) -> OrderEvent | None:
    order_no = order_no_of("kis", r.order_no)
    if order_no is None:
        return None
    corr = r.correction
    action: Action = (
        "modify" if corr is Correction.MODIFY else "cancel" if corr is Correction.CANCEL else "new"
    )
    acceptance = (r.acceptance or "").strip()
    kind: EventKind
    if r.notice_kind is NoticeKind.FILL:
        kind = "filled"
    elif r.notice_kind is NoticeKind.ACK:
        if r.rejected:
            kind = "rejected"
        elif acceptance == "3":
            kind = "cancelled"
            action = "new" if action == "cancel" else action
        elif acceptance == "2" and action == "modify":
            kind = "modified"
        elif acceptance == "2" and action == "cancel":
            kind = "cancelled"
        else:
            kind = "accepted"
    else:
        return None
    filled = kind == "filled"
    exg = (r.order_exchange or "").strip()
    return OrderEvent(
        broker="kis",
        account=(r.account_no or "").strip() or None,
        order_no=order_no,
        kind=kind,
        original_order_no=order_no_of("kis", r.original_order_no),
        code=(r.code or "").strip() or None,
        name=r.stock_name,
        side=r.side if isinstance(r.side, Side) else None,
        action=action,
        order_type=order_type_of("kis", r.order_kind),
        order_qty=r.order_qty,
        order_price=r.order_price,
        fill_qty=r.fill_qty if filled else None,
        fill_price=r.fill_price if filled else None,
        exchange=_KIS_EXCHANGE.get(exg, exg or None),
        time=r.time,
        source="live",
        received_at=r.received_at,
        record=r,
    )


def normalize(record: Record) -> OrderEvent | None:
    """The :class:`OrderEvent` of a Kiwoom 00 or KIS H0STCNI0/9 record; None for any other
    record and for order records without an order number or with an unknown status.
    Never raises."""
    try:
        if isinstance(record, OrderExecution):
            return _from_kiwoom(record)
        if isinstance(record, ExecutionNotice | ExecutionNoticeMock):
            return _from_kis(record)
    except (TypeError, ValueError, AttributeError):
        return None
    return None


def is_order_type(broker: str, type_: str) -> bool:
    """Whether ``broker``'s real-time type ``type_`` carries the account's orders and fills."""
    return type_ in ORDER_TYPES.get(broker, frozenset())


def is_order_record(record: Record) -> bool:
    """Whether ``record`` is an order / fill push (see :func:`is_order_type`)."""
    return is_order_type(record.broker, record.type)


# the data types moved to krfeed.orders.datatypes; importable from here as before
__all__ = [
    "ORDER_NO_WIDTH",
    "ORDER_TYPES",
    "AccountRef",
    "Action",
    "EventKind",
    "Fill",
    "OrderAnomaly",
    "OrderEvent",
    "OrderState",
    "ReconcileReport",
    "Source",
    "action_of",
    "is_order_record",
    "is_order_type",
    "normalize",
    "order_no_of",
    "order_type_of",
    "side_of",
]
