"""The one retrying HTTP helper of krfeed's REST calls (tokens, approval keys, account
inquiries), and the token bucket that paces them.

:func:`request` sends one JSON request and, as the caller's ``judge`` decides, returns the
answer, waits out a rate limit (the bucket taken below empty, then again), renews the token
once, or raises; network errors are retried ``network_attempts`` times in all.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import aiohttp

#: what a failed connection, a timeout or a reset looks like
NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


class RateLimiter:
    """Token bucket: ``rate`` requests per second, in bursts of at most ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._t = clock()
        self._lock = asyncio.Lock()
        self.waited = 0.0

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
                self._t = now
                if self._tokens >= 1 - 1e-9:  # float rounding must not mean another wait
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                wait = (1 - self._tokens) / self.rate
                self.waited += wait
                await self._sleep(wait)

    def backoff(self, seconds: float) -> None:
        """The server said "too fast": take the bucket below empty for ``seconds``."""
        self._tokens = min(self._tokens, 0.0) - seconds * self.rate


class Token(Protocol):
    """A bearer token source (:class:`~krfeed.brokers.credentials.Issuer`)."""

    async def get(self) -> str: ...

    async def renew(self, bad: str | None = None) -> str: ...


@dataclass(slots=True)
class Reply:
    """An HTTP answer: status, the JSON body (``{"raw": …}`` when not JSON, ``{}`` when
    empty) and the headers."""

    status: int
    data: Any
    headers: Mapping[str, str]


class Outcome(Enum):
    OK = "ok"
    SLOW_DOWN = "slow down"  # rate-limited: back off, then again
    RENEW = "renew"  # the token was refused: renew it once, then again


Judge = Callable[[Reply], "tuple[Outcome, str]"]


def _accept(reply: Reply) -> tuple[Outcome, str]:
    return Outcome.OK, ""


async def body_of(resp: aiohttp.ClientResponse) -> Any:
    """The JSON body of ``resp``, leniently."""
    text = await resp.text()
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {"raw": text[:200]}


async def request(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    json_body: Any = None,
    params: Mapping[str, str] | None = None,
    timeout: float = 15.0,
    attempts: int = 1,
    network_attempts: int = 1,
    limiter: RateLimiter | None = None,
    token: Token | None = None,
    judge: Judge = _accept,
    network_error: Callable[[BaseException], Exception],
    fail: Callable[[str], Exception] = RuntimeError,
    counted: Callable[[], None] | None = None,
) -> Reply:
    """Send until ``judge`` says OK (returns the reply) or gives up (raises ``fail(message)``).

    Each attempt waits for ``limiter`` and sends ``token`` as a bearer. ``judge`` returns
    (OK | SLOW_DOWN | RENEW, message) or raises; RENEW a second time raises ``fail(message)``.
    A network error is retried after 0.2 x 2^attempt s while fewer than
    ``network_attempts`` attempts were made, else raised as ``network_error(e)``.
    """
    renewed = False
    for attempt in range(attempts):
        if limiter is not None:
            await limiter.acquire()
        hdrs = dict(headers)
        tok = ""
        if token is not None:
            tok = await token.get()
            hdrs["authorization"] = f"Bearer {tok}"
        if counted is not None:
            counted()
        try:
            async with http.request(
                method,
                url,
                json=json_body,
                params=params,
                headers=hdrs,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                reply = Reply(resp.status, await body_of(resp), resp.headers)
        except NETWORK_ERRORS as e:
            if attempt + 1 >= network_attempts:
                raise network_error(e) from None
            await asyncio.sleep(0.2 * 2**attempt)
            continue
        outcome, message = judge(reply)
        if outcome is Outcome.SLOW_DOWN:
            if limiter is not None:
                limiter.backoff(0.5 * 2**attempt)
            continue
        if outcome is Outcome.RENEW and token is not None:
            if renewed:
                raise fail(message)
            renewed = True
            await token.renew(tok)
            continue
        return reply
    raise fail("still rate-limited after retries")
