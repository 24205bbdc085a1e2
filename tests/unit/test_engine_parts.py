"""Engine parts without a network: the bounded queue's policies, KST expiry handling, masking of
secrets in logs and reprs, configuration loading, subscription specs."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from krfeed import KIS, Kiwoom
from krfeed.auth import REFRESH_MARGIN, Credential, mask, parse_kst
from krfeed.brokers import sim_appkey
from krfeed.config import ConfigError, load_config
from krfeed.logs import get_logger, register_secret
from krfeed.queue import BoundedQueue
from krfeed.runner import parse_sub
from krfeed.session import SessionOptions

# ---- queue ----


async def test_drop_oldest_sheds_market_data_only() -> None:
    q: BoundedQueue[str] = BoundedQueue(3, "drop_oldest")
    await q.put("order-1", droppable=False)
    await q.put("tick-1", droppable=True)
    await q.put("tick-2", droppable=True)
    await q.put("tick-3", droppable=True)  # full: the oldest tick goes
    assert [q.get_nowait() for _ in range(3)] == ["order-1", "tick-2", "tick-3"]
    assert q.dropped == 1 and q.pending_drops == 1


async def test_account_records_wait_for_room_and_are_never_dropped() -> None:
    q: BoundedQueue[str] = BoundedQueue(2, "drop_oldest")
    await q.put("order-1", droppable=False)
    await q.put("order-2", droppable=False)
    put = asyncio.create_task(q.put("order-3", droppable=False))
    await asyncio.sleep(0.05)
    assert not put.done()  # the reader waits instead of dropping
    assert await q.get() == "order-1"
    await asyncio.wait_for(put, 1)
    assert [await q.get(), await q.get()] == ["order-2", "order-3"]
    assert q.dropped == 0


async def test_block_policy_drops_the_new_tick_after_the_timeout() -> None:
    q: BoundedQueue[str] = BoundedQueue(1, "block", block_timeout=0.05)
    await q.put("tick-1", droppable=True)
    await q.put("tick-2", droppable=True)  # waits 50 ms, then is dropped
    assert q.dropped == 1
    assert q.get_nowait() == "tick-1" and q.get_nowait() is None


async def test_block_policy_keeps_the_tick_when_room_appears_in_time() -> None:
    q: BoundedQueue[str] = BoundedQueue(1, "block", block_timeout=2)
    await q.put("tick-1", droppable=True)
    put = asyncio.create_task(q.put("tick-2", droppable=True))
    await asyncio.sleep(0.02)
    assert await q.get() == "tick-1"
    await put
    assert await q.get() == "tick-2" and q.dropped == 0


async def test_close_wakes_readers() -> None:
    q: BoundedQueue[str] = BoundedQueue(4)
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.close()
    with pytest.raises(EOFError):
        await getter


def test_queue_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        BoundedQueue(0)
    with pytest.raises(ValueError, match="overflow"):
        BoundedQueue(5, "lossy")  # type: ignore[arg-type]


# ---- tokens ----


def test_expires_dt_is_kst_not_a_naive_clock() -> None:
    # Kiwoom's example: 20241107083713 is 08:37:13 in Seoul = 23:37:13 UTC the day before.
    t = parse_kst("20241107083713")
    assert t.astimezone(UTC) == datetime(2024, 11, 6, 23, 37, 13, tzinfo=UTC)


def test_credential_is_refreshed_before_expiry_and_never_shown() -> None:
    now = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    fresh = Credential("tok-abcdefgh", now + REFRESH_MARGIN + timedelta(seconds=1))
    stale = Credential("tok-abcdefgh", now + REFRESH_MARGIN - timedelta(seconds=1))
    assert fresh.fresh(now) and not stale.fresh(now)
    assert "tok-abcdefgh" not in repr(fresh)


def test_reprs_mask_keys_and_never_show_secrets() -> None:
    k = Kiwoom("kiwoom-appkey-123456", "kiwoom-secret-abcdef")
    s = KIS("kis-appkey-1234567", "kis-secret-abcdefg", hts_id="trader")
    assert "kiwoom-secret-abcdef" not in repr(k) and "kiwo****" in repr(k)
    assert "kis-secret-abcdefg" not in repr(s) and "kis-****" in repr(s)
    assert mask("short") == "****"


def test_registered_secrets_are_masked_in_any_krfeed_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_secret("approval-key-0123456789")
    log = get_logger("krfeed.test")
    with caplog.at_level(logging.INFO, logger="krfeed.test"):
        log.info("got %s from the server", "approval-key-0123456789")
    assert "approval-key-0123456789" not in caplog.text
    assert "got **** from the server" in caplog.text


# ---- config ----


def test_config_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("KRFEED_"):
            monkeypatch.delenv(k)
    cfg_file = tmp_path / "krfeed.toml"
    cfg_file.write_text(
        '[kiwoom]\nappkey = "file-app"\nsecretkey = "file-secret"\n\n'
        '[[kis]]\nappkey = "k1"\nsecretkey = "s1"\nhts_id = "me"\n\n'
        '[[kis]]\nappkey = "k2"\nsecretkey = "s2"\nmax_registrations = 20\n'
    )
    monkeypatch.setenv("KRFEED_KIWOOM_APPKEY", "env-app")
    cfg = load_config(cfg_file, mock=True)
    assert [k.appkey for k in cfg.kiwoom] == ["env-app"]
    assert cfg.kiwoom[0].secretkey == "file-secret" and cfg.kiwoom[0].mock
    assert cfg.kiwoom[0].ws_url == Kiwoom.MOCK_WS
    assert [(k.appkey, k.hts_id, k.max_registrations) for k in cfg.kis] == [
        ("k1", "me", 41),
        ("k2", None, 20),
    ]


def test_config_errors_are_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("KRFEED_"):
            monkeypatch.delenv(k)
    bad = tmp_path / "bad.toml"
    bad.write_text("[kis\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    bad.write_text('[[kis]]\nappkey = "k"\n')
    with pytest.raises(ConfigError, match="kis entry 1 has no secretkey"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_config_session_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("KRFEED_"):
            monkeypatch.delenv(k)
    f = tmp_path / "krfeed.toml"
    f.write_text(
        '[kiwoom]\nappkey = "a"\nsecretkey = "s"\n\n'
        "[session]\nidle_timeout = 45\nidle_heartbeats = 4\nreconnect_cap = 1.5\n"
    )
    opts = load_config(f).session_options()
    assert (opts.idle_timeout, opts.idle_heartbeats, opts.idle_floor) == (45.0, 4.0, 3.0)
    assert (opts.reconnect_cap, opts.backoff_cap) == (1.5, 30.0)
    # the command line wins; a limit under the floor lowers the floor with it
    opts = load_config(f).session_options(idle_timeout=2.0)
    assert (opts.idle_timeout, opts.idle_floor, opts.idle_heartbeats) == (2.0, 2.0, 4.0)
    f.write_text("[session]\nreconnect_cap = 0\n")
    assert load_config(f).session_options().reconnect_cap is None  # 0: always the slow path
    assert SessionOptions().reply_timeout == 10.0
    f.write_text("[session]\nreply_timeout = 4\n")
    assert load_config(f).session_options().reply_timeout == 4.0
    f.write_text("[session]\nreply_timeout = 0\n")
    assert load_config(f).session_options().reply_timeout is None  # 0: wait for as long as it takes
    assert load_config(sim="http://127.0.0.1:8765").session_options() == SessionOptions()
    for body, message in (
        ("[session]\nidle_timout = 45\n", "unknown key 'idle_timout' in \\[session\\]"),
        ('[session]\nidle_timeout = "45"\n', "idle_timeout must be a number of at least 0"),
        ("[session]\nidle_timeout = 0\n", "idle_timeout must be more than 0"),
        ("[session]\nidle_floor = -1\n", "idle_floor must be a number of at least 0"),
        ("session = 3\n", "\\[session\\] must be a table"),
    ):
        f.write_text(body)
        with pytest.raises(ConfigError, match=message):
            load_config(f)


def test_sim_config_uses_the_simulators_credentials() -> None:
    cfg = load_config(sim="http://127.0.0.1:8765")
    assert cfg.kiwoom[0].appkey == sim_appkey(1)
    assert cfg.kiwoom[0].ws_url == "ws://127.0.0.1:8765/api/dostk/websocket"
    assert cfg.kis[0].ws_url == "ws://127.0.0.1:8765/tryitout"


# ---- subscription specs ----


def test_subscription_specs() -> None:
    s = parse_sub("kis:H0STPGM0:005930,000660")
    assert (s.broker, s.type, s.codes) == ("kis", "H0STPGM0", ("005930", "000660"))
    assert parse_sub("kiwoom:ORDER_EXECUTION").type == "00"
    assert parse_sub("kiwoom:00").codes == ()
    with pytest.raises(ValueError, match="needs codes"):
        parse_sub("kiwoom:0B")
    with pytest.raises(ValueError, match="no real-time type"):
        parse_sub("kis:H0NOPE00:005930")


def test_sink_urls_never_show_passwords() -> None:
    from krfeed.sinks import open_sink

    pg = open_sink("postgresql://bob:pg-pass-123456@127.0.0.1:5432/test?schema=x")
    assert pg.url == "postgresql://bob:****@127.0.0.1:5432/test?schema=x"
    assert "pg-pass-123456" not in repr(pg)
    nats = open_sink("nats://u:nats-pass-123456@127.0.0.1:4222")
    assert nats.url == "nats://u:****@127.0.0.1:4222"


def test_secrets_in_logged_tracebacks_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("token-in-exception-987654")
    log = get_logger("krfeed.test")
    with caplog.at_level(logging.ERROR, logger="krfeed.test"):
        try:
            raise RuntimeError("bad token token-in-exception-987654")
        except RuntimeError:
            log.exception("request failed")
    assert "token-in-exception-987654" not in caplog.text
    assert "bad token ****" in caplog.text
