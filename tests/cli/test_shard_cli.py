"""``krfeed sim --universe krx --keys N --write-config`` and two ``krfeed record --shard I/2``
processes from that one config: together they record every code once, each on its own keys."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

from krfeed.shard import Shard, take
from krfeed.sim.universe import universe_codes

KRFEED = [sys.executable, "-m", "krfeed"]


def test_two_shards_from_one_config_record_the_codes_once(tmp_path: Path) -> None:
    config = tmp_path / "market.toml"
    sim = subprocess.Popen(
        [*KRFEED, "sim", "--port", "0", "--universe", "krx", "--rate", "4", "--keys", "6",
         "--write-config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline().strip()
        assert line.startswith("krfeed sim ready: http://"), line
        keys = tomllib.loads(config.read_text(encoding="utf-8"))["kis"]
        assert len(keys) == 6 and keys[0]["rest_url"] == line.split(": ", 1)[1]
        procs = []
        for i in (1, 2):
            cmd = [*KRFEED, "record", "kis:H0STPGM0:@krx/200", "--config", str(config),
                   "--shard", f"{i}/2", "--to", f"sqlite:///{tmp_path / f's{i}.db'}",
                   "--duration", "6"]  # fmt: skip
            procs.append(
                subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
        outs = [p.communicate(timeout=90) for p in procs]
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(10)
    for i, (p, (_, err)) in enumerate(zip(procs, outs, strict=True), 1):
        assert p.returncode == 0, err
        assert f"shard {i}/2: 3 of 6 app keys, 100 of 200 registrations" in err
    codes = [_codes(tmp_path / f"s{i}.db") for i in (1, 2)]
    assert codes[0] and codes[1] and not codes[0] & codes[1]  # no code twice
    assert codes[0] | codes[1] <= set(universe_codes("krx", 200))
    # each shard recorded exactly the codes its plan gave it (the busiest ones trade for sure)
    from krfeed.config import load_config

    brokers = load_config(config).kis
    subs = [("kis", "H0STPGM0", universe_codes("krx", 200))]
    for i in (1, 2):
        _, taken, _ = take(brokers, subs, Shard(i, 2))
        assert codes[i - 1] <= set(taken[0][2])
        assert set(taken[0][2][:10]) <= codes[i - 1]


def _codes(db: Path) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT DISTINCT item FROM kis_program_trading")}
    finally:
        con.close()
