"""The Recorder: reads a feed (or any async iterable of items), batches, writes every batch to
every sink — and never drops anything on the way.

    async with Feed(...) as feed:
        await feed.subscribe(KIS.PROGRAM_TRADING, ["005930"])
        recorder = Recorder(feed, [open_sink("sqlite:///krfeed.db")])
        await recorder.run(until=asyncio.sleep(60))

Policies (DESIGN principles 5 and 6):

- A batch is written when it holds ``batch_size`` items or its first item is ``batch_interval``
  seconds old; one batch at a time, to all sinks concurrently. Memory is bounded: the Recorder
  holds one batch plus at most one item read while a timed flush was in progress — or, with
  ``read_ahead=N``, reads on while a batch is written and holds at most ``batch_size + N``
  items; a write then takes every item held (so a backlog costs one transaction, not many).
- A sink whose ``write`` raises is reported (log, ``status()``, the ``on_error`` callback) and the
  same batch is retried with capped, jittered exponential backoff until it succeeds; sinks that
  already took the batch are not written again. Meanwhile the Recorder reads nothing more, so
  the feed's bounded queue fills and its own stated policy applies (order and fill events are
  never dropped). ``BrokenPipeError`` (``jsonl:-`` piped into a closed reader) is not retried:
  it ends :meth:`Recorder.run`.
- :meth:`Recorder.stop` (or ``until`` completing, or the source ending, or ``run`` being
  cancelled) writes the last batch and closes the sinks. A sink still failing then is retried
  for ``close_timeout`` seconds more — a write still under way when that time is up is
  cancelled; what it could not take is counted as ``abandoned`` in ``status()``, logged, and
  with ``spill_dir`` saved as JSON lines (:func:`krfeed.sinks.payload.encode_payload`, one file
  per sink: ``krfeed-unsent-…jsonl``, which ``krfeed replay FILE --to URL`` delivers later) —
  never silently.
- A stop during :meth:`run`'s opening of the sinks cancels the opening.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from krfeed.logs import get_logger
from krfeed.records.base import Record
from krfeed.sinks.base import Item, Sink

log = get_logger("krfeed.recorder")

#: ``on_error(sink, exception, attempt)``; may be a coroutine function.
ErrorCallback = Callable[[Sink, BaseException, int], Any]

#: Errors that retrying cannot fix.
FATAL_ERRORS: tuple[type[BaseException], ...] = (BrokenPipeError,)


@dataclass(slots=True)
class SinkStatus:
    """Counters of one sink."""

    url: str
    rows: int = 0
    batches: int = 0
    errors: int = 0
    retries: int = 0
    abandoned: int = 0
    spilled_to: str | None = None
    failing: bool = False
    writing_since: float | None = None  # monotonic start of the write under way
    last_error: str | None = None
    last_error_at: datetime | None = None
    write_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "batches": self.batches,
            "errors": self.errors,
            "retries": self.retries,
            "abandoned": self.abandoned,
            "spilled_to": self.spilled_to,
            "failing": self.failing,
            "writing_for": (
                None
                if self.writing_since is None
                else round(time.monotonic() - self.writing_since, 1)
            ),
            "last_error": self.last_error,
            "write_seconds": round(self.write_seconds, 3),
        }


@dataclass(slots=True)
class _Rate:
    """Rows per second over the last ``window`` seconds."""

    window: float = 5.0
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, t: float, total: int) -> None:
        self.samples.append((t, total))
        while len(self.samples) > 2 and t - self.samples[1][0] > self.window:
            self.samples.popleft()

    def rate(self, now: float, total: int) -> float:
        if not self.samples:
            return 0.0
        t0, n0 = self.samples[0]
        if now - t0 > 2 * self.window:  # nothing written lately
            return 0.0
        dt = now - t0
        return (total - n0) / dt if dt > 0 else 0.0


class Recorder:
    """Batches items from ``source`` into every sink in ``sinks`` (see the module doc).

    ``source``: a :class:`~krfeed.feed.Feed` or any async iterable of records, control events
    and decode errors. ``sinks``: one sink or several (opened by :meth:`run` unless
    ``open_sinks=False``; always closed when :meth:`run` ends). ``on_error(sink, exc, attempt)``
    is called for each failed write. ``backoff`` is (first delay, cap) in seconds.
    ``spill_dir``: where unwritable batches are saved at stop. ``read_ahead``: see above.
    """

    def __init__(
        self,
        source: AsyncIterable[Item],
        sinks: Sink | Sequence[Sink],
        *,
        batch_size: int = 1000,
        batch_interval: float = 0.2,
        on_error: ErrorCallback | None = None,
        backoff: tuple[float, float] = (0.1, 10.0),
        close_timeout: float | None = 30.0,
        open_sinks: bool = True,
        read_ahead: int = 0,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if batch_interval <= 0:
            raise ValueError("batch_interval must be positive")
        self.source = source
        self.sinks: list[Sink] = [sinks] if isinstance(sinks, Sink) else list(sinks)
        if not self.sinks:
            raise ValueError("Recorder needs at least one sink")
        self.batch_size = batch_size
        if read_ahead < 0:
            raise ValueError("read_ahead must be at least 0")
        self.read_ahead = read_ahead
        self.batch_interval = batch_interval
        self.on_error = on_error
        self.backoff = backoff
        self.close_timeout = close_timeout
        self.open_sinks = open_sinks
        self.spill_dir = None if spill_dir is None else Path(spill_dir)
        self._records = 0
        self._stopping = asyncio.Event()
        self._deadline_set = asyncio.Event()
        self._status: list[SinkStatus] = [SinkStatus(s.url) for s in self.sinks]
        self._read = 0
        self._written = 0
        self._batches = 0
        self._batch: list[Item] = []
        self._last_received: datetime | None = None
        self._rate = _Rate()
        self._running = False
        self._wake: asyncio.Event | None = None
        self._first_at = 0.0
        self._stop_deadline: float | None = None
        self._stop_requested = False
        self._t0 = time.monotonic()

    def __repr__(self) -> str:
        return f"Recorder(sinks={[s.url for s in self.sinks]!r})"

    # ---- control ----

    def stop(self) -> None:
        """Stop reading, write the last batch, close the sinks (from the event loop's thread)."""
        if self._stop_requested:
            return
        self._stop_requested = True
        self._stopping.set()
        if self.close_timeout is not None:
            self.give_up_after(self.close_timeout)
        if self._wake is not None:
            self._wake.set()

    def give_up_after(self, seconds: float) -> None:
        """From now on, let a failing sink retry (and a write under way go on) for at most
        ``seconds`` more; reading goes on until the source ends or :meth:`stop`."""
        deadline = time.monotonic() + seconds
        if self._stop_deadline is None or deadline < self._stop_deadline:
            self._stop_deadline = deadline
        self._deadline_set.set()

    async def run(self, until: Awaitable[Any] | float | None = None) -> None:
        """Record until the source ends, :meth:`stop` is called, or ``until`` (an awaitable, or
        a number of seconds) completes. Raises what the source raised, after the flush."""
        if self._running:
            raise RuntimeError("this Recorder is already running")
        self._running = True
        self._wake = asyncio.Event()
        until_task: asyncio.Future[Any] | None = None
        try:
            if self.open_sinks:
                opening = asyncio.ensure_future(self._open_sinks())
                stopped = asyncio.ensure_future(self._stopping.wait())
                await asyncio.wait((opening, stopped), return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                if not opening.done():  # stopped while a sink was still connecting
                    opening.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await opening
                    return
                opening.result()
            if until is not None:
                aw = asyncio.sleep(until) if isinstance(until, int | float) else until
                until_task = asyncio.ensure_future(aw)
                until_task.add_done_callback(lambda _: self.stop())
            await self._pump()
        finally:
            if until_task is not None and not until_task.done():
                until_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await until_task
            self._running = False
            await self._close_sinks()

    # ---- observability ----

    def status(self) -> dict[str, Any]:
        """Rows written per sink, rows/s, lag (now − receive time of the last written record),
        sink errors and retries."""
        now = time.monotonic()
        lag = None
        if self._last_received is not None:
            lag = max(0.0, (datetime.now(UTC) - self._last_received).total_seconds())
        sinks: dict[str, dict[str, Any]] = {}
        for st in self._status:
            key = st.url
            n = 2
            while key in sinks:
                key, n = f"{st.url}#{n}", n + 1
            sinks[key] = st.as_dict()
        return {
            "running": self._running,
            "read": self._read,
            "written": self._written,
            "records": self._records,
            "pending": len(self._batch),
            "batches": self._batches,
            "rows_per_sec": round(self._rate.rate(now, self._written), 1),
            "lag": None if lag is None else round(lag, 3),
            "errors": sum(st.errors for st in self._status),
            "retries": sum(st.retries for st in self._status),
            "failing": [st.url for st in self._status if st.failing],
            "uptime": round(now - self._t0, 3),
            "sinks": sinks,
        }

    # ---- the loop ----

    async def _open_sinks(self) -> None:
        opened: list[Sink] = []
        try:
            for s in self.sinks:
                await s.open()
                opened.append(s)
        except BaseException:
            for s in opened:
                with contextlib.suppress(Exception):
                    await s.close()
            raise

    async def _close_sinks(self) -> None:
        for s in self.sinks:
            try:
                await s.close()
            except Exception:
                log.exception("closing sink %s failed", s.url)

    async def _pump(self) -> None:
        # A reader task moves items from the source into the batch (no task per item); it
        # pauses while the batch is full or being written, so nothing is read ahead (unless
        # read_ahead: see the module doc).
        assert self._wake is not None
        wake = self._wake
        loop = asyncio.get_running_loop()
        batch = self._batch
        may_read = asyncio.Event()
        may_read.set()
        size = self.batch_size
        limit = size + self.read_ahead

        async def read() -> None:
            it: AsyncIterator[Item] = aiter(self.source)
            try:
                while True:
                    if not may_read.is_set():
                        await may_read.wait()
                    try:
                        item = await anext(it)
                    except StopAsyncIteration:
                        return
                    if not batch:
                        self._first_at = loop.time()
                        wake.set()
                    batch.append(item)
                    self._read += 1
                    n = len(batch)
                    if n >= size:
                        wake.set()
                        if n >= limit:
                            may_read.clear()
            finally:
                wake.set()

        reader = asyncio.ensure_future(read())
        try:
            while not self._stop_requested:
                n = len(batch)
                if reader.done():  # the source ended (or failed): final flush below
                    break
                if n >= size or (n and loop.time() >= self._first_at + self.batch_interval):
                    if not self.read_ahead:
                        may_read.clear()
                    await self._flush()
                    if batch:  # read while a timed write was under way
                        self._first_at = loop.time()
                    may_read.set()
                    continue
                wake.clear()
                timeout = self._first_at + self.batch_interval - loop.time() if n else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await wake.wait()
        finally:
            if not reader.done():
                reader.cancel()
            await asyncio.wait((reader,))
            if batch and self._stop_deadline is None and self.close_timeout is not None:
                self.give_up_after(self.close_timeout)
            while batch:
                await self._flush()
        if not reader.cancelled() and (exc := reader.exception()) is not None:
            raise exc

    async def _flush(self) -> None:
        batch = self._batch[: self.batch_size + self.read_ahead]
        if not batch:
            return
        # Not cancellable half-way: a sink may be committing. When run() is cancelled, the
        # write finishes (failing sinks get close_timeout), then the cancellation goes on.
        task = asyncio.ensure_future(self._write_batch(batch))
        try:
            complete = await asyncio.shield(task)
        except asyncio.CancelledError:
            if self._stop_deadline is None and self.close_timeout is not None:
                self.give_up_after(self.close_timeout)
            await asyncio.wait((task,))
            if not task.cancelled() and task.exception() is None:
                self._done(batch, task.result())
            raise
        self._done(batch, complete)

    def _done(self, batch: list[Item], complete: bool) -> None:
        del self._batch[: len(batch)]
        if not complete:  # given up at stop (counted per sink as abandoned)
            return
        self._written += len(batch)
        self._records += sum(1 for item in batch if isinstance(item, Record))
        self._batches += 1
        for item in reversed(batch):
            if isinstance(item, Record):
                self._last_received = item.received_at
                break
        self._rate.add(time.monotonic(), self._written)

    async def _write_batch(self, batch: list[Item]) -> bool:
        statuses = self._status
        if len(self.sinks) == 1:
            return await self._write_to(self.sinks[0], statuses[0], batch)
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._write_to(sink, st, batch))
                    for sink, st in zip(self.sinks, statuses, strict=True)
                ]
        except BaseExceptionGroup as eg:  # a fatal sink error: raise it as itself
            raise eg.exceptions[0] from None
        return all(t.result() for t in tasks)

    async def _write_to(self, sink: Sink, st: SinkStatus, batch: list[Item]) -> bool:
        """Write until it succeeds (True), or the stop deadline passes (False)."""
        attempt = 0
        first, cap = self.backoff
        while True:
            t = time.monotonic()
            try:
                st.writing_since = t
                try:
                    done = await self._attempt(sink, batch)
                finally:
                    st.writing_since = None
                if not done:  # cut off at the stop deadline
                    st.write_seconds += time.monotonic() - t
                    own = getattr(getattr(sink, "stats", None), "last_error", "")
                    st.last_error = "still writing at the stop deadline" + (
                        f" ({own})" if own else ""
                    )
                    self._abandon(sink, st, batch, attempt + 1)
                    return False
            except FATAL_ERRORS:
                raise
            except Exception as e:
                st.write_seconds += time.monotonic() - t
                attempt += 1
                st.errors += 1
                st.failing = True
                st.last_error = f"{type(e).__name__}: {e}"
                st.last_error_at = datetime.now(UTC)
                log.warning(
                    "sink %s: write of %d items failed (attempt %d): %s",
                    sink.url,
                    len(batch),
                    attempt,
                    st.last_error,
                )
                await self._report(sink, e, attempt)
                delay = min(cap, first * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                deadline = self._stop_deadline
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._abandon(sink, st, batch, attempt)
                        return False
                    delay = min(delay, left)
                st.retries += 1
                await asyncio.sleep(delay)
                continue
            st.write_seconds += time.monotonic() - t
            if st.failing:
                log.warning("sink %s: writing again after %d failed attempts", sink.url, attempt)
            st.failing = False
            st.rows += len(batch)
            st.batches += 1
            return True

    async def _attempt(self, sink: Sink, batch: list[Item]) -> bool:
        """One ``sink.write``; False if the stop deadline passed first (the write is then
        cancelled). Raises what the write raised."""
        task = asyncio.ensure_future(sink.write(batch))
        try:
            while not task.done():
                deadline = self._stop_deadline
                if deadline is None:
                    waker = asyncio.ensure_future(self._deadline_set.wait())
                    await asyncio.wait((task, waker), return_when=asyncio.FIRST_COMPLETED)
                    waker.cancel()
                    continue
                await asyncio.wait((task,), timeout=max(0.0, deadline - time.monotonic()))
                break
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if task.cancelled():
            return False
        task.result()
        return True

    def _abandon(self, sink: Sink, st: SinkStatus, batch: list[Item], attempts: int) -> None:
        st.abandoned += len(batch)
        where = self._spill(sink, st, batch)
        log.warning(
            "sink %s: gave up after %d attempts: %d items NOT written%s",
            sink.url,
            attempts,
            len(batch),
            f" (saved in {where})" if where else "",
        )

    def _spill(self, sink: Sink, st: SinkStatus, batch: list[Item]) -> str | None:
        if self.spill_dir is None:
            return None
        from krfeed.sinks.payload import encode_payload

        if st.spilled_to is None:
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            n = next(i for i, x in enumerate(self._status, 1) if x is st)
            st.spilled_to = str(self.spill_dir / f"krfeed-unsent-{stamp}-{n}.jsonl")
        try:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            with open(st.spilled_to, "ab") as f:
                f.write(b"".join(encode_payload(item) + b"\n" for item in batch))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            log.error("cannot save the unsent items in %s: %s", st.spilled_to, e)
            return None
        return st.spilled_to

    async def _report(self, sink: Sink, exc: BaseException, attempt: int) -> None:
        if self.on_error is None:
            return
        try:
            res = self.on_error(sink, exc, attempt)
            if inspect.isawaitable(res):
                await res
        except Exception:
            log.exception("on_error callback failed")


__all__ = ["FATAL_ERRORS", "ErrorCallback", "Recorder", "SinkStatus"]
