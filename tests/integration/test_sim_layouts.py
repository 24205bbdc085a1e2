"""The simulator's KIS layouts: today's wire by default (47-field trades, 63-field books), the
published layouts with ``legacy_layouts``, and the appended fields meaningful in the model."""

from __future__ import annotations

import json
from datetime import datetime

import aiohttp
import pytest

import krfeed
from krfeed.brokers import sim_appkey, sim_secret
from krfeed.protocol.messages import DecodeError
from krfeed.records.kis import OrderBook, Trade
from krfeed.schema.catalog import get_type
from krfeed.schema.compile import encode_kis_fields
from krfeed.schema.convert import KST
from krfeed.schema.enums import MarketSession
from krfeed.sim import SimConfig, Simulator
from krfeed.sim.market import (
    AFTER_HOURS,
    CLOSING,
    PRE_OPEN,
    REGULAR,
    Instrument,
    Phase,
    floor_tick,
    market_record,
)

NOW = datetime(2026, 9, 14, 10, 0, tzinfo=KST)


async def frames(sim: Simulator, trs: tuple[str, ...], n: int) -> dict[str, list[str]]:
    """``n`` data frames of each TR for 005930, over a raw KIS WebSocket."""
    async with aiohttp.ClientSession() as http:
        body = {"grant_type": "client_credentials", "appkey": sim_appkey(1)}
        body["secretkey"] = sim_secret(1)
        async with http.post(sim.url + "/oauth2/Approval", json=body) as r:
            key = (await r.json())["approval_key"]
        out: dict[str, list[str]] = {tr: [] for tr in trs}
        async with http.ws_connect(sim.kis_ws_url) as ws:
            for tr in trs:
                header = {"approval_key": key, "custtype": "P", "tr_type": "1"}
                body2 = {"input": {"tr_id": tr, "tr_key": "005930"}}
                await ws.send_str(json.dumps({"header": header, "body": body2}))
            while any(len(v) < n for v in out.values()):
                text = await ws.receive_str(timeout=5)
                tr = text.split("|", 2)[1] if text[0] in "01" else ""
                if tr in out:
                    out[tr].append(text)
        return out


def widths(text: str) -> int:
    _, _, nnn, payload = text.split("|", 3)
    fields = payload.split("^")
    assert len(fields) % int(nnn) == 0
    return len(fields) // int(nnn)


@pytest.mark.parametrize(("legacy", "trade_width", "book_width"), [(False, 47, 63), (True, 46, 59)])
async def test_current_and_legacy_layouts(legacy: bool, trade_width: int, book_width: int) -> None:
    assert get_type("kis", "H0STCNT0").layouts == (46, 47)
    assert get_type("kis", "H0STASP0").layouts == (59, 62, 63)
    cfg = SimConfig(port=0, seed=8, rate=30.0)
    async with Simulator(cfg, legacy_layouts=legacy) as sim:
        assert sim.config.legacy_layouts is legacy
        got = await frames(sim, ("H0STCNT0", "H0STASP0"), 3)
    assert {widths(t) for t in got["H0STCNT0"]} == {trade_width}
    assert {widths(t) for t in got["H0STASP0"]} == {book_width}
    for text in got["H0STCNT0"] + got["H0STASP0"]:
        recs = krfeed.decode("kis", text)
        assert recs and not any(isinstance(r, DecodeError) for r in recs)
        for r in recs:
            assert isinstance(r, Trade | OrderBook) and r.item == "005930"
            assert r.extra == ()
            # the published layout has no market class; today's says the regular session
            assert r.market_class is (None if legacy else MarketSession.REGULAR)
            if isinstance(r, OrderBook):
                mid = floor_tick((r.ask_price_1 + r.bid_price_1) // 2)
                assert r.krx_mid_price == (None if legacy else mid)


@pytest.mark.parametrize(
    ("phase", "market_class", "wire"),
    [
        (PRE_OPEN, MarketSession.PRE_MARKET, "1"),
        (REGULAR, MarketSession.REGULAR, "2"),
        (AFTER_HOURS, MarketSession.POST_MARKET, "3"),
        (CLOSING, MarketSession.CLOSING_AUCTION, "5"),
    ],
)
def test_market_class_follows_the_session_phase(
    phase: Phase, market_class: MarketSession, wire: str
) -> None:
    inst = Instrument("005930", seed=1)
    for _ in range(5):
        inst.step(NOW, phase)
    for tr in ("H0STCNT0", "H0STASP0"):
        rec = market_record("kis", tr, inst, "005930", NOW, phase)
        assert rec.market_class is market_class
        fields = encode_kis_fields(rec)
        assert fields[-1] == wire  # MARKET_CLS_CODE is the last field of today's layouts
    book = market_record("kis", "H0STASP0", inst, "005930", NOW, phase)
    assert isinstance(book, OrderBook)
    assert book.krx_mid_price == floor_tick((inst.best_ask + inst.best_bid) // 2)
    assert book.krx_mid_total_qty == inst.asks[0][1] // 10 + inst.bids[0][1] // 10
