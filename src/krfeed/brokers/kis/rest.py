"""KIS's order inquiry over REST (``inquire-daily-ccld``, paged with ``CTX_AREA_FK100`` /
``CTX_AREA_NK100`` and ``tr_cont``), for order reconciliation; KIS account numbers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import aiohttp

from krfeed.brokers.http import Outcome, RateLimiter, Reply, request
from krfeed.brokers.kis.auth import KISAccessToken
from krfeed.errors import ReconcileError
from krfeed.orders.model import order_no_of
from krfeed.schema.convert import KST

#: KIS: ~20 requests/s on the real server, ~2/s on the mock server (kis.md).
KIS_RATE = 20.0
KIS_MOCK_RATE = 2.0
KIS_RATE_LIMIT_CODES = ("EGW00201",)
KIS_TOKEN_CODES = ("EGW00121", "EGW00123")
_WHAT = "inquire-daily-ccld"


def split_kis_account(account: str) -> tuple[str, str]:
    """ "12345678-01" or "1234567801" -> ("12345678", "01")."""
    s = account.strip().replace("-", "")
    if len(s) != 10 or not s.isdigit():
        raise ValueError(f"a KIS account is CANO (8 digits) and product code (2), not {account!r}")
    return s[:8], s[8:]


def _judge(reply: Reply) -> tuple[Outcome, str]:
    data, status = reply.data, reply.status
    if not isinstance(data, dict):
        raise ReconcileError(f"{_WHAT}: unexpected answer (HTTP {status})")
    code = str(data.get("msg_cd") or data.get("error_code") or "")
    if status == 429 or code in KIS_RATE_LIMIT_CODES:
        return Outcome.SLOW_DOWN, ""
    msg = data.get("msg1") or data.get("error_description") or ""
    failed = f"HTTP {status} {code} {msg}".strip()
    if code in KIS_TOKEN_CODES:
        return Outcome.RENEW, failed
    if status == 200 and str(data.get("rt_cd", "")) == "0":
        return Outcome.OK, ""
    raise ReconcileError(f"{_WHAT}: {failed}")


class KISAccountAPI:
    """KIS ``GET /uapi/domestic-stock/v1/trading/inquire-daily-ccld`` with CTX_AREA paging."""

    path = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        rest_url: str,
        appkey: str,
        appsecret: str,
        token: KISAccessToken,
        limiter: RateLimiter,
        *,
        mock: bool = False,
        custtype: str = "P",
        timeout: float = 15.0,
        max_pages: int = 1000,
    ) -> None:
        self._http = http
        self._url = rest_url.rstrip("/") + self.path
        self._appkey = appkey
        self._secret = appsecret
        self.token = token
        self.limiter = limiter
        self.tr_id = "VTTC0081R" if mock else "TTTC0081R"
        self.custtype = custtype
        self.timeout = timeout
        self.max_pages = max_pages
        self.requests = 0

    def _count(self) -> None:
        self.requests += 1

    async def _get(self, params: dict[str, str], cont: bool) -> tuple[dict[str, Any], bool]:
        headers = {
            "content-type": "application/json; charset=utf-8",
            "appkey": self._appkey,
            "appsecret": self._secret,
            "tr_id": self.tr_id,
            "custtype": self.custtype,
            "tr_cont": "N" if cont else "",
        }
        reply = await request(
            self._http,
            "GET",
            self._url,
            headers=headers,
            params=dict(params),
            timeout=self.timeout,
            attempts=6,
            network_attempts=3,
            limiter=self.limiter,
            token=self.token,
            judge=_judge,
            network_error=lambda e: ReconcileError(f"{_WHAT}: {type(e).__name__}"),
            fail=lambda m: ReconcileError(f"{_WHAT}: {m}"),
            counted=self._count,
        )
        more = reply.headers.get("tr_cont", "").strip().upper() in ("M", "F")
        data: dict[str, Any] = reply.data
        return data, more

    async def daily_orders(
        self, cano: str, product: str, *, day: date | None = None, down_to: str | None = None
    ) -> list[dict[str, Any]]:
        """``output1`` rows of today (newest first), stopping below order number ``down_to``."""
        d = (day or datetime.now(KST).date()).strftime("%Y%m%d")
        params = {
            "CANO": cano,
            "ACNT_PRDT_CD": product,
            "INQR_STRT_DT": d,
            "INQR_END_DT": d,
            "SLL_BUY_DVSN_CD": "00",
            "INQR_DVSN": "00",
            "PDNO": "",
            "CCLD_DVSN": "00",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "EXCG_ID_DVSN_CD": "ALL",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
        }
        rows: list[dict[str, Any]] = []
        cont = False
        for _ in range(self.max_pages):
            data, more = await self._get(params, cont)
            page = [r for r in data.get("output1") or [] if isinstance(r, dict)]
            rows.extend(page)
            if down_to is not None and page:
                last = order_no_of("kis", page[-1].get("odno"))
                if last is not None and last < down_to:
                    return rows
            if not more:
                return rows
            params["CTX_AREA_FK100"] = str(data.get("ctx_area_fk100") or "")
            params["CTX_AREA_NK100"] = str(data.get("ctx_area_nk100") or "")
            cont = True
        raise ReconcileError(f"{_WHAT}: more than {self.max_pages} pages")
