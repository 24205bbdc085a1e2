"""Orders under chaos, as a new user runs ``krfeed orders --sim URL``: both brokers with the same
app key string (the default key 1), accounts resolved the way the command does (``/_sim/accounts``),
auto-orders all along, 20 forced cuts: 13 drops and 7 long cuts (4 half-open sockets, noticed
by the heartbeat watchdog; 3 outages, the WebSocket service refusing handshakes for a while)
during which orders are placed at the simulator's REST endpoints. Then
krfeed's final view is compared order by order with the simulator's book read over the brokers'
own inquiry APIs (Kiwoom kt00009 + ka10075, KIS inquire-daily-ccld), and with its fills."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

import aiohttp

from krfeed import (
    KIS,
    Disconnected,
    Feed,
    Kiwoom,
    Reconnecting,
    SessionOptions,
    Subscribed,
    SubState,
)
from krfeed.brokers import sim_appkey, sim_secret
from krfeed.orders import (
    AccountRef,
    OrderAnomaly,
    OrderEvent,
    OrderStream,
    ReconcileOptions,
    ReconcileReport,
)
from krfeed.orders.accounts import sim_accounts
from krfeed.orders.model import order_no_of
from krfeed.sim import SimConfig, Simulator
from krfeed.sim.orders import OrderError

from .helpers import FAST, wait_for

KEY = sim_appkey(1)  # both brokers, as in --sim mode
OPTS = SessionOptions(**{**FAST.__dict__, "idle_timeout": 30.0, "idle_floor": 1.0})
KIWOOM_ORDER = "/api/dostk/ordr"
KIWOOM_ACNT = "/api/dostk/acnt"
KIS_TRADING = "/uapi/domestic-stock/v1/trading"
CUTS = 20
#: the long cuts (7 of the 20) and what they are
LONG = {1: "half_open", 4: "outage", 7: "half_open", 10: "outage", 13: "half_open"}
LONG |= {16: "outage", 19: "half_open"}


class Broker:
    """The test's own REST client of the simulator: orders and inquiries, paged."""

    def __init__(self, http: aiohttp.ClientSession, sim: Simulator) -> None:
        self.http = http
        self.sim = sim
        self.kiwoom_token = sim.kiwoom_token(KEY)
        self.kis_token = sim.kis_access_token(KEY)
        self.cano = sim.account("kis", KEY)

    def _kis_headers(self, tr_id: str, **extra: str) -> dict[str, str]:
        return {
            "authorization": f"Bearer {self.kis_token}",
            "appkey": KEY,
            "appsecret": sim_secret(1),
            "tr_id": tr_id,
            "custtype": "P",
            **extra,
        }

    async def _kiwoom(
        self, path: str, api_id: str, body: dict[str, Any], next_key: str | None = None
    ) -> tuple[dict[str, Any], str | None]:
        h = {"api-id": api_id, "authorization": f"Bearer {self.kiwoom_token}"}
        if next_key is not None:
            h |= {"cont-yn": "Y", "next-key": next_key}
        async with self.http.post(self.sim.url + path, json=body, headers=h) as r:
            assert r.status == 200
            data: dict[str, Any] = await r.json()
            more = r.headers.get("cont-yn") == "Y" and r.headers.get("next-key")
            return data, (r.headers["next-key"] if more else None)

    async def kiwoom_buy(self, qty: int) -> str:
        body = {
            "dmst_stex_tp": "KRX",
            "stk_cd": "005930",
            "ord_qty": str(qty),
            "ord_uv": "",
            "trde_tp": "3",  # market
            "cond_uv": "",
        }
        data, _ = await self._kiwoom(KIWOOM_ORDER, "kt10000", body)
        assert data["return_code"] == 0, data
        return str(data["ord_no"])

    async def kis_buy(self, qty: int) -> str:
        body = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": "01",
            "PDNO": "000660",
            "ORD_DVSN": "01",  # market
            "ORD_QTY": str(qty),
            "ORD_UNPR": "0",
            "EXCG_ID_DVSN_CD": "KRX",
        }
        url = f"{self.sim.url}{KIS_TRADING}/order-cash"
        async with self.http.post(url, json=body, headers=self._kis_headers("TTTC0012U")) as r:
            data = await r.json()
        assert data["rt_cd"] == "0", data
        return str(data["output"]["ODNO"])

    async def kiwoom_rows(self, api_id: str, body: dict[str, Any], key: str) -> list[Any]:
        rows: list[Any] = []
        nxt: str | None = None
        while True:
            data, nxt = await self._kiwoom(KIWOOM_ACNT, api_id, body, nxt)
            assert data["return_code"] == 0, data
            rows.extend(data.get(key) or [])
            if nxt is None:
                return rows

    async def kiwoom_book(self) -> dict[str, dict[str, Any]]:
        """Every order of the day: kt00009 (all orders), ka10075 (open ones, and the account)."""
        status = await self.kiwoom_rows(
            "kt00009",
            {
                "ord_dt": "",
                "stk_bond_tp": "0",
                "mrkt_tp": "0",
                "sell_tp": "0",
                "qry_tp": "0",
                "stk_cd": "",
                "fr_ord_no": "",
                "dmst_stex_tp": "%",
            },
            "acnt_ord_cntr_prst_array",
        )
        opens = await self.kiwoom_rows(
            "ka10075",
            {"all_stk_tp": "0", "trde_tp": "0", "stk_cd": "", "stex_tp": "0"},
            "oso",
        )
        open_qty = {r["ord_no"]: int(r["oso_qty"]) for r in opens}
        out: dict[str, dict[str, Any]] = {}
        for r in status:
            qty, filled = int(r["ord_qty"]), int(r["cntr_qty"])
            kind = r["mdfy_cncl_tp"]
            if r["acpt_tp"] == "거부":
                st = "rejected"
            elif kind == "취소":
                st = "confirmed" if int(r["cnfm_qty"]) else "pending"
            elif open_qty.get(r["ord_no"]):
                st = "partially_filled" if filled else "open"
            else:
                st = "filled" if filled == qty else "cancelled"
            out[r["ord_no"]] = {
                "filled": 0 if kind == "취소" else filled,
                "avg": int(r["cntr_uv"]) if filled else 0,
                "status": st,
            }
        return out

    async def kis_book(self) -> dict[str, dict[str, Any]]:
        """Every order of the day from inquire-daily-ccld (CTX_AREA paging)."""
        params = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": "01",
            "INQR_STRT_DT": "",
            "INQR_END_DT": "",
            "SLL_BUY_DVSN_CD": "00",
            "INQR_DVSN": "00",
            "PDNO": "",
            "CCLD_DVSN": "00",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
        }
        headers = self._kis_headers("TTTC0081R")
        rows: list[dict[str, Any]] = []
        while True:
            url = f"{self.sim.url}{KIS_TRADING}/inquire-daily-ccld"
            async with self.http.get(url, params=params, headers=headers) as r:
                data = await r.json()
                cont = r.headers["tr_cont"]
            assert data["rt_cd"] == "0", data
            rows.extend(data["output1"])
            if cont != "M":
                break
            headers = self._kis_headers("TTTC0081R", tr_cont="N")
            params |= {
                "CTX_AREA_FK100": data["ctx_area_fk100"],
                "CTX_AREA_NK100": data["ctx_area_nk100"],
            }
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            qty, filled = int(r["ord_qty"]), int(r["tot_ccld_qty"])
            cancel = r["cncl_yn"] == "Y"
            if int(r["rjct_qty"]):
                st = "rejected"
            elif cancel:
                confirmed = int(r.get("cncl_cfrm_qty", r.get("cnc_cfrm_qty", "0")) or 0)
                st = "confirmed" if confirmed else "pending"
            elif int(r["rmn_qty"]):
                st = "partially_filled" if filled else "open"
            else:
                st = "filled" if filled == qty else "cancelled"
            out[r["odno"]] = {
                "filled": filled,
                "avg": int(r["tot_ccld_amt"]) // filled if filled else 0,
                "status": st,
            }
        return out


def both_up(sim: Simulator, feed: Feed) -> bool:
    """Both sessions subscribed again, on connections the simulator still serves."""
    served = {c.broker for c in sim.conns.values() if not c.closed}
    confirmed = all(s.state is SubState.CONFIRMED for s in feed.subscription_states())
    return served == {"kiwoom", "kis"} and confirmed


async def test_orders_under_chaos_end_equal_to_the_brokers_inquiries() -> None:
    cfg = SimConfig(port=0, seed=41, rate=5.0, ping_interval=0.5, auto_orders=15.0, page_size=6)
    async with Simulator(cfg) as sim, aiohttp.ClientSession() as http:
        feed = Feed(Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 1, hts_id="simuser"), options=OPTS)
        await feed.start()
        accounts = await sim_accounts(feed, sim.url)  # what `krfeed orders --sim` does
        stream = OrderStream(
            feed,
            passthrough=True,  # as the command: control events come through too
            options=ReconcileOptions(
                settle=0.05, retry_delay=0.1, kiwoom_rate=500.0, kis_rate=500.0, accounts=accounts
            ),
        )
        items: list[Any] = []

        async def consume() -> None:
            async for item in stream:
                items.append(item)

        task = asyncio.create_task(consume())
        broker = Broker(http, sim)
        placed: dict[str, list[str]] = defaultdict(list)
        try:
            await feed.subscribe(Kiwoom.ORDER_EXECUTION)
            await feed.subscribe(KIS.EXECUTION_NOTICE)
            await wait_for(lambda: sum(isinstance(i, ReconcileReport) for i in items) >= 2, 15)
            await wait_for(
                lambda: all(s.stats.heartbeat_interval is not None for s in feed.sessions), 15
            )
            for cut in range(CUTS):
                if cut in LONG:
                    # a long cut: both sockets half-open, or the WebSocket service down for a
                    # while; orders go in while krfeed hears nothing
                    await asyncio.sleep(0.3)
                    await wait_for(lambda: both_up(sim, feed))
                    mark = len(items)
                    if LONG[cut] == "half_open":
                        sim.fault("half_open", seconds=20.0)
                    else:
                        sim.fault("outage", seconds=2.0)
                    for qty in (3, 5):
                        placed["kiwoom"].append(await broker.kiwoom_buy(qty))
                        placed["kis"].append(await broker.kis_buy(qty))

                    def back(mark: int = mark) -> bool:
                        new = items[mark:]
                        downs = {i.session for i in new if isinstance(i, Disconnected)}
                        ups = {i.session for i in new if isinstance(i, Subscribed)}
                        return len(downs) == 2 and len(ups) == 2

                    await wait_for(back, 19)
                else:
                    await asyncio.sleep(0.3)
                    sim.fault("drop", broker="kiwoom" if cut % 2 else "kis")
            # stop trading, cancel what is open, let the simulator finish, reconcile
            assert sim.auto is not None
            sim.auto.eligible = list
            await asyncio.sleep(0.2)
            for b in ("kiwoom", "kis"):
                for o in sim.order_book(b, KEY):
                    if o["kind"] != "cancel" and o["remaining"] > 0:
                        with contextlib.suppress(OrderError):
                            sim.engine.cancel(b, KEY, o["order_no"])

            def quiet() -> bool:
                return all(
                    (o["kind"] == "cancel" or o["remaining"] == 0)
                    and (o["kind"] == "new" or o["status"] != "접수")
                    for b in ("kiwoom", "kis")
                    for o in sim.order_book(b, KEY)
                )

            await wait_for(quiet, 15)
            await asyncio.sleep(0.2)
            for _ in range(3):
                reps = await stream.reconcile(timeout=30)
                if all(r.ok and not r.deferred and not r.partial for r in reps):
                    break
            await asyncio.sleep(0.05)
            inquired = {"kiwoom": await broker.kiwoom_book(), "kis": await broker.kis_book()}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await stream.close()
            await feed.close()

        tracker = stream.tracker
        real = {
            "kiwoom": AccountRef("kiwoom", sim.account("kiwoom", KEY)),
            "kis": AccountRef("kis", sim.account("kis", KEY) + "01"),
        }
        books = {b: {o["order_no"]: o for o in sim.order_book(b, KEY)} for b in real}
        kis_of_same_key = sim.account("kis", KEY) + "01"
        assert real["kiwoom"].number != kis_of_same_key  # the two accounts differ

    anomalies = [i for i in items if isinstance(i, OrderAnomaly)]
    assert anomalies == [], anomalies[:3]
    problems: list[str] = []
    checked = 0
    for b, ref in real.items():
        emitted: dict[str, list[OrderEvent]] = defaultdict(list)
        for i in items:
            if isinstance(i, OrderEvent) and i.broker == b:
                emitted[i.order_no].append(i)
        mine = tracker.orders(b)
        # no order under an account the simulator does not have
        assert {s.account_ref for s in mine} == {ref}, {s.account for s in mine}
        assert {s.order_no for s in mine} == set(inquired[b]) == set(books[b])
        for no, want in sorted(inquired[b].items()):
            st = tracker.get(b, no, ref)
            assert st is not None, no
            got = {
                "filled": st.filled_qty,
                "avg": st.filled_amount // st.filled_qty if st.filled_qty else 0,
                "status": st.status,
            }
            if got != want:
                problems.append(f"{b} {no}: krfeed {got} != inquiry {want}")
            fills = [e for e in emitted[no] if e.kind == "filled"]
            if sum(e.fill_qty or 0 for e in fills) != st.filled_qty:
                problems.append(f"{b} {no}: fill events {[e.fill_qty for e in fills]}")
            if len(fills) != len(st.fills) or len(st.fills) > len(books[b][no]["fills"]):
                problems.append(f"{b} {no}: {len(st.fills)} fills held, {len(fills)} emitted")
            if st.remaining_qty != books[b][no]["remaining"]:
                problems.append(f"{b} {no}: remaining {st.remaining_qty}")
            checked += 1
        # what was placed while krfeed was cut off is there, with its fills
        for no in placed[b]:
            padded = order_no_of(b, no)
            assert padded is not None
            st = tracker.get(b, padded, ref)
            assert st is not None and st.filled_qty == books[b][padded]["filled"] > 0, no
    assert problems == [], "\n".join(problems[:10])
    assert checked >= 150  # about 270 orders of both brokers in a run
    reports = [i for i in items if isinstance(i, ReconcileReport)]
    assert all(r.ok for r in reports), [r.error for r in reports if not r.ok]
    assert sum(r.fills for r in reports if r.trigger == "reconnect") > 0  # missed, recovered
    half_open = [i for i in items if isinstance(i, Disconnected) and "half-open" in i.reason]
    # every half-open cut noticed by the heartbeat watchdog
    assert len(half_open) == 2 * sum(1 for k in LONG.values() if k == "half_open")
    assert sim.stats()["faults"] == {"drop": CUTS - len(LONG), "half_open": 4, "outage": 3}
    # through the outages only the socket was retried (the cached credentials stayed valid)
    refused = [i for i in items if isinstance(i, Reconnecting) and "503" in i.reason]
    assert refused and {r.path for r in refused} == {"socket"}


async def test_kiwoom_account_comes_from_ka10075_and_a_wrong_one_is_reported() -> None:
    cfg = SimConfig(port=0, seed=42, rate=5.0, ping_interval=0.5, page_size=4)
    async with Simulator(cfg) as sim:
        inst = sim.market.instrument("005930")
        # a resting order: ka10075 lists it, with the account number
        await sim.place_order("kiwoom", code="005930", qty=2, price=inst.lower, appkey=KEY)
        real = AccountRef("kiwoom", sim.account("kiwoom", KEY))
        wrong = AccountRef("kiwoom", sim.account("kis", KEY) + "01")
        for configured in (None, wrong):
            accounts = {} if configured is None else {("kiwoom", KEY): configured}
            async with Feed(Kiwoom.sim(sim.url, 1), options=OPTS) as feed:
                stream = OrderStream(feed, options=ReconcileOptions(settle=0.05, accounts=accounts))
                await feed.subscribe(Kiwoom.ORDER_EXECUTION)
                items: list[Any] = []

                async def consume(s: OrderStream = stream, out: list[Any] = items) -> None:
                    async for item in s:
                        out.append(item)

                task = asyncio.create_task(consume())
                try:
                    await wait_for(lambda o=items: any(isinstance(i, ReconcileReport) for i in o))
                finally:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    await stream.close()
            assert stream.stats()["sessions"]["kiwoom#1"]["account"] == real.number
            assert [s.account_ref for s in stream.tracker.orders()] == [real]
            problems = [i for i in items if isinstance(i, OrderAnomaly)]
            if configured is None:
                assert problems == []
            else:
                (p,) = problems
                assert p.problem == "account_mismatch" and p.account == real.number
                assert f"configured for account {wrong}" in p.message and str(real) in p.message
