"""Moved to :mod:`krfeed.sinks.payload` (the bus payload of an item, not a wire codec); this
name stays for code that imports it."""

from krfeed.sinks.payload import (
    EVENTS,
    PayloadError,
    decode_payload,
    encode_payload,
    encode_with_id,
    from_dict,
    item_id,
    record_class,
)

__all__ = [
    "EVENTS",
    "PayloadError",
    "decode_payload",
    "encode_payload",
    "encode_with_id",
    "from_dict",
    "item_id",
    "record_class",
]
