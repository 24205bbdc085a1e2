"""Kiwoom side of the simulator: token REST calls, the ``/api/dostk/websocket`` session, order
and account-inquiry REST calls, and the 00/04 values pushed for order events.

Shapes follow Kiwoom's guide (``kiwoom_api_spec_subset.json``) and error-code sheet. Where the
guide is silent the choice is marked UNVERIFIED: REST failures answer HTTP 200 with a non-zero
``return_code`` and the code embedded as ``[8005:…]``; order refusals use ``return_code`` 2.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from krfeed.schema.catalog import get_type, types
from krfeed.schema.compile import encode_kiwoom_values
from krfeed.schema.convert import KST
from krfeed.schema.enums import Exchange, Side
from krfeed.sim.kiwoom_rest import (
    _ORDER_STATUS,
    _STATUS,
    ERRORS,
    LOGIN_FAILED,
    OK_MSG,
    account,
    order,
    revoke,
    token,
)
from krfeed.sim.market import make_record, pct
from krfeed.sim.orders import OrderEvent

if TYPE_CHECKING:
    from krfeed.sim.connections import Conn
    from krfeed.sim.host import SimHost

# ---- pushes for order events ----


def order_values(sim: SimHost, ev: OrderEvent) -> dict[str, str]:
    """The values of the 00 주문체결 entry for an order event."""
    o = ev.order
    f = ev.fill
    inst = sim.market.instrument(o.code)
    status = _STATUS[ev.kind]
    vals: dict[str, Any] = {
        "_ref": inst.prev_close,
        "account_no": o.account,
        "order_no": o.order_no,
        "manager_emp_no": "",
        "code": o.code,
        "order_category": "JJ",
        "order_status": _ORDER_STATUS[status],
        "stock_name": o.name,
        "order_qty": o.qty,
        "order_price": o.price,
        "unfilled_qty": o.remaining,
        "cumulative_fill_amount": o.amount,
        "original_order_no": o.original_order_no,
        "order_kind": o.side_label,
        "trade_type": o.type.label,
        "side": Side.BUY if o.side == "buy" else Side.SELL,
        "order_fill_time": ev.time,
        "fill_no": f.fill_no if f else None,
        "fill_price": f.price if f else None,
        "fill_qty": o.filled if f else None,
        "current_price": inst.price,
        "best_ask": inst.best_ask,
        "best_bid": inst.best_bid,
        "unit_fill_price": f.price if f else None,
        "unit_fill_qty": f.qty if f else None,
        "today_commission": o.commission,
        "today_tax": o.tax,
        "reject_reason": o.reject_reason or "0",
        "screen_no": "",
        "terminal_no": "",
        "credit_type": "00",
        "loan_date": None,
        "after_hours_single_price": None,
        "exchange": {"SOR": Exchange.SOR, "NXT": Exchange.NXT}.get(o.exchange, Exchange.KRX),
        "exchange_name": o.exchange,
        "sor": o.exchange == "SOR",
    }
    rec = make_record(get_type("kiwoom", "00"), vals, o.code, ev.time)
    return encode_kiwoom_values(rec)


def balance_values(sim: SimHost, ev: OrderEvent) -> dict[str, str]:
    """The values of the 04 잔고 entry after a fill."""
    o = ev.order
    h = ev.holding
    assert h is not None
    inst = sim.market.instrument(o.code)
    vals: dict[str, Any] = {
        "_ref": inst.prev_close,
        "account_no": o.account,
        "code": o.code,
        "credit_type": "00",
        "loan_date": None,
        "stock_name": o.name,
        "current_price": inst.price,
        "holding_qty": h.qty,
        "purchase_price": h.avg_price,
        "total_purchase_amount": h.cost,
        "orderable_qty": h.orderable,
        "today_net_buy_qty": h.today_buy_qty - h.today_sell_qty,
        "side": "2" if o.side == "buy" else "1",
        "today_total_sell_pnl": h.realized_pnl,
        "extra_951": "0",
        "best_ask": inst.best_ask,
        "best_bid": inst.best_bid,
        "base_price": inst.prev_close,
        "realized_pnl_rate": pct(h.realized_pnl, h.cost or 1),
        "credit_amount": 0,
        "credit_interest": 0,
        "maturity_date": None,
        "today_realized_pnl": h.realized_pnl,
        "today_realized_pnl_rate": pct(h.realized_pnl, h.cost or 1),
        "today_realized_pnl_credit": 0,
        "today_realized_pnl_rate_credit": pct(0, 1),
        "collateral_loan_qty": 0,
        "extra_924": "0",
    }
    rec = make_record(get_type("kiwoom", "04"), vals, o.code, ev.time)
    return encode_kiwoom_values(rec)


# ---- the WebSocket session ----

_ITEM_RE = re.compile(r"^[0-9A-Za-z]{1,12}(_NX|_AL)?$")


def on_text(sim: SimHost, conn: Conn, text: str) -> None:
    try:
        msg = msgspec.json.decode(text)
    except msgspec.DecodeError:
        sim.counters["bad_frames"] += 1
        return
    if not isinstance(msg, dict):
        sim.counters["bad_frames"] += 1
        return
    trnm = str(msg.get("trnm") or "")
    if trnm == "PING":
        conn.echo()
        return
    if trnm == "LOGIN":
        _login(sim, conn, msg)
        return
    if not conn.logged_in:
        conn.control(
            {"trnm": trnm, "return_code": 1, "return_msg": "로그인 후 이용하시기 바랍니다"}, trnm
        )
        return
    handler = _HANDLERS.get(trnm)
    if handler is None:
        conn.control(
            {"trnm": trnm, "return_code": 1, "return_msg": f"지원하지 않는 서비스입니다: {trnm}"},
            trnm or "ERROR",
        )
        return
    handler(sim, conn, msg)


def _login(sim: SimHost, conn: Conn, msg: dict[str, Any]) -> None:
    tok = sim.check_token("kiwoom", msg.get("token"))
    if tok is None or sim.faults.refusing("kiwoom", tok.appkey):
        sim.logins["kiwoom"]["failed"] += 1
        rc, text = LOGIN_FAILED
        conn.control({"trnm": "LOGIN", "return_code": rc, "return_msg": text}, "LOGIN")
        conn.close_after(1000, "login failed")
        return
    appkey = tok.appkey
    old = sim.kiwoom_sessions.get(appkey)
    if old is not None and old is not conn and not old.closed:
        old.control(
            {
                "trnm": "SYSTEM",
                "code": "R10001",
                "message": "동일한 App key로 접속이 되었습니다. 기존 세션은 종료가 됩니다",
            },
            "SYSTEM",
        )
        old.close_after(1000, "R10001")
        old.logged_in = False
    sim.kiwoom_sessions[appkey] = conn
    conn.appkey = appkey
    conn.logged_in = True
    sim.logins["kiwoom"]["ok"] += 1
    conn.control({"trnm": "LOGIN", "return_code": 0, "return_msg": OK_MSG}, "LOGIN")
    conn.start_pinger()


def _blocks(msg: dict[str, Any]) -> list[tuple[list[str], list[str]]] | str:
    data = msg.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        return "data는 리스트여야 합니다"
    out: list[tuple[list[str], list[str]]] = []
    for block in data:
        if not isinstance(block, dict):
            return "data 항목은 객체여야 합니다"
        items = block.get("item", [""])
        typs = block.get("type")
        if isinstance(items, str):
            items = [items]
        if isinstance(typs, str):
            typs = [typs]
        if not isinstance(items, list) or not isinstance(typs, list) or not typs:
            return "item/type 형식이 올바르지 않습니다"
        out.append(([str(i).strip() for i in items] or [""], [str(t).strip() for t in typs]))
    return out


def _answer(conn: Conn, trnm: str, return_code: int, why: str = "") -> None:
    """The reply to a REG / REMOVE, unless the ``swallow_replies`` fault takes it."""
    if not conn.swallows("subscribe" if trnm == "REG" else "unsubscribe"):
        conn.control({"trnm": trnm, "return_code": return_code, "return_msg": why}, trnm)


def _reg(sim: SimHost, conn: Conn, msg: dict[str, Any]) -> None:
    def fail(why: str) -> None:
        _answer(conn, "REG", 1, why)

    grp = msg.get("grp_no")
    grp_no = str(grp).strip() if grp is not None else ""
    if not grp_no or len(grp_no) > 4:
        fail("grp_no는 1~4자리여야 합니다")
        return
    refresh = str(msg.get("refresh", "1") or "1").strip()
    if refresh not in ("0", "1"):
        fail("refresh는 0 또는 1이어야 합니다")
        return
    blocks = _blocks(msg)
    if isinstance(blocks, str):
        fail(blocks)
        return
    known = types("kiwoom")
    new: set[tuple[str, str]] = set()
    for items, typs in blocks:
        for t in typs:
            if t not in known:
                fail(f"실시간 항목이 올바르지 않습니다 (type={t})")
                return
            for item in items:
                if item and not _ITEM_RE.match(item):
                    fail(f"종목코드가 올바르지 않습니다 (item={item})")
                    return
                new.add((t, item))
    current = set() if refresh == "0" else set(conn.groups.get(grp_no, set()))
    merged = current | new
    if len({i for _, i in merged}) > sim.config.kiwoom_max_items:
        fail("등록 종목수 초과")
        return
    conn.groups[grp_no] = merged
    _answer(conn, "REG", 0)
    if any(t == "0s" for t, _ in new):
        now = datetime.now(KST)
        vals = sim.market_status_values(sim.market.phase(), now)
        conn.push(sim.kiwoom_real([("0s", "", vals)]))


def _remove(sim: SimHost, conn: Conn, msg: dict[str, Any]) -> None:
    grp = msg.get("grp_no")
    grp_no = str(grp).strip() if grp is not None else ""
    blocks = _blocks(msg)
    if isinstance(blocks, str) or not grp_no:
        why = blocks if isinstance(blocks, str) else "grp_no가 없습니다"
        _answer(conn, "REMOVE", 1, why)
        return
    regs = conn.groups.get(grp_no, set())
    if not blocks:
        conn.groups.pop(grp_no, None)
    else:
        for items, typs in blocks:
            for t in typs:
                for item in items:
                    regs.discard((t, item))
        if not regs:
            conn.groups.pop(grp_no, None)
    _answer(conn, "REMOVE", 0)


def _cnsrlst(sim: SimHost, conn: Conn, msg: dict[str, Any]) -> None:
    sim.condition_book.on_list(sim, conn, msg)


def _cnsrreq(sim: SimHost, conn: Conn, msg: dict[str, Any]) -> None:
    sim.condition_book.on_request(sim, conn, msg)


def _cnsrclr(sim: SimHost, conn: Conn, msg: dict[str, Any]) -> None:
    sim.condition_book.on_clear(sim, conn, msg)


_HANDLERS: dict[str, Callable[[SimHost, Conn, dict[str, Any]], None]] = {
    "REG": _reg,
    "REMOVE": _remove,
    "CNSRLST": _cnsrlst,
    "CNSRREQ": _cnsrreq,
    "CNSRCLR": _cnsrclr,
}


# the REST handlers moved to krfeed.sim.kiwoom_rest; importable from here as before
__all__ = [
    "ERRORS",
    "LOGIN_FAILED",
    "OK_MSG",
    "account",
    "balance_values",
    "on_text",
    "order",
    "order_values",
    "revoke",
    "token",
]
