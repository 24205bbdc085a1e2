"""Reconciliation pieces: reading the inquiries (Kiwoom's official response examples of kt00009,
ka10075 and ka10076; KIS rows built from the documented output1 fields), the comparison with the
tracker, the rate limiter, and the REST clients' paging, retries and token renewal against a
stub server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from krfeed.auth import KiwoomToken
from krfeed.orders import AccountRef, OrderEvent, OrderTracker, kis_snapshot, kiwoom_snapshot
from krfeed.orders.reconcile import (
    KiwoomAccountAPI,
    RateLimiter,
    ReconcileError,
    Snapshot,
    compare,
    split_kis_account,
)
from krfeed.schema.enums import Side

SPEC_PATH = Path(__file__).parent.parent / "fixtures" / "official" / "kiwoom_api_spec_subset.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
DAY = date(2025, 3, 14)


def official(api_id: str) -> dict[str, Any]:
    return json.loads(SPEC[api_id]["response_example"])  # type: ignore[no-any-return]


KT00009_OFFICIAL = official("kt00009")["acnt_ord_cntr_prst_array"]
KA10075_OFFICIAL = official("ka10075")["oso"]
KA10076_OFFICIAL = official("ka10076")["cntr"]


def test_kt00009_official_example_is_one_filled_market_buy() -> None:
    (s,) = kiwoom_snapshot(KT00009_OFFICIAL, [], day=DAY).values()
    assert (s.order_no, s.code, s.name, s.side, s.action) == (
        "0000050",
        "069500",  # A069500: prefix A = stock
        "KODEX 200",
        Side.BUY,  # 현금매수
        "new",
    )
    assert (s.order_type, s.order_qty, s.filled_qty, s.avg_price) == ("market", 1, 1, 4900)
    assert (s.remaining_qty, s.cancelled_qty, s.rejected_qty, s.exchange) == (0, 0, 0, "KRX")
    assert s.amount() == 4900 and s.consistent
    assert s.fill_time is not None and s.fill_time.hour == 13  # 13:07:47


def test_ka10075_gives_open_quantity_exact_amount_and_account() -> None:
    # kt00009 row of the order in ka10075's example, built from the documented layout
    kt00009_row_from_documented_layout = {
        "ord_no": "0000069",
        "stk_cd": "A005930",
        "trde_tp": "시장가",
        "io_tp_nm": "현금매수",
        "ord_qty": "0000000001",
        "ord_uv": "0000000000",
        "cnfm_qty": "0000000000",
        "cntr_no": "",
        "acpt_tp": "접수",
        "orig_ord_no": "0000000",
        "stk_nm": "삼성전자",
        "cntr_qty": "0000000000",
        "cntr_uv": "0000000000",
        "mdfy_cncl_tp": "",
        "cntr_tm": "",
        "dmst_stex_tp": "KRX",
    }
    (s,) = kiwoom_snapshot([kt00009_row_from_documented_layout], KA10075_OFFICIAL, day=DAY).values()
    assert (s.order_no, s.remaining_qty, s.filled_qty, s.filled_amount) == ("0000069", 1, 0, 0)
    assert s.account == "1234567890"  # ka10075 acnt_no
    assert s.order_time is not None and (s.order_time.hour, s.order_time.minute) == (15, 41)


def test_ka10076_gives_fees_and_taxes() -> None:
    rows = [
        {
            "ord_no": r["ord_no"],
            "stk_cd": "A" + r["stk_cd"],
            "io_tp_nm": "현금매도",
            "trde_tp": "보통",
            "ord_qty": "0000000001",
            "ord_uv": "0000158200",
            "cntr_qty": "0000000001",
            "cntr_uv": "0000158200",
            "acpt_tp": "접수",
            "orig_ord_no": "0000000",
        }
        for r in KA10076_OFFICIAL
    ]
    snap = kiwoom_snapshot(rows, [], KA10076_OFFICIAL, day=DAY)
    assert sorted(snap) == ["0000036", "0000037"]
    for s in snap.values():
        assert (s.side, s.filled_qty, s.avg_price, s.commission, s.tax) == (
            Side.SELL,
            1,
            158200,
            310,
            284,
        )
        assert s.remaining_qty == 0 and s.cancelled_qty == 0


def test_kiwoom_inconsistent_reads_are_flagged() -> None:
    row = dict(KT00009_OFFICIAL[0], cntr_qty="0000000000", cntr_uv="0000000000")
    later_fill = dict(KA10076_OFFICIAL[0], ord_no="0000050", cntr_qty="1")
    (s,) = kiwoom_snapshot([row], [], [later_fill], day=DAY).values()
    assert not s.consistent


def kis_row(**kw: Any) -> dict[str, Any]:
    """An inquire-daily-ccld output1 row built from the documented field list."""
    row = {
        "ord_dt": "20250314",
        "ord_gno_brno": "06010",
        "odno": "0000012345",
        "orgn_odno": "",
        "ord_dvsn_name": "지정가",
        "sll_buy_dvsn_cd": "02",
        "sll_buy_dvsn_cd_name": "현금매수",
        "pdno": "005930",
        "prdt_name": "삼성전자",
        "ord_qty": "10",
        "ord_unpr": "73100",
        "ord_tmd": "101500",
        "tot_ccld_qty": "4",
        "avg_prvs": "73100",
        "cncl_yn": "N",
        "tot_ccld_amt": "292400",
        "ord_dvsn_cd": "00",
        "cncl_cfrm_qty": "0",
        "rmn_qty": "6",
        "rjct_qty": "0",
        "excg_id_dvsn_cd": "KRX",
    }
    row.update(kw)
    return row


def test_kis_rows_from_documented_layout() -> None:
    snap = kis_snapshot(
        [
            kis_row(),
            kis_row(
                odno="0000012346",
                orgn_odno="0000012345",
                sll_buy_dvsn_cd_name="매수취소",
                cncl_yn="Y",
                ord_qty="6",
                tot_ccld_qty="0",
                tot_ccld_amt="0",
                rmn_qty="0",
                cncl_cfrm_qty="6",
            ),
            kis_row(odno="0000012347", rjct_qty="10", tot_ccld_qty="0", rmn_qty="0"),
        ],
        account="5012345601",
    )
    a, c, r = snap["0000012345"], snap["0000012346"], snap["0000012347"]
    assert (a.filled_qty, a.filled_amount, a.remaining_qty, a.cancelled_qty) == (4, 292400, 6, 0)
    assert (c.action, c.confirmed, c.original_order_no, c.remaining_qty) == (
        "cancel",
        True,
        "0000012345",
        0,
    )
    assert (r.rejected_qty, r.cancelled_qty) == (10, 0)
    # the simulator's spelling of the confirmed quantity is read too
    legacy = kis_row(cncl_yn="Y", cnc_cfrm_qty="3")
    del legacy["cncl_cfrm_qty"]
    assert kis_snapshot([legacy])["0000012345"].confirmed


def test_split_kis_account() -> None:
    assert split_kis_account("12345678-01") == ("12345678", "01")
    assert split_kis_account("1234567801") == ("12345678", "01")
    with pytest.raises(ValueError):
        split_kis_account("123")


# ---- compare ----


def accepted(no: str, qty: int = 10, **kw: Any) -> OrderEvent:
    return OrderEvent(
        broker="kis",
        account="5012345601",
        order_no=no,
        kind="accepted",
        code="005930",
        side=Side.BUY,
        order_qty=qty,
        order_price=73100,
        **kw,
    )


def snapshot(*rows: dict[str, Any]) -> Snapshot:
    return Snapshot(
        "kis", AccountRef("kis", "5012345601"), kis_snapshot(list(rows), account="5012345601")
    )


def test_compare_emits_the_missing_fill_once() -> None:
    t = OrderTracker()
    t.apply(accepted("0000012345"))
    live = OrderEvent(
        broker="kis",
        account="5012345601",
        order_no="0000012345",
        kind="filled",
        fill_qty=1,
        fill_price=73000,
    )
    t.apply(live)
    res = compare(snapshot(kis_row()), t, t.seq)
    (fill,) = [o for o in res.outputs if isinstance(o, OrderEvent)]
    assert (fill.kind, fill.source, fill.fill_qty, fill.filled_qty) == (
        "filled",
        "reconciled",
        3,
        4,
    )
    assert fill.filled_amount == 292400 and fill.fill_price == round((292400 - 73000) / 3)
    assert res.fills == 1 and res.fill_qty == 3
    assert compare(snapshot(kis_row()), t, t.seq).outputs == []  # exactly once


def test_compare_defers_orders_with_live_events_during_the_round() -> None:
    t = OrderTracker()
    t.apply(accepted("0000012345"))
    since = t.seq - 1  # the acceptance came after the inquiry started
    res = compare(snapshot(kis_row()), t, since)
    assert res.deferred == ["0000012345"] and res.outputs == []


def test_compare_new_orders_and_cancel_requests_in_order() -> None:
    t = OrderTracker()
    t.apply(accepted("0000012345"))
    rows = [
        kis_row(rmn_qty="0"),  # 4 filled, 6 moved to the cancel request below
        kis_row(
            odno="0000012346",
            orgn_odno="0000012345",
            sll_buy_dvsn_cd_name="매수취소",
            cncl_yn="Y",
            ord_qty="6",
            tot_ccld_qty="0",
            tot_ccld_amt="0",
            rmn_qty="0",
            cncl_cfrm_qty="6",
        ),
    ]
    res = compare(snapshot(*rows), t, t.seq)
    kinds = [(o.order_no, o.kind) for o in res.outputs if isinstance(o, OrderEvent)]
    assert kinds == [
        ("0000012345", "filled"),
        ("0000012346", "accepted"),
        ("0000012346", "cancelled"),
    ]
    orig = t.get("kis", "0000012345")
    req = t.get("kis", "0000012346")
    assert orig is not None and req is not None
    assert (orig.filled_qty, orig.cancelled_qty, orig.remaining_qty) == (4, 6, 0)
    assert req.status == "confirmed"
    assert compare(snapshot(*rows), t, t.seq).outputs == []


def test_compare_reports_a_tracker_ahead_of_the_broker() -> None:
    t = OrderTracker()
    t.apply(accepted("0000012345"))
    t.apply(
        OrderEvent(
            broker="kis",
            account="5012345601",
            order_no="0000012345",
            kind="filled",
            fill_qty=5,
            fill_price=73100,
        )
    )
    res = compare(snapshot(kis_row()), t, t.seq)
    assert [getattr(o, "problem", None) for o in res.outputs] == ["regressed"]


# ---- rate limiter (virtual clock: no timing assertions) ----


async def test_rate_limiter_paces_requests() -> None:
    now = [1000.0]

    async def fake_sleep(s: float) -> None:
        now[0] += s

    lim = RateLimiter(rate=5.0, burst=2, clock=lambda: now[0], sleep=fake_sleep)
    for _ in range(12):
        await lim.acquire()
    # 2 at once, then one every 0.2 virtual seconds
    assert now[0] - 1000.0 == pytest.approx(10 * 0.2)
    lim.backoff(1.0)
    t = now[0]
    await lim.acquire()
    assert now[0] - t == pytest.approx(1.0 + 0.2)


# ---- Kiwoom REST client against a stub ----


@pytest.fixture
async def stub() -> AsyncIterator[tuple[TestServer, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    state = {"calls": 0}

    async def token(request: web.Request) -> web.Response:
        state["tokens"] = state.get("tokens", 0) + 1
        return web.json_response(
            {"token": f"T{state['tokens']}", "expires_dt": "20991231235959", "return_code": 0}
        )

    async def acnt(request: web.Request) -> web.Response:
        state["calls"] += 1
        body = await request.json()
        h = request.headers
        seen.append(
            {
                "api": h.get("api-id"),
                "auth": h.get("authorization"),
                "cont": h.get("cont-yn"),
                "key": h.get("next-key"),
                "body": body,
            }
        )
        if state["calls"] == 1:
            return web.json_response({}, status=429)
        if h.get("authorization") == "Bearer T1":
            return web.json_response(
                {
                    "return_code": 3,
                    "return_msg": "인증에 실패했습니다[8005:Token이 유효하지 않습니다]",
                }
            )
        page = int(h.get("next-key") or "0")
        rows = [{"ord_no": f"{page * 2 + i + 1:07d}"} for i in range(2)]
        more = page < 2
        headers = {"cont-yn": "Y" if more else "N", "next-key": str(page + 1) if more else ""}
        return web.json_response(
            {"acnt_ord_cntr_prst_array": rows, "return_code": 0}, headers=headers
        )

    app = web.Application()
    app.router.add_post("/oauth2/token", token)
    app.router.add_post("/api/dostk/acnt", acnt)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server, seen
    finally:
        await server.close()


async def test_kiwoom_client_pages_retries_and_renews(
    stub: tuple[TestServer, list[dict[str, Any]]],
) -> None:
    server, seen = stub
    url = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        tok = KiwoomToken(http, url, "app", "secret")
        api = KiwoomAccountAPI(http, url, tok, RateLimiter(1000.0))
        rows = await api.order_status(from_order_no="0000001")
    assert [r["ord_no"] for r in rows] == [f"{i:07d}" for i in range(1, 7)]
    # 429 → retried; 8005 → a new token, retried; then three pages with cont-yn/next-key
    assert [s["auth"] for s in seen] == ["Bearer T1", "Bearer T1"] + ["Bearer T2"] * 3
    assert [(s["cont"], s["key"]) for s in seen[2:]] == [(None, None), ("Y", "1"), ("Y", "2")]
    assert {s["api"] for s in seen} == {"kt00009"}
    assert seen[-1]["body"]["fr_ord_no"] == "0000001"
    assert seen[-1]["body"]["dmst_stex_tp"] == "%"


async def test_kiwoom_client_error_is_a_reconcile_error() -> None:
    async def acnt(request: web.Request) -> web.Response:
        return web.json_response({"return_code": 2, "return_msg": "[1511] 필수 입력 값"})

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"token": "T", "expires_dt": "20991231235959", "return_code": 0})

    app = web.Application()
    app.router.add_post("/oauth2/token", token)
    app.router.add_post("/api/dostk/acnt", acnt)
    server = TestServer(app)
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as http:
            api = KiwoomAccountAPI(http, url, KiwoomToken(http, url, "a", "s"), RateLimiter(0))
            with pytest.raises(ReconcileError, match="return_code 2"):
                await asyncio.wait_for(api.unfilled(), 5)
    finally:
        await server.close()


def test_compare_after_a_drop_applies_fills_but_defers_inferred_cancellations() -> None:
    t = OrderTracker()
    t.apply(accepted("0000012345"))
    row = kis_row(rmn_qty="0")  # 4 filled, the other 6 no longer open: cancelled?
    res = compare(snapshot(row), t, t.seq, infer_cancels=False)
    assert [(o.kind, o.fill_qty) for o in res.outputs if isinstance(o, OrderEvent)] == [
        ("filled", 3 + 1)
    ]
    assert res.deferred == ["0000012345"]
    res = compare(snapshot(row), t, t.seq)  # a round without a drop
    assert [o.kind for o in res.outputs if isinstance(o, OrderEvent)] == ["cancelled"]
    s = t.get("kis", "0000012345")
    assert s is not None and (s.status, s.cancelled_qty) == ("cancelled", 6)


# ---- accounts: (broker, account), never an app key alone ----


def test_options_give_each_session_only_an_account_of_its_broker() -> None:
    from krfeed.orders import ReconcileOptions

    # --sim mode: both brokers' credentials are "sim-app-1"
    opts = ReconcileOptions(
        accounts={
            ("kiwoom", "sim-app-1"): AccountRef("kiwoom", "5014465811"),
            ("kis", "sim-app-1"): "58628812-01",
        }
    )
    assert opts.account_for("kiwoom", "kiwoom#1", "sim-app-1") == AccountRef("kiwoom", "5014465811")
    assert opts.account_for("kis", "kis#1", "sim-app-1") == AccountRef("kis", "5862881201")
    # a session-name key holding another broker's account is never used
    other = ReconcileOptions(accounts={"kiwoom#1": AccountRef("kis", "5862881201")})
    assert other.account_for("kiwoom", "kiwoom#1", "sim-app-1") is None
    assert ReconcileOptions(accounts={"kis": "5862881201"}).account_for("kis", "x", "k") == (
        AccountRef("kis", "5862881201")
    )
    with pytest.raises(ValueError, match="needs its broker"):
        ReconcileOptions(accounts={"kiwoom#1": "5014465811"})
    with pytest.raises(ValueError, match="not a kiwoom account"):
        ReconcileOptions(accounts={"kiwoom": AccountRef("kis", "5862881201")})
    with pytest.raises(ValueError, match="KIS account is CANO"):
        ReconcileOptions(accounts={"kis": "123"})


def test_compare_refuses_an_account_of_another_broker() -> None:
    t = OrderTracker()
    snap = Snapshot("kis", None, kis_snapshot([kis_row()], account="5012345601"))
    with pytest.raises(ValueError, match="cannot be compared with a kis inquiry"):
        compare(snap, t, t.seq, AccountRef("kiwoom", "5012345601"))
