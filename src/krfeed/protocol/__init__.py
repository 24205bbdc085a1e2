"""Sans-I/O codecs of both brokers' real-time protocols."""

from __future__ import annotations

from datetime import datetime

from krfeed.protocol.kis import KISCodec, KISMessage
from krfeed.protocol.kiwoom import KiwoomCodec, KiwoomMessage
from krfeed.protocol.messages import DecodeError

Message = KiwoomMessage | KISMessage


def decode(
    broker: str,
    frame: str | bytes,
    *,
    key: str | None = None,
    iv: str | None = None,
    received_at: datetime | None = None,
) -> list[Message]:
    """Decode one raw frame of ``broker`` ("kiwoom" or "kis") into records and messages.

    Stateless convenience over the codecs: ``key``/``iv`` decrypt encrypted KIS frames (live
    sessions keep them per TR in a :class:`KISCodec`). Never raises for bad frames: they come
    back as :class:`DecodeError`.
    """
    if broker == "kiwoom":
        if key or iv:
            raise ValueError("key/iv apply to KIS frames only")
        return list(KiwoomCodec().receive(frame, received_at))
    if broker == "kis":
        return list(KISCodec(key=key, iv=iv).receive(frame, received_at))
    raise ValueError(f"unknown broker {broker!r}: use 'kiwoom' or 'kis'")


__all__ = ["DecodeError", "KISCodec", "KiwoomCodec", "Message", "decode"]
