"""The journal: raw inbound frames written (compressed, rotated), read back in order, and
replayed through fresh codecs into exactly the records decoded live."""

from __future__ import annotations

import asyncio
import gzip
import secrets
import shutil
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from recording_samples import (
    KIS_CNI0_FRAME,
    KIS_CNT0_FRAME,
    KIWOOM_CODES,
    RECEIVED_AT,
    h0stanc0_from_documented_layout,
    h0stpgm0_from_documented_layout,
    kis_subscribe_success,
    kiwoom_official_frame,
)

from krfeed import KIS, Feed, Kiwoom
from krfeed.journal import (
    JournalEntry,
    JournalError,
    JournalWriter,
    decode_journal,
    read_journal,
    replay,
    segment_files,
)
from krfeed.logs import register_secret
from krfeed.protocol.kis import KISCodec
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.protocol.messages import DecodeError
from krfeed.protocol.text import frame_text, with_raw_bytes
from krfeed.records.base import Record

Frame = tuple[str, str, int, datetime, str]  # broker, session, conn, received_at, text


def session_frames() -> list[Frame]:
    """A recorded session: Kiwoom REAL frames, KIS replies and data on two connections."""
    t = RECEIVED_AT
    out: list[Frame] = []

    def add(broker: str, session: str, conn: int, text: str) -> None:
        out.append((broker, session, conn, t + timedelta(milliseconds=10 * len(out)), text))

    add("kiwoom", "kiwoom#1", 1, '{"trnm":"LOGIN","return_code":0,"return_msg":""}')
    add("kis", "kis#1", 1, kis_subscribe_success("H0STCNT0", "005930", with_key=False))
    add("kis", "kis#1", 1, KIS_CNI0_FRAME)  # before its key is known: a decode error, live too
    add("kis", "kis#1", 1, kis_subscribe_success("H0STCNI0", "hts_user01"))
    for code in KIWOOM_CODES:
        add("kiwoom", "kiwoom#1", 1, kiwoom_official_frame(code))
    add("kis", "kis#1", 1, KIS_CNI0_FRAME)  # encrypted execution notice, decrypted
    add("kis", "kis#1", 1, KIS_CNT0_FRAME)
    add("kiwoom", "kiwoom#1", 1, '{"trnm":"PING"}')
    add("kis", "kis#1", 1, '{"header":{"tr_id":"PINGPONG","datetime":"20250314120000"}}')
    # KIS reconnects: a new connection learns its keys again
    add("kis", "kis#1", 2, KIS_CNI0_FRAME)
    add("kis", "kis#1", 2, kis_subscribe_success("H0STCNI0", "hts_user01"))
    add("kis", "kis#1", 2, KIS_CNI0_FRAME)
    for n in range(200):
        pgm = h0stpgm0_from_documented_layout(f"{n:06d}", "100001", n)
        add("kis", "kis#1", 2, "0|H0STPGM0|001|" + pgm)
    add("kis", "kis#1", 2, "0|H0STPGM0|001|not^enough^fields")
    return out


def decode_live(frames: list[Frame]) -> list[Record | DecodeError]:
    """What the live sessions delivered: one codec per connection, records and decode errors."""
    codecs: dict[tuple[str, str, int], Any] = {}
    out: list[Record | DecodeError] = []
    for broker, session, conn, at, text in frames:
        key = (broker, session, conn)
        if key not in codecs:
            codecs[key] = KiwoomCodec() if broker == "kiwoom" else KISCodec()
        out += [m for m in codecs[key].receive(text, at) if isinstance(m, Record | DecodeError)]
    return out


def write_journal(path: Path, frames: list[Frame], **options: Any) -> JournalWriter:
    with JournalWriter(path, **options) as journal:
        for i, frame in enumerate(frames):
            journal(*frame)
            if i % 25 == 0:
                journal.flush()
    return journal


async def test_write_rotate_read_back_and_replay(tmp_path: Path) -> None:
    frames = session_frames()
    live = decode_live(frames)
    kinds = {(type(m).__name__, getattr(m, "type", "")) for m in live}
    assert ("ExecutionNotice", "H0STCNI0") in kinds and ("DecodeError", "H0STCNI0") in kinds
    assert sum(isinstance(m, Record) for m in live) == 19 + 2 + 1 + 200

    journal = write_journal(tmp_path / "j", frames, rotate_mb=0.004, flush_interval=0.01)
    stats = journal.stats()
    assert stats["frames"] == stats["written"] == len(frames) and stats["dropped"] == 0
    segments = segment_files(tmp_path / "j")
    assert len(segments) >= 3, segments
    assert [p.name for p in segments] == [
        f"journal-{i:06d}.jsonl.gz" for i in range(1, len(segments) + 1)
    ]
    assert all(gzip.decompress(p.read_bytes()).startswith(b'{"krfeed_journal":1') for p in segments)

    entries = list(read_journal(tmp_path / "j"))
    assert [(e.broker, e.session, e.conn, e.received_at, e.frame) for e in entries] == frames
    assert all(e.received_at.tzinfo is not None for e in entries)

    replayed = [m async for m in replay(tmp_path / "j")]
    assert replayed == live  # every field, the receive times included
    assert [m.received_at for m in replayed] == [m.received_at for m in live]
    assert list(decode_journal(tmp_path / "j")) == live
    # one segment on its own
    assert list(read_journal(segments[0])) == entries[: len(list(read_journal(segments[0])))]


async def test_replay_with_messages_and_uncompressed(tmp_path: Path) -> None:
    frames = session_frames()[:30]
    write_journal(tmp_path / "j", frames, compress=False)
    (segment,) = segment_files(tmp_path / "j")
    assert segment.name == "journal-000001.jsonl"
    everything = [m async for m in replay(tmp_path / "j", messages=True)]
    names = {type(m).__name__ for m in everything}
    assert {"LoginResult", "ControlReply", "Ping", "DecodeError"} <= names
    assert [m for m in everything if isinstance(m, Record | DecodeError)] == decode_live(frames)


async def test_replay_speed(tmp_path: Path) -> None:
    t = RECEIVED_AT
    frames = [
        (
            "kis",
            "kis#1",
            1,
            t + timedelta(seconds=s),
            "0|H0STPGM0|001|" + h0stpgm0_from_documented_layout("005930", "100001", s),
        )
        for s in (0, 1, 2)
    ]
    write_journal(tmp_path / "j", frames)
    start = time.monotonic()
    got = [m async for m in replay(tmp_path / "j", speed=10)]
    took = time.monotonic() - start
    assert len(got) == 3 and 0.18 <= took < 1.5  # 2 s recorded, 10× faster
    start = time.monotonic()
    assert len([m async for m in replay(tmp_path / "j")]) == 3
    assert time.monotonic() - start < 0.5  # as fast as possible
    with pytest.raises(ValueError, match="speed"):
        [m async for m in replay(tmp_path / "j", speed=0)]


def test_a_journal_cut_short_by_a_crash_reads_up_to_the_last_flush(tmp_path: Path) -> None:
    frames = session_frames()
    journal = JournalWriter(tmp_path / "j", flush_interval=60)
    for f in frames[:40]:
        journal(*f)
    journal.flush()  # on disk, but the gzip stream has no trailer yet
    for f in frames[40:50]:
        journal(*f)  # buffered only
    crashed = tmp_path / "copy"
    shutil.copytree(tmp_path / "j", crashed)  # what kill -9 would leave
    journal.close()
    got = [(e.broker, e.session, e.conn, e.received_at, e.frame) for e in read_journal(crashed)]
    assert got == frames[:40]
    # a partial last line (cut mid-write) is skipped
    plain = crashed / "journal-000002.jsonl"
    plain.write_bytes(b'{"received_at":"2025-03-14T03:00:00Z","broker":"kis","sess')
    assert len(list(read_journal(crashed))) == 40


def test_new_recording_continues_the_numbering_and_bad_lines_are_reported(tmp_path: Path) -> None:
    frames = session_frames()[:5]
    write_journal(tmp_path / "j", frames)
    write_journal(tmp_path / "j", frames)
    assert [p.name for p in segment_files(tmp_path / "j")] == [
        "journal-000001.jsonl.gz",
        "journal-000002.jsonl.gz",
    ]
    assert len(list(read_journal(tmp_path / "j"))) == 10
    bad = tmp_path / "bad" / "journal-000001.jsonl"
    bad.parent.mkdir()
    bad.write_text('{"received_at":"2025-03-14T03:00:00Z","broker":"kis"}\n')
    with pytest.raises(JournalError, match=r"journal-000001\.jsonl:1"):
        list(read_journal(bad.parent))
    with pytest.raises(JournalError, match="no journal"):
        list(read_journal(tmp_path / "missing"))


def test_registered_secrets_never_reach_the_journal(tmp_path: Path) -> None:
    secret = "appkey-" + secrets.token_hex(16)
    register_secret(secret)
    with JournalWriter(tmp_path / "j") as journal:
        journal("kis", "kis#1", 1, RECEIVED_AT, '{"echo":"' + secret + '"}')
    (entry,) = read_journal(tmp_path / "j")
    assert secret not in entry.frame and "****" in entry.frame


def not_utf8_session() -> list[tuple[str, str, int, datetime, bytes]]:
    """Frames as bytes (broker, session, conn, received_at, data): valid UTF-8 ones around a
    CP949 H0STANC0 and Kiwoom 0B frame, an H0STANC0 with a stray byte and an undecodable one."""
    cp949_text = "거래정지 해제 예정"  # the simulator's invalid_utf8 text
    anc0 = h0stanc0_from_documented_layout()
    frames = [
        ("kis", kis_subscribe_success("H0STANC0", "005930", with_key=False).encode()),
        ("kis", anc0.encode()),
        ("kis", h0stanc0_from_documented_layout(cp949_text).encode("cp949")),
        # a stray 0xFF after "A" in CNTG_CLS_CODE ("\udcff" is that byte under surrogateescape)
        ("kis", h0stanc0_from_documented_layout("A\udcff").encode("utf-8", "surrogateescape")),
        ("kis", b"\xff" + anc0.encode()),  # neither UTF-8 nor CP949, no frame after U+FFFD
        ("kiwoom", kiwoom_official_frame("0B").encode("cp949")),  # its name is Korean
        ("kiwoom", kiwoom_official_frame("0B").encode()),
    ]
    return [
        (b, f"{b}#1", 1, RECEIVED_AT + timedelta(milliseconds=i), data)
        for i, (b, data) in enumerate(frames)
    ]


def decode_live_bytes(
    frames: list[tuple[str, str, int, datetime, bytes]], feed: Feed
) -> list[Record | DecodeError]:
    """What a live session does with each frame it reads (engine.connection's read loop): its
    lenient text and bytes to the Feed's raw hook, the text to the codec, the bytes onto any
    DecodeError of a frame that was not valid UTF-8."""
    codecs = {"kis": KISCodec(), "kiwoom": KiwoomCodec()}
    out: list[Record | DecodeError] = []
    for broker, session, conn, at, data in frames:
        text, how = frame_text(data)
        feed.raw(session, conn, at, text, None if how is None else data)
        msgs = codecs[broker].receive(text, at)
        if how is not None:
            msgs = with_raw_bytes(msgs, data, how)
        out += [m for m in msgs if isinstance(m, Record | DecodeError)]
    return out


async def test_a_frame_not_valid_utf8_is_journaled_as_received_and_replays_as_live(
    tmp_path: Path,
) -> None:
    frames = not_utf8_session()
    journal = JournalWriter(tmp_path / "j")
    feed = Feed(KIS.sim("http://127.0.0.1:9"), Kiwoom.sim("http://127.0.0.1:9"), on_raw=journal)
    live = decode_live_bytes(frames, feed)
    journal.close()

    entries = list(read_journal(tmp_path / "j"))
    assert [(e.broker, e.session, e.conn, e.received_at) for e in entries] == [
        f[:4] for f in frames
    ]
    assert [e.frame for e in entries] == [frame_text(f[4])[0] for f in frames]
    assert [e.raw_bytes for e in entries] == [None, None, *[f[4] for f in frames[2:6]], None]
    lines = gzip.decompress(segment_files(tmp_path / "j")[0].read_bytes()).splitlines()[1:]
    assert [b'"frame_b64":' in line for line in lines] == [False] * 2 + [True] * 4 + [False]

    errors = [m for m in live if isinstance(m, DecodeError)]
    assert [(e.type, e.raw_bytes) for e in errors] == [("", frames[4][4])]
    assert errors[0].reason.startswith(
        "the frame was not valid UTF-8 (bad bytes replaced by U+FFFD), then: "
    )
    kis = [m for m in live if m.broker == "kis" and isinstance(m, Record)]
    assert [getattr(r, "trade_class", None) for r in kis] == [None, "거래정지 해제 예정", "A\ufffd"]
    kiwoom = [m for m in live if m.broker == "kiwoom"]
    assert len(kiwoom) == 2  # the CP949 frame decodes like the UTF-8 one
    assert msgspec.structs.replace(kiwoom[0], received_at=kiwoom[1].received_at) == kiwoom[1]

    replayed = [m async for m in replay(tmp_path / "j")]
    assert replayed == live  # the DecodeError's raw_bytes and reason included
    assert list(decode_journal(tmp_path / "j")) == live
    # from the lenient text alone (what the journal kept before) the DecodeError differs
    (from_text,) = KISCodec().receive(entries[4].frame, RECEIVED_AT)
    assert isinstance(from_text, DecodeError) and from_text.raw_bytes is None
    assert from_text != errors[0]


def test_raw_bytes_go_only_to_hooks_that_take_them() -> None:
    calls: list[tuple[Any, ...]] = []

    def five(broker: str, session: str, conn: int, at: datetime, text: str) -> None:
        calls.append((broker, session, conn, at, text))

    def with_bytes(*args: Any, **kw: Any) -> None:
        calls.append((*args, kw))

    for hook in (five, with_bytes):
        feed = Feed(KIS.sim("http://127.0.0.1:9"), on_raw=hook)
        feed.raw("kis#1", 1, RECEIVED_AT, "\ufffd0|H0STANC0", b"\xff0|H0STANC0")
        feed.raw("kis#1", 1, RECEIVED_AT, "0|H0STANC0")
    head = ("kis", "kis#1", 1, RECEIVED_AT)
    assert calls == [
        (*head, "\ufffd0|H0STANC0"),
        (*head, "0|H0STANC0"),
        (*head, "\ufffd0|H0STANC0", {"raw_bytes": b"\xff0|H0STANC0"}),
        (*head, "0|H0STANC0", {}),
    ]


def test_registered_secrets_are_masked_in_the_bytes_too(tmp_path: Path) -> None:
    secret = "approval-" + secrets.token_hex(16)
    register_secret(secret)
    data = b"\xff" + secret.encode() + "거래정지".encode("cp949")
    with JournalWriter(tmp_path / "j") as journal:
        journal("kis", "kis#1", 1, RECEIVED_AT, frame_text(data)[0], raw_bytes=data)
    (entry,) = read_journal(tmp_path / "j")
    assert entry.raw_bytes == b"\xff****" + "거래정지".encode("cp949")
    assert secret not in entry.frame and "****" in entry.frame


async def test_the_hook_does_no_disk_io_on_the_calling_thread(tmp_path: Path) -> None:
    writers: list[int] = []
    journal = JournalWriter(tmp_path / "j", flush_interval=0.01)
    original = journal._write

    def spy(chunks: list[bytes]) -> None:
        writers.append(threading.get_ident())
        original(chunks)

    journal._write = spy  # type: ignore[method-assign]
    for f in session_frames()[:50]:
        journal(*f)  # as Feed's on_raw, on the event loop
        await asyncio.sleep(0)
    await journal.aclose()
    assert writers and threading.get_ident() not in writers
    assert isinstance(next(read_journal(tmp_path / "j")), JournalEntry)


def test_full_buffer_waits_for_the_writer_and_loses_nothing(tmp_path: Path) -> None:
    frames = session_frames()
    with JournalWriter(tmp_path / "j", max_buffer_mb=0.002, flush_interval=5) as journal:
        for f in frames:
            journal(*f)  # the buffer (2 kB) fills: the call waits for the writer
        assert journal.stats()["buffered_bytes"] <= 2 * 0.002 * 1024 * 1024 + 4096
    assert len(list(read_journal(tmp_path / "j"))) == len(frames)
    assert journal.stats()["dropped"] == 0


def test_failed_writes_are_retried_without_duplicating_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    real_fsync = os.fsync
    failures = {"left": 3}

    def flaky_fsync(fd: int) -> None:
        if failures["left"] and fd > 2:
            failures["left"] -= 1
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", flaky_fsync)
    frames = session_frames()
    with JournalWriter(tmp_path / "j", flush_interval=0.01) as journal:
        for i, f in enumerate(frames):
            journal(*f)
            if i % 40 == 0:
                time.sleep(0.02)
    stats = journal.stats()
    assert stats["errors"] == 3 and stats["dropped"] == 0 and stats["failing"] is None
    got = [
        (e.broker, e.session, e.conn, e.received_at, e.frame) for e in read_journal(tmp_path / "j")
    ]
    assert got == frames  # the partial segments were cut back: nothing twice, nothing lost
