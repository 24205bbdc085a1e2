"""Tokens and approval keys (moved: the common part is :mod:`krfeed.brokers.credentials`, each
broker's issuers are in ``krfeed.brokers.<broker>.auth``); re-exported here."""

from __future__ import annotations

from krfeed.brokers.credentials import REFRESH_MARGIN, Credential, Issuer, mask, parse_kst
from krfeed.brokers.kis.auth import (
    KIS_APPROVAL_TTL,
    KIS_RETRY_LATER,
    KISAccessToken,
    KISApprovalKey,
)
from krfeed.brokers.kiwoom.auth import KIWOOM_RETRY_LATER, KiwoomToken

__all__ = [
    "KIS_APPROVAL_TTL",
    "KIS_RETRY_LATER",
    "KIWOOM_RETRY_LATER",
    "REFRESH_MARGIN",
    "Credential",
    "Issuer",
    "KISAccessToken",
    "KISApprovalKey",
    "KiwoomToken",
    "mask",
    "parse_kst",
]
