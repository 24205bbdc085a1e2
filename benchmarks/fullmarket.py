"""The whole market at the open: 2,700 H0STCNT0 codes over 66 app keys + H0STPGM0 for the 500
most active codes over 13 keys (79 keys, 3,200 registrations), with the simulator's opening
profile (default: 30,000 records/s for 60 s, then 5,000/s for 30 s, per-code activity skewed).

Three cases, each with ``krfeed sim`` in its own process:

- **sqlite**: one collector process (the ``krfeed record`` path: Feed → Recorder → SQLite,
  the embedded default with ``synchronous=full``) over all 79 keys;
- **sqlite-shards**: two collectors (``--shard 1/2`` and ``--shard 2/2``) into one SQLite file;
- **nats**: two collectors (``--shard 1/2`` and ``--shard 2/2`` of the same config) into NATS
  JetStream (127.0.0.1:4222), and one ``consume`` process into PostgreSQL (127.0.0.1:5432).

Figures: records offered (handed out by the simulator) vs recorded (rows in the database at the
end), dropped (offered − recorded, with the simulator's and the feed's own drop counters),
receive→commit latency p50/p99 (overall and within the burst; every 10th record, from its
receive time to the return of the sink's write — for nats, to PostgreSQL's commit in consume),
CPU seconds per 10,000 records of each krfeed process, RSS at the start and end of each (and its
peak). The collectors start, subscribe, report ready; then the profile starts; once it is
over, each process stops when nothing new has been committed for 3 s.

    python benchmarks/fullmarket.py [--quick] [--json] [--only sqlite|sqlite-shards|nats]
    python benchmarks/fullmarket.py --burst-rate 30000 --burst-seconds 60 --steady-seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SUBS = ("kis:H0STCNT0:@krx", "kis:H0STPGM0:@krx/500")
KEYS = 79
POSTGRES = os.environ.get("KRFEED_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NATS = os.environ.get("KRFEED_BENCH_NATS", "nats://127.0.0.1:4222")
SAMPLE_EVERY = 10
IDLE = 3.0


# ---- the krfeed processes (workers) ----


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Timed:
    """A sink that notes, for every 10th record, receive→commit (the inner write returned)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.url = inner.url
        self.records = 0
        self.items = 0
        self.latency = array("d")
        self.at = array("d")
        self.first_received: float | None = None
        self.last_commit = 0.0

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def write(self, batch: list[Any]) -> None:
        from krfeed.records.base import Record

        await self.inner.write(batch)
        now = time.time()
        self.last_commit = time.monotonic()
        self.items += len(batch)
        n = self.records
        for it in batch:
            if isinstance(it, Record):
                n += 1
                if n % SAMPLE_EVERY == 0:
                    t = it.received_at.timestamp()
                    if self.first_received is None:
                        self.first_received = t
                    self.latency.append(now - t)
                    self.at.append(t)
        self.records = n

    def summary(self, burst_seconds: float) -> dict[str, Any]:
        lat = sorted(self.latency)
        start = min(self.at) if self.at else 0.0
        burst = sorted(
            v for v, t in zip(self.latency, self.at, strict=True) if t < start + burst_seconds
        )
        return {"all": _pcts(lat), "burst": _pcts(burst), "samples": len(lat)}


def _pcts(data: list[float]) -> dict[str, float | None]:
    if not data:
        return {"p50": None, "p99": None, "max": None}
    n = len(data)
    return {
        "p50": round(data[n // 2], 4),
        "p99": round(data[min(n - 1, int(0.99 * n))], 4),
        "max": round(data[-1], 4),
    }


async def _until_idle(sink: Timed) -> None:
    """Until the parent says the profile is over (a line on stdin), then until nothing new has
    been committed for IDLE seconds."""
    await asyncio.to_thread(sys.stdin.readline)
    while True:
        await asyncio.sleep(0.2)
        if time.monotonic() - sink.last_commit > IDLE:
            return


async def worker_record(config: str, shard: str | None, to: str, burst_seconds: float) -> None:
    from krfeed.cli.record import READ_AHEAD
    from krfeed.config import load_config
    from krfeed.feed import Feed
    from krfeed.recorder import Recorder
    from krfeed.runner import SubSpec, parse_sub
    from krfeed.session import SubState
    from krfeed.shard import Shard, take
    from krfeed.sinks import open_sink

    rss0 = _rss()
    cfg = load_config(config)
    brokers: list[Any] = list(cfg.kis)
    subs = [parse_sub(s) for s in SUBS]
    if shard:
        brokers, taken, _ = take(
            brokers, [(s.broker, s.type, s.codes) for s in subs], Shard.parse(shard)
        )
        subs = [SubSpec(b, t, tuple(c)) for b, t, c in taken]
    sink = Timed(open_sink(to))
    feed = Feed(*brokers, options=cfg.session_options())
    # KRFEED_BENCH_READ_AHEAD: compare with another read-ahead (0: the Recorder's default)
    ahead = int(os.environ.get("KRFEED_BENCH_READ_AHEAD", READ_AHEAD))
    rec = Recorder(feed, [sink], read_ahead=ahead)
    await feed.start()
    for s in subs:
        await feed.subscribe(f"{s.broker}:{s.type}", list(s.codes), wait=False)
    run = asyncio.create_task(rec.run())
    states = feed.subscription_states()
    async with asyncio.timeout(300):
        while not all(x.state is SubState.CONFIRMED for x in states):
            await asyncio.sleep(0.1)
    cpu0, rss_start, t0 = time.process_time(), _rss(), time.monotonic()
    print(json.dumps({"ready": len(states), "keys": len(brokers)}), flush=True)
    await _until_idle(sink)
    rec.stop()
    await run
    stats = feed.stats()
    await feed.close()
    cpu = time.process_time() - cpu0
    print(
        json.dumps(
            {
                "role": f"record {shard or ''}".strip(),
                "keys": len(brokers),
                "registrations": len(states),
                "records": sink.records,
                "items": sink.items,
                "cpu_s": round(cpu, 2),
                "wall_s": round(time.monotonic() - t0 - IDLE, 1),
                "cpu_s_per_10k": round(cpu / sink.records * 10_000, 3) if sink.records else None,
                "rss_mb": [round(x / 2**20, 1) for x in (rss0, rss_start, _rss(), _peak_rss())],
                "latency_s": sink.summary(burst_seconds),
                "feed_dropped": stats["dropped"],
                "queue_high_water": stats["queue_high_water"],
                "reconnects": stats["reconnects"],
                "sink_errors": rec.status()["errors"],
            }
        ),
        flush=True,
    )


async def worker_consume(url: str, to: str, burst_seconds: float) -> None:
    from krfeed.consume import ConsumeStatus, consume
    from krfeed.sinks import open_sink

    rss0 = _rss()
    sink = Timed(open_sink(to))
    await sink.open()
    st = ConsumeStatus()
    stop = asyncio.Event()
    task = asyncio.create_task(
        consume(url, [sink], durable="bench", batch=1000, stop=stop, status=st)
    )
    async with asyncio.timeout(60):
        while not st.running:
            await asyncio.sleep(0.05)
    cpu0, rss_start, t0 = time.process_time(), _rss(), time.monotonic()
    print(json.dumps({"ready": 1}), flush=True)
    await _until_idle(sink)
    stop.set()
    await task
    await sink.close()
    cpu = time.process_time() - cpu0
    print(
        json.dumps(
            {
                "role": "consume",
                "records": sink.records,
                "items": sink.items,
                "cpu_s": round(cpu, 2),
                "wall_s": round(time.monotonic() - t0 - IDLE, 1),
                "cpu_s_per_10k": round(cpu / sink.records * 10_000, 3) if sink.records else None,
                "rss_mb": [round(x / 2**20, 1) for x in (rss0, rss_start, _rss(), _peak_rss())],
                "latency_s": sink.summary(burst_seconds),
                "lag_max": st.lag,
                "redelivered": st.redelivered,
                "sink_failures": st.sink_failures,
            }
        ),
        flush=True,
    )


# ---- the parent: simulator, workers, figures ----


class Worker:
    def __init__(self, args: list[str]) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), *args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.args = args

    def wait_ready(self, timeout: float = 300) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.args} ended before it was ready")
        return dict(json.loads(line))

    def stop(self) -> None:
        """The profile is over: finish once nothing new arrives."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = 900) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=timeout)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(
                f"worker {self.args} printed no result (exit {self.proc.returncode})"
            )
        return dict(json.loads(lines[-1]))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def _sim_args(p: argparse.Namespace, config: Path) -> list[str]:
    return [
        "--universe", "krx",
        "--profile", "opening",
        "--profile-start", "manual",
        "--keys", str(KEYS),
        "--write-config", str(config),
        "--burst-rate", str(p.burst_rate),
        "--burst-seconds", str(p.burst_seconds),
        "--steady-rate", str(p.steady_rate),
        "--profile-duration", str(p.burst_seconds + p.steady_seconds),
    ]  # fmt: skip


def _sim_stats(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(url + "/_sim/stats", timeout=10) as r:
        return dict(json.loads(r.read()))


def _start_profile(url: str) -> None:
    import urllib.request

    req = urllib.request.Request(url + "/_sim/profile", data=b'{"action":"start"}', method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read())["ok"]


def _sqlite_rows(path: Path) -> int:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return sum(
            con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            for t in ("kis_trade", "kis_program_trading")
        )
    finally:
        con.close()


def _pg_rows(schema: str) -> int:
    async def count() -> int:
        import asyncpg

        conn = await asyncpg.connect(POSTGRES)
        try:
            n = 0
            for t in ("kis_trade", "kis_program_trading"):
                n += int(await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{t}"'))
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return n
        finally:
            await conn.close()

    return asyncio.run(count())


def _delete_stream(stream: str) -> None:
    async def delete() -> None:
        import nats

        nc = await nats.connect(NATS)
        try:
            await nc.jetstream().delete_stream(stream)
        except Exception:
            pass
        finally:
            await nc.close()

    asyncio.run(delete())


def run_case(case: str, p: argparse.Namespace) -> dict[str, Any]:
    from simproc import SimProcess

    burst = str(p.burst_seconds)
    with tempfile.TemporaryDirectory(prefix="krfeed-fullmarket-") as d:
        tmp = Path(d)
        config = tmp / "market.toml"
        workers: list[Worker] = []
        tag = uuid.uuid4().hex[:8]
        stream, schema = f"KRFEED_BENCH_{tag.upper()}", f"krfeed_bench_{tag}"
        db = tmp / "market.db"
        try:
            with SimProcess(extra=_sim_args(p, config)) as sim:
                if case == "sqlite":
                    workers.append(
                        Worker(["--worker", "record", "--config", str(config),
                                "--to", f"sqlite:///{db}", "--burst-seconds", burst])
                    )  # fmt: skip
                    ready = [w.wait_ready() for w in workers]
                elif case == "sqlite-shards":  # two collectors, one database file
                    for i in (1, 2):
                        workers.append(
                            Worker(["--worker", "record", "--config", str(config),
                                    "--shard", f"{i}/2", "--to", f"sqlite:///{db}",
                                    "--burst-seconds", burst])
                        )  # fmt: skip
                    ready = [w.wait_ready() for w in workers]
                else:
                    nurl = f"{NATS}?stream={stream}&prefix=krfeedbench{tag}&bundle={p.bundle}"
                    pg = f"{POSTGRES}?schema={schema}"
                    for i in (1, 2):
                        workers.append(
                            Worker(["--worker", "record", "--config", str(config),
                                    "--shard", f"{i}/2", "--to", nurl, "--burst-seconds", burst])
                        )  # fmt: skip
                    ready = [w.wait_ready() for w in workers]
                    # the collectors' sinks created the stream: consume can find it now
                    workers.append(
                        Worker(["--worker", "consume", "--url", nurl, "--to", pg,
                                "--burst-seconds", burst])
                    )  # fmt: skip
                    ready.append(workers[-1].wait_ready())
                sim_cpu0 = sim.cpu_seconds()
                _start_profile(sim.url)
                while not _sim_stats(sim.url)["profile"]["done"]:
                    time.sleep(0.5)
                for w in workers:
                    w.stop()
                results = [w.result() for w in workers]
                st = _sim_stats(sim.url)
                sim_cpu = sim.cpu_seconds() - sim_cpu0
        finally:
            for w in workers:
                w.kill()
        prof = st["profile"]
        if case.startswith("sqlite"):
            recorded = _sqlite_rows(db)
        else:
            recorded = _pg_rows(schema)
            _delete_stream(stream)
    offered = int(prof["records_queued"])
    return {
        "case": case,
        "offered": offered,
        "recorded": recorded,
        "dropped": offered - recorded,
        "sim_dropped": int(prof["records_dropped"]) + int(st.get("frames_dropped", 0)),
        "sim_frames": int(prof["frames"]),
        "sim_cpu_s": round(sim_cpu, 1),
        "ready": ready,
        "processes": results,
    }


def _fmt(r: dict[str, Any]) -> list[str]:
    out = []
    for w in r["processes"]:
        lat = w["latency_s"]
        rss = w["rss_mb"]
        out.append(
            f"| {r['case']} | {w['role']} | {r['offered']:,} | {w['records']:,} | "
            f"{lat['all']['p50']}/{lat['all']['p99']} | "
            f"{lat['burst']['p50']}/{lat['burst']['p99']} | "
            f"{w['cpu_s_per_10k']} | {rss[1]:.0f} → {rss[2]:.0f} (peak {rss[3]:.0f}) |"
        )
    out.append(
        f"| {r['case']} | **total** | {r['offered']:,} | {r['recorded']:,} in the database | "
        f"dropped {r['dropped']:,} (simulator {r['sim_dropped']:,}) | | "
        f"sim CPU {r['sim_cpu_s']} s | |"
    )
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = [
        "| case | process | offered | recorded | receive→commit p50/p99 s | in the burst p50/p99 s "
        "| CPU s / 10k records | RSS MB start → end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + [line for r in rows for line in _fmt(r)])


def run(p: argparse.Namespace) -> list[dict[str, Any]]:
    cases = [p.only] if p.only else ["sqlite", "sqlite-shards", "nats"]
    return [run_case(c, p) for c in cases]


def _profiled(work: Any) -> None:
    """Run a worker; with KRFEED_BENCH_PROFILE=DIR, under cProfile (stats saved in DIR)."""
    out = os.environ.get("KRFEED_BENCH_PROFILE")
    if not out:
        asyncio.run(work)
        return
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    try:
        asyncio.run(work)
    finally:
        prof.disable()
        prof.dump_stats(str(Path(out) / f"worker-{os.getpid()}.prof"))


def main_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="10 s burst at 10,000/s, 5 s steady")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", choices=("sqlite", "sqlite-shards", "nats"))
    ap.add_argument(
        "--bundle", type=int, default=200, help="records per NATS message (1: one per record)"
    )
    ap.add_argument("--burst-rate", type=float, default=30_000.0)
    ap.add_argument("--burst-seconds", type=float, default=60.0)
    ap.add_argument("--steady-rate", type=float, default=5_000.0)
    ap.add_argument("--steady-seconds", type=float, default=30.0)
    ap.add_argument("--worker", choices=("record", "consume"), help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--shard", help=argparse.SUPPRESS)
    ap.add_argument("--to", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    p = ap.parse_args(argv)
    if p.quick:
        p.burst_rate, p.burst_seconds, p.steady_seconds = 10_000.0, 10.0, 5.0
    return p


def main(argv: list[str] | None = None) -> None:
    p = main_args(argv)
    if p.worker == "record":
        _profiled(worker_record(p.config, p.shard, p.to, p.burst_seconds))
        return
    if p.worker == "consume":
        _profiled(worker_consume(p.url, p.to, p.burst_seconds))
        return
    rows = run(p)
    if p.json:
        print(json.dumps(rows))
        return
    print(
        f"whole market: {len(SUBS)} subscriptions over {KEYS} keys, burst {p.burst_rate:,.0f}/s "
        f"for {p.burst_seconds:g} s, then {p.steady_rate:,.0f}/s for {p.steady_seconds:g} s"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
