"""KIS REST side of the simulator (:mod:`krfeed.sim.kis`, which re-exports these handlers and
documents the UNVERIFIED choices): approval key and access token, order-cash / order-rvsecncl /
inquire-daily-ccld."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from krfeed.schema.convert import KST
from krfeed.sim.orders import Order, OrderError, order_type

if TYPE_CHECKING:
    from krfeed.sim.host import SimHost

_ORD_DVSN_NAMES = {
    "00": "지정가",
    "01": "시장가",
    "02": "조건부지정가",
    "03": "최유리지정가",
    "04": "최우선지정가",
    "11": "IOC지정가",
    "12": "FOK지정가",
    "13": "IOC시장가",
    "14": "FOK시장가",
    "15": "IOC최유리",
    "16": "FOK최유리",
}
_LAST_PAGE = "조회 되었습니다. (마지막 자료)"
_MORE_PAGES = "조회가 계속됩니다..다음버튼을 Click 하십시오."


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _gateway_error(code: str, text: str, status: int = 403) -> web.Response:
    return _json({"error_description": text, "error_code": code}, status)


def _rt_error(msg_cd: str, msg1: str, status: int = 200) -> web.Response:
    return _json({"rt_cd": "1", "msg_cd": msg_cd, "msg1": msg1}, status)


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = msgspec.json.decode(await request.read())
    except msgspec.DecodeError:
        return None
    return body if isinstance(body, dict) else None


def _check_app(sim: SimHost, appkey: object, secret: object) -> web.Response | None:
    if not appkey or str(appkey) not in sim.credentials:
        return _gateway_error("EGW00103", "유효하지 않은 AppKey입니다.")
    if sim.credentials[str(appkey)] != secret:
        return _gateway_error("EGW00105", "유효하지 않은 AppSecret입니다.")
    return None


# ---- /oauth2 ----


async def approval(sim: SimHost, request: web.Request) -> web.StreamResponse:
    """POST /oauth2/Approval {grant_type, appkey, secretkey} -> {approval_key}."""
    body = await _body(request)
    if body is None:
        return _gateway_error("EGW00002", "요청 데이터가 올바르지 않습니다.", 400)
    if body.get("grant_type") != "client_credentials":
        return _gateway_error("EGW00002", "grant_type이 올바르지 않습니다.", 400)
    err = _check_app(sim, body.get("appkey"), body.get("secretkey"))
    if err is not None:
        sim.logins["kis"]["failed"] += 1
        return err
    appkey = str(body["appkey"])
    if sim.faults.refusing("kis", appkey):
        sim.logins["kis"]["failed"] += 1
        return _gateway_error("EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)")
    sim.logins["kis"]["ok"] += 1
    return _json({"approval_key": sim.issue("kis_approval", appkey).value})


async def token(sim: SimHost, request: web.Request) -> web.StreamResponse:
    """POST /oauth2/tokenP {grant_type, appkey, appsecret} -> access token."""
    body = await _body(request)
    if body is None:
        return _gateway_error("EGW00002", "요청 데이터가 올바르지 않습니다.", 400)
    if body.get("grant_type") != "client_credentials":
        return _gateway_error("EGW00002", "grant_type이 올바르지 않습니다.", 400)
    err = _check_app(sim, body.get("appkey"), body.get("appsecret"))
    if err is not None:
        return err
    appkey = str(body["appkey"])
    if sim.faults.refusing("kis", appkey):
        return _gateway_error("EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)")
    tok = sim.issue("kis_access", appkey)
    sim.logins["kis"]["tokens"] += 1
    expired = datetime.fromtimestamp(tok.expires, KST).strftime("%Y-%m-%d %H:%M:%S")
    return _json(
        {
            "access_token": tok.value,
            "access_token_token_expired": expired,
            "token_type": "Bearer",
            "expires_in": int(sim.config.token_ttl),
        }
    )


async def revoke(sim: SimHost, request: web.Request) -> web.StreamResponse:
    """POST /oauth2/revokeP {appkey, appsecret, token}."""
    body = await _body(request)
    if body is None:
        return _gateway_error("EGW00002", "요청 데이터가 올바르지 않습니다.", 400)
    err = _check_app(sim, body.get("appkey"), body.get("appsecret"))
    if err is not None:
        return err
    tok = sim.tokens.get(str(body.get("token") or ""))
    if tok is not None and tok.kind == "kis_access" and tok.appkey == body.get("appkey"):
        tok.revoked = True
    return _json({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"})


# ---- trading REST ----


def _authorize(sim: SimHost, request: web.Request) -> tuple[str, web.Response | None]:
    """(appkey, error)."""
    appkey = request.headers.get("appkey", "")
    err = _check_app(sim, appkey, request.headers.get("appsecret"))
    if err is not None:
        return "", err
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    tok = sim.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
    if tok is None or tok.kind != "kis_access" or tok.revoked or tok.appkey != appkey:
        return "", _rt_error("EGW00121", "유효하지 않은 token 입니다.", 500)
    if not tok.valid():
        return "", _rt_error("EGW00123", "기간이 만료된 token 입니다.", 500)
    return appkey, None


def _tr_ids(sim: SimHost, real: tuple[str, ...]) -> set[str]:
    return {("V" + t[1:]) if sim.config.mock else t for t in real}


def _adopt_account(sim: SimHost, appkey: str, body: dict[str, Any]) -> str | None:
    """The account is the appkey's; the first 8-digit CANO a client uses becomes its number."""
    acct = sim.engine.account("kis", appkey)
    cano = str(body.get("CANO") or "").strip()
    if not re.fullmatch(r"\d{8}", cano):
        return "CANO"
    if not sim.engine.orders_of("kis", appkey) and cano != acct.number:
        acct.number = cano
    prod = str(body.get("ACNT_PRDT_CD") or "").strip()
    if not re.fullmatch(r"\d{2}", prod):
        return "ACNT_PRDT_CD"
    acct.product = prod
    return None


def _ok_order(o: Order) -> web.Response:
    return _json(
        {
            "rt_cd": "0",
            "msg_cd": "APBK0013",
            "msg1": "주문 전송 완료 되었습니다.",
            "output": {
                "KRX_FWDG_ORD_ORGNO": "91252",
                "ODNO": o.order_no,
                "ORD_TMD": o.time.astimezone(KST).strftime("%H%M%S"),
            },
        },
        headers={"tr_id": "", "tr_cont": "", "gt_uid": ""},
    )


def _order_error(e: OrderError) -> web.Response:
    code = {"ord_qty": "APBK0400", "ord_uv": "APBK1744"}.get(e.code, "APBK0918")
    return _rt_error(code, e.message)


def _int(body: dict[str, Any], key: str) -> int:
    raw = str(body.get(key) or "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise OrderError(key.lower(), f"{key} 값이 숫자가 아닙니다") from None


async def order_cash(sim: SimHost, request: web.Request) -> web.StreamResponse:
    """POST /uapi/domestic-stock/v1/trading/order-cash (TTTC0012U buy / TTTC0011U sell)."""
    appkey, err = _authorize(sim, request)
    if err is not None:
        return err
    tr_id = request.headers.get("tr_id", "").strip()
    buy = _tr_ids(sim, ("TTTC0012U", "TTTC0802U"))
    sell = _tr_ids(sim, ("TTTC0011U", "TTTC0801U"))
    if tr_id not in buy | sell:
        return _rt_error("EGW00203", f"tr_id {tr_id!r}는 이 서버의 현금주문 거래ID가 아닙니다.")
    body = await _body(request)
    if body is None:
        return _rt_error("OPSQ2001", "JSON 형식이 올바르지 않습니다.")
    for k in ("CANO", "ACNT_PRDT_CD", "PDNO", "ORD_DVSN", "ORD_QTY", "ORD_UNPR"):
        if k not in body:
            return _rt_error("OPSQ2000", f"ERROR : INPUT FIELD NOT FOUND [{k}]")
    bad = _adopt_account(sim, appkey, body)
    if bad:
        return _rt_error("OPSQ2000", f"ERROR : INPUT INVALID_CHECK_ACNO [{bad}]")
    try:
        typ = order_type("kis", str(body["ORD_DVSN"]))
        o = sim.engine.place(
            "kis",
            appkey,
            code=str(body["PDNO"]),
            side="buy" if tr_id in buy else "sell",
            qty=_int(body, "ORD_QTY"),
            price=_int(body, "ORD_UNPR"),
            type=typ,
            exchange=str(body.get("EXCG_ID_DVSN_CD") or "KRX").strip().upper() or "KRX",
        )
    except OrderError as e:
        return _order_error(e)
    return _ok_order(o)


async def order_rvsecncl(sim: SimHost, request: web.Request) -> web.StreamResponse:
    """POST /uapi/domestic-stock/v1/trading/order-rvsecncl (TTTC0013U): 정정 01 / 취소 02."""
    appkey, err = _authorize(sim, request)
    if err is not None:
        return err
    tr_id = request.headers.get("tr_id", "").strip()
    if tr_id not in _tr_ids(sim, ("TTTC0013U", "TTTC0803U")):
        return _rt_error("EGW00203", f"tr_id {tr_id!r}는 이 서버의 정정취소 거래ID가 아닙니다.")
    body = await _body(request)
    if body is None:
        return _rt_error("OPSQ2001", "JSON 형식이 올바르지 않습니다.")
    for k in ("CANO", "ACNT_PRDT_CD", "ORGN_ODNO", "RVSE_CNCL_DVSN_CD", "ORD_QTY", "ORD_UNPR"):
        if k not in body:
            return _rt_error("OPSQ2000", f"ERROR : INPUT FIELD NOT FOUND [{k}]")
    all_qty = str(body.get("QTY_ALL_ORD_YN") or "N").strip().upper() == "Y"
    try:
        qty = 0 if all_qty else _int(body, "ORD_QTY")
        orig = str(body["ORGN_ODNO"])
        if str(body["RVSE_CNCL_DVSN_CD"]).strip() == "01":
            o = sim.engine.modify("kis", appkey, orig, qty=qty, price=_int(body, "ORD_UNPR"))
        else:
            o = sim.engine.cancel("kis", appkey, orig, qty=qty)
    except OrderError as e:
        return _order_error(e)
    return _ok_order(o)


def _ccld_row(o: Order) -> dict[str, str]:
    side_name = "매수" if o.side == "buy" else "매도"
    if o.kind == "modify":
        side_name += "정정"
    elif o.kind == "cancel":
        side_name += "취소"
    else:
        side_name = "현금" + side_name
    return {
        "ord_dt": o.time.astimezone(KST).strftime("%Y%m%d"),
        "ord_gno_brno": "91252",
        "odno": o.order_no,
        "orgn_odno": "" if o.kind == "new" else o.original_order_no,
        "ord_dvsn_name": _ORD_DVSN_NAMES.get(o.type.kis, o.type.label),
        "sll_buy_dvsn_cd": "02" if o.side == "buy" else "01",
        "sll_buy_dvsn_cd_name": side_name,
        "pdno": o.code,
        "prdt_name": o.name,
        "ord_qty": str(o.qty),
        "ord_unpr": str(o.price),
        "ord_tmd": o.time.astimezone(KST).strftime("%H%M%S"),
        "tot_ccld_qty": str(o.filled),
        "avg_prvs": str(o.avg_price),
        "cncl_yn": "Y" if o.kind == "cancel" else "N",
        "tot_ccld_amt": str(o.amount),
        "loan_dt": "",
        "ordr_empno": "",
        "ord_dvsn_cd": o.type.kis,
        "cnc_cfrm_qty": str(o.qty if o.kind == "cancel" and o.status == "확인" else 0),
        "rmn_qty": str(o.remaining),
        "rjct_qty": str(o.rejected),
        "ccld_cndt_name": {"": "없음", "IOC": "IOC", "FOK": "FOK"}[o.type.condition],
        "inqr_ipad": "",
        "cpbc_ordp_ord_rcit_dvsn_cd": "",
        "cpbc_ordp_infm_mthd_dvsn_cd": "",
        "infm_tmd": "",
        "ctac_tlno": "",
        "prdt_type_cd": "300",
        "excg_dvsn_cd": "01",
        "cpbc_ordp_mtrl_dvsn_cd": "",
        "ord_orgno": "",
        "rsvn_ord_end_dt": "",
        "excg_id_dvsn_cd": o.exchange,
        "stpm_cndt_pric": "0",
        "stpm_efct_occr_dtmd": "",
    }


async def daily_ccld(sim: SimHost, request: web.Request) -> web.StreamResponse:
    """GET /uapi/domestic-stock/v1/trading/inquire-daily-ccld (TTTC0081R), paged with
    CTX_AREA_FK100/NK100 and the tr_cont header (response M = more, D = last)."""
    appkey, err = _authorize(sim, request)
    if err is not None:
        return err
    tr_id = request.headers.get("tr_id", "").strip()
    if tr_id not in _tr_ids(sim, ("TTTC0081R", "TTTC8001R")):
        return _rt_error("EGW00203", f"tr_id {tr_id!r}는 일별주문체결조회 거래ID가 아닙니다.")
    q = request.query
    for k in ("CANO", "ACNT_PRDT_CD", "INQR_STRT_DT", "INQR_END_DT", "SLL_BUY_DVSN_CD"):
        if k not in q:
            return _rt_error("OPSQ2000", f"ERROR : INPUT FIELD NOT FOUND [{k}]")
    side = q.get("SLL_BUY_DVSN_CD", "00").strip() or "00"
    pdno = q.get("PDNO", "").strip()
    ccld = q.get("CCLD_DVSN", "00").strip() or "00"
    odno = q.get("ODNO", "").strip()
    ascending = q.get("INQR_DVSN", "00").strip() == "01"
    start_dt = q.get("INQR_STRT_DT", "").strip()
    end_dt = q.get("INQR_END_DT", "").strip()
    selected = []
    for o in sim.engine.orders_of("kis", appkey):
        day = o.time.astimezone(KST).strftime("%Y%m%d")
        if (start_dt and day < start_dt) or (end_dt and day > end_dt):
            continue
        if (side == "01" and o.side != "sell") or (side == "02" and o.side != "buy"):
            continue
        if pdno and o.code != pdno:
            continue
        if odno and o.order_no != odno.zfill(10):
            continue
        if (ccld == "01" and o.filled == 0) or (ccld == "02" and o.remaining == 0):
            continue
        selected.append(o)
    if not ascending:
        selected.reverse()
    start = 0
    if request.headers.get("tr_cont", "").strip().upper() == "N":
        key = q.get("CTX_AREA_NK100", "").strip()
        if key:
            start = len(selected)
            for i, o in enumerate(selected):
                if (o.order_no >= key) if ascending else (o.order_no <= key):
                    start = i
                    break
    size = max(1, sim.config.page_size)
    page = selected[start : start + size]
    more = start + size < len(selected)
    nk = selected[start + size].order_no if more else ""
    fk = "^".join((q.get("CANO", ""), q.get("ACNT_PRDT_CD", ""), start_dt, end_dt, side, ccld))
    filled_amt = sum(o.amount for o in selected)
    filled_qty = sum(o.filled for o in selected)
    body = {
        "ctx_area_fk100": fk,
        "ctx_area_nk100": nk,
        "output1": [_ccld_row(o) for o in page],
        "output2": {
            "tot_ord_qty": str(sum(o.qty for o in selected if o.kind != "cancel")),
            "tot_ccld_qty": str(filled_qty),
            "tot_ccld_amt": str(filled_amt),
            "prsm_tlex_smtl": str(sum(o.commission + o.tax for o in selected)),
            "pchs_avg_pric": f"{filled_amt / filled_qty:.4f}" if filled_qty else "0.0000",
        },
        "rt_cd": "0",
        "msg_cd": "KIOK0460" if not more else "KIOK0470",
        "msg1": _LAST_PAGE if not more else _MORE_PAGES,
    }
    return _json(body, headers={"tr_id": tr_id, "tr_cont": "M" if more else "D", "gt_uid": ""})
