"""The simulator's opening profile: the whole market's records from pre-generated frames.

With a profile (``krfeed sim --universe krx --profile opening``) the market data of every
subscription comes from here instead of the per-subscription ``rate``: every ``tick`` the
records due by :meth:`OpeningProfile.total` are drawn over the subscriptions in proportion to
their codes' activity (:func:`~krfeed.sim.universe.activity_weights`), and each subscription
that drew ``k`` records gets frames of ``k`` (at most ``max_batch`` and :data:`POOL` each) — hot
codes get multi-record frames, the long tail single ones, as the KIS wire does under load.

To keep the simulator cheap at tens of thousands of records a second, each (type, code) has a
small pool of records built from the market model once (on first use) and encoded to wire
text; a frame is a join of pool entries, never a fresh record. The profile's clock starts at
the first subscription (``start="subscribe"``) or by :meth:`ProfileRunner.start`
(``POST /_sim/profile``, ``start="manual"``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, Protocol

from krfeed.records.base import Record
from krfeed.sim.config import SimConfig
from krfeed.sim.connections import Conn, Out
from krfeed.sim.market import Market
from krfeed.sim.universe import Draw, OpeningProfile, activity_weights

log = logging.getLogger("krfeed.sim")


class ProfileHost(Protocol):
    """What the profile uses of the simulator (:class:`~krfeed.sim.server.Simulator`)."""

    config: SimConfig
    market: Market
    conns: dict[int, Conn]
    counters: Counter[str]

    def _subscribers(self) -> dict[str, list[tuple[Conn, str, str]]]: ...

    def kis_fields(self, rec: Record) -> list[str]: ...

    def kiwoom_real(self, entries: list[tuple[str, str, Any]], kind: str = "data") -> Out: ...


#: Records per (type, code) pool: enough to vary the values, few enough to build quickly. A
#: frame holds at most this many, so its records all differ (equal records in one frame would
#: share their receive time, and so the id the sinks deduplicate by).
POOL = 8


class ProfileRunner:
    """Runs an :class:`OpeningProfile` on a :class:`~krfeed.sim.server.Simulator`."""

    def __init__(
        self, sim: ProfileHost, profile: OpeningProfile, *, start: str = "subscribe"
    ) -> None:
        if start not in ("subscribe", "manual"):
            raise ValueError("the profile starts on 'subscribe' or 'manual'")
        self.sim = sim
        self.profile = profile
        self.auto = start == "subscribe"
        self.started: float | None = None
        self.queued = 0  # records handed to connections since the start
        self.dropped = 0  # of those, in frames a full connection queue refused
        self.frames = 0
        self._pools: dict[tuple[str, str, str], list[Any]] = {}
        self._subs: list[tuple[Conn, str, str]] = []
        self._draw: Draw | None = None
        self._signature: tuple[int, ...] = ()

    def start(self) -> None:
        """Start (or restart) the profile's clock now, with the frames of every current
        subscription built beforehand (so the burst does not pay for them)."""
        self._refresh()
        for c, typ, item in self._subs:
            self._pool(c.broker, typ, item)
        self.started = time.monotonic()
        self.queued = self.dropped = self.frames = 0

    def stats(self) -> dict[str, Any]:
        p = self.profile
        elapsed = None if self.started is None else time.monotonic() - self.started
        return {
            "burst_rate": p.burst_rate,
            "burst_seconds": p.burst_seconds,
            "steady_rate": p.steady_rate,
            "duration": p.duration,
            "skew": p.skew,
            "started": self.started,
            "elapsed": None if elapsed is None else round(elapsed, 3),
            "done": bool(elapsed is not None and p.duration is not None and elapsed >= p.duration),
            "subscriptions": len(self._subs),
            "records_queued": self.queued,
            "records_dropped": self.dropped,
            "frames": self.frames,
        }

    # ---- subscriptions ----

    def _refresh(self) -> None:
        """Rebuild the subscription list and the draw when subscriptions changed."""
        conns = [c for c in self.sim.conns.values() if not c.closed]
        sig = tuple(
            (c.id << 20) + (len(c.kis_subs) if c.broker == "kis" else len(c.registrations()))
            for c in conns
        )
        if sig == self._signature:
            return
        self._signature = sig
        subs: list[tuple[Conn, str, str]] = []
        for _code, entries in sorted(self.sim._subscribers().items()):
            for c, typ, item in entries:
                subs.append((c, typ, item))
        self._subs = subs
        self._draw = (
            Draw(activity_weights([base for _, _, base in self._bases()], self.profile.skew))
            if subs
            else None
        )

    def _bases(self) -> list[tuple[Conn, str, str]]:
        from krfeed.sim.market import base_code

        return [(c, t, base_code(i)) for c, t, i in self._subs]

    def _pool(self, broker: str, typ: str, item: str) -> list[Any]:
        key = (broker, typ, item)
        pool = self._pools.get(key)
        if pool is None:
            from krfeed.schema.compile import encode_kiwoom_values
            from krfeed.sim.connections import now_kst
            from krfeed.sim.market import market_record

            sim = self.sim
            inst = sim.market.instrument(item)
            phase = sim.market.phase()
            pool = []
            for _ in range(POOL):
                now = now_kst()
                inst.step(now, phase)
                rec = market_record(broker, typ, inst, item, now, phase)
                if broker == "kis":
                    pool.append("^".join(sim.kis_fields(rec)))
                else:
                    pool.append(encode_kiwoom_values(rec))
            self._pools[key] = pool
        return pool

    # ---- the loop ----

    async def run(self) -> None:
        tick = max(0.005, min(self.sim.config.tick, 0.05))
        while True:
            await asyncio.sleep(tick)
            try:
                self.step()
            except Exception:  # pragma: no cover - keep the market alive, but say so
                self.sim.counters["profile_errors"] += 1
                log.exception("profile step failed")

    def step(self) -> None:
        """Hand out the records due since the last step."""
        self._refresh()
        if self.started is None:
            if not (self.auto and self._subs):
                return
            self.start()
        assert self.started is not None
        due = int(self.profile.total(time.monotonic() - self.started)) - self.queued
        if due <= 0 or self._draw is None:
            return
        picks = self._draw(due)
        self.queued += due
        self._send(picks)

    def _send(self, picks: dict[int, int]) -> None:
        sim = self.sim
        batch = max(1, min(sim.config.max_batch, POOL))
        counts: Counter[str] = Counter()
        for i, n in picks.items():
            c, typ, item = self._subs[i]
            if c.closed:
                self.dropped += n
                continue
            pool = self._pool(c.broker, typ, item)
            size = len(pool)
            left, pos = n, self.frames
            while left > 0:
                k = min(batch, left)
                left -= k
                entries = [pool[(pos + j) % size] for j in range(k)]
                if c.broker == "kis":
                    out = Out(f"0|{typ}|{k:03d}|" + "^".join(entries), "data", typ, {typ: k})
                else:
                    out = sim.kiwoom_real([(typ, item, v) for v in entries])
                self.frames += 1
                if not c.push(out):
                    self.dropped += k
                else:
                    counts[typ] += k
        for typ, k in counts.items():
            sim.counters[f"profile_{typ}"] += k


__all__ = ["ProfileRunner"]
