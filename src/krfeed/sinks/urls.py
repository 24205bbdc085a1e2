"""File-like sink URLs: ``sqlite:///PATH``, ``jsonl:///PATH`` (or ``jsonl:-``), ``parquet:///DIR``.

Everything after ``scheme:///`` is the path, verbatim, as in SQLAlchemy's SQLite URLs:
``sqlite:///krfeed.db`` is ``./krfeed.db`` and ``sqlite:////var/data/krfeed.db`` (an f-string
``f"sqlite:///{absolute_path}"``) is absolute. ``scheme:PATH`` and ``scheme://PATH`` are accepted
too. Options follow a ``?`` as a query string (``jsonl:///out.jsonl?rotate=daily``).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from krfeed.sinks.base import SinkError


class SinkURLError(SinkError):
    """A file sink URL that cannot be used (wrong scheme, empty path, unknown option)."""


def parse_path_url(url: str, scheme: str) -> tuple[str, dict[str, str]]:
    """``(path, options)`` of ``scheme:///path?opt=value``."""
    head, sep, rest = url.partition(":")
    if not sep or head.lower() != scheme:
        raise SinkURLError(f"not a {scheme} URL: {url!r} (expected {scheme}:///PATH)")
    rest, _, query = rest.partition("?")
    if rest.startswith("///"):
        rest = rest[3:]
    elif rest.startswith("//"):
        rest = rest[2:]
    path = unquote(rest)
    if not path:
        raise SinkURLError(f"{url!r} has no path (expected {scheme}:///PATH)")
    options = dict(parse_qsl(query, keep_blank_values=True))
    return path, options


def check_options(url: str, options: dict[str, str], known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise SinkURLError(f"{url!r}: unknown option(s) {', '.join(unknown)} (allowed: {allowed})")


def open_error(what: str, path: str | os.PathLike[str], e: BaseException) -> SinkURLError:
    """One sentence for a file or database that cannot be opened: which one (absolute path),
    and why in words (a missing folder, no permission), never the exception's class."""
    p = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    parent = p.parent
    if not parent.exists():
        missing = parent
        while not missing.parent.exists():
            missing = missing.parent
        why = f"the folder {missing} does not exist"
    elif not parent.is_dir():
        why = f"{parent} is not a folder"
    elif p.is_dir() and what != "folder":
        why = "that is a folder"
    elif not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        why = "permission denied"
    elif isinstance(e, OSError) and e.strerror:
        why = e.strerror[:1].lower() + e.strerror[1:]
    else:
        why = str(e) or type(e).__name__
    return SinkURLError(f"cannot open the {what} {p}: {why}")


def redact_url(url: str) -> str:
    """The URL as it may be shown: a password in it becomes ``****`` (and is registered as a
    secret, so krfeed's logs mask it wherever else it appears)."""
    from urllib.parse import urlsplit, urlunsplit

    from krfeed.logs import register_secret

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    register_secret(password)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:****@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
