"""What an error ending a connection means: stop, or reconnect on which path.

Adapters raise :class:`FatalSession` or :class:`Reconnect` from their message handlers; the
engine's loop hands every exception to the session's ``classify`` (this module's
:func:`classify` unless the adapter extends it) and acts on the :class:`Verdict` alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from krfeed.errors import TransientError, network_reason


class FatalSession(Exception):
    """This session must stop; reconnecting would not help (or would do harm)."""

    def __init__(self, reason: str, code: str = "") -> None:
        super().__init__(reason)
        self.code = code


class Reconnect(Exception):
    """End this connection and reconnect (``immediate`` skips the backoff once)."""

    def __init__(self, reason: str, immediate: bool = False) -> None:
        super().__init__(reason)
        self.immediate = immediate


@dataclass(frozen=True, slots=True)
class Verdict:
    """``fatal``: stop with ``reason``/``code``. Otherwise reconnect: ``refused`` takes the
    slow path, ``immediate`` skips the wait once, ``unexpected`` is logged with its trace."""

    reason: str
    fatal: bool = False
    code: str = ""
    refused: bool = False
    immediate: bool = False
    unexpected: bool = False


def describe(e: BaseException | None) -> str:
    """An exception in words: a failed connection as :func:`~krfeed.errors.network_reason`
    says it, else ``Type: message``."""
    if e is None:
        return "unknown error"
    return network_reason(e)


def classify(error: Exception) -> Verdict:
    """The engine's decision for an exception that ended a connection (pure)."""
    if isinstance(error, FatalSession):
        return Verdict(str(error), fatal=True, code=error.code)
    if isinstance(error, Reconnect):
        return Verdict(str(error), refused=True, immediate=error.immediate)
    if isinstance(error, TransientError):
        return Verdict(str(error))
    if isinstance(error, aiohttp.ClientError | OSError | TimeoutError):
        return Verdict(describe(error))
    # not understood: the slow path
    return Verdict(
        f"internal error: {type(error).__name__}: {error}", refused=True, unexpected=True
    )
