"""The ``krfeed`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from krfeed.schema.catalog import BROKERS, UnknownType, get_type, types
from krfeed.schema.core import BASE_KINDS

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Real-time feeds of Korean brokers (Kiwoom REST API, KIS Open API).",
)
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear sentence to stderr and return the Exit to raise."""
    err.print(f"[bold red]krfeed:[/] {message}", highlight=False)
    return typer.Exit(code)


def _broker(broker: str) -> str:
    b = broker.lower()
    if b not in BROKERS:
        raise fail(f"unknown broker {broker!r}: use one of {', '.join(BROKERS)}")
    return b


@app.command()
def schema(
    broker: Annotated[Optional[str], typer.Argument(help="kiwoom or kis")] = None,  # noqa: UP045
    type_: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(metavar="TYPE", help="type code (00, 0B, H0STPGM0) or constant"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List real-time types, or the fields of one type."""
    import msgspec

    out = Console()
    brokers = [_broker(broker)] if broker else list(BROKERS)
    if type_ is None:
        rows = [
            {
                "broker": b,
                "code": t.code,
                "title": t.title,
                "class": t.name,
                "constant": t.constant,
                "fields": len(t.fields),
            }
            for b in brokers
            for t in types(b).values()
        ]
        if as_json:
            sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
            return
        table = Table(title="krfeed real-time types")
        for col in ("broker", "code", "title", "class", "constant", "fields"):
            table.add_column(col)
        for r in rows:
            table.add_row(*(str(r[c]) for c in r))
        out.print(table)
        return
    try:
        t = get_type(brokers[0], type_)
    except UnknownType as e:
        raise fail(str(e)) from None
    fields = [
        {"wire": f.wire, "korean": f.korean, "name": f.name, "kind": f.kind} for f in t.fields
    ]
    if as_json:
        doc = {
            "broker": t.broker,
            "code": t.code,
            "title": t.title,
            "class": t.name,
            "constant": t.constant,
            "description": t.description,
            "encrypted": t.encrypted,
            "account": t.account,
            "fields": fields,
        }
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
        return
    table = Table(title=f"{t.broker} {t.code} {t.title} — {t.name}", caption=t.description)
    for col in ("#", "wire", "korean", "name", "kind"):
        table.add_column(col)
    for i, f in enumerate(fields, 1):
        table.add_row(str(i), f["wire"], f["korean"], f["name"], f["kind"])
    out.print(table)
    kinds = sorted({f.kind for f in t.fields})
    for k in kinds:
        out.print(f"  [dim]{k}[/]: {BASE_KINDS.get(k, 'coded value, see krfeed.schema.enums')}")


@app.command()
def decode(
    broker: Annotated[str, typer.Argument(help="kiwoom or kis")],
    files: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Argument(help="files of raw frames, one per line (default: stdin)"),
    ] = None,
    key: Annotated[Optional[str], typer.Option(help="AES key for encrypted KIS frames")] = None,  # noqa: UP045
    iv: Annotated[Optional[str], typer.Option(help="AES iv for encrypted KIS frames")] = None,  # noqa: UP045
    strict: Annotated[bool, typer.Option(help="exit 1 if any frame fails to decode")] = False,
    control: Annotated[
        bool, typer.Option(help="also print control messages (login, ping, replies)")
    ] = False,
) -> None:
    """Decode raw frames (one per line) into JSON lines: records to stdout, errors to stderr."""
    from krfeed.jsonout import encode_line
    from krfeed.protocol import KISCodec, KiwoomCodec
    from krfeed.protocol.messages import DecodeError
    from krfeed.records.base import Record

    b = _broker(broker)
    if (key is None) != (iv is None):
        raise fail("give both --key and --iv, or neither")
    if b == "kiwoom" and key:
        raise fail("--key/--iv apply to KIS frames only")
    try:
        codec: KISCodec | KiwoomCodec = KISCodec(key=key, iv=iv) if b == "kis" else KiwoomCodec()
    except ValueError as e:
        raise fail(str(e)) from None
    errors = 0
    stdout = sys.stdout.buffer
    stderr = sys.stderr.buffer

    def lines() -> object:
        if not files:
            yield from sys.stdin.buffer
            return
        for p in files:
            try:
                fh = p.open("rb")
            except OSError as e:
                raise fail(f"cannot read {p}: {e.strerror}") from None
            with fh:
                yield from fh

    for raw in lines():  # type: ignore[attr-defined]
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        for msg in codec.receive(line):
            if isinstance(msg, Record):
                stdout.write(encode_line(msg))
            elif isinstance(msg, DecodeError):
                errors += 1
                stderr.write(encode_line(msg))
            elif control:
                stdout.write(encode_line(msg))
    stdout.flush()
    if strict and errors:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
