"""What the simulator pushes: the market task steps every subscribed instrument ``rate`` times a
second (Poisson) and hands each connection the records that came due in that tick together
(Kiwoom REAL frames with several ``data`` entries, KIS frames with NNN > 1), announces the
session phases, and turns order events into each broker's account pushes."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from krfeed.protocol.kis import data_frame
from krfeed.records.base import Record
from krfeed.schema.catalog import get_type, types
from krfeed.schema.compile import encode_kis_fields, encode_kiwoom_values
from krfeed.sim.conditions import ConditionBook
from krfeed.sim.config import SimConfig
from krfeed.sim.connections import Conn, Out, dumps, now_kst
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
from krfeed.sim.orders import OrderEngine, OrderEvent

if TYPE_CHECKING:
    from krfeed.sim.host import SimHost
    from krfeed.sim.profile import ProfileRunner

log = logging.getLogger("krfeed.sim")

BROKERS = ("kiwoom", "kis")
KIWOOM_ACCOUNT_TYPES = frozenset({"00", "04"})
KIS_NOTICE_TYPES = frozenset({"H0STCNI0", "H0STCNI9"})
#: Types that carry a trade: sent only for steps that traded.
TRADE_TYPES = frozenset({"0B", "H0STCNT0", "H0NXCNT0", "H0UNCNT0", "H0STOUP0"})
#: Types that carry an event: sent only for steps with a VI trigger/release.
VI_TYPES = frozenset({"1h"})


class MarketFeed:
    """The market loop and the account pushes of :class:`~krfeed.sim.server.Simulator`."""

    config: SimConfig
    market: Market
    engine: OrderEngine
    condition_book: ConditionBook
    conns: dict[int, Conn]
    kiwoom_sessions: dict[str, Conn]
    kis_sessions: dict[str, Conn]
    counters: Counter[str]
    _last_phase: Phase | None
    _steps: random.Random
    #: The opening profile (``--profile opening``), which then feeds subscribed market data.
    profile: ProfileRunner | None

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
        # with an opening profile, subscribed market data comes from it (krfeed.sim.profile)
        subs = self._subscribers() if self.profile is None else {}
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

        sim = cast("SimHost", self)  # always mixed into the Simulator
        o = ev.order
        if o.broker == "kiwoom":
            for c in list(self.conns.values()):
                if c.broker != "kiwoom" or c.closed or not c.logged_in or c.appkey != o.appkey:
                    continue
                regs = c.registered_types()
                if "00" in regs:
                    vals = kiwoom.order_values(sim, ev)
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
                    bal = kiwoom.balance_values(sim, ev)
                    c.push(self.kiwoom_real([("04", o.code, bal)], "account"))
            return
        tr = "H0STCNI9" if self.config.mock else "H0STCNI0"
        c2 = self.kis_sessions.get(o.appkey)
        if c2 is None or c2.closed:
            return
        for (sub_tr, hts_id), key in list(c2.kis_subs.items()):
            if sub_tr != tr:
                continue
            fields = kis.notice_fields(sim, ev, hts_id, tr)
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
