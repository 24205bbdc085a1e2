"""Kiwoom: credentials, endpoints (real / mock / simulator) and limits; the type constants
(``Kiwoom.ORDER_EXECUTION`` …) come from the catalog."""

from __future__ import annotations

from pathlib import Path

from krfeed.brokers.base import mask_key, sim_appkey, sim_secret, ws_from_http
from krfeed.logs import register_secret
from krfeed.records.kiwoom import KiwoomTypes


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
            ws_from_http(rest_url, "/api/dostk/websocket")
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
        return (
            f"Kiwoom(appkey={mask_key(self.appkey)}, mock={self.mock}, rest_url={self.rest_url!r})"
        )
