"""The dashboard's HTTP server (aiohttp): the page, its static files and one WebSocket per page.

Security, because the page shows a trader's own orders:

- loopback (127.0.0.1) by default; requests must name a loopback ``Host`` there (no DNS
  rebinding), and a WebSocket's ``Origin`` must be the page's own;
- with a ``token`` (always when bound beyond loopback) every request needs it: the printed URL
  carries it once (``/?token=…``), the server answers with an HttpOnly, SameSite=Strict cookie
  and a redirect to the bare URL;
- nothing served contains credentials, tokens or approval keys (the state holds none);
- ``Cache-Control: no-store`` on every response, a content-security policy that allows only
  the page's own scripts, styles and WebSocket (no CDN, no inline script), no framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from krfeed.errors import KrfeedError
from krfeed.logs import get_logger
from krfeed.web.state import ClientView, DashboardState

log = get_logger("krfeed.web")

COOKIE = "krfeed_token"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
STATIC = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
    "favicon.svg": "image/svg+xml",
}
_encode = msgspec.json.Encoder(decimal_format="number").encode


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _hostname(host_header: str) -> str:
    """The host of a Host header (``127.0.0.1:8700`` -> ``127.0.0.1``, ``[::1]:80`` -> ``::1``)."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _static(name: str) -> bytes:
    return resources.files("krfeed.web").joinpath("static", name).read_bytes()


class WebServer:
    """Serves ``state`` at http://host:port/ (``port`` 0 picks a free one).

    ``health``: returns the health panel (``feed.stats()`` and subscriptions, when live).
    ``token``: required from every client; generated when ``host`` is not loopback.
    ``rate``: pushes per second per panel at most.
    """

    def __init__(
        self,
        state: DashboardState,
        *,
        host: str = "127.0.0.1",
        port: int = 8700,
        token: str | None = None,
        health: Callable[[], dict[str, Any]] | None = None,
        rate: float = 10.0,
        title: str = "krfeed",
        on_select: Callable[[str], Awaitable[None] | None] | None = None,
    ) -> None:
        self.state = state
        self.host = host
        self.port = port
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(24)
        self.token = token
        self.health = health or (lambda: state.health_view(None, []))
        self.rate = rate
        self.title = title
        self.on_select = on_select
        self.clients: set[ClientView] = set()
        self.pushes = 0
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._health_cache: tuple[float, dict[str, Any]] = (float("-inf"), {})

    # ---- lifecycle ----

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/api/snapshot", self._snapshot)
        app.router.add_get("/static/{name}", self._file)
        app.router.add_get("/favicon.ico", self._favicon)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            self._runner = None
            why = e.strerror or str(e)
            raise KrfeedError(
                f"cannot serve on {self.host}:{self.port}: {why} (try another --port, or --port 0)"
            ) from None
        sockets: Any = getattr(site._server, "sockets", None)  # the port when 0 was asked for
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The address to open (with the token, when there is one)."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        base = f"http://{host}:{self.port}/"
        return base + (f"?token={self.token}" if self.token else "")

    # ---- guard ----

    def _authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        got = request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(got.encode(), self.token.encode())

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        resp = await self._check(request, handler)
        for k, v in HEADERS.items():
            resp.headers.setdefault(k, v)
        return resp

    async def _check(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        host = _hostname(request.host or "")
        if is_loopback(self.host) and not is_loopback(host):
            return web.Response(status=403, text="krfeed web answers to a loopback Host only.\n")
        if request.method != "GET":
            return web.Response(status=405, text="krfeed web is read-only.\n")
        if self.token is not None:
            given = request.query.get("token")
            if given is not None and request.path == "/":
                if not hmac.compare_digest(given.encode(), self.token.encode()):
                    return web.Response(status=401, text="Wrong token: open the printed URL.\n")
                resp = web.Response(status=303, headers={"Location": "/"})
                resp.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
                return resp
            if not self._authorized(request):
                return web.Response(
                    status=401, text="This dashboard needs its token: open the printed URL.\n"
                )
        try:
            return await handler(request)
        except web.HTTPException as e:  # answered here, so that the headers are set on it too
            return web.Response(status=e.status, text=e.text)

    # ---- handlers ----

    async def _index(self, request: web.Request) -> web.StreamResponse:
        html = _static("index.html").decode().replace("{{title}}", self.title)
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        ctype = STATIC.get(name)
        if ctype is None:
            raise web.HTTPNotFound(text="no such file\n")
        return web.Response(body=_static(name), content_type=ctype, charset="utf-8")

    async def _favicon(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=_static("favicon.svg"), content_type="image/svg+xml")

    def _health(self) -> dict[str, Any]:
        # shared by every page, computed at most twice a second
        now = time.monotonic()
        at, cached = self._health_cache
        if now - at < 0.5:
            return cached
        h = self.health()
        self._health_cache = (now, h)
        return h

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        """Everything a page would be sent first (JSON), for scripts and tests."""
        view = ClientView(self.state, rate=1e9, health=self._health)
        sel = request.query.get("code")
        if sel:
            view.select(sel)
        msgs = view.poll(time.monotonic())
        body = _encode({m["type"]: m for m in msgs})
        return web.Response(body=body, content_type="application/json")

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            return web.Response(status=403, text="cross-origin WebSocket refused\n")
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
        await ws.prepare(request)
        view = ClientView(self.state, rate=self.rate, health=self._health)
        self.clients.add(view)
        self._sockets.add(ws)
        pusher = asyncio.create_task(self._push(ws, view))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    cmd = msgspec.json.decode(msg.data)
                except msgspec.DecodeError:
                    continue
                if isinstance(cmd, dict) and isinstance(cmd.get("select"), str):
                    code = cmd["select"][:20]
                    view.select(code)
                    if self.on_select is not None:
                        r = self.on_select(code)
                        if r is not None:
                            await r
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
            self.clients.discard(view)
            self._sockets.discard(ws)
        return ws

    async def _push(self, ws: web.WebSocketResponse, view: ClientView) -> None:
        """Send what is due every tick; a send waits for the socket, so a slow page gets the
        latest state less often instead of a growing queue."""
        tick = 1.0 / self.rate
        loop = asyncio.get_running_loop()
        while not ws.closed:
            msgs = view.poll(loop.time())
            for m in msgs:
                await ws.send_str(_encode(m).decode())
                self.pushes += 1
            await asyncio.sleep(tick)
