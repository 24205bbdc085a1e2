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

    [session]                # optional: timing of every WebSocket session (SessionOptions)
    idle_timeout = 90        # no frame this long: half-open (until the heartbeat is learned)
    idle_heartbeats = 3      # then: this many heartbeats without a frame (0: never learn)
    idle_floor = 3           # the least the learned limit can be
    reconnect_cap = 2        # quick socket retries within this (0: always the slow backoff)
    backoff_cap = 30         # the slow path: authentication, refusals
    subscribe_interval = 0.05  # between subscribe frames on one connection (20/s)
    connect_interval = 0.1   # between the first connections of many app keys (10/s)
    reply_timeout = 10       # wait this long for a (un)subscribe reply, then once more (0: forever)

The file is looked for at ``--config``, ``$KRFEED_CONFIG``, ``./krfeed.toml``, then
``~/.config/krfeed/krfeed.toml``. ``KRFEED_KIWOOM_APPKEY``/``_SECRETKEY`` and
``KRFEED_KIS_APPKEY``/``_SECRETKEY``/``KRFEED_KIS_HTS_ID`` replace the first entry of that broker.
With ``--sim`` the file is not read (the command-line options still apply).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from krfeed.brokers import KIS, Kiwoom
from krfeed.engine import SessionOptions

CANDIDATES = (Path("krfeed.toml"), Path("~/.config/krfeed/krfeed.toml"))


class ConfigError(ValueError):
    """A configuration problem, said in one sentence (never containing a secret)."""


@dataclass
class Config:
    kiwoom: list[Kiwoom] = field(default_factory=list)
    kis: list[KIS] = field(default_factory=list)
    source: str = ""
    #: The [session] table: SessionOptions fields set in the file.
    session: dict[str, float] = field(default_factory=dict)

    def session_options(self, **override: float | None) -> SessionOptions:
        """SessionOptions from the defaults, the [session] table, then ``override`` (None:
        not given). A smaller idle_timeout lowers idle_floor with it."""
        values: dict[str, Any] = dict(self.session)
        values.update({k: v for k, v in override.items() if v is not None})
        for key in ("reconnect_cap", "reply_timeout"):  # 0: none
            if values.get(key) == 0:
                values[key] = None
        if "idle_timeout" in values and "idle_floor" not in values:
            values["idle_floor"] = min(SessionOptions.idle_floor, values["idle_timeout"])
        return SessionOptions(**values)

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
        # --mock with --sim: behave as against the mock servers (a `krfeed sim --mock`)
        return Config(
            kiwoom=[Kiwoom.sim(sim, 1, mock=mock)],
            kis=[KIS.sim(sim, i, hts_id="simuser", mock=mock) for i in range(2, 2 + n)],
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
    where = str(p) if p else "the config"
    _known(doc, TOP_KEYS, where, "")
    cache = doc.get("token_cache")
    session = _session_table(doc.get("session"), str(p) if p else "the config")
    kw = _entries(doc, "kiwoom")
    ks = _entries(doc, "kis")
    for name, entries, known in (("kiwoom", kw, KIWOOM_KEYS), ("kis", ks, KIS_KEYS)):
        for d in entries:
            _known(d, known, where, f"[{name}]")
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
    cfg = Config(source=str(p) if p else "environment", session=session)
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


TOP_KEYS = frozenset({"kiwoom", "kis", "token_cache", "session"})
KIWOOM_KEYS = frozenset({"appkey", "secretkey", "mock", "rest_url", "ws_url", "token_cache"})
KIS_KEYS = KIWOOM_KEYS | {"hts_id", "custtype", "max_registrations"}


def _known(d: dict[str, Any], known: frozenset[str], where: str, table: str) -> None:
    """A misspelt key is an error that names the keys there are, not a silent default."""
    unknown = sorted(set(d) - known)
    if unknown:
        what = f"in {table} " if table else ""
        raise ConfigError(
            f"{where}: unknown key {', '.join(map(repr, unknown))} {what}"
            f"(known keys: {', '.join(sorted(known))})"
        )


def _need(d: dict[str, Any], key: str, broker: str, i: int) -> str:
    v = d.get(key)
    if not v or not isinstance(v, str):
        env = f"KRFEED_{broker.upper()}_{key.upper()}"
        raise ConfigError(f"{broker} entry {i} has no {key}: set it in krfeed.toml or {env}")
    return v


#: [session] keys: seconds, except idle_heartbeats (a count); each must be >= 0.
SESSION_KEYS = (
    "idle_timeout",
    "idle_heartbeats",
    "idle_floor",
    "reconnect_cap",
    "backoff_cap",
    "subscribe_interval",
    "connect_interval",
    "reply_timeout",
)


def _session_table(table: object, where: str) -> dict[str, float]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [session] must be a table")
    out: dict[str, float] = {}
    for k, v in table.items():
        if k not in SESSION_KEYS:
            raise ConfigError(
                f"{where}: unknown key {k!r} in [session] (known keys: {', '.join(SESSION_KEYS)})"
            )
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ConfigError(f"{where}: [session] {k} must be a number of at least 0, not {v!r}")
        if k in ("idle_timeout", "backoff_cap") and v == 0:
            raise ConfigError(f"{where}: [session] {k} must be more than 0")
        out[k] = float(v)
    return out
