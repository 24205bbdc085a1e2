"""``--shard I/N``: the union of the shards is the whole subscription set, no app key is in two
shards, the plan is the same in every collector, and it keeps the per-key limit."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from krfeed.brokers import KIS, Kiwoom, sim_appkey, sim_secret
from krfeed.shard import Shard, ShardError, expand_codes, plan, take
from krfeed.sim.universe import universe_codes

URL = "http://127.0.0.1:9"  # never contacted: planning is offline


def kis_keys(n: int, hts: str = "simuser") -> list[KIS]:
    return [KIS(sim_appkey(i), sim_secret(i), hts_id=hts, rest_url=URL) for i in range(1, n + 1)]


def market(n_trade: int = 2700, n_pgm: int = 500) -> list[tuple[str, str, list[str]]]:
    return [
        ("kis", "H0STCNT0", universe_codes("krx")[:n_trade]),
        ("kis", "H0STPGM0", universe_codes("krx", n_pgm)),
    ]


def regs_of(subs: list[tuple[str, str, list[str]]]) -> list[tuple[str, str, str]]:
    return [(b, t, c) for b, t, codes in subs for c in (codes or ["<account>"])]


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shards_cover_the_market_exactly_once_with_disjoint_keys(n: int) -> None:
    keys = kis_keys(79)  # 79 x 41 = 3,239 >= 2,700 + 500
    subs = market()
    union: Counter[tuple[str, str, str]] = Counter()
    owner: dict[str, int] = {}
    for i in range(1, n + 1):
        mine, taken, whole = take(keys, subs, Shard(i, n))
        for k in mine:
            assert k.appkey not in owner, f"{k!r} in shards {owner[k.appkey]} and {i}"
            owner[k.appkey] = i
        union.update(regs_of(taken))
        # each key this shard holds keeps the limit, and its registrations are this shard's
        for k in mine:
            assert 1 <= len(whole.keys[keys.index(k)]) <= 41
    wanted = Counter(regs_of(subs))
    assert union == wanted  # every registration once: none lost, none twice
    assert sum(union.values()) == 3200
    assert len(owner) == 79  # every key that carries something has exactly one shard


def test_plan_is_deterministic_and_spreads_busy_codes_over_keys() -> None:
    keys = kis_keys(79)
    a, b = plan(keys, market()), plan(keys, market())
    assert a.keys == b.keys
    # round-robin: the 79 most active H0STCNT0 codes land on 79 different keys
    first = universe_codes("krx", 79)
    holders = {
        i for i, regs in enumerate(a.keys) for t, c in regs if c in first and t == "H0STCNT0"
    }
    assert len(holders) == 79
    assert a.keys[0][:2] == [("H0STCNT0", "005930"), ("H0STCNT0", universe_codes("krx")[79])]
    assert max(len(k) for k in a.keys) == 41
    assert a.registrations() == 3200


def test_shard_two_of_two_takes_the_odd_keys() -> None:
    keys = kis_keys(6)
    subs = [("kis", "H0STCNT0", [f"{i:06d}" for i in range(1, 13)])]
    mine, taken, _ = take(keys, subs, Shard(2, 2))
    assert [k.appkey for k in mine] == [sim_appkey(2), sim_appkey(4), sim_appkey(6)]
    # code i goes to key (i-1) mod 6: keys 2, 4, 6 hold codes 2, 4, 6, 8, 10, 12
    assert taken == [
        ("kis", "H0STCNT0", ["000002", "000008", "000004", "000010", "000006", "000012"])
    ]


def test_account_types_go_to_shard_one_once_per_hts_id() -> None:
    keys = kis_keys(4)
    subs = [("kis", "H0STCNI0", []), ("kis", "H0STPGM0", ["005930", "000660", "373220"])]
    one = take(keys, subs, Shard(1, 2))
    two = take(keys, subs, Shard(2, 2))
    assert one[1] == [("kis", "H0STCNI0", []), ("kis", "H0STPGM0", ["005930", "373220"])]
    assert two[1] == [("kis", "H0STPGM0", ["000660"])]
    assert one[2].keys[0] == [("H0STCNI0", "simuser"), ("H0STPGM0", "005930")]


def test_kiwoom_and_kis_keys_share_one_key_numbering() -> None:
    keys: list[KIS | Kiwoom] = [Kiwoom(sim_appkey(1), sim_secret(1), rest_url=URL), *kis_keys(3)]
    subs = [
        ("kiwoom", "0B", ["005930", "000660"]),
        ("kis", "H0STCNT0", ["005930", "000660", "035720"]),
    ]
    got = {i: take(keys, subs, Shard(i, 2))[1] for i in (1, 2)}
    assert got[1] == [("kiwoom", "0B", ["005930", "000660"]), ("kis", "H0STCNT0", ["000660"])]
    assert got[2] == [("kis", "H0STCNT0", ["005930", "035720"])]


def test_too_many_registrations_and_too_many_shards_say_so() -> None:
    with pytest.raises(
        ShardError, match=r"3,200 kis registrations do not fit: 10 app key\(s\) hold at most 410"
    ):
        plan(kis_keys(10), market())
    with pytest.raises(ShardError, match="shard 3/3 has no app key: 2 key"):
        take(kis_keys(5), [("kis", "H0STCNT0", ["005930", "000660"])], Shard(3, 3))
    for bad in ("0/2", "3/2", "1-2", "x"):
        with pytest.raises(ShardError, match="--shard"):
            Shard.parse(bad)
    assert Shard.parse(" 2 / 3 ") == Shard(2, 3)


def test_expand_codes(tmp_path: Path) -> None:
    f = tmp_path / "codes.txt"
    f.write_text("# my list\n005930 삼성전자\n\n000660  # hynix\n", encoding="utf-8")
    assert expand_codes(f"035720,@{f}") == ["035720", "005930", "000660"]
    assert expand_codes("@krx/3") == ["005930", "000660", "373220"]
    assert len(expand_codes("@krx")) == 2700
    assert expand_codes("@kosdaq/2") == ["247540", "086520"]
    with pytest.raises(ShardError, match=r"cannot read the code list 'nope\.txt'"):
        expand_codes("@nope.txt")
