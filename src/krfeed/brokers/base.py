"""What every broker shares: the simulator's default credentials and endpoint helpers."""

from __future__ import annotations

#: The simulator's default credentials N = 1 … 8 (``.format(n=N)``), in the shapes of real keys
#: (KIS: app key 36 characters, secret 180; Kiwoom documents no lengths) and plainly not real:
#: a SIM prefix padded with zeros.
SIM_APPKEY = "SIMAPPKEY{n:02d}" + "0" * 25
SIM_SECRET = "SIMAPPSECRET{n:02d}" + "0" * 166


def sim_appkey(n: int = 1) -> str:
    """The simulator's default app key N (1 … 8)."""
    return SIM_APPKEY.format(n=n)


def sim_secret(n: int = 1) -> str:
    """The secret of :func:`sim_appkey` N."""
    return SIM_SECRET.format(n=n)


def mask_key(s: str) -> str:
    """An app key in a repr: the first 4 characters and a mask."""
    return s[:4] + "****" if len(s) > 8 else "****"


def ws_from_http(url: str, path: str) -> str:
    """The WebSocket URL at ``path`` of a REST base URL (http→ws, https→wss)."""
    base = url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[8:]
    elif base.startswith("http://"):
        base = "ws://" + base[7:]
    return base + path
