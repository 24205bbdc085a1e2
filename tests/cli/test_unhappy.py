"""Every command tried as a new user would, on the unhappy paths (issue 15): each run is a real
``krfeed`` subprocess, bounded by a timeout, and ends with the right exit code and one sentence
on stderr — never a hang, never a traceback. PostgreSQL and NATS are the real local servers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import KRFEED, clean_env, in_pty, run, sim

POSTGRES = os.environ.get("KRFEED_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NATS = os.environ.get("KRFEED_TEST_NATS", "nats://127.0.0.1:4222")


#: A loopback port where nothing listens, for the whole run: bound and never listened on (a
#: connection is refused), and kept bound so that no server started by another test takes it.
_DEAD_SOCKET = socket.socket()
_DEAD_SOCKET.bind(("127.0.0.1", 0))
DEAD = int(_DEAD_SOCKET.getsockname()[1])


def one_line(p: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The single non-empty stderr line of a run that failed with ``code``."""
    assert p.returncode == code, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("krfeed: ")
    return lines[0]


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 2):
            return True
    except OSError:
        return False


def _sim(*extra: str) -> Iterator[str]:
    # its exit code is not part of these tests
    yield from sim("--seed", "5", "--rate", "20", *extra, check_exit=False)


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    yield from _sim("--auto-orders", "2")


@pytest.fixture(scope="module")
def mock_sim_url() -> Iterator[str]:
    yield from _sim("--mock", "--auto-orders", "4")


@pytest.fixture()
def postgres() -> str:
    if not reachable(5432):
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    return POSTGRES


class Proxy:
    """A TCP forwarder on a loopback port to a real server; ``stop()`` closes the listener and
    every connection, as a server that goes down does."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone would not
        for s in [self.listener, *self.socks]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


# ---- hangs: a sink or server that cannot be reached at start ----


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        (f"nats://127.0.0.1:{DEAD}", f"cannot reach NATS at 127.0.0.1:{DEAD} within 2s"),
        (
            f"postgresql://nobody@127.0.0.1:{DEAD}/test",
            f"cannot reach PostgreSQL at 127.0.0.1:{DEAD}/test within 2s",
        ),
    ],
)
def test_unreachable_sink_at_start_is_one_line_and_exit_2(
    sim_url: str, sink: str, message: str, tmp_path: Path
) -> None:
    p = run(
        "record",
        "kis:H0STCNT0:005930",
        "--sim",
        sim_url,
        "--to",
        sink,
        "--duration",
        "60",
        "--connect-timeout",
        "2",
        cwd=tmp_path,
        timeout=30,
    )
    line = one_line(p)
    assert message in line and "connection refused" in line


def test_postgres_wrong_database_or_user_is_one_sentence(postgres: str, tmp_path: Path) -> None:
    base = postgres.rsplit("/", 1)[0]
    p = run(
        "record",
        "kis:H0STCNT0:005930",
        "--sim",
        "http://127.0.0.1:9",
        "--to",
        f"{base}/no_such_db_{uuid.uuid4().hex[:6]}",
        cwd=tmp_path,
        timeout=30,
    )
    line = one_line(p)
    assert "refused: database" in line and "does not exist" in line
    p = run(
        "record",
        "kis:H0STCNT0:005930",
        "--sim",
        "http://127.0.0.1:9",
        "--to",
        "postgresql://nobody_here@127.0.0.1:5432/test",
        cwd=tmp_path,
        timeout=30,
    )
    assert 'role "nobody_here" does not exist' in one_line(p)


def test_consume_from_a_dead_nats_is_one_line_and_exit_2(tmp_path: Path) -> None:
    p = run(
        "consume",
        f"nats://127.0.0.1:{DEAD}",
        "--to",
        "out.db",
        "--connect-timeout",
        "2",
        cwd=tmp_path,
        timeout=30,
    )
    assert "cannot reach NATS" in one_line(p)


def test_no_broker_listening_is_one_line_with_the_reason(tmp_path: Path) -> None:
    p = run(
        "record",
        "kis:H0STCNT0:005930",
        "--sim",
        f"http://127.0.0.1:{DEAD}",
        "--to",
        "dead.db",
        "--connect-timeout",
        "2",
        cwd=tmp_path,
        timeout=30,
    )
    line = one_line(p)
    assert "no connection within 2s" in line
    assert f"127.0.0.1:{DEAD}" in line and "connection refused" in line
    assert "is `krfeed sim` running there?" in line
    assert "ClientConnectorError" not in line


LONG_RUNNING = {
    "record-dead-nats": ["record", "kis:H0STCNT0:005930", "--to", f"nats://127.0.0.1:{DEAD}"],
    "record-dead-postgres": [
        "record",
        "kis:H0STCNT0:005930",
        "--to",
        f"postgresql://nobody@127.0.0.1:{DEAD}/test",
    ],
    "record-dead-broker": ["record", "kis:H0STCNT0:005930", "--to", "x.db", "--sim", "DEADSIM"],
    "stream-dead-broker": ["stream", "kis", "H0STCNT0", "005930", "--sim", "DEADSIM"],
    "consume-dead-nats": ["consume", f"nats://127.0.0.1:{DEAD}", "--to", "x.db"],
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_signals_end_every_long_running_command_within_5s(
    name: str, sig: signal.Signals, sim_url: str, tmp_path: Path
) -> None:
    args = [a.replace("DEADSIM", f"http://127.0.0.1:{DEAD}") for a in LONG_RUNNING[name]]
    if "--sim" not in args and args[0] != "consume":
        args += ["--sim", sim_url]
    proc = subprocess.Popen(
        [*KRFEED, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    time.sleep(2.5)  # well inside the 10 s connect timeout: still trying to connect
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{name} did not end within 5 s of {sig.name}")
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    if "dead-broker" in name:  # never connected: nothing was delivered
        assert proc.returncode == 2
        assert "no connection succeeded before the stop" in lines[0]
    else:  # stopped while a sink was still connecting
        assert proc.returncode == 130
        assert lines[0] in (
            "krfeed: stopped before recording anything",
            "krfeed: stopped before consuming anything",
        )


# ---- once running: a sink outage is shown, and a stop keeps what was received ----


def test_sink_outage_is_shown_and_a_stop_saves_the_unsent_rows(
    sim_url: str, postgres: str, tmp_path: Path
) -> None:
    schema = f"krfeed_test_cli_{uuid.uuid4().hex[:8]}"
    proxy = Proxy(5432)
    url = f"{postgres.rsplit('@', 1)[0]}@127.0.0.1:{proxy.port}/test?schema={schema}"
    proc = subprocess.Popen(
        [
            *KRFEED,
            "record",
            "kis:H0STCNT0:005930,000660",
            "--sim",
            sim_url,
            "--to",
            url,
            "--status-every",
            "1",
            "--stop-timeout",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        time.sleep(3)
        proxy.stop()  # PostgreSQL goes away while recording
        time.sleep(6)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proxy.stop()
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err
    assert "SINK DOWN, retrying" in err  # the periodic status line shows the outage
    assert proc.returncode == 1, err
    assert err.strip().splitlines()[-1] == "krfeed: some rows were not delivered (see above)"
    spills = list(tmp_path.glob("krfeed-unsent-*.jsonl"))
    assert len(spills) == 1, err
    assert f"saved in {spills[0]}" in err
    saved = [json.loads(line) for line in spills[0].read_text().splitlines()]
    data = [x for x in saved if "event" not in x]
    assert data and {x["type"] for x in data} == {"H0STCNT0"}
    assert {x["item"] for x in data} <= {"005930", "000660"}
    # the saved rows are delivered once the sink is back
    direct = url.replace(f":{proxy.port}/", ":5432/")
    p = run("replay", str(spills[0]), "--to", direct, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert f"replayed {len(data)} records" in p.stderr
    _drop_schema(direct, schema)


def _drop_schema(url: str, schema: str) -> None:
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(url.split("?", 1)[0])
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


# ---- refused subscriptions and the mock servers ----


def test_refused_subscription_ends_stream_with_the_reason(sim_url: str) -> None:
    p = run("stream", "kis", "H0STPGM0", "ABC", "--sim", sim_url, timeout=60)
    line = one_line(p)
    assert "every subscription was refused" in line
    assert "kis H0STPGM0 ABC" in line and "OPSP8992" in line


def test_record_with_every_subscription_refused_exits_2(sim_url: str, tmp_path: Path) -> None:
    p = run("record", "kis:H0STPGM0:5930", "--sim", sim_url, "--duration", "20", cwd=tmp_path)
    line = one_line(p)
    assert "every subscription was refused (kis H0STPGM0 5930:" in line
    assert "recorded" not in p.stderr


def test_record_counts_data_records_apart_and_names_what_was_refused(
    sim_url: str, tmp_path: Path
) -> None:
    p = run(
        "record",
        "kis:H0STCNT0:005930",
        "kis:H0STPGM0:ABC",
        "--sim",
        sim_url,
        "--count",
        "15",
        "--to",
        "day.db",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    db = tmp_path / "day.db"
    con = sqlite3.connect(db)
    records = con.execute("SELECT count(*) FROM kis_trade").fetchone()[0]
    events = con.execute("SELECT count(*) FROM krfeed_events").fetchone()[0]
    con.close()
    assert records == 15
    assert f"recorded 15 records (and {events} control events) into {db}" in p.stderr
    assert "refused: kis H0STPGM0 ABC: SUBSCRIBE ERROR : invalid tr_key (OPSP8992)" in p.stderr


def test_mock_real_only_type_is_refused_before_sending(mock_sim_url: str) -> None:
    p = run("stream", "kis", "H0STPGM0", "005930", "--sim", mock_sim_url, "--mock", timeout=30)
    assert "is not offered by the KIS mock server" in one_line(p)


def test_mock_execution_notices_use_the_mock_tr(mock_sim_url: str) -> None:
    p = run("stream", "kis", "H0STCNI0", "--sim", mock_sim_url, "--mock", "--duration", "4")
    assert p.returncode == 0, p.stderr
    items = [json.loads(line) for line in p.stdout.splitlines()]
    subscribed = [x for x in items if x.get("event") == "Subscribed"]
    assert [x["type"] for x in subscribed] == ["H0STCNI9"]
    assert not [x for x in items if x.get("event") == "SubscribeFailed"]


# ---- tracebacks where one sentence belongs ----


@pytest.mark.parametrize("command", ["record", "replay"])
def test_sqlite_in_a_missing_folder_is_one_sentence(
    command: str, sim_url: str, tmp_path: Path
) -> None:
    if command == "record":
        args = ["record", "kis:H0STCNT0:005930", "--sim", sim_url]
    else:
        journal = tmp_path / "j"
        journal.mkdir()
        (journal / "journal-000001.jsonl").write_text(
            # one frame in the documented KIS layout (tr_id|encrypted|count|fields)
            json.dumps(
                {
                    "received_at": "2025-03-14T01:00:00Z",
                    "broker": "kis",
                    "session": "kis#1",
                    "conn": 1,
                    "frame": "0|H0STCNT0|001|005930^090000",
                }
            )
            + "\n"
        )
        args = ["replay", str(journal)]
    p = run(*args, "--to", "sqlite:///nodir/x.db", cwd=tmp_path, timeout=30)
    line = one_line(p)
    assert line == (
        f"krfeed: cannot open the SQLite database {tmp_path}/nodir/x.db: "
        f"the folder {tmp_path}/nodir does not exist"
    )


def test_unwritable_paths_are_one_sentence(sim_url: str, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    p = run(
        "record",
        "kis:H0STCNT0:005930",
        "--sim",
        sim_url,
        "--to",
        "afile/out.jsonl",
        cwd=tmp_path,
        timeout=30,
    )
    assert one_line(p) == (
        f"krfeed: cannot open the JSONL file {tmp_path}/afile/out.jsonl: "
        f"{tmp_path}/afile is not a folder"
    )
    p = run(
        "record",
        "kis:H0STCNT0:005930",
        "--sim",
        sim_url,
        "--journal",
        "afile/j",
        cwd=tmp_path,
        timeout=30,
    )
    assert "cannot write the journal at afile/j" in one_line(p)


def test_replay_of_what_is_not_a_journal(tmp_path: Path) -> None:
    empty = tmp_path / "emptydir"
    empty.mkdir()
    line = one_line(run("replay", str(empty)))
    assert line == (
        f"krfeed: nothing to replay: {empty} has no journal segments "
        "(journal-NNNNNN.jsonl.gz) (it is empty)"
    )
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "notes.txt").write_text("hello")
    assert "(it holds notes.txt)" in one_line(run("replay", str(odd)))
    bad = tmp_path / "journal-000001.jsonl"
    bad.write_bytes(b"SQLite format 3\x00\x10\x00\n")
    line = one_line(run("replay", str(bad)))
    assert f"{bad}:1: not a krfeed journal entry" in line
    bad.write_bytes(b"SQLite format 3\x00\x10\x00")  # no complete line at all
    line = one_line(run("replay", str(bad)))
    assert line == f"krfeed: nothing to replay: {bad} holds no complete journal entry"


def test_replay_speed_is_a_positive_number_or_max(tmp_path: Path) -> None:
    for speed, says in (("fast", "takes a number or max, not 'fast'"), ("0", "must be positive")):
        assert one_line(run("replay", str(tmp_path), "--speed", speed)) == f"krfeed: --speed {says}"


def test_sim_port_out_of_range(tmp_path: Path) -> None:
    p = run("sim", "--port", "99999", timeout=30)
    assert one_line(p) == (
        "krfeed: --port must be between 0 and 65535 (0 picks a free one), not 99999"
    )


def test_sim_credentials_with_bad_json_name_the_file(tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    creds.write_text('{"app": secret}')
    p = run("sim", "--credentials", str(creds), timeout=30)
    assert one_line(p) == (f"krfeed: {creds} is not valid JSON: Expecting value at line 1 column 9")


def test_verbose_shows_the_traceback_and_still_ends_with_the_sentence(tmp_path: Path) -> None:
    p = run(
        "record",
        "kis:H0STCNT0:005930",
        "--sim",
        "http://127.0.0.1:9",
        "--to",
        "sqlite:///nodir/x.db",
        "-v",
        cwd=tmp_path,
        timeout=30,
    )
    assert p.returncode == 2
    assert "Traceback" in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("krfeed: cannot open the SQLite database")


# ---- config, paths and the small things ----


def test_unknown_config_key_names_the_keys_there_are(tmp_path: Path) -> None:
    cfg = tmp_path / "krfeed.toml"
    cfg.write_text('[kis]\nappkey = "a"\nsecret_key = "b"\n')
    p = run("stream", "kis", "H0STCNT0", "005930", cwd=tmp_path, env=clean_env(tmp_path))
    line = one_line(p)
    assert f"{cfg.name}: unknown key 'secret_key' in [kis]" in line
    assert "secretkey" in line.split("known keys:")[1]


def test_messages_keep_square_brackets(tmp_path: Path) -> None:
    p = run("stream", "kiwoom", "0B", "005930", cwd=tmp_path, env=clean_env(tmp_path))
    assert "add a [kiwoom] table to krfeed.toml" in one_line(p)


def test_plain_paths_are_sinks_and_the_summary_shows_absolute_paths(
    sim_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "abs" / "out.jsonl"
    p = run(
        "record",
        "kis:H0STCNT0:005930",
        "--sim",
        sim_url,
        "--count",
        "5",
        "--to",
        "day.db",
        "--to",
        str(out),
        "--to",
        f"parquet:///{tmp_path}/pq",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "day.db").exists() and out.exists()
    assert list((tmp_path / "pq").rglob("*.parquet"))  # sqlite:////abs convention: absolute
    assert f"into {tmp_path}/day.db, {out}, {tmp_path}/pq" in p.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len([x for x in lines if "event" not in x]) == 5


def test_version() -> None:
    from krfeed import __version__

    p = run("--version")
    assert p.returncode == 0 and p.stdout == f"krfeed {__version__}\n"


def test_query_takes_sqlite_urls_and_says_it_reads_sqlite_only(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.execute("INSERT INTO t VALUES (42)")
    con.commit()
    con.close()
    p = run("query", f"sqlite:///{db}", "SELECT x FROM t", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"x": 42}
    line = one_line(run("query", "postgresql://127.0.0.1/test", "SELECT 1"))
    assert "query reads SQLite recordings only" in line


def test_replay_of_a_duration_recording_has_the_same_rows(sim_url: str, tmp_path: Path) -> None:
    live, again = tmp_path / "live.db", tmp_path / "again.db"
    p = run(
        "record",
        "kis:H0STCNT0:005930,000660",
        "--sim",
        sim_url,
        "--duration",
        "3",
        "--to",
        str(live),
        "--journal",
        str(tmp_path / "j"),
    )
    assert p.returncode == 0, p.stderr
    p = run("replay", str(tmp_path / "j"), "--to", str(again))
    assert p.returncode == 0, p.stderr

    def rows(db: Path) -> list[tuple[object, ...]]:
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT * FROM kis_trade ORDER BY received_at").fetchall()
        finally:
            con.close()

    assert rows(live) and rows(again) == rows(live)


def test_connection_refused_reason_in_the_live_view_and_when_piped(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{DEAD}"
    args = ["stream", "kis", "H0STCNT0", "005930", "--sim", dead, "--connect-timeout", "3"]
    p = run(*args, timeout=30)
    assert p.returncode == 2
    reasons = [json.loads(x).get("reason", "") for x in p.stdout.splitlines()]
    assert reasons and all(
        r.endswith(f"{dead}/oauth2/Approval failed: connection refused") for r in reasons
    )
    code, text = in_pty(*args, cols=200, rows=40, timeout=30)
    assert code == 2
    assert "kis#1 reconnecting: kis-approval request to" in text
    assert "failed: connection refused" in text and "down, attempt" in text


@pytest.mark.parametrize(
    "args",
    [
        ("stream", "kiwoom", "00", "005930"),
        ("stream", "kis", "H0STCNI9", "005930"),
        ("record", "kiwoom:00:005930"),
        ("record", "kis:H0STCNI0:005930"),
    ],
)
def test_an_account_type_given_codes_is_one_sentence_and_exit_2(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    # refused before connecting (nothing listens at DEAD)
    p = run(*args, "--sim", f"http://127.0.0.1:{DEAD}", cwd=tmp_path, timeout=60)
    broker, type_ = (args[1], args[2]) if args[0] == "stream" else args[1].split(":")[:2]
    assert one_line(p) == (
        f"krfeed: {broker} {type_} is an account type: it takes no codes "
        "(it carries the whole account)"
    )


# ---- orders: stopped during the initial reconciliation, and nothing listening ----


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_orders_stopped_during_the_initial_reconciliation_ends_cleanly(
    sig: signal.Signals, sim_url: str, tmp_path: Path
) -> None:
    from .helpers import sim_json

    before = sim_json(sim_url, "/_sim/stats")["connections"]
    proc = subprocess.Popen(
        [*KRFEED, "orders", "--sim", sim_url, "--format", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        # both sessions connected: the order subscriptions and the first round are under way
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            now = sim_json(sim_url, "/_sim/stats")["connections"]
            if all(now[b]["total"] > before[b]["total"] for b in ("kiwoom", "kis")):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)  # a hang guard, not a timing assertion
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    for noise in ("Traceback", "Unclosed", "Task was destroyed", "ERROR"):
        assert noise not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert " orders, " in lines[0] and lines[0].endswith(" won")
    for line in out.splitlines():  # what it printed before the stop is whole JSON lines
        json.loads(line)


def test_orders_with_nothing_listening_is_one_line_and_exit_2(tmp_path: Path) -> None:
    p = run(
        "orders",
        "--sim",
        f"http://127.0.0.1:{DEAD}",
        "--format",
        "jsonl",
        "--connect-timeout",
        "2",
        cwd=tmp_path,
        timeout=30,
    )
    line = one_line(p)
    assert "no connection within 2s" in line
    assert f"127.0.0.1:{DEAD}" in line and "connection refused" in line
    assert "is `krfeed sim` running there?" in line
    assert p.stdout == ""


def test_web_with_nothing_listening_says_why_and_exits_2(tmp_path: Path) -> None:
    p = run(
        "web",
        "kis:H0STPGM0:005930",
        "--sim",
        f"http://127.0.0.1:{DEAD}",
        "--port",
        "0",
        "--connect-timeout",
        "2",
        cwd=tmp_path,
        timeout=60,
    )
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in p.stderr
    # while it waited: why the session is reconnecting, once; then why it gave up
    assert len([ln for ln in lines if ln.startswith("krfeed web: kis#1 reconnecting: ")]) == 1
    assert "connection refused" in lines[-2]
    assert lines[-1].startswith("krfeed: stopped: no connection within 2s: kis#1 at ")
    assert lines[-1].endswith("(is `krfeed sim` running there?)")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_while_krfeed_is_still_importing_is_quiet(sig: signal.Signals) -> None:
    """The installed ``krfeed`` command, stopped in its first half-second (Python importing
    krfeed): no traceback, no silent 143 — exit 130 with one line."""
    import sys

    exe = Path(sys.executable).parent / "krfeed"
    if not exe.exists():
        pytest.skip("the krfeed command is not installed beside this Python")
    outcomes = []
    # past the interpreter's start-up, inside the import of krfeed (later on a busy machine)
    for delay in (0.15, 0.2, 0.3, 0.4, 0.6):
        proc = subprocess.Popen(
            [str(exe), "schema"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
        assert "Traceback" not in err, err
        outcomes.append((proc.returncode, err))
    assert (130, "krfeed: interrupted\n") in outcomes, outcomes
