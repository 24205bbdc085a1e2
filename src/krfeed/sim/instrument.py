"""One simulated instrument (:mod:`krfeed.sim.market`, which describes the model and re-exports
every name here): its seeded random walk, book, program flow and the field values it gives."""

from __future__ import annotations

import math
import random
from datetime import datetime
from decimal import Decimal
from typing import Any

from krfeed.schema.enums import PriceSign, Side
from krfeed.sim.grid import (
    REGULAR,
    SECTORS,
    UNIVERSE,
    Phase,
    ceil_tick,
    floor_tick,
    pct,
    tick_down,
    tick_up,
)


def _name_and_base(code: str) -> tuple[str, int, bool]:
    if code in UNIVERSE:
        name, base = UNIVERSE[code]
        return name, base, False
    if code in SECTORS:
        name, base = SECTORS[code]
        return name, base, True
    if code.isdigit() and len(code) in (3, 4):
        r = random.Random(f"krfeed-sim-index:{code}")
        return f"업종{code}", r.randint(50000, 300000), True
    r = random.Random(f"krfeed-sim-code:{code}")
    return f"SIM{code}", floor_tick(r.randint(1500, 300000)), False


class Instrument:
    """The state of one code. ``step`` advances it; ``values`` names its state for records."""

    def __init__(self, code: str, seed: int) -> None:
        self.code = code
        self.rng = random.Random(f"krfeed-sim:{seed}:{code}")
        # Filler values for fields the model does not track come from a separate stream, so
        # subscribing to more types does not change the prices.
        self.aux = random.Random(f"krfeed-sim-aux:{seed}:{code}")
        name, base, index = _name_and_base(code)
        self.name = name
        self.index = index
        self.prev_close = base
        if index:
            self.upper, self.lower = base * 2, base // 2
        else:
            self.upper = floor_tick(base * 13 // 10)
            self.lower = ceil_tick(math.ceil(base * 7 / 10))
        self.price = base
        self.typical_qty = max(1, 3_000_000 // base) if not index else 1000
        self.shares = 100_000_000 + self.rng.randint(0, 5_000_000_000)
        self.prev_day_volume = self.typical_qty * self.rng.randint(20_000, 60_000)
        self.open: int | None = None
        self.high: int | None = None
        self.low: int | None = None
        self.open_time: datetime | None = None
        self.high_time: datetime | None = None
        self.low_time: datetime | None = None
        self.volume = 0
        self.value = 0
        self.last_qty = 0
        self.last_side: Side | None = None
        self.traded = False  # the last step was a trade
        self.buy_volume = self.sell_volume = 0
        self.buy_count = self.sell_count = 0
        self.pgm_sell_qty = self.pgm_sell_value = 0
        self.pgm_buy_qty = self.pgm_buy_value = 0
        self.pgm_net_qty_change = 0
        self.pgm_net_amount_change = 0
        self.asks: list[tuple[int, int]] = []
        self.bids: list[tuple[int, int]] = []
        self.ask_changes: list[int] = [0] * 10
        self.bid_changes: list[int] = [0] * 10
        self.total_ask = self.total_bid = 0
        self.total_ask_change = self.total_bid_change = 0
        self.expected_price = base
        self.expected_qty = 0
        self.vi_active = False
        self.vi_event = False  # the last step triggered or released a VI
        self.vi_count = 0
        self.vi_price = 0
        self.vi_time: datetime | None = None
        self.vi_release: datetime | None = None
        self.seq = 0
        self._book(Side.BUY)

    # ---- dynamics ----

    def step(self, now: datetime, phase: Phase = REGULAR) -> None:
        """Advance one event: a trade during trading phases, an auction update otherwise."""
        self.seq += 1
        r = self.rng
        self.vi_event = False
        self.traded = False
        side = Side.BUY
        if phase.trades:
            w = r.random()
            move = -2 if w < 0.05 else -1 if w < 0.27 else 0 if w < 0.73 else 1 if w < 0.95 else 2
            p = self.price
            for _ in range(abs(move)):
                p = self._up(p) if move > 0 else self._down(p)
            p = min(max(p, self.lower), self.upper)
            if move > 0:
                side = Side.BUY
            elif move < 0:
                side = Side.SELL
            else:
                side = Side.BUY if r.random() < 0.5 else Side.SELL
            qty = 1 + int(r.expovariate(1.0 / self.typical_qty))
            self._trade(p, qty, side, now)
            if r.random() < 0.6:
                pq = max(1, int(qty * r.uniform(0.1, 0.8)))
                before_qty = self.pgm_buy_qty - self.pgm_sell_qty
                before_amt = self.pgm_buy_value // 1_000_000 - self.pgm_sell_value // 1_000_000
                if r.random() < 0.5:
                    self.pgm_buy_qty += pq
                    self.pgm_buy_value += pq * p
                else:
                    self.pgm_sell_qty += pq
                    self.pgm_sell_value += pq * p
                self.pgm_net_qty_change = self.pgm_buy_qty - self.pgm_sell_qty - before_qty
                self.pgm_net_amount_change = (
                    self.pgm_buy_value // 1_000_000 - self.pgm_sell_value // 1_000_000 - before_amt
                )
            else:
                self.pgm_net_qty_change = self.pgm_net_amount_change = 0
            if r.random() < 0.02:
                self._toggle_vi(now)
        elif phase.auction:
            ticks = r.choice((-1, 0, 0, 1))
            p = self.expected_price
            p = self._up(p) if ticks > 0 else self._down(p) if ticks < 0 else p
            self.expected_price = min(max(p, self.lower), self.upper)
            self.expected_qty += r.randint(1, 3 * self.typical_qty)
        self._book(side)

    def _up(self, p: int) -> int:
        return p + 1 if self.index else tick_up(p)

    def _down(self, p: int) -> int:
        return p - 1 if self.index else tick_down(p)

    def _trade(self, p: int, qty: int, side: Side, now: datetime) -> None:
        self.price = p
        if self.open is None:
            self.open = self.high = self.low = p
            self.open_time = self.high_time = self.low_time = now
        if self.high is None or p > self.high:
            self.high, self.high_time = p, now
        if self.low is None or p < self.low:
            self.low, self.low_time = p, now
        self.volume += qty
        self.value += qty * p
        self.last_qty, self.last_side = qty, side
        if side is Side.BUY:
            self.buy_volume += qty
            self.buy_count += 1
        else:
            self.sell_volume += qty
            self.sell_count += 1
        self.traded = True
        self.expected_price = p

    def _toggle_vi(self, now: datetime) -> None:
        self.vi_event = True
        if self.vi_active:
            self.vi_active = False
            self.vi_release = now
        else:
            self.vi_active = True
            self.vi_count += 1
            self.vi_price = self.price
            self.vi_time = now
            self.vi_release = None

    def _book(self, side: Side) -> None:
        r = self.rng
        p = self.price
        if side is Side.BUY:
            best_ask, best_bid = p, self._down(p)
        else:
            best_ask, best_bid = self._up(p), p
        old_asks = dict(self.asks)
        old_bids = dict(self.bids)
        asks: list[tuple[int, int]] = []
        bids: list[tuple[int, int]] = []
        a, b = best_ask, best_bid
        for _ in range(10):
            if a <= self.upper:
                asks.append((a, r.randint(1, 40) * max(1, self.typical_qty // 4)))
            else:
                asks.append((0, 0))
            if b >= self.lower and b > 0:
                bids.append((b, r.randint(1, 40) * max(1, self.typical_qty // 4)))
            else:
                bids.append((0, 0))
            a, b = self._up(a), self._down(b)
        self.ask_changes = [q - old_asks.get(px, 0) for px, q in asks]
        self.bid_changes = [q - old_bids.get(px, 0) for px, q in bids]
        self.asks, self.bids = asks, bids
        ta = sum(q for _, q in asks)
        tb = sum(q for _, q in bids)
        self.total_ask_change, self.total_bid_change = ta - self.total_ask, tb - self.total_bid
        self.total_ask, self.total_bid = ta, tb

    @property
    def best_ask(self) -> int:
        return self.asks[0][0]

    @property
    def best_bid(self) -> int:
        return self.bids[0][0]

    def mid(self) -> tuple[int | None, int, int]:
        """KRX mid price — the middle of the best ask and bid, on the tick grid (rounded down
        where the middle is half a tick off it) — and the ask and bid quantities resting at it.
        The model keeps no mid-point orders: a tenth of each best level rests there."""
        (ap, aq), (bp, bq) = self.asks[0], self.bids[0]
        if self.index or not ap or not bp:
            return None, 0, 0
        return floor_tick((ap + bp) // 2), aq // 10, bq // 10

    def sign_of(self, price: int) -> PriceSign:
        if price >= self.upper:
            return PriceSign.LIMIT_UP
        if price <= self.lower:
            return PriceSign.LIMIT_DOWN
        if price > self.prev_close:
            return PriceSign.UP
        if price < self.prev_close:
            return PriceSign.DOWN
        return PriceSign.FLAT

    def decimal_level(self, level: int | None = None) -> Decimal:
        """A non-integer level (index points, NAV) for ``price_decimal`` fields."""
        v = self.price if level is None else level
        if self.index:
            return Decimal(v).scaleb(-2)
        return Decimal(v) + Decimal(self.aux.randint(0, 99)).scaleb(-2)

    # ---- naming the state ----

    def values(self, broker: str, now: datetime, phase: Phase = REGULAR) -> dict[str, Any]:
        """Every record attribute the model can fill, by name (shared across types/brokers)."""
        p, pc = self.price, self.prev_close
        chg = p - pc
        sign = self.sign_of(p)
        o = self.open if self.open is not None else p
        h = self.high if self.high is not None else p
        lo = self.low if self.low is not None else p
        vwap = self.value // self.volume if self.volume else p
        kiwoom = broker == "kiwoom"
        mid, mid_ask, mid_bid = self.mid()
        mid_chg = mid - pc if mid is not None else 0
        v: dict[str, Any] = {
            "_ref": pc,
            "code": self.code,
            "stock_name": self.name,
            "current_price": p,
            "change": chg,
            "change_rate": pct(chg, pc),
            "change_sign": sign,
            "open_price": o,
            "high_price": h,
            "low_price": lo,
            "best_ask": self.best_ask or None,
            "best_bid": self.best_bid or None,
            "trade_volume": self.last_qty,
            "trade_volume_side": self.last_side,
            "cumulative_volume": self.volume,
            "cumulative_value": self.value // 1_000_000 if kiwoom else self.value,
            "trade_time": now,
            "time": now,
            "quote_time": now,
            "event_time": now,
            "volume_vs_prev_day": self.volume - self.prev_day_volume,
            "volume_ratio_vs_prev_day": pct(self.volume, self.prev_day_volume),
            "trade_value_change": self.value - self.prev_day_volume * pc,
            "turnover_rate": pct(self.volume, self.shares),
            "trade_cost": 0,
            "trade_strength": pct(self.buy_volume, self.sell_volume),
            "market_cap": p * self.shares // 100_000_000,
            "market_session": phase.session,
            "ko_proximity": "",
            "upper_limit_time": None,
            "lower_limit_time": None,
            "volume_ratio_vs_prev_day_same_time": pct(self.volume, self.prev_day_volume),
            "open_time": self.open_time,
            "high_time": self.high_time,
            "low_time": self.low_time,
            "sell_fill_volume": self.sell_volume,
            "buy_fill_volume": self.buy_volume,
            "buy_fill_ratio": pct(self.buy_volume, self.buy_volume + self.sell_volume),
            "sell_fill_count": self.sell_count,
            "buy_fill_count": self.buy_count,
            "instant_trade_value": self.last_qty * p,
            "tick_sell_volume": self.last_qty if self.last_side is Side.SELL else 0,
            "tick_buy_volume": self.last_qty if self.last_side is Side.BUY else 0,
            "net_buy_fill_volume": self.buy_volume - self.sell_volume,
            "cfd_margin": None,
            "maintenance_margin": None,
            "today_avg_price": vwap,
            "cfd_trade_cost": None,
            "stock_loan_trade_cost": None,
            "exchange": "1",
            "upper_limit_price": self.upper,
            "lower_limit_price": self.lower,
            "base_price": pc,
            # book
            "total_ask_qty": self.total_ask,
            "total_ask_qty_change": self.total_ask_change,
            "total_bid_qty": self.total_bid,
            "total_bid_qty_change": self.total_bid_change,
            "net_bid_qty": max(0, self.total_bid - self.total_ask),
            "net_ask_qty": max(0, self.total_ask - self.total_bid),
            "bid_ratio": pct(self.total_bid, self.total_ask + self.total_bid),
            "ask_ratio": pct(self.total_ask, self.total_ask + self.total_bid),
            "krx_total_ask_qty": self.total_ask,
            "krx_total_bid_qty": self.total_bid,
            "nxt_total_ask_qty": 0,
            "nxt_total_bid_qty": 0,
            # program trading: cumulative for the day; net = buy - sell
            "program_sell_qty": self.pgm_sell_qty,
            "program_sell_amount": self.pgm_sell_value // 1_000_000,
            "program_buy_qty": self.pgm_buy_qty,
            "program_buy_amount": self.pgm_buy_value // 1_000_000,
            "program_net_buy_qty": self.pgm_buy_qty - self.pgm_sell_qty,
            "program_net_buy_qty_change": self.pgm_net_qty_change,
            "program_net_buy_amount": self.pgm_buy_value // 1_000_000
            - self.pgm_sell_value // 1_000_000,
            "program_net_buy_amount_change": self.pgm_net_amount_change,
            "sell_qty": self.pgm_sell_qty,
            "sell_value": self.pgm_sell_value,
            "buy_qty": self.pgm_buy_qty,
            "buy_value": self.pgm_buy_value,
            "net_buy_qty": self.pgm_buy_qty - self.pgm_sell_qty,
            "net_buy_value": self.pgm_buy_value - self.pgm_sell_value,
            "ask_residual_qty": self.total_ask,
            "bid_residual_qty": self.total_bid,
            "total_net_bid_residual_qty": self.total_bid - self.total_ask,
            "market_operation": phase.kiwoom_215,
            "time_to_open": "000000",
            "investor_ticker": "",
            # KIS trade extras
            "weighted_avg_price": Decimal(vwap),
            "sell_trade_count": self.sell_count,
            "buy_trade_count": self.buy_count,
            "net_buy_trade_count": self.buy_count - self.sell_count,
            "total_sell_qty": self.sell_volume,
            "total_buy_qty": self.buy_volume,
            "trade_class": "1" if self.last_side is Side.BUY else "5",
            "buy_ratio": pct(self.buy_volume, self.buy_volume + self.sell_volume),
            "volume_change_rate": pct(self.volume - self.prev_day_volume, self.prev_day_volume),
            "change_from_open_sign": _sign(p - o),
            "change_from_open": p - o,
            "change_from_high_sign": _sign(p - h),
            "change_from_high": p - h,
            "change_from_low_sign": _sign(p - lo),
            "change_from_low": p - lo,
            "business_date": now.date(),
            "new_market_op_code": phase.kis_mkop,
            "halted": False,
            "volume_turnover": pct(self.volume, self.shares),
            "prev_same_time_volume": self.prev_day_volume // 2,
            "prev_same_time_volume_rate": pct(self.volume, self.prev_day_volume // 2),
            "time_class_code": phase.kis_hour_cls,
            "market_termination_code": "",
            "static_vi_ref_price": self.vi_price or pc,
            "overtime_total_ask_qty": 0,
            "overtime_total_bid_qty": 0,
            "overtime_total_ask_qty_change": 0,
            "overtime_total_bid_qty_change": 0,
            "deal_class_code": "01",
            # KRX mid price (KIS: total at it and the side with more, 1 sell / 2 buy, UNVERIFIED
            # codes); the model has no NXT book
            "krx_mid_price": mid if kiwoom or mid is None else Decimal(mid),
            "krx_mid_total_qty": mid_ask + mid_bid,
            "krx_mid_side_code": "" if mid is None else "1" if mid_ask > mid_bid else "2",
            "krx_mid_total_ask_qty": mid_ask,
            "krx_mid_total_bid_qty": mid_bid,
            "krx_mid_total_ask_qty_change": 0,
            "krx_mid_total_bid_qty_change": 0,
            "krx_mid_change": mid_chg,
            "krx_mid_change_sign": _sign(mid_chg),
            "krx_mid_change_rate": pct(mid_chg, pc),
            "nxt_mid_price": None,
            "nxt_mid_total_qty": 0,
            "nxt_mid_side_code": "",
            "market_class": phase.market_class,
            # VI (Kiwoom 1h)
            "vi_trigger_type": "1" if self.vi_active else "2",
            "market_scope": "101",
            "pre_market_type": "1" if phase.name == "pre_open" else "2",
            "vi_trigger_price": self.vi_price or p,
            "trade_processing_time": self.vi_time,
            "vi_release_time": self.vi_release,
            "vi_apply_type": "정적",
            "static_base_price": pc,
            "dynamic_base_price": 0,
            "static_disparity_rate": pct((self.vi_price or p) - pc, pc),
            "dynamic_disparity_rate": Decimal("0.00"),
            "vi_trigger_change_rate": pct((self.vi_price or p) - pc, pc),
            "vi_trigger_count": self.vi_count,
            "trigger_direction": "1" if (self.vi_price or p) >= pc else "2",
            "extra_1279": "+정적",
        }
        for i in range(10):
            n = i + 1
            ap, aq = self.asks[i]
            bp, bq = self.bids[i]
            v[f"ask_price_{n}"] = ap
            v[f"ask_qty_{n}"] = aq
            v[f"ask_qty_change_{n}"] = self.ask_changes[i]
            v[f"bid_price_{n}"] = bp
            v[f"bid_qty_{n}"] = bq
            v[f"bid_qty_change_{n}"] = self.bid_changes[i]
            v[f"krx_ask_qty_{n}"] = aq
            v[f"krx_bid_qty_{n}"] = bq
            v[f"nxt_ask_qty_{n}"] = 0
            v[f"nxt_bid_qty_{n}"] = 0
            v[f"lp_ask_qty_{n}"] = 0
            v[f"lp_bid_qty_{n}"] = 0
        if phase.auction:
            ep = self.expected_price
            v.update(
                expected_price=ep,
                expected_qty=self.expected_qty,
                expected_volume=self.expected_qty,
                expected_change=ep - pc,
                expected_change_rate=pct(ep - pc, pc),
                expected_change_sign=self.sign_of(ep),
                auction_expected_price=ep,
                auction_expected_qty=self.expected_qty,
                auction_expected_change=ep - pc,
                auction_expected_change_rate=pct(ep - pc, pc),
                auction_expected_change_sign=self.sign_of(ep),
            )
        else:
            for k in ("expected_price", "auction_expected_price"):
                v[k] = None
            for k in ("expected_qty", "expected_volume", "auction_expected_qty"):
                v[k] = 0
            for k in ("expected_change", "auction_expected_change"):
                v[k] = 0
            for k in ("expected_change_rate", "auction_expected_change_rate"):
                v[k] = Decimal("0.00")
            v["expected_change_sign"] = v["auction_expected_change_sign"] = PriceSign.FLAT
        return v


def _sign(d: int) -> PriceSign:
    return PriceSign.UP if d > 0 else PriceSign.DOWN if d < 0 else PriceSign.FLAT
