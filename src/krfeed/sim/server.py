"""The simulator: both brokers' REST and WebSocket endpoints on one aiohttp app.

One :class:`Simulator` owns the market model, the order engine, the issued tokens, the open
connections and the counters. Every connection has one writer task draining its queue, so
replies, data and heartbeats leave in order and faults (silence, half-open, malformed frames)
are applied at one place; the market task steps every subscribed instrument ``rate`` times a
second (Poisson) and hands each connection the records that came due in that tick together,
which is how Kiwoom REAL frames get several ``data`` entries and KIS frames get NNN > 1.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections import Counter, deque
from typing import Any

from aiohttp import WSMsgType, web

from krfeed.brokers import sim_appkey
from krfeed.sim.admin import Admin
from krfeed.sim.conditions import ConditionBook
from krfeed.sim.config import SimConfig
from krfeed.sim.connections import Conn, Token
from krfeed.sim.faults import (
    FaultState,
)
from krfeed.sim.market import (
    Market,
    Phase,
)
from krfeed.sim.orders import (
    AutoTrader,
    OrderEngine,
)
from krfeed.sim.profile import ProfileRunner

log = logging.getLogger("krfeed.sim")

BROKERS = ("kiwoom", "kis")
SIM_KEY_1 = sim_appkey(1)
KIWOOM_ACCOUNT_TYPES = frozenset({"00", "04"})
KIS_NOTICE_TYPES = frozenset({"H0STCNI0", "H0STCNI9"})
#: Types that carry a trade: sent only for steps that traded.
TRADE_TYPES = frozenset({"0B", "H0STCNT0", "H0NXCNT0", "H0UNCNT0", "H0STOUP0"})
#: Types that carry an event: sent only for steps with a VI trigger/release.
VI_TYPES = frozenset({"1h"})


class Simulator(Admin):
    """Both brokers on one port. ``async with Simulator(SimConfig(port=0)) as sim: …``"""

    def __init__(
        self, config: SimConfig | None = None, *, legacy_layouts: bool | None = None
    ) -> None:
        cfg = config or SimConfig()
        if legacy_layouts is not None:
            cfg = dataclasses.replace(cfg, legacy_layouts=legacy_layouts)
        self.config = cfg
        self.credentials = cfg.credential_table()
        self.market = Market(cfg.seed, cfg.session_cycle)
        if cfg.universe:
            from krfeed.sim.universe import krx, universe_codes

            listed = set(universe_codes(cfg.universe))
            self.market.names = {x.code: x.name for x in krx() if x.code in listed}
        self.profile: ProfileRunner | None = None
        if cfg.profile is not None:
            self.profile = ProfileRunner(self, cfg.profile, start=cfg.profile_start)
        self.engine = OrderEngine(
            self.market, seed=cfg.seed, fill_delay=cfg.fill_delay, tick=cfg.tick, mock=cfg.mock
        )
        self.engine.listeners.append(self._on_order_event)
        self.faults = FaultState()
        #: saved condition searches (조건검색식); replace before clients use them to test others
        self.condition_book = ConditionBook()
        self.fault_rng = random.Random(f"krfeed-sim-faults:{cfg.seed}")
        self.conns: dict[int, Conn] = {}
        self._next_conn = 0
        self.tokens: dict[str, Token] = {}
        self.kiwoom_sessions: dict[str, Conn] = {}
        self.kis_sessions: dict[str, Conn] = {}
        self._ids = random.Random(f"krfeed-sim-ids:{cfg.seed}")
        self._steps = random.Random(f"krfeed-sim-steps:{cfg.seed}")
        # What was pushed for orders; bounded so a long-running simulator does not grow forever.
        self.events: dict[str, deque[dict[str, Any]]] = {
            b: deque(maxlen=cfg.max_account_events) for b in BROKERS
        }
        self.counters: Counter[str] = Counter()
        self.connections_total: Counter[str] = Counter()
        self.logins: dict[str, Counter[str]] = {b: Counter() for b in BROKERS}
        self.frames_sent: dict[str, Counter[str]] = {b: Counter() for b in BROKERS}
        self.records_sent: dict[str, Counter[str]] = {b: Counter() for b in BROKERS}
        self.account_sent: Counter[str] = Counter()
        self.ping_timeouts: Counter[str] = Counter()
        self.benches: dict[int, dict[str, Any]] = {}
        self.auto: AutoTrader | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._bg: set[asyncio.Task[Any]] = set()
        self._last_phase: Phase | None = None
        self.host = cfg.host
        self.port = 0
        self.url = ""

    # ---- lifecycle ----

    async def start(self) -> None:
        from krfeed.sim import conditions, kis, kiwoom

        app = web.Application()
        app.router.add_post("/oauth2/token", self._wrap(kiwoom.token))
        app.router.add_post("/oauth2/revoke", self._wrap(kiwoom.revoke))
        app.router.add_post("/api/dostk/ordr", self._wrap(kiwoom.order))
        app.router.add_post("/api/dostk/acnt", self._wrap(kiwoom.account))
        app.router.add_get("/api/dostk/websocket", self._ws("kiwoom"))
        app.router.add_post("/oauth2/Approval", self._wrap(kis.approval))
        app.router.add_post("/oauth2/tokenP", self._wrap(kis.token))
        app.router.add_post("/oauth2/revokeP", self._wrap(kis.revoke))
        trading = "/uapi/domestic-stock/v1/trading"
        app.router.add_post(f"{trading}/order-cash", self._wrap(kis.order_cash))
        app.router.add_post(f"{trading}/order-rvsecncl", self._wrap(kis.order_rvsecncl))
        app.router.add_get(f"{trading}/inquire-daily-ccld", self._wrap(kis.daily_ccld))
        app.router.add_post("/_sim/faults", self._admin_fault)
        app.router.add_get("/_sim/faults", self._admin_fault_list)
        app.router.add_get("/_sim/stats", self._admin_stats)
        app.router.add_post("/_sim/bench", self._admin_bench)
        app.router.add_get("/_sim/orders", self._admin_orders)
        app.router.add_get("/_sim/events", self._admin_events)
        app.router.add_get("/_sim/accounts", self._admin_accounts)
        app.router.add_get("/_sim/conditions", self._wrap(conditions.admin))
        app.router.add_post("/_sim/profile", self._admin_profile)
        app.router.add_get("/_sim/universe", self._admin_universe)
        # the KIS WebSocket on any other path: the real server ignores the path (the official
        # samples use /tryitout); a plain GET of / describes the simulator
        app.router.add_get("/{path:.*}", self._root)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        await site.start()
        self._runner = runner
        addr = runner.addresses[0]
        self.port = int(addr[1])
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        self._last_phase = self.market.phase()
        self._tasks.append(asyncio.create_task(self._market_loop(), name="market"))
        if self.profile is not None:
            self._tasks.append(asyncio.create_task(self.profile.run(), name="profile"))
        if self.config.auto_orders > 0:
            self.auto = AutoTrader(
                self.engine,
                self.config.auto_orders,
                self._auto_accounts,
                codes=self.config.codes,
                seed=self.config.seed,
            )
            self._tasks.append(asyncio.create_task(self.auto.run(), name="auto-orders"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in list(self._bg):
            t.cancel()
        await asyncio.gather(*self._tasks, *self._bg, return_exceptions=True)
        self._tasks.clear()
        await asyncio.gather(
            *(self._close_conn(c) for c in list(self.conns.values())), return_exceptions=True
        )
        await self.engine.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _close_conn(self, c: Conn) -> None:
        for t in c.tasks:
            t.cancel()
        c.closed = True
        c.half_open_until = 0.0
        try:
            await asyncio.wait_for(c.ws.close(code=1001, message=b"simulator stopping"), 1.0)
        except Exception:
            c.abort()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def kiwoom_ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/api/dostk/websocket"

    @property
    def kis_ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/tryitout"

    # ---- tokens ----

    def issue(self, kind: str, appkey: str) -> Token:
        r = self._ids
        if kind == "kis_approval":
            h = f"{r.getrandbits(128):032x}"
            value = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        else:
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
            body = "".join(alphabet[r.randrange(len(alphabet))] for _ in range(86))
            jwt_head = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."
            value = jwt_head + body if kind == "kis_access" else body
        tok = Token(value, kind, appkey, time.time() + self.config.token_ttl)
        self.tokens[value] = tok
        return tok

    def check_token(self, kind: str, value: object) -> Token | None:
        if not isinstance(value, str):
            return None
        tok = self.tokens.get(value.strip())
        if tok is None or tok.kind != kind or not tok.valid():
            return None
        return tok

    def kiwoom_token(self, appkey: str = SIM_KEY_1) -> str:
        """Issue a Kiwoom token directly (what POST /oauth2/token would return)."""
        self._known(appkey)
        return self.issue("kiwoom", appkey).value

    def kis_approval_key(self, appkey: str = SIM_KEY_1) -> str:
        self._known(appkey)
        return self.issue("kis_approval", appkey).value

    def kis_access_token(self, appkey: str = SIM_KEY_1) -> str:
        self._known(appkey)
        return self.issue("kis_access", appkey).value

    def _known(self, appkey: str) -> None:
        if appkey not in self.credentials:
            raise KeyError(f"unknown appkey {appkey!r}")

    def account(self, broker: str, appkey: str = SIM_KEY_1) -> str:
        """The account number of ``appkey`` (Kiwoom 10 digits, KIS CANO 8 digits)."""
        return self.engine.account(broker, appkey).number

    def random_chars(self, n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyz") -> str:
        return "".join(alphabet[self._ids.randrange(len(alphabet))] for _ in range(n))

    # ---- python API ----

    # ---- plumbing ----

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    def _wrap(self, handler: Any) -> Any:
        async def h(request: web.Request) -> web.StreamResponse:
            resp: web.StreamResponse = await handler(self, request)
            return resp

        return h

    def _ws(self, broker: str) -> Any:
        async def h(request: web.Request) -> web.StreamResponse:
            return await self.serve_ws(broker, request)

        return h

    async def _root(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.serve_ws("kis", request)
        if request.path != "/":
            return web.json_response({"error": "not found", "path": request.path}, status=404)
        return web.json_response(
            {
                "name": "krfeed sim",
                "kiwoom_ws": self.kiwoom_ws_url,
                "kis_ws": self.kis_ws_url,
                "mock": self.config.mock,
            }
        )

    async def serve_ws(self, broker: str, request: web.Request) -> web.StreamResponse:
        from krfeed.sim import kis, kiwoom

        if self.faults.down(broker):
            self.counters["outage_refused"] += 1
            return web.Response(status=503, text="service unavailable (simulated outage)")
        delay = self.faults.handshake_delay(broker)
        if delay:
            await asyncio.sleep(delay)
        # Heartbeats and closes are the simulator's business (half-open sockets answer nothing).
        ws = web.WebSocketResponse(autoping=False, autoclose=False, compress=False, timeout=2.0)
        await ws.prepare(request)
        self._next_conn += 1
        conn = Conn(self, broker, self._next_conn, ws, request)
        self.conns[conn.id] = conn
        self.connections_total[broker] += 1
        conn.tasks.append(asyncio.create_task(conn.writer(), name="writer"))
        if broker == "kis":
            conn.start_pinger()
        on_text = kiwoom.on_text if broker == "kiwoom" else kis.on_text
        try:
            while True:
                msg = await ws.receive()
                if msg.type in (
                    WSMsgType.CLOSE,
                    WSMsgType.CLOSING,
                    WSMsgType.CLOSED,
                    WSMsgType.ERROR,
                ):
                    await self._unanswered_close(conn)
                    break
                if conn.half_open_until > time.monotonic():
                    continue  # half-open: nothing is read
                if msg.type is WSMsgType.TEXT:
                    on_text(self, conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    try:
                        on_text(self, conn, bytes(msg.data).decode("utf-8"))
                    except UnicodeDecodeError:
                        self.counters["bad_frames"] += 1
                elif msg.type is WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG and broker == "kis":
                    conn.echo()  # the official KIS samples answer PINGPONG with a pong frame
        finally:
            conn.closed = True
            for t in conn.tasks:
                t.cancel()
            self.conns.pop(conn.id, None)
            self._release(conn)
            if not ws.closed:
                try:
                    await asyncio.wait_for(ws.close(), 1.0)
                except Exception:
                    conn.abort()
        return ws

    def _release(self, conn: Conn) -> None:
        """Free the appkey's one-session slot if ``conn`` holds it."""
        if conn.appkey is not None:
            table = self.kiwoom_sessions if conn.broker == "kiwoom" else self.kis_sessions
            if table.get(conn.appkey) is conn:
                del table[conn.appkey]

    async def _unanswered_close(self, conn: Conn) -> None:
        """Half-open: a close frame is not answered and the socket stays open until the half-open
        time is over or the client drops the TCP connection; the appkey is freed at once for a
        new session. With ``hold_session`` the server saw nothing at all (the path is dead): the
        session keeps the appkey until the half-open time is over, so a reconnect meets
        OPSP8996 (KIS) meanwhile."""
        left = conn.half_open_until - time.monotonic()
        if left <= 0:
            return
        if conn.hold_session:
            while conn.half_open_until > time.monotonic():
                await asyncio.sleep(0.05)
            return
        conn.closed = True
        self._release(conn)
        while conn.half_open_until > time.monotonic():
            transport = conn.request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(0.05)

    # ---- market data ----

    # ---- account pushes ----

    # ---- benchmark ----

    # ---- admin endpoints ----
