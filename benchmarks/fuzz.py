"""Decoding fuzz campaign: ``krfeed.decode`` over adversarial frames of both brokers.

    python benchmarks/fuzz.py                      # 100 000 inputs
    python benchmarks/fuzz.py --count 1000000      # a long local run
    python benchmarks/fuzz.py --seed 7 --max-failures 5

The property: every input gives a list of records and messages, a :class:`DecodeError` carrying
the raw frame for what cannot be understood, and never an exception. The inputs start from
frames captured on the real services (``tests/fixtures/captured``) and from the simulator's
market model for every declared type, then are broken the ways the wire (and attackers) break
them: random and invalid UTF-8 bytes (CP949 text among them), lone surrogates in ``str`` frames,
deeply nested JSON, field counts off by one, NNN wrong, ``|`` and ``^`` in odd places, huge
numbers, ``_`` in numbers, ``(null)``, JSON values of the wrong type anywhere.

Prints inputs/second and, for each failing input, the input (``repr``) and the traceback; the
exit status is 1 if any input failed. ``tests/unit/test_fuzz_decode.py`` runs the same generator
under hypothesis with a small budget.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CAPTURED = ROOT / "tests" / "fixtures" / "captured"
BROKERS = ("kis", "kiwoom")
AES_KEY = "iuheqrmvfxoceaxeyqgjwesozgizmmgx"
AES_IV = "d59d91fcf9fd0044"

Frame = str | bytes
Case = tuple[str, Frame]  # (broker, frame)

# ---- seeds ----


@cache
def seeds() -> dict[str, tuple[str, ...]]:
    """Well-formed frames per broker: the captured ones, and one per declared type from the
    simulator's market model (two records or entries per frame)."""
    out: dict[str, list[str]] = {b: [] for b in BROKERS}
    for b in BROKERS:
        path = CAPTURED / f"{b}_frames.json"
        if path.exists():
            out[b] += [fx["frame"] for fx in json.loads(path.read_text(encoding="utf-8"))]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import frames as simframes

        from krfeed.schema.catalog import types

        for code, t in types("kis").items():
            if t.encrypted:
                continue
            # a type the market model has no values for keeps its captured seeds only
            with contextlib.suppress(Exception):
                out["kis"] += simframes.kis_frames(code, nnn=2, frames=2)
        for code in types("kiwoom"):
            with contextlib.suppress(Exception):
                out["kiwoom"] += simframes.kiwoom_frames(code, per_frame=2, frames=2)
        out["kis"] += simframes.kis_notice_frames(frames=2)[0]
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out["kis"] += ['{"header":{"tr_id":"PINGPONG","datetime":"20250314100000"}}']
    out["kiwoom"] += ['{"trnm":"PING"}', '{"trnm":"REG","return_code":0,"return_msg":""}']
    return {b: tuple(v) for b, v in out.items()}


# ---- mutations ----

ODD_VALUES = (
    "",
    " ",
    "(null)",
    "null",
    "-",
    "+",
    "--5",
    "+-5",
    "1_000",
    "1__0",
    "_1",
    "0x1F",
    "1e9",
    "1E-9",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "9" * 30,
    "-" + "9" * 30,
    "9" * 5000,
    "1." + "9" * 400,
    "0." + "0" * 400 + "1",
    "١٢٣",  # Arabic-Indic digits: int() takes them
    "１２３",  # fullwidth digits
    "²",
    "\x00",
    "\t5\n",
    "250000 ",
    "삼성전자",
    "\u200b7",
    "\ufeff1",
    "999999",
    "240000",
    "000000",
    "99999999",
    "20230230",
    "00000000",
    "Y",
    "N",
    "|",
    "^",
    "^^",
    "|^|",
    "0|H0STCNT0|001|",
    '{"trnm":"REAL"}',
)
SURROGATES = ("\ud800", "\udfff", "\udc80", "\udbff\udbff")
BAD_UTF8 = (
    b"\xff",
    b"\xfe\xff",
    b"\xc3",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"\xc0\xaf",  # overlong "/"
    "삼성전자".encode("cp949"),
    "장개시전 예상체결".encode("cp949"),
)
JSON_ODD: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    10**30,
    -(10**30),
    1.5,
    1e308,
    "",
    "(null)",
    [],
    {},
    [None],
    {"": None},
    "\ud800",
    "REAL",
    "0B",
    {"type": "0B", "values": None},
)


def nested(rng: random.Random, depth: int) -> str:
    """JSON nested ``depth`` deep: lists, objects or both, balanced or not."""
    style = rng.randrange(4)
    if style == 0:
        opening, closing = "[" * depth, "]" * depth
    elif style == 1:
        opening, closing = '{"a":' * depth, "}" * depth
    elif style == 2:
        opening, closing = '[{"values":' * depth, "}]" * depth
    else:
        opening, closing = "[" * depth, ""
    leaf = rng.choice(("1", '"x"', "null", "{}", "[]"))
    return opening + leaf + closing


def deep_json(rng: random.Random, broker: str) -> str:
    """Deep nesting at the top or where a decoder looks: data, values, header, body, output."""
    depth = rng.choice((64, 200, 1000, 5000, 20000, 100000, rng.randint(1, 300000)))
    inner = nested(rng, depth)
    where = rng.randrange(6)
    if where == 0:
        return inner
    if broker == "kiwoom":
        return [
            '{"trnm":"REAL","data":%s}',
            '{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":%s}]}',
            '{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"10":%s}}]}',
            '{"trnm":"CNSRLST","return_code":0,"data":%s}',
            '{"trnm":%s}',
        ][where - 1] % inner
    return [
        '{"header":%s}',
        '{"header":{"tr_id":"H0STCNT0"},"body":%s}',
        '{"header":{"tr_id":"H0STCNI0"},"body":{"rt_cd":"0","output":%s}}',
        '{"header":{"tr_id":%s}}',
        '{"header":{"tr_id":"H0STCNI0"},"body":{"output":{"key":%s,"iv":"x"}}}',
    ][where - 1] % inner


def mutate_kis(rng: random.Random, frame: str) -> str:
    if not frame.startswith(("0|", "1|")):
        return mutate_json(rng, frame)
    parts = frame.split("|", 3)
    if len(parts) < 4:
        return frame
    enc, tr, nnn, payload = parts
    fields = payload.split("^")
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(12)
        if op == 0 and fields:
            del fields[rng.randrange(len(fields))]
        elif op == 1:
            fields.insert(rng.randrange(len(fields) + 1), rng.choice(ODD_VALUES))
        elif op == 2 and fields:
            fields[rng.randrange(len(fields))] = rng.choice(ODD_VALUES)
        elif op == 3:
            nnn = rng.choice(
                ("000", "001", "002", "003", "999", "-01", " 1", "1_0", "abc", "", "9" * 25, "٢")
            )
        elif op == 4:
            enc = rng.choice(("0", "1", "2", "", "00", "0|0"))
        elif op == 5:
            tr = rng.choice(
                ("H0STCNT0", "H0STASP0", "H0STCNI0", "H0STPGM0", "H0UNMKO0", "", "X", "H0STCNT0 ")
            )
        elif op == 6:
            fields = fields + fields[: rng.randint(1, max(1, len(fields)))]
        elif op == 7 and fields:
            fields = fields[: rng.randrange(len(fields))]
        elif op == 8 and fields:
            i = rng.randrange(len(fields))
            fields[i] = fields[i][: rng.randint(0, len(fields[i]))] + rng.choice("|^_")
        elif op == 9 and fields:
            i = rng.randrange(len(fields))
            fields[i] = fields[i] + "_" + fields[i]
        elif op == 10:
            fields += rng.choices(ODD_VALUES, k=rng.randint(1, 4))
        else:
            n = max(1, len(fields) // max(1, _int(nnn)))
            fields = fields + [str(rng.randint(-(10**20), 10**20)) for _ in range(n)]
            nnn = f"{_int(nnn) + 1:03d}"
    return "|".join((enc, tr, nnn, "^".join(fields)))


def _int(s: str) -> int:
    try:
        return max(0, int(s))
    except ValueError:
        return 1


def _walk(node: Any, rng: random.Random) -> Any:
    """Replace a random node of a JSON document with a value of the wrong type."""
    if isinstance(node, dict) and node and rng.random() < 0.8:
        key = rng.choice(list(node))
        node = dict(node)
        if rng.random() < 0.3:
            node[key] = rng.choice(JSON_ODD + tuple(ODD_VALUES))
        else:
            node[key] = _walk(node[key], rng)
        if rng.random() < 0.1:
            node[rng.choice(("9999", "", "\ud800", "type", "trnm"))] = rng.choice(JSON_ODD)
        return node
    if isinstance(node, list) and node and rng.random() < 0.8:
        node = list(node)
        i = rng.randrange(len(node))
        node[i] = _walk(node[i], rng) if rng.random() < 0.7 else rng.choice(JSON_ODD)
        if rng.random() < 0.1:
            node.append(rng.choice(JSON_ODD))
        return node
    return rng.choice(JSON_ODD + tuple(ODD_VALUES))


def mutate_json(rng: random.Random, frame: str) -> str:
    try:
        doc = json.loads(frame)
    except ValueError:
        return frame
    for _ in range(rng.randint(1, 3)):
        doc = _walk(doc, rng)
    try:
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.3)
    except ValueError:
        return frame
    if rng.random() < 0.1:  # a textual cut as well
        text = text[: rng.randint(0, len(text))]
    return text


def with_surrogates(rng: random.Random, frame: str) -> str:
    """Lone surrogates in a ``str`` frame: raw, or as JSON escapes (which decode to one)."""
    out = frame
    for _ in range(rng.randint(1, 3)):
        i = rng.randint(0, len(out))
        s = rng.choice(SURROGATES)
        if rng.random() < 0.5 and frame.startswith("{"):
            s = "".join(f"\\u{ord(c):04x}" for c in s)
        out = out[:i] + s + out[i:]
    return out


def bad_utf8(rng: random.Random, frame: str) -> bytes:
    """A frame as bytes with invalid UTF-8 (or CP949 text) spliced in, or re-encoded."""
    if rng.random() < 0.2:
        try:
            return frame.encode("cp949")
        except UnicodeEncodeError:
            pass
    data = frame.encode("utf-8", "surrogatepass")
    for _ in range(rng.randint(1, 3)):
        i = rng.randint(0, len(data))
        data = data[:i] + rng.choice(BAD_UTF8) + data[i:]
    return data


def odd_separators(rng: random.Random, frame: str) -> str:
    chars = list(frame)
    for _ in range(rng.randint(1, 5)):
        i = rng.randint(0, len(chars))
        chars.insert(i, rng.choice(("|", "^", "||", "^^", "|^", "\n", "\r\n", "\x00", '"', "\\")))
    return "".join(chars)


def random_bytes(rng: random.Random) -> bytes:
    n = rng.choice((0, 1, 2, 4, 16, 64, 256, rng.randint(0, 4096)))
    prefix = rng.choice((b"", b"0|", b"1|", b"{", b'{"trnm":"REAL","data":[', b"0|H0STCNT0|001|"))
    return prefix + rng.randbytes(n)


def random_text(rng: random.Random) -> str:
    n = rng.randint(0, 64)
    pool = '0123456789|^{}[]":,-+._ aAzZ\\ud8\u00e9\uac00\ud800\U0001f600\x00'
    prefix = rng.choice(("", "0|", "1|", "{", '{"trnm":"REAL","data":[', "0|H0STASP0|002|"))
    return prefix + "".join(rng.choice(pool) for _ in range(n))


def generate(rng: random.Random) -> Case:
    """One adversarial input, for one of the two brokers (either broker may get the other's
    frames: a decoder has to survive anything it is handed)."""
    broker = rng.choice(BROKERS)
    pool = seeds()[broker if rng.random() < 0.9 else rng.choice(BROKERS)]
    seed = rng.choice(pool)
    r = rng.random()
    frame: Frame
    if r < 0.30:
        frame = mutate_kis(rng, seed) if seed.startswith(("0|", "1|")) else mutate_json(rng, seed)
    elif r < 0.42:
        frame = mutate_json(rng, seed) if seed.startswith("{") else mutate_kis(rng, seed)
    elif r < 0.52:
        frame = with_surrogates(rng, seed)
    elif r < 0.62:
        frame = bad_utf8(rng, seed)
    elif r < 0.70:
        frame = deep_json(rng, broker)
    elif r < 0.78:
        frame = odd_separators(rng, seed)
    elif r < 0.86:
        frame = random_bytes(rng)
    elif r < 0.92:
        frame = random_text(rng)
    else:  # a mutation of a mutation
        frame = mutate_kis(rng, mutate_kis(rng, seed)) if seed[0] in "01" else seed
        frame = with_surrogates(rng, frame) if rng.random() < 0.3 else frame
    if isinstance(frame, str) and rng.random() < 0.05:
        frame = frame.encode("utf-8", "surrogatepass")
    return broker, frame


# ---- the property ----


def check(broker: str, frame: Frame) -> None:
    """Decode ``frame`` and check the result; raises AssertionError, or whatever escaped."""
    import krfeed
    from krfeed.protocol.messages import DecodeError, Message
    from krfeed.records.base import Record

    runs: list[list[Any]] = [krfeed.decode(broker, frame)]
    if broker == "kis":
        runs.append(krfeed.decode(broker, frame, key=AES_KEY, iv=AES_IV))
    for out in runs:
        assert isinstance(out, list), f"decode returned {type(out).__name__}"
        for m in out:
            assert isinstance(m, Record | Message), f"decode returned a {type(m).__name__}"
            if isinstance(m, DecodeError):
                assert m.reason, "a DecodeError without a reason"
                assert isinstance(m.raw, str | bytes), "a DecodeError without its raw frame"
                if isinstance(frame, str) and frame.isprintable() and frame.isascii():
                    assert m.raw == frame, "a DecodeError whose raw is not the frame"


def run(
    count: int,
    seed: int,
    max_failures: int,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[int, list[tuple[Case, str]]]:
    """Check ``count`` generated inputs; returns (inputs checked, failures with tracebacks)."""
    rng = random.Random(seed)
    seeds()  # built before the clock starts
    failures: list[tuple[Case, str]] = []
    seen: set[str] = set()
    t0 = time.perf_counter()
    n = 0
    for n in range(1, count + 1):
        case = generate(rng)
        try:
            check(*case)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # that is the point
            tb = traceback.format_exc()
            where = traceback.extract_tb(e.__traceback__)[-1]
            key = f"{type(e).__name__}@{where.filename}:{where.lineno}"
            if key not in seen:
                seen.add(key)
                failures.append((case, tb))
            if len(failures) >= max_failures:
                break
        if progress and n % 50_000 == 0:
            progress(n, time.perf_counter() - t0)
    return n, failures


def iter_cases(count: int, seed: int) -> Iterator[Case]:
    rng = random.Random(seed)
    for _ in range(count):
        yield generate(rng)


def _show(frame: Frame, limit: int = 400) -> str:
    r = repr(frame)
    return r if len(r) <= limit else r[:limit] + f"… ({len(frame)} {type(frame).__name__} units)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--count", type=int, default=100_000, help="inputs to check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-failures", type=int, default=20, help="stop after this many kinds")
    args = ap.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))

    def progress(n: int, dt: float) -> None:
        print(f"  {n:>10,} inputs  {n / dt:>9,.0f}/s", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    n, failures = run(args.count, args.seed, args.max_failures, progress)
    dt = time.perf_counter() - t0
    print(f"{n:,} inputs in {dt:.1f} s: {n / dt:,.0f} inputs/s, seed {args.seed}")
    if not failures:
        print("no exception escaped krfeed.decode")
        return 0
    print(f"{len(failures)} distinct failure(s) (by exception and place):")
    for (broker, frame), tb in failures:
        print(f"\n--- broker={broker} input={_show(frame)}\n{tb}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
