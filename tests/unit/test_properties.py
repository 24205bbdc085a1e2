"""Property tests: every declared type round-trips through its wire form; the decoders never
raise, whatever they are given."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import krfeed
from krfeed.protocol.kis import KISCodec, data_frame
from krfeed.protocol.kiwoom import KiwoomCodec
from krfeed.protocol.messages import DecodeError, Message
from krfeed.records.base import Record
from krfeed.schema.catalog import types
from krfeed.schema.compile import encode_kis_fields, encode_kiwoom_values, record_class
from krfeed.schema.core import F, RealtimeType
from krfeed.schema.enums import ENUM_KINDS, Direction, Side

KST = timezone(timedelta(hours=9))
RECEIVED_AT = datetime(2025, 3, 14, 3, 0, tzinfo=UTC)  # 12:00 KST: all of the day is within 12 h
TRADING_DATE = date(2025, 3, 14)

KIWOOM_TYPES = list(types("kiwoom").values())
KIS_TYPES = list(types("kis").values())
AES_KEY = "iuheqrmvfxoceaxeyqgjwesozgizmmgx"
AES_IV = "d59d91fcf9fd0044"

PROPS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def optional(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | s


def texts(kis: bool) -> st.SearchStrategy[str]:
    """Non-empty text as a broker sends it: no surrounding whitespace (it is stripped), no
    surrogates (not UTF-8), and for KIS none of the separators and not the literal ``(null)``
    (the live service's empty value, which the codec turns into None)."""
    alphabet = st.characters(exclude_categories=["Cs"], exclude_characters="^|" if kis else "")
    text = st.text(alphabet, min_size=1, max_size=12).filter(lambda s: s == s.strip())
    return text.filter(lambda s: s != "(null)") if kis else text


ints = st.integers(min_value=-(10**15), max_value=10**15)
levels = st.integers(min_value=0, max_value=10**12)
# str(d) parses back to an equal Decimal for every finite d
decimals = st.decimals(allow_nan=False, allow_infinity=False)
decimal_levels = st.decimals(min_value=0, allow_nan=False, allow_infinity=False).map(abs)
# KST times on the trading date; 00:00:00 is left out because "000000" means "no time"
times = (
    st.builds(time, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
    .filter(lambda t: t != time(0, 0, 0))
    .map(lambda t: datetime.combine(TRADING_DATE, t, KST))
)
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))


def field_values(f: F, kis: bool) -> st.SearchStrategy[dict[str, Any]]:
    """The record attributes one field fills, drawn consistently (a level and its sign)."""
    k = f.kind
    if k in ("price", "price_decimal"):
        level = levels if k == "price" else decimal_levels
        pair = st.tuples(level, st.sampled_from(list(Direction)))
        return (st.just((None, None)) | pair).map(lambda p: {f.name: p[0], f"{f.name}_dir": p[1]})
    if k == "aggressor_qty":
        pair = st.tuples(levels, st.none() | st.sampled_from(list(Side)))
        return (st.just((None, None)) | pair).map(lambda p: {f.name: p[0], f"{f.name}_side": p[1]})
    base: st.SearchStrategy[Any]
    if k == "text":
        base = texts(kis)
    elif k == "int":
        base = ints
    elif k == "decimal":
        base = decimals
    elif k == "time":
        base = times
    elif k == "date":
        base = dates
    elif k in ("yn", "flag01"):
        base = st.booleans()
    else:
        assert k.startswith("enum:"), k
        # the members this kind has a wire code for, in a stable order
        base = st.sampled_from(list(dict.fromkeys(ENUM_KINDS[k[5:]][1].values())))
    return optional(base).map(lambda v: {f.name: v})


def records(t: RealtimeType) -> st.SearchStrategy[Record]:
    """Random records of one type (built once per type: the strategies are reused)."""
    return _records(t.broker, t.code)


@cache
def _records(broker: str, code: str) -> st.SearchStrategy[Record]:
    t = types(broker)[code]
    kis = t.broker == "kis"
    cls = record_class(t.broker, t.code)
    items = st.just("") if kis else st.just("") | texts(False)

    def build(parts: tuple[Any, ...]) -> Record:
        *fields, item = parts
        attrs: dict[str, Any] = {}
        for part in fields:
            attrs.update(part)
        bd = attrs.get("business_date")
        if kis and bd is not None:  # a record's times are on its own business date
            for f in t.fields:
                if f.kind == "time" and attrs.get(f.name) is not None:
                    attrs[f.name] = datetime.combine(bd, attrs[f.name].timetz())
        rec = cls(received_at=RECEIVED_AT, item=item, **attrs)
        if kis and t.keyed:  # a KIS record's item is its first field as sent
            return msgspec.structs.replace(rec, item=encode_kis_fields(rec)[0].strip())
        return rec

    return st.tuples(*(field_values(f, kis) for f in t.fields), items).map(build)


def kiwoom_frame(recs: list[Record]) -> str:
    data = [
        {"type": r.type, "name": r.title, "item": r.item, "values": encode_kiwoom_values(r)}
        for r in recs
    ]
    return json.dumps({"trnm": "REAL", "data": data}, ensure_ascii=False)


# ---- round trips ----


@pytest.mark.parametrize("t", KIWOOM_TYPES, ids=lambda t: t.code)
@PROPS
@given(data=st.data())
def test_kiwoom_record_round_trip(t: RealtimeType, data: st.DataObject) -> None:
    rec = data.draw(records(t))
    assert KiwoomCodec().receive(kiwoom_frame([rec]), RECEIVED_AT) == [rec]


@pytest.mark.parametrize("t", KIS_TYPES, ids=lambda t: t.code)
@PROPS
@given(data=st.data())
def test_kis_record_round_trip(t: RealtimeType, data: st.DataObject) -> None:
    rec = data.draw(records(t))
    frame = data_frame(t.code, [encode_kis_fields(rec)])
    assert KISCodec().receive(frame, RECEIVED_AT) == [rec]


@pytest.mark.parametrize("t", KIS_TYPES, ids=lambda t: t.code)
@settings(PROPS, max_examples=10)
@given(data=st.data())
def test_kis_several_records_per_frame_round_trip(t: RealtimeType, data: st.DataObject) -> None:
    recs = data.draw(st.lists(records(t), min_size=2, max_size=4))
    frame = data_frame(t.code, [encode_kis_fields(r) for r in recs])
    assert frame.split("|")[2] == f"{len(recs):03d}"
    assert KISCodec().receive(frame, RECEIVED_AT) == recs


@pytest.mark.parametrize("t", [t for t in KIS_TYPES if t.encrypted], ids=lambda t: t.code)
@PROPS
@given(data=st.data())
def test_kis_encrypted_round_trip(t: RealtimeType, data: st.DataObject) -> None:
    recs = data.draw(st.lists(records(t), min_size=1, max_size=3))
    from krfeed.protocol.kis import AesKey

    frame = data_frame(t.code, [encode_kis_fields(r) for r in recs], key=AesKey(AES_KEY, AES_IV))
    assert frame.startswith(f"1|{t.code}|")
    got = krfeed.decode("kis", frame, key=AES_KEY, iv=AES_IV, received_at=RECEIVED_AT)
    assert got == recs


@PROPS
@given(data=st.data())
def test_kiwoom_frame_with_entries_of_several_types_round_trip(data: st.DataObject) -> None:
    chosen = data.draw(st.lists(st.sampled_from(KIWOOM_TYPES), min_size=2, max_size=6))
    recs = [data.draw(records(t)) for t in chosen]
    assert KiwoomCodec().receive(kiwoom_frame(recs), RECEIVED_AT) == recs


# ---- the decoders never raise ----


def only_messages(out: list[Any]) -> None:
    assert isinstance(out, list)
    for m in out:
        assert isinstance(m, Record | Message), m
        if isinstance(m, DecodeError):
            assert m.reason
            assert isinstance(m.raw, str)


@settings(max_examples=200, deadline=None)
@given(frame=st.text() | st.binary())
def test_random_text_and_bytes_never_raise(frame: str | bytes) -> None:
    only_messages(krfeed.decode("kiwoom", frame))
    only_messages(krfeed.decode("kis", frame))
    only_messages(krfeed.decode("kis", frame, key=AES_KEY, iv=AES_IV))


json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


@st.composite
def kiwoom_like(draw: st.DrawFn) -> str:
    """Frames shaped like Kiwoom's, with odd values where they hurt most."""
    trnm = draw(st.sampled_from(["REAL", "PING", "LOGIN", "REG", "REMOVE", "SYSTEM"]))
    trnm = draw(st.just(trnm) | st.sampled_from(["CNSRLST", "CNSRREQ", "CNSRCLR", "X"]))
    msg: dict[str, Any] = {"trnm": trnm}
    for key in ("return_code", "return_msg", "code", "message", "seq", "cont_yn", "next_key"):
        if draw(st.booleans()):
            msg[key] = draw(json_values | st.sampled_from(["0", "1", " 2", "-1", "8005"]))
    entries = []
    for _ in range(draw(st.integers(0, 3))):
        t = draw(st.sampled_from(KIWOOM_TYPES))
        wires = [f.wire for f in t.fields]
        values = draw(
            st.dictionaries(
                st.sampled_from(wires),
                st.text(alphabet="+- 0123456789.EYN", max_size=9) | json_values,
                max_size=len(wires),
            )
        )
        entry: dict[str, Any] = {"type": draw(st.just(t.code) | json_values), "values": values}
        if draw(st.booleans()):
            entry["item"] = draw(json_values)
        entries.append(entry)
    msg["data"] = draw(st.just(entries) | json_values)
    return json.dumps(msg)


@settings(max_examples=200, deadline=None)
@given(frame=kiwoom_like())
def test_kiwoom_shaped_frames_never_raise(frame: str) -> None:
    only_messages(KiwoomCodec().receive(frame, RECEIVED_AT))


@st.composite
def kis_like(draw: st.DrawFn) -> str:
    """Data frames with the right outline and odd content, and control frames of odd JSON."""
    if draw(st.booleans()):
        return json.dumps(
            {
                "header": draw(json_values | st.fixed_dictionaries({"tr_id": json_values})),
                "body": draw(
                    json_values
                    | st.fixed_dictionaries(
                        {
                            "rt_cd": json_values,
                            "msg_cd": json_values,
                            "output": json_values
                            | st.fixed_dictionaries({"key": json_values, "iv": json_values}),
                        }
                    )
                ),
            }
        )
    t = draw(st.sampled_from(KIS_TYPES))
    enc = draw(st.sampled_from(["0", "1"]))
    tr = draw(st.just(t.code) | st.text(max_size=9))
    n = draw(st.integers(0, 3))
    nnn = draw(st.just(f"{n:03d}") | st.text(alphabet="0123456789 -+x", max_size=4))
    fields = draw(
        st.lists(
            st.text(alphabet="+- 0123456789.:YNab", max_size=8),
            min_size=len(t.fields) * n,
            max_size=len(t.fields) * n,
        )
    )
    payload = "^".join(fields)
    if enc == "1":
        if draw(st.booleans()):
            raw = draw(st.binary(max_size=64))
            payload = base64.b64encode(raw).decode()
        else:
            from krfeed.protocol.kis import AesKey

            payload = AesKey(AES_KEY, AES_IV).encrypt(payload)
    return f"{enc}|{tr}|{nnn}|{payload}"


@settings(max_examples=200, deadline=None)
@given(frame=kis_like())
def test_kis_shaped_frames_never_raise(frame: str) -> None:
    only_messages(KISCodec(key=AES_KEY, iv=AES_IV).receive(frame, RECEIVED_AT))
    only_messages(KISCodec().receive(frame, RECEIVED_AT))
