"""krfeed quickstart: order events from Kiwoom and program trading from KIS, typed.

Runs against the built-in simulator, so it works anywhere:

    .venv/bin/python examples/quickstart.py

For the real brokers, drop the simulator and pass your own keys:
``Kiwoom(appkey=..., secretkey=...)`` and ``KIS(appkey=..., secretkey=..., hts_id=...)``.
"""

from __future__ import annotations

import asyncio

from krfeed import KIS, Disconnected, Feed, Kiwoom, Reconnected, SessionOptions
from krfeed.records.kis import ProgramTrading
from krfeed.records.kiwoom import OrderExecution
from krfeed.sim import SimConfig, Simulator


async def main(records: int = 20) -> None:
    async with Simulator(SimConfig(port=0, seed=1, auto_orders=2.0)) as sim:
        kiwoom = Kiwoom.sim(sim.url)  # = Kiwoom(sim_appkey(1), sim_secret(1), rest_url=…)
        kis = KIS.sim(sim.url, 2)
        async with Feed(kiwoom, kis, options=SessionOptions(market_hours=None)) as feed:
            await feed.subscribe(Kiwoom.ORDER_EXECUTION)  # type 00: your orders and fills
            await feed.subscribe(KIS.PROGRAM_TRADING, ["005930", "000660"])  # H0STPGM0
            seen = 0
            async for event in feed:
                match event:
                    case OrderExecution():
                        # 905 주문구분 says whether the event is of a cancel or a modify
                        kind = event.order_kind or ""
                        what = "cancel " if "취소" in kind else "modify " if "정정" in kind else ""
                        # fill_qty is cumulative per order; this fill's own is unit_fill_qty
                        fill = (
                            f" fill {event.unit_fill_qty} @ {event.unit_fill_price}"
                            if event.unit_fill_qty
                            else ""
                        )
                        print(
                            f"order {event.order_no} {what}{event.order_status} {event.side} "
                            f"{event.code} qty={event.order_qty}{fill} "
                            f"(filled {event.fill_qty or 0}, unfilled {event.unfilled_qty})"
                        )
                    case ProgramTrading():
                        print(
                            f"{event.code} {event.time:%H:%M:%S} program net buy "
                            f"{event.net_buy_qty:+,} shares / {event.net_buy_value:+,} won"
                        )
                    case Disconnected() | Reconnected():
                        print("connection:", event)
                    case _:
                        continue
                seen += 1
                if seen >= records:
                    break
            print(feed.stats()["records_delivered"])


if __name__ == "__main__":
    asyncio.run(main())
