"""KIS's WebSocket approval key and REST access token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from krfeed.brokers.credentials import Credential, Issuer, mask
from krfeed.errors import AuthError, KrfeedError, TransientError
from krfeed.schema.convert import KST

#: KIS approval keys are treated as valid this long (UNVERIFIED: ~24 h).
KIS_APPROVAL_TTL = timedelta(hours=23)
#: Refusals that mean "too many requests / try again later": the KIS gateway's.
KIS_RETRY_LATER = frozenset({"EGW00133"})


class KISApprovalKey(Issuer):
    """KIS WebSocket approval key (``POST /oauth2/Approval``, body field ``secretkey``)."""

    kind = "kis-approval"

    async def _issue(self) -> Credential:
        status, data = await self._post(
            "/oauth2/Approval",
            {"grant_type": "client_credentials", "appkey": self.appkey, "secretkey": self._secret},
        )
        if status == 429 or status >= 500:
            raise TransientError(f"KIS approval endpoint answered HTTP {status}")
        key = data.get("approval_key") if isinstance(data, dict) else None
        if status != 200 or not key:
            raise _kis_refusal("KIS approval endpoint", self.appkey, data)
        return Credential(str(key), datetime.now(UTC) + KIS_APPROVAL_TTL)


class KISAccessToken(Issuer):
    """KIS REST access token (``POST /oauth2/tokenP``, body field ``appsecret``)."""

    kind = "kis-token"

    async def _issue(self) -> Credential:
        status, data = await self._post(
            "/oauth2/tokenP",
            {"grant_type": "client_credentials", "appkey": self.appkey, "appsecret": self._secret},
        )
        if status == 429 or status >= 500:
            raise TransientError(f"KIS token endpoint answered HTTP {status}")
        token = data.get("access_token") if isinstance(data, dict) else None
        if status != 200 or not token:
            raise _kis_refusal("KIS token endpoint", self.appkey, data)
        expires: datetime
        try:
            expires = datetime.strptime(
                str(data["access_token_token_expired"]), "%Y-%m-%d %H:%M:%S"
            ).replace(tzinfo=KST)
        except (KeyError, ValueError):
            secs = int(data.get("expires_in") or 86400) if isinstance(data, dict) else 86400
            expires = datetime.now(UTC) + timedelta(seconds=secs)
        return Credential(str(token), expires)


def _kis_refusal(what: str, appkey: str, data: Any) -> KrfeedError:
    msg = _kis_error(data)
    code = str(data.get("error_code") or "") if isinstance(data, dict) else ""
    if code in KIS_RETRY_LATER:
        return TransientError(f"{what} asks to try again later: {msg} ({code})")
    return AuthError(f"KIS refused the app key/secret {mask(appkey)}: {msg}", code or msg)


def _kis_error(data: Any) -> str:
    if isinstance(data, dict):
        for k in ("error_description", "msg1", "error_code", "message"):
            if data.get(k):
                return str(data[k])
    return str(data)[:200]
