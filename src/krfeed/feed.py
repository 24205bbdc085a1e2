"""The Feed: the one thing users import. It fans in many sessions (one per app key), keeps the
desired subscriptions, and delivers typed records and control events, in arrival order,
through one bounded queue — as an async iterator, callbacks, or a synchronous iterator.

    async with Feed(Kiwoom(appkey=..., secretkey=...), KIS(..., hts_id=...)) as feed:
        await feed.subscribe(Kiwoom.ORDER_EXECUTION)
        await feed.subscribe(KIS.PROGRAM_TRADING, ["005930", "000660"])
        async for event in feed:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar, overload

import aiohttp

from krfeed.brokers import BrokerConfig, registry
from krfeed.brokers.registry import PlanRequest
from krfeed.conditions import (
    Condition,
    ConditionLimits,
    ConditionManager,
    ConditionMatch,
    ConditionWatch,
    manager_for,
)
from krfeed.engine import Session, SessionOptions, Subscription
from krfeed.engine.subscriptions import COUNTED_STATES, count_states
from krfeed.errors import FeedClosed, SubscriptionError
from krfeed.events import Dropped, Event
from krfeed.events import FeedItem as FeedItem  # re-exported: krfeed.feed.FeedItem
from krfeed.feed_stats import Latency, session_stats
from krfeed.logs import get_logger
from krfeed.protocol.messages import DecodeError
from krfeed.queue import BoundedQueue, Overflow
from krfeed.records.base import Record, TypeRef
from krfeed.schema.catalog import UnknownType, get_type, types
from krfeed.schema.core import RealtimeType

log = get_logger("krfeed.feed")

_EMPTY: Any = object()
R = TypeVar("R", bound=Record)
RawHook = Callable[[str, str, int, datetime, str], None]


def _takes_raw_bytes(hook: Callable[..., Any]) -> bool:
    """Whether ``hook`` accepts a ``raw_bytes`` keyword (hooks written for the five
    positional arguments keep being called with those alone)."""
    try:
        params = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == "raw_bytes" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in params
    )


class Feed:
    """Sessions of one or more brokers, one stream of records and control events.

    ``queue_size``/``overflow``/``block_timeout``: the bounded queue to the consumer (see
    :mod:`krfeed.queue`). ``options``: reconnect, heartbeat and watchdog settings.
    ``on_raw(broker, session, conn, received_at, text)`` sees every frame (the journal); a
    hook that also takes a ``raw_bytes`` keyword gets, for a frame that was not valid UTF-8,
    the bytes as received (``text`` is then their lenient decoding).
    """

    def __init__(
        self,
        *brokers: BrokerConfig,
        queue_size: int = 10_000,
        overflow: Overflow = "block",
        block_timeout: float = 2.0,
        options: SessionOptions | None = None,
        on_raw: RawHook | None = None,
    ) -> None:
        if not brokers:
            raise ValueError("Feed needs at least one broker: Feed(Kiwoom(...), KIS(...))")
        for b in brokers:
            registry.adapter_for(b)  # TypeError for anything that is not a broker's config
        self.brokers = list(brokers)
        self.options = options or SessionOptions()
        self._queue: BoundedQueue[FeedItem] = BoundedQueue(queue_size, overflow, block_timeout)
        self._on_raw = on_raw
        self._raw_bytes = on_raw is not None and _takes_raw_bytes(on_raw)
        self._http: aiohttp.ClientSession | None = None
        self.sessions: list[Session] = []
        self._broker_of: dict[str, str] = {}  # session name -> broker
        self._callbacks: list[tuple[Any, Callable[[Any], Any]]] = []
        self._started = False
        self._closed_event = asyncio.Event()  # set by close(): ends subscribe's wait
        self._records = Counter[type[Record]]()  # delivered, per record class
        self._delivered = 0
        self._latency = Latency()
        self._t0 = time.monotonic()
        self.subscriptions: dict[tuple[str, str, str], Subscription] = {}
        #: Kiwoom condition search limits (see :mod:`krfeed.conditions`)
        self.condition_limits = ConditionLimits()

    @property
    def http(self) -> aiohttp.ClientSession:
        """The HTTP client the sessions use (for REST calls beside the feed; after start())."""
        if self._http is None:
            raise RuntimeError("the feed is not started: await feed.start() first")
        return self._http

    # ---- lifecycle ----

    async def __aenter__(self) -> Feed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the HTTP client and start one session per broker config (app key).
        Raises :class:`FeedClosed` once the feed was closed (a closed feed is not restarted)."""
        self._check_open("start")
        if self._started:
            return
        self._started = True
        # No connection limit: every app key holds a WebSocket for good (aiohttp's default of
        # 100 would stall the 101st session, and the REST calls behind them).
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        counts: Counter[str] = Counter()
        for cfg in self.brokers:
            counts[cfg.broker] += 1
            name = cfg.name or f"{cfg.broker}#{counts[cfg.broker]}"
            s = registry.adapter_for(cfg).session(name, cfg, self._http, self, self.options)
            self.sessions.append(s)
            self._broker_of[name] = s.broker
            s.start_delay = (counts[cfg.broker] - 1) * self.options.connect_interval
            s.start()

    async def close(self, timeout: float = 5.0) -> None:
        """Unsubscribe politely, close every socket, stop every task — within ``timeout``."""
        if self._closed:
            return
        self._closed_event.set()
        for s in self.sessions:
            await s.prepare_close()
        if self.sessions:
            await asyncio.gather(
                *(s.close(timeout=max(0.5, timeout - 1)) for s in self.sessions),
                return_exceptions=True,
            )
        if self._http is not None:
            await self._http.close()
        self._queue.close()

    @property
    def _closed(self) -> bool:
        return self._closed_event.is_set()

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise FeedClosed(f"cannot {what}: the feed is closed (make a new Feed)")

    # ---- subscriptions ----

    async def subscribe(
        self,
        type_: TypeRef[Any] | str,
        codes: Sequence[str] | str | None = None,
        *,
        wait: bool = True,
        timeout: float = 10.0,
    ) -> list[Subscription]:
        """Subscribe ``type_`` for ``codes`` (none for account types: 00/04, H0STCNI0/9, which
        carry the whole account and refuse codes).

        Returns the subscriptions; with ``wait`` after each is confirmed or failed (or
        ``timeout``). Raises :class:`SubscriptionError` for what is known to fail before any
        round trip: unknown type, a type the mock server does not offer, no room left under
        the per-app-key limit, a broker with no configured session; :class:`FeedClosed` (a
        SubscriptionError) once the feed was closed, also while waiting.

        Data for a pending subscription confirms it. A request the broker does not answer is
        sent once more after ``SessionOptions.reply_timeout`` (10 s), and after another fails
        "no reply from the broker within 10 s (sent twice)" (``unanswered``; a late reply or
        its data still confirms it). One still pending when ``timeout`` ends is settled later:
        a ``Subscribed`` or ``SubscribeFailed`` event in the stream says how.
        """
        self._check_open("subscribe")
        if not self._started:
            await self.start()
        broker, code = self._resolve(type_)
        rt = get_type(broker, code)
        sessions = [s for s in self.sessions if s.broker == broker and s.failed is None]
        if not sessions:
            raise SubscriptionError(
                f"no working {broker} session: add {broker.upper()}(...) to Feed"
            )
        items = subscription_items(rt, codes)
        planned = registry.adapter(broker).plan(
            PlanRequest(rt, items, sessions, lambda c, it: self._owner(sessions, c, it))
        )
        out: list[Subscription] = []
        for s, subs in planned.items():
            fresh = []
            for sub in subs:
                key = (s.name, sub.type, sub.item)
                old = self.subscriptions.get(key)
                if old is not None and old.live:
                    out.append(old)
                    continue
                self.subscriptions[key] = sub
                fresh.append(sub)
                out.append(sub)
            s.add(fresh)
        if wait and out:
            await self._settle(out, timeout)
        return out

    async def _settle(self, subs: list[Subscription], timeout: float) -> None:
        """Wait until every one of ``subs`` is settled, ``timeout`` ends or the feed closes."""
        settled = asyncio.ensure_future(asyncio.gather(*(sub.settled.wait() for sub in subs)))
        closed = asyncio.ensure_future(self._closed_event.wait())
        try:
            done, _ = await asyncio.wait(
                (settled, closed), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for f in (settled, closed):
                f.cancel()
            await asyncio.gather(settled, closed, return_exceptions=True)
        if settled not in done:
            self._check_open("wait for the subscriptions")

    def _owner(self, sessions: Sequence[Session], code: str, item: str) -> Session | None:
        """The session already holding (code, item), if any."""
        for s in sessions:
            sub = self.subscriptions.get((s.name, code, item))
            if sub is not None and sub.live:
                return s
        return None

    async def unsubscribe(
        self, type_: TypeRef[Any] | str, codes: Sequence[str] | str | None = None
    ) -> None:
        """Unregister ``type_`` for ``codes`` (all of that type when ``codes`` is None).
        Raises :class:`FeedClosed` once the feed was closed."""
        self._check_open("unsubscribe")
        broker, code = self._resolve(type_)
        rt = get_type(broker, code)
        wanted = None if codes is None else set([codes] if isinstance(codes, str) else codes)
        codes_of = {rt.code, rt.mock_tr} if rt.mock_tr else {rt.code}
        for s in self.sessions:
            if s.broker != broker:
                continue
            keys = [
                k
                for k in s.subs
                if k[0] in codes_of and (wanted is None or rt.account or k[1] in wanted)
            ]
            for sub in s.remove(keys):
                self.subscriptions.pop((s.name, sub.type, sub.item), None)

    def _resolve(self, type_: TypeRef[Any] | str) -> tuple[str, str]:
        if isinstance(type_, TypeRef):
            return type_.broker, type_.code
        if isinstance(type_, str):
            if ":" in type_:
                b, _, c = type_.partition(":")
                try:
                    return b.lower(), get_type(b.lower(), c).code
                except UnknownType as e:
                    raise SubscriptionError(str(e)) from None
            for b in registry.names():
                if type_ in types(b):
                    return b, type_
            raise SubscriptionError(
                f"unknown real-time type {type_!r}: "
                "use Kiwoom.X / KIS.X or 'kiwoom:0B', 'kis:H0STCNT0'"
            )
        raise TypeError(f"expected a type such as Kiwoom.TRADE, got {type_!r}")

    # ---- Kiwoom condition search (조건검색): krfeed.conditions ----

    def _conditions(self, session: str | None) -> ConditionManager:
        return manager_for(
            self.sessions, self.condition_limits, self.inject, lambda: self._closed, session
        )

    async def conditions(self, *, session: str | None = None) -> list[Condition]:
        """The saved conditions (CNSRLST) of a Kiwoom session (the first, or ``session``).
        These four raise :class:`FeedClosed` (a ConditionError) once the feed was closed."""
        self._check_open("list the saved conditions")
        await self.start()
        return await self._conditions(session).saved()

    async def search(self, seq: str | int, *, session: str | None = None) -> list[ConditionMatch]:
        """The stocks matching condition ``seq`` now (CNSRREQ one-off, every page)."""
        self._check_open(f"search condition {seq}")
        await self.start()
        return await self._conditions(session).search(seq)

    async def watch(self, seq: str | int, *, session: str | None = None) -> ConditionWatch:
        """Follow condition ``seq`` in real time: the current matches, then 02 records in the
        stream (restored after reconnects). Raises ConditionError beyond the limits."""
        self._check_open(f"watch condition {seq}")
        await self.start()
        return await self._conditions(session).watch(seq)

    async def unwatch(self, seq: str | int, *, session: str | None = None) -> None:
        """Stop following condition ``seq`` (CNSRCLR)."""
        self._check_open(f"unwatch condition {seq}")
        await self._conditions(session).unwatch(seq)

    # ---- delivery (the sessions' engine.Delivery) ----

    def control(self, event: Event | DecodeError) -> None:
        self._queue.put_nowait_control(event)

    def offer(self, record: Record) -> bool:
        return self._queue.offer(record, not record.account)

    async def record(self, record: Record) -> None:
        await self._queue.put(record, not record.account)

    async def decode_error(self, error: DecodeError) -> None:
        """One per bad frame, so bounded like records: an undecodable market-data frame follows
        the overflow policy; one of an account type, or of no known type, is never dropped."""
        try:
            droppable = bool(error.type) and not get_type(error.broker, error.type).account
        except UnknownType:
            droppable = False
        await self._queue.put(error, droppable)

    def inject(self, item: FeedItem | Any) -> None:
        """Put an item of your own into the stream (never dropped), e.g. reconciled order
        events; it is delivered in order with everything else."""
        self._queue.put_nowait_control(item)

    def raw(
        self, session: str, conn: int, received_at: datetime, text: str, data: bytes | None = None
    ) -> None:
        hook: Callable[..., None] | None = self._on_raw
        if hook is not None:
            broker = self._broker_of.get(session) or session.split("#", 1)[0]
            if data is not None and self._raw_bytes:
                hook(broker, session, conn, received_at, text, raw_bytes=data)
            else:
                hook(broker, session, conn, received_at, text)

    # ---- consumption ----

    @overload
    def on(self, type_: TypeRef[R], fn: Callable[[R], Any]) -> None: ...
    @overload
    def on(self, type_: type[Any] | str | None, fn: Callable[[Any], Any]) -> None: ...

    def on(self, type_: Any, fn: Callable[[Any], Any]) -> None:
        """Call ``fn(item)`` for matching items as they are delivered.

        ``type_``: a type constant (``KIS.PROGRAM_TRADING``), a record or event class
        (``Disconnected``), a type code, or None for everything. ``fn`` may be async.
        Items reach callbacks whether you iterate the feed or ``await feed.run()``.
        """
        self._callbacks.append((type_, fn))

    def __aiter__(self) -> AsyncIterator[FeedItem]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[FeedItem]:
        if not self._started and not self._closed:  # a closed feed's stream just ends
            await self.start()
        q = self._queue
        counts = self._records
        latency = self._latency.add
        clock = time.time
        while True:
            if q.pending_drops:
                n, q.pending_drops = q.pending_drops, 0
                yield Dropped(broker="", session="", count=n, total=q.dropped)
            item = q.pop_or(_EMPTY)  # no await (no coroutine) while items are waiting
            if item is _EMPTY:
                try:
                    item = await q.get()
                except EOFError:
                    return
            if isinstance(item, Record):
                counts[item.__class__] += 1
                latency(clock() - item.received_at.timestamp())
            self._delivered += 1
            if self._callbacks:
                await self._dispatch(item)
            yield item

    async def _dispatch(self, item: FeedItem) -> None:
        for want, fn in self._callbacks:
            if not _matches(want, item):
                continue
            try:
                res = fn(item)
                if inspect.isawaitable(res):
                    await res
            except Exception:
                log.exception("callback %r failed on %s", fn, type(item).__name__)

    async def run(self, until: Awaitable[Any] | None = None) -> None:
        """Deliver to callbacks until the feed is closed (or ``until`` completes)."""

        async def drain() -> None:
            async for _ in self:
                pass

        if until is None:
            await drain()
            return
        task = asyncio.ensure_future(drain())
        try:
            await until
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---- observability ----

    def stats(self) -> dict[str, Any]:
        """Counters: frames, records per type, decode errors, frames that were not valid UTF-8,
        reconnects, subscriptions by state (``unanswered``: of the failed, those the broker
        never answered), (un)subscribe frames not answered in time (``reply_timeouts``), queue,
        drops, latency."""
        states = {s.name: count_states(s.subs.values()) for s in self.sessions}
        sess = {s.name: session_stats(s, states[s.name]) for s in self.sessions}
        subs = Counter[str]()
        for n in states.values():
            subs.update(n)
        return {
            "uptime": round(time.monotonic() - self._t0, 3),
            "frames": sum(v["frames"] for v in sess.values()),
            "records_received": sum(v["records"] for v in sess.values()),
            "records_delivered": {f"{c.broker}:{c.type}": n for c, n in self._records.items()},
            "delivered": self._delivered,
            "decode_errors": sum(v["decode_errors"] for v in sess.values()),
            "layout_notices": sum(v["layout_notices"] for v in sess.values()),
            # text frames that were not valid UTF-8, decoded leniently (cp949: as CP949)
            "invalid_utf8": sum(v["invalid_utf8"] for v in sess.values()),
            "cp949": sum(v["cp949"] for v in sess.values()),
            "reconnects": sum(v["reconnects"] for v in sess.values()),
            "subscriptions": {k: subs[k] for k in COUNTED_STATES},
            "reply_timeouts": sum(v["reply_timeouts"] for v in sess.values()),
            "queue_depth": len(self._queue),
            "queue_high_water": self._queue.high_water,
            "dropped": self._queue.dropped,
            "latency_ms": self._latency.percentiles(50, 99, 99.9),
            "sessions": sess,
        }

    def subscription_states(self) -> list[Subscription]:
        return [s for sess in self.sessions for s in sess.subs.values()]


def _matches(want: Any, item: FeedItem) -> bool:
    if want is None:
        return True
    if isinstance(want, TypeRef):
        return isinstance(item, Record) and item.broker == want.broker and item.type == want.code
    if isinstance(want, type):
        return isinstance(item, want)
    if isinstance(want, str):
        return isinstance(item, Record) and (
            item.type == want or f"{item.broker}:{item.type}" == want
        )
    return False


def subscription_items(rt: RealtimeType, codes: Sequence[str] | str | None) -> list[str]:
    """The items to subscribe of type ``rt`` for ``codes`` (stripped, without repeats); an
    account type takes none. Raises :class:`SubscriptionError` with the sentence to show."""
    if isinstance(codes, str):
        codes = [codes]
    what = f"{rt.broker} {rt.code}"
    if rt.account:
        if codes and any(c.strip() for c in codes):
            raise SubscriptionError(
                f"{what} is an account type: it takes no codes (it carries the whole account)"
            )
        return []  # the adapter's plan places account types
    if not codes:
        raise SubscriptionError(f"{what} needs at least one code")
    out = []
    for c in codes:
        c = c.strip()
        if not c:
            raise SubscriptionError(f"{what}: empty code")
        if c not in out:
            out.append(c)
    return out
