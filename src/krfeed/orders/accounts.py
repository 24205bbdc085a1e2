"""The accounts of a running ``krfeed sim`` (its ``/_sim/accounts``), for reconciliation."""

from __future__ import annotations

import contextlib

from krfeed.feed import Feed
from krfeed.orders.model import AccountRef


async def sim_accounts(feed: Feed, sim: str) -> dict[str | tuple[str, str], AccountRef]:
    """The simulator's accounts (its /_sim/accounts) per (broker, app key): both brokers'
    credentials share the app key strings, so the broker is part of the key."""
    out: dict[str | tuple[str, str], AccountRef] = {}
    with contextlib.suppress(Exception):
        async with feed.http.get(sim.rstrip("/") + "/_sim/accounts") as resp:
            data = await resp.json()
        if not isinstance(data, dict):
            return out
        for broker in ("kiwoom", "kis"):
            table = data.get(broker)
            if not isinstance(table, dict):
                continue
            for appkey, number in table.items():
                if number:
                    # KIS: the simulator lists CANO; its accounts are product code 01
                    full = f"{number}01" if broker == "kis" else str(number)
                    out[(broker, str(appkey))] = AccountRef(broker, full)
    return out
