"""Kiwoom REST side of the simulator (:mod:`krfeed.sim.kiwoom`, which re-exports these handlers
and documents the shapes and UNVERIFIED choices): token calls, orders and account inquiries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from krfeed.schema.convert import KST
from krfeed.schema.enums import ENUM_KINDS
from krfeed.sim.orders import Order, OrderError, order_type

if TYPE_CHECKING:
    from krfeed.sim.host import SimHost

OK_MSG = "정상적으로 처리되었습니다"
LOGIN_FAILED = (
    805004,
    "토큰 인증에 실패했습니다. 접속을 종료합니다 [CODE=8005, MESSAGE=Token이 유효하지 않습니다]",
)
#: Messages of the official error-code sheet used here.
ERRORS = {
    "1501": "API ID가 Null이거나 값이 없습니다",
    "1504": "해당 URI에서는 지원하는 API ID가 아닙니다. API ID={}, URI={}",
    "1511": "필수 입력 값에 값이 존재하지 않습니다. 필수입력 파라미터={}",
    "1513": "Http Header에 authorization 필드가 설정되어 있어야 합니다",
    "1514": "입력으로 들어온 Http Header의 authorization 필드 형식이 맞지 않습니다",
    "1517": "입력 값 형식이 올바르지 않습니다. 파라미터={} 실패사유= {}",
    "8001": "App Key와 Secret Key 검증에 실패했습니다",
    "8002": "App Key와 Secret Key 검증에 실패했습니다. 실패사유={}",
    "8005": "Token이 유효하지 않습니다",
    "8011": "Access Token을 발급하는데 실패했습니다. 입력값에 grant_type이 들어오지 않았습니다",
    "8012": "Access Token을 발급하는데 실패했습니다. grant_type의 값이 맞지 않습니다",
    "8016": "Access Token을 폐기하는데 실패했습니다. 입력값에 Token이 들어오지 않았습니다",
    "8020": "입력파라미터로 appkey 또는 secretkey가 들어오지 않았습니다.",
}
_STATUS = {
    "accepted": "접수",
    "filled": "체결",
    "confirmed": "확인",
    "cancelled": "취소",
    "rejected": "거부",
}
_ORDER_STATUS = ENUM_KINDS["order_status"][1]


def _resp(
    body: dict[str, Any], *, api_id: str = "", cont_yn: str = "N", next_key: str = ""
) -> web.Response:
    headers = {"api-id": api_id, "cont-yn": cont_yn, "next-key": next_key}
    return web.Response(
        body=msgspec.json.encode(body),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _error(code: str, *args: object, api_id: str = "", rc: int = 3, text: str = "") -> web.Response:
    msg = ERRORS.get(code, "").format(*args) if args else ERRORS.get(code, "")
    return _resp({"return_code": rc, "return_msg": f"{text}[{code}:{msg}]"}, api_id=api_id)


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = msgspec.json.decode(await request.read())
    except msgspec.DecodeError:
        return None
    return body if isinstance(body, dict) else None


# ---- /oauth2 ----


async def token(sim: SimHost, request: web.Request) -> web.StreamResponse:
    """au10001: POST /oauth2/token {grant_type, appkey, secretkey}."""
    body = await _json_body(request)
    if body is None:
        return _error("1517", "body", "JSON 형식이 아닙니다", rc=2)
    if not body.get("grant_type"):
        return _error("8011")
    if body.get("grant_type") != "client_credentials":
        return _error("8012")
    appkey, secret = body.get("appkey"), body.get("secretkey")
    if not appkey or not secret:
        return _error("8020")
    known = sim.credentials.get(str(appkey))
    if known is None:
        sim.logins["kiwoom"]["token_refused"] += 1
        return _error("8001")
    if known != secret:
        sim.logins["kiwoom"]["token_refused"] += 1
        return _error("8002", "secretkey가 일치하지 않습니다")
    tok = sim.issue("kiwoom", str(appkey))
    sim.logins["kiwoom"]["tokens"] += 1
    expires = datetime.fromtimestamp(tok.expires, KST).strftime("%Y%m%d%H%M%S")
    return _resp(
        {
            "expires_dt": expires,
            "token_type": "bearer",
            "token": tok.value,
            "return_code": 0,
            "return_msg": OK_MSG,
        }
    )


async def revoke(sim: SimHost, request: web.Request) -> web.StreamResponse:
    """au10002: POST /oauth2/revoke {appkey, secretkey, token}."""
    body = await _json_body(request)
    if body is None:
        return _error("1517", "body", "JSON 형식이 아닙니다", rc=2)
    appkey, secret = body.get("appkey"), body.get("secretkey")
    if not appkey or not secret:
        return _error("8020")
    if sim.credentials.get(str(appkey)) != secret:
        return _error("8001")
    value = body.get("token")
    if not value:
        return _error("8016")
    tok = sim.tokens.get(str(value))
    if tok is not None and tok.kind == "kiwoom" and tok.appkey == appkey:
        tok.revoked = True
    return _resp({"return_code": 0, "return_msg": OK_MSG})


def _authorize(sim: SimHost, request: web.Request) -> tuple[str, str, web.Response | None]:
    """(api_id, appkey, error response)."""
    api_id = request.headers.get("api-id", "").strip()
    if not api_id:
        return "", "", _error("1501", rc=2)
    auth = request.headers.get("authorization")
    if auth is None:
        return api_id, "", _error("1513", api_id=api_id, rc=2)
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return api_id, "", _error("1514", api_id=api_id, rc=2)
    tok = sim.check_token("kiwoom", value.strip())
    if tok is None:
        return api_id, "", _error("8005", api_id=api_id, text="인증에 실패했습니다")
    return api_id, tok.appkey, None


def _int(body: dict[str, Any], key: str, *, default: int | None = None) -> int:
    raw = body.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if default is None:
            raise OrderError(key, "missing")
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise OrderError(key, f"숫자가 아닙니다: {raw!r}") from None


def _missing(body: dict[str, Any], *keys: str) -> str | None:
    for k in keys:
        v = body.get(k)
        if v is None or (isinstance(v, str) and not v.strip()):
            return k
    return None


async def order(sim: SimHost, request: web.Request) -> web.StreamResponse:
    """kt10000 매수 / kt10001 매도 / kt10002 정정 / kt10003 취소 at POST /api/dostk/ordr."""
    api_id, appkey, err = _authorize(sim, request)
    if err is not None:
        return err
    if api_id not in ("kt10000", "kt10001", "kt10002", "kt10003"):
        return _error("1504", api_id, "/api/dostk/ordr", api_id=api_id, rc=2)
    body = await _json_body(request)
    if body is None:
        return _error("1517", "body", "JSON 형식이 아닙니다", api_id=api_id, rc=2)
    required = {
        "kt10000": ("dmst_stex_tp", "stk_cd", "ord_qty", "trde_tp"),
        "kt10001": ("dmst_stex_tp", "stk_cd", "ord_qty", "trde_tp"),
        "kt10002": ("dmst_stex_tp", "orig_ord_no", "stk_cd", "mdfy_qty", "mdfy_uv"),
        "kt10003": ("dmst_stex_tp", "orig_ord_no", "stk_cd", "cncl_qty"),
    }[api_id]
    miss = _missing(body, *required)
    if miss:
        return _error("1511", miss, api_id=api_id, rc=2)
    stex = str(body["dmst_stex_tp"]).strip().upper()
    if stex not in ("KRX", "NXT", "SOR"):
        return _error("1517", "dmst_stex_tp", "KRX, NXT, SOR 중 하나", api_id=api_id, rc=2)
    eng = sim.engine
    try:
        if api_id in ("kt10000", "kt10001"):
            side = "buy" if api_id == "kt10000" else "sell"
            typ = order_type("kiwoom", str(body["trde_tp"]))
            o = eng.place(
                "kiwoom",
                appkey,
                code=str(body["stk_cd"]),
                side=side,
                qty=_int(body, "ord_qty"),
                price=_int(body, "ord_uv", default=0),
                type=typ,
                exchange=stex,
            )
            what = "매수주문이" if side == "buy" else "매도주문이"
            return _resp(
                {
                    "ord_no": o.order_no,
                    "dmst_stex_tp": stex,
                    "return_code": 0,
                    "return_msg": f"{what} 완료되었습니다.",
                },
                api_id=api_id,
            )
        orig = str(body["orig_ord_no"])
        if api_id == "kt10002":
            o = eng.modify(
                "kiwoom", appkey, orig, qty=_int(body, "mdfy_qty"), price=_int(body, "mdfy_uv")
            )
            label = "매수정정" if o.side == "buy" else "매도정정"
            return _resp(
                {
                    "ord_no": o.order_no,
                    "base_orig_ord_no": o.original_order_no,
                    "mdfy_qty": f"{o.qty:012d}",
                    "dmst_stex_tp": stex,
                    "return_code": 0,
                    "return_msg": f"{label} 주문입력이 완료되었습니다",
                },
                api_id=api_id,
            )
        o = eng.cancel("kiwoom", appkey, orig, qty=_int(body, "cncl_qty"))
        label = "매수취소" if o.side == "buy" else "매도취소"
        return _resp(
            {
                "ord_no": o.order_no,
                "base_orig_ord_no": o.original_order_no,
                "cncl_qty": f"{o.qty:012d}",
                "return_code": 0,
                "return_msg": f"{label} 주문입력이 완료되었습니다",
            },
            api_id=api_id,
        )
    except OrderError as e:
        return _resp({"return_code": 2, "return_msg": f"[{e.code}] {e.message}"}, api_id=api_id)


# ---- account inquiries ----


def _signed(level: int, ref: int) -> str:
    if not level:
        return "0"
    return f"+{level}" if level > ref else f"-{level}" if level < ref else str(level)


def _hms(t: datetime) -> str:
    return t.astimezone(KST).strftime("%H%M%S")


def _stex(o: Order) -> tuple[str, str, str]:
    """(stex_tp, stex_tp_txt, sor_yn)."""
    if o.exchange == "SOR":
        return "0", "SOR", "Y"
    if o.exchange == "NXT":
        return "2", "NXT", "N"
    return "1", "KRX", "N"


def _row_unfilled(sim: SimHost, o: Order) -> dict[str, str]:
    inst = sim.market.instrument(o.code)
    last = o.fills[-1] if o.fills else None
    stex = _stex(o)
    return {
        "acnt_no": o.account,
        "ord_no": o.order_no,
        "mang_empno": "",
        "stk_cd": o.code,
        "tsk_tp": "",
        "ord_stt": o.status,
        "stk_nm": o.name,
        "ord_qty": str(o.qty),
        "ord_pric": str(o.price),
        "oso_qty": str(o.remaining),
        "cntr_tot_amt": str(o.amount),
        "orig_ord_no": o.original_order_no,
        "io_tp_nm": o.side_label,
        "trde_tp": o.type.label,
        "tm": _hms(o.time),
        "cntr_no": last.fill_no if last else "",
        "cntr_pric": str(last.price) if last else "0",
        "cntr_qty": str(o.filled),
        "cur_prc": _signed(inst.price, inst.prev_close),
        "sel_bid": _signed(inst.best_ask, inst.prev_close),
        "buy_bid": _signed(inst.best_bid, inst.prev_close),
        "unit_cntr_pric": str(last.price) if last else "",
        "unit_cntr_qty": str(last.qty) if last else "",
        "tdy_trde_cmsn": str(o.commission),
        "tdy_trde_tax": str(o.tax),
        "ind_invsr": "",
        "stex_tp": stex[0],
        "stex_tp_txt": stex[1],
        "sor_yn": stex[2],
        "stop_pric": "",
    }


def _row_filled(o: Order) -> dict[str, str]:
    stex = _stex(o)
    return {
        "ord_no": o.order_no,
        "stk_nm": o.name,
        "io_tp_nm": o.side_label,
        "ord_pric": str(o.price),
        "ord_qty": str(o.qty),
        "cntr_pric": str(o.avg_price),
        "cntr_qty": str(o.filled),
        "oso_qty": str(o.remaining),
        "tdy_trde_cmsn": str(o.commission),
        "tdy_trde_tax": str(o.tax),
        "ord_stt": o.status,
        "trde_tp": o.type.label,
        "orig_ord_no": o.original_order_no,
        "ord_tm": _hms(o.time),
        "stk_cd": o.code,
        "stex_tp": stex[0],
        "stex_tp_txt": stex[1],
        "sor_yn": stex[2],
        "stop_pric": "",
    }


def _n10(v: int) -> str:
    return f"{v:010d}"


def _row_status(o: Order) -> dict[str, str]:
    last = o.fills[-1] if o.fills else None
    kind = {"new": "", "modify": "정정", "cancel": "취소"}[o.kind]
    io = ("현금매수" if o.side == "buy" else "현금매도") if o.kind == "new" else o.side_label
    return {
        "stk_bond_tp": "1",
        "ord_no": o.order_no,
        "stk_cd": "A" + o.code,
        "trde_tp": o.type.label,
        "io_tp_nm": io,
        "ord_qty": _n10(o.qty),
        "ord_uv": _n10(o.price),
        "cnfm_qty": _n10(o.qty if o.kind != "new" and o.status == "확인" else 0),
        "rsrv_oppo": "",
        "cntr_no": last.fill_no if last else "",
        "acpt_tp": "거부" if o.status == "거부" else "접수",
        "orig_ord_no": o.original_order_no,
        "stk_nm": o.name,
        "setl_tp": "삼일결제",
        "crd_deal_tp": "보통매매",
        "cntr_qty": _n10(o.filled),
        "cntr_uv": _n10(o.avg_price),
        "comm_ord_tp": "Open API",
        "mdfy_cncl_tp": kind,
        "cntr_tm": last.time.astimezone(KST).strftime("%H:%M:%S") if last else "",
        "dmst_stex_tp": o.exchange,
        "cond_uv": _n10(0),
    }


def _side_ok(o: Order, code: str) -> bool:
    """Kiwoom 매도수구분 filter: 0 all, 1 sell, 2 buy."""
    code = (code or "0").strip()
    return code == "0" or (code == "1" and o.side == "sell") or (code == "2" and o.side == "buy")


def _page(
    rows: list[tuple[str, dict[str, str]]], request: web.Request, size: int, descending: bool
) -> tuple[list[dict[str, str]], str, str]:
    """Cut one page; rows are (order_no, row) in response order. next-key = the next order_no."""
    start = 0
    if request.headers.get("cont-yn", "").strip().upper() == "Y":
        key = request.headers.get("next-key", "").strip()
        if key:
            start = len(rows)
            for i, (no, _) in enumerate(rows):
                if (no <= key) if descending else (no >= key):
                    start = i
                    break
    page = rows[start : start + size]
    more = start + size < len(rows)
    return [r for _, r in page], ("Y" if more else "N"), (rows[start + size][0] if more else "")


async def account(sim: SimHost, request: web.Request) -> web.StreamResponse:
    """ka10075 미체결 / ka10076 체결 / kt00009 계좌별주문체결현황 at POST /api/dostk/acnt."""
    api_id, appkey, err = _authorize(sim, request)
    if err is not None:
        return err
    if api_id not in ("ka10075", "ka10076", "kt00009"):
        return _error("1504", api_id, "/api/dostk/acnt", api_id=api_id, rc=2)
    body = await _json_body(request)
    if body is None:
        return _error("1517", "body", "JSON 형식이 아닙니다", api_id=api_id, rc=2)
    orders = sim.engine.orders_of("kiwoom", appkey)
    size = max(1, sim.config.page_size)
    stk = str(body.get("stk_cd") or "").strip()
    if api_id == "ka10075":
        miss = _missing(body, "all_stk_tp", "trde_tp", "stex_tp")
        if miss:
            return _error("1511", miss, api_id=api_id, rc=2)
        by_stock = str(body["all_stk_tp"]).strip() == "1"
        rows = [
            (o.order_no, _row_unfilled(sim, o))
            for o in reversed(orders)
            if o.kind != "cancel"
            and o.remaining > 0
            and _side_ok(o, str(body["trde_tp"]))
            and (not by_stock or o.code == stk)
        ]
        page, cont, nxt = _page(rows, request, size, descending=True)
        return _resp(
            {"oso": page, "return_code": 0, "return_msg": " 조회가 완료되었습니다."},
            api_id=api_id,
            cont_yn=cont,
            next_key=nxt,
        )
    if api_id == "ka10076":
        miss = _missing(body, "qry_tp", "sell_tp", "stex_tp")
        if miss:
            return _error("1511", miss, api_id=api_id, rc=2)
        by_stock = str(body["qry_tp"]).strip() == "1"
        before = str(body.get("ord_no") or "").strip()
        rows = [
            (o.order_no, _row_filled(o))
            for o in reversed(orders)
            if o.filled > 0
            and _side_ok(o, str(body["sell_tp"]))
            and (not by_stock or o.code == stk)
            and (not before or o.order_no < before.zfill(7))
        ]
        page, cont, nxt = _page(rows, request, size, descending=True)
        return _resp(
            {"cntr": page, "return_code": 0, "return_msg": " 조회가 완료되었습니다."},
            api_id=api_id,
            cont_yn=cont,
            next_key=nxt,
        )
    miss = _missing(body, "stk_bond_tp", "mrkt_tp", "sell_tp", "qry_tp", "dmst_stex_tp")
    if miss:
        return _error("1511", miss, api_id=api_id, rc=2)
    only_filled = str(body["qry_tp"]).strip() == "1"
    start_no = str(body.get("fr_ord_no") or "").strip()
    stex = str(body["dmst_stex_tp"]).strip().upper()
    selected = [
        o
        for o in orders
        if _side_ok(o, str(body["sell_tp"]))
        and (not only_filled or o.filled > 0)
        and (not stk or o.code == stk.removeprefix("A"))
        and (not start_no or o.order_no >= start_no.zfill(7))
        and (stex in ("", "%") or o.exchange == stex)
    ]
    sell = sum(o.amount for o in selected if o.side == "sell")
    buy = sum(o.amount for o in selected if o.side == "buy")
    rows = [(o.order_no, _row_status(o)) for o in selected]
    page, cont, nxt = _page(rows, request, size, descending=False)
    return _resp(
        {
            "sell_grntl_engg_amt": f"{sell:012d}",
            "buy_engg_amt": f"{buy:012d}",
            "engg_amt": f"{sell + buy:012d}",
            "acnt_ord_cntr_prst_array": page,
            "return_code": 0,
            "return_msg": "조회가 완료되었습니다",
        },
        api_id=api_id,
        cont_yn=cont,
        next_key=nxt,
    )
