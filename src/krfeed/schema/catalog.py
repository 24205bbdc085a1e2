"""The catalog: every declared real-time type of both brokers, looked up by code or constant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

from krfeed.schema.core import RealtimeType, validate

BROKERS = ("kiwoom", "kis")
#: Brokers added beside the built-in two (``krfeed.brokers.register``): their declarations.
_DECLARED: dict[str, Callable[[], Sequence[RealtimeType]]] = {}


def declare(broker: str, loader: Callable[[], Sequence[RealtimeType]] | None) -> None:
    """Make the types ``loader()`` returns the catalog of ``broker`` (None: forget them)."""
    if loader is None:
        _DECLARED.pop(broker, None)
    else:
        _DECLARED[broker] = loader
    types.cache_clear()


class UnknownType(KeyError):
    """No such real-time type is declared."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown type"


@cache
def types(broker: str) -> dict[str, RealtimeType]:
    """All declared types of one broker, by code, in declaration order."""
    if broker == "kiwoom":
        from krfeed.schema.kiwoom_catalog import TYPES
    elif broker == "kis":
        from krfeed.schema.kis_catalog import TYPES
    elif broker in _DECLARED:
        TYPES = tuple(_DECLARED[broker]())
    else:
        known = ", ".join((*BROKERS, *_DECLARED))
        raise UnknownType(f"unknown broker {broker!r}: use one of {known}")
    out: dict[str, RealtimeType] = {}
    for t in TYPES:
        validate(t)
        out[t.code] = t
    return out


def get_type(broker: str, code: str) -> RealtimeType:
    """The declaration of ``code`` (case-insensitive for KIS; also accepts a constant name)."""
    table = types(broker)
    t = table.get(code) or (table.get(code.upper()) if broker == "kis" else None)
    if t is not None:
        return t
    for t in table.values():
        if t.constant == code.upper() or t.name == code:
            return t
    known = ", ".join(table)
    raise UnknownType(f"{broker} has no real-time type {code!r}; known: {known}")
