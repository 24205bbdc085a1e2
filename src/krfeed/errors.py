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
