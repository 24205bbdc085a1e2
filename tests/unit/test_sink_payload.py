"""The record <-> payload of the NATS sink and the item ids (krfeed.sinks.payload):
exact round trip for every declared type of both brokers, with generated values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krfeed import events
from krfeed.jsonout import to_jsonable
from krfeed.protocol.messages import DecodeError
from krfeed.records.base import Record
from krfeed.records.kis import RECORDS as KIS
from krfeed.records.kiwoom import RECORDS as KIWOOM
from krfeed.schema.convert import KST
from krfeed.schema.enums import ENUM_KINDS, Direction, Side
from krfeed.sinks.payload import (
    EVENTS,
    PayloadError,
    decode_payload,
    encode_payload,
    encode_with_id,
    item_id,
)

CLASSES: list[type[Record]] = [*KIWOOM.values(), *KIS.values()]
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_WHEN = {"min_value": datetime(2000, 1, 1), "max_value": datetime(2100, 1, 1)}


def _enum(kind: str) -> st.SearchStrategy[Any]:
    cls = ENUM_KINDS[kind][0]
    values = {m.value for m in cls}
    # a member, or a code krfeed does not know (kept as the text the broker sent)
    return st.sampled_from(list(cls)) | _TEXT.filter(lambda s: s not in values)


def _kind(kind: str) -> st.SearchStrategy[Any]:
    if kind.startswith("enum:"):
        return _enum(kind[5:])
    return {
        "text": _TEXT,
        "int": st.integers(-(2**63), 2**63 - 1),
        "decimal": st.decimals(allow_nan=False, allow_infinity=False),
        "time": st.datetimes(**_WHEN, timezones=st.just(KST)),
        "date": st.dates(),
        "yn": st.booleans(),
        "flag01": st.booleans(),
    }[kind]


@cache
def record_strategy(cls: type[Record]) -> st.SearchStrategy[Record]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "received_at": st.datetimes(**_WHEN, timezones=st.just(UTC)),
        "item": st.text(max_size=12),
    }
    for f in cls.schema().fields:
        if f.kind in ("price", "price_decimal", "aggressor_qty"):
            level = st.integers(0, 10**12) if f.kind != "price_decimal" else _kind("decimal")
            fields[f.name] = st.none() | level
            comp, enum = ("_side", Side) if f.kind == "aggressor_qty" else ("_dir", Direction)
            fields[f.name + comp] = st.none() | st.sampled_from(list(enum))
        else:
            fields[f.name] = st.none() | _kind(f.kind)
    return st.builds(cls, **fields)


def assert_identical(got: Any, want: Any) -> None:
    assert type(got) is type(want)
    assert got == want
    for name in want.__struct_fields__:
        a, b = getattr(got, name), getattr(want, name)
        assert type(a) is type(b), name
        assert a == b, name
        if isinstance(b, datetime):
            assert a.tzinfo == b.tzinfo or a.utcoffset() == b.utcoffset(), name
        if type(b).__name__ == "Decimal":
            assert str(a) == str(b), name  # exactly, exponent and trailing zeros too


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.broker}-{c.type}")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_type_round_trips_exactly(cls: type[Record], data: st.DataObject) -> None:
    rec = data.draw(record_strategy(cls))
    payload, rid = encode_with_id(rec)
    back = decode_payload(payload)
    assert_identical(back, rec)
    assert encode_with_id(back) == (payload, rid)  # the id survives a trip through the bus
    for name in rec.__struct_fields__:
        v = getattr(back, name)
        if isinstance(v, datetime) and name != "received_at":
            assert v.tzinfo is KST


def test_every_declared_type_is_covered() -> None:
    assert len(CLASSES) == 46
    assert {(c.broker, c.type) for c in CLASSES} == {
        *(("kiwoom", k) for k in KIWOOM),
        *(("kis", k) for k in KIS),
    }


def test_payload_is_the_json_output_shape() -> None:
    rec = KIWOOM["0B"](received_at=datetime(2025, 3, 14, 3, 0, tzinfo=UTC), item="005930")
    obj = json.loads(encode_payload(rec))
    assert list(obj) == list(to_jsonable(rec))
    assert obj["broker"] == "kiwoom" and obj["type"] == "0B"
    assert obj["received_at"] == "2025-03-14T03:00:00Z"


def test_decimals_are_strings_and_exact() -> None:
    from decimal import Decimal

    cls = KIWOOM["0B"]
    dec = next(f.name for f in cls.schema().fields if f.kind == "decimal")
    for text in ("-0", "-0.00", "1.50", "1E+3", "0E-7"):
        rec = cls(received_at=datetime(2025, 3, 14, tzinfo=UTC), **{dec: Decimal(text)})
        assert json.loads(encode_payload(rec))[dec] == text
        assert str(getattr(decode_payload(encode_payload(rec)), dec)) == text


EVENT_SAMPLES: list[Any] = [
    events.Connected(broker="kis", session="kis#1", url="ws://ops.koreainvestment.com:21000"),
    events.LoggedIn(broker="kiwoom", session="kiwoom#1"),
    events.Subscribed(broker="kis", session="kis#1", type="H0STPGM0", item="005930"),
    events.SubscribeFailed(
        broker="kis",
        session="kis#1",
        type="H0STCNT0",
        item="005930",
        reason="MAX SUBSCRIBE OVER",
        code="OPSP0008",
    ),
    events.SubscribeFailed(
        broker="kiwoom",
        session="kiwoom#1",
        type="0B",
        item="005930",
        reason="no reply from the broker within 10 s (sent twice)",
        unanswered=True,
    ),
    events.Unsubscribed(broker="kis", session="kis#1", type="H0STPGM0", item="005930"),
    events.Unsubscribed(
        broker="kis",
        session="kis#1",
        type="H0STPGM0",
        item="000660",
        reason="no reply from the broker within 10 s (sent twice); counted as removed",
    ),
    events.Disconnected(broker="kiwoom", session="kiwoom#1", reason="1006", fatal=True),
    events.Reconnecting(
        broker="kiwoom", session="kiwoom#1", attempt=3, delay=1.7, reason="x", path="socket"
    ),
    events.Reconnected(broker="kiwoom", session="kiwoom#1", attempt=3, gap=2.25),
    events.Stalled(broker="kis", session="kis#2", silent_for=30.0),
    events.Dropped(broker="kis", session="kis#2", count=10, total=250),
    events.LayoutChanged(
        broker="kis",
        session="kis#1",
        type="H0STCNT0",
        fields=50,
        known=(46, 47),
        extra=3,
        message="kis H0STCNT0: records carry 50 fields",
    ),
    events.SessionFailed(broker="kiwoom", session="kiwoom#1", reason="R10001", code="R10001"),
    events.ConditionWatched(
        broker="kiwoom", session="kiwoom#1", seq="4", name="조건5", codes=("005930", "000660")
    ),
    events.ConditionRestored(
        broker="kiwoom",
        session="kiwoom#1",
        seq="4",
        codes=("005930", "035720"),
        entered=("035720",),
        left=("000660",),
    ),
    events.ConditionUnwatched(broker="kiwoom", session="kiwoom#1", seq="4", reason="unwatched"),
    DecodeError(
        broker="kis",
        raw="0|H0STPGM0|002|…",
        reason="bad",
        type="H0STPGM0",
        received_at=datetime(2025, 3, 14, 3, 0, 0, 123456, tzinfo=UTC),
    ),
    DecodeError(broker="kiwoom", raw="\x00{", reason="no JSON"),
]


def test_every_event_class_has_a_sample() -> None:
    assert {type(e).__name__ for e in EVENT_SAMPLES} == set(EVENTS)


@pytest.mark.parametrize("ev", EVENT_SAMPLES, ids=lambda e: type(e).__name__)
def test_events_round_trip(ev: Any) -> None:
    payload = encode_payload(ev)
    assert json.loads(payload)["event"] == type(ev).__name__
    assert_identical(decode_payload(payload), ev)
    assert item_id(payload) == encode_with_id(decode_payload(payload))[1]


@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 10**9))
def test_event_floats_exact(delay: float, attempt: int) -> None:
    ev = events.Reconnecting(broker="kis", session="s", attempt=attempt, delay=delay)
    assert_identical(decode_payload(encode_payload(ev)), ev)


def test_ids_are_deterministic_and_distinct() -> None:
    at = datetime(2025, 3, 14, 3, 0, tzinfo=UTC)
    a = KIS["H0STPGM0"](received_at=at, item="005930", sell_qty=1)
    b = KIS["H0STPGM0"](received_at=at, item="005930", sell_qty=1)
    c = KIS["H0STPGM0"](received_at=at, item="005930", sell_qty=2)
    assert encode_with_id(a)[1] == encode_with_id(b)[1]
    assert encode_with_id(a)[1] != encode_with_id(c)[1]
    assert len(encode_with_id(a)[1]) == 16


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"broker":"kis"}', "neither a record"),
        (b'{"broker":"kis","type":"H0XXXXX0","received_at":"2025-03-14T03:00:00Z"}',
         "unknown record type"),
        (b'{"broker":"kis","type":"H0STPGM0","received_at":"2025-03-14T03:00:00Z","x":1}',
         "no field 'x'"),
        (b'{"broker":"kis","type":"H0STPGM0","received_at":"2025-03-14T03:00:00Z",'
         b'"sell_qty":"1"}', "sell_qty"),
        (b'{"broker":"kis","type":"H0STPGM0","received_at":"2025-03-14T03:00:00"}', "offset"),
        (b'{"broker":"kis","type":"H0STPGM0","item":"005930"}', "without received_at"),
        (b'{"event":"Nope"}', "unknown event"),
        (b'{"event":"Reconnected","broker":"kis"}', "missing required field"),
    ],
)  # fmt: skip
def test_bad_payloads(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_payload(payload)


def test_payload_error_is_a_value_error() -> None:
    assert issubclass(PayloadError, ValueError)
    assert not issubclass(PayloadError, msgspec.ValidationError)


def test_the_former_module_name_still_imports() -> None:
    from krfeed.sinks import codec, payload

    assert codec.decode_payload is payload.decode_payload
    assert codec.encode_with_id is payload.encode_with_id
