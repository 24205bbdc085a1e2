"""Sans-I/O codec for the Kiwoom REST API real-time WebSocket (``/api/dostk/websocket``).

Frames are JSON text discriminated by ``trnm``. :class:`KiwoomCodec` turns an inbound frame
into messages and records, and an intent (login, register, …) into the frame to send. It never
touches a socket or the event loop.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import cache, reduce
from typing import Any, Literal

import msgspec

from krfeed.protocol.messages import (
    ConditionList,
    ConditionResult,
    DecodeError,
    LayoutNotice,
    LoginResult,
    Ping,
    RegResult,
    SystemMessage,
    UnknownMessage,
    storable,
    unparsable,
)
from krfeed.protocol.text import receive_bytes
from krfeed.records.base import Record
from krfeed.schema.catalog import get_type, types
from krfeed.schema.compile import (
    explain_failure,
    kiwoom_decoder,
    kiwoom_entry_struct,
    kiwoom_fast_decoder,
)
from krfeed.schema.convert import TradingDay
from krfeed.schema.core import F

BROKER = "kiwoom"
#: Codes that mean "the token is bad or expired: get a new one and retry once".
TOKEN_ERRORS = frozenset({"8005", "8031", "8103"})
_CODE_RE = re.compile(r"CODE\s*=\s*(\d+)|\[(\d{4}):")

Item = str | Sequence[str]
KiwoomMessage = (
    Record
    | LoginResult
    | Ping
    | RegResult
    | SystemMessage
    | ConditionList
    | ConditionResult
    | UnknownMessage
    | DecodeError
    | LayoutNotice
)

_json_decode = msgspec.json.Decoder().decode
_json_encode = msgspec.json.Encoder().encode


def _dumps(obj: dict[str, Any]) -> str:
    return _json_encode(obj).decode()


def embedded_error_code(message: str) -> str | None:
    """The broker error code inside a message: ``CODE=8005`` (WebSocket) or ``[8005:`` (REST)."""
    m = _CODE_RE.search(message or "")
    if not m:
        return None
    return m.group(1) or m.group(2)


def _return_code(v: Any) -> int:
    # The spec types return_code as String, the examples send an int.
    if isinstance(v, bool):
        raise ValueError("return_code is a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v.strip())
    raise ValueError(f"return_code {v!r} is not a number")


class KiwoomCodec:
    """Kiwoom frame codec (one per connection is fine; it holds no secrets). Its only state:
    which unknown layouts it has reported (:class:`LayoutNotice`, once each)."""

    broker = BROKER

    def __init__(self) -> None:
        self._noticed: set[tuple[str, frozenset[str]]] = set()

    # ---- outbound ----

    @staticmethod
    def login(token: str) -> str:
        """The LOGIN frame; the token is raw (no "Bearer")."""
        return _dumps({"trnm": "LOGIN", "token": token})

    @staticmethod
    def register(
        blocks: Iterable[tuple[Iterable[str], Iterable[str]]],
        *,
        grp_no: str = "1",
        refresh: bool = True,
    ) -> str:
        """A REG frame with one or more ``(items, types)`` blocks.

        ``refresh=True`` ("1") keeps the group's earlier registrations; False ("0") replaces
        them. Account types 00 and 04 take the item ``""``.
        """
        data = [_block(items, types) for items, types in blocks]
        _check_grp(grp_no)
        return _dumps(
            {"trnm": "REG", "grp_no": grp_no, "refresh": "1" if refresh else "0", "data": data}
        )

    @staticmethod
    def remove(blocks: Iterable[tuple[Iterable[str], Iterable[str]]], *, grp_no: str = "1") -> str:
        """A REMOVE frame for the given ``(items, types)`` blocks of a group."""
        data = [_block(items, types) for items, types in blocks]
        _check_grp(grp_no)
        return _dumps({"trnm": "REMOVE", "grp_no": grp_no, "data": data})

    @staticmethod
    def pong(ping: Ping) -> str:
        """The reply to a PING: the same frame, unchanged."""
        return ping.raw

    @staticmethod
    def condition_list() -> str:
        return _dumps({"trnm": "CNSRLST"})

    @staticmethod
    def condition_request(
        seq: str,
        *,
        realtime: bool = True,
        stex_tp: str = "K",
        cont_yn: str = "N",
        next_key: str = "",
    ) -> str:
        """CNSRREQ: a one-off search (``realtime=False``, paged) or a real-time one (type 02)."""
        msg: dict[str, Any] = {
            "trnm": "CNSRREQ",
            "seq": seq,
            "search_type": "1" if realtime else "0",
            "stex_tp": stex_tp,
        }
        if not realtime:
            msg["cont_yn"] = cont_yn
            msg["next_key"] = next_key
        return _dumps(msg)

    @staticmethod
    def condition_clear(seq: str) -> str:
        return _dumps({"trnm": "CNSRCLR", "seq": seq})

    # ---- inbound ----

    def receive(
        self, frame: str | bytes, received_at: datetime | None = None
    ) -> list[KiwoomMessage]:
        """Decode one inbound frame. Never raises: bad input becomes :class:`DecodeError`."""
        if received_at is None:
            received_at = datetime.now(UTC)
        if type(frame) is str:
            text = frame
        elif isinstance(frame, bytes | bytearray | memoryview):
            return receive_bytes(self.receive, bytes(frame), received_at)
        else:
            text = frame
        fast = _real_fast(text, received_at)
        if fast is not None:
            return fast
        try:
            msg = _json_decode(text)
        except msgspec.DecodeError as e:
            return [self._err(text, f"frame is not valid JSON ({e})", received_at)]
        except Exception as e:
            return [self._err(text, f"frame could not be parsed: {unparsable(e)}", received_at)]
        if not isinstance(msg, dict):
            return [self._err(text, "frame is JSON but not an object", received_at)]
        trnm = msg.get("trnm")
        try:
            if trnm == "REAL":
                return self._real(text, msg, received_at)
            if trnm == "PING":
                return [Ping(broker=BROKER, raw=text)]
            if trnm == "LOGIN":
                rc = _return_code(msg.get("return_code", 0))
                rmsg = str(msg.get("return_msg") or "")
                return [
                    LoginResult(
                        broker=BROKER,
                        ok=rc == 0,
                        return_code=rc,
                        message=rmsg,
                        error_code=embedded_error_code(rmsg) if rc != 0 else None,
                    )
                ]
            if trnm in ("REG", "REMOVE"):
                rc = _return_code(msg.get("return_code", 0))
                return [
                    RegResult(
                        broker=BROKER,
                        trnm=trnm,
                        ok=rc == 0,
                        return_code=rc,
                        message=str(msg.get("return_msg") or ""),
                    )
                ]
            if trnm == "SYSTEM":
                return [
                    SystemMessage(
                        broker=BROKER,
                        code=str(msg.get("code") or ""),
                        message=str(msg.get("message") or ""),
                    )
                ]
            if trnm == "CNSRLST":
                rc = _return_code(msg.get("return_code", 0))
                conds = [(str(x[0]).strip(), str(x[1])) for x in (msg.get("data") or [])]
                return [
                    ConditionList(
                        broker=BROKER,
                        ok=rc == 0,
                        return_code=rc,
                        message=str(msg.get("return_msg") or ""),
                        conditions=conds,
                    )
                ]
            if trnm in ("CNSRREQ", "CNSRCLR"):
                rc = _return_code(msg.get("return_code", 0))
                return [
                    ConditionResult(
                        broker=BROKER,
                        trnm=trnm,
                        ok=rc == 0,
                        return_code=rc,
                        message=str(msg.get("return_msg") or ""),
                        seq=str(msg.get("seq") or "").strip(),
                        cont_yn=str(msg.get("cont_yn") or ""),
                        next_key=str(msg.get("next_key") or ""),
                        data=msg.get("data"),
                    )
                ]
        except (ValueError, TypeError, IndexError, KeyError) as e:
            return [self._err(text, f"malformed {trnm} frame: {e}", received_at)]
        if trnm is None:
            return [self._err(text, "frame has no 'trnm'", received_at)]
        return [UnknownMessage(broker=BROKER, raw=text, what=str(trnm))]

    def _real(self, text: str, msg: dict[str, Any], received_at: datetime) -> list[KiwoomMessage]:
        data = msg.get("data")
        if not isinstance(data, list):
            return [self._err(text, "REAL frame has no 'data' list", received_at)]
        day = TradingDay(received_at)
        out: list[KiwoomMessage] = []
        for n, entry in enumerate(data):
            if not isinstance(entry, dict):
                out.append(self._err(text, f"REAL data[{n}] is not an object", received_at))
                continue
            typ = entry.get("type")
            values = entry.get("values")
            if not isinstance(typ, str):
                out.append(self._err(text, f"REAL data[{n}] has no 'type'", received_at))
                continue
            if not isinstance(values, dict):
                out.append(
                    self._err(text, f"REAL data[{n}] has no 'values' object", received_at, typ)
                )
                continue
            item = entry.get("item")
            item = item.strip() if isinstance(item, str) else ""
            # exact wire codes only: get_type() also accepts constants and class names
            if typ not in types(BROKER):
                out.append(
                    self._err(
                        text, f"REAL data[{n}]: unknown real-time type {typ!r}", received_at, typ
                    )
                )
                continue
            dec = kiwoom_decoder(typ)
            try:
                rec = dec(values, item, received_at, day)
            except Exception:
                why = explain_failure(get_type(BROKER, typ), _value_of(values), day)
                out.append(self._err(text, f"REAL data[{n}] type {typ}: {why}", received_at, typ))
                continue
            known = _wires(typ)
            unknown = [k for k in values if k not in known]
            if unknown:
                extra = {
                    k: v if isinstance(v, str) else _json_encode(v).decode()
                    for k, v in ((k, values[k]) for k in unknown)
                }
                rec = msgspec.structs.replace(rec, extra=extra)
                seen = (typ, frozenset(unknown))
                if seen not in self._noticed:
                    self._noticed.add(seen)
                    out.append(
                        LayoutNotice(
                            broker=BROKER,
                            type=typ,
                            fields=len(values),
                            known=(len(known),),
                            extra=len(unknown),
                            unknown=tuple(sorted(unknown)),
                            received_at=received_at,
                        )
                    )
            out.append(rec)
        return out

    @staticmethod
    def _err(raw: str, reason: str, received_at: datetime, typ: str = "") -> DecodeError:
        return DecodeError(
            broker=BROKER, raw=storable(raw), reason=reason, received_at=received_at, type=typ
        )


def _real_decoder() -> Callable[[str | bytes], Any]:
    """Decodes a REAL frame straight into typed entries (one Struct per type, tagged by
    ``type``), whose values are all strings: what the fast decoders take."""
    entries = [kiwoom_entry_struct(code) for code in types(BROKER)]
    real = msgspec.defstruct(
        "Real",
        [("trnm", Literal["REAL"]), ("data", list[reduce(operator.or_, entries)])],  # type: ignore[misc]
        gc=False,
    )
    return msgspec.json.Decoder(real).decode


_decode_real: Callable[[str | bytes], Any] | None = None
# entry Struct -> its fast decoder, without and with the per-value check for "_"
_fast_of: dict[type, Callable[[Any, str, datetime, TradingDay], Record]] = {}
_checked_of: dict[type, Callable[[Any, str, datetime, TradingDay], Record]] = {}


def _real_fast(text: str, received_at: datetime) -> list[KiwoomMessage] | None:
    """The records of a well-formed REAL frame, or None: anything else (another ``trnm``, an
    unknown type, a value that is not a string, a bad field) takes the exact path."""
    global _decode_real
    if _decode_real is None:
        _decode_real = _real_decoder()
    try:
        msg = _decode_real(text)
    except Exception:  # not a plain REAL frame (ValidationError), too deep, lone surrogates
        return None
    day = TradingDay(received_at)
    out: list[KiwoomMessage] = []
    # int() accepts "1_000" (to_int() does not): frames with a "_" anywhere (an item such as
    # 005930_AL) or an escape (\u005f is "_") check every integer for it. (One character is
    # searched for: in a str with Korean text, looking for "\\u" costs 20 times more.)
    checked = "_" in text or "\\" in text
    decoders = _checked_of if checked else _fast_of
    try:
        for e in msg.data:
            dec = decoders.get(type(e))
            if dec is None:
                tag = e.__struct_config__.tag
                dec = decoders[type(e)] = kiwoom_fast_decoder(tag, checked)
            out.append(dec(e.values, e.item.strip(), received_at, day))
    except Exception:
        return None
    return out


@cache
def _wires(code: str) -> frozenset[str]:
    """The FIDs declared for a type."""
    return frozenset(f.wire for f in get_type(BROKER, code).fields)


def _value_of(values: dict[str, Any]) -> Callable[[int, F], Any]:
    return lambda _i, f: values.get(f.wire)


def _block(items: Iterable[str] | str, types: Iterable[str] | str) -> dict[str, list[str]]:
    it = [items] if isinstance(items, str) else list(items)
    ty = [types] if isinstance(types, str) else list(types)
    if not ty:
        raise ValueError("a REG/REMOVE block needs at least one type")
    for t in ty:
        get_type(BROKER, t)  # raises UnknownType with the list of known types
    return {"item": it or [""], "type": ty}


def _check_grp(grp_no: str) -> None:
    if not grp_no or len(grp_no) > 4:
        raise ValueError(f"grp_no must be 1 to 4 characters, got {grp_no!r}")
