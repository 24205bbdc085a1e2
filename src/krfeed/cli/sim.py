"""The ``krfeed sim`` command."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from krfeed.runner import on_stop_signals
from krfeed.sim.config import SimConfig
from krfeed.sim.faults import ACTIONS, parse_fault


def parse_fault_flag(spec: str) -> tuple[str, dict[str, Any], float, float]:
    """``ACTION[:key=value,…][@START[/EVERY]]`` -> (action, params, start, every)."""
    when = ""
    if "@" in spec:
        spec, when = spec.split("@", 1)
    action, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        k, eq, v = part.partition("=")
        if not eq:
            raise ValueError(f"fault parameter {part!r} is not key=value")
        params[k.strip()] = v.strip()
    start_s, _, every_s = when.partition("/")
    try:
        start = float(start_s) if start_s else 0.0
        every = float(every_s) if every_s else 0.0
    except ValueError:
        raise ValueError(f"fault timing {when!r} is not START[/EVERY] in seconds") from None
    parse_fault(action.strip(), dict(params))  # validate now, fail before starting
    return action.strip(), params, start, every


async def _run(
    config: SimConfig,
    faults: list[tuple[str, dict[str, Any], float, float]],
    write_config: Path | None = None,
    keys: list[str] | None = None,
) -> None:
    from krfeed.sim.server import Simulator

    sim = Simulator(config)
    await sim.start()
    if write_config is not None:
        table = sim.credentials
        write_client_config(write_config, sim.url, [(k, table[k]) for k in keys or table])
    stop = asyncio.Event()

    async def inject(action: str, params: dict[str, Any], start: float, every: float) -> None:
        await asyncio.sleep(start)
        while True:
            sim.fault(action, **params)
            if every <= 0:
                return
            await asyncio.sleep(every)

    tasks = [asyncio.create_task(inject(*f)) for f in faults]
    sys.stdout.write(f"krfeed sim ready: {sim.url}\n")
    sys.stdout.flush()
    try:
        with on_stop_signals(stop.set):
            await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sim.stop()


def _credentials_problem(path: Path | None, e: ValueError) -> str:
    """Name the file, and for a .json file the JSON error (not the TOML fallback's)."""
    import json

    if path is not None and path.suffix.lower() == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as je:
            return f"{path} is not valid JSON: {je.msg} at line {je.lineno} column {je.colno}"
        except (OSError, UnicodeDecodeError):
            pass
    return f"cannot read the credentials file {path}: {e}"


def write_client_config(path: Path, url: str, keys: list[tuple[str, str]]) -> None:
    """A krfeed.toml for the clients of a simulator at ``url``: one [[kis]] table per app key
    (the same file for every collector; ``krfeed record --shard I/N`` takes its share)."""
    lines = [f"# written by krfeed sim for the simulator at {url}", ""]
    for n, (appkey, secret) in enumerate(keys, 1):
        lines += [
            "[[kis]]",
            f'appkey = "{appkey}"',
            f'secretkey = "{secret}"',
            f'hts_id = "simuser{n}"',
            f'rest_url = "{url}"',
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")


def sim_command(
    host: Annotated[str, typer.Option(help="address to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0 = pick a free one)")] = 8765,
    seed: Annotated[int, typer.Option(help="seed of the market model")] = 1,
    rate: Annotated[float, typer.Option(help="records per second per subscription")] = 5.0,
    auto_orders: Annotated[
        float, typer.Option("--auto-orders", help="orders per second placed automatically")
    ] = 0.0,
    mock: Annotated[bool, typer.Option("--mock", help="behave like the 모의투자 servers")] = False,
    credentials: Annotated[
        Path | None,
        typer.Option(help="JSON or TOML table of appkey = secret (replaces the default keys 1..8)"),
    ] = None,
    ping_interval: Annotated[
        float, typer.Option("--ping-interval", help="seconds between PING/PINGPONG")
    ] = 10.0,
    ping_timeout: Annotated[
        float | None,
        typer.Option("--ping-timeout", help="disconnect after this long without an echo"),
    ] = None,
    page_size: Annotated[int, typer.Option("--page-size", help="rows per inquiry page")] = 10,
    session_cycle: Annotated[
        float | None,
        typer.Option("--session-cycle", help="seconds of one simulated trading day"),
    ] = None,
    legacy_layouts: Annotated[
        bool,
        typer.Option(
            "--legacy-layouts",
            help="KIS: send the published layouts (46-field H0STCNT0, 59-field H0STASP0, …) "
            "instead of today's wire",
        ),
    ] = False,
    unknown_fields: Annotated[
        int,
        typer.Option(
            "--unknown-fields",
            min=0,
            help="KIS: append N values no known layout declares to every record (a wire "
            "ahead of krfeed)",
        ),
    ] = 0,
    universe: Annotated[
        str | None,
        typer.Option(
            help="the market's listings: krx (about 2,700 KOSPI and KOSDAQ codes with "
            "names), kospi or kosdaq",
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            help="opening: market data as at the open (a burst, then a steady rate, skewed "
            "per code) instead of --rate per subscription",
        ),
    ] = None,
    burst_rate: Annotated[
        float, typer.Option("--burst-rate", help="opening profile: records/s in the burst")
    ] = 30_000.0,
    burst_seconds: Annotated[
        float, typer.Option("--burst-seconds", help="opening profile: length of the burst")
    ] = 60.0,
    steady_rate: Annotated[
        float, typer.Option("--steady-rate", help="opening profile: records/s after it")
    ] = 5_000.0,
    profile_duration: Annotated[
        float | None,
        typer.Option("--profile-duration", help="opening profile: stop after S seconds"),
    ] = None,
    profile_start: Annotated[
        str,
        typer.Option(
            "--profile-start",
            help="subscribe (the first subscription starts the clock) or manual "
            "(POST /_sim/profile)",
        ),
    ] = "subscribe",
    skew: Annotated[
        float, typer.Option(help="opening profile: Zipf exponent of per-code activity")
    ] = 1.0,
    keys: Annotated[
        int | None,
        typer.Option("--keys", min=1, max=999, help="serve the built-in app keys 1..N (default 8)"),
    ] = None,
    write_config: Annotated[
        Path | None,
        typer.Option(
            "--write-config",
            help="write a krfeed.toml with a \\[\\[kis]] table for each app key, pointing here",
        ),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="inject a fault: ACTION or ACTION:key=value,… optionally @START or "
            "@START/EVERY (seconds), e.g. drop@30/60 or silence:seconds=5@10; "
            f"actions: {', '.join(ACTIONS)}",
        ),
    ] = None,
) -> None:
    """Run the simulator of both brokers (Kiwoom and KIS) on one port."""
    err = typer.echo
    if not 0 <= port <= 65535:
        err(
            f"krfeed: --port must be between 0 and 65535 (0 picks a free one), not {port}", err=True
        )
        raise typer.Exit(2)
    try:
        faults = [parse_fault_flag(f) for f in fault or []]
    except ValueError as e:
        err(f"krfeed: {e}", err=True)
        raise typer.Exit(2) from None
    from krfeed.sim.universe import UNIVERSES, OpeningProfile

    if universe is not None and universe not in UNIVERSES:
        err(f"krfeed: --universe must be one of {', '.join(UNIVERSES)}, not {universe!r}", err=True)
        raise typer.Exit(2)
    if profile not in (None, "opening"):
        err(f"krfeed: --profile must be opening, not {profile!r}", err=True)
        raise typer.Exit(2)
    if profile_start not in ("subscribe", "manual"):
        err(f"krfeed: --profile-start must be subscribe or manual, not {profile_start!r}", err=True)
        raise typer.Exit(2)
    if keys is not None and credentials is not None:
        err("krfeed: give --keys or --credentials, not both", err=True)
        raise typer.Exit(2)
    try:
        opening = (
            OpeningProfile(burst_rate, burst_seconds, steady_rate, profile_duration, skew)
            if profile
            else None
        )
    except ValueError as e:
        err(f"krfeed: {e}", err=True)
        raise typer.Exit(2) from None
    table: Any = credentials
    if keys is not None:
        from krfeed.brokers import sim_appkey, sim_secret

        table = {sim_appkey(n): sim_secret(n) for n in range(1, keys + 1)}
    config = SimConfig(
        host=host,
        port=port,
        seed=seed,
        rate=rate,
        auto_orders=auto_orders,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        mock=mock,
        credentials=table,
        page_size=page_size,
        session_cycle=session_cycle,
        legacy_layouts=legacy_layouts,
        unknown_fields=unknown_fields,
        universe=universe,
        profile=opening,
        profile_start=profile_start,
    )
    try:
        keys_served = list(config.credential_table())
    except OSError as e:
        err(f"krfeed: cannot read the credentials file {credentials}: {e.strerror}", err=True)
        raise typer.Exit(2) from None
    except ValueError as e:
        err(f"krfeed: {_credentials_problem(credentials, e)}", err=True)
        raise typer.Exit(2) from None
    try:
        asyncio.run(_run(config, faults, write_config, keys_served))
    except OSError as e:
        err(f"krfeed: cannot serve on {host}:{port}: {e.strerror or e}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
