"""krfeed against python-kis's real-time parser, on the same KIS frames, in one process.

python-kis is installed only for this comparison, into its own directory (``run.py`` does it
with ``pip install --target``); it is never a krfeed dependency. This script is run in a
subprocess with that directory on ``sys.path`` and prints one JSON list.

The python-kis side is what its WebSocket client does with a data frame
(``KisWebsocketClient._handle_event``): split ``enc|TR|NNN|payload``, decrypt when needed,
``KisWebsocketResponse.parse(payload, count=NNN, response_type=...)``, without dispatching to
event handlers. The krfeed side is ``KISCodec.receive``.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import frames

from krfeed.protocol.kis import KISCodec

TRS = ("H0STCNT0", "H0STASP0", "H0STCNI0")


def _pykis() -> tuple[Callable[[str], list[Any]], str]:
    from importlib.metadata import version

    from pykis.api.websocket import WEBSOCKET_RESPONSES_MAP
    from pykis.client.messaging import KisWebsocketEncryptionKey
    from pykis.responses.websocket import KisWebsocketResponse

    key = KisWebsocketEncryptionKey(iv=frames.AES_IV.encode(), key=frames.AES_KEY.encode())

    def handle(message: str) -> list[Any]:
        encrypted, tr_id, count, body = message.split("|", 3)
        if encrypted == "1":
            body = key.decrypt(base64.b64decode(body)).decode("utf-8")
        response_type = WEBSOCKET_RESPONSES_MAP[tr_id]
        return list(KisWebsocketResponse.parse(body, count=int(count), response_type=response_type))

    return handle, version("python-kis")


def _best(fns: list[Callable[[str], object]], pool: list[str], n: int, repeats: int) -> list[float]:
    work = (pool * (n // len(pool) + 1))[:n]
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for frame in work:
                fn(frame)
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def run(n: int = 3000, repeats: int = 5) -> list[dict[str, Any]]:
    pykis, pykis_version = _pykis()
    rows = []
    for tr in TRS:
        if tr == "H0STCNI0":
            pool, codec = frames.kis_notice_frames(256)
        else:
            pool, codec = frames.kis_frames(tr, 1, 256), KISCodec()

        def krfeed(frame: str, codec: KISCodec = codec) -> object:
            return codec.receive(frame, frames.RECEIVED_AT)

        try:
            for f in pool[:20]:
                assert len(pykis(f)) == 1 and len(krfeed(f)) == 1  # type: ignore[arg-type]
        except Exception as e:  # python-kis cannot parse this TR's frames
            rows.append(
                {
                    "type": tr,
                    "error": f"python-kis {pykis_version} cannot parse it: {type(e).__name__}: {e}",
                    "pykis_version": pykis_version,
                }
            )
            continue
        ours, theirs = _best([krfeed, pykis], pool, n, repeats)
        rows.append(
            {
                "type": tr,
                "frames": n,
                "krfeed_records_per_s": round(n / ours),
                "pykis_records_per_s": round(n / theirs),
                "ratio": round(theirs / ours, 2),
                "pykis_version": pykis_version,
            }
        )
    return rows


if __name__ == "__main__":
    try:
        out: Any = run(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
    except ImportError as e:
        out = {"error": f"python-kis is not importable: {e}"}
    print(json.dumps(out))
