"""Tokens and approval keys, whatever the broker: fetched over REST, cached, refreshed before
expiry (the broker's KST ``expires_dt``, never a naive clock), re-issued when the broker says
they are invalid, and rate-limited (token issuance ~1/s). Each broker's issuers live in
``krfeed.brokers.<broker>.auth``."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from krfeed.brokers.http import request
from krfeed.errors import TransientError, network_reason
from krfeed.logs import get_logger, register_secret
from krfeed.schema.convert import KST

log = get_logger("krfeed.auth")

#: Kiwoom's own client refreshes 600 s before expiry.
REFRESH_MARGIN = timedelta(seconds=600)
_MIN_ISSUE_INTERVAL = 1.0


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


class Issuer:
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
            # the refused one is never sent again, even if issuing a new one fails now
            self.invalidate()
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
        reply = await request(
            self._http,
            "POST",
            url,
            headers={"Content-Type": "application/json;charset=UTF-8"},
            json_body=body,
            timeout=15,
            network_error=lambda e: TransientError(
                f"{self.kind} request to {url} failed: {network_reason(e)}"
            ),
        )
        return reply.status, reply.data

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


def mask(s: str) -> str:
    """An app key shown safely: the first 4 characters and a mask."""
    if not s:
        return "''"
    return s[:4] + "****" if len(s) > 8 else "****"


def _fingerprint(appkey: str, url: str) -> str:
    import hashlib

    return hashlib.sha256(f"{appkey}|{url}".encode()).hexdigest()[:16]
