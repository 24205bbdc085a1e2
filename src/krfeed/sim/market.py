"""The simulator's market model: deterministic per seed, on the KRX tick grid.

Each instrument is a small random walk driven by its own ``random.Random`` seeded from the
simulator seed and the code, so the n-th step of 005930 is the same in every run with the same
seed. A step is one trade (during a trading phase) plus a fresh ten-level book, program-trading
flow and, now and then, a volatility interruption. Records of every declared real-time type are
built from the instrument's state by field *name* (the names are shared between types and
brokers), with a schema-valid filler for the fields the model does not track, and then encoded
with :mod:`krfeed.schema.compile` so the wire format is the decoders' by construction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from krfeed.records.base import Record
from krfeed.schema.catalog import get_type
from krfeed.schema.compile import record_class
from krfeed.schema.core import F, RealtimeType, companion
from krfeed.schema.enums import ENUM_KINDS, Direction
from krfeed.sim.grid import (
    AFTER_HOURS,
    CLOSING,
    PHASES,
    PRE_OPEN,
    REGULAR,
    SECTORS,
    UNIVERSE,
    Phase,
    base_code,
    ceil_tick,
    floor_tick,
    on_grid,
    pct,
    poisson,
    tick_down,
    tick_size,
    tick_up,
)
from krfeed.sim.instrument import Instrument

# ---- records ----

Filler = Callable[[F], Any]


def make_record(
    t: RealtimeType,
    vals: Mapping[str, Any],
    item: str,
    received_at: datetime,
    filler: Filler | None = None,
) -> Record:
    """Build the record of type ``t`` from named values; missing fields come from ``filler``
    (or are None). Price directions are taken from ``<name>_dir`` or derived from ``_ref``."""
    ref = vals.get("_ref")
    kw: dict[str, Any] = {}
    for f in t.fields:
        if f.name in vals:
            v = vals[f.name]
        elif filler is not None:
            v = filler(f)
        else:
            v = None
        kind = f.kind
        if kind == "price_decimal" and isinstance(v, int) and filler is not None:
            v = Decimal(v)
        kw[f.name] = v
        suffix = companion(kind)
        if suffix == "_dir":  # a signed price: its direction against the reference
            d = vals.get(f.name + "_dir")
            if d is None and v is not None:
                if not v or ref is None:
                    d = Direction.FLAT
                else:
                    d = Direction.UP if v > ref else Direction.DOWN if v < ref else Direction.FLAT
            kw[f.name + "_dir"] = d
        elif suffix == "_side":
            side = vals.get(f.name + "_side")
            kw[f.name + "_side"] = side if v else None
    if t.broker == "kis":
        first = kw.get(t.fields[0].name)
        item = str(first).strip() if first is not None else ""
    cls = record_class(t.broker, t.code)
    return cls(received_at=received_at, item=item, **kw)


def filler_for(inst: Instrument, now: datetime) -> Filler:
    """Schema-valid values for fields the model does not name."""
    r = inst.aux

    def fill(f: F) -> Any:
        k = f.kind
        if k == "int":
            return r.randint(0, 1000)
        if k == "decimal":
            return Decimal(r.randint(0, 10000)).scaleb(-2)
        if k == "price":
            return inst.price
        if k == "price_decimal":
            return inst.decimal_level()
        if k == "aggressor_qty":
            return inst.last_qty
        if k == "time":
            return now
        if k == "date":
            return now.date()
        if k in ("yn", "flag01"):
            return r.random() < 0.5
        if k.startswith("enum:"):
            members = list(ENUM_KINDS[k[5:]][1].values())
            return members[r.randrange(len(members))]
        return ""

    return fill


#: Index instruments keep levels in hundredths; these attributes are index levels/points.
_INDEX_SCALED = frozenset(
    {"current_price", "open_price", "high_price", "low_price", "change", "current_index"}
)


def market_record(
    broker: str,
    code: str,
    inst: Instrument,
    item: str,
    now: datetime,
    phase: Phase = REGULAR,
) -> Record:
    """The record of real-time type ``code`` for ``inst`` in its current state."""
    t = get_type(broker, code)
    vals = inst.values(broker, now, phase)
    if inst.index:
        vals["current_index"] = inst.price
        for f in t.fields:
            raw = vals.get(f.name)
            if f.name in _INDEX_SCALED and isinstance(raw, int):
                if f.kind in ("decimal", "price_decimal"):
                    vals[f.name] = Decimal(raw).scaleb(-2)
                if f.kind == "price_decimal":
                    pc = inst.prev_close
                    vals[f.name + "_dir"] = (
                        Direction.UP if raw > pc else Direction.DOWN if raw < pc else Direction.FLAT
                    )
    if broker == "kiwoom" and t.code == "0s":
        vals["time_to_open"] = "000000"
    return make_record(t, vals, item, now, filler_for(inst, now))


class Market:
    """All instruments of one simulator, plus the session clock."""

    def __init__(
        self,
        seed: int,
        session_cycle: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seed = seed
        self.session_cycle = session_cycle
        self.instruments: dict[str, Instrument] = {}
        #: Names of codes outside the built-in universe (``krfeed sim --universe krx``).
        self.names: dict[str, str] = {}
        self._clock = clock
        self._t0 = clock()

    def instrument(self, item: str) -> Instrument:
        code = base_code(item)
        inst = self.instruments.get(code)
        if inst is None:
            inst = self.instruments[code] = Instrument(code, self.seed)
            if code in self.names and code not in UNIVERSE:
                inst.name = self.names[code]
        return inst

    def phase(self) -> Phase:
        if not self.session_cycle:
            return REGULAR
        pos = ((self._clock() - self._t0) % self.session_cycle) / self.session_cycle
        acc = 0.0
        for ph in PHASES:
            acc += ph.share
            if pos < acc:
                return ph
        return PHASES[-1]

    def seconds_to_open(self) -> int:
        """Seconds until the regular session starts (0 when it has)."""
        if not self.session_cycle or self.phase() is not PRE_OPEN:
            return 0
        pos = (self._clock() - self._t0) % self.session_cycle
        return max(0, int(PRE_OPEN.share * self.session_cycle - pos))


# the tick grid, instruments and phases moved to krfeed.sim.grid, the instrument model to
# krfeed.sim.instrument; importable from here as before
__all__ = [
    "AFTER_HOURS",
    "CLOSING",
    "PHASES",
    "PRE_OPEN",
    "REGULAR",
    "SECTORS",
    "UNIVERSE",
    "Filler",
    "Instrument",
    "Market",
    "Phase",
    "base_code",
    "ceil_tick",
    "filler_for",
    "floor_tick",
    "make_record",
    "market_record",
    "on_grid",
    "pct",
    "poisson",
    "tick_down",
    "tick_size",
    "tick_up",
]
