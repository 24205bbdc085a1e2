"""`krfeed schema` and `krfeed decode`, run as real commands in a subprocess."""

from __future__ import annotations

import ast
import base64
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SPEC_PATH = Path(__file__).parent.parent / "fixtures" / "official" / "kiwoom_api_spec_subset.json"

# H0STPGM0 response table of the seed document, in order
PGM_SEED = [
    ("MKSC_SHRN_ISCD", "유가증권단축종목코드", "code"),
    ("STCK_CNTG_HOUR", "주식체결시간", "time"),
    ("SELN_CNQN", "매도체결량", "sell_qty"),
    ("SELN_TR_PBMN", "매도거래대금", "sell_value"),
    ("SHNU_CNQN", "매수2체결량", "buy_qty"),
    ("SHNU_TR_PBMN", "매수2거래대금", "buy_value"),
    ("NTBY_CNQN", "순매수체결량", "net_buy_qty"),
    ("NTBY_TR_PBMN", "순매수거래대금", "net_buy_value"),
    ("SELN_RSQN", "매도호가잔량", "ask_residual_qty"),
    ("SHNU_RSQN", "매수호가잔량", "bid_residual_qty"),
    ("WHOL_NTBY_QTY", "전체순매수호가잔량", "total_net_bid_residual_qty"),
]

# built from the documented H0STPGM0 layout (KIS publishes no example frame)
PGM_FRAME_1_FROM_DOCUMENTED_LAYOUT = (
    "0|H0STPGM0|001|005930^093015^1000^60500000^1500^90750000^500^30250000^120000^95000^-25000"
)
PGM_FRAME_2_FROM_DOCUMENTED_LAYOUT = (
    "0|H0STPGM0|002|000660^093016^10^1000^20^2000^10^1000^5^6^7"
    "^035420^093017^0^0^3^600^3^600^0^0^-1"
)
# the 26 fields of H0STCNI0 after decryption, from the documented layout
CNI0_PLAIN_FROM_DOCUMENTED_LAYOUT = "^".join(
    [
        "hts_user01",
        "5012345601",
        "0000012345",
        "",
        "02",
        "0",
        "00",
        "0",
        "005930",
        "10",
        "73100",
        "101523",
        "0",
        "2",
        "2",
        "06010",
        "10",
        "홍길동",
        "",
        "1",
        "Y",
        "",
        "10",
        "00000000",
        "삼성전자",
        "73100",
    ]
)
AES_KEY = "iuheqrmvfxoceaxeyqgjwesozgizmmgx"
AES_IV = "d59d91fcf9fd0044"


def krfeed(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "krfeed", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def kiwoom_00_example() -> str:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    text = spec["00"]["response_example"].split("#실시간 수신", 1)[1]
    return json.dumps(ast.literal_eval(text.strip()), ensure_ascii=False)


def encrypt(plain: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(AES_KEY.encode()), modes.CBC(AES_IV.encode())).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode("ascii")


def kst_time(value: str, hhmmss: str) -> None:
    """``value`` is an ISO time in KST (+09:00) at ``hhmmss`` (the date follows the clock)."""
    t = datetime.fromisoformat(value)
    assert value.endswith("+09:00"), value
    assert t.strftime("%H%M%S") == hhmmss


# ---- krfeed schema ----


def test_schema_kis_h0stpgm0_json_lists_the_seed_fields_in_order() -> None:
    r = krfeed("schema", "kis", "H0STPGM0", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["broker"], doc["code"], doc["class"]) == ("kis", "H0STPGM0", "ProgramTrading")
    assert [(f["wire"], f["korean"], f["name"]) for f in doc["fields"]] == PGM_SEED
    assert [f["kind"] for f in doc["fields"]] == ["text", "time"] + ["int"] * 9
    assert doc["sql_table"] == "kis_program_trading"


def test_schema_table_of_one_type() -> None:
    r = krfeed("schema", "kiwoom", "00")
    assert r.returncode == 0, r.stderr
    for word in ("9201", "계좌번호", "account_no", "order_status", "enum:order_status"):
        assert word in r.stdout
    assert "SQL table (sqlite, postgresql): kiwoom_order_execution" in r.stdout


def test_schema_shows_units_other_than_won() -> None:
    r = krfeed("schema", "kiwoom", "0B", "--json")
    assert r.returncode == 0, r.stderr
    units = {f["name"]: f["unit"] for f in json.loads(r.stdout)["fields"]}
    assert units["cumulative_value"] == "백만원" and units["market_cap"] == "억원"
    assert units["current_price"] == "" and units["trade_volume"] == ""
    table = krfeed("schema", "kiwoom", "0w")
    rows = [line for line in table.stdout.splitlines() if "매수금액" in line]
    assert rows and "백만원" in rows[0], table.stdout
    assert "백만원 = millions of won" in table.stdout


def test_schema_lists_both_brokers() -> None:
    r = krfeed("schema", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    by = {(row["broker"], row["code"]): row for row in rows}
    assert {b for b, _c in by} == {"kiwoom", "kis"}
    assert len([1 for b, _c in by if b == "kiwoom"]) == 20
    assert len([1 for b, _c in by if b == "kis"]) == 26
    assert by[("kiwoom", "00")]["title"] == "주문체결"
    assert by[("kis", "H0STPGM0")]["fields"] == 11
    table = krfeed("schema")
    assert table.returncode == 0, table.stderr
    assert "kiwoom" in table.stdout and "kis" in table.stdout and "H0STCNI0" in table.stdout


def test_schema_unknown_type_exits_2_with_one_line() -> None:
    r = krfeed("schema", "kis", "NOPE")
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("krfeed: kis has no real-time type 'NOPE'; known: H0STPGM0")


def test_schema_unknown_broker_exits_2() -> None:
    r = krfeed("schema", "nobroker")
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["krfeed: unknown broker 'nobroker': use one of kiwoom, kis"]


# ---- krfeed decode ----


def test_decode_kiwoom_00_example() -> None:
    r = krfeed("decode", "kiwoom", stdin=kiwoom_00_example() + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    (rec,) = json_lines(r.stdout)
    assert (rec["broker"], rec["type"], rec["item"]) == ("kiwoom", "00", "005930")
    datetime.fromisoformat(rec["received_at"])
    assert rec["order_qty"] == 1 and isinstance(rec["order_qty"], int)
    assert rec["order_price"] == 0
    assert rec["unfilled_qty"] == 1
    assert rec["current_price"] == 60700
    assert rec["current_price_dir"] == "up"
    assert rec["best_bid"] == 60000
    assert rec["best_bid_dir"] == "down"
    assert rec["order_status"] == "accepted"
    assert rec["side"] == "buy"
    assert rec["exchange"] == "krx"
    assert rec["sor"] is True
    assert rec["fill_price"] is None
    assert rec["loan_date"] is None
    assert rec["stock_name"] == "삼성전자"
    kst_time(rec["order_fill_time"], "094022")
    # every declared field is there
    schema = json.loads(krfeed("schema", "kiwoom", "00", "--json").stdout)
    names = {f["name"] for f in schema["fields"]}
    assert names <= set(rec)


def test_decode_kis_h0stpgm0_frames_from_a_file(tmp_path: Path) -> None:
    src = tmp_path / "frames.txt"
    src.write_text(
        PGM_FRAME_1_FROM_DOCUMENTED_LAYOUT + "\n\n" + PGM_FRAME_2_FROM_DOCUMENTED_LAYOUT + "\r\n",
        encoding="utf-8",
    )
    r = krfeed("decode", "kis", str(src))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    recs = json_lines(r.stdout)
    assert [(x["broker"], x["type"], x["item"]) for x in recs] == [
        ("kis", "H0STPGM0", "005930"),
        ("kis", "H0STPGM0", "000660"),
        ("kis", "H0STPGM0", "035420"),
    ]
    first = recs[0]
    assert {k: first[k] for k in [name for _w, _k, name in PGM_SEED if name != "time"]} == {
        "code": "005930",
        "sell_qty": 1000,
        "sell_value": 60500000,
        "buy_qty": 1500,
        "buy_value": 90750000,
        "net_buy_qty": 500,
        "net_buy_value": 30250000,
        "ask_residual_qty": 120000,
        "bid_residual_qty": 95000,
        "total_net_bid_residual_qty": -25000,
    }
    kst_time(first["time"], "093015")
    assert recs[2]["total_net_bid_residual_qty"] == -1
    kst_time(recs[2]["time"], "093017")


def test_decode_malformed_frame_goes_to_stderr_exit_0() -> None:
    bad = "0|H0STPGM0|002|005930^093015"
    r = krfeed("decode", "kis", stdin=f"{PGM_FRAME_1_FROM_DOCUMENTED_LAYOUT}\n{bad}\n")
    assert r.returncode == 0
    assert [x["item"] for x in json_lines(r.stdout)] == ["005930"]
    (err,) = json_lines(r.stderr)
    assert err["event"] == "DecodeError"
    assert (err["broker"], err["raw"], err["type"]) == ("kis", bad, "H0STPGM0")
    assert err["reason"] == (
        "H0STPGM0: records of 1 field(s), fewer than the oldest known layout (11 fields)"
    )


def test_decode_strict_exits_1_on_a_decode_error() -> None:
    r = krfeed("decode", "kiwoom", "--strict", stdin=kiwoom_00_example() + "\nnot json\n")
    assert r.returncode == 1
    assert [x["type"] for x in json_lines(r.stdout)] == ["00"]
    (err,) = json_lines(r.stderr)
    assert err["event"] == "DecodeError"
    assert err["raw"] == "not json"
    assert err["reason"].startswith("frame is not valid JSON")


def test_decode_strict_exits_0_when_all_frames_decode() -> None:
    r = krfeed("decode", "kis", "--strict", stdin=PGM_FRAME_1_FROM_DOCUMENTED_LAYOUT + "\n")
    assert r.returncode == 0, r.stderr


def test_decode_encrypted_cni0_with_key_and_iv() -> None:
    frame = "1|H0STCNI0|001|" + encrypt(CNI0_PLAIN_FROM_DOCUMENTED_LAYOUT)
    r = krfeed("decode", "kis", "--key", AES_KEY, "--iv", AES_IV, stdin=frame + "\n")
    assert r.returncode == 0, r.stderr
    (rec,) = json_lines(r.stdout)
    assert (rec["type"], rec["item"], rec["customer_id"]) == (
        "H0STCNI0",
        "hts_user01",
        "hts_user01",
    )
    assert rec["side"] == "buy"
    assert rec["correction"] == "normal"
    assert rec["notice_kind"] == "fill"
    assert rec["rejected"] is False
    assert rec["fill_qty"] == 10
    assert rec["fill_price"] == 73100
    assert rec["order_price"] == 73100
    assert rec["account_name"] == "홍길동"
    assert rec["stock_name"] == "삼성전자"
    assert rec["credit_loan_date"] is None
    assert rec["popup"] is True
    kst_time(rec["time"], "101523")
    # without the key the same frame is a DecodeError that says what to do
    r = krfeed("decode", "kis", stdin=frame + "\n")
    assert r.returncode == 0
    assert r.stdout == ""
    (err,) = json_lines(r.stderr)
    assert "pass key and iv" in err["reason"]


def test_decode_needs_both_key_and_iv() -> None:
    r = krfeed("decode", "kis", "--key", AES_KEY, stdin="")
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["krfeed: give both --key and --iv, or neither"]


def test_decode_kiwoom_decimals_are_json_numbers() -> None:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    text = spec["0B"]["response_example"].split("#실시간 수신", 1)[1]
    frame = json.dumps(ast.literal_eval(text.strip()), ensure_ascii=False)
    r = krfeed("decode", "kiwoom", stdin=frame + "\n")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert '"change_rate":-0.24,' in line  # a number, not the string "-0.24"
    (rec,) = json_lines(line)
    assert rec["trade_volume"] == 82
    assert rec["trade_volume_side"] == "buy"
    assert rec["market_session"] == "regular"
    assert rec["trade_value_change"] == -22041267850
    kst_time(rec["trade_time"], "165208")


def _captured(name: str) -> str:
    path = Path(__file__).resolve().parent.parent / "fixtures" / "captured" / "kis_frames.json"
    (frame,) = [
        x["frame"] for x in json.loads(path.read_text(encoding="utf-8")) if x["name"] == name
    ]
    return str(frame)


def test_decode_date_puts_a_2023_capture_on_2023() -> None:
    # H0STCNT0 captured on 2023-03-24 (gobenpark/kinvest-go): its times are on its business date
    # with or without --date; H0STPGM0 (KIS's example) carries no date: --date places it.
    cnt = _captured("kis_h0stcnt0_46_kinvest_go_20230324")
    pgm = _captured("kis_h0stpgm0_official_example")
    r = krfeed("decode", "kis", "--date", "20230324", stdin=cnt + "\n" + pgm + "\n")
    assert r.returncode == 0, r.stderr
    trade, program = json_lines(r.stdout)
    assert trade["time"] == "2023-03-24T11:26:16+09:00"
    assert trade["business_date"] == "2023-03-24"
    assert program["time"] == "2023-03-24T09:22:37+09:00"
    r = krfeed("decode", "kis", stdin=cnt + "\n")
    assert json_lines(r.stdout)[0]["time"] == "2023-03-24T11:26:16+09:00"


def test_decode_bad_date_is_one_sentence() -> None:
    r = krfeed("decode", "kis", "--date", "2023-03-24", stdin="")
    assert r.returncode == 2
    assert "'2023-03-24' is not a date as YYYYMMDD" in r.stderr
    assert "Traceback" not in r.stderr


def test_decode_reports_a_longer_layout_once() -> None:
    frame = _captured("kis_h0stcnt0_50_built_unknown_trailing")
    r = krfeed("decode", "kis", stdin=f"{frame}\n{frame}\n")
    assert r.returncode == 0
    assert [x["extra"] for x in json_lines(r.stdout)] == [["X1", "X2", "X3"]] * 2
    assert r.stderr.count("records carry 50 fields") == 1
