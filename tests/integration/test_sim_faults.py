"""Every fault the simulator injects has an observable effect on a plain client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import krfeed
from krfeed.brokers import sim_appkey, sim_secret
from krfeed.protocol.messages import DecodeError
from krfeed.sim import SimConfig, Simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(rate=40, ping_interval=0.2, ping_timeout=5.0)) as s:
        yield s


async def kiwoom_session(
    http: aiohttp.ClientSession,
    sim: Simulator,
    appkey: str = sim_appkey(1),
    types: tuple[str, ...] = ("0B",),
) -> Any:
    ws = await http.ws_connect(sim.kiwoom_ws_url)
    await ws.send_str(json.dumps({"trnm": "LOGIN", "token": sim.kiwoom_token(appkey)}))
    assert json.loads((await ws.receive()).data)["return_code"] == 0
    reg = {
        "trnm": "REG",
        "grp_no": "1",
        "refresh": "1",
        "data": [{"item": ["005930"], "type": list(types)}],
    }
    await ws.send_str(json.dumps(reg))
    return ws


async def kis_session(http: aiohttp.ClientSession, sim: Simulator, tr: str = "H0STCNT0") -> Any:
    ws = await http.ws_connect(sim.kis_ws_url)
    frame = {
        "header": {
            "approval_key": sim.kis_approval_key(),
            "custtype": "P",
            "tr_type": "1",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": tr, "tr_key": "005930"}},
    }
    await ws.send_str(json.dumps(frame))
    return ws


def is_heartbeat(text: str) -> bool:
    return text == '{"trnm":"PING"}' or (text.startswith("{") and '"PINGPONG"' in text)


def is_data(text: str) -> bool:
    return text.startswith(("0|", "1|")) or text.startswith('{"trnm":"REAL"')


async def frames_for(ws: Any, seconds: float) -> list[aiohttp.WSMessage]:
    """Everything received within ``seconds`` (heartbeats are echoed)."""
    out: list[aiohttp.WSMessage] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            break
        out.append(msg)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        if is_heartbeat(msg.data):
            await ws.send_str(msg.data)
    return out


async def next_data(ws: Any, timeout: float = 5.0) -> str:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        msg = await asyncio.wait_for(ws.receive(), max(0.01, end - loop.time()))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        if is_heartbeat(msg.data):
            await ws.send_str(msg.data)
        elif is_data(msg.data) or not msg.data.startswith("{"):
            text: str = msg.data
            return text


async def next_frame(ws: Any) -> str:
    """The next frame that is not a heartbeat (heartbeats are echoed)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        if not is_heartbeat(msg.data):
            text: str = msg.data
            return text
        await ws.send_str(msg.data)


async def test_drop_aborts_without_close_frame(sim: Simulator, http: aiohttp.ClientSession) -> None:
    kw = await kiwoom_session(http, sim, sim_appkey(1))
    other = await kiwoom_session(http, sim, sim_appkey(2))
    await next_data(kw)
    result = sim.fault("drop", broker="kiwoom", appkey=sim_appkey(1))
    assert result == {"ok": True, "action": "drop", "affected": 1}
    msgs = await frames_for(kw, 5)
    assert msgs[-1].type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)  # no CLOSE frame
    assert not any(m.type == aiohttp.WSMsgType.CLOSE for m in msgs)
    await next_data(other)  # the other appkey is untouched
    stats = sim.stats()
    assert stats["faults"] == {"drop": 1}
    assert stats["connections"]["kiwoom"]["current"] == 1
    await kw.close()
    await other.close()


async def test_close_sends_the_code(sim: Simulator, http: aiohttp.ClientSession) -> None:
    ws = await kis_session(http, sim)
    await next_data(ws)
    async with http.post(
        f"{sim.url}/_sim/faults", json={"action": "close", "broker": "kis", "code": 4000}
    ) as r:
        assert r.status == 200 and (await r.json())["affected"] == 1
    msgs = await frames_for(ws, 5)
    assert msgs[-1].type == aiohttp.WSMsgType.CLOSE and msgs[-1].data == 4000
    await ws.close()


async def test_silence_keeps_heartbeats(sim: Simulator, http: aiohttp.ClientSession) -> None:
    kis = await kis_session(http, sim)
    kw = await kiwoom_session(http, sim)
    await next_data(kis)
    await next_data(kw)
    sim.fault("silence", seconds=1.5)
    # frames already on the wire may still arrive; after them only heartbeats do
    await asyncio.gather(frames_for(kis, 0.3), frames_for(kw, 0.3))
    kis_msgs, kw_msgs = await asyncio.gather(frames_for(kis, 0.8), frames_for(kw, 0.8))
    for msgs in (kis_msgs, kw_msgs):
        texts = [m.data for m in msgs if m.type == aiohttp.WSMsgType.TEXT]
        assert len(texts) >= 2 and all(is_heartbeat(t) for t in texts)
    assert await next_data(kis, 5)  # data resumes
    assert await next_data(kw, 5)
    assert sim.stats()["silenced_frames"] > 0
    await kis.close()
    await kw.close()


async def test_half_open_stops_everything_then_drops(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    ws = await kis_session(http, sim)
    await next_data(ws)
    sim.fault("half_open", seconds=1.5)
    await frames_for(ws, 0.3)  # frames already on the wire
    msgs = await frames_for(ws, 0.6)
    assert msgs == []  # no heartbeats, no data, yet the socket is open
    # the server does not read either: a broken frame gets no OPSP9999 answer
    await ws.send_str("{not json}")
    rest = await frames_for(ws, 3)
    assert [m.type for m in rest] in (
        [aiohttp.WSMsgType.CLOSED],
        [aiohttp.WSMsgType.ERROR],
    )  # then the server gives up on the socket (no close frame)
    await ws.close()


async def test_malformed_frames_decode_to_errors(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    kis = await kis_session(http, sim)
    kw = await kiwoom_session(http, sim)
    await next_data(kis)
    await next_data(kw)
    result = sim.fault("malformed", count=7)
    assert result["affected"] == 2
    for broker, ws in (("kis", kis), ("kiwoom", kw)):
        outcomes = []
        for _ in range(14):
            text = await next_frame(ws)
            decoded = krfeed.decode(broker, text)
            outcomes.append(any(isinstance(d, DecodeError) for d in decoded))
        # a frame or two already queued may precede the broken ones; then 7 broken, then good
        first_bad = outcomes.index(True)
        assert first_bad <= 4
        assert outcomes[first_bad : first_bad + 7] == [True] * 7
        assert not any(outcomes[first_bad + 7 :])
    assert sim.stats()["malformed_sent"] == 14
    await kis.close()
    await kw.close()


async def test_delay_handshake(sim: Simulator, http: aiohttp.ClientSession) -> None:
    sim.fault("delay_handshake", broker="kis", seconds=3.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(http.ws_connect(sim.kis_ws_url), 0.3)
    # only the next handshake was delayed
    ws = await asyncio.wait_for(http.ws_connect(sim.kis_ws_url), 3.0)
    await ws.close()
    assert sim.stats()["faults"]["delay_handshake"] == 1


async def test_outage_drops_then_refuses_handshakes_for_a_while(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    kw = await kiwoom_session(http, sim)
    kis = await kis_session(http, sim)
    await next_data(kw)
    await next_data(kis)
    assert sim.fault("outage", seconds=1.0) == {"ok": True, "action": "outage", "affected": 2}
    for ws in (kw, kis):
        msgs = await frames_for(ws, 5)
        assert msgs[-1].type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    for url in (sim.kiwoom_ws_url, sim.kis_ws_url):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url)
        assert refused.value.status == 503
    # REST runs elsewhere: tokens are still issued during the outage
    body = {"grant_type": "client_credentials", "appkey": sim_appkey(1), "secretkey": sim_secret(1)}
    async with http.post(f"{sim.url}/oauth2/token", json=body) as r:
        assert r.status == 200 and (await r.json())["return_code"] == 0
    while True:  # the outage ends by itself
        try:
            kw = await kiwoom_session(http, sim)
            break
        except aiohttp.WSServerHandshakeError:
            await asyncio.sleep(0.05)
    await next_data(kw)
    await kw.close()
    stats = sim.stats()
    assert stats["faults"] == {"outage": 1}
    assert stats["outage_refused"] >= 2


async def test_refuse_logins(sim: Simulator, http: aiohttp.ClientSession) -> None:
    token = sim.kiwoom_token()
    old_key = sim.kis_approval_key()
    sim.fault("refuse_logins", seconds=0.8)
    ws = await http.ws_connect(sim.kiwoom_ws_url)
    await ws.send_str(json.dumps({"trnm": "LOGIN", "token": token}))
    reply = json.loads((await ws.receive()).data)
    assert reply["return_code"] == 805004 and "CODE=8005" in reply["return_msg"]
    await ws.close()
    body = {"grant_type": "client_credentials", "appkey": sim_appkey(1), "secretkey": sim_secret(1)}
    async with http.post(f"{sim.url}/oauth2/Approval", json=body) as r:
        assert r.status == 403 and (await r.json())["error_code"] == "EGW00133"
    kis = await http.ws_connect(sim.kis_ws_url)
    frame = {
        "header": {
            "approval_key": old_key,
            "custtype": "P",
            "tr_type": "1",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}},
    }
    await kis.send_str(json.dumps(frame))
    refused = json.loads(await next_control(kis))
    assert refused["body"]["msg_cd"] == "OPSP0011"
    await asyncio.sleep(1.0)  # the refusal window is over
    ws = await http.ws_connect(sim.kiwoom_ws_url)
    await ws.send_str(json.dumps({"trnm": "LOGIN", "token": token}))
    assert json.loads((await ws.receive()).data)["return_code"] == 0
    await kis.send_str(json.dumps(frame))
    assert json.loads(await next_control(kis))["body"]["msg_cd"] == "OPSP0000"
    await ws.close()
    await kis.close()


async def next_control(ws: Any) -> str:
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.TEXT
        if msg.data.startswith("{") and not is_heartbeat(msg.data):
            text: str = msg.data
            return text


async def test_expire_tokens(sim: Simulator, http: aiohttp.ClientSession) -> None:
    token = sim.kiwoom_token()
    key = sim.kis_approval_key()
    access = sim.kis_access_token()
    live = await kiwoom_session(http, sim)
    await next_data(live)
    assert sim.fault("expire_tokens")["affected"] == 4  # the live session's token too
    await next_data(live)  # a session that is logged in goes on
    ws = await http.ws_connect(sim.kiwoom_ws_url)
    await ws.send_str(json.dumps({"trnm": "LOGIN", "token": token}))
    assert json.loads((await ws.receive()).data)["return_code"] == 805004
    await ws.close()
    headers = {"api-id": "ka10075", "authorization": f"Bearer {token}"}
    async with http.post(f"{sim.url}/api/dostk/acnt", json={}, headers=headers) as r:
        body = await r.json()
        assert body["return_code"] == 3 and "[8005:" in body["return_msg"]
    kis = await http.ws_connect(sim.kis_ws_url)
    frame = {
        "header": {"approval_key": key, "custtype": "P", "tr_type": "1", "content-type": "utf-8"},
        "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}},
    }
    await kis.send_str(json.dumps(frame))
    assert json.loads(await next_control(kis))["body"]["msg_cd"] == "OPSP0011"
    kis_headers = {
        "authorization": f"Bearer {access}",
        "appkey": sim_appkey(1),
        "appsecret": sim_secret(1),
        "tr_id": "TTTC0012U",
    }
    async with http.post(
        f"{sim.url}/uapi/domestic-stock/v1/trading/order-cash", json={}, headers=kis_headers
    ) as r:
        assert r.status == 500 and (await r.json())["msg_cd"] == "EGW00123"
    # new credentials work again
    fresh = await kiwoom_session(http, sim)
    await live.close()
    await fresh.close()
    await kis.close()


async def test_admin_endpoints(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{sim.url}/_sim/faults", json={"action": "explode"}) as r:
        assert r.status == 400 and "unknown fault action" in (await r.json())["error"]
    async with http.get(f"{sim.url}/_sim/faults") as r:  # what can be asked, with defaults
        listed = await r.json()
    assert listed["actions"]["silence"] == {"seconds": 5.0}
    assert listed["actions"]["swallow_replies"] == {"count": 1, "op": "subscribe"}
    assert listed["narrow"] == ["broker", "appkey"] and len(listed["actions"]) == 11
    async with http.post(f"{sim.url}/_sim/faults", json={"action": "silence", "secs": 1}) as r:
        assert r.status == 400
    with pytest.raises(ValueError):
        sim.fault("drop", broker="nyse")
    async with http.post(
        f"{sim.url}/_sim/faults", json={"action": "expire_tokens", "broker": "kis"}
    ) as r:
        assert r.status == 200
    async with http.get(f"{sim.url}/_sim/stats") as r:
        stats = await r.json()
    assert stats["faults"] == {"expire_tokens": 1}
    for key in (
        "connections",
        "logins",
        "subscriptions",
        "frames_sent",
        "records_sent",
        "account_events",
        "orders",
    ):
        assert key in stats
    async with http.get(f"{sim.url}/_sim/accounts") as r:
        accounts = await r.json()
    assert accounts["kiwoom"][sim_appkey(1)] == sim.account("kiwoom", sim_appkey(1))


async def test_bench_pushes_count_records(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimConfig(rate=0)) as s:
        kis = await kis_session(http, s, "H0STCNT0")
        kw = await kiwoom_session(http, s, types=("0B",))
        await next_control(kis)  # the subscribe reply
        await next_control(kw)  # the REG reply
        async with http.post(
            f"{s.url}/_sim/bench",
            json={
                "broker": "kis",
                "type": "H0STCNT0",
                "codes": ["005930", "000660"],
                "rate": 0,
                "count": 500,
                "batch": 10,
            },
        ) as r:
            started = await r.json()
        assert started == {"ok": True, "bench_id": 1, "connections": 1}
        bid = await s.bench("kiwoom", "0B", ["005930"], count=100, batch=4)
        got_kis = got_kw = 0
        while got_kis < 500:
            text = await next_data(kis)
            _, tr, nnn, payload = text.split("|", 3)
            # ten records of the current layout (47 fields)
            assert tr == "H0STCNT0" and nnn == "010" and len(payload.split("^")) == 470
            got_kis += int(nnn)
        while got_kw < 100:
            frame = json.loads(await next_data(kw))
            got_kw += len(frame["data"])
            assert len(frame["data"]) == 4
        assert (got_kis, got_kw) == (500, 100)
        for _ in range(100):
            bench = s.stats()["bench"]
            if all(b["state"] == "done" for b in bench.values()):
                break
            await asyncio.sleep(0.02)
        assert bench["1"]["records_queued"] == 500 and bench[str(bid)]["records_queued"] == 100
        assert bench["1"]["state"] == "done" and bench["1"]["records_per_s"] > 0
        assert s.stats()["records_sent"]["kis"]["H0STCNT0"] == 500
        await kis.close()
        await kw.close()


@pytest.mark.parametrize("hold", [False, True])
async def test_half_open_and_the_one_session_rule(
    sim: Simulator, http: aiohttp.ClientSession, hold: bool
) -> None:
    old = await kis_session(http, sim)
    await next_data(old)
    sim.fault("half_open", broker="kis", seconds=3.0, hold_session=hold)
    # the client gives up on the old socket: its close frame is never answered
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(old.close(), 0.3)
    await asyncio.sleep(0.1)
    new = await kis_session(http, sim)
    reply = json.loads(await next_control(new))
    assert reply["body"]["msg_cd"] == ("OPSP8996" if hold else "OPSP0000")
    await new.close()


async def test_malformed_at_a_rate_for_a_while(sim: Simulator, http: aiohttp.ClientSession) -> None:
    ws = await kis_session(http, sim)
    await next_data(ws)
    sim.fault("malformed", broker="kis", rate=1.0, seconds=0.8)
    bad = [
        any(isinstance(d, DecodeError) for d in krfeed.decode("kis", await next_frame(ws)))
        for _ in range(6)
    ]
    assert sum(bad) >= 3  # every frame sent in the window is broken
    await asyncio.sleep(1.0)
    await frames_for(ws, 0.2)
    good = [
        any(isinstance(d, DecodeError) for d in krfeed.decode("kis", await next_frame(ws)))
        for _ in range(4)
    ]
    assert not any(good)
    await ws.close()


def kiwoom_conn(sim: Simulator) -> Any:
    return next(c for c in sim.conns.values() if c.broker == "kiwoom" and not c.closed)


async def test_swallow_replies_keeps_the_requests(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimConfig(rate=0, ping_interval=0.2)) as sim:
        kw = await http.ws_connect(sim.kiwoom_ws_url)
        await kw.send_str(json.dumps({"trnm": "LOGIN", "token": sim.kiwoom_token(sim_appkey(1))}))
        assert json.loads(await next_frame(kw))["return_code"] == 0
        kis = await kis_session(http, sim)  # its subscribe is answered: not yet swallowing
        assert json.loads(await next_frame(kis))["body"]["msg_cd"] == "OPSP0000"
        assert sim.fault("swallow_replies", count=1)["affected"] == 2

        def reg(trnm: str, typ: str, item: str) -> str:
            return json.dumps(
                {"trnm": trnm, "grp_no": "1", "data": [{"item": [item], "type": [typ]}]}
            )

        await kw.send_str(reg("REG", "0B", "000660"))  # registered, its reply swallowed
        await kw.send_str(reg("REG", "ZZ", "005930"))  # refused: the first reply that comes
        refused = json.loads(await next_frame(kw))
        assert (refused["trnm"], refused["return_code"]) == ("REG", 1)
        assert "type=ZZ" in refused["return_msg"]
        assert kiwoom_conn(sim).registrations() == {("0B", "000660")}

        sim.fault("swallow_replies", broker="kiwoom", op="unsubscribe", count=1)
        await kw.send_str(reg("REMOVE", "0B", "000660"))  # removed, its reply swallowed
        await kw.send_str(reg("REG", "0B", "005930"))  # a subscribe reply is not swallowed
        assert json.loads(await next_frame(kw)) == {
            "trnm": "REG",
            "return_code": 0,
            "return_msg": "",
        }
        assert kiwoom_conn(sim).registrations() == {("0B", "005930")}

        def sub(key: str) -> str:
            header = {"approval_key": sim.kis_approval_key(), "custtype": "P", "tr_type": "1"}
            return json.dumps(
                {"header": header, "body": {"input": {"tr_id": "H0STCNT0", "tr_key": key}}}
            )

        await kis.send_str(sub("000660"))  # registered, its reply swallowed
        await kis.send_str(sub("000660"))  # the same again: the broker says it already is
        again = json.loads(await next_frame(kis))
        assert (again["header"]["tr_key"], again["body"]["msg_cd"]) == ("000660", "OPSP0002")
        assert sim.stats()["replies_swallowed"] == 3
        with pytest.raises(ValueError, match="op must be one of subscribe, unsubscribe, any"):
            sim.fault("swallow_replies", op="both")
        await kw.close()
        await kis.close()
