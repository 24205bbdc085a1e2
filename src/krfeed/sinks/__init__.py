"""Sinks by URL: ``sqlite:///path.db`` (default), ``jsonl:///path`` or ``jsonl:-``,
``parquet:///dir``, ``postgresql://…``, ``nats://…``.

A plain path is the obvious file sink: ``day.db`` (also ``.sqlite``, ``.sqlite3``) is
``sqlite:///day.db``, ``out.jsonl`` (or ``.ndjson``) is ``jsonl:///out.jsonl``, ``-`` is standard
output. In URLs, ``scheme:///rel/path`` is relative and ``scheme:////abs/path`` absolute (the
SQLAlchemy convention); :func:`where` shows the resolved absolute path."""

from __future__ import annotations

import importlib
from typing import Any

from krfeed.sinks.base import Item, Sink, SinkError, SinkUnavailable

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


_PLAIN = {".db": "sqlite", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".jsonl": "jsonl"}
_PLAIN[".ndjson"] = "jsonl"
_FILE_SCHEMES = ("sqlite", "jsonl", "parquet")
_NETWORK = ("postgresql", "postgres", "nats")


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower() if ":" in url else ""


def normalize_url(url: str) -> str:
    """``url`` with a plain path turned into its file-sink URL (``day.db`` ->
    ``sqlite:///day.db``, ``out.jsonl`` -> ``jsonl:///out.jsonl``, ``-`` -> ``jsonl:-``)."""
    if _scheme(url) in _REGISTRY:
        return url
    if url == "-":
        return "jsonl:-"
    if "://" not in url:
        suffix = url[url.rfind(".") :].lower() if "." in url.rsplit("/", 1)[-1] else ""
        scheme = _PLAIN.get(suffix)
        if scheme is not None:
            return f"{scheme}:///{url}"
    known = ", ".join(sorted(_REGISTRY))
    raise SinkError(
        f"unknown sink URL {url!r}: use one of the schemes {known}, "
        "or a path ending in .db or .jsonl"
    )


def where(url: str) -> str:
    """Where a sink URL writes, as a person should read it: the absolute path of a file sink
    (``standard output`` for ``jsonl:-``), the URL with any password masked otherwise."""
    import os

    from krfeed.sinks.urls import parse_path_url, redact_url

    url = normalize_url(url)
    scheme = _scheme(url)
    if scheme in _FILE_SCHEMES:
        try:
            path, opts = parse_path_url(url, scheme)
        except ValueError:
            return url
        if path == "-":
            return "standard output"
        if path == ":memory:":
            return url
        full = os.path.abspath(os.path.expanduser(path))
        if opts.get("rotate") == "daily":  # one file a day: name the pattern
            stem, ext = os.path.splitext(full)
            return f"{stem}-YYYYMMDD{ext or '.jsonl'}"
        return full
    return redact_url(url)


def timeout_option(url: str, open_timeout: float) -> dict[str, Any]:
    """``{"open_timeout": …}`` for the sinks that reach a server (PostgreSQL, NATS), else ``{}``:
    the options to pass :func:`open_sink` to bound how long ``open`` tries."""
    return {"open_timeout": open_timeout} if _scheme(url) in _NETWORK else {}


def open_sink(url: str, **options: Any) -> Sink:
    """Create the sink for ``url`` (not yet opened: ``await sink.open()``). ``url`` may be a
    plain path (see :func:`normalize_url`)."""
    url = normalize_url(url)
    scheme = _scheme(url)
    module, _, factory = _REGISTRY[scheme].partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        extra = _EXTRAS.get(scheme)
        hint = f": pip install 'krfeed[{extra}]'" if extra else ""
        raise SinkError(f"the {scheme} sink needs a missing package ({e.name}){hint}") from None
    sink: Sink = getattr(mod, factory)(url, **options)
    return sink


__all__ = [
    "Item",
    "Sink",
    "SinkError",
    "SinkUnavailable",
    "normalize_url",
    "open_sink",
    "timeout_option",
    "where",
]
