"""KIS: credentials, endpoints (real / mock / simulator) and limits; the type constants
(``KIS.PROGRAM_TRADING`` …) come from the catalog."""

from __future__ import annotations

from pathlib import Path

from krfeed.brokers.base import mask_key, sim_appkey, sim_secret, ws_from_http
from krfeed.logs import register_secret
from krfeed.records.kis import KISTypes


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
            ws_from_http(rest_url, "/tryitout")
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
            f"KIS(appkey={mask_key(self.appkey)}, hts_id={self.hts_id!r}, mock={self.mock}, "
            f"rest_url={self.rest_url!r})"
        )
