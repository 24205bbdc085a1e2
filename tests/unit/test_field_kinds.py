"""One field-kind table (krfeed.schema.core.KINDS): the generated record classes, the sinks'
tables and the payload converters all agree with it for every declared field of both
catalogs."""

from __future__ import annotations

import pytest

from krfeed.schema.catalog import BROKERS, types
from krfeed.schema.compile import record_class
from krfeed.schema.core import BASE_KINDS, KINDS, F, companion
from krfeed.sinks.payload import _converters
from krfeed.sinks.tables import table_for


def test_the_table_answers_for_the_kinds_with_a_sign() -> None:
    assert F("10", "현재가", "price", "price").attrs == ("price", "price_dir")
    assert F("15", "거래량", "qty", "aggressor_qty").attrs == ("qty", "qty_side")
    assert F("30", "등락율", "rate", "decimal").attrs == ("rate",)
    assert companion("enum:side") == ""
    assert KINDS["price_decimal"].companion_type == "Direction"
    assert KINDS["aggressor_qty"].companion_type == "Side"
    assert BASE_KINDS["yn"] == "Y/N -> bool"


@pytest.mark.parametrize("broker", BROKERS)
def test_records_tables_and_payloads_follow_the_table(broker: str) -> None:
    checked = 0
    for t in types(broker).values():
        cls = record_class(broker, t.code)
        columns = {c.name: c.kind for c in table_for(broker, t.code).columns}
        converters = _converters(cls)
        for f in t.fields:
            assert f.name in converters
            if f.kind.startswith("enum:"):
                assert columns[f.name] == "text"
                continue
            k = KINDS[f.kind]
            assert columns[f.name] == k.column, (t.code, f.name)
            assert f"{k.value} | None" in cls.__annotations__[f.name], (t.code, f.name)
            if k.companion:
                extra = f.name + k.companion
                assert columns[extra] == "text"
                assert f"{k.companion_type} | None" in cls.__annotations__[extra]
                assert extra in converters
            checked += 1
    assert checked > 100
