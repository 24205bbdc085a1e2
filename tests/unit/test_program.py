"""ProgramTotals (krfeed.program) across Kiwoom 0w (the official example of Kiwoom's guide)
and KIS H0STPGM0 (built from the seed's documented 11-field layout): units normalized to won."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import krfeed
from krfeed.program import ProgramFlow, ProgramTotals, normalize_program
from krfeed.records.base import Record

SPEC_PATH = Path(__file__).parent.parent / "fixtures" / "official" / "kiwoom_api_spec_subset.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
RECEIVED_AT = datetime(2025, 3, 14, 3, 0, tzinfo=UTC)


def kiwoom_0w_official() -> Record:
    text = SPEC["0w"]["response_example"]
    frame = ast.literal_eval(text.split("#실시간 수신", 1)[1].strip())
    (rec,) = krfeed.decode("kiwoom", json.dumps(frame, ensure_ascii=False), received_at=RECEIVED_AT)
    assert isinstance(rec, Record)
    return rec


# the seed's 11 fields: code, time, sell qty/amount, buy qty/amount, net qty/amount, residuals
H0STPGM0_FROM_DOCUMENTED_LAYOUT = "005930^113442^1000^60500000^9043^546200000^8043^485700000^1^2^3"


def test_kiwoom_0w_amounts_are_millions_of_won() -> None:
    p = normalize_program(kiwoom_0w_official())
    assert p is not None
    assert (p.broker, p.code, p.exchange, p.price) == ("kiwoom", "005930", "KRX", 60200)
    # 206 매수수량 8043 shares at ~60,200 won is ~484 million won: 208 = 483 is 백만원
    assert (p.buy_qty, p.sell_qty, p.net_buy_qty) == (8043, 0, 8043)
    assert (p.buy_amount, p.sell_amount, p.net_buy_amount) == (483_000_000, 0, 483_000_000)
    assert p.amount_unit == 1_000_000
    assert p.time is not None and (p.time.hour, p.time.minute) == (11, 34)


def test_kis_h0stpgm0_amounts_are_won() -> None:
    (rec,) = krfeed.decode("kis", "0|H0STPGM0|001|" + H0STPGM0_FROM_DOCUMENTED_LAYOUT)
    assert isinstance(rec, Record)
    p = normalize_program(rec)
    assert p is not None
    assert (p.broker, p.code, p.exchange, p.amount_unit) == ("kis", "005930", "KRX", 1)
    assert (p.sell_qty, p.buy_qty, p.net_buy_qty) == (1000, 9043, 8043)
    assert (p.sell_amount, p.buy_amount, p.net_buy_amount) == (60500000, 546200000, 485700000)


def test_program_flow_keeps_series_per_code() -> None:
    flow = ProgramFlow(history=2)
    (kis_rec,) = krfeed.decode("kis", "0|H0STPGM0|001|" + H0STPGM0_FROM_DOCUMENTED_LAYOUT)
    assert isinstance(kis_rec, Record)
    for rec in (kiwoom_0w_official(), kis_rec, kis_rec, kis_rec):
        assert flow.update(rec) is not None
    assert set(flow.latest) == {("kiwoom", "005930", "KRX"), ("kis", "005930", "KRX")}
    assert len(flow.series("005930", "kis")) == 2  # bounded history
    assert len(flow.series("005930")) == 3
    (other,) = krfeed.decode(
        "kiwoom",
        json.dumps(
            {
                "trnm": "REAL",
                "data": [
                    {
                        "type": "0s",
                        "item": "",
                        "values": {"215": "3", "20": "090000", "214": "000000"},
                    }
                ],
            }
        ),
    )
    assert isinstance(other, Record) and flow.update(other) is None


def test_the_former_home_and_name_still_import() -> None:
    import krfeed.orders

    assert krfeed.orders.ProgramTrading is ProgramTotals
    assert krfeed.orders.normalize_program is normalize_program
    assert krfeed.orders.ProgramFlow is ProgramFlow
