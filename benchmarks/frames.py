"""Frames for the decode benchmarks: many distinct records, as the brokers would send them.

Market data comes from the simulator's market model (prices move tick by tick, quantities and
times change), so caches in the decoders see realistic variety instead of one repeated frame.
Account pushes (Kiwoom 00, KIS H0STCNI0) start from the official example / documented layout
and vary the order number, quantity, price and time.
"""

from __future__ import annotations

import ast
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from krfeed.protocol.kis import AesKey, KISCodec, data_frame
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.records.base import Record
from krfeed.schema.catalog import types
from krfeed.schema.compile import encode_kis_fields, encode_kiwoom_values
from krfeed.schema.convert import KST
from krfeed.sim.market import UNIVERSE, Market, market_record

ROOT = Path(__file__).resolve().parent.parent
KIWOOM_SPEC = ROOT / "tests" / "fixtures" / "official" / "kiwoom_api_spec_subset.json"
CODES = [c for c in UNIVERSE if not c.startswith("0695")][:12]  # stocks, not the ETF
AES_KEY = "iuheqrmvfxoceaxeyqgjwesozgizmmgx"
AES_IV = "d59d91fcf9fd0044"

#: The receive time every pooled frame is decoded with: 10:30 KST on a trading day, so that
#: the records' times (from 10:00 on) are on the same day.
RECEIVED_AT = datetime(2025, 3, 14, 1, 30, tzinfo=UTC)
_START = datetime(2025, 3, 14, 10, 0, tzinfo=KST)

_encode = msgspec.json.Encoder().encode

# H0STCNI0, the documented 26-field layout (the same as tests/unit/test_kis_codec.py)
_CNI0 = (
    "hts_user01^5012345601^0000012345^^02^0^00^0^005930^10^73100^101523^0^2^2^06010^10^"
    "홍길동^^1^Y^^10^00000000^삼성전자^73100"
)


def _market_records(broker: str, code: str, n: int, seed: int = 1) -> list[Record]:
    market = Market(seed)
    rng = random.Random(seed)
    now = _START
    out: list[Record] = []
    while len(out) < n:
        item = CODES[rng.randrange(len(CODES))]
        inst = market.instrument(item)
        now += timedelta(milliseconds=rng.randint(5, 400))
        inst.step(now)
        if code in ("H0STCNT0", "0B") and not inst.traded:
            continue
        out.append(market_record(broker, code, inst, item, now))
    return out


def kis_frames(tr_id: str, nnn: int = 1, frames: int = 512) -> list[str]:
    """``frames`` distinct KIS data frames of ``nnn`` records each."""
    recs = [encode_kis_fields(r) for r in _market_records("kis", tr_id, nnn * frames)]
    return [data_frame(tr_id, recs[i * nnn : (i + 1) * nnn]) for i in range(frames)]


def kis_notice_frames(frames: int = 512) -> tuple[list[str], KISCodec]:
    """Encrypted H0STCNI0 execution notices, and a codec holding their key."""
    base = _CNI0.split("^")
    rng = random.Random(7)
    key = AesKey(AES_KEY, AES_IV)
    out = []
    t = _START
    for i in range(frames):
        f = list(base)
        t += timedelta(seconds=rng.randint(0, 20))
        qty = rng.randint(1, 500)
        price = 73100 + 100 * rng.randint(-20, 20)
        f[2] = f"{12345 + i:010d}"
        f[8] = CODES[i % len(CODES)]
        f[9], f[10], f[11] = str(qty), str(price), t.strftime("%H%M%S")
        f[16], f[25] = str(qty + rng.randint(0, 100)), str(price)
        f[13] = "2" if i % 3 else "1"
        out.append(data_frame("H0STCNI0", [f], key))
    return out, KISCodec(key=AES_KEY, iv=AES_IV)


def kiwoom_real(entries: list[tuple[str, str, dict[str, str]]]) -> str:
    """A REAL frame as the server sends it (the simulator's shape: type, name, item, values)."""
    kw = types("kiwoom")
    data = [
        {"type": typ, "name": kw[typ].title, "item": item, "values": vals}
        for typ, item, vals in entries
    ]
    return _encode({"trnm": "REAL", "data": data}).decode()


def kiwoom_frames(code: str, per_frame: int = 1, frames: int = 512) -> list[str]:
    """``frames`` distinct REAL frames of ``per_frame`` entries of type ``code``."""
    if code == "00":
        return _kiwoom_orders(frames)
    recs = _market_records("kiwoom", code, per_frame * frames)
    entries = [(code, r.item, encode_kiwoom_values(r)) for r in recs]
    return [kiwoom_real(entries[i * per_frame : (i + 1) * per_frame]) for i in range(frames)]


def official_kiwoom_example(code: str) -> str:
    """The official REAL example of a Kiwoom type, as the server sends it (one line of JSON)."""
    spec = json.loads(KIWOOM_SPEC.read_text(encoding="utf-8"))
    text = spec[code]["response_example"].split("#실시간 수신", 1)[1]
    return json.dumps(ast.literal_eval(text.strip()), ensure_ascii=False, separators=(",", ":"))


def _kiwoom_orders(frames: int) -> list[str]:
    (rec,) = KiwoomCodec().receive(official_kiwoom_example("00"), RECEIVED_AT)
    assert isinstance(rec, Record)
    rng = random.Random(3)
    out = []
    t = _START
    for i in range(frames):
        t += timedelta(seconds=rng.randint(0, 20))
        qty = rng.randint(1, 500)
        price = 73100 + 100 * rng.randint(-20, 20)
        r = msgspec.structs.replace(
            rec,
            order_no=f"{1000 + i:07d}",
            order_qty=qty,
            order_price=price,
            unfilled_qty=rng.randint(0, qty),
            order_fill_time=t,
        )
        out.append(kiwoom_real([("00", rec.item, encode_kiwoom_values(r))]))
    return out
