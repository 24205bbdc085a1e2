"""Broker configurations: credentials, endpoints (real / mock / simulator) and limits.

``Kiwoom`` and ``KIS`` also carry the type constants (``Kiwoom.ORDER_EXECUTION``,
``KIS.PROGRAM_TRADING`` …) generated from the catalog.
"""

from __future__ import annotations

from pathlib import Path

from krfeed.logs import register_secret
from krfeed.records.kis import KISTypes
from krfeed.records.kiwoom import KiwoomTypes

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


def _mask(s: str) -> str:
    return s[:4] + "****" if len(s) > 8 else "****"


def _ws_from_http(url: str, path: str) -> str:
    base = url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[8:]
    elif base.startswith("http://"):
        base = "ws://" + base[7:]
    return base + path


class Kiwoom(KiwoomTypes):
    """Kiwoom Securities REST API credentials and endpoints (one WebSocket per app key)."""

    broker = "kiwoom"
    REAL_REST = "https://api.kiwoom.com"
    MOCK_REST = "https://mockapi.kiwoom.com"
    REAL_WS = "wss://api.kiwoom.com:10000/api/dostk/websocket"
    MOCK_WS = "wss://mockapi.kiwoom.com:10000/api/dostk/websocket"

    def __init__(
        self,
        appkey: str,
        secretkey: str,
        *,
        mock: bool = False,
        rest_url: str | None = None,
        ws_url: str | None = None,
        token_cache: str | Path | None = None,
        max_items_per_group: int = 100,
        name: str | None = None,
    ) -> None:
        if not appkey or not secretkey:
            raise ValueError("Kiwoom needs both appkey and secretkey")
        self.appkey = appkey
        self.secretkey = secretkey
        register_secret(secretkey)
        self.mock = mock
        self.rest_url = rest_url or (self.MOCK_REST if mock else self.REAL_REST)
        self.ws_url = ws_url or (
            _ws_from_http(rest_url, "/api/dostk/websocket")
            if rest_url
            else (self.MOCK_WS if mock else self.REAL_WS)
        )
        self.token_cache = Path(token_cache) if token_cache else None
        self.max_items_per_group = max_items_per_group  # UNVERIFIED limit: a setting
        self.name = name

    @classmethod
    def sim(cls, url: str, n: int = 1, **kw: object) -> Kiwoom:
        """Point at a running ``krfeed sim`` with its default credentials N."""
        return cls(sim_appkey(n), sim_secret(n), rest_url=url, **kw)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"Kiwoom(appkey={_mask(self.appkey)}, mock={self.mock}, rest_url={self.rest_url!r})"


class KIS(KISTypes):
    """Korea Investment & Securities Open API credentials and endpoints.

    ``hts_id`` is needed for execution notices (H0STCNI0/9 use it as tr_key). Give several
    ``KIS(...)`` to a Feed to follow more than ``max_registrations`` (41) items: subscriptions
    are spread over the app keys automatically.
    """

    broker = "kis"
    REAL_REST = "https://openapi.koreainvestment.com:9443"
    MOCK_REST = "https://openapivts.koreainvestment.com:29443"
    REAL_WS = "ws://ops.koreainvestment.com:21000"
    MOCK_WS = "ws://ops.koreainvestment.com:31000"

    def __init__(
        self,
        appkey: str,
        secretkey: str,
        *,
        hts_id: str | None = None,
        mock: bool = False,
        custtype: str = "P",
        rest_url: str | None = None,
        ws_url: str | None = None,
        token_cache: str | Path | None = None,
        max_registrations: int = 41,
        name: str | None = None,
    ) -> None:
        if not appkey or not secretkey:
            raise ValueError("KIS needs both appkey and secretkey")
        if custtype not in ("P", "B"):
            raise ValueError("custtype must be 'P' (personal) or 'B' (corporate)")
        self.appkey = appkey
        self.secretkey = secretkey
        register_secret(secretkey)
        self.hts_id = hts_id
        self.mock = mock
        self.custtype = custtype
        self.rest_url = rest_url or (self.MOCK_REST if mock else self.REAL_REST)
        self.ws_url = ws_url or (
            _ws_from_http(rest_url, "/tryitout")
            if rest_url
            else (self.MOCK_WS if mock else self.REAL_WS)
        )
        self.token_cache = Path(token_cache) if token_cache else None
        self.max_registrations = max_registrations
        self.name = name

    @classmethod
    def sim(cls, url: str, n: int = 1, **kw: object) -> KIS:
        """Point at a running ``krfeed sim`` with its default credentials N."""
        kw.setdefault("hts_id", f"simuser{n}")
        return cls(sim_appkey(n), sim_secret(n), rest_url=url, **kw)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (
            f"KIS(appkey={_mask(self.appkey)}, hts_id={self.hts_id!r}, mock={self.mock}, "
            f"rest_url={self.rest_url!r})"
        )


BrokerConfig = Kiwoom | KIS
