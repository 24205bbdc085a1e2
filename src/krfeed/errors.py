"""Exceptions krfeed raises. Messages are one sentence a person can act on, and never contain
secrets."""

from __future__ import annotations


class KrfeedError(Exception):
    """Base of krfeed's exceptions."""


class AuthError(KrfeedError):
    """Credentials were refused (wrong app key or secret): retrying will not help."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class TransientError(KrfeedError):
    """A network or server problem that may go away: retry with backoff."""


class SubscriptionError(KrfeedError):
    """A subscription cannot be made (unknown type, limit reached, not offered on mock)."""


class ConditionError(KrfeedError):
    """A condition search request cannot be made or was refused (one sentence saying why)."""


class FeedClosed(SubscriptionError, ConditionError):
    """The feed was closed: it takes no more subscriptions or condition requests (a new Feed
    does). Caught as SubscriptionError or ConditionError alike."""


def network_reason(e: BaseException) -> str:
    """A failed connection in words a person can act on (``connection refused``, ``host not
    found``, ``timed out``) instead of an exception class name."""
    import socket

    cause: BaseException | None = e
    for _ in range(4):  # aiohttp wraps the OSError (os_error / __cause__)
        if cause is None or isinstance(cause, ConnectionRefusedError | socket.gaierror):
            break
        nxt = getattr(cause, "os_error", None) or cause.__cause__
        if nxt is None:
            break
        cause = nxt
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, socket.gaierror):
        return "host not found"
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[:1].lower() + cause.strerror[1:]
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class ReconcileError(Exception):
    """An inquiry failed (the round is reported as failed and retried later)."""
