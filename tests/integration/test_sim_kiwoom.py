"""The simulator's Kiwoom side, driven by a plain aiohttp client through the real sequences."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

import krfeed
from krfeed.brokers import sim_appkey, sim_secret
from krfeed.protocol.messages import DecodeError
from krfeed.schema.convert import KST
from krfeed.schema.enums import Direction, OrderStatus, Side
from krfeed.sim import SimConfig, Simulator
from krfeed.sim.market import UNIVERSE, floor_tick, on_grid, tick_size

Frame = dict[str, Any]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(rate=40, page_size=3, fill_delay=0.02)) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def get_token(
    http: aiohttp.ClientSession, sim: Simulator, appkey: str = sim_appkey(1), secret: str = ""
) -> Frame:
    body = {
        "grant_type": "client_credentials",
        "appkey": appkey,
        "secretkey": secret or sim.credentials[appkey],
    }
    async with http.post(f"{sim.url}/oauth2/token", json=body) as r:
        assert r.status == 200
        data: Frame = await r.json()
        return data


async def login(http: aiohttp.ClientSession, sim: Simulator, token: str) -> tuple[Any, Frame]:
    ws = await http.ws_connect(sim.kiwoom_ws_url, autoping=True)
    await ws.send_str(json.dumps({"trnm": "LOGIN", "token": token}))
    reply = await recv(ws)
    return ws, reply


async def recv(ws: Any, timeout: float = 5.0) -> Frame:
    """The next frame that is not a PING (PINGs are echoed unchanged)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame: Frame = json.loads(msg.data)
        if frame.get("trnm") == "PING":
            await ws.send_str(msg.data)
            continue
        frame["_raw"] = msg.data
        return frame


async def collect(
    ws: Any, done: Callable[[list[Frame]], bool], timeout: float = 10.0
) -> list[Frame]:
    frames: list[Frame] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not done(frames):
        left = end - loop.time()
        assert left > 0, f"timed out; got {[f.get('trnm') for f in frames]}"
        frames.append(await recv(ws, left))
    return frames


async def rest(
    http: aiohttp.ClientSession,
    sim: Simulator,
    path: str,
    api_id: str,
    token: str,
    body: Frame,
    **headers: str,
) -> tuple[Frame, Any]:
    h = {"api-id": api_id, "authorization": f"Bearer {token}", **headers}
    async with http.post(f"{sim.url}{path}", json=body, headers=h) as r:
        assert r.status == 200
        return await r.json(), r.headers


async def reg(ws: Any, blocks: list[Frame], grp: str = "1", refresh: str = "1") -> Frame:
    await ws.send_str(
        json.dumps({"trnm": "REG", "grp_no": grp, "refresh": refresh, "data": blocks})
    )
    while True:
        f = await recv(ws)
        if f["trnm"] == "REG":
            return f


def records(frames: list[Frame]) -> list[Any]:
    out = []
    for f in frames:
        if f["trnm"] == "REAL":
            decoded = krfeed.decode("kiwoom", f["_raw"])
            assert not any(isinstance(d, DecodeError) for d in decoded), decoded
            out.extend(decoded)
    return out


def order_events(frames: list[Frame], order_no: str) -> list[dict[str, str]]:
    return [
        e["values"]
        for f in frames
        if f["trnm"] == "REAL"
        for e in f["data"]
        if e["type"] == "00" and e["values"]["9203"] == order_no
    ]


# ---- token and login ----


async def test_token_then_login(sim: Simulator, http: aiohttp.ClientSession) -> None:
    tok = await get_token(http, sim)
    assert tok["return_code"] == 0
    assert tok["token_type"] == "bearer"
    assert tok["return_msg"] == "정상적으로 처리되었습니다"
    expires = datetime.strptime(tok["expires_dt"], "%Y%m%d%H%M%S").replace(tzinfo=KST)
    # expires_dt is KST: about token_ttl (24 h) from now, not 9 hours off
    assert timedelta(hours=23) < expires - datetime.now(KST) < timedelta(hours=25)
    ws, reply = await login(http, sim, tok["token"])
    assert {k: v for k, v in reply.items() if k != "_raw"} == {
        "trnm": "LOGIN",
        "return_code": 0,
        "return_msg": "정상적으로 처리되었습니다",
    }
    stats = sim.stats()
    assert stats["logins"]["kiwoom"]["ok"] == 1
    assert stats["connections"]["kiwoom"] == {"current": 1, "total": 1}
    await ws.close()


async def test_bad_credentials_are_refused(sim: Simulator, http: aiohttp.ClientSession) -> None:
    unknown = await get_token(http, sim, "nobody", "x")
    assert unknown["return_code"] != 0
    assert "[8001:" in unknown["return_msg"]
    assert "token" not in unknown
    wrong = await get_token(http, sim, sim_appkey(1), sim_secret(2))
    assert wrong["return_code"] != 0
    assert "[8002:" in wrong["return_msg"]


async def test_bad_token_login_fails_and_closes(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    ws, reply = await login(http, sim, "not-a-token")
    assert reply["trnm"] == "LOGIN"
    assert reply["return_code"] == 805004
    assert "CODE=8005" in reply["return_msg"]
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    [decoded] = krfeed.decode("kiwoom", reply["_raw"])
    assert decoded.ok is False and decoded.error_code == "8005"  # type: ignore[union-attr]
    await ws.close()
    # a revoked token is refused the same way
    tok = await get_token(http, sim)
    body = {"appkey": sim_appkey(1), "secretkey": sim_secret(1), "token": tok["token"]}
    async with http.post(f"{sim.url}/oauth2/revoke", json=body) as r:
        assert (await r.json())["return_code"] == 0
    ws, reply = await login(http, sim, tok["token"])
    assert reply["return_code"] == 805004
    await ws.close()
    assert sim.stats()["logins"]["kiwoom"]["failed"] == 2


async def test_ping_echo_keeps_session_and_silence_disconnects(
    http: aiohttp.ClientSession,
) -> None:
    async with Simulator(SimConfig(rate=0, ping_interval=0.2)) as s:
        good_ws, ok = await login(http, s, (await get_token(http, s, sim_appkey(1)))["token"])
        bad_ws, ok2 = await login(http, s, (await get_token(http, s, sim_appkey(2)))["token"])
        assert ok["return_code"] == 0 and ok2["return_code"] == 0

        async def echo_pings() -> int:
            pings = 0
            while pings < 8:
                msg = await asyncio.wait_for(good_ws.receive(), 5)
                assert msg.type == aiohttp.WSMsgType.TEXT
                assert json.loads(msg.data) == {"trnm": "PING"}
                await good_ws.send_str(msg.data)
                pings += 1
            return pings

        async def ignore_pings() -> aiohttp.WSMessage:
            while True:
                msg = await asyncio.wait_for(bad_ws.receive(), 5)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return msg

        pings, closed = await asyncio.gather(echo_pings(), ignore_pings())
        assert pings == 8
        assert closed.type == aiohttp.WSMsgType.CLOSE
        assert not good_ws.closed
        stats = s.stats()
        assert stats["ping_timeouts"]["kiwoom"] == 1
        assert stats["connections"]["kiwoom"]["current"] == 1
        await good_ws.close()
        await bad_ws.close()


async def test_second_login_gets_r10001(sim: Simulator, http: aiohttp.ClientSession) -> None:
    tok = await get_token(http, sim)
    first, _ = await login(http, sim, tok["token"])
    second, reply = await login(http, sim, tok["token"])
    assert reply["return_code"] == 0
    system = await recv(first)
    assert {k: v for k, v in system.items() if k != "_raw"} == {
        "trnm": "SYSTEM",
        "code": "R10001",
        "message": "동일한 App key로 접속이 되었습니다. 기존 세션은 종료가 됩니다",
    }
    msg = await asyncio.wait_for(first.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    # the new session works
    assert (await reg(second, [{"item": ["005930"], "type": ["0B"]}]))["return_code"] == 0
    await first.close()
    await second.close()


# ---- registrations and market data ----


async def test_reg_streams_decodable_market_data(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    ws, _ = await login(http, sim, (await get_token(http, sim))["token"])
    reply = await reg(ws, [{"item": ["005930", "000660_AL"], "type": ["0B", "0C", "0D", "0w"]}])
    assert {k: v for k, v in reply.items() if k != "_raw"} == {
        "trnm": "REG",
        "return_code": 0,
        "return_msg": "",
    }

    def enough(fs: list[Frame]) -> bool:
        seen = {(e["type"], e["item"]) for f in fs if f["trnm"] == "REAL" for e in f["data"]}
        multi = any(f["trnm"] == "REAL" and len(f["data"]) > 1 for f in fs)
        return multi and len(seen) == 8 and len(fs) > 20

    frames = await collect(ws, enough)
    recs = records(frames)
    assert {r.item for r in recs} == {"005930", "000660_AL"}
    last_volume: dict[str, int] = {}
    for r in recs:
        base = UNIVERSE[r.item.removesuffix("_AL")][1]
        if r.type == "0B":
            assert on_grid(r.current_price)
            assert r.change == r.current_price - base
            want = (
                Direction.UP if r.change > 0 else Direction.DOWN if r.change < 0 else Direction.FLAT
            )
            assert r.current_price_dir is want
            assert r.low_price <= r.current_price <= r.high_price
            assert r.best_ask > r.best_bid and on_grid(r.best_ask) and on_grid(r.best_bid)
            assert r.trade_volume > 0 and r.trade_volume_side in (Side.BUY, Side.SELL)
            assert r.cumulative_volume >= last_volume.get(r.item, 0)
            last_volume[r.item] = r.cumulative_volume
            assert r.trade_time.tzinfo is not None
        elif r.type == "0D":
            asks = [getattr(r, f"ask_price_{i}") for i in range(1, 11)]
            bids = [getattr(r, f"bid_price_{i}") for i in range(1, 11)]
            assert all(on_grid(p) for p in asks + bids)
            assert asks == sorted(asks) and bids == sorted(bids, reverse=True)
            assert asks[0] - bids[0] == tick_size(bids[0])
            assert r.total_ask_qty == sum(getattr(r, f"ask_qty_{i}") for i in range(1, 11))
        elif r.type == "0C":
            assert r.best_ask > r.best_bid
        elif r.type == "0w":
            assert r.program_net_buy_qty == r.program_buy_qty - r.program_sell_qty
            assert r.program_net_buy_amount == r.program_buy_amount - r.program_sell_amount
    await ws.close()


async def test_refresh_zero_replaces_and_remove_stops(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    ws, _ = await login(http, sim, (await get_token(http, sim))["token"])
    await reg(ws, [{"item": ["005930"], "type": ["0B"]}], grp="1")
    await reg(ws, [{"item": ["000660"], "type": ["0B"]}], grp="2")
    assert sim.stats()["subscriptions"]["kiwoom"] == 2
    # refresh "1" keeps group 1's registration, "0" replaces it
    await reg(ws, [{"item": ["035420"], "type": ["0C"]}], grp="1", refresh="1")
    assert sim.stats()["subscriptions"]["kiwoom"] == 3
    await reg(ws, [{"item": ["035720"], "type": ["0C"]}], grp="1", refresh="0")
    assert sim.stats()["subscriptions"]["kiwoom"] == 2
    await ws.send_str(
        json.dumps(
            {"trnm": "REMOVE", "grp_no": "2", "data": [{"item": ["000660"], "type": ["0B"]}]}
        )
    )
    removed = await collect(ws, lambda fs: any(f["trnm"] == "REMOVE" for f in fs))
    assert {k: v for k, v in removed[-1].items() if k != "_raw"} == {
        "trnm": "REMOVE",
        "return_code": 0,
        "return_msg": "",
    }
    assert sim.stats()["subscriptions"]["kiwoom"] == 1
    later = await collect(ws, lambda fs: len(fs) >= 15)
    items = {(e["type"], e["item"]) for f in later if f["trnm"] == "REAL" for e in f["data"]}
    assert items == {("0C", "035720")}
    # an unknown type is refused
    bad = await reg(ws, [{"item": ["005930"], "type": ["ZZ"]}])
    assert bad["return_code"] == 1
    await ws.close()


async def test_every_declared_type_is_served(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimConfig(rate=60)) as s:
        ws, _ = await login(http, s, (await get_token(http, s))["token"])
        stocks = ["005930", "000660", "035420", "035720", "068270"]
        blocks = [
            {"item": stocks, "type": ["0A", "0E", "0F", "0G", "0H", "0g", "0m", "0u", "1h"]},
            {"item": ["001", "101"], "type": ["0J", "0U"]},
            {"item": ["005930"], "type": ["0I", "02"]},
            {"item": [""], "type": ["0s"]},
        ]
        assert (await reg(ws, blocks))["return_code"] == 0
        want = {"0A", "0E", "0F", "0G", "0H", "0g", "0m", "0u", "1h", "0J", "0U", "0I", "02", "0s"}

        def all_seen(fs: list[Frame]) -> bool:
            return want <= {e["type"] for f in fs if f["trnm"] == "REAL" for e in f["data"]}

        recs = records(await collect(ws, all_seen, timeout=20))
        assert {r.type for r in recs} >= want
        status = next(r for r in recs if r.type == "0s")
        assert status.market_operation == "3" and status.item == ""
        index = next(r for r in recs if r.type == "0J")
        assert 500 < index.current_price < 5000  # index points, not won
        await ws.close()


# ---- orders ----


async def test_order_flow_pushes_00_and_04(sim: Simulator, http: aiohttp.ClientSession) -> None:
    token = (await get_token(http, sim))["token"]
    ws, _ = await login(http, sim, token)
    await reg(ws, [{"item": [""], "type": ["00", "04"]}])
    body = {
        "dmst_stex_tp": "KRX",
        "stk_cd": "005930",
        "ord_qty": "7",
        "ord_uv": "",
        "trde_tp": "3",
        "cond_uv": "",
    }
    resp, headers = await rest(http, sim, "/api/dostk/ordr", "kt10000", token, body)
    assert resp["return_code"] == 0 and resp["dmst_stex_tp"] == "KRX"
    assert headers["api-id"] == "kt10000"
    no = resp["ord_no"]
    assert len(no) == 7 and no.isdigit()

    def filled(fs: list[Frame]) -> bool:
        ev = order_events(fs, no)
        n04 = sum(e["type"] == "04" for f in fs if f["trnm"] == "REAL" for e in f["data"])
        return bool(ev) and ev[-1]["902"] == "0" and n04 == len(ev) - 1

    frames = await collect(ws, filled)
    events = order_events(frames, no)
    accepted, fills = events[0], events[1:]
    assert accepted["913"] == "접수"
    assert accepted["900"] == "7" and accepted["902"] == "7" and accepted["903"] == "0"
    assert accepted["904"] == "0000000" and accepted["905"] == "+매수" and accepted["907"] == "2"
    assert accepted["906"] == "시장가" and accepted["909"] == "" and accepted["911"] == ""
    assert len(fills) >= 2  # a 7-share order fills in parts
    cum = amount = 0
    for f in fills:
        assert f["913"] == "체결"
        assert on_grid(int(f["914"])) and f["910"] == f["914"]
        cum += int(f["915"])
        amount += int(f["915"]) * int(f["914"])
        assert int(f["911"]) == cum and int(f["902"]) == 7 - cum and int(f["903"]) == amount
    assert cum == 7
    assert len({f["909"] for f in fills}) == len(fills)
    decoded = [r for r in records(frames) if r.type == "00"]
    assert [r.order_status for r in decoded][:2] == [OrderStatus.ACCEPTED, OrderStatus.FILLED]
    # 04 balance updates follow the fills
    balances = [
        e["values"] for f in frames if f["trnm"] == "REAL" for e in f["data"] if e["type"] == "04"
    ]
    assert len(balances) == len(fills)
    assert int(balances[-1]["930"]) == 1000 + 7
    # the simulator's record of what it sent agrees with what arrived
    sent = [e for e in sim.account_events("kiwoom") if e["order_no"] == no]
    assert [e["wire"] for e in sent] == events
    assert [e["status"] for e in sent] == ["접수"] + ["체결"] * len(fills)
    [book] = [o for o in sim.order_book("kiwoom") if o["order_no"] == no]
    assert book["filled"] == 7 and book["remaining"] == 0
    assert sum(f["qty"] for f in book["fills"]) == 7
    await ws.close()


async def test_modify_cancel_and_reject(sim: Simulator, http: aiohttp.ClientSession) -> None:
    token = (await get_token(http, sim))["token"]
    ws, _ = await login(http, sim, token)
    await reg(ws, [{"item": [""], "type": ["00"]}])
    inst = sim.market.instrument("000660")
    far = inst.lower  # a buy at the lower limit rests
    base = {"dmst_stex_tp": "KRX", "stk_cd": "000660", "trde_tp": "0", "cond_uv": ""}
    resting, _ = await rest(
        http,
        sim,
        "/api/dostk/ordr",
        "kt10000",
        token,
        {**base, "ord_qty": "10", "ord_uv": str(far)},
    )
    orig = resting["ord_no"]
    mod, _ = await rest(
        http,
        sim,
        "/api/dostk/ordr",
        "kt10002",
        token,
        {
            "dmst_stex_tp": "KRX",
            "orig_ord_no": orig,
            "stk_cd": "000660",
            "mdfy_qty": "4",
            "mdfy_uv": str(far),
        },
    )
    assert mod["return_code"] == 0 and mod["base_orig_ord_no"] == orig
    assert mod["mdfy_qty"] == "000000000004"
    cnc, _ = await rest(
        http,
        sim,
        "/api/dostk/ordr",
        "kt10003",
        token,
        {"dmst_stex_tp": "KRX", "orig_ord_no": orig, "stk_cd": "000660", "cncl_qty": "0"},
    )
    assert cnc["return_code"] == 0 and cnc["cncl_qty"] == "000000000006"
    beyond = inst.upper + tick_size(inst.upper)
    rej, _ = await rest(
        http,
        sim,
        "/api/dostk/ordr",
        "kt10000",
        token,
        {**base, "ord_qty": "1", "ord_uv": str(beyond)},
    )
    assert rej["return_code"] == 0  # accepted, then rejected by the exchange

    def settled(fs: list[Frame]) -> bool:
        return (
            len(order_events(fs, mod["ord_no"])) >= 2
            and len(order_events(fs, cnc["ord_no"])) >= 2
            and len(order_events(fs, rej["ord_no"])) >= 2
        )

    frames = await collect(ws, settled)
    m = order_events(frames, mod["ord_no"])
    assert [e["913"] for e in m[:2]] == ["접수", "확인"]
    assert m[0]["905"] == "매수정정" and m[0]["904"] == orig and m[0]["900"] == "4"
    c = order_events(frames, cnc["ord_no"])
    assert [e["913"] for e in c] == ["접수", "확인"]
    assert c[0]["905"] == "매수취소" and c[0]["904"] == orig and c[0]["900"] == "6"
    r = order_events(frames, rej["ord_no"])
    assert [e["913"] for e in r] == ["접수", "거부"]
    assert r[1]["902"] == "0" and r[1]["919"] not in ("", "0")
    # what is still open: only the modified order
    oso, _ = await rest(
        http,
        sim,
        "/api/dostk/acnt",
        "ka10075",
        token,
        {"all_stk_tp": "0", "trde_tp": "0", "stk_cd": "", "stex_tp": "0"},
    )
    assert [(o["ord_no"], o["oso_qty"]) for o in oso["oso"]] == [(mod["ord_no"], "4")]
    await ws.close()


async def test_rest_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    token = (await get_token(http, sim))["token"]
    body = {"dmst_stex_tp": "KRX", "stk_cd": "005930", "ord_qty": "1", "ord_uv": "", "trde_tp": "3"}
    bad, _ = await rest(http, sim, "/api/dostk/ordr", "kt10000", "nope", body)
    assert bad["return_code"] == 3 and "[8005:Token이 유효하지 않습니다]" in bad["return_msg"]
    wrong, _ = await rest(http, sim, "/api/dostk/ordr", "ka10075", token, body)
    assert "[1504:" in wrong["return_msg"]
    async with http.post(
        f"{sim.url}/api/dostk/ordr", json=body, headers={"authorization": f"Bearer {token}"}
    ) as r:
        assert "[1501:" in (await r.json())["return_msg"]
    missing, _ = await rest(http, sim, "/api/dostk/ordr", "kt10000", token, {"dmst_stex_tp": "KRX"})
    assert "[1511:" in missing["return_msg"]
    too_many, _ = await rest(
        http, sim, "/api/dostk/ordr", "kt10001", token, {**body, "ord_qty": "100000"}
    )
    assert too_many["return_code"] != 0 and "매도가능수량" in too_many["return_msg"]
    off_grid, _ = await rest(
        http, sim, "/api/dostk/ordr", "kt10000", token, {**body, "trde_tp": "0", "ord_uv": "71001"}
    )
    assert off_grid["return_code"] != 0
    assert sim.order_book("kiwoom") == []


async def _pages(
    http: aiohttp.ClientSession, sim: Simulator, api_id: str, token: str, body: Frame, key: str
) -> tuple[list[Frame], list[Frame]]:
    """All rows over all pages, and the raw page bodies."""
    rows: list[Frame] = []
    pages: list[Frame] = []
    headers: dict[str, str] = {}
    while True:
        data, h = await rest(http, sim, "/api/dostk/acnt", api_id, token, body, **headers)
        assert data["return_code"] == 0
        pages.append(data)
        rows.extend(data[key])
        assert len(data[key]) <= 3
        if h["cont-yn"] != "Y":
            assert h["next-key"] == ""
            return rows, pages
        assert h["next-key"]
        headers = {"cont-yn": "Y", "next-key": h["next-key"]}


async def test_inquiries_agree_with_events_and_page(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    token = (await get_token(http, sim))["token"]
    ws, _ = await login(http, sim, token)
    await reg(ws, [{"item": [""], "type": ["00"]}])
    placed = []
    for i, code in enumerate(
        ["005930", "000660", "035420", "005930", "068270", "035720", "005380"]
    ):
        body = {
            "dmst_stex_tp": "KRX",
            "stk_cd": code,
            "ord_qty": str(2 + i),
            "ord_uv": "",
            "trde_tp": "3",
        }
        resp, _ = await rest(
            http, sim, "/api/dostk/ordr", "kt10000" if i % 3 else "kt10001", token, body
        )
        assert resp["return_code"] == 0
        placed.append((resp["ord_no"], 2 + i))
    inst = sim.market.instrument("051910")
    rest_body = {
        "dmst_stex_tp": "KRX",
        "stk_cd": "051910",
        "ord_qty": "3",
        "ord_uv": str(inst.lower),
        "trde_tp": "0",
    }
    resting, _ = await rest(http, sim, "/api/dostk/ordr", "kt10000", token, rest_body)

    def done(fs: list[Frame]) -> bool:
        return all(
            (ev := order_events(fs, no)) and ev[-1]["902"] == "0" for no, _ in placed
        ) and bool(order_events(fs, resting["ord_no"]))

    frames = await collect(ws, done)
    filled_by_events = {
        no: sum(int(e["915"] or 0) for e in order_events(frames, no)) for no, _ in placed
    }
    assert filled_by_events == {no: q for no, q in placed}
    amounts = {
        no: sum(int(e["915"] or 0) * int(e["914"] or 0) for e in order_events(frames, no))
        for no, _ in placed
    }

    cntr, pages = await _pages(
        http,
        sim,
        "ka10076",
        token,
        {"stk_cd": "", "qry_tp": "0", "sell_tp": "0", "ord_no": "", "stex_tp": "0"},
        "cntr",
    )
    assert len(pages) == 3  # 7 filled orders, 3 per page
    assert [r["ord_no"] for r in cntr] == [no for no, _ in reversed(placed)]
    for r in cntr:
        assert int(r["cntr_qty"]) == filled_by_events[r["ord_no"]] and r["oso_qty"] == "0"
        # 체결가 of an order filled in parts is the average price
        assert int(r["cntr_pric"]) == amounts[r["ord_no"]] // int(r["cntr_qty"])
    sells, _ = await _pages(
        http,
        sim,
        "ka10076",
        token,
        {"stk_cd": "", "qry_tp": "0", "sell_tp": "1", "ord_no": "", "stex_tp": "0"},
        "cntr",
    )
    assert {r["ord_no"] for r in sells} == {no for i, (no, _) in enumerate(placed) if i % 3 == 0}
    assert all(r["io_tp_nm"] == "-매도" for r in sells)

    oso, _ = await _pages(
        http,
        sim,
        "ka10075",
        token,
        {"all_stk_tp": "0", "trde_tp": "0", "stk_cd": "", "stex_tp": "0"},
        "oso",
    )
    assert [(r["ord_no"], r["oso_qty"], r["ord_stt"]) for r in oso] == [
        (resting["ord_no"], "3", "접수")
    ]

    status, pages = await _pages(
        http,
        sim,
        "kt00009",
        token,
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
    assert [r["ord_no"] for r in status] == [no for no, _ in placed] + [resting["ord_no"]]
    for r in status[:-1]:
        assert int(r["cntr_qty"]) == filled_by_events[r["ord_no"]]
        assert len(r["ord_qty"]) == 10 and r["stk_cd"].startswith("A")
    sell_amt = sum(amounts[no] for i, (no, _) in enumerate(placed) if i % 3 == 0)
    buy_amt = sum(amounts[no] for i, (no, _) in enumerate(placed) if i % 3)
    assert pages[0]["sell_grntl_engg_amt"] == f"{sell_amt:012d}"
    assert pages[0]["buy_engg_amt"] == f"{buy_amt:012d}"
    assert pages[0]["engg_amt"] == f"{sell_amt + buy_amt:012d}"
    await ws.close()


async def test_condition_search(sim: Simulator, http: aiohttp.ClientSession) -> None:
    from krfeed.sim.conditions import set_price

    for code in ("005930", "000660", "035720", "051910"):  # up 5 %: in condition 0 (+3 %)
        inst = sim.market.instrument(code)
        set_price(sim.market, code, floor_tick(inst.prev_close * 105 // 100))
    ws, _ = await login(http, sim, (await get_token(http, sim))["token"])
    # ka10173: the list must come first on the connection
    await ws.send_str(
        json.dumps({"trnm": "CNSRREQ", "seq": "0", "search_type": "1", "stex_tp": "K"})
    )
    early = await recv(ws)
    assert (
        early["trnm"] == "CNSRREQ"
        and early["return_code"] == 1
        and "CNSRLST" in early["return_msg"]
    )
    await ws.send_str(json.dumps({"trnm": "CNSRLST"}))
    lst = await recv(ws)
    assert lst["trnm"] == "CNSRLST" and lst["return_code"] == 0 and len(lst["data"]) == 5
    assert lst["data"][0] == ["0", "당일 3% 이상 상승"]
    seq = lst["data"][0][0]
    req = {
        "trnm": "CNSRREQ",
        "seq": seq,
        "search_type": "0",
        "stex_tp": "K",
        "cont_yn": "N",
        "next_key": "",
    }
    await ws.send_str(json.dumps(req))
    first = await recv(ws)
    assert first["trnm"] == "CNSRREQ" and first["cont_yn"] == "Y" and len(first["data"]) == 3
    await ws.send_str(json.dumps({**req, "cont_yn": "Y", "next_key": first["next_key"]}))
    second = await recv(ws)
    assert second["cont_yn"] == "N" and second["next_key"] == ""
    rows = first["data"] + second["data"]
    assert [r["9001"] for r in rows] == ["A005930", "A000660", "A035720", "A051910"]
    samsung = next(r for r in rows if r["9001"] == "A005930")
    # ka10172 layout: 9-character zero-padded numbers, 등락율 in thousandths of a percent
    assert samsung == {
        "9001": "A005930",
        "302": "삼성전자",
        "10": "000074500",
        "25": "2",
        "11": "000003500",
        "12": "000004930",
        "13": "000000001",
        "16": "000074500",
        "17": "000074500",
        "18": "000074500",
    }
    await ws.send_str(json.dumps({**req, "seq": "77"}))
    unknown = await recv(ws)
    assert unknown["return_code"] == 1 and unknown["return_msg"] == "조건검색식이 존재하지 않습니다"
    await ws.send_str(
        json.dumps({"trnm": "CNSRREQ", "seq": seq, "search_type": "1", "stex_tp": "K"})
    )
    live = await recv(ws)
    assert live["return_code"] == 0 and live["seq"] == seq
    assert [d["jmcode"] for d in live["data"]] == [r["9001"] for r in rows]
    set_price(sim.market, "000660", sim.market.instrument("000660").prev_close)
    frames = await collect(ws, lambda fs: any(f["trnm"] == "REAL" for f in fs))
    real = next(f for f in frames if f["trnm"] == "REAL")
    entry = real["data"][0]
    assert entry["type"] == "02" and entry["item"] == "000660"
    assert set(entry["values"]) == {"841", "9001", "843", "20", "907"}
    assert entry["values"]["843"] == "D" and entry["values"]["9001"] == "000660"
    hit = records(frames)[0]
    assert hit.type == "02" and hit.condition_seq == seq and hit.code == "000660"
    await ws.send_str(json.dumps({"trnm": "CNSRCLR", "seq": seq}))
    clr = await collect(ws, lambda fs: any(f["trnm"] == "CNSRCLR" for f in fs))
    assert {k: v for k, v in clr[-1].items() if k != "_raw"} == {
        "trnm": "CNSRCLR",
        "seq": seq,
        "return_code": 0,
        "return_msg": "",
    }
    assert not sim.condition_book.watching()
    await ws.close()
