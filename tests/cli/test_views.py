"""The live views in a real terminal (a pty of 80x24) against a `krfeed sim` subprocess: the
order-book ladder, the trade tape, the blotter of orders and fills, program trading columns,
--fields, and the demo at 80x24. Each test compares the last frame drawn with the last records
the same run wrote to a JSON-lines sink (or the demo's database)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from .helpers import in_pty, run, sim

BLOTTER_HEAD = "time type order code side status qty filled price left"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    yield from sim("--seed", "5", "--auto-orders", "6", "--rate", "20")


def in_terminal(*args: str, cwd: Path, cols: int = 80, rows: int = 24) -> str:
    """Run krfeed in a pty of ``cols`` x ``rows``; the text it drew (escapes removed)."""
    code, out = in_pty(*args, cols=cols, rows=rows, timeout=90, cwd=cwd)
    text = ANSI.sub("", out).replace("\r", "")
    assert code == 0, text[-3000:]
    return text


def last_frame(text: str) -> list[str]:
    """The lines of the last frame: from the last status line (it lists the sessions) on."""
    status = list(re.finditer(r"(?:kis|kiwoom)#1:\S+(?: (?:kis|kiwoom)#1:\S+)* \|", text))
    assert status, text[-2000:]
    return text[status[-1].start() :].splitlines()


def records(path: Path, type_: str) -> list[dict[str, Any]]:
    rows = [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines() if line]
    return [r for r in rows if r.get("type") == type_ and "event" not in r]


def n(v: int | None) -> str:
    return "" if v is None else f"{v:,}"


def hms(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%H:%M:%S")  # the record's own KST offset


def test_kis_order_book_is_a_ladder_of_asks_above_bids(sim_url: str, tmp_path: Path) -> None:
    out = tmp_path / "book.jsonl"
    sub = "kis:H0STASP0:005930"
    text = in_terminal(
        "record", sub, "--to", str(out), "--sim", sim_url, "--duration", "3", cwd=tmp_path
    )
    frame = last_frame(text)
    last = records(out, "H0STASP0")[-1]
    title = next(i for i, line in enumerate(frame) if line.startswith("kis H0STASP0 005930"))
    assert frame[title].split()[-1] == hms(last["time"])
    assert frame[title + 1].split() == ["ask", "qty", "price", "bid", "qty"]
    ladder = [line.split() for line in frame[title + 2 : title + 13]]
    asks = [[n(last[f"ask_qty_{i}"]), n(last[f"ask_price_{i}"])] for i in range(5, 0, -1)]
    bids = [[n(last[f"bid_price_{i}"]), n(last[f"bid_qty_{i}"])] for i in range(1, 6)]
    totals = [[n(last["total_ask_qty"]), "total", n(last["total_bid_qty"])]]
    assert ladder == asks + bids + totals, "\n".join(frame)


def test_kiwoom_trades_are_a_tape_newest_first(sim_url: str, tmp_path: Path) -> None:
    out = tmp_path / "tape.jsonl"
    text = in_terminal(
        "record",
        "kiwoom:0B:005930,000660",
        "--to",
        str(out),
        "--sim",
        sim_url,
        "--duration",
        "3",
        cwd=tmp_path,
    )
    frame = last_frame(text)
    title = next(i for i, line in enumerate(frame) if line.startswith("kiwoom 0B 주식체결"))
    head = frame[title + 1].split()
    assert " ".join(head) == "code time price chg% volume cum volume cum value 백만원"
    newest = records(out, "0B")[::-1][:3]
    for line, r in zip(frame[title + 2 : title + 5], newest, strict=True):
        assert line.split() == [
            r["item"],
            hms(r["trade_time"]),
            n(r["current_price"]),
            f"{r['change_rate']:f}",
            n(r["trade_volume"]),
            n(r["cumulative_volume"]),
            n(r["cumulative_value"]),
        ], "\n".join(frame)


def shown_status(kind: str, status: str) -> list[str]:
    """The blotter's status words: a modify/cancel says what it did."""
    amend = {"accepted": "req", "ack": "ack"}
    if not kind:
        return [status]
    if status == "confirmed":
        return ["cancelled" if kind == "cancel" else "modified"]
    return [kind, amend.get(status, status)]


def test_order_blotter_shows_fills_of_both_brokers(sim_url: str, tmp_path: Path) -> None:
    out = tmp_path / "orders.jsonl"
    text = in_terminal(
        "record",
        "kiwoom:00",
        "kis:H0STCNI0",
        "--to",
        str(out),
        "--sim",
        sim_url,
        "--duration",
        "5",
        cwd=tmp_path,
    )
    frame = last_frame(text)
    title = frame.index(next(x for x in frame if x.startswith("orders and fills")))
    assert " ".join(frame[title + 1].split()) == BLOTTER_HEAD
    rows = [line.split() for line in frame[title + 2 :] if re.match(r"\d\d:\d\d:\d\d ", line)]
    kw = records(out, "00")
    assert kw, "no Kiwoom order events in 5 s"
    r = kw[-1]
    last_kw = [row for row in rows if row[1] == "kw"][-1]
    status = r["order_status"]
    kind = "cancel" if "취소" in r["order_kind"] else "modify" if "정정" in r["order_kind"] else ""
    filled = status == "filled"
    assert last_kw == [
        hms(r["order_fill_time"]),
        "kw",
        r["order_no"],
        r["code"],
        r["side"],
        *shown_status(kind, status),
        n(r["order_qty"]),
        n(r["fill_qty"] or 0),
        *([n(r["unit_fill_price"])] if filled else []),
        n(r["unfilled_qty"]),
    ], "\n".join(frame)
    kis = records(out, "H0STCNI0")
    if kis:  # the KIS account takes auto-orders too once its notices are subscribed
        k = kis[-1]
        fills = sum(
            x["fill_qty"]
            for x in kis
            if x["order_no"] == k["order_no"] and x["notice_kind"] == "fill"
        )
        last_kis = [row for row in rows if row[1] == "kis"][-1]
        kind = "" if k["correction"] == "normal" else k["correction"]
        price = [n(k["fill_price"])] if k["notice_kind"] == "fill" else []
        assert last_kis == [
            hms(k["time"]),
            "kis",
            k["order_no"],
            k["code"],
            k["side"],
            *shown_status(kind, k["notice_kind"]),
            n(k["order_qty"]),
            n(fills),
            *price,
            n(k["order_qty"] - fills),
        ], "\n".join(frame)


def test_program_trading_columns_per_code(sim_url: str, tmp_path: Path) -> None:
    out = tmp_path / "pgm.jsonl"
    text = in_terminal(
        "record",
        "kiwoom:0w:005930,000660",
        "--to",
        str(out),
        "--sim",
        sim_url,
        "--duration",
        "3",
        cwd=tmp_path,
    )
    frame = last_frame(text)
    title = next(i for i, line in enumerate(frame) if line.startswith("kiwoom 0w"))
    head = "code time price sell qty buy qty net qty net amount 백만원"
    assert " ".join(frame[title + 1].split()) == head
    rows = {line.split()[0]: line.split() for line in frame[title + 2 : title + 4]}
    for code in ("000660", "005930"):
        r = [x for x in records(out, "0w") if x["item"] == code][-1]
        assert rows[code] == [
            code,
            hms(r["trade_time"]),
            n(r["current_price"]),
            n(r["program_sell_qty"]),
            n(r["program_buy_qty"]),
            n(r["program_net_buy_qty"]),
            n(r["program_net_buy_amount"]),
        ], "\n".join(frame)


def test_stream_fields_pick_the_columns_and_code_is_shown_once(
    sim_url: str, tmp_path: Path
) -> None:
    text = in_terminal(
        "stream",
        "kis",
        "H0STCNT0",
        "005930",
        "--fields",
        "current_price,trade_volume,cumulative_value",
        "--sim",
        sim_url,
        "--duration",
        "3",
        cwd=tmp_path,
    )
    frame = last_frame(text)
    title = next(i for i, line in enumerate(frame) if line.startswith("kis H0STCNT0"))
    assert frame[title + 1].split() == [
        "code",
        "current_price",
        "trade_volume",
        "cumulative_value",
    ]
    row = frame[title + 2].split()
    assert row[0] == "005930" and len(row) == 4
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})*", v) for v in row[1:]), row


def test_stream_unknown_field_is_one_sentence_naming_the_valid_ones() -> None:
    p = run("stream", "kiwoom", "0w", "005930", "--fields", "price,program_buy_qty")
    assert p.returncode == 2
    assert p.stderr.splitlines() == [
        "krfeed: kiwoom 0w has no field 'price'; its fields are trade_time, current_price, "
        "change_sign, change, change_rate, cumulative_volume, program_sell_qty, "
        "program_sell_amount, program_buy_qty, program_buy_amount, program_net_buy_qty, "
        "program_net_buy_qty_change, program_net_buy_amount, program_net_buy_amount_change, "
        "time_to_open, market_operation, investor_ticker"
    ]


def qty_at(row: list[str]) -> int:
    """Where the order quantity is in a blotter row (after a one- or two-word status)."""
    return 7 if row[5] in ("cancel", "modify") else 6


def test_demo_at_80x24_keeps_the_order_table_whole(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    text = in_terminal("demo", "--duration", "8", "--db", str(db), cwd=tmp_path)
    frame = last_frame(text[: text.rfind("recorded in")])
    assert all(len(line) <= 80 for line in frame)
    title = frame.index(next(x for x in frame if x.startswith("orders and fills")))
    assert " ".join(frame[title + 1].split()) == BLOTTER_HEAD
    rows = [x.split() for x in frame[title + 2 :] if re.match(r"\d\d:\d\d:\d\d +k", x)]
    assert rows, "\n".join(frame)
    con = sqlite3.connect(db)
    try:
        for row in rows:  # each row is an order event the demo recorded, complete
            table = "kiwoom_order_execution" if row[1] == "kw" else "kis_execution_notice"
            (hits,) = con.execute(
                f"SELECT count(*) FROM {table} WHERE order_no = ? AND code = ? AND side = ? "
                "AND order_qty = ?",
                (row[2], row[3], row[4], int(row[qty_at(row)].replace(",", ""))),
            ).fetchone()
            assert hits, row
        codes = {c for (c,) in con.execute("SELECT code FROM kiwoom_order_execution")}
        codes |= {c for (c,) in con.execute("SELECT code FROM kis_execution_notice")}
    finally:
        con.close()
    # orders go to the codes the demo shows
    assert codes and codes <= {"005930", "000660", "035720", "051910", "035420"}


def test_demo_lines_say_cancel_and_keep_ack_quantities_apart() -> None:
    """The piped demo's lines, from records built from the documented layouts (Kiwoom 00 905
    주문구분 "매수취소" on a cancel; KIS H0STCNI0 ack carrying the order quantity in CNTG_QTY)."""
    import io

    from rich.console import Console

    from krfeed.cli.demo import _DemoPrinter
    from krfeed.records.kis import ExecutionNotice
    from krfeed.records.kiwoom import OrderExecution
    from krfeed.schema.enums import Correction, NoticeKind, OrderStatus, Side

    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    buf = io.StringIO()
    printer = _DemoPrinter(Console(file=buf, width=200))
    printer(
        OrderExecution(
            received_at=at,
            order_no="0000012",
            code="005930",
            order_status=OrderStatus.CONFIRMED,
            order_kind="매수취소",
            side=Side.BUY,
            order_qty=5,
            unfilled_qty=0,
            original_order_no="0000011",
        )
    )
    printer(
        ExecutionNotice(
            received_at=at,
            order_no="0000000007",
            code="000660",
            side=Side.SELL,
            correction=Correction.NORMAL,
            notice_kind=NoticeKind.ACK,
            fill_qty=20,
            fill_price=178000,
            order_qty=20,
            order_price=178000,
        )
    )
    printer(
        ExecutionNotice(
            received_at=at,
            order_no="0000000007",
            code="000660",
            side=Side.SELL,
            correction=Correction.NORMAL,
            notice_kind=NoticeKind.FILL,
            fill_qty=3,
            fill_price=178100,
            order_qty=20,
            order_price=178000,
        )
    )
    assert buf.getvalue().splitlines() == [
        "kiwoom 00 order 0000012 cancel confirmed buy 005930 qty 5 filled 0 unfilled 0",
        "kis H0STCNI0 order 0000000007 ack sell 000660 qty 20 @ 178000",
        "kis H0STCNI0 order 0000000007 fill sell 000660 3 @ 178100",
    ]
