"""The dashboard's aggregation and coalescing: values folded from real decoded records (KIS
frames built from the documented layouts, through krfeed's own decoder), bounded memory, and
the per-page push budget."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

import krfeed
from krfeed.events import Connected, Disconnected, LayoutChanged, Subscribed, SubscribeFailed
from krfeed.orders.model import OrderEvent
from krfeed.records.base import Record
from krfeed.schema.catalog import get_type
from krfeed.schema.enums import Side
from krfeed.web.state import ClientView, DashboardState, Line

RECEIVED = datetime(2025, 3, 14, 2, 0, tzinfo=UTC)  # 11:00 KST


def kis_record(tr: str, values: dict[str, Any]) -> Record:
    """A KIS record decoded from a frame built from the documented layout of ``tr`` (fields by
    their English names, the others empty)."""
    fields = get_type("kis", tr).fields
    payload = "^".join(str(values.get(f.name, "")) for f in fields)
    (rec,) = krfeed.decode("kis", f"0|{tr}|001|{payload}", received_at=RECEIVED)
    assert isinstance(rec, Record), rec
    return rec


def pgm(code: str, hhmmss: str, buy_qty: int, sell_qty: int, price: int = 1000) -> Record:
    """H0STPGM0 with the day's running totals (amounts = qty × price, in won)."""
    return kis_record(
        "H0STPGM0",
        {
            "code": code,
            "time": hhmmss,
            "sell_qty": sell_qty,
            "sell_value": sell_qty * price,
            "buy_qty": buy_qty,
            "buy_value": buy_qty * price,
            "net_buy_qty": buy_qty - sell_qty,
            "net_buy_value": (buy_qty - sell_qty) * price,
        },
    )


def kst(hhmmss: str) -> float:
    """Epoch seconds of HH:MM:SS KST on the records' trading date (2025-03-14)."""
    h, m, s = int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:])
    return datetime(2025, 3, 14, h - 9, m, s, tzinfo=UTC).timestamp()


def test_program_line_keeps_the_last_value_of_each_second_and_minute_bars() -> None:
    st = DashboardState()
    for rec in (
        pgm("005930", "090000", 10, 0),
        pgm("005930", "090000", 30, 5),  # same second: replaces
        pgm("005930", "090001", 50, 5),
        pgm("005930", "090059", 60, 25),
        pgm("005930", "090100", 100, 25),  # next minute
        pgm("005930", "090130", 90 + 40, 45),
    ):
        st.ingest(rec)
    sp = st.program["005930"]
    assert sp.broker == "kis"
    t0 = kst("090000")
    assert list(sp.line.points) == [
        [t0, 25, 25_000],
        [t0 + 1, 45, 45_000],
        [t0 + 59, 35, 35_000],
        [t0 + 60, 75, 75_000],
        [t0 + 90, 85, 85_000],
    ]
    # per minute: the change of the running totals (the first minute from the first record)
    assert sp.bars() == [
        [int(t0), 60_000 - 10_000, 25_000 - 0, 60 - 10, 25 - 0],
        [int(t0) + 60, 130_000 - 60_000, 45_000 - 25_000, 130 - 60, 45 - 25],
    ]
    (row,) = st.ranking()
    assert (row["code"], row["net_qty"], row["net_amount"], row["buy_amount"]) == (
        "005930",
        85,
        85_000,
        130_000,
    )


def test_ranking_resorts_by_net_value_and_kis_wins_over_kiwoom() -> None:
    st = DashboardState(names={"005930": "삼성전자"})
    st.ingest(pgm("005930", "090000", 10, 0))
    st.ingest(pgm("000660", "090000", 0, 20))
    assert [r["code"] for r in st.ranking()] == ["005930", "000660"]
    st.ingest(pgm("000660", "090005", 50, 20))  # net +30,000 now above 005930's +10,000
    assert [(r["code"], r["net_amount"]) for r in st.ranking()] == [
        ("000660", 30_000),
        ("005930", 10_000),
    ]
    assert st.ranking()[1]["name"] == "삼성전자"


def test_kiwoom_program_amounts_in_won_and_replaced_by_kis() -> None:
    from test_program import kiwoom_0w_official

    st = DashboardState()
    st.ingest(kiwoom_0w_official())  # the guide's example: 208 매수금액 483 (백만원)
    (row,) = st.ranking()
    assert (row["broker"], row["net_amount"], row["amount_unit"]) == ("kiwoom", 483_000_000, 10**6)
    st.ingest(pgm("005930", "113500", 9043, 1000, price=60_400))
    (row,) = st.ranking()
    assert (row["broker"], row["net_qty"]) == ("kis", 8043)
    st.ingest(kiwoom_0w_official())  # the other broker's view is not mixed in
    assert st.ranking()[0]["broker"] == "kis"
    assert len(st.program["005930"].line.points) == 1


def test_tape_sides_quote_and_bound() -> None:
    st = DashboardState(tape_size=3)
    trades = [("090000", 71000, 10, "1"), ("090001", 70900, 4, "5"), ("090002", 71000, 7, "1")]
    trades.append(("090003", 71100, 2, "1"))
    for i, (t, p, q, cls) in enumerate(trades):
        st.ingest(
            kis_record(
                "H0STCNT0",
                {
                    "code": "005930",
                    "time": t,
                    "current_price": p,
                    "change_sign": "2",
                    "change": p - 70000,
                    "change_rate": "1.57",
                    "trade_volume": q,
                    "cumulative_volume": 100 + i,
                    "trade_class": cls,
                },
            )
        )
    view = st.tape_view("005930")
    assert [(t["price"], t["qty"], t["side"]) for t in view["trades"]] == [
        (71100, 2, "buy"),
        (71000, 7, "buy"),
        (70900, 4, "sell"),
    ]
    assert view["quote"]["price"] == 71100
    assert view["quote"]["change"] == 1100
    assert view["quote"]["volume"] == 103


def test_book_ladder_from_h0stasp0() -> None:
    vals: dict[str, Any] = {"code": "005930", "time": "090000", "time_class_code": "0"}
    for i in range(1, 11):
        vals[f"ask_price_{i}"] = 71000 + 100 * (i - 1)
        vals[f"bid_price_{i}"] = 70900 - 100 * (i - 1)
        vals[f"ask_qty_{i}"] = i
        vals[f"bid_qty_{i}"] = 10 * i
    vals["total_ask_qty"] = 55
    vals["total_bid_qty"] = 550
    st = DashboardState()
    st.ingest(kis_record("H0STASP0", vals))
    book = st.book_view("005930")["book"]
    assert book["asks"][0] == [71000, 1] and book["asks"][9] == [71900, 10]
    assert book["bids"][0] == [70900, 10] and book["bids"][9] == [70000, 100]
    assert (book["total_ask"], book["total_bid"]) == (55, 550)


def test_line_is_bounded_and_reads_from_an_index() -> None:
    line = Line(100)
    for s in range(1000):
        line.add(1000.0 + s, s)
    assert len(line.points) == 100
    assert (line.start, line.end) == (900, 1000)
    first, pts = line.since(0)
    assert first == 900 and pts[0] == [1900.0, 900]
    first, pts = line.since(998)
    assert first == 998 and pts == [[1998.0, 998], [1999.0, 999]]


def test_memory_stays_bounded_over_a_long_session() -> None:
    st = DashboardState(line_points=500, max_codes=3, tape_size=5)
    for i in range(5000):
        hh, rem = divmod(i, 3600)
        mm, ss = divmod(rem, 60)
        st.ingest(pgm("005930", f"{9 + hh:02d}{mm:02d}{ss:02d}", i, 0))
    for code in ("000660", "035720", "051910", "035420"):
        st.ingest(pgm(code, "090000", 1, 0))
    sp = st.program["005930"]
    assert len(sp.line.points) == 500 and sp.line.end == 5000
    assert sp.line.points[-1][1] == 4999  # the latest value is kept
    assert len(sp.minutes) <= 600
    assert set(st.program) == {"005930", "000660", "035720"}  # max_codes
    assert st.counts["ignored_codes"] == 2


def test_max_codes_counts_a_code_once_across_program_tape_and_book() -> None:
    st = DashboardState(max_codes=2)
    st.ingest(pgm("005930", "090000", 1, 0))
    for code in ("005930", "000660", "035720"):  # 005930 is shown already: 000660 fills it up
        st.ingest(kis_record("H0STCNT0", {"code": code, "time": "090001", "current_price": 70000}))
        st.ingest(kis_record("H0STASP0", {"code": code, "time": "090001", "ask_price_1": 70100}))
    st.ingest(pgm("000660", "090002", 1, 0))
    st.ingest(pgm("035720", "090002", 1, 0))
    assert set(st.program) == {"005930", "000660"}
    assert set(st.tapes) == set(st.books) == {"005930", "000660"}
    assert st.book_view("000660")["book"]["asks"][0] == [70100, None]
    assert st.counts["ignored_codes"] == 3  # 035720's trade, book and program records


def test_client_view_coalesces_to_the_latest_state_at_most_rate_per_second() -> None:
    st = DashboardState()
    view = ClientView(st, rate=10.0)
    st.ingest(pgm("005930", "090000", 1, 0))
    first = {m["type"]: m for m in view.poll(100.0)}
    assert first["program"]["ranking"][0]["net_qty"] == 1
    assert first["program"]["lines"]["005930"] == {"from": 0, "points": [[kst("090000"), 1, 1000]]}
    for i in range(2, 1001):  # 999 records within one push interval
        st.ingest(pgm("005930", "090001" if i < 1000 else "090002", i, 0))
    assert [m["type"] for m in view.poll(100.05)] == []  # too soon: nothing
    (msg,) = [m for m in view.poll(100.1) if m["type"] == "program"]
    assert msg["ranking"][0]["net_qty"] == 1000  # the latest, not every change
    # incremental: the page's last point again (it may have moved) and the new ones
    assert msg["lines"]["005930"] == {
        "from": 0,
        "points": [
            [kst("090000"), 1, 1000],
            [kst("090001"), 999, 999_000],
            [kst("090002"), 1000, 1_000_000],
        ],
    }
    st.ingest(pgm("005930", "090003", 1001, 0))
    (msg,) = [m for m in view.poll(100.2) if m["type"] == "program"]
    assert msg["lines"]["005930"]["from"] == 2
    assert [p[1] for p in msg["lines"]["005930"]["points"]] == [1000, 1001]
    assert [m["type"] for m in view.poll(100.3)] == []  # nothing changed
    assert view.sent["program"] == 3


def test_client_view_resends_everything_kept_when_the_page_fell_behind() -> None:
    st = DashboardState(line_points=3)
    view = ClientView(st, rate=10.0)
    st.ingest(pgm("005930", "090000", 1, 0))
    view.poll(0.0)
    for s in range(1, 10):
        st.ingest(pgm("005930", f"0900{s:02d}", 1 + s, 0))
    (msg,) = [m for m in view.poll(1.0) if m["type"] == "program"]
    line = msg["lines"]["005930"]
    assert line["from"] == -(7 + 1)  # replace: the kept points start at index 7
    assert [p[1] for p in line["points"]] == [8, 9, 10]


def test_selecting_a_stock_sends_its_tape_and_book_at_once() -> None:
    st = DashboardState()
    for code, price in (("005930", 71000), ("000660", 178000)):
        st.ingest(pgm(code, "090000", 1, 0))
        st.ingest(
            kis_record(
                "H0STCNT0",
                {"code": code, "time": "090000", "current_price": price, "trade_volume": 1},
            )
        )
    view = ClientView(st, rate=10.0)
    msgs = {m["type"]: m for m in view.poll(0.0)}
    assert msgs["tape"]["code"] == msgs["program"]["selected"]
    other = "000660" if msgs["tape"]["code"] == "005930" else "005930"
    view.select(other)
    msgs = {m["type"]: m for m in view.poll(0.01)}
    assert msgs["tape"]["code"] == other
    assert msgs["tape"]["trades"][0]["price"] == (71000 if other == "005930" else 178000)
    assert msgs["program"]["selected"] == other


def order(kind: str, **kw: Any) -> OrderEvent:
    base: dict[str, Any] = {
        "broker": "kiwoom",
        "account": "5000000001",
        "order_no": "0000001",
        "kind": kind,
        "code": "005930",
        "name": "삼성전자",
        "side": Side.BUY,
        "order_qty": 10,
        "order_price": 60000,
        "received_at": RECEIVED,
    }
    base.update(kw)
    return OrderEvent(**base)


def test_blotter_from_the_order_tracker_with_fills_and_reports() -> None:
    from krfeed.orders.model import ReconcileReport

    st = DashboardState()
    for ev in (
        order("accepted"),
        order(
            "filled",
            fill_no="1",
            fill_qty=4,
            fill_price=60000,
            filled_qty=4,
            filled_amount=240000,
            remaining_qty=6,
        ),
        order(
            "filled",
            fill_no="2",
            fill_qty=6,
            fill_price=60100,
            filled_qty=10,
            filled_amount=600600,
            remaining_qty=0,
        ),
    ):
        for out in st.tracker.apply(ev):
            st.ingest(out)
    st.ingest(
        ReconcileReport(
            broker="kiwoom",
            session="kiwoom#1",
            trigger="reconnect",
            ok=True,
            orders_listed=1,
            fills=0,
        )
    )
    view = st.orders_view()
    (o,) = view["orders"]
    assert (o["order_no"], o["name"], o["qty"], o["filled"], o["remaining"], o["status"]) == (
        "0000001",
        "삼성전자",
        10,
        10,
        0,
        "filled",
    )
    assert o["avg_price"] == float(Decimal("60060.00"))
    assert [f[:2] for f in o["fills"]] == [[4, 60000], [6, 60100]]
    assert [f["qty"] for f in view["fills"]] == [6, 4]  # newest first
    assert view["summary"]["kiwoom"]["buy_amount"] == 600_600
    assert view["reports"][0]["trigger"] == "reconnect"
    assert st.names["005930"] == "삼성전자"


def test_health_sessions_subscriptions_and_notices() -> None:
    st = DashboardState()
    st.ingest(Connected(broker="kis", session="kis#1", url="ws://127.0.0.1:1"))
    st.ingest(Subscribed(broker="kis", session="kis#1", type="H0STPGM0", item="005930"))
    st.ingest(
        SubscribeFailed(
            broker="kis",
            session="kis#1",
            type="H0STPGM0",
            item="5930",
            reason="invalid tr_key",
            code="OPSP8992",
        )
    )
    st.ingest(
        LayoutChanged(
            broker="kis",
            session="kis#1",
            type="H0STCNT0",
            fields=47,
            known=(46,),
            extra=1,
            message="H0STCNT0 arrives with 47 fields",
        )
    )
    st.ingest(
        SubscribeFailed(
            broker="kis",
            session="kis#1",
            type="H0STCNT0",
            item="005930",
            reason="no reply from the broker within 10 s (sent twice)",
            unanswered=True,
        )
    )
    st.ingest(Disconnected(broker="kis", session="kis#1", reason="connection reset"))
    h = st.health_view(None, [])
    (s,) = h["sessions"]
    assert (s["name"], s["state"], s["reason"]) == ("kis#1", "reconnecting", "connection reset")
    assert h["counts"]["layout_notices"] == 1
    texts = [n["text"] for n in h["notices"]]
    assert texts[0] == "kis#1 disconnected: connection reset"
    assert "kis#1 H0STPGM0 5930 refused: invalid tr_key" in texts
    assert (
        "kis#1 H0STCNT0 005930 unanswered: no reply from the broker within 10 s (sent twice)"
        in texts
    )
    assert "H0STCNT0 arrives with 47 fields" in texts


def test_vendored_assets_are_the_pinned_release() -> None:
    static = resources.files("krfeed.web").joinpath("static")
    table = static.joinpath("VENDOR.md").read_text(encoding="utf-8")
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        digest = hashlib.sha256(static.joinpath(name).read_bytes()).hexdigest()
        assert digest in table, name
    assert (
        static.joinpath("uPlot.iife.min.js")
        .read_text()[:60]
        .startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    )
    assert "MIT License" in static.joinpath("uPlot.LICENSE").read_text()
