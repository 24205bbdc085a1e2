"""``krfeed sim``: a simulator of both brokers (Kiwoom REST API and KIS Open API) with a market
model, an order book and fault injection, for offline development and tests.

    from krfeed.sim import Simulator, SimConfig

    async with Simulator(SimConfig(port=0, seed=1)) as sim:
        print(sim.kiwoom_ws_url, sim.kis_ws_url)
"""

from __future__ import annotations

from krfeed.sim.config import DEFAULT_CREDENTIALS, SimConfig, load_credentials
from krfeed.sim.orders import OrderError
from krfeed.sim.server import Simulator

__all__ = ["DEFAULT_CREDENTIALS", "OrderError", "SimConfig", "Simulator", "load_credentials"]
