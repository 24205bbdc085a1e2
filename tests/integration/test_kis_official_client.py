"""KIS's official sample client against the simulator, by its logic (own code, same steps).

The client in koreainvestment/open-trading-api (examples_user/kis_auth.py) gets an approval key
(POST /oauth2/Approval with ``secretkey``), opens ``<ws>/tryitout``, and keeps per tr_id what
every JSON reply's header says in ``encrypt`` plus the body's ``output.key``/``output.iv``. A data
frame ``<enc>|<tr_id>|<NNN>|<payload>`` is split on ``|``; the payload is AES-256-CBC decrypted
(base64, PKCS#7, key/iv as UTF-8) only when the stored flag is ``"Y"``, then read as
``^``-separated values under the TR's column names. Also: simulator credentials in the shapes of
real keys, account names in real and mock mode, the WebSocket on any path.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from krfeed.brokers import KIS, sim_appkey, sim_secret
from krfeed.schema.catalog import get_type
from krfeed.sim import DEFAULT_CREDENTIALS, SimConfig, Simulator
from krfeed.sim.orders import HOLDER_NAMES, MOCK_ACCOUNT_NAME

from .helpers import wait_for

HTS_ID = "simuser1"
#: H0STCNI0's 26 columns (kis_domestic_stock_fields.json, the official client's list).
NOTICE_COLUMNS = [f.wire for f in get_type("kis", "H0STCNI0").fields]


def aes_cbc_base64_decrypt(key: str, iv: str, payload: str) -> str:
    dec = Cipher(algorithms.AES(key.encode("utf-8")), modes.CBC(iv.encode("utf-8"))).decryptor()
    padded = dec.update(base64.b64decode(payload)) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")


class OfficialClientLogic:
    """The sample client's receive path: a data_map per tr_id fed by every JSON reply."""

    def __init__(self) -> None:
        self.data_map: dict[str, dict[str, Any]] = {}
        self.replies: list[dict[str, Any]] = []

    def subscribe_frame(self, approval_key: str, tr_id: str, tr_key: str) -> str:
        self.data_map.setdefault(tr_id, {"encrypt": False, "key": None, "iv": None})
        self.data_map[tr_id]["columns"] = NOTICE_COLUMNS if tr_id == "H0STCNI0" else []
        header = {"content-type": "utf-8", "approval_key": approval_key}
        header |= {"tr_type": "1", "custtype": "P"}
        return json.dumps({"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}})

    def on_frame(self, raw: str) -> dict[str, str] | None:
        """The row of a data frame (the client reads one line: one record); None for a JSON
        reply (recorded in data_map)."""
        if raw[0] in ("0", "1"):
            parts = raw.split("|")
            tr_id, payload = parts[1], parts[3]
            dm = self.data_map[tr_id]
            if dm.get("encrypt") == "Y":
                payload = aes_cbc_base64_decrypt(dm["key"], dm["iv"], payload)
            return dict(zip(dm["columns"], payload.split("^"), strict=True))
        msg = json.loads(raw)
        self.replies.append(msg)
        tr_id = msg["header"]["tr_id"]
        entry = self.data_map.setdefault(tr_id, {"encrypt": False, "key": None, "iv": None})
        if tr_id != "PINGPONG":
            entry["encrypt"] = msg["header"]["encrypt"]
        out = (msg.get("body") or {}).get("output")
        if out:
            entry["key"], entry["iv"] = out["key"], out["iv"]
        return None


async def approval_key(http: aiohttp.ClientSession, url: str) -> str:
    body = {"grant_type": "client_credentials", "appkey": sim_appkey(1)}
    body["secretkey"] = sim_secret(1)
    headers = {"Content-Type": "application/json", "Accept": "text/plain", "charset": "UTF-8"}
    async with http.post(url + "/oauth2/Approval", data=json.dumps(body), headers=headers) as r:
        assert r.status == 200
        return str((await r.json())["approval_key"])


async def test_flag_driven_decryption_of_execution_notices() -> None:
    client = OfficialClientLogic()
    rows: list[dict[str, str]] = []
    async with (
        Simulator(SimConfig(port=0, seed=4, ping_interval=0.2)) as sim,
        aiohttp.ClientSession() as http,
    ):
        key = await approval_key(http, sim.url)
        ws_url = sim.url.replace("http://", "ws://") + "/tryitout"
        async with http.ws_connect(ws_url) as ws:
            await ws.send_str(client.subscribe_frame(key, "H0STCNI0", HTS_ID))
            await ws.send_str(client.subscribe_frame(key, "H0STCNT0", "005930"))
            while len(client.replies) < 2:
                client.on_frame(await ws.receive_str(timeout=5))
            order = await sim.place_order("kis", code="005930", qty=3, appkey=sim_appkey(1))
            while not any(r["CNTG_YN"] == "2" for r in rows):
                msg = await ws.receive_str(timeout=5)
                if msg.startswith("1|H0STCNI0|001|"):
                    row = client.on_frame(msg)
                    assert row is not None
                    rows.append(row)
                elif msg.startswith("{"):
                    client.on_frame(msg)
        account = sim.account("kis", sim_appkey(1))

    subscribed = {r["header"]["tr_id"]: r for r in client.replies[:2]}
    assert subscribed["H0STCNI0"]["header"]["encrypt"] == "Y"
    assert subscribed["H0STCNI0"]["body"]["msg1"] == "SUBSCRIBE SUCCESS"
    assert subscribed["H0STCNT0"]["header"]["encrypt"] == "N"
    assert client.data_map["H0STCNI0"]["encrypt"] == "Y"
    assert len(client.data_map["H0STCNI0"]["key"]) == 32
    assert len(client.data_map["H0STCNI0"]["iv"]) == 16

    ack, fill = rows[0], rows[-1]
    for row in (ack, fill):
        assert row["ACNT_NAME"] in HOLDER_NAMES
        assert len(row) == 26
        assert row["CUST_ID"] == HTS_ID
        assert row["ACNT_NO"] == account + "01"
        assert row["ODER_NO"] == order["order_no"]
        assert row["STCK_SHRN_ISCD"] == "005930"
        assert row["SELN_BYOV_CLS"] == "02"  # buy
        assert row["ODER_QTY"] == "3"
        assert row["CNTG_ISNM40"] == "삼성전자"
        assert row["ACNT_NAME"] not in ("", MOCK_ACCOUNT_NAME)  # a holder's name in real mode
    assert ack["CNTG_YN"] == "1"
    assert fill["CNTG_YN"] == "2"
    assert int(fill["CNTG_QTY"]) > 0 and int(fill["CNTG_UNPR"]) > 0


async def test_mock_mode_account_name_and_encrypt_flag() -> None:
    async with (
        Simulator(SimConfig(port=0, seed=4, mock=True)) as sim,
        aiohttp.ClientSession() as http,
    ):
        client = OfficialClientLogic()
        key = await approval_key(http, sim.url)
        async with http.ws_connect(sim.url.replace("http://", "ws://") + "/tryitout") as ws:
            await ws.send_str(client.subscribe_frame(key, "H0STCNI9", HTS_ID))
            client.on_frame(await ws.receive_str(timeout=5))
        assert client.replies[0]["header"]["encrypt"] == "Y"
        assert sim.engine.account("kis", sim_appkey(1)).name == MOCK_ACCOUNT_NAME


def test_default_credentials_have_the_shapes_of_real_keys() -> None:
    assert len(DEFAULT_CREDENTIALS) == 8
    for n in range(1, 9):
        appkey, secret = sim_appkey(n), sim_secret(n)
        assert DEFAULT_CREDENTIALS[appkey] == secret
        assert (len(appkey), len(secret)) == (36, 180)  # KIS's lengths (python-kis checks them)
        assert appkey.startswith("SIMAPPKEY") and secret.startswith("SIMAPPSECRET")
        assert appkey.isalnum() and secret.isalnum()
    kis = KIS.sim("http://127.0.0.1:1", 2)
    assert (kis.appkey, kis.secretkey) == (sim_appkey(2), sim_secret(2))


async def test_kis_websocket_on_any_path() -> None:
    async with Simulator(SimConfig(port=0, seed=1)) as sim, aiohttp.ClientSession() as http:
        ws_base = sim.url.replace("http://", "ws://")
        for path in ("/tryitout", "/", "/anything/at/all"):
            async with http.ws_connect(ws_base + path) as ws:
                await ws.send_str('{"header":{"tr_id":"PINGPONG"}}')
                await ws.send_str("not json")
                msg = await ws.receive_json(timeout=5)
                assert msg["body"]["msg_cd"] == "OPSP9999", path
        async with http.get(sim.url + "/no/such/path") as r:
            assert r.status == 404
        async with http.get(sim.url + "/") as r:
            assert (await r.json())["kis_ws"] == sim.kis_ws_url
        await wait_for(lambda: sim.stats()["connections"]["kis"]["total"] == 3)
