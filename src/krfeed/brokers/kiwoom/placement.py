"""Where Kiwoom registrations go: which session (an account type on every app key, market data
on the emptiest, an item already registered where it is) and which registration group within
it (at most ``max_items_per_group`` items each)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from krfeed.engine import Subscription
from krfeed.errors import SubscriptionError

if TYPE_CHECKING:
    from krfeed.brokers.kiwoom.config import Kiwoom
    from krfeed.brokers.registry import Plan, PlanRequest
    from krfeed.engine import Session


class _Configured(Protocol):
    """A Kiwoom session, as far as placement needs it."""

    config: Kiwoom


def plan(req: PlanRequest) -> Plan:
    """Spread ``req.items`` of ``req.type`` over the Kiwoom sessions."""
    code = req.type.code
    sessions = req.sessions
    for s in sessions:
        if cast("_Configured", s).config.mock and any(
            it.endswith(("_NX", "_AL")) for it in req.items
        ):
            raise SubscriptionError("the Kiwoom mock server serves KRX codes only")
    planned: dict[Session, list[Subscription]] = {}
    if req.type.account:  # each app key pushes its own account
        for s in sessions:
            planned[s] = [Subscription("kiwoom", code, "", True)]
        return planned
    # items already registered somewhere stay where they are (no duplicates)
    target = min(sessions, key=lambda x: x.registrations())
    for it in req.items:
        owner = req.owner(code, it) or target
        planned.setdefault(owner, []).append(Subscription("kiwoom", code, it))
    return planned


class Groups:
    """Registration groups of one session: item → group, at most ``cap`` items per group."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.items: dict[str, set[str]] = {}

    def assign(self, subs: list[Subscription]) -> None:
        """Set ``group`` of each of ``subs``: the group already holding its item, else the
        first with room, else a new one."""
        for s in subs:
            for g, items in self.items.items():
                if s.item in items:
                    s.group = g
                    break
            else:
                for g, items in self.items.items():
                    if len(items) < self.cap:
                        items.add(s.item)
                        s.group = g
                        break
                else:
                    g = str(len(self.items) + 1)
                    if len(g) > 4:
                        raise ValueError("more than 9999 Kiwoom registration groups")
                    self.items[g] = {s.item}
                    s.group = g


def blocks(subs: list[Subscription]) -> dict[str, list[tuple[list[str], list[str]]]]:
    """Per group, REG blocks: one per distinct item set, listing its types."""
    by_group: dict[str, dict[str, list[str]]] = {}
    for s in subs:
        by_group.setdefault(s.group, {}).setdefault(s.type, []).append(s.item)
    out: dict[str, list[tuple[list[str], list[str]]]] = {}
    for g, by_type in by_group.items():
        merged: dict[tuple[str, ...], list[str]] = {}
        for typ, items in by_type.items():
            merged.setdefault(tuple(items), []).append(typ)
        out[g] = [(list(items), types) for items, types in merged.items()]
    return out
