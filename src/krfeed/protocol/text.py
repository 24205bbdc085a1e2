"""Lenient text of an inbound frame.

Both brokers send UTF-8 text frames, but live KIS frames have been seen with invalid UTF-8
(suspected CP949 text, mostly H0STANC0 before the open). krfeed receives frames as bytes and
turns them into text here instead of letting the WebSocket library close the connection with
1007: UTF-8 when the frame is valid UTF-8; else CP949 when that makes the whole frame valid;
else UTF-8 with U+FFFD replacement characters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final, TypeVar

import msgspec

from krfeed.protocol.messages import DecodeError

#: How a frame that was not valid UTF-8 became text.
CP949: Final = "cp949"
REPLACED: Final = "replace"

M = TypeVar("M")


def frame_text(data: bytes) -> tuple[str, str | None]:
    """The text of a frame and how it was decoded: ``None`` (valid UTF-8), :data:`CP949`
    (the whole frame is valid CP949) or :data:`REPLACED` (UTF-8 with U+FFFD for bad bytes)."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp949"), CP949
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), REPLACED


def with_raw_bytes(messages: Sequence[M], data: bytes, how: str) -> list[M]:
    """``messages`` with ``raw_bytes=data`` on each :class:`DecodeError` of a frame that was
    not valid UTF-8 (``how`` it was decoded, from :func:`frame_text`); its reason says so."""
    # the cause first: what the decoder then said follows from the bad bytes
    note = (
        "the frame was not valid UTF-8 (decoded as CP949), then: "
        if how == CP949
        else "the frame was not valid UTF-8 (bad bytes replaced by U+FFFD), then: "
    )
    return [
        msgspec.structs.replace(m, raw_bytes=data, reason=note + m.reason)
        if isinstance(m, DecodeError) and m.raw_bytes is None
        else m
        for m in messages
    ]


def receive_bytes(
    receive: Callable[[str, datetime | None], Sequence[M]],
    data: bytes,
    received_at: datetime | None,
) -> list[M]:
    """Decode a frame given as bytes with a codec's text ``receive``: the lenient text, and the
    raw bytes on any :class:`DecodeError` when the frame was not valid UTF-8."""
    text, how = frame_text(data)
    out = receive(text, received_at)
    return list(out) if how is None else with_raw_bytes(out, data, how)
