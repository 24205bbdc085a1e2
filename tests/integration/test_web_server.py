"""The dashboard server over loopback: security headers, the loopback Host check, the token
flow beyond loopback, the WebSocket's origin check, and no credentials in anything served
(the demo's simulator as the broker)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import pytest

from krfeed.brokers import sim_appkey, sim_secret
from krfeed.web import DashboardState, WebServer
from krfeed.web.app import serve_demo
from krfeed.web.server import CSP, is_loopback


async def get(url: str, **kw: Any) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        http.get(url, allow_redirects=False, **kw) as r,
    ):
        return r.status, dict(r.headers), await r.text()


async def test_headers_and_loopback_host() -> None:
    async with WebServer(DashboardState(), port=0) as server:
        assert server.token is None
        base = f"http://127.0.0.1:{server.port}"
        for path in ("/", "/static/app.js", "/api/snapshot"):
            status, headers, _ = await get(base + path)
            assert status == 200, path
            assert headers["Cache-Control"] == "no-store"
            assert headers["Content-Security-Policy"] == CSP
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["X-Content-Type-Options"] == "nosniff"
        status, _, body = await get(base + "/", headers={"Host": "attacker.example:8700"})
        assert status == 403 and "loopback Host" in body
        status, _, _ = await get(base + "/static/../server.py")
        assert status == 404
        async with aiohttp.ClientSession() as http, http.post(base + "/") as r:
            assert r.status == 405


async def test_token_beyond_loopback() -> None:
    assert not is_loopback("192.0.2.10") and is_loopback("::1") and is_loopback("localhost")
    assert WebServer(DashboardState(), host="192.0.2.10").token  # generated, never None
    async with WebServer(DashboardState(), port=0, token="tok-123") as server:
        base = f"http://127.0.0.1:{server.port}"
        assert server.url == base + "/?token=tok-123"
        assert (await get(base + "/"))[0] == 401
        assert (await get(base + "/api/snapshot"))[0] == 401
        assert (await get(base + "/?token=wrong"))[0] == 401
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(base + "/?token=tok-123", allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Location"] == "/"
                cookie = r.headers["Set-Cookie"]
                assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            async with http.get(base + "/") as r:
                assert r.status == 200 and "app.js" in await r.text()
            async with http.get(base + "/api/snapshot") as r:
                assert r.status == 200
            async with http.ws_connect(base + "/ws") as ws:
                msg = await asyncio.wait_for(ws.receive_json(), 5)
                assert msg["type"] in {"health", "program", "orders"}
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(base + "/ws")


async def test_websocket_refuses_another_origin() -> None:
    async with WebServer(DashboardState(), port=0) as server:
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await http.ws_connect(base + "/ws", headers={"Origin": "http://evil.example"})
            assert e.value.status == 403
            async with http.ws_connect(
                base + "/ws", headers={"Origin": f"http://127.0.0.1:{server.port}"}
            ) as ws:
                assert (await asyncio.wait_for(ws.receive_json(), 5))["type"] in {
                    "program",
                    "health",
                }


async def test_demo_serves_live_data_and_no_credentials() -> None:
    ready: asyncio.Future[WebServer] = asyncio.get_running_loop().create_future()
    out = io.StringIO()
    task = asyncio.create_task(
        serve_demo(port=0, duration=60, out=out, ready=lambda s, st: ready.set_result(s))
    )
    try:
        server = await asyncio.wait_for(ready, 30)
        base = f"http://127.0.0.1:{server.port}"
        assert f"krfeed web: {base}/" in out.getvalue()
        served: list[str] = []
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(base + "/ws") as ws:
                types: set[str] = set()
                ranked = 0
                async with asyncio.timeout(30):
                    while ranked < 5 or not {"orders", "tape", "book", "health"} <= types:
                        m = await ws.receive()
                        served.append(m.data)
                        msg = m.json()
                        types.add(msg["type"])
                        if msg["type"] == "program":
                            ranked = len(msg["ranking"])
            async with http.get(base + "/api/snapshot") as r:
                snap = await r.json()
                served.append(await r.text())
            async with http.get(base + "/") as r:
                served.append(await r.text())
        assert len(snap["program"]["ranking"]) >= 5
        assert {s["state"] for s in snap["health"]["sessions"]} == {"live"}
        text = "\n".join(served)
        for n in (1, 2):
            assert sim_appkey(n) not in text and sim_secret(n) not in text
        for word in ("secretkey", "appkey", "approval_key", "access_token"):
            assert word not in text
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
