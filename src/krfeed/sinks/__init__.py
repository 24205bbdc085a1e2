"""Sinks by URL: ``sqlite:///path.db`` (default), ``jsonl:///path`` or ``jsonl:-``,
``parquet:///dir``, ``postgresql://…``, ``nats://…``."""

from __future__ import annotations

import importlib
from typing import Any

from krfeed.sinks.base import Item, Sink

#: scheme -> "module:factory"; factories take (url, **options) and return a Sink.
_REGISTRY: dict[str, str] = {
    "sqlite": "krfeed.sinks.sqlite:SQLiteSink",
    "jsonl": "krfeed.sinks.jsonl:JSONLSink",
    "parquet": "krfeed.sinks.parquet:ParquetSink",
    "postgresql": "krfeed.sinks.postgres:PostgresSink",
    "postgres": "krfeed.sinks.postgres:PostgresSink",
    "nats": "krfeed.sinks.nats:NATSSink",
}

_EXTRAS = {"parquet": "parquet", "postgresql": "postgres", "postgres": "postgres", "nats": "nats"}


class SinkError(ValueError):
    """A sink URL that cannot be used (unknown scheme, missing optional dependency)."""


def open_sink(url: str, **options: Any) -> Sink:
    """Create the sink for ``url`` (not yet opened: ``await sink.open()``)."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise SinkError(f"unknown sink URL {url!r}: use one of the schemes {known}")
    module, _, factory = _REGISTRY[scheme].partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        extra = _EXTRAS.get(scheme)
        hint = f": pip install 'krfeed[{extra}]'" if extra else ""
        raise SinkError(f"the {scheme} sink needs a missing package ({e.name}){hint}") from None
    sink: Sink = getattr(mod, factory)(url, **options)
    return sink


__all__ = ["Item", "Sink", "SinkError", "open_sink"]
