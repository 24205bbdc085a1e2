"""The journal: every inbound frame as received, for exact replay.

:class:`JournalWriter` is a ready-made ``on_raw`` hook for :class:`~krfeed.feed.Feed`. It writes
one JSON object per frame::

    {"received_at":"2025-03-14T03:00:00.123456Z","broker":"kis","session":"kis#1","conn":1,
     "frame":"0|H0STCNT0|001|005930^…"}

into a directory of numbered segments (``journal-000001.jsonl.gz``, …), gzip-compressed and
rotated by size; a frame that was not valid UTF-8 also keeps its bytes, base64, in
``frame_b64``. Only frames the brokers *sent* are journaled: outbound frames carry tokens and
approval keys and never reach the hook (any registered secret is masked all the same).

:func:`read_journal` yields the entries back in order across segments (a segment cut short by a
crash is read up to its last complete line); :func:`replay` feeds them through fresh codecs,
one per recorded connection — so KIS execution-notice keys are learned from the recorded
SUBSCRIBE SUCCESS replies exactly as they were live — with the recorded receive times, and so
produces exactly the records (and decode errors) that were decoded live.

Memory and blocking: the hook only encodes the frame and appends it to a buffer; a writer thread
compresses and writes the buffer every ``flush_interval`` seconds (and fsyncs it). The buffer
is bounded by ``max_buffer_mb``: when the disk falls that far behind, the hook waits for the
writer (the feed slows down, nothing is lost). When writing fails (disk full), the writer
retries, and once the buffer is full new frames are dropped, counted in ``stats()["dropped"]``
and logged — a journal must never stop the feed it records.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import re
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any

import msgspec

from krfeed.logs import get_logger, redact, redact_bytes
from krfeed.protocol.kis import KISCodec
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.protocol.messages import DecodeError, Message
from krfeed.records.base import Record

log = get_logger("krfeed.journal")

FORMAT_VERSION = 1
_SEGMENT = re.compile(r"^journal-(\d+)\.jsonl(\.gz)?$")
_MB = 1024 * 1024


class JournalEntry(msgspec.Struct, frozen=True, omit_defaults=True):
    """One inbound frame: when it was read (UTC), from which broker, session and connection;
    ``raw_bytes`` (``frame_b64`` in the file): the frame as received if not valid UTF-8, which
    replay decodes as the live session did (:func:`krfeed.protocol.text.receive_bytes`)."""

    received_at: datetime
    broker: str
    session: str
    conn: int
    frame: str
    raw_bytes: bytes | None = msgspec.field(default=None, name="frame_b64")


class JournalError(ValueError):
    """A journal that cannot be read (missing, or a corrupt line)."""


_encode = msgspec.json.Encoder().encode
_decode_entry = msgspec.json.Decoder(JournalEntry).decode
_decode_any = msgspec.json.Decoder().decode


def segment_files(path: str | os.PathLike[str]) -> list[Path]:
    """The segments of a journal directory in order (or ``[path]`` for one segment file)."""
    p = Path(path)
    if p.is_dir():
        found = []
        for f in p.iterdir():
            m = _SEGMENT.match(f.name)
            if m and f.is_file():
                found.append((int(m.group(1)), f))
        return [f for _, f in sorted(found)]
    if p.is_file():
        return [p]
    raise JournalError(f"no journal at {p}")


class JournalWriter:
    """Writes inbound frames to a journal directory; call it as Feed's ``on_raw`` hook.

    ``path``: the directory (created). Segments continue after any already there.
    ``rotate_mb``: start a new segment past this many (compressed) megabytes.
    ``compress``: gzip the segments. ``flush_interval``: seconds between writes to disk.
    ``fsync``: fsync after each write. ``max_buffer_mb``: see the module doc.

    Use it as a (sync or async) context manager, or call :meth:`close` / :meth:`aclose`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        rotate_mb: float = 64.0,
        compress: bool = True,
        flush_interval: float = 0.5,
        fsync: bool = True,
        max_buffer_mb: float = 32.0,
        compresslevel: int = 6,
    ) -> None:
        if rotate_mb <= 0 or flush_interval <= 0 or max_buffer_mb <= 0:
            raise ValueError("rotate_mb, flush_interval and max_buffer_mb must be positive")
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise JournalError(f"{self.path} exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self.rotate_bytes = int(rotate_mb * _MB)
        self.compress = compress
        self.compresslevel = compresslevel
        self.flush_interval = flush_interval
        self.fsync = fsync
        self.max_buffer = int(max_buffer_mb * _MB)
        existing = [int(m.group(1)) for f in self.path.iterdir() if (m := _SEGMENT.match(f.name))]
        self._next_segment = max(existing, default=0) + 1
        self.files: list[Path] = []
        self._cond = threading.Condition()
        self._buf: list[bytes] = []
        self._pending = 0  # bytes accepted, not yet written
        self._flush_wanted = False
        self._closing = False
        self._closed = False
        self._failing: BaseException | None = None
        self._frames = 0
        self._dropped = 0
        self._late = 0
        self._errors = 0
        self._bytes_in = 0
        self._bytes_out = 0
        self._written_frames = 0
        self._raw: IO[bytes] | None = None
        self._out: IO[bytes] | None = None
        self._good_size = 0  # bytes of the open segment known to be on disk
        self._bytes_closed = 0  # bytes of closed segments
        self._thread = threading.Thread(target=self._run, name="krfeed-journal", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"JournalWriter({str(self.path)!r})"

    # ---- the hook (event loop thread) ----

    def __call__(
        self,
        broker: str,
        session: str,
        conn: int,
        received_at: datetime,
        text: str,
        *,
        raw_bytes: bytes | None = None,
    ) -> None:
        """Journal one inbound frame (Feed's ``on_raw``; ``raw_bytes`` if not valid UTF-8)."""
        data = None if raw_bytes is None else redact_bytes(raw_bytes)
        line = _encode(JournalEntry(received_at, broker, session, conn, redact(text), data)) + b"\n"
        with self._cond:
            if self._closing:
                if not self._late:
                    log.error("journal %s: frames after close are not journaled", self.path)
                self._late += 1
                self._dropped += 1
                return
            while self._pending >= self.max_buffer:
                if self._failing is not None:
                    if not self._dropped:
                        log.error(
                            "journal %s: buffer full while writing fails (%s); dropping frames",
                            self.path,
                            self._failing,
                        )
                    self._dropped += 1
                    return
                self._flush_wanted = True
                self._cond.notify_all()
                self._cond.wait(0.1)
            self._buf.append(line)
            self._pending += len(line)
            self._frames += 1
            self._bytes_in += len(line)

    write = __call__

    def flush(self, timeout: float | None = None) -> None:
        """Block until every frame given so far is written and fsync'ed (or ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._frames
            self._flush_wanted = True
            self._cond.notify_all()
            while self._written_frames < target and self._thread.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"journal {self.path}: flush timed out")
                self._cond.wait(0.1 if left is None else min(left, 0.1))

    def close(self) -> None:
        """Write everything buffered, close the segment. Safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        self._closed = True
        if self._failing is not None and self._pending:
            log.error(
                "journal %s: closed with %d bytes unwritten (%s)",
                self.path,
                self._pending,
                self._failing,
            )

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> JournalWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "frames": self._frames,
                "written": self._written_frames,
                "dropped": self._dropped,
                "errors": self._errors,
                "buffered_bytes": self._pending,
                "bytes": self._bytes_in,
                "bytes_on_disk": self._bytes_out,
                "segments": len(self.files),
                "file": str(self.files[-1]) if self.files else None,
                "failing": None if self._failing is None else str(self._failing),
            }

    # ---- writer thread ----

    def _run(self) -> None:
        backoff = 0.1
        failures_on_close = 0
        while True:
            with self._cond:
                if not (self._closing or self._flush_wanted):
                    self._cond.wait(self.flush_interval)
                self._flush_wanted = False
                chunks, self._buf = self._buf, []
                closing = self._closing
            try:
                if chunks:
                    self._write(chunks)
            except Exception as e:  # disk full, permissions: retry
                with self._cond:
                    self._buf[:0] = chunks  # back in front, in order
                    if self._failing is None:
                        log.error("journal %s: writing failed, retrying: %s", self.path, e)
                    self._failing = e
                    self._errors += 1
                    self._cond.notify_all()
                self._abandon_segment()
                if closing:
                    failures_on_close += 1
                    if failures_on_close > 3:
                        return  # give up (close() reports what is unwritten)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            with self._cond:
                self._pending -= sum(len(c) for c in chunks)
                self._written_frames += len(chunks)
                if self._failing is not None:
                    log.warning("journal %s: writing works again", self.path)
                    self._failing = None
                self._cond.notify_all()
                done = closing and not self._buf
            if done or self._good_size >= self.rotate_bytes:
                self._end_segment()
            if done:
                return

    def _open_segment(self) -> IO[bytes]:
        n = self._next_segment
        self._next_segment += 1
        suffix = ".jsonl.gz" if self.compress else ".jsonl"
        path = self.path / f"journal-{n:06d}{suffix}"
        raw = open(path, "xb")  # noqa: SIM115 - kept open across writes
        out: IO[bytes] = raw
        if self.compress:
            out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=self.compresslevel)  # type: ignore[assignment]
        self._raw, self._out = raw, out
        self.files.append(path)
        header = {"krfeed_journal": FORMAT_VERSION, "segment": n, "compressed": self.compress}
        out.write(_encode(header) + b"\n")
        return out

    def _write(self, chunks: list[bytes]) -> None:
        out = self._out or self._open_segment()
        raw = self._raw
        assert raw is not None
        out.write(b"".join(chunks))
        out.flush()  # gzip: Z_SYNC_FLUSH, everything so far is decompressible
        raw.flush()
        if self.fsync:
            os.fsync(raw.fileno())
        size = self._good_size = raw.tell()
        with self._cond:
            self._bytes_out = self._bytes_closed + size

    def _end_segment(self) -> None:
        """Close the open segment (rotation, close). Its frames are on disk already: a failure
        here only loses the gzip trailer, which readers do without."""
        try:
            self._close_segment()
        except Exception as e:
            log.error("journal %s: closing %s failed: %s", self.path, self.files[-1], e)
            self._abandon_segment()

    def _close_segment(self) -> None:
        out, raw = self._out, self._raw
        if out is None or raw is None:
            return
        self._out = self._raw = None
        self._good_size = 0
        try:
            if out is not raw:
                out.close()  # writes the gzip trailer; leaves raw open
            raw.flush()
            if self.fsync:
                os.fsync(raw.fileno())
        finally:
            raw.close()
        with contextlib.suppress(OSError):
            self._bytes_closed += self.files[-1].stat().st_size

    def _abandon_segment(self) -> None:
        """After a failed write: cut the segment back to what was on disk before (a partial
        block would replay some frames twice) and continue in a new segment."""
        out, raw = self._out, self._raw
        self._out = self._raw = None
        if raw is None:
            return
        for f in (out, raw):
            if f is not None:
                with contextlib.suppress(Exception):
                    f.close()
        with contextlib.suppress(OSError):
            os.truncate(self.files[-1], self._good_size)
        self._bytes_closed += self._good_size
        self._good_size = 0


# ---- reading ----


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        magic = f.read(2)
        f.seek(0)
        if magic != b"\x1f\x8b":
            while chunk := f.read(1 << 16):
                yield chunk
            return
        d = zlib.decompressobj(31)
        while chunk := f.read(1 << 16):
            while chunk:
                try:
                    yield d.decompress(chunk)
                except zlib.error as e:
                    raise JournalError(f"{path}: corrupt gzip data ({e})") from None
                if d.eof:  # another gzip member may follow
                    chunk = d.unused_data
                    d = zlib.decompressobj(31)
                else:
                    chunk = b""
        # no trailer: cut short by a crash; what was flushed has been yielded


def _entries(path: Path) -> Iterator[JournalEntry]:
    rest = b""
    lineno = 0
    for chunk in _chunks(path):
        if not chunk:
            continue
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            lineno += 1
            if not line:
                continue
            try:
                yield _decode_entry(line)
            except msgspec.DecodeError as e:
                try:
                    obj = _decode_any(line)
                except msgspec.DecodeError:
                    obj = None
                if isinstance(obj, dict) and "krfeed_journal" in obj:
                    continue
                raise JournalError(f"{path}:{lineno}: not a krfeed journal entry ({e})") from None
    if rest.strip():
        log.warning("%s: last line incomplete (recording interrupted), skipped", path)


def read_journal(path: str | os.PathLike[str]) -> Iterator[JournalEntry]:
    """Every entry of a journal directory (segments in order), or of one segment file."""
    for f in segment_files(path):
        yield from _entries(f)


ReplayItem = Record | DecodeError | Message


def decode_journal(
    path: str | os.PathLike[str] | Iterator[JournalEntry], *, messages: bool = False
) -> Iterator[ReplayItem]:
    """Decode a journal synchronously: records and decode errors, as they were decoded live
    (``messages=True`` adds the other codec messages: replies, pings, system messages)."""
    entries = read_journal(path) if isinstance(path, str | os.PathLike) else path
    decoder = _Decoder(messages)
    for e in entries:
        yield from decoder(e)


class _Decoder:
    """One fresh codec per recorded (broker, session, connection), as the live sessions had."""

    def __init__(self, messages: bool) -> None:
        self.messages = messages
        self.codecs: dict[tuple[str, str, int], KiwoomCodec | KISCodec] = {}

    def __call__(self, e: JournalEntry) -> list[ReplayItem]:
        key = (e.broker, e.session, e.conn)
        codec = self.codecs.get(key)
        if codec is None:
            if e.broker == "kiwoom":
                codec = KiwoomCodec()
            elif e.broker == "kis":
                codec = KISCodec()
            else:
                raise JournalError(f"unknown broker {e.broker!r} in journal entry")
            self.codecs[key] = codec
        frame = e.frame if e.raw_bytes is None else e.raw_bytes
        out: list[ReplayItem] = codec.receive(frame, e.received_at)  # type: ignore[assignment]
        if self.messages:
            return out
        return [m for m in out if isinstance(m, Record | DecodeError)]


async def replay(
    path: str | os.PathLike[str],
    *,
    speed: float | None = None,
    messages: bool = False,
    chunk: int = 1000,
) -> AsyncIterator[ReplayItem]:
    """Feed a journal back through fresh codecs: the records and decode errors decoded live,
    with their recorded receive times (``messages=True``: every codec message).

    ``speed``: ``None`` as fast as possible, ``1`` real time, ``10`` ten times faster. Segments
    are read on a worker thread, ``chunk`` entries at a time.
    """
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive (or None for as fast as possible)")
    files = segment_files(path)
    entries = (e for f in files for e in _entries(f))
    decoder = _Decoder(messages)
    loop = asyncio.get_running_loop()
    t0: float | None = None
    r0: datetime | None = None
    while True:
        block = await asyncio.to_thread(lambda: list(islice(entries, chunk)))
        if not block:
            return
        for e in block:
            if speed is not None:
                if t0 is None or r0 is None:
                    t0, r0 = loop.time(), e.received_at
                else:
                    due = t0 + (e.received_at - r0).total_seconds() / speed
                    delay = due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
            for m in decoder(e):
                yield m


__all__ = [
    "FORMAT_VERSION",
    "JournalEntry",
    "JournalError",
    "JournalWriter",
    "ReplayItem",
    "decode_journal",
    "read_journal",
    "replay",
    "segment_files",
]
