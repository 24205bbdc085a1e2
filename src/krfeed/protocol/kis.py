"""Sans-I/O codec for the KIS Open API real-time WebSocket.

Control frames are JSON (subscribe replies, PINGPONG); data frames are
``<enc>|<TR_ID>|<NNN>|<payload>`` with NNN records of F ``^``-separated fields each, AES-256-CBC
encrypted (base64) for execution notices. :class:`KISCodec` keeps the key/iv that each TR's
SUBSCRIBE SUCCESS reply carries; it never touches a socket or the event loop.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from krfeed.protocol.messages import (
    ControlReply,
    DecodeError,
    LayoutNotice,
    Ping,
    UnknownMessage,
    storable,
    unparsable,
)
from krfeed.protocol.text import receive_bytes
from krfeed.records.base import Record
from krfeed.schema.catalog import types
from krfeed.schema.compile import (
    KISFrameDecoder,
    explain_failure,
    kis_decoder,
    kis_frame_decoder,
    layout_view,
)
from krfeed.schema.convert import TradingDay
from krfeed.schema.core import F, RealtimeType

BROKER = "kis"
KISMessage = Record | ControlReply | Ping | UnknownMessage | DecodeError | LayoutNotice

#: msg_cd -> meaning (KIS control replies).
MSG_CODES: dict[str, str] = {
    "OPSP0000": "SUBSCRIBE SUCCESS",
    "OPSP0001": "UNSUBSCRIBE SUCCESS",
    "OPSP0002": "ALREADY IN SUBSCRIBE",
    "OPSP0003": "UNSUBSCRIBE ERROR (not found)",
    "OPSP0007": "SUBSCRIBE INTERNAL ERROR",
    "OPSP0008": "MAX SUBSCRIBE OVER",
    "OPSP0009": "SUBSCRIBE ERROR : mci send failed",
    "OPSP0011": "invalid approval(appkey) : NOT FOUND",
    "OPSP8991": "SUBSCRIBE ERROR : invalid tr_id",
    "OPSP8992": "SUBSCRIBE ERROR : invalid tr_key",
    "OPSP8996": "ALREADY IN USE appkey",
    "OPSP8997": "JSON PARSING ERROR : invalid tr_type",
    "OPSP8998": "JSON PARSING ERROR : invalid custtype",
    "OPSP9999": "JSON PARSING ERROR : invalid json format",
}

_json_decode = msgspec.json.Decoder().decode
_json_encode = msgspec.json.Encoder().encode


class AesKey:
    """An AES-256-CBC key/iv pair from a SUBSCRIBE SUCCESS reply. Never shown in reprs."""

    __slots__ = ("_cipher", "_iv", "_key")

    def __init__(self, key: str, iv: str) -> None:
        kb, ib = key.encode(), iv.encode()
        if len(kb) != 32:
            raise ValueError(f"AES-256 key must be 32 characters, got {len(kb)}")
        if len(ib) != 16:
            raise ValueError(f"AES iv must be 16 characters, got {len(ib)}")
        self._key, self._iv = kb, ib
        self._cipher = Cipher(algorithms.AES(kb), modes.CBC(ib))

    def __repr__(self) -> str:
        return "AesKey(****)"

    def decrypt(self, payload: str) -> str:
        """base64 → AES-256-CBC → PKCS#7 unpad → UTF-8. Raises ValueError with the reason."""
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("encrypted payload is not valid base64") from None
        if not data or len(data) % 16:
            raise ValueError(f"encrypted payload is {len(data)} bytes, not a multiple of 16")
        dec = self._cipher.decryptor()
        padded = dec.update(data) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            plain = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise ValueError("bad PKCS#7 padding after decryption (wrong key/iv?)") from None
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("decrypted payload is not UTF-8 (wrong key/iv?)") from None

    def encrypt(self, text: str) -> str:
        """The inverse of :meth:`decrypt` (used by the simulator and tests)."""
        padder = padding.PKCS7(128).padder()
        data = padder.update(text.encode("utf-8")) + padder.finalize()
        enc = self._cipher.encryptor()
        return base64.b64encode(enc.update(data) + enc.finalize()).decode("ascii")


class KISCodec:
    """KIS frame codec for one connection.

    ``approval_key`` is only needed to build subscribe frames. ``key``/``iv`` (optional) decrypt
    encrypted frames of any TR whose own SUBSCRIBE SUCCESS key was not seen (captured traffic).
    """

    broker = BROKER

    def __init__(
        self,
        approval_key: str = "",
        *,
        custtype: str = "P",
        key: str | None = None,
        iv: str | None = None,
    ) -> None:
        if custtype not in ("P", "B"):
            raise ValueError("custtype must be 'P' (personal) or 'B' (corporate)")
        self._approval_key = approval_key
        self.custtype = custtype
        self._keys: dict[str, AesKey] = {}
        self._noticed: set[tuple[str, int]] = set()  # (TR, record width) said to be longer
        self._default_key = AesKey(key, iv) if key and iv else None
        if (key is None) != (iv is None):
            raise ValueError("give both key and iv, or neither")

    def __repr__(self) -> str:
        return f"KISCodec(custtype={self.custtype!r}, keys={sorted(self._keys)})"

    # ---- outbound ----

    def subscribe(self, tr_id: str, tr_key: str) -> str:
        """Register ``tr_id`` for ``tr_key`` (stock code; the HTS ID for execution notices)."""
        return self._request("1", tr_id, tr_key)

    def unsubscribe(self, tr_id: str, tr_key: str) -> str:
        return self._request("2", tr_id, tr_key)

    def _request(self, tr_type: str, tr_id: str, tr_key: str) -> str:
        if not tr_key:
            raise ValueError(f"{tr_id}: tr_key (code or HTS ID) is empty")
        return _json_encode(
            {
                "header": {
                    "approval_key": self._approval_key,
                    "custtype": self.custtype,
                    "tr_type": tr_type,
                    "content-type": "utf-8",
                },
                "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
            }
        ).decode()

    @staticmethod
    def pong(ping: Ping) -> str:
        """The reply to PINGPONG: the same text, unchanged."""
        return ping.raw

    def has_key(self, tr_id: str) -> bool:
        """Whether the SUBSCRIBE SUCCESS key/iv of ``tr_id`` was seen."""
        return tr_id in self._keys

    # ---- inbound ----

    def receive(self, frame: str | bytes, received_at: datetime | None = None) -> list[KISMessage]:
        """Decode one inbound frame. Never raises: bad input becomes :class:`DecodeError`."""
        if received_at is None:
            received_at = datetime.now(UTC)
        if type(frame) is str:
            text = frame
        elif isinstance(frame, bytes | bytearray | memoryview):
            return receive_bytes(self.receive, bytes(frame), received_at)
        else:
            text = frame
        if not text:
            return [_err(text, "empty frame", received_at)]
        c = text[0]
        if c == "0" or c == "1":
            return self._data(text, received_at)
        if c == "{":
            return self._control(text, received_at)
        return [
            _err(
                text,
                "frame is neither JSON control ('{') nor data ('0|…' or '1|…')",
                received_at,
            )
        ]

    def _control(self, text: str, received_at: datetime) -> list[KISMessage]:
        try:
            msg = _json_decode(text)
        except msgspec.DecodeError as e:
            return [_err(text, f"control frame is not valid JSON ({e})", received_at)]
        except Exception as e:
            return [_err(text, f"control frame could not be parsed: {unparsable(e)}", received_at)]
        if not isinstance(msg, dict):
            return [_err(text, "control frame is JSON but not an object", received_at)]
        header = msg.get("header")
        if not isinstance(header, dict):
            return [_err(text, "control frame has no 'header' object", received_at)]
        tr_id = str(header.get("tr_id") or "")
        if tr_id == "PINGPONG":
            return [Ping(broker=BROKER, raw=text)]
        body = msg.get("body")
        if not isinstance(body, dict):
            return [UnknownMessage(broker=BROKER, raw=text, what=tr_id or "no body")]
        output = body.get("output")
        has_key = False
        msg_cd = str(body.get("msg_cd") or "")
        if isinstance(output, dict) and output.get("key") and output.get("iv"):
            try:
                self._keys[tr_id] = AesKey(str(output["key"]), str(output["iv"]))
                has_key = True
            except ValueError as e:
                return [
                    _err(text, f"{tr_id} reply carries an unusable AES key/iv: {e}", received_at)
                ]
        return [
            ControlReply(
                broker=BROKER,
                tr_id=tr_id,
                tr_key=str(header.get("tr_key") or ""),
                rt_cd=str(body.get("rt_cd") or ""),
                msg_cd=msg_cd,
                msg1=str(body.get("msg1") or MSG_CODES.get(msg_cd, "")),
                encrypt=str(header.get("encrypt") or "N"),
                has_key=has_key,
            )
        ]

    def _data(self, text: str, received_at: datetime) -> list[KISMessage]:
        parts = text.split("|", 3)
        if len(parts) != 4:
            return [
                _err(
                    text, "data frame needs 4 '|'-separated parts: enc|TR|NNN|payload", received_at
                )
            ]
        enc, tr_id, nnn, payload = parts
        if enc not in ("0", "1"):
            return [_err(text, f"encryption flag {enc!r} is neither 0 nor 1", received_at, tr_id)]
        count = _COUNTS.get(nnn)
        if count is None:
            if not nnn.isdigit() or not nnn.isascii():
                return [_err(text, f"record count {nnn!r} is not a number", received_at, tr_id)]
            count = int(nnn)
        plan = _PLANS.get(tr_id) or _plan(tr_id)
        if plan is None:
            return [_err(text, f"unknown TR {tr_id!r}", received_at, tr_id)]
        if count == 0:
            return [
                _err(
                    text,
                    f"{tr_id}: record count is {nnn!r}: expected 1 or more",
                    received_at,
                    tr_id,
                )
            ]
        if enc == "1":
            key = self._keys.get(tr_id) or self._default_key
            if key is None:
                return [
                    _err(
                        text,
                        f"{tr_id} frame is encrypted but no key/iv is known: its SUBSCRIBE SUCCESS "
                        "reply was not seen (for captured traffic pass key and iv)",
                        received_at,
                        tr_id,
                    )
                ]
            try:
                payload = key.decrypt(payload)
            except ValueError as e:
                return [_err(text, f"{tr_id}: {e}", received_at, tr_id)]
        if "(null)" in payload:  # a literal the live service sends for an empty value
            fields = ["" if v == "(null)" else v for v in payload.split("^")]
        else:
            fields = payload.split("^")
        total = len(fields)
        if total % count:
            return [
                _err(
                    text,
                    f"{tr_id}: {total} fields do not split into {count} record(s) "
                    f"(known layouts: {_layouts(plan.layouts)} fields per record)",
                    received_at,
                    tr_id,
                )
            ]
        stride = total // count
        shape = plan.shapes.get(stride) or plan.shape(stride)
        if shape is None:
            return [
                _err(
                    text,
                    f"{tr_id}: records of {stride} field(s), fewer than the oldest known layout "
                    f"({plan.layouts[0]} fields)",
                    received_at,
                    tr_id,
                )
            ]
        width, fast = shape
        notice = None
        if stride > plan.longest and (tr_id, stride) not in self._noticed:
            self._noticed.add((tr_id, stride))
            notice = LayoutNotice(
                broker=BROKER,
                type=tr_id,
                fields=stride,
                known=plan.layouts,
                extra=stride - width,
                received_at=received_at,
            )
        day = TradingDay(received_at)
        records: list[Any] | None = None
        # int() accepts "1_000", to_int() does not: such payloads take the exact decoders
        if "_" not in payload:
            try:  # (not contextlib.suppress: it costs more than this whole path)  # noqa: SIM105
                records = fast(fields, received_at, day)
            except Exception:
                pass  # decoded again below, record by record, to say which field is bad
        if records is None:
            records = self._exact(text, tr_id, plan, fields, count, stride, width, received_at, day)
        if notice is not None:
            return [notice, *records]
        return records

    @staticmethod
    def _exact(
        text: str,
        tr_id: str,
        plan: _Plan,
        fields: list[str],
        count: int,
        stride: int,
        width: int,
        received_at: datetime,
        day: TradingDay,
    ) -> list[Any]:
        """Record by record with the exact converters: a bad record becomes a DecodeError that
        names its field; the others decode."""
        dec = kis_decoder(plan.t.code, width)
        out: list[Any] = []
        for n in range(count):
            off = n * stride
            try:
                rec = dec(fields, off, received_at, day)
            except Exception:
                why = explain_failure(layout_view(plan.t, width), _raw_at(fields, off), day)
                out.append(_err(text, f"{tr_id} record {n + 1}/{count}: {why}", received_at, tr_id))
                continue
            if stride > width:
                rec = msgspec.structs.replace(rec, extra=tuple(fields[off + width : off + stride]))
            out.append(rec)
        return out


#: "001" … "999" -> the record count (what int() makes of them, without the checks)
_COUNTS = {f"{n:03d}": n for n in range(1000)}


class _Plan:
    """How to decode one TR: its declaration, known layouts and, per record width seen on the
    wire, the layout to decode with and its fast decoder."""

    __slots__ = ("layouts", "longest", "shapes", "t")

    def __init__(self, t: RealtimeType) -> None:
        self.t = t
        self.layouts = t.layouts
        self.longest = self.layouts[-1]
        self.shapes: dict[int, tuple[int, KISFrameDecoder]] = {}

    def shape(self, stride: int) -> tuple[int, KISFrameDecoder] | None:
        """(fields to decode, fast decoder) for records of ``stride`` values; None when shorter
        than the oldest layout. Between or beyond the known layouts: the longest that fits."""
        fits = [w for w in self.layouts if w <= stride]
        if not fits:
            return None
        width = fits[-1]
        shape = self.shapes[stride] = (width, kis_frame_decoder(self.t.code, width, stride))
        return shape


#: TR id -> its plan, filled on first use.
_PLANS: dict[str, _Plan] = {}


def _plan(tr_id: str) -> _Plan | None:
    # exact TR ids only: get_type() also accepts lower case, constants and class names
    t = types(BROKER).get(tr_id)
    if t is None:
        return None
    plan = _PLANS[tr_id] = _Plan(t)
    return plan


def _layouts(layouts: tuple[int, ...]) -> str:
    return "/".join(map(str, layouts))


def _raw_at(fields: list[str], off: int) -> Callable[[int, F], str]:
    return lambda i, _f: fields[off + i]


def _err(raw: str, reason: str, received_at: datetime, typ: str = "") -> DecodeError:
    return DecodeError(
        broker=BROKER, raw=storable(raw), reason=reason, received_at=received_at, type=typ
    )


def data_frame(tr_id: str, records: list[list[str]], key: AesKey | None = None) -> str:
    """Build a data frame from records' field lists (used by the simulator and tests)."""
    payload = "^".join("^".join(r) for r in records)
    if key is not None:
        return f"1|{tr_id}|{len(records):03d}|{key.encrypt(payload)}"
    return f"0|{tr_id}|{len(records):03d}|{payload}"


def control_reply(
    tr_id: str,
    tr_key: str,
    msg_cd: str,
    *,
    rt_cd: str | None = None,
    encrypt: str = "N",
    output: dict[str, Any] | None = None,
) -> str:
    """Build a KIS control reply frame (used by the simulator and tests)."""
    body: dict[str, Any] = {
        "rt_cd": rt_cd
        if rt_cd is not None
        else ("0" if msg_cd in ("OPSP0000", "OPSP0001") else "1"),
        "msg_cd": msg_cd,
        "msg1": MSG_CODES.get(msg_cd, ""),
    }
    if output is not None:
        body["output"] = output
    return _json_encode(
        {"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": encrypt}, "body": body}
    ).decode()
