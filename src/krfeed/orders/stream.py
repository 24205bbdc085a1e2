"""OrderStream: every order event of a feed, exactly once, gaps filled by reconciliation.

    async with Feed(Kiwoom(...), KIS(..., hts_id="...")) as feed:
        await feed.subscribe(Kiwoom.ORDER_EXECUTION)
        await feed.subscribe(KIS.EXECUTION_NOTICE)
        async with OrderStream(feed) as orders:
            async for ev in orders:          # OrderEvent | OrderAnomaly | ReconcileReport
                if isinstance(ev, OrderEvent) and ev.kind == "filled":
                    print(ev.code, ev.side, ev.fill_qty, ev.fill_price, ev.source)

The stream reads the feed, normalizes Kiwoom 00 / KIS H0STCNI0|9 records, folds them in an
:class:`~krfeed.orders.tracker.OrderTracker` and yields what changed. When an order
subscription is confirmed — first (``initial``) and after every reconnect —, when an order push
could not be decoded, and when the session stalls, it reconciles that session over REST (see
:mod:`krfeed.orders.reconcile`) and yields what the sockets missed as ``source="reconciled"``
events, in order, through the same tracker: a fill is yielded once whether it came live,
reconciled, or both. ``passthrough=True`` also yields every other feed item (market data,
control events) in arrival order.

If you iterate the feed yourself, pass every item to :meth:`OrderStream.process` instead; it
returns the order events the item produced (reconciliation markers the stream put into the feed
produce the reconciled events).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from krfeed.brokers import registry
from krfeed.brokers.registry import AccountAPIRequest
from krfeed.events import Disconnected, Reconnected, Stalled, Subscribed
from krfeed.feed import Feed, FeedItem
from krfeed.logs import get_logger
from krfeed.orders.model import (
    OrderAnomaly,
    OrderEvent,
    ReconcileReport,
    is_order_record,
    is_order_type,
    normalize,
)
from krfeed.orders.reconcile import (
    RateLimiter,
    ReconcileOptions,
    SessionReconciler,
    Snapshot,
    compare,
)
from krfeed.orders.tracker import OrderTracker
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record

log = get_logger("krfeed.orders")

#: What an OrderStream yields: order events, anomalies, round reports (and with
#: ``passthrough`` every other feed item).
StreamItem = OrderEvent | OrderAnomaly | ReconcileReport | FeedItem


@dataclass(frozen=True)
class ReconcileMarker:
    """What a finished inquiry puts into the feed (``Feed.inject``): reaching it, the consumer
    has folded everything received before. Hand it to :meth:`OrderStream.process`; an
    OrderStream you iterate never yields it."""

    recon: SessionReconciler
    trigger: str
    snapshot: Snapshot | None
    error: str | None
    since_seq: int
    epoch: int
    started: float


class OrderStream:
    """Order events of ``feed``, exactly once, with REST reconciliation after gaps."""

    def __init__(
        self,
        feed: Feed,
        *,
        tracker: OrderTracker | None = None,
        options: ReconcileOptions | None = None,
        reconcile: bool = True,
        passthrough: bool = False,
    ) -> None:
        self.feed = feed
        self.tracker = tracker if tracker is not None else OrderTracker()  # an empty one is falsy
        self.options = options or ReconcileOptions()
        self.reconcile_enabled = reconcile
        self.passthrough = passthrough
        #: the latest round reports (all of them also go through the stream)
        self.reports: deque[ReconcileReport] = deque(maxlen=100)
        self._report_total = 0
        self._recons: dict[str, SessionReconciler] = {}
        self._limiters: dict[tuple[str, str], RateLimiter] = {}
        self._rest_tokens: dict[str, Any] = {}  # REST tokens of the adapters, per app key
        self._consumer: asyncio.Task[Any] | None = None
        self._interval_task: asyncio.Task[None] | None = None
        self._closed = False

    # ---- lifecycle ----

    async def __aenter__(self) -> OrderStream:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        await self.feed.start()
        if self.options.interval and self._interval_task is None and self.reconcile_enabled:
            self._interval_task = asyncio.create_task(
                self._every(self.options.interval), name="krfeed-orders-interval"
            )

    async def close(self) -> None:
        """Stop reconciliation (the feed stays open: it is yours)."""
        self._closed = True
        if self._interval_task is not None:
            self._interval_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._interval_task
            self._interval_task = None
        for r in self._recons.values():
            await r.aclose()

    # ---- consumption ----

    def __aiter__(self) -> AsyncIterator[StreamItem]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamItem]:
        await self.start()
        self._consumer = asyncio.current_task()
        try:
            async for item in self.feed:
                for out in self.process(item):
                    yield out
        finally:
            self._consumer = None

    def process(self, item: Any) -> list[StreamItem]:
        """Fold one feed item; returns what to deliver (order events, anomalies, reports, and
        with ``passthrough`` the item itself)."""
        if isinstance(item, ReconcileMarker):
            return list(self._on_round(item))
        out: list[StreamItem] = [item] if self.passthrough else []
        if isinstance(item, Record):
            if not is_order_record(item):
                return out
            ev = normalize(item)
            if ev is None:
                return out
            self._learn_account(ev)
            out.extend(self.tracker.apply(ev))
            return out
        if not self.reconcile_enabled:
            return out
        if isinstance(item, DecodeError):
            # an order push that could not be decoded: ask the broker what it said
            if is_order_type(item.broker, item.type):
                for each in self._recons.values():
                    if each.broker == item.broker and each.ready:
                        self._trigger(each, "decode_error")
        elif isinstance(item, Stalled):
            r = self._recons.get(item.session)
            if r is not None and r.ready:
                self._trigger(r, "stalled")  # pushes may be going missing on an open socket
        elif isinstance(item, Disconnected):
            r = self._recons.get(item.session)
            if r is not None:
                r.epoch += 1
        elif isinstance(item, Reconnected):
            r = self._recons.get(item.session)
            if r is not None:
                r.gap = True
        elif isinstance(item, Subscribed) and is_order_type(item.broker, item.type):
            r = self._recon_for(item.session)
            if r is not None:
                first = not r.ready
                r.ready = True
                if first and self.options.initial:
                    self._trigger(r, "initial")
                elif not first and r.gap and self.options.on_reconnect:
                    self._trigger(r, "reconnect")
                r.gap = False
        return out

    # ---- on demand ----

    def request_reconcile(self) -> None:
        """Start a round on every session with an order subscription (returns at once; the
        reconciled events come through the stream)."""
        for r in self._recons.values():
            if r.ready:
                self._trigger(r, "request")

    async def reconcile(self, timeout: float | None = 60.0) -> list[ReconcileReport]:
        """Run rounds on every ready session and wait until each has nothing deferred left
        (or gave up). The stream must be consumed meanwhile — by another task: awaiting this
        inside your ``async for`` body would wait for itself (use :meth:`request_reconcile`)."""
        if self._consumer is not None and self._consumer is asyncio.current_task():
            raise RuntimeError(
                "reconcile() inside the loop that consumes the stream would deadlock; "
                "call request_reconcile() there"
            )
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[None]] = []
        mark = self._report_total
        for r in self._recons.values():
            if not r.ready:
                continue
            fut: asyncio.Future[None] = loop.create_future()
            r.waiters.append(fut)
            waits.append(fut)
            self._trigger(r, "request")
        if waits:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*waits)
        n = min(self._report_total - mark, len(self.reports))
        return list(self.reports)[len(self.reports) - n :] if n else []

    # ---- internals ----

    def _recon_for(self, session_name: str) -> SessionReconciler | None:
        r = self._recons.get(session_name)
        if r is not None:
            return r
        session = next((s for s in self.feed.sessions if s.name == session_name), None)
        if session is None:
            return None
        opts = self.options
        adapter = registry.adapter(session.broker)
        if adapter.account_api is None:
            return None
        cfg = session.config  # type: ignore[attr-defined]
        # (broker, account), never an app key alone: Kiwoom and KIS may share the string
        acct = opts.account_for(session.broker, session.name, cfg.appkey)
        api = adapter.account_api(
            AccountAPIRequest(
                session=session,
                http=self.feed.http,
                limiter=lambda rate: self._limiter(session.broker, cfg.appkey, rate),
                rate=getattr(opts, f"{session.broker}_rate", None),
                timeout=opts.timeout,
                max_pages=opts.max_pages,
                tokens=self._rest_tokens,
            )
        )
        r = SessionReconciler(
            session.broker, session.name, api, account=acct, fees=opts.kiwoom_fees
        )
        self._recons[session.name] = r
        return r

    def _limiter(self, broker: str, appkey: str, rate: float) -> RateLimiter:
        key = (broker, appkey)
        lim = self._limiters.get(key)
        if lim is None:
            lim = self._limiters[key] = RateLimiter(rate)
        return lim

    def _learn_account(self, ev: OrderEvent) -> None:
        """With one session of a broker, its account is the one its order records name."""
        ref = ev.account_ref
        if ref is None:
            return
        recons = [r for r in self._recons.values() if r.broker == ref.broker]
        if len(recons) != 1 or recons[0].account:
            return
        r = recons[0]
        r.account = ref
        if r.broker == "kis" and r.ready and r.listed_max is None and not r.running:
            self._trigger(r, "initial")  # the first round could not run without it

    def _trigger(self, r: SessionReconciler, why: str) -> None:
        if self._closed:
            return
        if r.retry_handle is not None and why != "retry":
            r.retry_handle.cancel()
            r.retry_handle = None
        if r.running:
            r.again = r.again or why
            return
        r.running = True
        r.rounds += 1
        r.task = asyncio.create_task(self._round(r, why), name=f"krfeed-orders-{r.session}")

    async def _round(self, r: SessionReconciler, why: str) -> None:
        since = self.tracker.seq
        epoch = r.epoch
        t0 = time.monotonic()
        floor = r.floor(self.tracker) if self.options.incremental else None
        snap: Snapshot | None = None
        error: str | None = None
        try:
            snap = await r.snapshot(floor)
            if self.options.settle > 0:
                await asyncio.sleep(self.options.settle)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            error = str(e) or type(e).__name__
            log.warning("reconciliation of %s failed: %s", r.session, error)
        self.feed.inject(ReconcileMarker(r, why, snap, error, since, epoch, t0))

    def _on_round(self, m: ReconcileMarker) -> list[StreamItem]:
        r = m.recon
        r.running = False
        out: list[StreamItem] = []
        opts = self.options
        seconds = round(time.monotonic() - m.started, 3)
        retry = False
        if m.error is not None or m.snapshot is None:
            rep = ReconcileReport(
                broker=r.broker,
                session=r.session,
                trigger=m.trigger,
                ok=False,
                error=m.error,
                seconds=seconds,
            )
            retry = r.account is not None or r.broker != "kis"
        else:
            snap = m.snapshot
            # The session dropped during the round: pushes of that moment are lost, so orders
            # can have changed between two reads with no live event to say so. What the broker
            # reports as filled, accepted, confirmed or rejected is still true and is applied; a
            # cancellation inferred from open quantities waits for a round without a drop.
            partial = m.epoch != r.epoch
            if r.conflict is not None:
                configured, seen = r.conflict
                r.conflict = None
                out.append(
                    OrderAnomaly(
                        broker=r.broker,
                        account=seen.number,
                        order_no=None,
                        problem="account_mismatch",
                        message=f"{r.session}: configured for account {configured}, but the "
                        f"broker's inquiry answers for {seen}; using {seen}",
                    )
                )
            res = compare(snap, self.tracker, m.since_seq, r.account, infer_cancels=not partial)
            out.extend(res.outputs)
            if snap.orders:
                top = max(snap.orders)
                r.listed_max = max(top, r.listed_max) if r.listed_max else top
            elif r.listed_max is None:
                r.listed_max = "0" * 7 if r.broker == "kiwoom" else "0" * 10
            r.deferred = set(res.deferred)
            rep = ReconcileReport(
                broker=r.broker,
                session=r.session,
                trigger=m.trigger,
                ok=True,
                partial=partial,
                requests=snap.requests,
                orders_listed=len(snap.orders),
                events=res.events,
                fills=res.fills,
                fill_qty=res.fill_qty,
                deferred=tuple(res.deferred),
                seconds=seconds,
            )
            retry = bool(res.deferred)
        self.reports.append(rep)
        self._report_total += 1
        out.append(rep)
        if r.again is not None:
            why, r.again = r.again, None
            self._trigger(r, why)
        elif retry and r.retries < opts.max_retries and not self._closed:
            r.retries += 1
            loop = asyncio.get_running_loop()
            r.retry_handle = loop.call_later(opts.retry_delay, self._trigger, r, "retry")
        else:
            r.retries = 0
            for w in r.waiters:
                if not w.done():
                    w.set_result(None)
            r.waiters.clear()
        return out

    async def _every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            for r in list(self._recons.values()):
                if r.ready:
                    self._trigger(r, "interval")

    def stats(self) -> dict[str, Any]:
        return {
            "orders": len(self.tracker),
            "tracker": dict(self.tracker.counts),
            "sessions": {
                name: {
                    "account": r.account.number if r.account is not None else None,
                    "rounds": r.rounds,
                    "requests": r.api.requests,
                    "deferred": sorted(r.deferred),
                    "listed_max": r.listed_max,
                }
                for name, r in self._recons.items()
            },
        }
