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
import math
import random
import time
from collections import Counter, defaultdict, deque
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from krfeed.brokers import sim_appkey
from krfeed.protocol.kis import data_frame
from krfeed.records.base import Record
from krfeed.schema.catalog import get_type, types
from krfeed.schema.compile import encode_kis_fields, encode_kiwoom_values
from krfeed.sim.conditions import ConditionBook
from krfeed.sim.config import SimConfig
from krfeed.sim.connections import Conn, Out, Token, dumps, loads, now_kst
from krfeed.sim.faults import (
    FaultState,
    parse_fault,
)
from krfeed.sim.market import (
    PHASES,
    Instrument,
    Market,
    Phase,
    base_code,
    make_record,
    market_record,
    poisson,
)
from krfeed.sim.orders import (
    LIMIT,
    MARKET,
    AutoTrader,
    OrderEngine,
    OrderEvent,
    order_type,
)

log = logging.getLogger("krfeed.sim")

BROKERS = ("kiwoom", "kis")
SIM_KEY_1 = sim_appkey(1)
KIWOOM_ACCOUNT_TYPES = frozenset({"00", "04"})
KIS_NOTICE_TYPES = frozenset({"H0STCNI0", "H0STCNI9"})
#: Types that carry a trade: sent only for steps that traded.
TRADE_TYPES = frozenset({"0B", "H0STCNT0", "H0NXCNT0", "H0UNCNT0", "H0STOUP0"})
#: Types that carry an event: sent only for steps with a VI trigger/release.
VI_TYPES = frozenset({"1h"})


class Simulator:
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
        app.router.add_get("/_sim/stats", self._admin_stats)
        app.router.add_post("/_sim/bench", self._admin_bench)
        app.router.add_get("/_sim/orders", self._admin_orders)
        app.router.add_get("/_sim/events", self._admin_events)
        app.router.add_get("/_sim/accounts", self._admin_accounts)
        app.router.add_get("/_sim/conditions", self._wrap(conditions.admin))
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

    def fault(self, action: str, **params: Any) -> dict[str, Any]:
        """Inject a fault (same as POST /_sim/faults). Raises ValueError for a bad request."""
        f = parse_fault(action, params)
        now = time.monotonic()
        targets = [c for c in self.conns.values() if not c.closed and f.matches(c.broker, c.appkey)]
        affected = 0
        if action == "drop":
            for c in targets:
                c.abort()
            affected = len(targets)
        elif action == "close":
            for c in targets:
                c.close_after(int(f.params["code"]), str(f.params["reason"]), front=True)
            affected = len(targets)
        elif action == "silence":
            for c in targets:
                c.silence_until = now + f.num("seconds")
            affected = len(targets)
        elif action == "half_open":
            for c in targets:
                c.half_open_until = now + f.num("seconds")
                c.hold_session = bool(f.params["hold_session"])
                c.tasks.append(asyncio.create_task(c.half_open_then_abort(f.num("seconds"))))
            affected = len(targets)
        elif action == "malformed":
            for c in targets:
                c.malformed_left += int(f.params["count"])
                if f.num("rate") > 0:
                    c.malformed_rate = f.num("rate")
                    secs = f.num("seconds")
                    c.malformed_until = now + secs if secs else 0.0
            affected = len(targets)
        elif action == "invalid_utf8":
            for c in targets:
                c.invalid_utf8_left += int(f.params["count"])
                if f.num("rate") > 0:
                    c.invalid_utf8_rate = f.num("rate")
                    secs = f.num("seconds")
                    c.invalid_utf8_until = now + secs if secs else 0.0
            affected = len(targets)
        elif action == "delay_handshake":
            self.faults.handshake_delays.append([int(f.params["count"]), f])
        elif action == "refuse_logins":
            self.faults.refusals.append((now + f.num("seconds"), f))
        elif action == "outage":
            self.faults.outages.append((now + f.num("seconds"), f))
            for c in targets:
                c.abort()
            affected = len(targets)
        elif action == "expire_tokens":
            t = time.time() - 1
            for tok in self.tokens.values():
                if f.matches(tok.broker, tok.appkey) and tok.expires > t:
                    tok.expires = t
                    affected += 1
        self.faults.counts[action] += 1
        return {"ok": True, "action": action, "affected": affected}

    def stats(self) -> dict[str, Any]:
        """Counters (same as GET /_sim/stats)."""
        live = [c for c in self.conns.values() if not c.closed]
        subs = {
            "kiwoom": sum(len(c.registrations()) for c in live if c.broker == "kiwoom"),
            "kis": sum(len(c.kis_subs) for c in live if c.broker == "kis"),
        }
        orders: dict[str, Any] = {}
        for b in BROKERS:
            os_ = self.engine.orders[b].values()
            orders[b] = {
                **dict(self.engine.counts[b]),
                "total": len(self.engine.orders[b]),
                "open": sum(1 for o in os_ if o.remaining > 0),
            }
        return {
            "url": self.url,
            "connections": {
                b: {
                    "current": sum(1 for c in live if c.broker == b),
                    "total": self.connections_total[b],
                }
                for b in BROKERS
            },
            "logins": {b: dict(self.logins[b]) for b in BROKERS},
            "subscriptions": subs,
            "frames_sent": {b: dict(self.frames_sent[b]) for b in BROKERS},
            "records_sent": {b: dict(self.records_sent[b]) for b in BROKERS},
            "account_events": {b: self.account_sent[b] for b in BROKERS},
            "faults": dict(self.faults.counts),
            "ping_timeouts": {b: self.ping_timeouts[b] for b in BROKERS},
            "orders": orders,
            "auto_orders": self.auto.placed if self.auto else 0,
            "bench": {str(k): dict(v) for k, v in self.benches.items()},
            **{k: v for k, v in self.counters.items()},
        }

    def account_events(self, broker: str) -> list[dict[str, Any]]:
        """Every 00 (Kiwoom) / H0STCNI0|9 (KIS) event sent, in order."""
        return list(self.events[broker])

    def order_book(self, broker: str, appkey: str | None = None) -> list[dict[str, Any]]:
        return [o.to_dict() for o in self.engine.orders_of(broker, appkey)]

    async def place_order(
        self,
        broker: str,
        *,
        code: str,
        side: str = "buy",
        qty: int,
        price: int = 0,
        appkey: str | None = None,
        trade_type: str | None = None,
    ) -> dict[str, Any]:
        """Place an order through the same engine as the REST endpoints (raises OrderError)."""
        key = appkey or next(iter(self.credentials))
        typ = order_type(broker, trade_type) if trade_type else (MARKET if price == 0 else LIMIT)
        order = self.engine.place(broker, key, code=code, side=side, qty=qty, price=price, type=typ)
        return order.to_dict()

    async def bench(
        self,
        broker: str,
        type_: str,
        codes: list[str] | None = None,
        *,
        rate: float = 0.0,
        count: int = 1000,
        batch: int = 1,
    ) -> int:
        """Start pushing ``count`` records of ``type_`` to every connection subscribed to it
        (same as POST /_sim/bench); returns the bench id. Progress is in stats()["bench"]."""
        t = get_type(broker, type_)
        if count < 1 or batch < 1 or (broker == "kis" and batch > 999):
            raise ValueError("count and batch must be positive (KIS batch at most 999)")
        codes = [c for c in (codes or ["005930"]) if c] or ["005930"]
        bid = len(self.benches) + 1
        targets = [c for c in self.conns.values() if not c.closed and self._subscribed(c, t.code)]
        info: dict[str, Any] = {
            "broker": broker,
            "type": t.code,
            "codes": codes,
            "count": count,
            "batch": batch,
            "rate": rate,
            "connections": len(targets),
            "state": "running",
            "records_queued": 0,
            "elapsed": 0.0,
            "records_per_s": 0.0,
        }
        self.benches[bid] = info
        self._spawn(self._run_bench(info, targets, t.code, codes, rate, count, batch))
        return bid

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

    def kis_fields(self, rec: Record) -> list[str]:
        """The wire fields of a KIS record: today's layout, or with ``legacy_layouts`` the
        published one (the oldest known layout of its TR)."""
        fields = encode_kis_fields(rec)
        if self.config.legacy_layouts:
            fields = fields[: get_type("kis", rec.type).layouts[0]]
        if self.config.unknown_fields:
            fields += [f"U{i}" for i in range(1, self.config.unknown_fields + 1)]
        return fields

    def heartbeat(self, broker: str) -> str:
        if broker == "kiwoom":
            return '{"trnm":"PING"}'
        stamp = now_kst().strftime("%Y%m%d%H%M%S")
        return '{"header":{"tr_id":"PINGPONG","datetime":"' + stamp + '"}}'

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

    def _subscribed(self, c: Conn, code: str) -> bool:
        if c.broker == "kiwoom":
            return c.logged_in and code in c.registered_types()
        return any(tr == code for tr, _ in c.kis_subs)

    def _subscribers(self) -> dict[str, list[tuple[Conn, str, str]]]:
        out: dict[str, list[tuple[Conn, str, str]]] = defaultdict(list)
        for c in self.conns.values():
            if c.closed:
                continue
            if c.broker == "kiwoom":
                if not c.logged_in:
                    continue
                for typ, item in sorted(c.registrations()):
                    if typ in KIWOOM_ACCOUNT_TYPES or typ == "0s" or not item:
                        continue
                    out[base_code(item)].append((c, typ, item))
            else:
                for tr, key in c.kis_subs:
                    if tr not in KIS_NOTICE_TYPES:
                        out[base_code(key)].append((c, tr, key))
        return out

    async def _market_loop(self) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.tick)
            try:
                self._market_tick(cfg.tick)
            except Exception:  # pragma: no cover - keep the market alive, but say so
                self.counters["market_errors"] += 1
                log.exception("market tick failed")

    def _market_tick(self, dt: float) -> None:
        now = now_kst()
        phase = self.market.phase()
        pending: dict[Conn, list[tuple[str, str, Any]]] = defaultdict(list)
        if phase is not self._last_phase:
            # announce every phase since the last tick, also one shorter than a tick
            i = PHASES.index(self._last_phase) if self._last_phase in PHASES else -1
            while PHASES[i % len(PHASES)] is not phase and i < 2 * len(PHASES):
                i += 1
                self._announce_phase(PHASES[i % len(PHASES)], now, pending)
            self._last_phase = phase
        subs = self._subscribers()
        active = sorted(set(subs) | self.engine.open_codes() | set(self.condition_book.codes()))
        lam = self.config.rate * dt
        for code in active:
            inst = self.market.instrument(code)
            for _ in range(poisson(self._steps, lam)):
                inst.step(now, phase)
                if code in subs:
                    self._collect(inst, subs[code], now, phase, pending)
        self.condition_book.tick(self, now, pending)
        self._flush(pending)

    def _collect(
        self,
        inst: Instrument,
        subs: list[tuple[Conn, str, str]],
        now: datetime,
        phase: Phase,
        pending: dict[Conn, list[tuple[str, str, Any]]],
    ) -> None:
        cache: dict[tuple[str, str, str], Any] = {}
        for c, typ, item in subs:
            if typ in TRADE_TYPES and not inst.traded:
                continue
            if typ in VI_TYPES and not inst.vi_event:
                continue
            key = (c.broker, typ, item)
            enc = cache.get(key)
            if enc is None:
                rec = market_record(c.broker, typ, inst, item, now, phase)
                enc = encode_kiwoom_values(rec) if c.broker == "kiwoom" else self.kis_fields(rec)
                cache[key] = enc
            pending[c].append((typ, item, enc))

    def _announce_phase(
        self, phase: Phase, now: datetime, pending: dict[Conn, list[tuple[str, str, Any]]]
    ) -> None:
        vals = self.market_status_values(phase, now)
        for c in self.conns.values():
            if c.broker == "kiwoom" and c.logged_in and "0s" in c.registered_types():
                pending[c].append(("0s", "", vals))

    def market_status_values(self, phase: Phase, now: datetime) -> dict[str, str]:
        """Kiwoom 0s values for the start of ``phase``."""
        secs = self.market.seconds_to_open()
        rec = make_record(
            get_type("kiwoom", "0s"),
            {
                "market_operation": phase.kiwoom_215,
                "event_time": now,
                "time_to_open": f"{secs // 3600:02d}{secs // 60 % 60:02d}{secs % 60:02d}",
            },
            "",
            now,
        )
        return encode_kiwoom_values(rec)

    def _flush(self, pending: dict[Conn, list[tuple[str, str, Any]]]) -> None:
        batch = max(1, self.config.max_batch)
        for c, entries in pending.items():
            if c.broker == "kiwoom":
                for i in range(0, len(entries), batch):
                    chunk = entries[i : i + batch]
                    c.push(self.kiwoom_real(chunk))
            else:
                by_tr: dict[str, list[list[str]]] = defaultdict(list)
                for typ, _item, enc in entries:
                    by_tr[typ].append(enc)
                for tr, recs in by_tr.items():
                    for i in range(0, len(recs), batch):
                        part = recs[i : i + batch]
                        c.push(Out(data_frame(tr, part), "data", tr, {tr: len(part)}))

    def kiwoom_real(self, entries: list[tuple[str, str, Any]], kind: str = "data") -> Out:
        kw = types("kiwoom")
        data = [
            {"type": typ, "name": kw[typ].title, "item": item, "values": vals}
            for typ, item, vals in entries
        ]
        counts = Counter(typ for typ, _, _ in entries)
        return Out(dumps({"trnm": "REAL", "data": data}), kind, "REAL", dict(counts))

    # ---- account pushes ----

    def _auto_accounts(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for appkey, c in sorted(self.kiwoom_sessions.items()):
            if not c.closed and c.logged_in:
                out.append(("kiwoom", appkey))
        for appkey, c in sorted(self.kis_sessions.items()):
            if not c.closed and any(tr in KIS_NOTICE_TYPES for tr, _ in c.kis_subs):
                out.append(("kis", appkey))
        return out

    def _on_order_event(self, ev: OrderEvent) -> None:
        from krfeed.sim import kis, kiwoom

        o = ev.order
        if o.broker == "kiwoom":
            for c in list(self.conns.values()):
                if c.broker != "kiwoom" or c.closed or not c.logged_in or c.appkey != o.appkey:
                    continue
                regs = c.registered_types()
                if "00" in regs:
                    vals = kiwoom.order_values(self, ev)
                    out = self.kiwoom_real([("00", o.code, vals)], "account")
                    out.account = [
                        {
                            "conn": c.id,
                            "type": "00",
                            "order_no": o.order_no,
                            "fill_no": ev.fill.fill_no if ev.fill else None,
                            "status": vals["913"],
                            "wire": vals,
                        }
                    ]
                    c.push(out)
                if "04" in regs and ev.kind == "filled" and ev.holding is not None:
                    bal = kiwoom.balance_values(self, ev)
                    c.push(self.kiwoom_real([("04", o.code, bal)], "account"))
            return
        tr = "H0STCNI9" if self.config.mock else "H0STCNI0"
        c2 = self.kis_sessions.get(o.appkey)
        if c2 is None or c2.closed:
            return
        for (sub_tr, hts_id), key in list(c2.kis_subs.items()):
            if sub_tr != tr:
                continue
            fields = kis.notice_fields(self, ev, hts_id, tr)
            frame = data_frame(tr, [fields], key)
            c2.push(
                Out(
                    frame,
                    "account",
                    tr,
                    {tr: 1},
                    [
                        {
                            "conn": c2.id,
                            "type": tr,
                            "order_no": o.order_no,
                            "fill_no": ev.fill.fill_no if ev.fill else None,
                            "status": "fill" if ev.kind == "filled" else "ack",
                            "wire": fields,
                        }
                    ],
                )
            )

    # ---- benchmark ----

    async def _run_bench(
        self,
        info: dict[str, Any],
        targets: list[Conn],
        typ: str,
        codes: list[str],
        rate: float,
        count: int,
        batch: int,
    ) -> None:
        broker = info["broker"]
        now = now_kst()
        phase = self.market.phase()
        pool: list[tuple[str, Any]] = []
        for i in range(min(count, 256)):
            code = codes[i % len(codes)]
            inst = self.market.instrument(code)
            inst.step(now, phase)
            rec = market_record(broker, typ, inst, code, now, phase)
            enc = encode_kiwoom_values(rec) if broker == "kiwoom" else self.kis_fields(rec)
            pool.append((code, enc))

        def frame(start: int, n: int) -> Out:
            chunk = [pool[(start + k) % len(pool)] for k in range(n)]
            if broker == "kiwoom":
                return self.kiwoom_real([(typ, code, enc) for code, enc in chunk])
            return Out(data_frame(typ, [enc for _, enc in chunk]), "data", typ, {typ: n})

        distinct = max(1, min(64, math.ceil(len(pool) / batch)))
        frames = [frame(j * batch, batch) for j in range(distinct)]
        t0 = time.monotonic()
        # frame j is due at started + j * batch / rate (CLOCK_MONOTONIC: comparable across
        # processes on this machine, so a client can measure latency from the schedule)
        info["started"] = t0

        async def push_to(c: Conn) -> None:
            sent = 0
            j = 0
            while sent < count and not c.closed:
                n = min(batch, count - sent)
                proto = frames[j % len(frames)] if n == batch else frame(j * batch, n)
                out = Out(proto.text, "data", proto.label, proto.records)
                await c.push_wait(out)
                sent += n
                j += 1
                info["records_queued"] += n
                if rate > 0:
                    delay = t0 + sent / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
            await c.wait_drained()

        await asyncio.gather(*(push_to(c) for c in targets), return_exceptions=True)
        elapsed = time.monotonic() - t0
        info["elapsed"] = round(elapsed, 6)
        info["records_per_s"] = round(info["records_queued"] / elapsed, 1) if elapsed else 0.0
        info["state"] = "done"

    # ---- admin endpoints ----

    async def _admin_fault(self, request: web.Request) -> web.StreamResponse:
        try:
            body = loads(await request.read())
            if not isinstance(body, dict) or "action" not in body:
                raise ValueError('body must be a JSON object with an "action"')
            params = {k: v for k, v in body.items() if k != "action"}
            result = self.fault(str(body["action"]), **params)
        except (ValueError, msgspec.DecodeError) as e:
            return web.json_response({"ok": False, "error": str(e)}, status=400)
        return web.json_response(result)

    async def _admin_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats(), dumps=dumps)

    async def _admin_bench(self, request: web.Request) -> web.StreamResponse:
        try:
            body = loads(await request.read())
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            broker = str(body.get("broker", ""))
            if broker not in BROKERS:
                raise ValueError("broker must be kiwoom or kis")
            bid = await self.bench(
                broker,
                str(body.get("type", "")),
                [str(c) for c in body.get("codes") or []],
                rate=float(body.get("rate", 0) or 0),
                count=int(body.get("count", 1000)),
                batch=int(body.get("batch", 1)),
            )
        except (ValueError, KeyError, TypeError, msgspec.DecodeError) as e:
            return web.json_response({"ok": False, "error": str(e)}, status=400)
        info = self.benches[bid]
        return web.json_response({"ok": True, "bench_id": bid, "connections": info["connections"]})

    async def _admin_orders(self, request: web.Request) -> web.StreamResponse:
        broker = request.query.get("broker", "kiwoom")
        if broker not in BROKERS:
            return web.json_response({"ok": False, "error": "unknown broker"}, status=400)
        return web.json_response(self.order_book(broker, request.query.get("appkey")))

    async def _admin_events(self, request: web.Request) -> web.StreamResponse:
        broker = request.query.get("broker", "kiwoom")
        if broker not in BROKERS:
            return web.json_response({"ok": False, "error": "unknown broker"}, status=400)
        return web.json_response(self.account_events(broker))

    async def _admin_accounts(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {b: {k: self.account(b, k) for k in self.credentials} for b in BROKERS}
        )
