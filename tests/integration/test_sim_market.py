"""The simulator's market model and auto-trader: deterministic, on the grid, schema-valid."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import krfeed
from krfeed.brokers import sim_appkey
from krfeed.protocol.kis import AesKey, data_frame
from krfeed.protocol.messages import DecodeError
from krfeed.schema.catalog import types
from krfeed.schema.compile import encode_kis_fields, encode_kiwoom_values
from krfeed.schema.convert import KST
from krfeed.sim import SimConfig, Simulator, load_credentials
from krfeed.sim.market import (
    AFTER_HOURS,
    CLOSING,
    PRE_OPEN,
    REGULAR,
    Market,
    market_record,
    on_grid,
    tick_down,
    tick_size,
    tick_up,
)
from krfeed.sim.orders import AutoTrader

NOW = datetime(2025, 3, 4, 10, 30, 0, tzinfo=KST)


def test_tick_grid() -> None:
    assert [tick_size(p) for p in (1999, 2000, 4995, 5000, 19990, 20000, 49950, 50000)] == [
        1,
        5,
        5,
        10,
        10,
        50,
        50,
        100,
    ]
    assert [tick_size(p) for p in (199900, 200000, 499500, 500000)] == [100, 500, 500, 1000]
    assert tick_up(1999) == 2000 and tick_up(2000) == 2005
    assert tick_down(2000) == 1999 and tick_down(5000) == 4995 and tick_down(500000) == 499500
    assert on_grid(71000) and not on_grid(71050) and on_grid(43250)


def path(seed: int, code: str, steps: int = 300) -> list[tuple[int, int, int, int]]:
    inst = Market(seed).instrument(code)
    out = []
    for _ in range(steps):
        inst.step(NOW)
        out.append((inst.price, inst.last_qty, inst.pgm_buy_qty, inst.total_ask))
    return out


def test_deterministic_per_seed() -> None:
    assert path(1, "005930") == path(1, "005930")
    assert path(1, "005930") != path(2, "005930")
    assert path(1, "005930") != path(1, "000660")


def test_prices_stay_on_grid_and_within_limits() -> None:
    m = Market(3)
    for code in ("005930", "035720", "123450", "069500"):
        inst = m.instrument(code)
        for _ in range(3000):
            inst.step(NOW)
            assert inst.lower <= inst.price <= inst.upper and on_grid(inst.price)
            assert inst.best_ask > inst.best_bid or inst.price in (inst.upper, inst.lower)
        assert inst.pgm_buy_qty > 0 and inst.pgm_sell_qty > 0
        assert inst.volume == inst.buy_volume + inst.sell_volume


def test_every_declared_type_encodes_and_decodes() -> None:
    m = Market(1)
    for item in ("005930", "039490_AL", "001", "777777"):
        inst = m.instrument(item)
        for phase in (PRE_OPEN, REGULAR, CLOSING, AFTER_HOURS):
            inst.step(NOW, phase)
            for t in types("kiwoom").values():
                rec = market_record("kiwoom", t.code, inst, item, NOW, phase)
                entry = {
                    "type": t.code,
                    "name": t.title,
                    "item": item,
                    "values": encode_kiwoom_values(rec),
                }
                [got] = krfeed.decode(
                    "kiwoom", json.dumps({"trnm": "REAL", "data": [entry]}), received_at=NOW
                )
                assert not isinstance(got, DecodeError), got.reason
                assert encode_kiwoom_values(got) == entry["values"]  # the wire is stable
            for t in types("kis").values():
                rec = market_record("kis", t.code, inst, item, NOW, phase)
                fields = encode_kis_fields(rec)
                key = AesKey("k" * 32, "i" * 16) if t.encrypted else None
                frame = data_frame(t.code, [fields, fields], key)
                got2 = krfeed.decode(
                    "kis",
                    frame,
                    key="k" * 32 if key else None,
                    iv="i" * 16 if key else None,
                    received_at=NOW,
                )
                assert len(got2) == 2 and not isinstance(got2[0], DecodeError), got2
                assert encode_kis_fields(got2[1]) == fields


def test_session_phases_follow_the_clock() -> None:
    t = [0.0]
    m = Market(1, session_cycle=100, clock=lambda: t[0])
    seen = []
    for now in (5, 50, 85, 95, 105, 150):
        t[0] = now
        seen.append(m.phase().name)
    assert seen == ["pre_open", "regular", "closing_auction", "after_hours", "pre_open", "regular"]
    inst = m.instrument("005930")
    before = inst.volume
    inst.step(NOW, PRE_OPEN)
    assert not inst.traded and inst.volume == before  # no trades during an auction


async def test_auto_trader_lifecycles() -> None:
    async with Simulator(SimConfig(rate=0, fill_delay=0.01)) as sim:
        auto = AutoTrader(sim.engine, 1.0, lambda: [("kiwoom", sim_appkey(1))], seed=1)
        for _ in range(80):
            auto.one("kiwoom", sim_appkey(1))
        for _ in range(400):
            book = sim.order_book("kiwoom")
            if all(o["remaining"] == 0 for o in book) and len(book) > 80:
                break
            sim._market_tick(0.1)  # keep the market moving so resting orders can fill
            await asyncio.sleep(0.01)
        statuses = {o["status"] for o in book}
        assert {"체결", "취소", "거부", "확인"} <= statuses
        assert any(o["kind"] == "cancel" for o in book)
        for o in book:
            assert o["filled"] == sum(f["qty"] for f in o["fills"])
            assert o["amount"] == sum(f["qty"] * f["price"] for f in o["fills"])
            if o["kind"] != "cancel":
                assert o["qty"] == o["filled"] + o["cancelled"] + o["rejected"] + o["remaining"]
            if o["status"] == "거부":
                assert o["filled"] == 0 and o["reject_reason"]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_auto_orders_reach_both_brokers(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimConfig(rate=2, auto_orders=40, fill_delay=0.02)) as sim:
        kw = await http.ws_connect(sim.kiwoom_ws_url)
        await kw.send_str(json.dumps({"trnm": "LOGIN", "token": sim.kiwoom_token(sim_appkey(1))}))
        reg = {
            "trnm": "REG",
            "grp_no": "1",
            "refresh": "1",
            "data": [{"item": [""], "type": ["00"]}],
        }
        await kw.send_str(json.dumps(reg))
        kis = await http.ws_connect(sim.kis_ws_url)
        sub = {
            "header": {
                "approval_key": sim.kis_approval_key(sim_appkey(2)),
                "custtype": "P",
                "tr_type": "1",
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": "H0STCNI0", "tr_key": "trader2"}},
        }
        await kis.send_str(json.dumps(sub))
        aes: AesKey | None = None
        kw_events: list[Any] = []
        kis_events: list[Any] = []

        async def read_kw() -> None:
            while len(kw_events) < 30:
                msg = await asyncio.wait_for(kw.receive(), 10)
                frame = json.loads(msg.data)
                if frame["trnm"] == "REAL":
                    for rec in krfeed.decode("kiwoom", msg.data):
                        assert not isinstance(rec, DecodeError)
                        kw_events.append(rec)
                elif frame["trnm"] == "PING":
                    await kw.send_str(msg.data)

        async def read_kis() -> None:
            nonlocal aes
            while len(kis_events) < 30:
                msg = await asyncio.wait_for(kis.receive(), 10)
                if msg.data.startswith("{"):
                    body = json.loads(msg.data).get("body")
                    if body and "output" in body:
                        aes = AesKey(body["output"]["key"], body["output"]["iv"])
                    continue
                assert aes is not None
                kis_events.append(aes.decrypt(msg.data.split("|", 3)[3]).split("^"))

        await asyncio.gather(read_kw(), read_kis())
        by_order: dict[str, list[Any]] = {}
        for r in kw_events:
            by_order.setdefault(r.order_no, []).append(r)
        for evs in by_order.values():
            if evs[0].original_order_no == "0000000":
                assert evs[0].order_status.value == "accepted"
            cum = [e.fill_qty for e in evs if e.fill_qty is not None]
            assert cum == sorted(cum)
        assert all(f[0] == "trader2" and len(f) == 26 for f in kis_events)
        assert sim.stats()["auto_orders"] >= 2
        await kw.close()
        await kis.close()


def test_credentials_files(tmp_path: Path) -> None:
    j = tmp_path / "c.json"
    j.write_text('{"a": "1", "b": "2"}')
    t = tmp_path / "c.toml"
    t.write_text('[credentials]\nmy-app = "my-secret"\n')
    lst = tmp_path / "l.json"
    lst.write_text('[{"appkey": "x", "secretkey": "y"}]')
    assert load_credentials(j) == {"a": "1", "b": "2"}
    assert load_credentials(t) == {"my-app": "my-secret"}
    assert load_credentials(lst) == {"x": "y"}
    assert SimConfig(credentials=t).credential_table() == {"my-app": "my-secret"}
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError):
        load_credentials(bad)


async def test_market_phases_are_announced(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimConfig(rate=0, session_cycle=1.0)) as sim:
        ws = await http.ws_connect(sim.kiwoom_ws_url)
        await ws.send_str(json.dumps({"trnm": "LOGIN", "token": sim.kiwoom_token()}))
        reg = {
            "trnm": "REG",
            "grp_no": "1",
            "refresh": "1",
            "data": [{"item": [""], "type": ["0s"]}],
        }
        await ws.send_str(json.dumps(reg))
        codes: list[str] = []
        while len(codes) < 6:
            msg = await asyncio.wait_for(ws.receive(), 5)
            frame = json.loads(msg.data)
            if frame["trnm"] == "REAL":
                [rec] = krfeed.decode("kiwoom", msg.data)
                assert rec.type == "0s" and rec.event_time is not None
                codes.append(rec.market_operation)
        cycle = ["0", "3", "2", "4"]  # 장시작전, 장시작, 장마감전 동시호가, 장종료
        for a, b in itertools.pairwise(codes):
            assert cycle[(cycle.index(a) + 1) % 4] == b, codes
        await ws.close()
