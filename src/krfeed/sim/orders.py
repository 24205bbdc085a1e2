"""The simulator's order book and fill engine, shared by both brokers.

Kiwoom REST (kt10000-kt10003), KIS REST (order-cash, order-rvsecncl), ``Simulator.place_order``
and the auto-trader all go through :class:`OrderEngine`; the inquiry endpoints read the same
orders, and every state change is announced to listeners as an :class:`OrderEvent`, which the
server turns into Kiwoom 00/04 pushes and KIS H0STCNI0/9 notices. Orders are worked against the
market model: a marketable order fills at the opposite best price in one or more partial fills
(an order of two or more shares never fills at once, so partial fills are always exercised); a
resting limit order fills when the market reaches it; IOC/FOK remainders are cancelled (취소);
a limit beyond the daily price limits is accepted and then rejected (거부).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import zlib
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from krfeed.sim.market import UNIVERSE, Market, on_grid, tick_down, tick_up
from krfeed.sim.order_types import (
    BROKERS,
    HOLDER_NAMES,
    LIMIT,
    LIMIT_IOC,
    MARKET,
    MOCK_ACCOUNT_NAME,
    ORDER_TYPES,
    Account,
    Fill,
    Holding,
    Listener,
    Order,
    OrderError,
    OrderEvent,
    OrderType,
    _now,
    order_type,
)


class OrderEngine:
    """Orders of every account of one simulator, worked against the market model."""

    def __init__(
        self,
        market: Market,
        *,
        seed: int = 1,
        fill_delay: float = 0.05,
        tick: float = 0.1,
        mock: bool = False,
    ) -> None:
        self.market = market
        self.mock = mock
        self.rng = random.Random(f"krfeed-sim-orders:{seed}")
        self.fill_delay = fill_delay
        self.tick = tick
        self.listeners: list[Listener] = []
        self.accounts: dict[tuple[str, str], Account] = {}
        self.orders: dict[str, dict[str, Order]] = {b: {} for b in BROKERS}
        self.counts: dict[str, Counter[str]] = {b: Counter() for b in BROKERS}
        self._seq = {b: 0 for b in BROKERS}
        self._fill_seq = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- accounts ----

    def account(self, broker: str, appkey: str) -> Account:
        key = (broker, appkey)
        acct = self.accounts.get(key)
        if acct is None:
            h = zlib.crc32(f"{broker}:{appkey}".encode())
            number = f"{5000000000 + h % 100000000:010d}" if broker == "kiwoom" else ""
            if broker == "kis":
                number = f"{50000000 + h % 10000000:08d}"
            # a real account is in its holder's name; only the mock server says 모의계좌
            name = MOCK_ACCOUNT_NAME if self.mock else HOLDER_NAMES[h % len(HOLDER_NAMES)]
            acct = Account(broker, appkey, number, name=name)
            for code, (name, base) in UNIVERSE.items():
                acct.holdings[code] = Holding(code, name, 1000, 1000 * base, 1000)
            self.accounts[key] = acct
        return acct

    def orders_of(self, broker: str, appkey: str | None = None) -> list[Order]:
        """Orders in placement order (optionally of one appkey)."""
        return [o for o in self.orders[broker].values() if appkey is None or o.appkey == appkey]

    def open_codes(self) -> set[str]:
        return {o.code for b in BROKERS for o in self.orders[b].values() if o.remaining > 0}

    # ---- placing ----

    def place(
        self,
        broker: str,
        appkey: str,
        *,
        code: str,
        side: str,
        qty: int,
        price: int = 0,
        type: OrderType = LIMIT,
        exchange: str = "KRX",
    ) -> Order:
        """Accept a new order (announces 접수) and start working it. Raises OrderError."""
        if side not in ("buy", "sell"):
            raise OrderError("side", f"매도수구분이 올바르지 않습니다: {side!r}")
        code = code.strip().upper().removeprefix("A") if code else ""
        if not code:
            raise OrderError("stk_cd", "종목코드가 없습니다")
        if qty <= 0:
            raise OrderError("ord_qty", "주문수량이 올바르지 않습니다")
        if type.market:
            price = 0
        elif price <= 0:
            raise OrderError("ord_uv", "주문단가가 올바르지 않습니다")
        elif not on_grid(price):
            raise OrderError("ord_uv", f"주문단가 {price}이(가) 호가단위에 맞지 않습니다")
        acct = self.account(broker, appkey)
        inst = self.market.instrument(code)
        if side == "sell":
            h = acct.holdings.get(inst.code)
            if h is None or h.orderable < qty:
                have = h.orderable if h else 0
                raise OrderError("ord_qty", f"매도가능수량이 부족합니다 (가능 {have}주)")
            h.orderable -= qty
        order = self._new_order(acct, inst.code, inst.name, side, qty, price, type, "new", "")
        order.exchange = exchange
        self._emit("accepted", order)
        beyond = not type.market and (price > inst.upper or price < inst.lower)
        self._spawn(self._work(order, reject="가격제한폭을 벗어난 주문입니다" if beyond else ""))
        return order

    def modify(self, broker: str, appkey: str, original_no: str, *, qty: int, price: int) -> Order:
        """정정: move ``qty`` (0 = all remaining) of an order to a new order at ``price``."""
        orig = self._own(broker, appkey, original_no)
        if orig.remaining <= 0:
            raise OrderError("orig_ord_no", "정정가능수량이 없습니다")
        q = orig.remaining if qty == 0 else qty
        if q <= 0 or q > orig.remaining:
            raise OrderError("mdfy_qty", f"정정수량이 정정가능수량({orig.remaining})을 넘습니다")
        if price <= 0 or not on_grid(price):
            raise OrderError("mdfy_uv", "정정단가가 올바르지 않습니다")
        orig.cancelled += q
        acct = self.account(broker, appkey)
        typ = LIMIT if orig.type.market else orig.type
        new = self._new_order(
            acct, orig.code, orig.name, orig.side, q, price, typ, "modify", orig.order_no
        )
        new.exchange = orig.exchange
        self._emit("accepted", new)
        self._spawn(self._confirm_then_work(new))
        return new

    def cancel(self, broker: str, appkey: str, original_no: str, *, qty: int = 0) -> Order:
        """취소: cancel ``qty`` (0 = all remaining) of an order."""
        orig = self._own(broker, appkey, original_no)
        if orig.remaining <= 0:
            raise OrderError("orig_ord_no", "취소가능수량이 없습니다")
        q = orig.remaining if qty == 0 else qty
        if q <= 0 or q > orig.remaining:
            raise OrderError("cncl_qty", f"취소수량이 취소가능수량({orig.remaining})을 넘습니다")
        orig.cancelled += q
        acct = self.account(broker, appkey)
        if orig.side == "sell":
            self._release(acct, orig.code, q)
        new = self._new_order(
            acct, orig.code, orig.name, orig.side, q, 0, orig.type, "cancel", orig.order_no
        )
        new.exchange = orig.exchange
        self._emit("accepted", new)
        self._spawn(self._confirm_then_work(new))
        return new

    # ---- working ----

    def _new_order(
        self,
        acct: Account,
        code: str,
        name: str,
        side: str,
        qty: int,
        price: int,
        typ: OrderType,
        kind: str,
        original: str,
    ) -> Order:
        b = acct.broker
        self._seq[b] += 1
        width = 7 if b == "kiwoom" else 10
        no = f"{self._seq[b]:0{width}d}"
        order = Order(
            broker=b,
            appkey=acct.appkey,
            account=acct.number,
            order_no=no,
            code=code,
            name=name,
            side=side,
            qty=qty,
            price=price,
            type=typ,
            kind=kind,
            original_order_no=original or "0" * width,
            time=_now(),
        )
        self.orders[b][no] = order
        self.counts[b]["placed" if kind == "new" else kind] += 1
        return order

    def _own(self, broker: str, appkey: str, order_no: str) -> Order:
        no = order_no.strip()
        width = 7 if broker == "kiwoom" else 10
        if no.isdigit():
            no = no.zfill(width)
        o = self.orders[broker].get(no)
        if o is None or o.appkey != appkey:
            raise OrderError("orig_ord_no", f"원주문번호 {order_no!r}이(가) 존재하지 않습니다")
        return o

    def _delay(self) -> float:
        return self.fill_delay * self.rng.uniform(0.5, 1.5)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm_then_work(self, order: Order) -> None:
        await asyncio.sleep(self._delay())
        order.status = "확인"
        self._emit("confirmed", order)
        if order.kind == "modify":
            await self._work(order, reject="")

    async def _work(self, order: Order, reject: str) -> None:
        await asyncio.sleep(self._delay())
        if reject:
            self._reject(order, reject)
            return
        first = True
        while order.remaining > 0:
            px = self._marketable(order)
            if px is None:
                if order.type.condition:
                    self._cancel_rest(order)
                    return
                await asyncio.sleep(self.tick)
                continue
            rem = order.remaining
            if order.type.condition == "FOK" or rem == 1:
                chunk = rem
            elif first:
                chunk = self.rng.randint(1, rem - 1)  # always a partial fill first
            else:
                chunk = rem if self.rng.random() < 0.4 else self.rng.randint(1, rem)
            first = False
            self._fill(order, chunk, px)
            if order.remaining > 0 and order.type.condition == "IOC":
                self._cancel_rest(order)
                return
            if order.remaining > 0:
                await asyncio.sleep(self._delay())

    def _marketable(self, order: Order) -> int | None:
        inst = self.market.instrument(order.code)
        if order.side == "buy":
            ask = inst.best_ask
            if ask and (order.type.market or order.price >= ask):
                return ask
        else:
            bid = inst.best_bid
            if bid and (order.type.market or order.price <= bid):
                return bid
        return None

    def _fill(self, order: Order, qty: int, price: int) -> None:
        self._fill_seq += 1
        now = _now()
        fill = Fill(f"{self._fill_seq:07d}", qty, price, now)
        order.fills.append(fill)
        order.filled += qty
        order.amount += qty * price
        order.commission = order.amount * 15 // 100000 // 10 * 10
        if order.side == "sell":
            order.tax = order.amount * 18 // 10000
        order.status = "체결"
        acct = self.account(order.broker, order.appkey)
        h = acct.holdings.get(order.code)
        if h is None:
            h = acct.holdings[order.code] = Holding(order.code, order.name, 0, 0, 0)
        if order.side == "buy":
            h.qty += qty
            h.cost += qty * price
            h.orderable += qty
            h.today_buy_qty += qty
        else:
            avg = h.avg_price
            h.realized_pnl += (price - avg) * qty
            h.qty -= qty
            h.cost = avg * h.qty
            h.today_sell_qty += qty
        self.counts[order.broker]["fills"] += 1
        if order.remaining == 0:
            self.counts[order.broker]["filled"] += 1
        self._emit("filled", order, fill=fill, holding=h)

    def _cancel_rest(self, order: Order) -> None:
        rest = order.remaining
        order.cancelled += rest
        order.status = "취소"
        if order.side == "sell":
            self._release(self.account(order.broker, order.appkey), order.code, rest)
        self.counts[order.broker]["cancelled"] += 1
        self._emit("cancelled", order)

    def _reject(self, order: Order, reason: str) -> None:
        rest = order.remaining
        order.rejected += rest
        order.status = "거부"
        order.reject_reason = reason
        if order.side == "sell":
            self._release(self.account(order.broker, order.appkey), order.code, rest)
        self.counts[order.broker]["rejected"] += 1
        self._emit("rejected", order)

    @staticmethod
    def _release(acct: Account, code: str, qty: int) -> None:
        h = acct.holdings.get(code)
        if h is not None:
            h.orderable += qty

    def _emit(
        self, kind: str, order: Order, *, fill: Fill | None = None, holding: Holding | None = None
    ) -> None:
        ev = OrderEvent(kind, order, _now(), fill, holding)
        for listener in list(self.listeners):
            listener(ev)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


class AutoTrader:
    """Places orders at random on the accounts in use: mostly marketable orders that fill in
    parts, some IOC orders whose remainder is cancelled, some resting orders that are cancelled
    later, and now and then an order beyond the price limits that is rejected."""

    def __init__(
        self,
        engine: OrderEngine,
        rate: float,
        eligible: Callable[[], Sequence[tuple[str, str]]],
        *,
        codes: Sequence[str] | None = None,
        seed: int = 1,
    ) -> None:
        self.engine = engine
        self.rate = rate
        self.eligible = eligible
        self.codes = list(codes or list(UNIVERSE)[:6])
        self.rng = random.Random(f"krfeed-sim-auto:{seed}")
        self.placed = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.rng.expovariate(self.rate))
            accounts = list(self.eligible())
            if not accounts:
                continue
            broker, appkey = accounts[self.rng.randrange(len(accounts))]
            with contextlib.suppress(OrderError):
                self.one(broker, appkey)

    def one(self, broker: str, appkey: str) -> Order:
        r = self.rng
        eng = self.engine
        code = self.codes[r.randrange(len(self.codes))]
        inst = eng.market.instrument(code)
        h = eng.account(broker, appkey).holdings.get(inst.code)
        qty = r.randint(1, 30)
        side = "buy" if r.random() < 0.55 else "sell"
        if side == "sell" and (h is None or h.orderable < qty):
            side = "buy"
        x = r.random()
        place = eng.place
        if x < 0.05:
            price = tick_up(inst.upper) if side == "buy" else tick_down(inst.lower)
            order = place(broker, appkey, code=code, side=side, qty=qty, price=price)
            self.placed += 1
            return order
        if x < 0.15:
            px = inst.best_ask if side == "buy" else inst.best_bid
            order = place(
                broker, appkey, code=code, side=side, qty=max(2, qty), price=px, type=LIMIT_IOC
            )
        elif x < 0.25:
            px = inst.price
            for _ in range(5):
                px = tick_down(px) if side == "buy" else tick_up(px)
            px = min(max(px, inst.lower), inst.upper)
            order = place(broker, appkey, code=code, side=side, qty=qty, price=px)
            eng._spawn(self._cancel_later(order))
        elif x < 0.5:
            order = place(broker, appkey, code=code, side=side, qty=qty, type=MARKET)
        else:
            px = inst.best_ask if side == "buy" else inst.best_bid
            order = place(broker, appkey, code=code, side=side, qty=qty, price=px)
        self.placed += 1
        return order

    async def _cancel_later(self, order: Order) -> None:
        await asyncio.sleep(self.rng.uniform(0.3, 1.5))
        if order.remaining > 0:
            with contextlib.suppress(OrderError):
                self.engine.cancel(order.broker, order.appkey, order.order_no)


# the order data moved to krfeed.sim.order_types; importable from here as before
__all__ = [
    "BROKERS",
    "HOLDER_NAMES",
    "LIMIT",
    "LIMIT_IOC",
    "MARKET",
    "MOCK_ACCOUNT_NAME",
    "ORDER_TYPES",
    "Account",
    "AutoTrader",
    "Fill",
    "Holding",
    "Listener",
    "Order",
    "OrderEngine",
    "OrderError",
    "OrderEvent",
    "OrderType",
    "order_type",
]
