"""Text frames that are not valid UTF-8 (seen on the live KIS wire): the session stays up, every
valid record arrives, each bad frame is counted and decoded leniently or reported with its bytes,
and the journal keeps those bytes, so replaying it gives exactly what was decoded live.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import krfeed
from krfeed import KIS, Connected, DecodeError, Disconnected, Feed, Kiwoom, Reconnected
from krfeed.journal import JournalWriter, read_journal, replay
from krfeed.protocol.text import frame_text
from krfeed.records.base import Record
from krfeed.records.kis import Trade
from krfeed.records.kiwoom import StockTrade
from krfeed.schema.catalog import get_type
from krfeed.sim import SimConfig, Simulator
from krfeed.sim.faults import CP949_TEXT
from krfeed.sim.market import on_grid

from .helpers import FAST, collect

#: The KIS field the invalid_utf8 fault writes into: the first text field after the code.
CARRIER = next(f.name for f in get_type("kis", "H0STCNT0").fields[1:] if f.kind == "text")
PER_BROKER = 6  # two of each kind: cp949, stray_byte, undecodable


def delivered(items: list[Any]) -> Counter[str]:
    return Counter(i.type for i in items if isinstance(i, Record))


async def test_invalid_utf8_frames_among_valid_ones(tmp_path: Path) -> None:
    cfg = SimConfig(port=0, seed=5, rate=30.0, ping_interval=0.5)
    journal = JournalWriter(tmp_path / "journal", flush_interval=0.05)
    async with (
        Simulator(cfg) as sim,
        Feed(Kiwoom.sim(sim.url, 1), KIS.sim(sim.url, 2), options=FAST, on_raw=journal) as feed,
    ):
        await feed.subscribe(Kiwoom.TRADE, ["005930"])
        await feed.subscribe(KIS.TRADE, ["005930"])
        items = await collect(feed, lambda it: {"0B", "H0STCNT0"} <= set(delivered(it)))
        sim.fault("invalid_utf8", broker="kis", count=PER_BROKER)
        sim.fault("invalid_utf8", broker="kiwoom", count=PER_BROKER)

        def caught_up(it: list[Any]) -> bool:
            s = sim.stats()
            got = delivered(items + it)
            errors = sum(isinstance(i, DecodeError) for i in it)
            return (
                s.get("invalid_utf8_sent", 0) == 2 * PER_BROKER
                and all(
                    got[t] == s["records_sent"][b].get(t, 0)
                    for b, t in (("kiwoom", "0B"), ("kis", "H0STCNT0"))
                )
                and errors == s.get("invalid_utf8_undecodable", 0)
            )

        items += await collect(feed, caught_up, timeout=30.0)
        stats = feed.stats()
        sent = sim.stats()
    await journal.aclose()

    # the sessions stayed up: one connection each, no disconnect, no reconnect
    assert sum(isinstance(i, Connected) for i in items) == 2
    assert not [i for i in items if isinstance(i, Disconnected | Reconnected)]
    assert stats["reconnects"] == 0
    assert {s["connects"] for s in stats["sessions"].values()} == {1}

    # every bad frame is counted; the CP949 ones decoded as CP949
    assert sent["invalid_utf8_sent"] == 2 * PER_BROKER
    assert sent["invalid_utf8_cp949"] == sent["invalid_utf8_stray_byte"] == 4
    assert sent["invalid_utf8_undecodable"] == 4
    assert stats["invalid_utf8"] == 2 * PER_BROKER
    assert stats["cp949"] == 4
    for s in stats["sessions"].values():
        assert (s["invalid_utf8"], s["cp949"]) == (PER_BROKER, 2)

    # every record the simulator sent arrived (the undecodable frames' records are not counted
    # as sent: they come back as DecodeErrors below), with sane values
    got = delivered(items)
    assert got["0B"] == sent["records_sent"]["kiwoom"]["0B"]
    assert got["H0STCNT0"] == sent["records_sent"]["kis"]["H0STCNT0"]
    trades = [i for i in items if isinstance(i, Trade)]
    for t in trades:
        assert t.item == t.code == "005930"
        assert t.current_price is not None and on_grid(t.current_price)
    kiwoom_trades = [i for i in items if isinstance(i, StockTrade)]
    for k in kiwoom_trades:
        assert k.item == "005930"
        assert k.current_price is not None and on_grid(k.current_price)

    # the CP949 text arrives as the Korean text; a stray byte as one replacement character
    cp949 = [t for t in trades if getattr(t, CARRIER) == CP949_TEXT]
    stray = [t for t in trades if (getattr(t, CARRIER) or "").endswith("\ufffd")]
    assert len(cp949) >= 2 and len(stray) >= 2
    assert all(getattr(t, CARRIER).count("\ufffd") == 1 for t in stray)

    # an undecodable frame is a DecodeError with the bytes exactly as sent
    errors = [i for i in items if isinstance(i, DecodeError)]
    assert len(errors) == 4
    assert Counter(e.broker for e in errors) == {"kis": 2, "kiwoom": 2}
    for e in errors:
        assert e.raw_bytes is not None and e.raw_bytes[:1] == b"\xff"
        assert e.raw == "\ufffd" + e.raw_bytes[1:].decode("utf-8")
        assert "not valid UTF-8" in e.reason
        # the bytes after the bad one are a good frame of the subscribed type
        recs = krfeed.decode(e.broker, e.raw_bytes[1:])
        assert recs and all(isinstance(r, Record) and r.item == "005930" for r in recs)
        assert {r.type for r in recs} == {"0B" if e.broker == "kiwoom" else "H0STCNT0"}

    # the journal kept the bytes of exactly the frames that were not valid UTF-8 ...
    kept = [e for e in read_journal(tmp_path / "journal") if e.raw_bytes is not None]
    assert Counter(e.broker for e in kept) == {"kis": PER_BROKER, "kiwoom": PER_BROKER}
    assert [frame_text(e.raw_bytes)[0] for e in kept] == [e.frame for e in kept]
    assert all(frame_text(e.raw_bytes)[1] is not None for e in kept)
    assert {e.raw_bytes for e in errors} <= {e.raw_bytes for e in kept}
    # ... and replaying it gives, per session, what was delivered live: the records, and the
    # DecodeErrors with their bytes and reason (the journal may end with frames read after)
    replayed = [m async for m in replay(tmp_path / "journal")]
    for broker in ("kis", "kiwoom"):
        live = [i for i in items if isinstance(i, Record | DecodeError) and i.broker == broker]
        again = [m for m in replayed if m.broker == broker]
        assert again[: len(live)] == live
