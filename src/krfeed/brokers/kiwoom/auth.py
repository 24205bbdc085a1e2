"""Kiwoom's access token (au10001 / au10002)."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta

from krfeed.brokers.credentials import Credential, Issuer, mask, parse_kst
from krfeed.errors import AuthError, TransientError

#: Refusals that mean "too many requests / try again later", not bad credentials: Kiwoom's
#: REST codes (embedded as ``[1700:…]``).
KIWOOM_RETRY_LATER = frozenset({"1700", "1701", "1702", "1999"})
_KIWOOM_CODE = re.compile(r"\[(\d{4}):")


class KiwoomToken(Issuer):
    """Kiwoom access token (au10001 ``POST /oauth2/token``)."""

    kind = "kiwoom-token"

    async def _issue(self) -> Credential:
        status, data = await self._post(
            "/oauth2/token",
            {"grant_type": "client_credentials", "appkey": self.appkey, "secretkey": self._secret},
        )
        if status == 429 or status >= 500:
            raise TransientError(f"Kiwoom token endpoint answered HTTP {status}")
        rc = data.get("return_code") if isinstance(data, dict) else None
        token = data.get("token") if isinstance(data, dict) else None
        if status != 200 or rc not in (0, "0", None) or not token:
            msg = str(data.get("return_msg") or data) if isinstance(data, dict) else str(data)
            m = _KIWOOM_CODE.search(msg)
            if m and m.group(1) in KIWOOM_RETRY_LATER:
                raise TransientError(f"Kiwoom token endpoint asks to try again later: {msg}")
            raise AuthError(
                f"Kiwoom refused the app key/secret {mask(self.appkey)}: {msg}", str(rc or status)
            )
        try:
            expires = parse_kst(str(data["expires_dt"]))
        except (KeyError, ValueError):
            expires = datetime.now(UTC) + timedelta(hours=12)
        return Credential(str(token), expires)

    async def revoke(self) -> None:
        """au10002: revoke the current token (best effort)."""
        if self._cred is None:
            return
        with contextlib.suppress(TransientError):
            await self._post(
                "/oauth2/revoke",
                {"appkey": self.appkey, "secretkey": self._secret, "token": self._cred.value},
            )
        self.invalidate()
