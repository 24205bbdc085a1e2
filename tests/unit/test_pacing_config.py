"""Subscribe and connect pacing come from krfeed.toml's [session] table."""

from __future__ import annotations

from pathlib import Path

import pytest

from krfeed.config import ConfigError, load_config
from krfeed.session import SessionOptions


def test_pacing_defaults_and_session_table(tmp_path: Path) -> None:
    assert (SessionOptions().subscribe_interval, SessionOptions().connect_interval) == (0.05, 0.1)
    p = tmp_path / "krfeed.toml"
    p.write_text("[session]\nsubscribe_interval = 0.2\nconnect_interval = 1\n", encoding="utf-8")
    opts = load_config(p).session_options()
    assert (opts.subscribe_interval, opts.connect_interval) == (0.2, 1.0)
    p.write_text("[session]\nconnect_interval = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="connect_interval must be a number of at least 0"):
        load_config(p)
