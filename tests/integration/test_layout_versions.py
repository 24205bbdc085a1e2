"""A wire ahead of krfeed's declarations: the simulator appends three values no layout declares
to every KIS record (as after a KIS notice). The records decode, keep those values in ``extra``,
and the stream says so once per session and layout — not per frame, not again after a
reconnect."""

from __future__ import annotations

from typing import Any

from krfeed import KIS, Feed, LayoutChanged, Reconnected
from krfeed.records.kis import OrderBook, Trade
from krfeed.sim import SimConfig, Simulator

from .helpers import FAST, collect


async def test_longer_records_keep_their_extra_values_and_are_reported_once() -> None:
    cfg = SimConfig(port=0, seed=11, rate=40.0, ping_interval=0.5, unknown_fields=3)
    async with Simulator(cfg) as sim, Feed(KIS.sim(sim.url, 1), options=FAST) as feed:
        await feed.subscribe(KIS.TRADE, ["005930", "000660"])
        await feed.subscribe(KIS.ORDER_BOOK, ["005930"])

        def enough(it: list[Any]) -> bool:
            return sum(isinstance(i, Trade) for i in it) >= 20 and any(
                isinstance(i, OrderBook) for i in it
            )

        items = await collect(feed, enough, timeout=30.0)
        sim.fault("drop", broker="kis")
        after: list[Any] = await collect(
            feed, lambda it: any(isinstance(i, Reconnected) for i in it)
        )
        after += await collect(
            feed, lambda it: sum(isinstance(i, Trade) for i in it) >= 10, timeout=30.0
        )
        stats = feed.stats()

    items += after
    trades = [i for i in items if isinstance(i, Trade)]
    books = [i for i in items if isinstance(i, OrderBook)]
    # every known field decoded, the three unknown values kept as sent
    assert all(t.extra == ("U1", "U2", "U3") for t in trades)
    assert all(b.extra == ("U1", "U2", "U3") for b in books)
    assert {t.code for t in trades} <= {"005930", "000660"}
    assert all(t.current_price and t.current_price > 0 for t in trades)
    assert all(t.market_class is not None for t in trades)  # the 47th field, known
    assert all(b.krx_mid_price is not None for b in books)  # the 60th, known
    # said once per TR and layout, on the first connection only
    notices = [i for i in items if isinstance(i, LayoutChanged)]
    assert sorted((n.type, n.fields, n.known, n.extra) for n in notices) == [
        ("H0STASP0", 66, (59, 62, 63), 3),
        ("H0STCNT0", 50, (46, 47), 3),
    ]
    assert not [i for i in after if isinstance(i, LayoutChanged)]
    assert "50 fields" in next(n for n in notices if n.type == "H0STCNT0").message
    assert stats["layout_notices"] == 2
    assert stats["decode_errors"] == 0
