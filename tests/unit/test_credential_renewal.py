"""A refused credential is never sent again, even when issuing its replacement fails for now
(both brokers' sessions rely on this: the next connection issues anew)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from krfeed.brokers.kiwoom.auth import KiwoomToken
from krfeed.errors import TransientError


async def test_a_refused_token_is_forgotten_when_its_renewal_fails(tmp_path: Path) -> None:
    answers = [
        web.json_response({"return_code": 0, "token": "TOKEN-ONE", "expires_dt": "20991231235959"}),
        web.json_response({"return_msg": "busy"}, status=503),
        web.json_response({"return_code": 0, "token": "TOKEN-TWO", "expires_dt": "20991231235959"}),
    ]

    async def token(_request: web.Request) -> web.Response:
        return answers.pop(0)

    app = web.Application()
    app.router.add_post("/oauth2/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            issuer = KiwoomToken(http, f"http://127.0.0.1:{port}", "k" * 36, "s" * 36, tmp_path)
            assert await issuer.get() == "TOKEN-ONE"
            assert issuer.cached()
            with pytest.raises(TransientError):
                await issuer.renew("TOKEN-ONE")  # the broker refused it; the endpoint is busy
            # not in memory, not on disk: the next connection asks for a new one
            assert not issuer.cached()
            assert not list(tmp_path.iterdir())
            assert await issuer.get() == "TOKEN-TWO"
    finally:
        await runner.cleanup()
