"""Tokens and approval keys: fetched over REST, cached, refreshed before expiry (the broker's
KST ``expires_dt``, never a naive clock), re-issued when the broker says they are invalid, and
rate-limited (token issuance ~1/s)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from krfeed.errors import AuthError, KrfeedError, TransientError, network_reason
from krfeed.logs import get_logger, register_secret
from krfeed.schema.convert import KST

log = get_logger("krfeed.auth")

#: Kiwoom's own client refreshes 600 s before expiry.
REFRESH_MARGIN = timedelta(seconds=600)
#: KIS approval keys are treated as valid this long (UNVERIFIED: ~24 h).
KIS_APPROVAL_TTL = timedelta(hours=23)
_MIN_ISSUE_INTERVAL = 1.0
#: Refusals that mean "too many requests / try again later", not bad credentials: Kiwoom's
#: REST codes (embedded as ``[1700:…]``) and the KIS gateway's.
KIWOOM_RETRY_LATER = frozenset({"1700", "1701", "1702", "1999"})
KIS_RETRY_LATER = frozenset({"EGW00133"})
_KIWOOM_CODE = re.compile(r"\[(\d{4}):")


@dataclass(slots=True)
class Credential:
    """A token/key with its expiry (aware datetime)."""

    value: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"Credential(****, expires_at={self.expires_at.isoformat()})"

    def fresh(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return now < self.expires_at - REFRESH_MARGIN


def parse_kst(stamp: str) -> datetime:
    """``yyyyMMddHHmmss`` in KST → aware datetime."""
    return datetime.strptime(stamp.strip(), "%Y%m%d%H%M%S").replace(tzinfo=KST)


class _Issuer:
    """Common caching, rate limiting and single-flight for one kind of credential."""

    kind = "token"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        rest_url: str,
        appkey: str,
        secret: str,
        cache_dir: Path | None = None,
    ) -> None:
        self._http = http
        self._rest = rest_url.rstrip("/")
        self.appkey = appkey
        self._secret = secret
        register_secret(secret)
        self._cred: Credential | None = None
        self._lock = asyncio.Lock()
        self._last_issue = 0.0
        self._cache_file = (
            cache_dir / f"{self.kind}-{_fingerprint(appkey, rest_url)}.json" if cache_dir else None
        )
        self.issued = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(appkey={mask(self.appkey)})"

    async def get(self) -> str:
        """A valid credential, from cache when fresh."""
        async with self._lock:
            if self._cred is None:
                self._cred = self._load()
            if self._cred is None or not self._cred.fresh():
                self._cred = await self._issue_paced()
                self._save(self._cred)
            return self._cred.value

    def cached(self) -> bool:
        """A fresh credential is at hand: the next :meth:`get` sends no request."""
        if self._cred is None:
            self._cred = self._load()
        return self._cred is not None and self._cred.fresh()

    async def renew(self, bad: str | None = None) -> str:
        """A new credential after the broker refused ``bad`` (skips if already replaced)."""
        async with self._lock:
            if self._cred is not None and bad is not None and self._cred.value != bad:
                return self._cred.value
            self._cred = await self._issue_paced()
            self._save(self._cred)
            return self._cred.value

    def invalidate(self) -> None:
        self._cred = None
        if self._cache_file is not None:
            self._cache_file.unlink(missing_ok=True)

    async def _issue_paced(self) -> Credential:
        wait = self._last_issue + _MIN_ISSUE_INTERVAL - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_issue = time.monotonic()
        cred = await self._issue()
        register_secret(cred.value)
        self.issued += 1
        log.info("%s issued for %s, expires %s", self.kind, mask(self.appkey), cred.expires_at)
        return cred

    async def _issue(self) -> Credential:
        raise NotImplementedError

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        url = self._rest + path
        try:
            async with self._http.post(
                url,
                json=body,
                headers={"Content-Type": "application/json;charset=UTF-8"},
                timeout=aiohttp.ClientTimeout(total=15),
            ) as resp:
                text = await resp.text()
                try:
                    data = json.loads(text) if text else {}
                except ValueError:
                    data = {"raw": text[:200]}
                return resp.status, data
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise TransientError(
                f"{self.kind} request to {url} failed: {network_reason(e)}"
            ) from None

    # Disk cache (optional, 0600): survives restarts so a restart doesn't re-issue.
    def _load(self) -> Credential | None:
        if self._cache_file is None or not self._cache_file.exists():
            return None
        try:
            d = json.loads(self._cache_file.read_text())
            cred = Credential(d["value"], datetime.fromisoformat(d["expires_at"]))
        except (ValueError, KeyError, OSError, TypeError):
            return None
        if cred.expires_at.tzinfo is None:  # not written by krfeed: don't guess its zone
            return None
        register_secret(cred.value)
        return cred if cred.fresh() else None

    def _save(self, cred: Credential) -> None:
        if self._cache_file is None:
            return
        self._cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._cache_file.with_suffix(f".{os.getpid()}.tmp")  # processes may share it
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"value": cred.value, "expires_at": cred.expires_at.isoformat()}, fh)
        os.replace(tmp, self._cache_file)


class KiwoomToken(_Issuer):
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


class KISApprovalKey(_Issuer):
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


class KISAccessToken(_Issuer):
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


def mask(s: str) -> str:
    """An app key shown safely: the first 4 characters and a mask."""
    if not s:
        return "''"
    return s[:4] + "****" if len(s) > 8 else "****"


def _fingerprint(appkey: str, url: str) -> str:
    import hashlib

    return hashlib.sha256(f"{appkey}|{url}".encode()).hexdigest()[:16]
