"""Decode throughput of the sans-I/O codecs, in records per second, against a floor.

The floor is the least any decoder has to do with the same frame, measured in the same run:
for KIS, splitting on '|' and '^' only (plus the decryption, for H0STCNI0); for Kiwoom,
``msgspec.json.decode`` without a type. ``ratio`` is codec records/s divided by floor
records/s (1.0 would be "as fast as the floor"). Each case cycles through 512 distinct frames
from the simulator's market model (see frames.py); codec and floor take turns, best of 7.

    python benchmarks/decode.py            # a table
    python benchmarks/decode.py --json     # one JSON list, for tools
    python benchmarks/decode.py -n 20000   # frames per timed loop (default 5000)

Importable: ``run(n)`` returns the rows (``make bench`` and CI can call it).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

import frames

from krfeed.protocol.kis import KISCodec
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.records.base import Record

REPEATS = 7  # best of, to keep scheduler noise out


@dataclass(frozen=True)
class Case:
    name: str
    frames: list[str]
    records: int  # records per frame
    decode: Callable[[str], object]
    floor: Callable[[str], object]
    target: float | None = None  # ratio the issue asks for


def _kis_floor(frame: str) -> object:
    return frame.split("|", 3)[3].split("^")


_untyped = msgspec.json.Decoder().decode


def _kiwoom_floor(frame: str) -> object:
    return _untyped(frame)


def cases(n_frames: int = 512) -> list[Case]:
    """Every decode case, each with ``n_frames`` distinct frames (see frames.py)."""
    received_at = frames.RECEIVED_AT
    kis = KISCodec()
    kiwoom = KiwoomCodec()
    notices, kis_keyed = frames.kis_notice_frames(n_frames)

    def kis_decode(frame: str) -> object:
        return kis.receive(frame, received_at)

    def notice_decode(frame: str) -> object:
        return kis_keyed.receive(frame, received_at)

    def notice_floor(frame: str) -> object:  # the split floor plus the decryption it needs
        payload = frame.split("|", 3)[3]
        return kis_keyed._default_key.decrypt(payload).split("^")  # type: ignore[union-attr]

    def kiwoom_decode(frame: str) -> object:
        return kiwoom.receive(frame, received_at)

    kf = frames.kis_frames
    return [
        Case("KIS H0STPGM0 NNN=1", kf("H0STPGM0", 1, n_frames), 1, kis_decode, _kis_floor),
        Case("KIS H0STPGM0 NNN=10", kf("H0STPGM0", 10, n_frames), 10, kis_decode, _kis_floor, 0.25),
        Case("KIS H0STCNT0 NNN=1", kf("H0STCNT0", 1, n_frames), 1, kis_decode, _kis_floor),
        Case("KIS H0STASP0 NNN=1", kf("H0STASP0", 1, n_frames), 1, kis_decode, _kis_floor),
        Case("KIS H0STCNI0 (AES)", notices, 1, notice_decode, notice_floor),
        Case(
            "Kiwoom REAL 00",
            frames.kiwoom_frames("00", 1, n_frames),
            1,
            kiwoom_decode,
            _kiwoom_floor,
        ),
        Case(
            "Kiwoom REAL 0B",
            frames.kiwoom_frames("0B", 1, n_frames),
            1,
            kiwoom_decode,
            _kiwoom_floor,
            0.5,
        ),
        Case(
            "Kiwoom REAL 0D",
            frames.kiwoom_frames("0D", 1, n_frames),
            1,
            kiwoom_decode,
            _kiwoom_floor,
        ),
    ]


def _check(case: Case) -> None:
    for frame in case.frames:
        out = case.decode(frame)
        if not (
            isinstance(out, list)
            and len(out) == case.records
            and all(isinstance(r, Record) for r in out)
        ):
            raise RuntimeError(
                f"{case.name}: frame does not decode to {case.records} record(s): {out}"
            )


def _best(fns: list[Callable[[str], object]], pool: list[str], n: int) -> list[float]:
    """Best seconds of ``n`` calls of each function, cycling through the pool.

    The functions take turns (REPEATS rounds of each), so that a burst of noise from other
    processes hits the codec and its floor alike instead of skewing their ratio."""
    work = (pool * (n // len(pool) + 1))[:n]
    best = [float("inf")] * len(fns)
    for _ in range(REPEATS):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for frame in work:
                fn(frame)
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def run(n: int = 5_000) -> list[dict[str, Any]]:
    """Time every case over ``n`` frames; one row per case."""
    rows: list[dict[str, Any]] = []
    for case in cases():
        _check(case)
        _best([case.decode], case.frames, min(n, 2000))  # warm up (decoders compile on first use)
        codec_s, floor_s = _best([case.decode, case.floor], case.frames, n)
        codec_rps = n * case.records / codec_s
        floor_rps = n * case.records / floor_s
        rows.append(
            {
                "case": case.name,
                "records_per_frame": case.records,
                "frames": n,
                "records_per_s": round(codec_rps),
                "floor_records_per_s": round(floor_rps),
                "ratio": round(codec_rps / floor_rps, 4),
                "target": case.target,
                "us_per_record": round(1e6 / codec_rps, 3),
            }
        )
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'case':<22} {'rec/frame':>9} {'records/s':>12} {'floor rec/s':>13} "
        f"{'ratio':>7} {'µs/rec':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['case']:<22} {r['records_per_frame']:>9} {r['records_per_s']:>12,} "
            f"{r['floor_records_per_s']:>13,} {r['ratio']:>7.3f} {r['us_per_record']:>8.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("-n", type=int, default=5_000, help="frames per timed loop (default 5000)")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    args = p.parse_args(argv)
    rows = run(args.n)
    if args.json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        return
    print(
        f"krfeed decode benchmark — Python {platform.python_version()}, "
        f"n={args.n}, best of {REPEATS}"
    )
    print(_table(rows))
    print(
        "ratio = records/s ÷ floor records/s "
        "(floor: KIS split on '|' and '^'; Kiwoom untyped msgspec JSON)"
    )


if __name__ == "__main__":
    main()
