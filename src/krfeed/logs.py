"""Logging with secrets masked: every registered secret is replaced by ``****`` in any record
that passes through krfeed's loggers, whatever code formatted it."""

from __future__ import annotations

import logging
import threading

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Never let ``value`` appear in krfeed's log output."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, "****")
    return text


def redact_bytes(data: bytes) -> bytes:
    """:func:`redact` for a frame kept as bytes: each secret's UTF-8 bytes become ``****``
    (secrets are ASCII, the same bytes in UTF-8 and CP949)."""
    for s in _secrets:
        b = s.encode()
        if b in data:
            data = data.replace(b, b"****")
    return data


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            msg = record.getMessage()
            clean = redact(msg)
            if clean != msg:
                record.msg, record.args = clean, None
            if record.exc_info and not record.exc_text:
                # Formatters use exc_text when set: a secret in an exception's text is masked.
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = RedactFilter()


def get_logger(name: str) -> logging.Logger:
    """A krfeed logger whose records are redacted (logger filters don't apply to children's
    records, so each krfeed logger carries the filter itself)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
