"""Where KIS registrations go: execution notices once per distinct HTS ID, market data spread
over the app keys (at most ``max_registrations``, 41, each; the emptiest first), an item
already registered staying where it is."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from krfeed.engine import Subscription
from krfeed.errors import SubscriptionError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from krfeed.brokers.kis.session import KISSession
    from krfeed.brokers.registry import Plan, PlanRequest
    from krfeed.engine import Session
    from krfeed.schema.core import RealtimeType


def plan(req: PlanRequest) -> Plan:
    """Spread ``req.items`` of ``req.type`` over the KIS sessions."""
    rt = req.type
    sessions = cast("Sequence[KISSession]", req.sessions)
    if rt.real_only and any(s.config.mock for s in sessions):
        raise SubscriptionError(
            f"{rt.code} ({rt.title}) is not offered by the KIS mock server (모의투자 미지원)"
        )
    if rt.account:
        return _plan_notices(rt, sessions)
    if codes_bad := [c for c in req.items if not c]:
        raise SubscriptionError(f"{rt.code}: empty code in {codes_bad!r}")
    code = rt.code
    planned: dict[Session, list[Subscription]] = {}
    room = {s: s.capacity_left() for s in sessions}
    # Items already registered somewhere stay where they are.
    todo = []
    for it in req.items:
        owner = req.owner(code, it)
        if owner is not None:
            planned.setdefault(owner, []).append(Subscription("kis", code, it))
        else:
            todo.append(it)
    if len(todo) > sum(max(0, r) for r in room.values()):
        total = sum(s.config.max_registrations for s in sessions)
        raise SubscriptionError(
            f"no room for {len(todo)} more {code} registration(s): "
            f"{len(sessions)} KIS app key(s) hold at most {total} "
            f"({sessions[0].config.max_registrations} each); add another KIS(...) app key"
        )
    for it in todo:
        s = max(room, key=lambda x: room[x])  # spread: the emptiest session
        room[s] -= 1
        planned.setdefault(s, []).append(Subscription("kis", code, it))
    return planned


def _plan_notices(rt: RealtimeType, sessions: Sequence[KISSession]) -> Plan:
    """Execution notices: tr_key is the HTS ID; one registration per distinct HTS ID."""
    planned: dict[Session, list[Subscription]] = {}
    seen: set[str] = set()
    for s in sessions:
        hts = s.config.hts_id
        if not hts or hts in seen:
            continue
        seen.add(hts)
        tr = rt.mock_tr if (s.config.mock and rt.mock_tr) else rt.code
        if s.capacity_left() < 1:
            raise SubscriptionError(f"no room for {tr} on {s.name} (limit reached)")
        planned.setdefault(s, []).append(Subscription("kis", tr, hts, True))
    if not planned:
        raise SubscriptionError(f"{rt.code} needs an HTS ID: pass KIS(..., hts_id='your HTS ID')")
    return planned
