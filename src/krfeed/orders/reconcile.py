"""Reconciliation: today's orders and fills over REST, compared with the tracker, so that a fill
that happened while the socket was down is still delivered — once.

Real-time pushes are not replayed after a disconnect. After every reconnect (when the order
subscription is confirmed again), on demand, and optionally every N seconds, the
:class:`~krfeed.orders.stream.OrderStream` runs a *round* per session:

1. note the tracker's live-event clock (``OrderTracker.seq``);
2. read the orders of the day over REST, every page, paced by a token-bucket
   :class:`RateLimiter` (the REST clients are ``krfeed.brokers.<broker>.rest``) —
   Kiwoom ``kt00009`` 계좌별주문체결현황 (every order: quantities, average
   fill price, 접수/거부, 정정/취소, 확인수량), ``ka10075`` 미체결 (open quantity and the exact
   cumulative fill amount of open orders) and ``ka10076`` 체결 (fees and taxes of filled
   orders), all paged with ``cont-yn``/``next-key``; KIS ``inquire-daily-ccld`` (TTTC0081R,
   mock VTTC0081R) paged with ``CTX_AREA_FK100``/``CTX_AREA_NK100`` and ``tr_cont``;
3. wait ``settle`` seconds (pushes sent before the inquiry get time to arrive), then put a
   marker into the feed (``Feed.inject``): when the consumer reaches it, everything the feed
   received before has been folded;
4. compare, order by order in order-number order, and emit what the tracker lacks as
   ``source="reconciled"`` events — the acceptance of an order never seen, one fill for the
   missing quantity (cumulative quantity and amount from the inquiry), a confirmation, a
   rejection, an exchange cancellation — through the tracker, so nothing is emitted twice.

An order that had live events during the round is *deferred*: the inquiry and the pushes may
each have seen a different moment of it. Deferred orders are looked at again ``retry_delay``
seconds later, until they are quiet. In a round during which the session dropped again, orders
may have changed between two reads with no push to tell: what the broker reports as filled,
accepted, confirmed or rejected is applied all the same (it stays true), but a cancellation
inferred from open quantities is deferred to a round without a drop.

Rounds after the first read only from the lowest order number that can still change (orders are
numbered in sequence within a day): Kiwoom ``fr_ord_no``; KIS pages newest first and stops
below it.

Limits, stated in the README: a Kiwoom order that completed entirely during a gap is seen only
through its average price (whole won), so the reconciled fill's amount can be off by less than
one won per share (its average matches the broker's); KIS notices carry no cumulative
quantity, so a notice delayed by more than ``settle`` past the inquiry would be counted twice
(the next round reports it as ``regressed``); reconciliation needs the REST API to answer —
while it is rate-limited or down, missed fills arrive late, never twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from krfeed.brokers.http import RateLimiter
from krfeed.brokers.kis.rest import (
    KIS_MOCK_RATE,
    KIS_RATE,
    KIS_RATE_LIMIT_CODES,
    KIS_TOKEN_CODES,
    KISAccountAPI,
    split_kis_account,
)
from krfeed.brokers.kiwoom.rest import (
    KIWOOM_BAD_TOKEN,
    KIWOOM_RATE,
    KIWOOM_RATE_LIMITED,
    KiwoomAccountAPI,
)
from krfeed.errors import ReconcileError
from krfeed.logs import get_logger
from krfeed.orders.compare import RoundResult, _no_int, compare
from krfeed.orders.model import ORDER_NO_WIDTH, AccountRef
from krfeed.orders.snapshots import OrderSnapshot, Snapshot, kis_snapshot, kiwoom_snapshot
from krfeed.orders.tracker import OrderTracker

log = get_logger("krfeed.orders.reconcile")


@dataclass(frozen=True)
class ReconcileOptions:
    """Settings of reconciliation (times in seconds)."""

    #: run a round when the order subscription is confirmed again after a reconnect
    on_reconnect: bool = True
    #: run a round when the order subscription is first confirmed (loads the day's orders)
    initial: bool = True
    #: also run a round this often (None: never)
    interval: float | None = None
    #: wait after the inquiry before comparing, so pushes sent before it arrive first
    settle: float = 1.0
    #: look at deferred orders (or a failed round) again after this long …
    retry_delay: float = 1.0
    #: … at most this many times in a row
    max_retries: int = 20
    #: read only from the lowest order number that can still change (after the first round)
    incremental: bool = True
    #: requests per second (token bucket, per app key); None = the defaults above
    kiwoom_rate: float | None = None
    kis_rate: float | None = None
    #: Kiwoom: also read ka10076 for fees and taxes of filled orders
    kiwoom_fees: bool = True
    #: The account of each session, an :class:`AccountRef` (the broker is part of it). Keys:
    #: a broker name (``"kis"``), a session name, or ``(broker, app key)`` — never a bare app
    #: key, which both brokers may share (``--sim`` mode does). A session is only ever given an
    #: account of its own broker. A plain string value is accepted under a broker or
    #: ``(broker, app key)`` key. KIS needs "CANO-ACNT_PRDT_CD" (or the 10 digits) for its
    #: inquiry, else it is learned from the first notice; Kiwoom's is learned from ka10075.
    accounts: Mapping[str | tuple[str, str], AccountRef | str] = field(default_factory=dict)
    timeout: float = 15.0
    max_pages: int = 1000

    def __post_init__(self) -> None:
        norm: dict[str | tuple[str, str], AccountRef] = {}
        for key, value in self.accounts.items():
            broker = key[0] if isinstance(key, tuple) else key if key in ORDER_NO_WIDTH else None
            if isinstance(value, AccountRef):
                ref = value
            elif broker is None:
                raise ValueError(
                    f"the account of session {key!r} needs its broker: give "
                    f"AccountRef('kiwoom'|'kis', {value!r})"
                )
            else:
                ref = AccountRef(broker, value)
            if broker is not None and ref.broker != broker:
                raise ValueError(f"{ref} given for {key!r}: not a {broker} account")
            if ref.broker == "kis":
                split_kis_account(ref.number)  # one clear sentence for a malformed number
            norm[key] = ref
        object.__setattr__(self, "accounts", norm)

    def account_for(self, broker: str, session: str, appkey: str) -> AccountRef | None:
        """The configured account of a session: by session name, (broker, app key), then
        broker — only ever one of ``broker``."""
        for key in (session, (broker, appkey), broker):
            ref = self.accounts.get(key)
            if isinstance(ref, AccountRef) and ref.broker == broker:
                return ref
        return None


# ---- one session's reconciler ----


class SessionReconciler:
    """Reads the orders of one session's account (Kiwoom app key / KIS account)."""

    def __init__(
        self,
        broker: str,
        session: str,
        api: KiwoomAccountAPI | KISAccountAPI,
        *,
        account: AccountRef | None = None,
        fees: bool = True,
    ) -> None:
        if account is not None and account.broker != broker:
            raise ValueError(f"{account} given to a {broker} session")
        self.broker = broker
        self.session = session
        self.api = api
        self.account = account
        self.fees = fees
        #: (configured, the broker's) when an inquiry named another account than configured
        self.conflict: tuple[AccountRef, AccountRef] | None = None
        # round bookkeeping (driven by OrderStream)
        self.epoch = 0
        self.running = False
        self.again: str | None = None
        self.retries = 0
        self.listed_max: str | None = None
        self.deferred: set[str] = set()
        self.ready = False
        self.gap = False
        self.waiters: list[asyncio.Future[None]] = []
        self.task: asyncio.Task[None] | None = None
        self.retry_handle: asyncio.TimerHandle | None = None
        self.rounds = 0

    def __repr__(self) -> str:
        return f"SessionReconciler({self.broker} {self.session})"

    async def snapshot(self, floor: str | None) -> Snapshot:
        """Every order of today from order number ``floor`` up (None: all)."""
        before = self.api.requests
        if isinstance(self.api, KiwoomAccountAPI):
            # open orders first: an order that fills or ends between the two reads then shows
            # more filled + open than ordered (inconsistent, deferred) instead of a cancel
            opens = await self.api.unfilled()
            status = await self.api.order_status(from_order_no=floor or "")
            filled = await self.api.filled(down_to=floor) if self.fees else []
            # The token answers for its own account: what ka10075 names is the truth.
            seen = next(
                (ref for r in opens if (ref := AccountRef.of("kiwoom", r.get("acnt_no")))), None
            )
            if seen is not None and seen != self.account:
                if self.account is not None:
                    self.conflict = (self.account, seen)
                self.account = seen
            number = self.account.number if self.account is not None else None
            orders = kiwoom_snapshot(status, opens, filled, account=number)
        else:
            if self.account is None:
                raise ReconcileError(
                    f"{self.session}: the KIS account is unknown: give it as "
                    "ReconcileOptions(accounts={'kis': 'CANO-PRDT'}) or wait for a notice"
                )
            cano, product = split_kis_account(self.account.number)
            rows = await self.api.daily_orders(cano, product, down_to=floor)
            orders = kis_snapshot(rows, account=cano + product)
        if floor is not None:
            orders = {k: v for k, v in orders.items() if k >= floor}
        return Snapshot(
            self.broker, self.account, orders, floor, requests=self.api.requests - before
        )

    def floor(self, tracker: OrderTracker) -> str | None:
        """The lowest order number that can still change (None before the first listing)."""
        if self.listed_max is None:
            return None
        cands = [_no_int(self.listed_max) + 1]
        for st in tracker.orders(self.broker):
            if self.account and st.account not in (None, self.account.number):
                continue
            if not st.final:
                cands.append(_no_int(st.order_no))
        cands.extend(_no_int(n) for n in self.deferred)
        width = ORDER_NO_WIDTH.get(self.broker, 7)
        return str(min(cands)).zfill(width)

    def cancel(self) -> None:
        if self.retry_handle is not None:
            self.retry_handle.cancel()
            self.retry_handle = None
        if self.task is not None and not self.task.done():
            self.task.cancel()
        for w in self.waiters:
            if not w.done():
                w.cancel()
        self.waiters.clear()

    async def aclose(self) -> None:
        self.cancel()
        task = self.task
        if task is not None:
            # wait() never raises the round's outcome, so a cancellation of the caller itself
            # still propagates (suppressing CancelledError here would swallow it)
            await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # a round logs its own failures


__all__ = [
    "KIS_MOCK_RATE",
    "KIS_RATE",
    "KIS_RATE_LIMIT_CODES",
    "KIS_TOKEN_CODES",
    "KIWOOM_BAD_TOKEN",
    "KIWOOM_RATE",
    "KIWOOM_RATE_LIMITED",
    "KISAccountAPI",
    "KiwoomAccountAPI",
    "OrderSnapshot",
    "RateLimiter",
    "ReconcileError",
    "ReconcileOptions",
    "RoundResult",
    "SessionReconciler",
    "Snapshot",
    "compare",
    "kis_snapshot",
    "kiwoom_snapshot",
    "split_kis_account",
]
