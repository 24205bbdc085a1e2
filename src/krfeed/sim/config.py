"""Settings of the simulator and its credential table."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from krfeed.brokers import sim_appkey, sim_secret
from krfeed.sim.universe import OpeningProfile

#: The default credential table: :func:`krfeed.brokers.sim_appkey` N -> ``sim_secret`` N,
#: N = 1 … 8 (the shapes of real keys: app key 36 characters, secret 180).
DEFAULT_CREDENTIALS: dict[str, str] = {sim_appkey(n): sim_secret(n) for n in range(1, 9)}


@dataclass
class SimConfig:
    """Everything the simulator can be told. Defaults are what ``krfeed sim`` uses, except
    ``port`` (the command defaults to 8765; 0 picks a free port)."""

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    #: Records per second per subscription (each subscribed instrument steps this often).
    rate: float = 5.0
    #: Orders per second placed automatically on the accounts in use (0 = off).
    auto_orders: float = 0.0
    #: Seconds between PING (Kiwoom) / PINGPONG (KIS) frames.
    ping_interval: float = 10.0
    #: A client that has not echoed a heartbeat for this long is disconnected (None = 3 x interval).
    ping_timeout: float | None = None
    #: Behave like the 모의투자 server (KIS: H0STCNI9, no H0STPGM0; VTTC… tr_ids).
    mock: bool = False
    #: appkey -> secret, or a JSON/TOML file of it; None = :data:`DEFAULT_CREDENTIALS`.
    credentials: Mapping[str, str] | str | Path | None = None
    #: Rows per page of the REST inquiries (small, so that paging is exercised).
    page_size: int = 10
    #: KIS: registrations per appkey (the 42nd gets OPSP0008 with the default 41).
    kis_max_registrations: int = 41
    #: Kiwoom: items per REG group.
    kiwoom_max_items: int = 100
    #: Lifetime of Kiwoom tokens, KIS access tokens and approval keys, in seconds.
    token_ttl: float = 86400.0
    #: Seconds of one simulated trading day (pre-open auction, regular session, closing auction,
    #: after-hours), repeated; None = the regular session all the time.
    session_cycle: float | None = None
    #: Seconds between market ticks; records due within one tick go out together.
    tick: float = 0.1
    #: Mean delay before an order is worked and between its partial fills, in seconds.
    fill_delay: float = 0.05
    #: Maximum records per Kiwoom REAL frame / KIS data frame from the market model.
    max_batch: int = 20
    #: Frames queued for one connection before market data to it is dropped (slow consumer).
    max_queue: int = 10_000
    #: Account events kept for ``Simulator.account_events`` (the oldest are forgotten).
    max_account_events: int = 100_000
    #: KIS: send the published (oldest known) layout of each TR instead of today's wire
    #: (e.g. 46-field H0STCNT0 and 59-field H0STASP0 instead of 47 and 63).
    legacy_layouts: bool = False
    #: KIS: append this many values no known layout declares to every record ("U1", "U2", …):
    #: a wire ahead of krfeed's declarations, as after a KIS notice.
    unknown_fields: int = 0
    #: Stock codes auto-orders trade (None = the model's built-in universe).
    codes: tuple[str, ...] | None = None
    #: The market's listings (names): "krx", "kospi" or "kosdaq" (see krfeed.sim.universe).
    universe: str | None = None
    #: Market data from the opening profile instead of ``rate`` per subscription.
    profile: OpeningProfile | None = None
    #: When the profile's clock starts: at the first subscription, or "manual"
    #: (``POST /_sim/profile``).
    profile_start: str = "subscribe"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def effective_ping_timeout(self) -> float:
        return self.ping_timeout if self.ping_timeout is not None else 3 * self.ping_interval

    def credential_table(self) -> dict[str, str]:
        c = self.credentials
        if c is None:
            return dict(DEFAULT_CREDENTIALS)
        if isinstance(c, str | Path):
            return load_credentials(Path(c))
        return {str(k): str(v) for k, v in c.items()}


def load_credentials(path: Path) -> dict[str, str]:
    """Read an appkey -> secret table from JSON or TOML.

    Accepted shapes: a flat object/table ``{"appkey": "secret"}``, a ``credentials`` table of
    that shape, or a list of ``{"appkey": …, "secret"/"secretkey"/"appsecret": …}`` entries.
    """
    text = path.read_text(encoding="utf-8")
    data: object
    if path.suffix.lower() == ".toml":
        data = tomllib.loads(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = tomllib.loads(text)
    if isinstance(data, dict) and isinstance(data.get("credentials"), dict | list):
        data = data["credentials"]
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            if not isinstance(v, str):
                raise ValueError(f"{path}: the secret of {k!r} is not a string")
            out[str(k)] = v
    elif isinstance(data, list):
        for entry in data:
            if not isinstance(entry, dict) or "appkey" not in entry:
                raise ValueError(f"{path}: list entries need an 'appkey'")
            secret = entry.get("secret") or entry.get("secretkey") or entry.get("appsecret")
            if not isinstance(secret, str):
                raise ValueError(f"{path}: entry {entry['appkey']!r} has no secret")
            out[str(entry["appkey"])] = secret
    else:
        raise ValueError(f"{path}: expected a table of appkey = secret")
    if not out:
        raise ValueError(f"{path}: no credentials")
    return out
