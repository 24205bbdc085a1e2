"""Snapshots: the orders of the day as a broker's inquiry shows them, parsed from Kiwoom's
kt00009 / ka10075 / ka10076 rows and KIS's inquire-daily-ccld rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from krfeed.orders.model import (
    AccountRef,
    Action,
    action_of,
    order_no_of,
    order_type_of,
    side_of,
)
from krfeed.schema.convert import KST
from krfeed.schema.enums import ENUM_KINDS, Side


@dataclass
class OrderSnapshot:
    """One order as the broker's inquiry shows it."""

    broker: str
    order_no: str
    action: Action = "new"
    original_order_no: str | None = None
    account: str | None = None
    code: str | None = None
    name: str | None = None
    side: Side | None = None
    order_type: str | None = None
    order_qty: int = 0
    order_price: int | None = None
    exchange: str | None = None
    filled_qty: int = 0
    #: exact cumulative fill amount when the inquiry gives it, else None
    filled_amount: int | None = None
    #: average fill price in whole won (Kiwoom kt00009 체결단가, KIS avg_prvs)
    avg_price: int | None = None
    remaining_qty: int = 0
    rejected_qty: int = 0
    confirmed: bool = False
    commission: int | None = None
    tax: int | None = None
    reason: str | None = None
    order_time: datetime | None = None
    fill_time: datetime | None = None
    consistent: bool = True

    @property
    def cancelled_qty(self) -> int:
        if self.action == "cancel":
            return 0
        return max(0, self.order_qty - self.filled_qty - self.remaining_qty - self.rejected_qty)

    def amount(self) -> int | None:
        if self.filled_amount is not None:
            return self.filled_amount
        if self.avg_price is not None:
            return self.avg_price * self.filled_qty
        return None


@dataclass
class Snapshot:
    """The orders one round read, from ``floor`` up (None: all of the day)."""

    broker: str
    account: AccountRef | None
    orders: dict[str, OrderSnapshot]
    floor: str | None = None
    requests: int = 0


def _int(v: Any) -> int:
    """Kiwoom/KIS numbers: strings, zero-padded, maybe signed ("+000001", "-20800")."""
    if v is None:
        return 0
    if isinstance(v, int):
        return v
    s = str(v).strip().replace(",", "")
    if not s:
        return 0
    try:
        return int(s)
    except ValueError:
        try:
            return int(float(s))
        except ValueError:
            return 0


def _at(day: date, hms: str | None) -> datetime | None:
    s = (hms or "").replace(":", "").strip()
    if len(s) != 6 or not s.isdigit() or s == "000000":
        return None
    try:
        h, m, sec = int(s[:2]), int(s[2:4]), int(s[4:])
        return datetime(day.year, day.month, day.day, h, m, sec, tzinfo=KST)
    except ValueError:
        return None


def _code(raw: Any) -> str | None:
    s = str(raw or "").strip()
    if len(s) == 7 and s[0].isalpha() and s[1:].isdigit():
        s = s[1:]  # kt00009: prefix A (stock), J (ELW), Q (ETN)
    return s or None


_KIWOOM_STEX = {"0": "SOR", "1": "KRX", "2": "NXT"}


def kiwoom_snapshot(
    status_rows: list[dict[str, Any]],
    open_rows: list[dict[str, Any]],
    filled_rows: list[dict[str, Any]] | None = None,
    *,
    day: date | None = None,
    account: str | None = None,
) -> dict[str, OrderSnapshot]:
    """Orders from kt00009 rows (the base: every order), completed by ka10075 (open orders)
    and ka10076 (filled orders). One kt00009 row per order is what the guide's example and
    the simulator show; several rows of one order with distinct 체결번호 are read as fills."""
    day = day or datetime.now(KST).date()
    by_no: dict[str, list[dict[str, Any]]] = {}
    for row in status_rows:
        no = order_no_of("kiwoom", row.get("ord_no"))
        if no is not None:
            by_no.setdefault(no, []).append(row)
    opens = {order_no_of("kiwoom", r.get("ord_no")): r for r in open_rows}
    fills = {order_no_of("kiwoom", r.get("ord_no")): r for r in filled_rows or []}
    out: dict[str, OrderSnapshot] = {}
    for no, rows in by_no.items():
        row = rows[-1]
        distinct = {str(r.get("cntr_no") or "").strip() for r in rows}
        if len(rows) > 1 and len(distinct) == len(rows):
            filled = sum(_int(r.get("cntr_qty")) for r in rows)
            exact: int | None = sum(_int(r.get("cntr_qty")) * _int(r.get("cntr_uv")) for r in rows)
            avg: int | None = None
        else:
            filled = _int(row.get("cntr_qty"))
            exact = None
            avg = _int(row.get("cntr_uv")) if filled else None
        label = str(row.get("io_tp_nm") or "")
        action = action_of(label + str(row.get("mdfy_cncl_tp") or ""))
        s = OrderSnapshot(
            broker="kiwoom",
            order_no=no,
            action=action,
            original_order_no=order_no_of("kiwoom", row.get("orig_ord_no")),
            account=account,
            code=_code(row.get("stk_cd")),
            name=(str(row.get("stk_nm") or "").strip() or None),
            side=side_of(label),
            order_type=order_type_of("kiwoom", row.get("trde_tp")),
            order_qty=_int(row.get("ord_qty")),
            order_price=_int(row.get("ord_uv")),
            exchange=(str(row.get("dmst_stex_tp") or "").strip() or None),
            filled_qty=filled,
            filled_amount=exact,
            avg_price=avg,
            confirmed=_int(row.get("cnfm_qty")) > 0,
            fill_time=_at(day, row.get("cntr_tm")),
        )
        if "거부" in str(row.get("acpt_tp") or ""):
            s.rejected_qty = max(0, s.order_qty - s.filled_qty)
        o = opens.get(no)
        f = fills.get(no)
        for extra in (o, f):
            if extra is not None:
                _complete(s, extra, day)
        if o is not None:
            s.remaining_qty = _int(o.get("oso_qty"))
            if _int(o.get("cntr_qty")) == s.filled_qty and o.get("cntr_tot_amt") not in (None, ""):
                s.filled_amount = _int(o.get("cntr_tot_amt"))
        elif f is not None:
            s.remaining_qty = _int(f.get("oso_qty"))
        if s.action == "cancel":
            s.remaining_qty = 0
        if s.rejected_qty:
            s.remaining_qty = 0
        if s.action != "cancel" and (
            s.filled_qty + s.remaining_qty + s.rejected_qty > s.order_qty or s.filled_qty < 0
        ):
            s.consistent = False
        out[no] = s
    return out


def _complete(s: OrderSnapshot, extra: dict[str, Any], day: date) -> None:
    """What a ka10075 / ka10076 row adds to the kt00009 view of order ``s``."""
    if _int(extra.get("cntr_qty")) > s.filled_qty:
        s.consistent = False  # the inquiries saw different moments of this order
    stt = str(extra.get("ord_stt") or "")
    if "확인" in stt:
        s.confirmed = True
    if "거부" in stt and not s.rejected_qty:
        s.rejected_qty = max(0, s.order_qty - s.filled_qty)
    if extra.get("tdy_trde_cmsn") not in (None, ""):
        s.commission = _int(extra.get("tdy_trde_cmsn"))
    if extra.get("tdy_trde_tax") not in (None, ""):
        s.tax = _int(extra.get("tdy_trde_tax"))
    if s.order_time is None:
        s.order_time = _at(day, extra.get("tm") or extra.get("ord_tm"))
    if not s.account and extra.get("acnt_no"):
        s.account = str(extra["acnt_no"]).strip() or None


#: sll_buy_dvsn_cd, read as the H0STCNI0 notice's SELN_BYOV_CLS is
_KIS_SIDE = cast("dict[str, Side]", ENUM_KINDS["side0102"][1])


def kis_snapshot(
    rows: list[dict[str, Any]], *, account: str | None = None
) -> dict[str, OrderSnapshot]:
    """Orders from inquire-daily-ccld ``output1`` rows (one row per order)."""
    out: dict[str, OrderSnapshot] = {}
    for row in rows:
        no = order_no_of("kis", row.get("odno"))
        if no is None:
            continue
        name = str(row.get("sll_buy_dvsn_cd_name") or "")
        if str(row.get("cncl_yn") or "").strip().upper() == "Y" or "취소" in name:
            action: Action = "cancel"
        elif "정정" in name or order_no_of("kis", row.get("orgn_odno")):
            action = "modify"
        else:
            action = "new"
        day_s = str(row.get("ord_dt") or "").strip()
        try:
            day = datetime.strptime(day_s, "%Y%m%d").date()
        except ValueError:
            day = datetime.now(KST).date()
        # KIS's field is cncl_cfrm_qty; the simulator (so far) sends cnc_cfrm_qty
        confirmed_qty = _int(row.get("cncl_cfrm_qty", row.get("cnc_cfrm_qty")))
        filled = _int(row.get("tot_ccld_qty"))
        s = OrderSnapshot(
            broker="kis",
            order_no=no,
            action=action,
            original_order_no=order_no_of("kis", row.get("orgn_odno")),
            account=account,
            code=(str(row.get("pdno") or "").strip() or None),
            name=(str(row.get("prdt_name") or "").strip() or None),
            side=_KIS_SIDE.get(str(row.get("sll_buy_dvsn_cd") or "").strip()) or side_of(name),
            order_type=order_type_of("kis", row.get("ord_dvsn_cd")),
            order_qty=_int(row.get("ord_qty")),
            order_price=_int(row.get("ord_unpr")),
            exchange=(str(row.get("excg_id_dvsn_cd") or "").strip() or None),
            filled_qty=filled,
            filled_amount=_int(row.get("tot_ccld_amt")) if filled else 0,
            avg_price=_int(row.get("avg_prvs")) if filled else None,
            remaining_qty=_int(row.get("rmn_qty")),
            rejected_qty=_int(row.get("rjct_qty")),
            confirmed=confirmed_qty > 0,
            order_time=_at(day, row.get("ord_tmd")),
        )
        if action == "cancel":
            s.remaining_qty = 0
        elif s.filled_qty + s.remaining_qty + s.rejected_qty > s.order_qty:
            s.consistent = False
        out[no] = s
    return out
