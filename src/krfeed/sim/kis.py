"""KIS side of the simulator: approval key and access token, the WebSocket session (on any path,
as the real server), order-cash / order-rvsecncl / inquire-daily-ccld, and H0STCNI0/9 notices.

UNVERIFIED choices (no KIS document at hand): REST errors use KIS's gateway shapes
(``{"error_code": "EGW00103", …}`` with HTTP 403 for credentials, HTTP 500 with ``msg_cd``
EGW00121/EGW00123 for bad/expired tokens); an acknowledgement notice (CNTG_YN 1) carries the
order quantity and price in CNTG_QTY / CNTG_UNPR, as KIS's sample client reads them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec

from krfeed.protocol.kis import AesKey, control_reply
from krfeed.schema.catalog import get_type, types
from krfeed.schema.enums import Correction, NoticeKind, Side
from krfeed.sim.kis_rest import (
    approval,
    daily_ccld,
    order_cash,
    order_rvsecncl,
    revoke,
    token,
)
from krfeed.sim.market import make_record
from krfeed.sim.orders import OrderEvent

if TYPE_CHECKING:
    from krfeed.sim.connections import Conn
    from krfeed.sim.host import SimHost

_STOCK_KEY = re.compile(r"^[0-9A-Z]{6}$")
_INDEX_KEY = re.compile(r"^[0-9]{4}$")


# ---- notices ----


def notice_fields(sim: SimHost, ev: OrderEvent, hts_id: str, tr: str) -> list[str]:
    """The 26 plaintext fields of an H0STCNI0/9 notice for an order event."""
    o = ev.order
    f = ev.fill
    acct = sim.engine.account("kis", o.appkey)
    if f is not None:
        qty, price = f.qty, f.price
    else:
        qty, price = o.qty, o.price  # an acknowledgement carries the order's quantity/price
    acceptance = {"accepted": "1", "rejected": "1", "confirmed": "2", "filled": "2"}.get(
        ev.kind, "3"
    )
    correction = {"new": Correction.NORMAL, "modify": Correction.MODIFY}.get(
        o.kind, Correction.CANCEL
    )
    vals: dict[str, Any] = {
        "customer_id": hts_id,
        "account_no": acct.number + acct.product,
        "order_no": o.order_no,
        "original_order_no": "" if o.kind == "new" else o.original_order_no,
        "side": Side.BUY if o.side == "buy" else Side.SELL,
        "correction": correction,
        "order_kind": o.type.kis,
        "order_condition": o.type.kis_condition,
        "code": o.code,
        "fill_qty": qty,
        "fill_price": price,
        "time": ev.time,
        "rejected": ev.kind == "rejected",
        "notice_kind": NoticeKind.FILL if ev.kind == "filled" else NoticeKind.ACK,
        "acceptance": acceptance,
        "branch_no": "01",
        "order_qty": o.qty,
        "account_name": acct.name,
        "condition_price": 0,
        "order_exchange": "1",
        "popup": True,
        "filler": "",
        "credit_class": "10",
        "credit_loan_date": None,
        "stock_name": o.name,
        "order_price": o.price,
    }
    rec = make_record(get_type("kis", tr), vals, hts_id, ev.time)
    return sim.kis_fields(rec)


# ---- the WebSocket session ----


def _reply(conn: Conn, tr_id: str, tr_key: str, msg_cd: str, **kw: Any) -> None:
    # the header says whether the TR's data frames are encrypted; the official client decides
    # from it (on every reply of that TR) whether to decrypt
    t = types("kis").get(tr_id)
    encrypt = "Y" if t is not None and t.encrypted else "N"
    conn.control(control_reply(tr_id, tr_key, msg_cd, encrypt=encrypt, **kw), msg_cd)


def _valid_tr(sim: SimHost, tr_id: str) -> bool:
    t = types("kis").get(tr_id)
    if t is None:
        return False
    mock_only = {x.mock_tr for x in types("kis").values() if x.mock_tr}
    if sim.config.mock:
        return not t.real_only and not t.mock_tr
    return tr_id not in mock_only


def on_text(sim: SimHost, conn: Conn, text: str) -> None:
    try:
        msg = msgspec.json.decode(text)
    except msgspec.DecodeError:
        _reply(conn, "", "", "OPSP9999")
        return
    header = msg.get("header") if isinstance(msg, dict) else None
    if isinstance(header, dict) and header.get("tr_id") == "PINGPONG":
        conn.echo()
        return
    body = msg.get("body") if isinstance(msg, dict) else None
    inp = body.get("input") if isinstance(body, dict) else None
    if not isinstance(header, dict) or not isinstance(inp, dict):
        _reply(conn, "", "", "OPSP9999")
        return
    tr_id = str(inp.get("tr_id") or "").strip()
    tr_key = str(inp.get("tr_key") or "").strip()
    tok = sim.check_token("kis_approval", header.get("approval_key"))
    if tok is None or sim.faults.refusing("kis", tok.appkey):
        sim.logins["kis"]["refused_subscribes"] += 1
        _reply(conn, tr_id, tr_key, "OPSP0011")
        return
    tr_type = str(header.get("tr_type") or "").strip()
    if tr_type not in ("1", "2"):
        _reply(conn, tr_id, tr_key, "OPSP8997")
        return

    def answer(msg_cd: str, **kw: Any) -> None:
        # the swallow_replies fault takes the answer to a (un)subscribe, not the request
        if not conn.swallows("unsubscribe" if tr_type == "2" else "subscribe"):
            _reply(conn, tr_id, tr_key, msg_cd, **kw)

    if str(header.get("custtype") or "").strip() not in ("P", "B"):
        answer("OPSP8998")
        return
    if not _valid_tr(sim, tr_id):
        answer("OPSP8991")
        return
    t = get_type("kis", tr_id)
    if t.encrypted:
        key_ok = 0 < len(tr_key) <= 16 and tr_key.isprintable()
    elif tr_id.startswith("H0UP"):
        key_ok = bool(_INDEX_KEY.match(tr_key))
    else:
        key_ok = bool(_STOCK_KEY.match(tr_key))
    if not key_ok:
        answer("OPSP8992")
        return
    appkey = tok.appkey
    owner = sim.kis_sessions.get(appkey)
    if (owner is not None and owner is not conn and not owner.closed) or (
        conn.appkey is not None and conn.appkey != appkey
    ):
        _reply(conn, "(null)", "", "OPSP8996")
        return
    if conn.appkey is None:
        conn.appkey = appkey
        sim.kis_sessions[appkey] = conn
    sub = (tr_id, tr_key)
    if tr_type == "2":
        answer("OPSP0003" if conn.kis_subs.pop(sub, None) is None else "OPSP0001")
        return
    if sub in conn.kis_subs:
        answer("OPSP0002")
        return
    if len(conn.kis_subs) >= sim.config.kis_max_registrations:
        answer("OPSP0008")
        return
    key, iv = conn.kis_keys.setdefault(
        tr_id, (sim.random_chars(32), sim.random_chars(16, "0123456789abcdef"))
    )
    conn.kis_subs[sub] = AesKey(key, iv)
    answer("OPSP0000", output={"iv": iv, "key": key})


# the REST handlers moved to krfeed.sim.kis_rest; importable from here as before
__all__ = [
    "approval",
    "daily_ccld",
    "notice_fields",
    "on_text",
    "order_cash",
    "order_rvsecncl",
    "revoke",
    "token",
]
