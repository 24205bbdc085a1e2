"""What the per-broker modules (:mod:`krfeed.sim.kiwoom`, :mod:`krfeed.sim.kis`) use of the
simulator they are registered on: :class:`SimHost`, met by :class:`~krfeed.sim.server.Simulator`.
The broker modules import this, never the server, so the server registers them and nothing
imports it back."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Protocol

from krfeed.records.base import Record
from krfeed.sim.conditions import ConditionBook
from krfeed.sim.connections import Conn, ConnHost, Out, Token
from krfeed.sim.faults import FaultState
from krfeed.sim.market import Market, Phase
from krfeed.sim.orders import OrderEngine


class SimHost(ConnHost, Protocol):
    """The simulator's state and services a broker's handlers work with."""

    credentials: dict[str, str]
    market: Market
    engine: OrderEngine
    faults: FaultState
    condition_book: ConditionBook
    conns: dict[int, Conn]
    tokens: dict[str, Token]
    kiwoom_sessions: dict[str, Conn]
    kis_sessions: dict[str, Conn]
    logins: dict[str, Counter[str]]

    def issue(self, kind: str, appkey: str) -> Token: ...

    def check_token(self, kind: str, value: object) -> Token | None: ...

    def random_chars(self, n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyz") -> str: ...

    def kis_fields(self, rec: Record) -> list[str]: ...

    def market_status_values(self, phase: Phase, now: datetime) -> dict[str, str]: ...

    def kiwoom_real(self, entries: list[tuple[str, str, Any]], kind: str = "data") -> Out: ...
