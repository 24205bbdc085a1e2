"""krfeed's benchmark suite: one table of figures, each beside its floor or comparator measured
in the same run, the ratio, and the target of issue 8.

    python benchmarks/run.py            # everything (a few minutes)
    python benchmarks/run.py --quick    # short runs (about a minute)
    python benchmarks/run.py --full     # the footprint over 5 million records, and the whole
                                        # market at the open (fullmarket.py, several minutes)
    python benchmarks/run.py --json     # the rows (and every raw figure) as one JSON object
    python benchmarks/run.py --only decode,stream

Sections (each module also runs on its own):

- decode (decode.py): the codecs on frames from the simulator's market model, against splitting
  the same frames (KIS) or parsing them as untyped JSON (Kiwoom);
- python-kis (pykis_compare.py): the same KIS frames through python-kis's parser, installed
  for this comparison only, into ``benchmarks/.pykis`` (``pip install --target``);
- stream (stream.py): ``krfeed sim`` benchmark mode, in its own process → Feed → a no-op
  consumer, against a bare aiohttp receive loop on the same frames;
- record (record.py): the same stream through the Recorder into SQLite, JSONL and Parquet;
- footprint (footprint.py): RSS over many records (fast and slow consumer), the CPU of an
  idle session holding 41 registrations;
- fullmarket (fullmarket.py; with ``--full`` or ``--only fullmarket``): 2,700 H0STCNT0 codes
  over 66 keys + H0STPGM0 for 500 codes over 13 keys with the opening profile, into SQLite, and
  with two shards into NATS and one consume into PostgreSQL.

Timing is never a test: the machine is shared and noisy. Every ratio is taken within one run,
the codec and its floor taking turns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PYKIS = "python-kis==2.1.6"
PYKIS_DIR = HERE / ".pykis"
SECTIONS = ("decode", "pykis", "stream", "record", "footprint", "fullmarket")


def _row(
    section: str,
    name: str,
    value: str,
    floor: str = "",
    ratio: str = "",
    target: str = "",
    met: bool | None = None,
    data: dict[str, Any] | None = None,
    note: str = "",
) -> dict[str, Any]:
    return {
        "section": section,
        "name": name,
        "value": value,
        "floor": floor,
        "ratio": ratio,
        "target": target,
        "met": met,
        "note": note,
        "data": data or {},
    }


def _n(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


# ---- sections ----


def decode_rows(quick: bool) -> list[dict[str, Any]]:
    import decode

    out = []
    for r in decode.run(1_500 if quick else 5_000):
        t = r["target"]
        out.append(
            _row(
                "decode",
                r["case"],
                f"{_n(r['records_per_s'])} rec/s",
                f"{_n(r['floor_records_per_s'])} rec/s",
                f"{r['ratio']:.3f}",
                f"≥ {t:.2f} of floor" if t else "",
                None if t is None else r["ratio"] >= t,
                data=r,
            )
        )
    return out


def _install_pykis() -> str | None:
    """Install python-kis into its own directory (never into krfeed's environment)."""
    if (PYKIS_DIR / "pykis").is_dir():
        return None
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += ["--target", str(PYKIS_DIR), PYKIS]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{type(e).__name__}: {e}"
    if p.returncode:
        return (p.stderr.strip().splitlines() or ["pip failed"])[-1]
    return None


def pykis_rows(quick: bool, install: bool) -> list[dict[str, Any]]:
    def missing(why: str) -> list[dict[str, Any]]:
        return [
            _row(
                "python-kis",
                "KIS H0STCNT0 vs python-kis",
                "—",
                "—",
                "",
                "≥ 10× python-kis",
                None,
                note=why,
            )
        ]

    err = _install_pykis() if install else None
    if err or not (PYKIS_DIR / "pykis").is_dir():
        return missing(
            f"python-kis could not be installed: {err or 'not installed (--no-install)'}"
        )
    # python-kis's directory last: krfeed and its dependencies come from krfeed's environment
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*sys.path[1:], str(PYKIS_DIR)]))
    p = subprocess.run(
        [sys.executable, str(HERE / "pykis_compare.py"), "1000" if quick else "3000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    try:
        res = json.loads(p.stdout)
    except json.JSONDecodeError:
        return missing(f"comparison failed: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
    if isinstance(res, dict):
        return missing(str(res.get("error")))
    out = []
    for r in res:
        name = f"KIS {r['type']} vs python-kis {r['pykis_version']}"
        if "error" in r:
            out.append(_row("python-kis", name, "—", "—", note=r["error"], data=r))
            continue
        target = r["type"] == "H0STCNT0"
        out.append(
            _row(
                "python-kis",
                name,
                f"{_n(r['krfeed_records_per_s'])} rec/s",
                f"{_n(r['pykis_records_per_s'])} rec/s",
                f"{r['ratio']:.1f}×",
                "≥ 10× python-kis" if target else "",
                r["ratio"] >= 10 if target else None,
                data=r,
            )
        )
    return out


def _lat(lat: dict[str, float | None]) -> str:
    if lat.get("p99") is None:
        return ""
    return f"{lat['p50']:.2f}/{lat['p99']:.2f}/{lat['p99.9']:.2f} ms"


def stream_rows(quick: bool) -> list[dict[str, Any]]:
    import stream

    out = []
    for r in stream.run(quick):
        f, b = r["feed"], r["floor"]
        rate = r["offered_per_s"]
        name = f"{r['type']} ×{r['batch']}/frame @ {_n(rate) + '/s' if rate else 'max'}"
        if rate is None:
            ratio = f["records_per_s"] / b["records_per_s"]
            out.append(
                _row(
                    "stream",
                    name,
                    f"{_n(f['records_per_s'])} rec/s",
                    f"{_n(b['records_per_s'])} rec/s",
                    f"{ratio:.2f}",
                    "≥ 0.60 of floor",
                    ratio >= 0.6,
                    data=r,
                )
            )
            continue
        added = f["latency_ms"]["p99"] - b["latency_ms"]["p99"]
        target = rate == 5_000
        out.append(
            _row(
                "stream",
                name + " p50/p99/p99.9",
                _lat(f["latency_ms"]) + f" ({_n(f['records_per_s'])} rec/s)",
                _lat(b["latency_ms"]),
                f"{added:+.2f} ms p99",
                "added p99 ≤ 1 ms" if target else "",
                added <= 1.0 if target else None,
                data=r,
            )
        )
    return out


def record_rows(quick: bool) -> list[dict[str, Any]]:
    import record

    out = []
    for r in record.run(quick):
        rate = r["offered_per_s"]
        name = f"{r['sink']} {r['type']} @ {_n(rate) + '/s' if rate else 'max'}"
        if "error" in r:
            out.append(_row("record", name, "—", note=r["error"], data=r))
            continue
        lag = r["lag_s"]
        value = f"{_n(r['rows_per_s'])} rows/s, lag {lag['p50']:.2f}/{lag['max']:.2f} s"
        growing = lag["last_third"] - lag["first_third"] > 0.25
        if rate:
            kept = r["rows_per_s"] >= 0.97 * rate and not growing
            target = r["sink"] == "sqlite"
            out.append(
                _row(
                    "record",
                    name,
                    value,
                    f"{_n(rate)} offered",
                    f"{r['rows_per_s'] / rate:.2f}",
                    "keeps up at ≥ 50k rows/s" if target else "",
                    kept if target else None,
                    data=r,
                )
            )
        else:
            out.append(_row("record", name, value, data=r))
    return out


def footprint_rows(quick: bool, full: bool) -> list[dict[str, Any]]:
    import footprint

    records = 5_000_000 if full else 200_000 if quick else 1_000_000
    res = footprint.run(records, 3.0 if quick else 10.0)
    out = []
    for r in res["rss"]:
        out.append(
            _row(
                "footprint",
                f"RSS growth, {r['consumer']} consumer, {r['records'] / 1e6:g}M records",
                f"{r['rss_growth_mb']:+.1f} MB",
                f"{r['rss_start_mb']:.0f} → {r['rss_end_mb']:.0f} MB",
                "",
                "< 20 MB",
                r["rss_growth_mb"] < 20,
                data=r,
            )
        )
    idle = res["idle"]
    out.append(
        _row(
            "footprint",
            f"idle session, {idle['registrations']} registrations, heartbeats only",
            f"{idle['cpu_percent']:.2f}% of a core",
            f"{idle['cpu_seconds']:.3f} s CPU in {idle['seconds']:.0f} s",
            "",
            "< 1%",
            idle["cpu_percent"] < 1.0,
            data=idle,
        )
    )
    return out


def fullmarket_rows() -> list[dict[str, Any]]:
    import fullmarket

    out = []
    for r in fullmarket.run(fullmarket.main_args([])):
        for w in r["processes"]:
            lat, rss = w["latency_s"], w["rss_mb"]
            out.append(
                _row(
                    "fullmarket",
                    f"{r['case']} {w['role']}: receive→commit p50/p99 (burst)",
                    f"{lat['burst']['p50']}/{lat['burst']['p99']} s",
                    f"{w['cpu_s_per_10k']} CPU-s/10k, RSS {rss[1]:.0f}→{rss[2]:.0f} MB",
                    "",
                    "p99 ≤ 1 s",
                    lat["burst"]["p99"] is not None and lat["burst"]["p99"] <= 1.0,
                    data=w,
                )
            )
        out.append(
            _row(
                "fullmarket",
                f"{r['case']}: recorded of offered",
                f"{r['recorded']:,} of {r['offered']:,}",
                f"dropped {r['dropped']:,}",
                f"{r['recorded'] / r['offered']:.3f}" if r["offered"] else "",
                "0 dropped",
                r["dropped"] == 0,
                data={k: v for k, v in r.items() if k != "processes"},
            )
        )
    return out


# ---- output ----


def table(rows: list[dict[str, Any]]) -> str:
    cols = ("section", "name", "value", "floor", "ratio", "target", "met")
    heads = ("", "benchmark", "figure", "floor / comparator", "ratio", "target", "met?")

    def cell(r: dict[str, Any], c: str) -> str:
        if c == "met":
            return "" if r["met"] is None else ("yes" if r["met"] else "NO")
        return str(r[c])

    widths = [
        max(len(h), *(len(cell(r, c)) for r in rows)) for c, h in zip(cols, heads, strict=True)
    ]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [line, sep]
    for r in rows:
        out.append(
            "| " + " | ".join(cell(r, c).ljust(w) for c, w in zip(cols, widths, strict=True)) + " |"
        )
    notes = [f"- {r['name']}: {r['note']}" for r in rows if r["note"]]
    return "\n".join(out + (["", *notes] if notes else []))


def _title(info: dict[str, Any]) -> str:
    return (
        f"krfeed benchmarks — Python {info['python']}, {info['machine']}, "
        f"{info['mode']} run, {info['seconds']} s"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="short runs (about a minute)")
    p.add_argument("--full", action="store_true", help="footprint over 5 million records")
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    p.add_argument("--only", help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    p.add_argument(
        "--no-install", action="store_true", help="do not install python-kis for the comparison"
    )
    p.add_argument("--table", metavar="JSON", help="print the table of a saved --json run")
    args = p.parse_args(argv)
    if args.table:
        saved = json.loads(Path(args.table).read_text(encoding="utf-8"))
        print(_title(saved["info"]))
        print(table(saved["rows"]))
        return 0
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    if not args.full and not args.only:
        only.discard("fullmarket")  # several minutes: with --full or --only fullmarket
    unknown = only - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    runs: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [
        ("decode", lambda: decode_rows(args.quick)),
        ("pykis", lambda: pykis_rows(args.quick, not args.no_install)),
        ("stream", lambda: stream_rows(args.quick)),
        ("record", lambda: record_rows(args.quick)),
        ("footprint", lambda: footprint_rows(args.quick, args.full)),
        ("fullmarket", fullmarket_rows),
    ]
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    for name, fn in runs:
        if name in only:
            if not args.json:
                print(f"running {name} …", file=sys.stderr, flush=True)
            rows += fn()
    info = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "mode": "quick" if args.quick else "full" if args.full else "default",
        "seconds": round(time.monotonic() - t0),
    }
    if args.json:
        print(json.dumps({"info": info, "rows": rows}, ensure_ascii=False))
        return 0
    print(_title(info))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
