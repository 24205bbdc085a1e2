"""Frames captured from the real KIS and Kiwoom services (and the layouts built from the notice
where no capture exists) decode with the right values. The frames and their sources are in
``tests/fixtures/captured`` (see its README)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import krfeed
from krfeed.protocol.messages import ControlReply, DecodeError
from krfeed.records.base import Record
from krfeed.schema.catalog import get_type
from krfeed.schema.enums import Exchange, MarketSession

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured"
KST = timezone(timedelta(hours=9))
#: decoded on a later day than any capture: times must come from the record's business date
RECEIVED_AT = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@cache
def fixtures(broker: str) -> dict[str, dict[str, Any]]:
    items = json.loads((CAPTURED / f"{broker}_frames.json").read_text(encoding="utf-8"))
    return {fx["name"]: fx for fx in items}


def decode(broker: str, name: str) -> list[Any]:
    return krfeed.decode(broker, fixtures(broker)[name]["frame"], received_at=RECEIVED_AT)


def records(broker: str, name: str) -> list[Record]:
    out = decode(broker, name)
    errors = [m for m in out if isinstance(m, DecodeError)]
    assert not errors, errors[0].reason
    return [m for m in out if isinstance(m, Record)]


def wire(rec: Record, tr: str, wire_name: str) -> Any:
    """The value of a field given by its wire name (whatever English name the type gives it)."""
    (f,) = [f for f in get_type("kis", tr).fields if f.wire == wire_name]
    return getattr(rec, f.name)


def kst(d: date, hhmmss: str) -> datetime:
    return datetime(
        d.year, d.month, d.day, int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:]), tzinfo=KST
    )


@pytest.mark.parametrize("broker", ["kis", "kiwoom"])
def test_every_fixture_names_its_source_and_counts_its_fields(broker: str) -> None:
    for name, fx in fixtures(broker).items():
        assert fx["source"], name
        assert ("built" in name) == fx["source"].startswith("built from the documented layout"), (
            name
        )
        frame = fx["frame"]
        if broker == "kis" and frame[:2] in ("0|", "1|"):
            _, _, nnn, payload = frame.split("|", 3)
            fields = payload.split("^")
            assert len(fields) == int(nnn) * fx["fields_per_record"], name
        else:
            json.loads(frame)


@pytest.mark.parametrize("broker", ["kis", "kiwoom"])
def test_every_fixture_decodes_without_a_decode_error(broker: str) -> None:
    for name in fixtures(broker):
        if name in KNOWN_UNDECODABLE:
            continue
        out = decode(broker, name)
        assert out, name
        assert not [m for m in out if isinstance(m, DecodeError)], (name, out)


#: captured frames that the published tables cannot place (see the tests at the end)
KNOWN_UNDECODABLE = {"kis_h0unmko0_null_auto_stock_20260922", "kis_h0stmko0_null_official_example"}


# ---- KIS H0STCNT0 ----


def test_h0stcnt0_46_fields_of_2023_keeps_its_2023_date() -> None:
    (t,) = records("kis", "kis_h0stcnt0_46_kinvest_go_20230324")
    assert (t.code, t.current_price, t.trade_volume, t.cumulative_volume) == (
        "005930",
        62700,
        125,
        9694968,
    )
    assert t.business_date == date(2023, 3, 24)
    assert t.time == kst(date(2023, 3, 24), "112616")
    assert t.high_time == kst(date(2023, 3, 24), "090646")
    assert t.extra == ()


def test_h0stcnt0_46_fields_of_2026() -> None:
    (t,) = records("kis", "kis_h0stcnt0_46_stock_pilot_20260724")
    assert (t.code, t.current_price, t.change, t.trade_volume) == ("005930", 250500, -19500, 2)
    assert t.cumulative_volume == 11701513
    assert t.time == kst(date(2026, 7, 24), "115214")
    assert t.extra == ()


def test_h0stcnt0_47_fields_decodes_market_class() -> None:
    (t,) = records("kis", "kis_h0stcnt0_47_built_from_notice")
    assert (t.code, t.current_price, t.trade_volume) == ("005930", 250500, 2)
    assert t.time == kst(date(2026, 7, 24), "115214")
    assert t.static_vi_ref_price == 266000
    assert wire(t, "H0STCNT0", "MARKET_CLS_CODE") is MarketSession.REGULAR  # "2" 장중
    assert t.extra == ()


def test_h0stcnt0_46_fields_has_no_market_class() -> None:
    (t,) = records("kis", "kis_h0stcnt0_46_stock_pilot_20260724")
    assert wire(t, "H0STCNT0", "MARKET_CLS_CODE") is None


def test_multi_record_frame_of_the_published_layout() -> None:
    a, b = records("kis", "kis_h0stcnt0_002_1team_stock_20230612")
    assert (a.code, a.current_price, a.change, a.trade_volume) == ("005930", 71900, -100, 1)
    assert (b.code, b.current_price) == ("005930", 72000)
    assert a.time == b.time == kst(date(2023, 6, 12), "093354")


def test_multi_record_frame_of_the_current_layout() -> None:
    a, b = records("kis", "kis_h0stcnt0_002_47_built_from_notice")
    assert (a.current_price, a.trade_volume, a.time) == (
        250500,
        2,
        kst(date(2026, 7, 24), "115214"),
    )
    assert (b.current_price, b.trade_volume, b.time) == (
        62700,
        125,
        kst(date(2023, 3, 24), "112616"),
    )
    assert wire(a, "H0STCNT0", "MARKET_CLS_CODE") is MarketSession.REGULAR  # "2"
    assert wire(b, "H0STCNT0", "MARKET_CLS_CODE") is MarketSession.POST_MARKET  # "3"
    assert a.extra == b.extra == ()


def test_unknown_trailing_fields_are_kept_and_reported_once() -> None:
    out = decode("kis", "kis_h0stcnt0_50_built_unknown_trailing")
    recs = [m for m in out if isinstance(m, Record)]
    (t,) = recs
    assert (t.code, t.current_price, t.trade_volume) == ("005930", 250500, 2)
    assert t.extra == ("X1", "X2", "X3")
    notices = [m for m in out if not isinstance(m, Record)]
    assert len(notices) == 1, out
    assert not isinstance(notices[0], DecodeError)
    # a second frame of the same layout on the same codec says nothing more
    codec = krfeed.KISCodec()
    frame = fixtures("kis")["kis_h0stcnt0_50_built_unknown_trailing"]["frame"]
    first = codec.receive(frame, RECEIVED_AT)
    second = codec.receive(frame, RECEIVED_AT)
    assert len(first) == 2 and len(second) == 1 and isinstance(second[0], Record)


# ---- KIS H0STASP0 ----


def test_h0stasp0_62_fields_decodes_mid_price() -> None:
    (b,) = records("kis", "kis_h0stasp0_62_junsuk123_20260629")
    assert b.code == "005930"
    assert (b.ask_price_1, b.bid_price_1, b.ask_qty_1, b.bid_qty_1) == (
        324000,
        323500,
        34364,
        28602,
    )
    assert (b.total_ask_qty, b.total_bid_qty) == (221049, 209586)
    assert b.extra == ()
    mid = [f for f in get_type("kis", "H0STASP0").fields[59:62]]
    assert getattr(b, mid[0].name) == 323750
    assert wire(b, "H0STASP0", "MARKET_CLS_CODE") is None


def test_h0stasp0_63_fields_decodes_market_class() -> None:
    (b,) = records("kis", "kis_h0stasp0_63_built_from_notice")
    assert (b.ask_price_1, b.bid_price_1, b.ask_qty_1) == (324000, 323500, 34364)
    assert wire(b, "H0STASP0", "MARKET_CLS_CODE") is MarketSession.REGULAR  # "2"
    assert b.extra == ()


# ---- KIS others ----


def test_h0stpgm0_official_example() -> None:
    (p,) = records("kis", "kis_h0stpgm0_official_example")
    assert (p.code, p.sell_qty, p.buy_qty, p.net_buy_qty) == ("005930", 1413444, 1189408, -224036)
    assert p.net_buy_value == -17227936700


def test_encrypted_tr_reply_says_so() -> None:
    (r,) = decode("kis", "kis_subscribe_success_encrypt_y_built")
    assert isinstance(r, ControlReply)
    assert (r.tr_id, r.ok, r.encrypt, r.has_key) == ("H0STCNI0", True, "Y", True)


# ---- Kiwoom ----


def test_kiwoom_0b_sell_gives_magnitudes_and_side() -> None:
    (t,) = records("kiwoom", "kiwoom_0b_sell_signed_1313_1315_20260911")
    assert (t.item, t.current_price, t.trade_volume, t.trade_volume_side.value) == (
        "005930",
        257750,
        19,
        "sell",
    )
    assert t.cumulative_volume == 7198927
    assert t.trade_time.time().isoformat() == "11:56:18"
    assert t.instant_trade_value == 4897
    assert t.tick_sell_volume == 19
    assert t.tick_buy_volume == 0
    assert t.exchange is Exchange.KRX  # sent as "KRX" (the table documents a code)


def test_kiwoom_0b_buy_gives_magnitudes_and_side() -> None:
    (t,) = records("kiwoom", "kiwoom_0b_buy_signed_1313_1316_20260911")
    assert (t.current_price, t.trade_volume, t.trade_volume_side.value) == (258000, 1, "buy")
    assert (t.instant_trade_value, t.tick_sell_volume, t.tick_buy_volume) == (258, 0, 1)


def test_kiwoom_frames_with_several_entries() -> None:
    a, b = records("kiwoom", "kiwoom_0b_two_entries_20260911")
    assert (a.cumulative_volume, b.cumulative_volume) == (7198950, 7198953)
    x, y, z = records("kiwoom", "kiwoom_0b_three_entries_mixed_sides_20260911")
    assert [(r.trade_volume, r.trade_volume_side.value) for r in (x, y, z)] == [
        (3, "buy"),
        (10, "sell"),
        (8, "sell"),
    ]
    assert [r.instant_trade_value for r in (x, y, z)] == [774, 2577, 2062]


def test_kiwoom_00_notices() -> None:
    (acc,) = records("kiwoom", "kiwoom_00_sell_accepted_20260911")
    (fill,) = records("kiwoom", "kiwoom_00_sell_filled_20260911")
    assert (acc.order_no, acc.order_status.value, acc.fill_qty, acc.unfilled_qty) == (
        "0119574",
        "accepted",
        None,
        1,
    )
    assert (fill.order_no, fill.order_status.value, fill.fill_qty, fill.fill_price) == (
        "0119574",
        "filled",
        1,
        258000,
    )
    assert (fill.side.value, fill.today_commission, fill.today_tax) == ("sell", 900, 516)


def test_kiwoom_unknown_fid_is_kept() -> None:
    (t,) = records("kiwoom", "kiwoom_0b_built_unknown_fid")
    assert t.current_price == 257750
    assert "X1" in repr(t.extra)


# ---- captured frames the published tables cannot place ----


def test_h0stmko0_official_example_with_null() -> None:
    (m,) = records("kis", "kis_h0stmko0_null_official_example")
    assert m.code == "396300"
    assert wire(m, "H0STMKO0", "TR_SUSP_REAS_CNTT") is None  # the literal (null)
    assert wire(m, "H0STMKO0", "ANTC_MKOP_CLS_CODE") == "311"
    assert m.exchange_code is None  # not in this (older) layout


def test_h0unmko0_live_record_with_null() -> None:
    (m,) = records("kis", "kis_h0unmko0_null_auto_stock_20260922")
    assert m.item == "100840"
    assert wire(m, "H0UNMKO0", "TR_SUSP_REAS_CNTT") is None
    assert m.code == "100840"
    assert m.halted is False
    assert wire(m, "H0UNMKO0", "MKOP_CLS_CODE") == "AB1"
    assert wire(m, "H0UNMKO0", "ANTC_MKOP_CLS_CODE") == "112"
    assert wire(m, "H0UNMKO0", "ISCD_STAT_CLS_CODE") == "55"
    assert m.vi_code == "N"
    assert m.overtime_vi_code is None
