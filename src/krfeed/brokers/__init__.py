"""Brokers: one package per broker (``kiwoom/``, ``kis/``: config, credentials, session adapter,
placement, REST client) and the registry the Feed finds them in.

``Kiwoom`` and ``KIS`` (credentials, endpoints, limits) also carry the type constants
(``Kiwoom.ORDER_EXECUTION``, ``KIS.PROGRAM_TRADING`` …) generated from the catalog.
"""

from __future__ import annotations

from krfeed.brokers import kis, kiwoom
from krfeed.brokers.base import SIM_APPKEY, SIM_SECRET, sim_appkey, sim_secret
from krfeed.brokers.kis import KIS
from krfeed.brokers.kiwoom import Kiwoom
from krfeed.brokers.registry import (
    AccountAPIRequest,
    BrokerAdapter,
    PlanRequest,
    adapter,
    adapter_for,
    names,
    register,
    unregister,
)

# The registry: one line per broker.
register(kiwoom.ADAPTER)
register(kis.ADAPTER)

BrokerConfig = Kiwoom | KIS

__all__ = [
    "KIS",
    "SIM_APPKEY",
    "SIM_SECRET",
    "AccountAPIRequest",
    "BrokerAdapter",
    "BrokerConfig",
    "Kiwoom",
    "PlanRequest",
    "adapter",
    "adapter_for",
    "names",
    "register",
    "sim_appkey",
    "sim_secret",
    "unregister",
]
