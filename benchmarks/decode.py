"""Decode throughput of the sans-I/O codecs, in records per second, against a floor.

The floor is the least any decoder has to do with the same frame, measured in the same run:
for KIS, splitting on '|' and '^' only; for Kiwoom, ``msgspec.json.decode`` without a type.
``ratio`` is codec records/s divided by floor records/s (1.0 would be "as fast as the floor").

    python benchmarks/decode.py            # a table
    python benchmarks/decode.py --json     # one JSON list, for tools
    python benchmarks/decode.py -n 50000   # frames per timed loop

Importable: ``run(n)`` returns the rows (``make bench`` and CI can call it).
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from krfeed.protocol.kis import KISCodec
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.records.base import Record

ROOT = Path(__file__).resolve().parent.parent
KIWOOM_SPEC = ROOT / "tests" / "fixtures" / "official" / "kiwoom_api_spec_subset.json"
REPEATS = 3  # best of, to keep scheduler noise out


@dataclass(frozen=True)
class Case:
    name: str
    frame: str
    records: int  # records per frame
    decode: Callable[[str], object]
    floor: Callable[[str], object]


def _pgm_record(i: int) -> str:
    # H0STPGM0, built from the documented 11-field layout (the seed)
    code = f"{5930 + i:06d}"
    return f"{code}^093015^1000^60500000^1500^90750000^500^30250000^120000^95000^-25000"


# H0STCNT0, built from the documented 46-field layout (starts like KIS's own example)
CNT0_RECORD = "^".join(
    (
        *("005930", "123929", "73100", "5", "-600", "-0.81", "73227.53", "73500", "73700"),
        *("72900", "73200", "73100", "15", "8123456", "594857123400", "12345", "11234"),
        *("-1111", "88.45", "4212345", "3726012", "5", "46.94", "62.31", "090000", "5"),
        *("-400", "090312", "5", "-600", "110545", "2", "200", "20250314", "20", "N"),
        *("45678", "123456", "1234567", "2345678", "0.14", "9876543", "82.25", "0", ""),
        "73100",
    )
)


def _kiwoom_real(code: str) -> str:
    """The official REAL example of a Kiwoom type, as the server sends it (one line of JSON)."""
    spec = json.loads(KIWOOM_SPEC.read_text(encoding="utf-8"))
    text = spec[code]["response_example"].split("#실시간 수신", 1)[1]
    return json.dumps(ast.literal_eval(text.strip()), ensure_ascii=False, separators=(",", ":"))


def _kis_floor(frame: str) -> object:
    return frame.split("|", 3)[3].split("^")


_untyped = msgspec.json.Decoder().decode


def _kiwoom_floor(frame: str) -> object:
    return _untyped(frame)


def cases(received_at: datetime) -> list[Case]:
    kis = KISCodec()
    kiwoom = KiwoomCodec()

    def kis_decode(frame: str) -> object:
        return kis.receive(frame, received_at)

    def kiwoom_decode(frame: str) -> object:
        return kiwoom.receive(frame, received_at)

    pgm1 = "0|H0STPGM0|001|" + _pgm_record(0)
    pgm10 = "0|H0STPGM0|010|" + "^".join(_pgm_record(i) for i in range(10))
    cnt0 = "0|H0STCNT0|001|" + CNT0_RECORD
    return [
        Case("KIS H0STPGM0 NNN=1", pgm1, 1, kis_decode, _kis_floor),
        Case("KIS H0STPGM0 NNN=10", pgm10, 10, kis_decode, _kis_floor),
        Case("KIS H0STCNT0 NNN=1", cnt0, 1, kis_decode, _kis_floor),
        Case("Kiwoom REAL 0B", _kiwoom_real("0B"), 1, kiwoom_decode, _kiwoom_floor),
        Case("Kiwoom REAL 00", _kiwoom_real("00"), 1, kiwoom_decode, _kiwoom_floor),
    ]


def _check(case: Case) -> None:
    out = case.decode(case.frame)
    if not (
        isinstance(out, list)
        and len(out) == case.records
        and all(isinstance(r, Record) for r in out)
    ):
        raise RuntimeError(f"{case.name}: frame does not decode to {case.records} record(s): {out}")


def _time(fn: Callable[[str], object], frame: str, n: int) -> float:
    """Best seconds of REPEATS loops of ``n`` calls."""
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(frame)
        best = min(best, time.perf_counter() - t0)
    return best


def run(n: int = 20_000) -> list[dict[str, Any]]:
    """Time every case over ``n`` frames; one row per case."""
    rows: list[dict[str, Any]] = []
    for case in cases(datetime.now(UTC)):
        _check(case)
        _time(case.decode, case.frame, min(n, 1000))  # warm up (decoders compile on first use)
        codec_s = _time(case.decode, case.frame, n)
        floor_s = _time(case.floor, case.frame, n)
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
    p.add_argument("-n", type=int, default=20_000, help="frames per timed loop (default 20000)")
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
