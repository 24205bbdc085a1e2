"""Fault injection: what can be done to connections and logins, and malformed frames.

A fault request is ``{"action": …, "broker": "kiwoom"|"kis"|None, "appkey": …|None, …}``;
see :data:`ACTIONS` for the parameters of each action. Connection faults (drop, close, silence,
half_open, malformed) apply to the matching connections open at the time; the others (delay
handshakes, refuse logins, expire tokens) change how the simulator answers from then on; an
outage does both.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: action -> {parameter: default}
ACTIONS: dict[str, dict[str, Any]] = {
    "drop": {},  # abort the TCP connection (no close frame)
    "close": {"code": 1000, "reason": ""},  # clean WebSocket close
    "silence": {"seconds": 5.0},  # data stops, heartbeats go on
    # nothing sent, nothing read, then the socket is aborted; hold_session: a close frame from
    # the client does not free the appkey either (a reconnect meets OPSP8996 meanwhile)
    "half_open": {"seconds": 5.0, "hold_session": False},
    "malformed": {"count": 1, "rate": 0.0, "seconds": 0.0},  # next N (or a share) of data frames
    "delay_handshake": {"seconds": 2.0, "count": 1},  # the next N WebSocket handshakes
    "refuse_logins": {"seconds": 5.0},  # Kiwoom LOGIN / KIS approval+subscribe fail
    "expire_tokens": {},  # every issued token / approval key is invalid from now on
    # the WebSocket service down: open connections aborted, new handshakes answered HTTP 503
    # for N seconds (per broker; REST stays up, as it runs on other hosts)
    "outage": {"seconds": 5.0},
}
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
    if action == "malformed" and "count" not in params and out["rate"] > 0:
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
