"""Credentials and endpoints for the CLI: ``krfeed.toml`` plus ``KRFEED_*`` environment variables.

    [kiwoom]                 # or [[kiwoom]] for several app keys
    appkey = "…"
    secretkey = "…"
    mock = false

    [[kis]]                  # one table per KIS app key (41 registrations each)
    appkey = "…"
    secretkey = "…"
    hts_id = "…"             # needed for execution notices (H0STCNI0)

    token_cache = "~/.cache/krfeed"   # optional: tokens survive restarts (files are 0600)

The file is looked for at ``--config``, ``$KRFEED_CONFIG``, ``./krfeed.toml``, then
``~/.config/krfeed/krfeed.toml``. ``KRFEED_KIWOOM_APPKEY``/``_SECRETKEY`` and
``KRFEED_KIS_APPKEY``/``_SECRETKEY``/``KRFEED_KIS_HTS_ID`` replace the first entry of that broker.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from krfeed.brokers import KIS, Kiwoom

CANDIDATES = (Path("krfeed.toml"), Path("~/.config/krfeed/krfeed.toml"))


class ConfigError(ValueError):
    """A configuration problem, said in one sentence (never containing a secret)."""


@dataclass
class Config:
    kiwoom: list[Kiwoom] = field(default_factory=list)
    kis: list[KIS] = field(default_factory=list)
    source: str = ""

    def brokers(self, which: str | None = None) -> list[Kiwoom | KIS]:
        out: list[Kiwoom | KIS] = []
        if which in (None, "kiwoom"):
            out.extend(self.kiwoom)
        if which in (None, "kis"):
            out.extend(self.kis)
        return out


def _entries(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    v = doc.get(name)
    if v is None:
        return []
    if isinstance(v, dict):
        return [v]
    if isinstance(v, list) and all(isinstance(x, dict) for x in v):
        return v
    raise ConfigError(f"[{name}] in the config must be a table or an array of tables")


def _find(path: str | Path | None) -> Path | None:
    if path:
        p = Path(path).expanduser()
        if not p.exists():
            raise ConfigError(f"config file {p} does not exist")
        return p
    env = os.environ.get("KRFEED_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.exists():
            raise ConfigError(f"KRFEED_CONFIG points to {p}, which does not exist")
        return p
    for c in CANDIDATES:
        p = c.expanduser()
        if p.exists():
            return p
    return None


def load_config(
    path: str | Path | None = None,
    *,
    mock: bool = False,
    sim: str | None = None,
    sim_kis_keys: int = 1,
) -> Config:
    """Build broker configs from the file and environment, or for a simulator at ``sim``."""
    if sim:
        if not sim.startswith(("http://", "https://")):
            raise ConfigError(
                f"--sim takes the simulator's URL, like http://127.0.0.1:8765 (got {sim!r})"
            )
        n = max(1, min(8, sim_kis_keys))
        return Config(
            kiwoom=[Kiwoom.sim(sim, 1)],
            kis=[KIS.sim(sim, i, hts_id="simuser") for i in range(2, 2 + n)],
            source=f"simulator at {sim}",
        )
    p = _find(path)
    doc: dict[str, Any] = {}
    if p is not None:
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p} is not valid TOML: {e}") from None
        except OSError as e:
            raise ConfigError(f"cannot read {p}: {e.strerror}") from None
    cache = doc.get("token_cache")
    kw = _entries(doc, "kiwoom")
    ks = _entries(doc, "kis")
    env = os.environ
    if env.get("KRFEED_KIWOOM_APPKEY") or env.get("KRFEED_KIWOOM_SECRETKEY"):
        over = {
            "appkey": env.get("KRFEED_KIWOOM_APPKEY"),
            "secretkey": env.get("KRFEED_KIWOOM_SECRETKEY"),
        }
        kw = [{**(kw[0] if kw else {}), **{k: v for k, v in over.items() if v}}, *kw[1:]]
    if (
        env.get("KRFEED_KIS_APPKEY")
        or env.get("KRFEED_KIS_SECRETKEY")
        or env.get("KRFEED_KIS_HTS_ID")
    ):
        over = {
            "appkey": env.get("KRFEED_KIS_APPKEY"),
            "secretkey": env.get("KRFEED_KIS_SECRETKEY"),
            "hts_id": env.get("KRFEED_KIS_HTS_ID"),
        }
        ks = [{**(ks[0] if ks else {}), **{k: v for k, v in over.items() if v}}, *ks[1:]]
    cfg = Config(source=str(p) if p else "environment")
    for i, d in enumerate(kw, 1):
        cfg.kiwoom.append(
            Kiwoom(
                _need(d, "appkey", "kiwoom", i),
                _need(d, "secretkey", "kiwoom", i),
                mock=bool(d.get("mock", mock)),
                rest_url=d.get("rest_url"),
                ws_url=d.get("ws_url"),
                token_cache=d.get("token_cache", cache),
            )
        )
    for i, d in enumerate(ks, 1):
        cfg.kis.append(
            KIS(
                _need(d, "appkey", "kis", i),
                _need(d, "secretkey", "kis", i),
                hts_id=d.get("hts_id"),
                mock=bool(d.get("mock", mock)),
                custtype=str(d.get("custtype", "P")),
                rest_url=d.get("rest_url"),
                ws_url=d.get("ws_url"),
                token_cache=d.get("token_cache", cache),
                max_registrations=int(d.get("max_registrations", 41)),
            )
        )
    return cfg


def _need(d: dict[str, Any], key: str, broker: str, i: int) -> str:
    v = d.get(key)
    if not v or not isinstance(v, str):
        env = f"KRFEED_{broker.upper()}_{key.upper()}"
        raise ConfigError(f"{broker} entry {i} has no {key}: set it in krfeed.toml or {env}")
    return v
