"""JSON output of records and messages (numbers as JSON numbers, times as ISO 8601)."""

from __future__ import annotations

from typing import Any

import msgspec

from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record

_encoder = msgspec.json.Encoder(decimal_format="number")


def to_jsonable(obj: Record | msgspec.Struct) -> dict[str, Any]:
    """A dict for one record (``broker``, ``type``, fields) or message (``event``, fields)."""
    if isinstance(obj, Record):
        return obj.to_dict()
    out: dict[str, Any] = {"event": type(obj).__name__}
    for name in obj.__struct_fields__:
        out[name] = getattr(obj, name)
    return out


def dumps(obj: Record | msgspec.Struct | dict[str, Any]) -> str:
    """One line of JSON for a record, a message or a plain dict."""
    if isinstance(obj, dict):
        return _encoder.encode(obj).decode()
    return _encoder.encode(to_jsonable(obj)).decode()


def encode_line(obj: Record | DecodeError | msgspec.Struct) -> bytes:
    return _encoder.encode(to_jsonable(obj)) + b"\n"
