"""The simulator's admin side: faults, statistics, orders placed by tests, the WebSocket bench,
and their HTTP endpoints under ``/_sim/``."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from typing import Any

import msgspec
from aiohttp import web

from krfeed.protocol.kis import data_frame
from krfeed.schema.catalog import get_type
from krfeed.schema.compile import encode_kiwoom_values
from krfeed.sim.connections import Conn, Out, Token, dumps, loads, now_kst
from krfeed.sim.faults import ACTIONS, FaultState, parse_fault
from krfeed.sim.feeding import BROKERS, MarketFeed
from krfeed.sim.market import market_record
from krfeed.sim.orders import LIMIT, MARKET, AutoTrader, order_type


class Admin(MarketFeed):
    """Faults, stats, bench and the ``/_sim/`` endpoints of
    :class:`~krfeed.sim.server.Simulator`."""

    url: str
    credentials: dict[str, str]
    faults: FaultState
    tokens: dict[str, Token]
    auto: AutoTrader | None
    benches: dict[int, dict[str, Any]]
    events: dict[str, deque[dict[str, Any]]]
    connections_total: Counter[str]
    logins: dict[str, Counter[str]]
    frames_sent: dict[str, Counter[str]]
    records_sent: dict[str, Counter[str]]
    account_sent: Counter[str]
    ping_timeouts: Counter[str]

    def _spawn(self, coro: Any) -> None:
        raise NotImplementedError  # the Simulator's

    def account(self, broker: str, appkey: str = ...) -> str:
        raise NotImplementedError  # the Simulator's

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
        elif action == "swallow_replies":
            for c in targets:
                c.swallow_left[str(f.params["op"])] += int(f.params["count"])
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
            "profile": None if self.profile is None else self.profile.stats(),
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

    async def _admin_fault_list(self, request: web.Request) -> web.StreamResponse:
        """The fault actions with their parameters and defaults (what POST accepts)."""
        return web.json_response({"actions": ACTIONS, "narrow": ["broker", "appkey"]})

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

    async def _admin_profile(self, request: web.Request) -> web.StreamResponse:
        """POST /_sim/profile {"action": "start"}: start (or restart) the opening profile."""
        try:
            body = loads(await request.read() or b"{}")
        except msgspec.DecodeError:
            body = None
        if not isinstance(body, dict) or body.get("action", "start") != "start":
            return web.json_response(
                {"ok": False, "error": 'body must be {"action": "start"}'}, status=400
            )
        if self.profile is None:
            return web.json_response(
                {"ok": False, "error": "the simulator runs without a profile (--profile)"},
                status=409,
            )
        self.profile.start()
        return web.json_response({"ok": True, "profile": self.profile.stats()})

    async def _admin_universe(self, request: web.Request) -> web.StreamResponse:
        """GET /_sim/universe: the listings (code, name, market, rank) of --universe."""
        from krfeed.sim.universe import krx, universe_codes

        name = self.config.universe or "krx"
        listed = set(universe_codes(name))
        rows = [
            {"code": x.code, "name": x.name, "market": x.market, "rank": x.rank}
            for x in krx()
            if x.code in listed
        ]
        return web.json_response({"universe": name, "listings": rows}, dumps=dumps)

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
