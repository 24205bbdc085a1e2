"""The broker registry: one :class:`BrokerAdapter` per broker, found by name or by its config
class. The Feed and the order stream look everything broker-specific up here.

Adding a broker: a folder ``krfeed/brokers/<name>/`` defining its adapter, and one
``register(...)`` line in ``krfeed/brokers/__init__.py`` (README, "Contributing: adding a
broker").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from krfeed.schema.catalog import declare

if TYPE_CHECKING:
    import aiohttp

    from krfeed.engine import Delivery, Session, SessionOptions, Subscription
    from krfeed.schema.core import RealtimeType

Plan = dict["Session", list["Subscription"]]


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """Where should these registrations go? ``sessions``: the broker's working sessions;
    ``owner(code, item)``: the session already holding that registration, if any."""

    type: RealtimeType
    items: list[str]
    sessions: Sequence[Session]
    owner: Callable[[str, str], Session | None]


@dataclass(frozen=True, slots=True)
class AccountAPIRequest:
    """What an adapter needs to build the REST client reconciliation reads orders with."""

    session: Session
    http: aiohttp.ClientSession
    #: the token bucket of (broker, app key) at ``rate`` requests/s (default rates per adapter)
    limiter: Callable[[float], Any]
    #: requests/s asked for by the user (None: the adapter's default)
    rate: float | None
    timeout: float
    max_pages: int
    #: shared per stream: REST tokens an adapter issues beside its WebSocket credential
    tokens: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BrokerAdapter:
    """Everything krfeed needs of one broker."""

    #: the broker's name in records, events and ``broker:type`` strings
    name: str
    #: the config class users pass to ``Feed(...)``
    config: type[Any]
    #: ``session(name, config, http, sink, options)``: the session adapter
    session: Callable[[str, Any, aiohttp.ClientSession, Delivery, SessionOptions], Session]
    #: placement of new registrations over the broker's sessions
    plan: Callable[[PlanRequest], Plan]
    #: the REST client of order reconciliation (None: not supported)
    account_api: Callable[[AccountAPIRequest], Any] | None = None
    #: the broker's real-time type declarations, for a broker beyond the built-in catalog
    #: (``krfeed.schema.catalog``): registered with it
    types: Callable[[], Sequence[RealtimeType]] | None = None


_ADAPTERS: dict[str, BrokerAdapter] = {}


def register(adapter: BrokerAdapter) -> BrokerAdapter:
    """Add (or replace) a broker."""
    _ADAPTERS[adapter.name] = adapter
    if adapter.types is not None:
        declare(adapter.name, adapter.types)
    return adapter


def unregister(name: str) -> None:
    """Remove a broker (and the types it declared)."""
    gone = _ADAPTERS.pop(name, None)
    if gone is not None and gone.types is not None:
        declare(name, None)


def adapter(name: str) -> BrokerAdapter:
    """The adapter of broker ``name`` (KeyError when none is registered)."""
    return _ADAPTERS[name]


def names() -> list[str]:
    """Registered brokers, in registration order."""
    return list(_ADAPTERS)


def adapter_for(config: object) -> BrokerAdapter:
    """The adapter whose config class ``config`` is an instance of; TypeError otherwise."""
    for a in _ADAPTERS.values():
        if isinstance(config, a.config):
            return a
    wanted = " or ".join(f"{a.config.__name__}(...)" for a in _ADAPTERS.values())
    raise TypeError(f"expected {wanted}, got {type(config).__name__}")
