"""One config, many collectors: ``krfeed record --shard I/N`` takes a deterministic share of the
subscriptions and of the app keys that carry them.

The plan (:func:`plan`) is computed the same way by every collector from the same config and
command line:

1. Registrations are listed in the order given (subscription by subscription, code by code,
   duplicates once), per broker.
2. Account types (KIS H0STCNI0/9, Kiwoom 00/04) are placed first, as a Feed would: on every
   Kiwoom key, and on the first KIS key of each HTS ID — among the keys of shard 1, which alone
   records them (two shards must not receive the same notices).
3. Market data is dealt round-robin over the broker's app keys, skipping keys that are full
   (KIS: ``max_registrations``, 41), so every key carries a mix of busy and quiet codes.
4. App key ``k`` (its position in the config, all brokers together, from 0) belongs to shard
   ``k mod N + 1``. A shard takes its keys that carry anything and the registrations on them.

So the shards' registrations are disjoint and together are the whole set, and no app key is
used by two shards (a second session on a KIS key is refused with OPSP8996).

Codes may be given as ``@krx``, ``@kospi``, ``@kosdaq`` (the simulator's universe, most active
first; ``@krx/500``: the first 500) or ``@FILE`` (codes, one per line; ``#`` comments; the
first word of a line counts, so ``005930 삼성전자`` works).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from krfeed.brokers import KIS, BrokerConfig
from krfeed.schema.catalog import get_type


class ShardError(ValueError):
    """A shard or code list that cannot work, in one sentence."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ShardError(f"--shard {self.index}/{self.count}: use I/N with 1 <= I <= N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ShardError(f"--shard takes I/N, like 1/2 (got {text!r})")
        return cls(int(m.group(1)), int(m.group(2)))

    def owns(self, key_index: int) -> bool:
        """Whether app key ``key_index`` (0-based, in config order) is this shard's."""
        return key_index % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def expand_codes(text: str) -> list[str]:
    """Codes of a subscription spec: ``005930,000660``, ``@krx``, ``@krx/500`` or ``@FILE``."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not part.startswith("@"):
            out.append(part)
            continue
        ref = part[1:]
        name, _, top = ref.partition("/")
        from krfeed.sim.universe import UNIVERSES, universe_codes

        if name in UNIVERSES and (not top or top.isdigit()):
            out += universe_codes(name, int(top) if top else None)
            continue
        path = Path(ref).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ShardError(
                f"cannot read the code list {ref!r}: {e.strerror or e} "
                "(use @krx, @kospi, @kosdaq, @krx/N or @FILE)"
            ) from None
        codes = [ln.split("#", 1)[0].split()[0] for ln in lines if ln.split("#", 1)[0].split()]
        if not codes:
            raise ShardError(f"the code list {ref!r} holds no codes")
        out += codes
    return out


Registration = tuple[str, str]  # (type, item); item "" for a Kiwoom account type


@dataclass
class Plan:
    """Which registrations each app key carries (index = position in the broker list)."""

    brokers: list[BrokerConfig]
    keys: list[list[Registration]] = field(default_factory=list)

    def registrations(self) -> int:
        return sum(len(k) for k in self.keys)

    def shard(self, shard: Shard) -> tuple[list[BrokerConfig], list[tuple[str, str, list[str]]]]:
        """The shard's app keys and its subscriptions as (broker, type, items), account types
        first."""
        brokers: list[BrokerConfig] = []
        wanted: dict[tuple[str, str], list[str]] = {}
        accounts: list[tuple[str, str]] = []
        for i, (b, regs) in enumerate(zip(self.brokers, self.keys, strict=True)):
            if not shard.owns(i) or not regs:
                continue
            brokers.append(b)
            for typ, item in regs:
                base = _base_type(b, typ)
                if get_type(b.broker, base).account:
                    if (b.broker, base) not in accounts:
                        accounts.append((b.broker, base))
                else:
                    wanted.setdefault((b.broker, typ), []).append(item)
        if not brokers:
            used = sum(1 for k in self.keys if k)
            raise ShardError(
                f"shard {shard} has no app key: {used} key(s) carry the subscriptions, "
                f"so use at most {used} shards"
            )
        subs: list[tuple[str, str, list[str]]] = [(br, t, []) for br, t in accounts]
        subs += [(br, t, items) for (br, t), items in wanted.items()]
        return brokers, subs


def _base_type(b: BrokerConfig, typ: str) -> str:
    # the mock server's notice TR (H0STCNI9) is declared under the real one
    return "H0STCNI0" if typ == "H0STCNI9" else typ


def plan(
    brokers: Sequence[BrokerConfig],
    subs: Sequence[tuple[str, str, Sequence[str]]],
    *,
    account_shard: Shard | None = None,
) -> Plan:
    """Place ``subs`` (broker, type, codes) on the app keys in ``brokers`` (see the module
    doc). ``account_shard``: account types go to that shard's keys only (default: shard 1 of
    the count given, or every key without one). Raises :class:`ShardError` when they do not
    fit."""
    p = Plan(list(brokers), [[] for _ in brokers])
    for name in dict.fromkeys(b.broker for b in brokers):
        idx = [i for i, b in enumerate(brokers) if b.broker == name]
        mine = [s for s in subs if s[0] == name]
        if not mine:
            continue
        room = [_capacity(brokers[i]) for i in idx]
        market: list[Registration] = []
        seen: set[Registration] = set()
        for _, typ, codes in mine:
            rt = get_type(name, typ)
            if rt.account:
                _place_account(p, brokers, idx, room, rt.code, account_shard)
                continue
            for c in codes:
                reg = (rt.code, c)
                if reg not in seen:
                    seen.add(reg)
                    market.append(reg)
        free = sum(r for r in room if r is not None) if None not in room else None
        if free is not None and len(market) > free:
            total = sum(_capacity(brokers[i]) or 0 for i in idx)
            raise ShardError(
                f"{len(market):,} {name} registrations do not fit: {len(idx)} app key(s) hold "
                f"at most {total:,} ({free:,} left after account types); add app keys"
            )
        k = 0
        for reg in market:
            while room[k] is not None and room[k] <= 0:  # type: ignore[operator]
                k = (k + 1) % len(idx)
            p.keys[idx[k]].append(reg)
            if room[k] is not None:
                room[k] -= 1  # type: ignore[operator]
            k = (k + 1) % len(idx)
    return p


def _capacity(b: BrokerConfig) -> int | None:
    return b.max_registrations if isinstance(b, KIS) else None


def _place_account(
    p: Plan,
    brokers: Sequence[BrokerConfig],
    idx: list[int],
    room: list[int | None],
    code: str,
    account_shard: Shard | None,
) -> None:
    seen_hts: set[str] = set()
    for j, i in enumerate(idx):
        if account_shard is not None and not account_shard.owns(i):
            continue
        b = brokers[i]
        if isinstance(b, KIS):
            if not b.hts_id or b.hts_id in seen_hts:
                continue
            seen_hts.add(b.hts_id)
            tr = get_type("kis", code)
            typ = tr.mock_tr if (b.mock and tr.mock_tr) else code
            item = b.hts_id
        else:
            typ, item = code, ""
        r = room[j]
        if r is not None:
            if r <= 0:
                raise ShardError(f"no room for {code} on app key {i + 1}")
            room[j] = r - 1
        p.keys[i].append((typ, item))


def take(
    brokers: Sequence[BrokerConfig],
    subs: Sequence[tuple[str, str, Sequence[str]]],
    shard: Shard,
) -> tuple[list[BrokerConfig], list[tuple[str, str, list[str]]], Plan]:
    """Shard ``shard``'s app keys and subscriptions (broker, type, codes) of the whole set."""
    p = plan(brokers, subs, account_shard=Shard(1, shard.count))
    keys, mine = p.shard(shard)
    return keys, mine, p


def take_text(
    text: str,
    brokers: Sequence[BrokerConfig],
    subs: Sequence[tuple[str, str, Sequence[str]]],
) -> tuple[list[BrokerConfig], list[tuple[str, str, list[str]]], str]:
    """``--shard I/N`` given as text: :func:`take`, plus the line that says what was taken."""
    mine, taken, whole = take(brokers, subs, Shard.parse(text))
    regs = sum(len(whole.keys[whole.brokers.index(b)]) for b in mine)
    line = (
        f"shard {text}: {len(mine)} of {len(brokers)} app keys, "
        f"{regs:,} of {whole.registrations():,} registrations"
    )
    return mine, taken, line


__all__ = ["Plan", "Shard", "ShardError", "expand_codes", "plan", "take", "take_text"]
