"""``krfeed web``: a live dashboard in the browser, served by krfeed itself.

    from krfeed.web import DashboardState, WebServer

    state = DashboardState()
    async with WebServer(state, port=0) as server:
        print(server.url)
        async for item in order_stream:      # an OrderStream(feed, passthrough=True)
            state.ingest(item)

- :mod:`krfeed.web.state` — what the page shows, folded from feed items (bounded memory), and
  :class:`ClientView`, the per-page coalescing (at most 10 pushes a second per panel).
- :mod:`krfeed.web.server` — the aiohttp server: the page, its files, one WebSocket per page,
  loopback by default, a token beyond it.
- :mod:`krfeed.web.app` — live, replay, recording and demo runs; :mod:`krfeed.cli.web` the command.
- ``static/`` — the page (no build step) and uPlot, vendored (see ``static/VENDOR.md``).
"""

from __future__ import annotations

from krfeed.web.server import WebServer
from krfeed.web.state import ClientView, DashboardState

__all__ = ["ClientView", "DashboardState", "WebServer"]
