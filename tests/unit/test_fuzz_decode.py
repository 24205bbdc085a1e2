"""The decoding fuzz target under a CI budget: ``krfeed.decode`` never raises, for either broker.

The generator is ``benchmarks/fuzz.py`` (captured and simulated frames, broken the ways the wire
breaks them); here hypothesis drives it, plus strategies of its own for the shapes that once
escaped as exceptions (deep JSON nesting, lone surrogates). Long runs: ``python
benchmarks/fuzz.py --count 1000000``.
"""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import krfeed
from krfeed.protocol.messages import DecodeError

ROOT = Path(__file__).resolve().parents[2]


def _load_fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("krfeed_fuzz", ROOT / "benchmarks" / "fuzz.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fuzz = _load_fuzz()
BUDGET = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@BUDGET
@given(rng=st.randoms(use_true_random=False))
def test_generated_adversarial_frames_never_raise(rng: random.Random) -> None:
    fuzz.check(*fuzz.generate(rng))


def test_a_fixed_seed_batch_never_raises() -> None:
    """The same generator without hypothesis: 3 000 inputs of seed 13, every family of them."""
    n, failures = fuzz.run(3000, seed=13, max_failures=5)
    assert n == 3000
    assert failures == [], "\n\n".join(f"{case!r:.300}\n{tb}" for case, tb in failures)


@settings(max_examples=60, deadline=None, database=None)
@given(
    broker=st.sampled_from(fuzz.BROKERS),
    depth=st.integers(1, 200_000),
    data=st.data(),
)
def test_deeply_nested_json_never_raises(broker: str, depth: int, data: st.DataObject) -> None:
    rng = data.draw(st.randoms(use_true_random=False))
    inner = fuzz.nested(rng, depth)
    where = data.draw(
        st.sampled_from(
            [
                "X",
                '{"trnm":"REAL","data":X}',
                '{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":X}]}',
                '{"header":X}',
                '{"header":{"tr_id":"H0STCNI0"},"body":{"output":X}}',
            ]
        )
    )
    frame = where.replace("X", inner)
    fuzz.check(broker, frame)


surrogates = st.characters(categories=["Cs"])
any_chars = st.characters()


@settings(max_examples=150, deadline=None, database=None)
@given(
    broker=st.sampled_from(fuzz.BROKERS),
    seed=st.integers(0, 10**6),
    inserts=st.lists(st.tuples(st.integers(0, 10**6), surrogates), min_size=1, max_size=3),
)
def test_lone_surrogates_in_a_str_frame_never_raise(
    broker: str, seed: int, inserts: list[tuple[int, str]]
) -> None:
    pool = fuzz.seeds()[broker]
    frame = pool[seed % len(pool)]
    for at, s in inserts:
        i = at % (len(frame) + 1)
        frame = frame[:i] + s + frame[i:]
    fuzz.check(broker, frame)


@settings(max_examples=150, deadline=None, database=None)
@given(broker=st.sampled_from(fuzz.BROKERS), frame=st.text(any_chars) | st.binary())
def test_any_text_or_bytes_never_raises(broker: str, frame: str | bytes) -> None:
    fuzz.check(broker, frame)


@pytest.mark.parametrize("broker", fuzz.BROKERS)
@pytest.mark.parametrize(
    "frame",
    [
        pytest.param('{"header":' + "[" * 100_000 + "]" * 100_000 + "}", id="nested-in-header"),
        pytest.param(
            '{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":'
            + '{"a":' * 50_000
            + "1"
            + "}" * 50_000
            + "}]}",
            id="nested-in-values",
        ),
        pytest.param(
            '{"trnm":"REAL","data":[{"type":"0B","item":"\ud800","values":{}}]}', id="sur"
        ),
        pytest.param("\udfff", id="lone-surrogate"),
        pytest.param("0|H0STCNT0|001|005930^\ud800", id="surrogate-in-kis-record"),
        pytest.param(b'{"trnm":"REAL"\xff}', id="invalid-utf8"),
        pytest.param("0|H0STCNT0|001|" + "^".join(["9" * 5000] * 46), id="huge-numbers"),
    ],
)
def test_inputs_that_once_escaped_as_exceptions(broker: str, frame: str | bytes) -> None:
    out = krfeed.decode(broker, frame)
    assert out and isinstance(out[0], DecodeError) and out[0].reason
    fuzz.check(broker, frame)


def krfeed_decode(broker: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "krfeed", "decode", broker],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("broker", fuzz.BROKERS)
def test_krfeed_decode_reports_each_bad_frame_in_one_line_without_a_traceback(
    broker: str,
) -> None:
    valid = (
        b'{"trnm":"PING"}'
        if broker == "kiwoom"
        else b'{"header":{"tr_id":"PINGPONG","datetime":"20250314100000"}}'
    )
    bad = [
        b'{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":'
        + b'{"a":' * 20_000
        + b"1"
        + b"}" * 20_000
        + b"}]}",
        b'{"header":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"trnm":"REAL","data":[{"type":"0B","item":"\\ud800","values":{}}]}',
        b"0|H0STCNT0|001|005930^\xed\xa0\x80^\xff",
        "삼성전자 장개시전".encode("cp949"),
        b"\x00\x01\x02",
    ]
    proc = krfeed_decode(broker, b"\n".join([*bad, valid]) + b"\n")
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == len(bad)
    for line in lines:
        assert line.startswith('{"event":"DecodeError"'), line[:200]
        assert '"reason":"' in line
