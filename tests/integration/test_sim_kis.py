"""The simulator's KIS side, driven by a plain aiohttp client through the real sequences."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import krfeed
from krfeed.brokers import sim_appkey, sim_secret
from krfeed.protocol.kis import AesKey
from krfeed.protocol.messages import DecodeError
from krfeed.schema.catalog import get_type
from krfeed.schema.enums import MarketSession, NoticeKind, Side
from krfeed.sim import DEFAULT_CREDENTIALS, SimConfig, Simulator
from krfeed.sim.market import floor_tick, on_grid

ORDER = "/uapi/domestic-stock/v1/trading/order-cash"
CCLD = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(rate=40, page_size=3, fill_delay=0.02)) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def approval(http: aiohttp.ClientSession, sim: Simulator, appkey: str = sim_appkey(1)) -> str:
    body = {
        "grant_type": "client_credentials",
        "appkey": appkey,
        "secretkey": sim.credentials[appkey],
    }
    async with http.post(f"{sim.url}/oauth2/Approval", json=body) as r:
        assert r.status == 200
        key: str = (await r.json())["approval_key"]
        return key


async def access_token(
    http: aiohttp.ClientSession, sim: Simulator, appkey: str = sim_appkey(1)
) -> str:
    body = {
        "grant_type": "client_credentials",
        "appkey": appkey,
        "appsecret": sim.credentials[appkey],
    }
    async with http.post(f"{sim.url}/oauth2/tokenP", json=body) as r:
        assert r.status == 200
        data = await r.json()
        assert data["token_type"] == "Bearer" and data["expires_in"] == 86400
        assert len(data["access_token_token_expired"]) == 19
        tok: str = data["access_token"]
        return tok


def sub_frame(key: str, tr_id: str, tr_key: str, tr_type: str = "1") -> str:
    return json.dumps(
        {
            "header": {
                "approval_key": key,
                "custtype": "P",
                "tr_type": tr_type,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        }
    )


async def recv_text(ws: Any, timeout: float = 5.0, *, echo: bool = True) -> str:
    """The next text frame that is not PINGPONG (PINGPONG is echoed unless echo=False)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        if msg.data.startswith("{") and '"PINGPONG"' in msg.data:
            if echo:
                await ws.send_str(msg.data)
            continue
        text: str = msg.data
        return text


async def control(ws: Any) -> dict[str, Any]:
    """The next control (JSON) frame, skipping data frames."""
    while True:
        text = await recv_text(ws)
        if text.startswith("{"):
            reply: dict[str, Any] = json.loads(text)
            return reply


async def subscribe(
    ws: Any, key: str, tr_id: str, tr_key: str, tr_type: str = "1"
) -> dict[str, Any]:
    await ws.send_str(sub_frame(key, tr_id, tr_key, tr_type))
    return await control(ws)


async def data_frames(ws: Any, tr_id: str, n: int, timeout: float = 10.0) -> list[str]:
    out: list[str] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(out) < n:
        text = await recv_text(ws, max(0.01, end - loop.time()))
        if text.split("|", 2)[1:2] == [tr_id]:
            out.append(text)
    return out


def rest_headers(
    token: str, tr_id: str, appkey: str = sim_appkey(1), **extra: str
) -> dict[str, str]:
    return {
        "authorization": f"Bearer {token}",
        "appkey": appkey,
        "appsecret": DEFAULT_CREDENTIALS[appkey],
        "tr_id": tr_id,
        "custtype": "P",
        **extra,
    }


def order_body(code: str, qty: int, price: int = 0, dvsn: str = "01") -> dict[str, str]:
    return {
        "CANO": "12345678",
        "ACNT_PRDT_CD": "01",
        "PDNO": code,
        "ORD_DVSN": dvsn,
        "ORD_QTY": str(qty),
        "ORD_UNPR": str(price),
        "EXCG_ID_DVSN_CD": "KRX",
    }


# ---- approval key and token ----


async def test_approval_and_token(sim: Simulator, http: aiohttp.ClientSession) -> None:
    key = await approval(http, sim)
    assert len(key) == 36 and key.count("-") == 4
    await access_token(http, sim)
    bad = {"grant_type": "client_credentials", "appkey": "nobody", "secretkey": "x"}
    async with http.post(f"{sim.url}/oauth2/Approval", json=bad) as r:
        assert r.status == 403
        assert (await r.json())["error_code"] == "EGW00103"
    # the approval call takes "secretkey"; "appsecret" (the tokenP field) is not accepted there
    wrong_field = {
        "grant_type": "client_credentials",
        "appkey": sim_appkey(1),
        "appsecret": sim_secret(1),
    }
    async with http.post(f"{sim.url}/oauth2/Approval", json=wrong_field) as r:
        assert r.status == 403 and (await r.json())["error_code"] == "EGW00105"
    other = {
        "grant_type": "client_credentials",
        "appkey": sim_appkey(1),
        "secretkey": sim_secret(1),
    }
    async with http.post(f"{sim.url}/oauth2/tokenP", json=other) as r:
        assert r.status == 403 and (await r.json())["error_code"] == "EGW00105"


# ---- market data ----


async def test_program_trading_frames(sim: Simulator, http: aiohttp.ClientSession) -> None:
    key = await approval(http, sim)
    ws = await http.ws_connect(sim.kis_ws_url)
    reply = await subscribe(ws, key, "H0STPGM0", "005930")
    assert reply["header"] == {"tr_id": "H0STPGM0", "tr_key": "005930", "encrypt": "N"}
    body = reply["body"]
    assert (body["rt_cd"], body["msg_cd"], body["msg1"]) == ("0", "OPSP0000", "SUBSCRIBE SUCCESS")
    assert len(body["output"]["iv"]) == 16 and len(body["output"]["key"]) == 32
    frames = await data_frames(ws, "H0STPGM0", 12)
    width = len(get_type("kis", "H0STPGM0").fields)
    assert width == 11
    counts = []
    last = None
    for text in frames:
        enc, tr, nnn, payload = text.split("|", 3)
        assert (enc, tr) == ("0", "H0STPGM0") and len(nnn) == 3
        assert len(payload.split("^")) == int(nnn) * width
        counts.append(int(nnn))
        recs = krfeed.decode("kis", text)
        assert len(recs) == int(nnn)
        for r in recs:
            assert not isinstance(r, DecodeError), r
            assert r.item == "005930" and r.code == "005930"
            assert r.net_buy_qty == r.buy_qty - r.sell_qty
            assert r.net_buy_value == r.buy_value - r.sell_value
            assert r.total_net_bid_residual_qty == r.bid_residual_qty - r.ask_residual_qty
            if last is not None:  # cumulative over the day
                assert r.sell_qty >= last.sell_qty and r.buy_qty >= last.buy_qty
                assert r.sell_value >= last.sell_value and r.buy_value >= last.buy_value
            last = r
    assert max(counts) > 1  # several records due at once go out as one frame
    await ws.close()


async def test_trade_and_book_frames(sim: Simulator, http: aiohttp.ClientSession) -> None:
    key = await approval(http, sim)
    ws = await http.ws_connect(sim.url.replace("http", "ws") + "/")  # "/" works as well
    for tr in ("H0STCNT0", "H0STASP0"):
        assert (await subscribe(ws, key, tr, "000660"))["body"]["msg_cd"] == "OPSP0000"
    trades = await data_frames(ws, "H0STCNT0", 5)
    books = await data_frames(ws, "H0STASP0", 5)
    for text in trades:
        _, _, nnn, payload = text.split("|", 3)
        assert len(payload.split("^")) == int(nnn) * 47  # today's layout: + MARKET_CLS_CODE
        for r in krfeed.decode("kis", text):
            assert r.market_class is MarketSession.REGULAR and r.extra == ()
            assert on_grid(r.current_price) and on_grid(r.ask_price_1) and on_grid(r.bid_price_1)
            assert r.change == r.current_price - 178000
            assert r.low_price <= r.current_price <= r.high_price
            assert r.ask_price_1 > r.bid_price_1
    for text in books:
        _, _, nnn, payload = text.split("|", 3)
        assert len(payload.split("^")) == int(nnn) * 63  # + KRX mid price (3), MARKET_CLS_CODE
        for r in krfeed.decode("kis", text):
            assert r.market_class is MarketSession.REGULAR and r.extra == ()
            mid = floor_tick((r.ask_price_1 + r.bid_price_1) // 2)
            assert r.krx_mid_price == mid and on_grid(mid)
            assert r.bid_price_1 <= mid < r.ask_price_1
            assert r.krx_mid_total_qty == r.ask_qty_1 // 10 + r.bid_qty_1 // 10
            assert r.krx_mid_side_code == ("1" if r.ask_qty_1 // 10 > r.bid_qty_1 // 10 else "2")
            asks = [getattr(r, f"ask_price_{i}") for i in range(1, 11)]
            bids = [getattr(r, f"bid_price_{i}") for i in range(1, 11)]
            assert asks == sorted(asks) and bids == sorted(bids, reverse=True)
            assert all(on_grid(p) for p in asks + bids)
            assert r.total_ask_qty == sum(getattr(r, f"ask_qty_{i}") for i in range(1, 11))
    await ws.close()


async def test_control_replies(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimConfig(rate=0.5)) as s:
        key = await approval(http, s)
        ws = await http.ws_connect(s.kis_ws_url)

        async def code_of(*args: str) -> tuple[str, str, str]:
            r = await subscribe(ws, key, *args)
            return r["body"]["rt_cd"], r["body"]["msg_cd"], r["body"]["msg1"]

        assert await code_of("H0STCNT0", "005930") == ("0", "OPSP0000", "SUBSCRIBE SUCCESS")
        assert await code_of("H0STCNT0", "005930") == ("1", "OPSP0002", "ALREADY IN SUBSCRIBE")
        assert (await code_of("H0STCNT0", "005930", "2"))[:2] == ("0", "OPSP0001")
        assert (await code_of("H0STCNT0", "005930", "2"))[:2] == ("1", "OPSP0003")
        assert (await code_of("H0XXXXX0", "005930"))[1] == "OPSP8991"
        assert (await code_of("H0STCNT0", "59"))[1] == "OPSP8992"
        assert (await code_of("H0STCNT0", "005930", "3"))[1] == "OPSP8997"
        bad_key = await subscribe(ws, "00000000-0000-0000-0000-000000000000", "H0STCNT0", "005930")
        assert bad_key["body"]["msg_cd"] == "OPSP0011" and bad_key["body"]["rt_cd"] == "1"
        await ws.send_str("{not json")
        bad_json = await control(ws)
        assert bad_json["body"]["msg_cd"] == "OPSP9999"
        # 41 registrations per appkey; the 42nd is refused
        for i in range(41):
            assert (await code_of("H0STCNT0", f"{100000 + i:06d}"))[1] == "OPSP0000"
        assert await code_of("H0STCNT0", "200000") == ("1", "OPSP0008", "MAX SUBSCRIBE OVER")
        assert s.stats()["subscriptions"]["kis"] == 41
        # a second session on the same appkey
        other = await http.ws_connect(s.kis_ws_url)
        second = await subscribe(other, await approval(http, s), "H0STASP0", "005930")
        assert second["header"]["tr_id"] == "(null)"
        assert (second["body"]["rt_cd"], second["body"]["msg_cd"]) == ("1", "OPSP8996")
        # each reply decodes with krfeed's codec
        [decoded] = krfeed.decode("kis", json.dumps(second))
        assert decoded.msg_cd == "OPSP8996"  # type: ignore[union-attr]
        await other.close()
        await ws.close()


async def test_pingpong(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimConfig(rate=0, ping_interval=0.2)) as s:
        text_echo = await http.ws_connect(s.kis_ws_url)
        pong_echo = await http.ws_connect(s.kis_ws_url)
        silent = await http.ws_connect(s.kis_ws_url)

        async def answer(ws: Any, with_pong: bool) -> int:
            n = 0
            while n < 8:
                msg = await asyncio.wait_for(ws.receive(), 5)
                assert msg.type == aiohttp.WSMsgType.TEXT
                frame = json.loads(msg.data)
                assert frame["header"]["tr_id"] == "PINGPONG"
                assert len(frame["header"]["datetime"]) == 14
                if with_pong:  # what KIS's official sample does
                    await ws.pong(msg.data.encode())
                else:
                    await ws.send_str(msg.data)
                n += 1
            return n

        async def ignore(ws: Any) -> aiohttp.WSMessage:
            while True:
                msg = await asyncio.wait_for(ws.receive(), 5)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return msg

        a, b, closed = await asyncio.gather(
            answer(text_echo, False), answer(pong_echo, True), ignore(silent)
        )
        assert a == b == 8
        assert closed.type == aiohttp.WSMsgType.CLOSE
        assert s.stats()["ping_timeouts"]["kis"] == 1
        for ws in (text_echo, pong_echo, silent):
            await ws.close()


# ---- orders and notices ----


async def notices(
    ws: Any, aes: AesKey, order_no: str, done: Any, timeout: float = 10.0
) -> list[list[str]]:
    """Decrypted H0STCNI0 field lists of one order until done(list) is true."""
    out: list[list[str]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not done(out):
        text = await recv_text(ws, max(0.01, end - loop.time()))
        if text.startswith("{"):
            continue
        enc, tr, nnn, payload = text.split("|", 3)
        assert (enc, tr, nnn) == ("1", "H0STCNI0", "001")
        fields = aes.decrypt(payload).split("^")
        assert len(fields) == 26
        if fields[2] == order_no:
            out.append(fields)
    return out


async def test_order_cash_notices_and_daily_ccld(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    key = await approval(http, sim)
    token = await access_token(http, sim)
    ws = await http.ws_connect(sim.kis_ws_url)
    reply = await subscribe(ws, key, "H0STCNI0", "HTSUSER1")
    assert reply["body"]["msg_cd"] == "OPSP0000"
    out = reply["body"]["output"]
    aes = AesKey(out["key"], out["iv"])
    async with http.post(
        f"{sim.url}{ORDER}", json=order_body("005930", 6), headers=rest_headers(token, "TTTC0012U")
    ) as r:
        resp = await r.json()
    assert (resp["rt_cd"], resp["msg_cd"]) == ("0", "APBK0013")
    no = resp["output"]["ODNO"]
    assert len(no) == 10 and len(resp["output"]["ORD_TMD"]) == 6

    def complete(fs: list[list[str]]) -> bool:
        return sum(int(f[9]) for f in fs if f[13] == "2") == 6

    fields = await notices(ws, aes, no, complete)
    ack, fills = fields[0], fields[1:]
    names = [f.wire for f in get_type("kis", "H0STCNI0").fields]
    a = dict(zip(names, ack, strict=True))
    assert a["CNTG_YN"] == "1" and a["RFUS_YN"] == "0" and a["ACPT_YN"] == "1"
    assert a["CUST_ID"] == "HTSUSER1" and a["ODER_QTY"] == "6" and a["SELN_BYOV_CLS"] == "02"
    assert a["ACNT_NO"] == "1234567801" and a["STCK_SHRN_ISCD"] == "005930"
    assert len(fills) >= 2 and all(f[13] == "2" for f in fills)
    assert all(on_grid(int(f[10])) for f in fills)
    # krfeed's decoder reads the same frames with the key/iv of the reply
    events = sim.account_events("kis")
    assert [e["wire"] for e in events if e["order_no"] == no] == fields
    assert [e["status"] for e in events if e["order_no"] == no] == ["ack"] + ["fill"] * len(fills)
    assert all(e["type"] == "H0STCNI0" for e in events)

    # a sell, and a decoded view of one notice through krfeed.decode with key/iv
    async with http.post(
        f"{sim.url}{ORDER}", json=order_body("000660", 3), headers=rest_headers(token, "TTTC0011U")
    ) as r:
        sell_no = (await r.json())["output"]["ODNO"]
    raw = None
    while raw is None:
        text = await recv_text(ws)
        if text.startswith("1|") and aes.decrypt(text.split("|", 3)[3]).split("^")[2] == sell_no:
            raw = text
    [rec] = krfeed.decode("kis", raw, key=out["key"], iv=out["iv"])
    assert rec.order_no == sell_no and rec.side is Side.SELL  # type: ignore[union-attr]
    assert rec.notice_kind is NoticeKind.ACK and rec.customer_id == "HTSUSER1"  # type: ignore[union-attr]

    # more orders, then the daily inquiry agrees and pages (3 rows per page)
    for i in range(5):
        async with http.post(
            f"{sim.url}{ORDER}",
            json=order_body("035420", 2 + i),
            headers=rest_headers(token, "TTTC0012U"),
        ) as r:
            assert (await r.json())["rt_cd"] == "0"
    for _ in range(200):
        if all(o["remaining"] == 0 for o in sim.order_book("kis")):
            break
        await asyncio.sleep(0.05)
    rows: list[dict[str, str]] = []
    headers = rest_headers(token, "TTTC0081R")
    params = {
        "CANO": "12345678",
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
    pages = 0
    while True:
        async with http.get(f"{sim.url}{CCLD}", params=params, headers=headers) as r:
            assert r.status == 200
            data = await r.json()
            cont = r.headers["tr_cont"]
        pages += 1
        assert data["rt_cd"] == "0" and len(data["output1"]) <= 3
        rows.extend(data["output1"])
        if cont == "D":
            assert data["ctx_area_nk100"] == ""
            break
        assert cont == "M"
        headers = rest_headers(token, "TTTC0081R", tr_cont="N")
        params = {
            **params,
            "CTX_AREA_FK100": data["ctx_area_fk100"],
            "CTX_AREA_NK100": data["ctx_area_nk100"],
        }
    assert pages == 3
    book = sim.order_book("kis")
    assert [r["odno"] for r in rows] == [o["order_no"] for o in reversed(book)]
    filled_by_notices: dict[str, int] = {}
    for e in sim.account_events("kis"):
        if e["status"] == "fill":
            filled_by_notices[e["order_no"]] = filled_by_notices.get(e["order_no"], 0) + int(
                e["wire"][9]
            )
    for r in rows:
        assert int(r["tot_ccld_qty"]) == int(r["ord_qty"]) and r["rmn_qty"] == "0"
        assert int(r["tot_ccld_qty"]) == filled_by_notices[r["odno"]]
    assert data["output2"]["tot_ccld_qty"] == str(sum(int(r["tot_ccld_qty"]) for r in rows))
    await ws.close()


async def test_rest_auth_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    token = await access_token(http, sim)
    async with http.post(
        f"{sim.url}{ORDER}",
        json=order_body("005930", 1),
        headers=rest_headers("bogus", "TTTC0012U"),
    ) as r:
        assert r.status == 500 and (await r.json())["msg_cd"] == "EGW00121"
    async with http.post(
        f"{sim.url}{ORDER}", json=order_body("005930", 1), headers=rest_headers(token, "VTTC0012U")
    ) as r:
        assert (await r.json())["rt_cd"] == "1"  # a mock tr_id on the real server
    async with http.post(
        f"{sim.url}{ORDER}",
        json=order_body("005930", 10**6, dvsn="01"),
        headers=rest_headers(token, "TTTC0011U"),
    ) as r:
        assert (await r.json())["rt_cd"] == "1"  # more than the holdings
    assert sim.order_book("kis") == []


async def test_mock_server(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimConfig(mock=True, rate=5, fill_delay=0.02)) as s:
        key = await approval(http, s)
        token = await access_token(http, s)
        ws = await http.ws_connect(s.kis_ws_url)
        assert (await subscribe(ws, key, "H0STPGM0", "005930"))["body"]["msg_cd"] == "OPSP8991"
        assert (await subscribe(ws, key, "H0STCNI0", "HTSUSER1"))["body"]["msg_cd"] == "OPSP8991"
        reply = await subscribe(ws, key, "H0STCNI9", "HTSUSER1")
        assert reply["body"]["msg_cd"] == "OPSP0000"
        aes = AesKey(reply["body"]["output"]["key"], reply["body"]["output"]["iv"])
        async with http.post(
            f"{s.url}{ORDER}",
            json=order_body("005930", 1),
            headers=rest_headers(token, "TTTC0012U"),
        ) as r:
            assert (await r.json())["rt_cd"] == "1"  # a real tr_id on the mock server
        async with http.post(
            f"{s.url}{ORDER}",
            json=order_body("005930", 1),
            headers=rest_headers(token, "VTTC0012U"),
        ) as r:
            no = (await r.json())["output"]["ODNO"]
        text = ""
        while not text.startswith("1|"):
            text = await recv_text(ws)
        assert text.startswith("1|H0STCNI9|001|")
        fields = aes.decrypt(text.split("|", 3)[3]).split("^")
        assert fields[2] == no and fields[13] == "1"
        await ws.close()
