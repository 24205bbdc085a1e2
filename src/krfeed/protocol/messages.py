"""Messages the codecs return for inbound frames (records are in :mod:`krfeed.records`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every non-record message a codec returns."""

    broker: str


def storable(text: str) -> str:
    """``text``, with lone surrogates (which no UTF-8 writer accepts) spelled as ``\\udXXX``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def unparsable(e: BaseException) -> str:
    """Why a JSON parser gave up on a frame, in words."""
    if isinstance(e, RecursionError):
        return "nested too deeply"
    if isinstance(e, UnicodeError):
        return "not valid Unicode text (lone surrogates)"
    return type(e).__name__


class DecodeError(Message, frozen=True, kw_only=True):
    """A frame (or one entry/record of it) that could not be decoded. Nothing is dropped
    silently: ``raw`` is the frame exactly as received, ``reason`` says what was wrong.
    ``raw_bytes`` is the frame's bytes when it was not valid UTF-8 (``raw`` is then its
    lenient text, see :mod:`krfeed.protocol.text`)."""

    raw: str
    reason: str
    received_at: datetime | None = None
    type: str = ""  # the real-time type / TR when known
    raw_bytes: bytes | None = None


class LayoutNotice(Message, frozen=True, kw_only=True):
    """Records of a type arrived in a layout krfeed does not know: longer than its known
    layouts (KIS: more fields per record; Kiwoom: FIDs the declaration lacks). They were
    decoded: the known fields as usual, the rest kept in each record's ``extra``. Said once
    per type and layout, not per frame. ``session`` is set when it travels in a stream."""

    type: str
    fields: int  # values per record on the wire (Kiwoom: FIDs in the entry)
    known: tuple[int, ...]  # the layouts krfeed knows (fields per record), oldest first
    extra: int  # values per record kept in ``extra``
    unknown: tuple[str, ...] = ()  # Kiwoom: the FIDs krfeed does not know
    received_at: datetime | None = None
    session: str = ""

    @property
    def message(self) -> str:
        what = f"FIDs {', '.join(self.unknown)}" if self.unknown else f"{self.extra} value(s)"
        return (
            f"{self.broker} {self.type}: records carry {self.fields} fields, longer than the "
            f"known layout(s) {'/'.join(map(str, self.known))}; the known fields are decoded, "
            f"{what} kept in each record's extra"
        )


# ---- Kiwoom ----


class LoginResult(Message, frozen=True, kw_only=True):
    """Kiwoom LOGIN reply. ``error_code`` is the ``CODE=NNNN`` embedded in a failure message
    (8005/8031/8103 mean: get a new token and retry once)."""

    ok: bool
    return_code: int
    message: str
    error_code: str | None = None


class Ping(Message, frozen=True, kw_only=True):
    """Heartbeat (Kiwoom PING / KIS PINGPONG). Send ``raw`` back unchanged."""

    raw: str


class RegResult(Message, frozen=True, kw_only=True):
    """Kiwoom REG / REMOVE reply (``trnm`` tells which)."""

    trnm: str
    ok: bool
    return_code: int
    message: str


class SystemMessage(Message, frozen=True, kw_only=True):
    """Kiwoom SYSTEM frame, e.g. R10001: another LOGIN with the same appkey closed this one."""

    code: str
    message: str


class ConditionList(Message, frozen=True, kw_only=True):
    """Kiwoom CNSRLST reply: the user's saved condition searches as (seq, name)."""

    ok: bool
    return_code: int
    message: str
    conditions: list[tuple[str, str]]


class ConditionResult(Message, frozen=True, kw_only=True):
    """Kiwoom CNSRREQ / CNSRCLR reply. ``data`` is kept as sent (one-off search results)."""

    trnm: str
    ok: bool
    return_code: int
    message: str
    seq: str = ""
    cont_yn: str = ""
    next_key: str = ""
    data: Any = None


class UnknownMessage(Message, frozen=True, kw_only=True):
    """A well-formed control frame krfeed has no type for (kept whole)."""

    raw: str
    what: str


# ---- KIS ----


class ControlReply(Message, frozen=True, kw_only=True):
    """KIS JSON reply to a subscribe/unsubscribe (or an error such as OPSP8996/OPSP9999)."""

    tr_id: str
    tr_key: str
    rt_cd: str
    msg_cd: str
    msg1: str
    encrypt: str = "N"
    has_key: bool = False  # the reply carried an AES key/iv (kept inside the codec)

    @property
    def ok(self) -> bool:
        """Success, counting OPSP0002 (already subscribed) as success."""
        return self.rt_cd == "0" or self.msg_cd == "OPSP0002"
