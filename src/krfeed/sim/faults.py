"""Fault injection: what can be done to connections and logins, and malformed frames.

A fault request is ``{"action": …, "broker": "kiwoom"|"kis"|None, "appkey": …|None, …}``;
see :data:`ACTIONS` for the parameters of each action. Connection faults (drop, close, silence,
half_open, malformed, invalid_utf8, swallow_replies) apply to the matching connections open at
the time; the others (delay handshakes, refuse logins, expire tokens) change how the simulator
answers from then on; an outage does both.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from krfeed.protocol.text import CP949, REPLACED, frame_text
from krfeed.schema.catalog import types

#: action -> {parameter: default}
ACTIONS: dict[str, dict[str, Any]] = {
    "drop": {},  # abort the TCP connection (no close frame)
    "close": {"code": 1000, "reason": ""},  # clean WebSocket close
    "silence": {"seconds": 5.0},  # data stops, heartbeats go on
    # nothing sent, nothing read, then the socket is aborted; hold_session: a close frame from
    # the client does not free the appkey either (a reconnect meets OPSP8996 meanwhile)
    "half_open": {"seconds": 5.0, "hold_session": False},
    "malformed": {"count": 1, "rate": 0.0, "seconds": 0.0},  # next N (or a share) of data frames
    # next N (or a share) of data frames as text frames that are not valid UTF-8, in turn:
    # CP949 text, a stray byte in a text value, undecodable (see invalid_utf8_frame)
    "invalid_utf8": {"count": 3, "rate": 0.0, "seconds": 0.0},
    "delay_handshake": {"seconds": 2.0, "count": 1},  # the next N WebSocket handshakes
    "refuse_logins": {"seconds": 5.0},  # Kiwoom LOGIN / KIS approval+subscribe fail
    "expire_tokens": {},  # every issued token / approval key is invalid from now on
    # the WebSocket service down: open connections aborted, new handshakes answered HTTP 503
    # for N seconds (per broker; REST stays up, as it runs on other hosts)
    "outage": {"seconds": 5.0},
    # the replies to the next N requests of kind op (subscribe: Kiwoom REG / KIS tr_type 1,
    # unsubscribe: REMOVE / tr_type 2, any) are not sent; the requests still take effect
    "swallow_replies": {"count": 1, "op": "subscribe"},
}
#: The kinds of request whose replies ``swallow_replies`` can swallow.
REPLY_OPS = ("subscribe", "unsubscribe", "any")
BROKER_NAMES = ("kiwoom", "kis")


@dataclass
class Fault:
    action: str
    broker: str | None
    appkey: str | None
    params: dict[str, Any]

    def matches(self, broker: str, appkey: str | None) -> bool:
        if self.broker is not None and self.broker != broker:
            return False
        return self.appkey is None or self.appkey == appkey

    def num(self, name: str) -> float:
        return float(self.params[name])


def parse_fault(action: str, params: dict[str, Any]) -> Fault:
    """Validate a fault request; raises ValueError with a message for the caller."""
    if action not in ACTIONS:
        raise ValueError(f"unknown fault action {action!r}; known: {', '.join(ACTIONS)}")
    params = dict(params)
    broker = params.pop("broker", None)
    appkey = params.pop("appkey", None)
    if broker is not None and broker not in BROKER_NAMES:
        raise ValueError(f"broker must be one of {', '.join(BROKER_NAMES)} or null")
    out = dict(ACTIONS[action])
    for k, v in params.items():
        if k not in out:
            raise ValueError(f"{action} takes no parameter {k!r} (takes: {', '.join(out) or '-'})")
        default = out[k]
        try:
            if isinstance(default, bool):
                out[k] = (
                    v.strip().lower() in ("1", "true", "yes", "y")
                    if isinstance(v, str)
                    else bool(v)
                )
            elif isinstance(default, int):
                out[k] = int(v)
            elif isinstance(default, float):
                out[k] = float(v)
            else:
                out[k] = str(v)
        except (TypeError, ValueError):
            raise ValueError(f"{action}: {k} must be a number, got {v!r}") from None
        if isinstance(out[k], int | float) and out[k] < 0:
            raise ValueError(f"{action}: {k} must not be negative")
    if action == "close":
        code = out["code"]
        if not (1000 <= code <= 4999) or code in (1004, 1005, 1006, 1015):
            raise ValueError(f"close: {code} is not a close code a server may send")
    if action == "swallow_replies" and out["op"] not in REPLY_OPS:
        raise ValueError(f"swallow_replies: op must be one of {', '.join(REPLY_OPS)}")
    if action in ("malformed", "invalid_utf8") and "count" not in params and out["rate"] > 0:
        out["count"] = 0
    return Fault(action, broker, str(appkey) if appkey is not None else None, out)


@dataclass
class FaultState:
    """Simulator-wide fault state: refused logins, pending handshake delays, counters."""

    counts: Counter[str] = field(default_factory=Counter)
    refusals: list[tuple[float, Fault]] = field(default_factory=list)
    handshake_delays: list[list[Any]] = field(default_factory=list)  # [remaining, Fault]
    outages: list[tuple[float, Fault]] = field(default_factory=list)

    def down(self, broker: str) -> bool:
        """An ``outage`` of ``broker``'s WebSocket service is under way."""
        now = time.monotonic()
        self.outages = [(until, f) for until, f in self.outages if until > now]
        return any(f.broker in (None, broker) for _, f in self.outages)

    def refusing(self, broker: str, appkey: str | None) -> bool:
        now = time.monotonic()
        self.refusals = [(until, f) for until, f in self.refusals if until > now]
        return any(f.matches(broker, appkey) for _, f in self.refusals)

    def handshake_delay(self, broker: str) -> float:
        for entry in self.handshake_delays:
            remaining, f = entry
            if remaining > 0 and f.matches(broker, None):
                entry[0] = remaining - 1
                self.handshake_delays = [e for e in self.handshake_delays if e[0] > 0]
                return float(f.num("seconds"))
        return 0.0


# ---- malformed frames ----


def malformed_kiwoom(n: int, good: str) -> str:
    """The n-th kind of broken Kiwoom frame (each decodes to a DecodeError)."""
    kinds = (
        lambda: good[: max(1, len(good) // 2)],  # truncated
        lambda: '{"trnm": REAL, "data": [}',  # invalid JSON
        lambda: (
            '{"trnm":"REAL","data":[{"type":"Z9","name":"?","item":"005930",'
            '"values":{"10":"+100"}}]}'
        ),  # unknown type
        lambda: (
            '{"trnm":"REAL","data":[{"type":"0B","name":"주식체결","item":"005930",'
            '"values":{"20":"256199","10":"12a4"}}]}'
        ),  # bad values
        lambda: '{"trnm":"REAL","data":{"type":"0B"}}',  # data is not a list
        lambda: '{"data":[]}',  # no trnm
    )
    return kinds[n % len(kinds)]()


def malformed_kis(n: int, good: str) -> str:
    """The n-th kind of broken KIS frame (each decodes to a DecodeError)."""
    parts = good.split("|", 3)
    tr = parts[1] if len(parts) == 4 else "H0STCNT0"
    payload = parts[3] if len(parts) == 4 else "005930^090000"
    fields = payload.split("^")
    kinds = (
        lambda: good[: max(1, len(good) // 2)] if len(good) > 16 else "0|" + tr,  # truncated
        lambda: (
            f"0|{tr}|{int(parts[2]) + 1 if len(parts) == 4 and parts[2].isdigit() else 2:03d}"
            f"|{payload}"
        ),  # wrong field count for NNN
        lambda: "1|H0STCNI0|001|@@this-is-not-base64@@",  # bad base64
        lambda: '{"header":{"tr_id":"H0STCNT0","tr_key":',  # invalid JSON control frame
        lambda: f"0|H0ZZZZZ0|001|{payload}",  # unknown TR
        lambda: f"0|{tr}|0x1|{payload}",  # record count is not a number
        lambda: f"0|{tr}|001|" + "^".join(["005930", "256199", *fields[2:]]),  # bad time
    )
    return kinds[n % len(kinds)]()


# ---- frames that are not valid UTF-8 ----

#: The Korean text the ``invalid_utf8`` fault writes, CP949-encoded, into a KIS text field.
CP949_TEXT = "거래정지 해제 예정"
#: The kinds of ``invalid_utf8`` frames, in the order they are sent.
INVALID_UTF8_KINDS = ("cp949", "stray_byte", "undecodable")


def invalid_utf8_frame(n: int, broker: str, good: str) -> tuple[bytes, str]:
    """The n-th ``invalid_utf8`` variant of the data frame ``good`` and its kind.

    - ``cp949``: the frame in CP949 — a Kiwoom frame as it is (its ``name`` is Korean); a KIS
      frame with :data:`CP949_TEXT` in the first text field after the code of every record. The
      whole frame is valid CP949, so a lenient client decodes every record (and the text).
    - ``stray_byte``: UTF-8 with a stray 0xFF byte at the end of that text value (Kiwoom: of
      ``name``): the records decode, the value has a replacement character.
    - ``undecodable``: 0xFF before the frame: neither UTF-8 nor CP949, and no frame after
      replacement: a DecodeError carrying these bytes; its records are lost.

    A kind that cannot be made from ``good`` falls back to ``undecodable``.
    """
    kind = INVALID_UTF8_KINDS[n % len(INVALID_UTF8_KINDS)]
    data: bytes | None = None
    want: str | None = None
    try:
        if kind == "cp949":
            text = _kis_text(good, CP949_TEXT) if broker == "kis" else good
            data = text.encode("cp949")
            want = CP949
        elif kind == "stray_byte":
            mark = "\x00"  # stands for the stray byte until the text is encoded
            if broker == "kis":
                text = _kis_text(good, None, mark)
            elif '","item"' in good:
                text = good.replace('","item"', mark + '","item"', 1)
            else:
                raise ValueError("no name to carry the byte")
            data = text.encode("utf-8").replace(b"\x00", b"\xff")
            want = REPLACED
        if data is not None and frame_text(data)[1] != want:
            data = None  # e.g. an all-ASCII frame is valid UTF-8 also in CP949
    except (UnicodeEncodeError, ValueError):
        data = None
    if data is None:
        return b"\xff" + good.encode("utf-8"), "undecodable"
    return data, kind


def _kis_text(good: str, value: str | None, suffix: str = "") -> str:
    """``good`` with ``value`` (or the value plus ``suffix``) in the first text field after the
    code of every record; ValueError when the frame or its TR has no such field."""
    parts = good.split("|", 3)
    if len(parts) != 4 or parts[0] != "0" or not parts[2].isdigit():
        raise ValueError("not a plain KIS data frame")
    t = types("kis").get(parts[1])
    n = int(parts[2])
    fields = parts[3].split("^")
    if t is None or n < 1 or len(fields) % n:
        raise ValueError("unknown TR or record count")
    width = len(fields) // n
    idx = next((i for i, f in enumerate(t.fields) if i > 0 and f.kind == "text"), -1)
    if not 0 < idx < width:
        raise ValueError(f"{parts[1]} has no text field to carry the text")
    for r in range(n):
        i = r * width + idx
        fields[i] = (fields[i] if value is None else value) + suffix
    return "|".join([*parts[:3], "^".join(fields)])
