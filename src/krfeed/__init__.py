"""krfeed — real-time WebSocket feeds of Korean brokers (Kiwoom REST API, KIS Open API)."""

from __future__ import annotations

from krfeed.protocol import KISCodec, KiwoomCodec, decode
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import KISRecord, KiwoomRecord, Record

__version__ = "0.1.0"

__all__ = [
    "DecodeError",
    "KISCodec",
    "KISRecord",
    "KiwoomCodec",
    "KiwoomRecord",
    "Record",
    "__version__",
    "decode",
]
