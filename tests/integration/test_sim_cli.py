"""``krfeed sim`` as a command: the ready line, the credentials file, clean stop on signals."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from krfeed.brokers import sim_appkey, sim_secret

READY = re.compile(r"^krfeed sim ready: (http://127\.0\.0\.1:(\d+))\n$")


async def start(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "krfeed",
        "sim",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    m = READY.match(line)
    assert m, f"unexpected first line {line!r}"
    assert int(m.group(2)) > 0
    return proc, m.group(1)


async def token(
    http: aiohttp.ClientSession, url: str, appkey: str, secret: str
) -> dict[str, object]:
    body = {"grant_type": "client_credentials", "appkey": appkey, "secretkey": secret}
    async with http.post(f"{url}/oauth2/token", json=body) as r:
        data: dict[str, object] = await r.json()
        return data


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_ready_line_and_clean_stop(sig: signal.Signals) -> None:
    proc, url = await start("--seed", "7", "--ping-interval", "1")
    async with aiohttp.ClientSession() as http:
        assert (await token(http, url, sim_appkey(3), sim_secret(3)))["return_code"] == 0
        ws = await http.ws_connect(url.replace("http", "ws") + "/api/dostk/websocket")
        proc.send_signal(sig)
        msg = await asyncio.wait_for(ws.receive(), 10)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
        await ws.close()
    assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert proc.stdout is not None and await proc.stdout.read() == b""  # exactly one line


async def test_credentials_file(tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"my-app": "my-secret"}))
    proc, url = await start("--credentials", str(creds), "--mock")
    try:
        async with aiohttp.ClientSession() as http:
            assert (await token(http, url, "my-app", "my-secret"))["return_code"] == 0
            refused = await token(http, url, sim_appkey(1), sim_secret(1))
            assert refused["return_code"] != 0 and "8001" in str(refused["return_msg"])
            async with http.get(f"{url}/") as r:
                assert (await r.json())["mock"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_bad_arguments_fail_fast(tmp_path: Path) -> None:
    for args in (["--fault", "explode@1"], ["--credentials", str(tmp_path / "missing.json")]):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "krfeed",
            "sim",
            "--port",
            "0",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2
        assert out == b"" and b"krfeed:" in err
