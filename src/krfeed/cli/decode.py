"""``krfeed schema`` and ``krfeed decode``: the catalog, and raw frames into JSON lines."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from krfeed.cli.common import broker_arg, fail
from krfeed.schema.catalog import BROKERS, UnknownType, get_type, types
from krfeed.schema.convert import KST
from krfeed.schema.core import BASE_KINDS, UNIT_NAMES
from krfeed.sinks.tables import table_for


def schema(
    broker: Annotated[str | None, typer.Argument(help="kiwoom or kis")] = None,
    type_: Annotated[
        str | None,
        typer.Argument(metavar="TYPE", help="type code (00, 0B, H0STPGM0) or constant"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List real-time types, or the fields of one type."""
    import msgspec

    out = Console()
    brokers = [broker_arg(broker)] if broker else list(BROKERS)
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
        {
            "wire": f.wire,
            "korean": f.korean,
            "name": f.name,
            "kind": f.kind,
            "unit": f.unit,
            "since": f.since,
        }
        for f in t.fields
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
            "layouts": list(t.layouts),
            "sql_table": table_for(t.broker, t.code).name,
            "fields": fields,
        }
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
        return
    table = Table(title=f"{t.broker} {t.code} {t.title} — {t.name}", caption=t.description)
    cols = ["#", "wire", "korean", "name", "kind", "unit"]
    if len(t.layouts) > 1:
        cols.append("since")
    for col in cols:
        table.add_column(col, no_wrap=col == "name")
    for i, f in enumerate(fields, 1):
        table.add_row(str(i), *(f[c] for c in cols[1:]))
    out.print(table)
    if len(t.layouts) > 1:
        versions = ", ".join(f"{w} ({t.layout_label(w)})" for w in t.layouts)
        out.print(f"  layouts (fields per record): {versions}")
    out.print(f"  SQL table (sqlite, postgresql): {table_for(t.broker, t.code).name}")
    units = sorted({f.unit for f in t.fields if f.unit})
    if units:
        out.print(f"  [dim]unit[/]: {', '.join(f'{u} = {UNIT_NAMES.get(u, u)}' for u in units)}")
    kinds = sorted({f.kind for f in t.fields})
    for k in kinds:
        out.print(f"  [dim]{k}[/]: {BASE_KINDS.get(k, 'coded value, see krfeed.schema.enums')}")


def decode(
    broker: Annotated[str, typer.Argument(help="kiwoom or kis")],
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="files of raw frames, one per line (default: stdin)"),
    ] = None,
    key: Annotated[str | None, typer.Option(help="AES key for encrypted KIS frames")] = None,
    iv: Annotated[str | None, typer.Option(help="AES iv for encrypted KIS frames")] = None,
    strict: Annotated[bool, typer.Option(help="exit 1 if any frame fails to decode")] = False,
    control: Annotated[
        bool, typer.Option(help="also print control messages (login, ping, replies)")
    ] = False,
    on: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="YYYYMMDD",
            help="the trading date of the frames (for captures; default: today, KST); "
            "records that carry their own business date keep it",
        ),
    ] = None,
) -> None:
    """Decode raw frames (one per line) into JSON lines: records to stdout, errors to stderr."""
    from krfeed.jsonout import encode_line
    from krfeed.protocol import KISCodec, KiwoomCodec
    from krfeed.protocol.messages import DecodeError, LayoutNotice
    from krfeed.records.base import Record

    received_at = _noon_kst(on) if on is not None else None
    b = broker_arg(broker)
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
        for msg in codec.receive(line, received_at):
            if isinstance(msg, Record):
                stdout.write(encode_line(msg))
            elif isinstance(msg, DecodeError):
                errors += 1
                stderr.write(encode_line(msg))
            elif isinstance(msg, LayoutNotice):  # once per type and layout
                stderr.write(f"note: {msg.message}\n".encode())
            elif control:
                stdout.write(encode_line(msg))
    stdout.flush()
    if strict and errors:
        raise typer.Exit(1)


def _noon_kst(yyyymmdd: str) -> datetime:
    """Noon (KST) of a trading date given as YYYYMMDD: every HHmmss of that day is within 12 h
    of it, so the broker times of captured frames land on that date."""
    try:
        if len(yyyymmdd) != 8 or not yyyymmdd.isdigit():
            raise ValueError
        d = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise fail(f"--date {yyyymmdd!r} is not a date as YYYYMMDD (e.g. 20230324)") from None
    return datetime.combine(d, time(12), KST).astimezone(UTC)
