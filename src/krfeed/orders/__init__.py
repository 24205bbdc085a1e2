"""Orders: normalized order events of both brokers, the account's order book, and REST
reconciliation so that no fill is missed across disconnects.

    from krfeed.orders import OrderStream, OrderEvent

    async with OrderStream(feed) as orders:
        async for ev in orders:
            ...

- :mod:`krfeed.orders.model` — :class:`OrderEvent`, :func:`normalize` (the field mapping).
- :mod:`krfeed.orders.tracker` — :class:`OrderTracker` (per-order state, duplicates, anomalies).
- :mod:`krfeed.orders.reconcile` — REST inquiries, rate limiting, the comparison.
- :mod:`krfeed.orders.stream` — :class:`OrderStream`, the feed wrapper that ties them together.
"""

from __future__ import annotations

from krfeed.orders.model import (
    AccountRef,
    Fill,
    OrderAnomaly,
    OrderEvent,
    OrderState,
    ReconcileReport,
    normalize,
)
from krfeed.orders.reconcile import (
    KISAccountAPI,
    KiwoomAccountAPI,
    OrderSnapshot,
    RateLimiter,
    ReconcileError,
    ReconcileOptions,
    kis_snapshot,
    kiwoom_snapshot,
)
from krfeed.orders.stream import OrderStream, ReconcileMarker, StreamItem
from krfeed.orders.tracker import DaySummary, OrderTracker

# program trading is not about orders: krfeed.program, re-exported here for earlier imports
from krfeed.program import ProgramFlow, ProgramTotals, ProgramTrading, normalize_program

__all__ = [
    "AccountRef",
    "DaySummary",
    "Fill",
    "KISAccountAPI",
    "KiwoomAccountAPI",
    "OrderAnomaly",
    "OrderEvent",
    "OrderSnapshot",
    "OrderState",
    "OrderStream",
    "OrderTracker",
    "ProgramFlow",
    "ProgramTotals",
    "ProgramTrading",
    "RateLimiter",
    "ReconcileError",
    "ReconcileMarker",
    "ReconcileOptions",
    "ReconcileReport",
    "StreamItem",
    "kis_snapshot",
    "kiwoom_snapshot",
    "normalize",
    "normalize_program",
]
