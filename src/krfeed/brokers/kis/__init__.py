"""Korea Investment & Securities (Open API): config, approval key and access token, session
adapter, placement over app keys, REST client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from krfeed.brokers.kis.auth import KISAccessToken
from krfeed.brokers.kis.config import KIS
from krfeed.brokers.kis.placement import plan
from krfeed.brokers.kis.session import KISSession
from krfeed.brokers.registry import AccountAPIRequest, BrokerAdapter

if TYPE_CHECKING:
    from krfeed.brokers.kis.rest import KISAccountAPI


def account_api(req: AccountAPIRequest) -> KISAccountAPI:
    """The REST client reconciliation reads this session's orders with (its REST access
    token is shared per app key through ``req.tokens``)."""
    from krfeed.brokers.kis.rest import KIS_MOCK_RATE, KIS_RATE, KISAccountAPI

    cfg = cast(KISSession, req.session).config
    limiter = req.limiter(req.rate or (KIS_MOCK_RATE if cfg.mock else KIS_RATE))
    tok = req.tokens.get(cfg.appkey)
    if tok is None:
        tok = KISAccessToken(req.http, cfg.rest_url, cfg.appkey, cfg.secretkey, cfg.token_cache)
        req.tokens[cfg.appkey] = tok
    return KISAccountAPI(
        req.http,
        cfg.rest_url,
        cfg.appkey,
        cfg.secretkey,
        tok,
        limiter,
        mock=cfg.mock,
        custtype=cfg.custtype,
        timeout=req.timeout,
        max_pages=req.max_pages,
    )


ADAPTER = BrokerAdapter(
    name="kis", config=KIS, session=KISSession, plan=plan, account_api=account_api
)

__all__: list[Any] = ["ADAPTER", "KIS", "KISSession"]
