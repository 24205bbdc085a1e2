"""Kiwoom's account inquiries over REST (``POST /api/dostk/acnt``): kt00009, ka10075 and
ka10076, paged with ``cont-yn``/``next-key``, for order reconciliation."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import aiohttp

from krfeed.brokers.http import Outcome, RateLimiter, Reply, request
from krfeed.brokers.kiwoom.auth import KiwoomToken
from krfeed.errors import ReconcileError
from krfeed.orders.model import order_no_of

#: Kiwoom's REST rate is not published (error codes 1700-1702 are): 5/s is OpenAPI+'s old rule.
KIWOOM_RATE = 5.0
#: Kiwoom's error codes inside return_msg ("[1700:…]"): rate limits, and invalid tokens
KIWOOM_RATE_LIMITED = re.compile(r"\b170[012]\b")
KIWOOM_BAD_TOKEN = re.compile(r"\b(?:8005|8031|8103)\b")


def _judge(api_id: str) -> Callable[[Reply], tuple[Outcome, str]]:
    def judge(reply: Reply) -> tuple[Outcome, str]:
        data = reply.data
        msg = str(data.get("return_msg") or "") if isinstance(data, dict) else str(data)
        if reply.status == 429 or KIWOOM_RATE_LIMITED.search(msg):
            return Outcome.SLOW_DOWN, ""
        if not isinstance(data, dict):
            raise ReconcileError(f"{api_id}: unexpected answer (HTTP {reply.status})")
        rc = data.get("return_code", 0)
        if rc in (0, "0"):
            return Outcome.OK, ""
        failed = f"return_code {rc}: {msg.strip()}"
        if KIWOOM_BAD_TOKEN.search(msg):
            return Outcome.RENEW, failed
        raise ReconcileError(f"{api_id}: {failed}")

    return judge


class KiwoomAccountAPI:
    """Kiwoom ``POST /api/dostk/acnt``: kt00009, ka10075, ka10076 with cont-yn/next-key paging."""

    path = "/api/dostk/acnt"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        rest_url: str,
        token: KiwoomToken,
        limiter: RateLimiter,
        *,
        timeout: float = 15.0,
        max_pages: int = 1000,
    ) -> None:
        self._http = http
        self._url = rest_url.rstrip("/") + self.path
        self.token = token
        self.limiter = limiter
        self.timeout = timeout
        self.max_pages = max_pages
        self.requests = 0

    def _count(self) -> None:
        self.requests += 1

    async def _post(
        self, api_id: str, body: dict[str, Any], next_key: str | None
    ) -> tuple[dict[str, Any], bool, str]:
        headers = {"Content-Type": "application/json;charset=UTF-8", "api-id": api_id}
        if next_key is not None:
            headers["cont-yn"] = "Y"
            headers["next-key"] = next_key
        reply = await request(
            self._http,
            "POST",
            self._url,
            headers=headers,
            json_body=body,
            timeout=self.timeout,
            attempts=6,
            network_attempts=3,
            limiter=self.limiter,
            token=self.token,
            judge=_judge(api_id),
            network_error=lambda e: ReconcileError(f"{api_id}: {type(e).__name__}"),
            fail=lambda m: ReconcileError(f"{api_id}: {m}"),
            counted=self._count,
        )
        cont = reply.headers.get("cont-yn", "N").strip().upper() == "Y"
        key = reply.headers.get("next-key", "").strip()
        data: dict[str, Any] = reply.data
        return data, cont and bool(key), key

    async def pages(
        self,
        api_id: str,
        body: dict[str, Any],
        list_key: str,
        stop: Callable[[list[dict[str, Any]]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Every row of ``list_key`` over all pages (until ``stop(page)`` says enough)."""
        rows: list[dict[str, Any]] = []
        key: str | None = None
        for _ in range(self.max_pages):
            data, more, key = await self._post(api_id, body, key)
            page = [r for r in data.get(list_key) or [] if isinstance(r, dict)]
            rows.extend(page)
            if not more or (stop is not None and stop(page)):
                return rows
        raise ReconcileError(f"{api_id}: more than {self.max_pages} pages")

    async def order_status(self, *, from_order_no: str = "") -> list[dict[str, Any]]:
        """kt00009 계좌별주문체결현황 of today: every order from ``from_order_no`` up."""
        body = {
            "ord_dt": "",
            "stk_bond_tp": "0",
            "mrkt_tp": "0",
            "sell_tp": "0",
            "qry_tp": "0",
            "stk_cd": "",
            "fr_ord_no": from_order_no,
            "dmst_stex_tp": "%",
        }
        return await self.pages("kt00009", body, "acnt_ord_cntr_prst_array")

    async def unfilled(self) -> list[dict[str, Any]]:
        """ka10075 미체결: every open order (stex_tp 0 통합 — UNVERIFIED that it lists KRX and
        NXT orders alike; the guide only names the codes)."""
        body = {"all_stk_tp": "0", "trde_tp": "0", "stk_cd": "", "stex_tp": "0"}
        return await self.pages("ka10075", body, "oso")

    async def filled(self, *, down_to: str | None = None) -> list[dict[str, Any]]:
        """ka10076 체결 (newest first), stopping below order number ``down_to``."""
        body = {"stk_cd": "", "qry_tp": "0", "sell_tp": "0", "ord_no": "", "stex_tp": "0"}

        def below(page: list[dict[str, Any]]) -> bool:
            if down_to is None or not page:
                return False
            last = order_no_of("kiwoom", page[-1].get("ord_no"))
            return last is not None and last < down_to

        return await self.pages("ka10076", body, "cntr", below)
