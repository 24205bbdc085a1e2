"""Kiwoom Securities (REST API): config, token, session adapter, placement, REST client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from krfeed.brokers.kiwoom.config import Kiwoom
from krfeed.brokers.kiwoom.placement import plan
from krfeed.brokers.kiwoom.session import KiwoomSession
from krfeed.brokers.registry import AccountAPIRequest, BrokerAdapter

if TYPE_CHECKING:
    from krfeed.brokers.kiwoom.rest import KiwoomAccountAPI


def account_api(req: AccountAPIRequest) -> KiwoomAccountAPI:
    """The REST client reconciliation reads this session's orders with."""
    from krfeed.brokers.kiwoom.rest import KIWOOM_RATE, KiwoomAccountAPI

    session = cast(KiwoomSession, req.session)
    return KiwoomAccountAPI(
        req.http,
        session.config.rest_url,
        session.token,
        req.limiter(req.rate or KIWOOM_RATE),
        timeout=req.timeout,
        max_pages=req.max_pages,
    )


ADAPTER = BrokerAdapter(
    name="kiwoom",
    config=Kiwoom,
    session=KiwoomSession,
    plan=plan,
    account_api=account_api,
)

__all__: list[Any] = ["ADAPTER", "Kiwoom", "KiwoomSession"]
