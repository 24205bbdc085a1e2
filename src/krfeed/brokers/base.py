"""What every broker shares: the simulator's default credentials and endpoint helpers."""

from __future__ import annotations

#: The simulator's default credentials N = 1 … 8 (``.format(n=N)``), in the shapes of real keys
#: (KIS: app key 36 characters, secret 180; Kiwoom documents no lengths) and plainly not real:
#: a SIM prefix padded with zeros.
SIM_APPKEY = "SIMAPPKEY{n:02d}" + "0" * 25
SIM_SECRET = "SIMAPPSECRET{n:02d}" + "0" * 166


def _sim_key(template: str, n: int, width: int) -> str:
    if n < 100:
        return template.format(n=n)
    # 100 and up (``krfeed sim --keys N``): a marker keeps the padded keys distinct
    return (template.split("{", 1)[0] + f"{n}K").ljust(width, "0")


def sim_appkey(n: int = 1) -> str:
    """The simulator's default app key N (1 … 8; ``krfeed sim --keys N`` serves 1 … N)."""
    return _sim_key(SIM_APPKEY, n, 36)


def sim_secret(n: int = 1) -> str:
    """The secret of :func:`sim_appkey` N."""
    return _sim_key(SIM_SECRET, n, 180)


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
