"""Venues configured from environment variables (exo example --venue)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exo.venues import CredentialsError
from exo.venues.config import VenueConfigError, from_env
from tests.venue_servers.fix import need_quickfix

SECRET = "config-secret-never-shown-123"


def test_binance_from_env_with_testnet() -> None:
    v = from_env(
        "binance", testnet=True, environ={"EXO_BINANCE_API_KEY": "k", "EXO_BINANCE_API_SECRET": SECRET}
    )
    assert v.name == "binance" and v.url == "wss://ws-api.testnet.binance.vision/ws-api/v3"  # type: ignore[attr-defined]


def test_bitmex_from_env_dead_man_switch_setting() -> None:
    env = {"EXO_BITMEX_API_KEY": "k", "EXO_BITMEX_API_SECRET": SECRET, "EXO_BITMEX_CANCEL_ALL_AFTER": "0"}
    v = from_env("bitmex", environ=env)
    assert v._dead_man is None  # type: ignore[attr-defined]
    with pytest.raises(VenueConfigError, match="EXO_BITMEX_CANCEL_ALL_AFTER: expected seconds, got 'soon'"):
        from_env("bitmex", environ={**env, "EXO_BITMEX_CANCEL_ALL_AFTER": "soon"})


def test_missing_credentials_name_the_variable_and_never_the_secret() -> None:
    with pytest.raises(CredentialsError, match="EXO_BITMEX_API_KEY is not set"):
        from_env("bitmex", environ={"EXO_BITMEX_API_SECRET": SECRET})


def test_fix_from_env_needs_host_port_comp_ids_and_instruments(tmp_path: Path) -> None:
    need_quickfix()
    inst = tmp_path / "instruments.json"
    inst.write_text(json.dumps([{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.0001"}]))
    env = {
        "EXO_FIX_HOST": "127.0.0.1",
        "EXO_FIX_PORT": "9878",
        "EXO_FIX_SENDER_COMP_ID": "EXO",
        "EXO_FIX_TARGET_COMP_ID": "VENUE",
        "EXO_FIX_INSTRUMENTS": str(inst),
        "EXO_FIX_STORE": str(tmp_path / "store"),
    }
    v = from_env("fix", environ=env)
    assert v.name == "fix" and list(v.instruments) == ["BTC-USD"]
    with pytest.raises(VenueConfigError, match="EXO_FIX_TARGET_COMP_ID is not set"):
        from_env("fix", environ={k: val for k, val in env.items() if k != "EXO_FIX_TARGET_COMP_ID"})
    with pytest.raises(VenueConfigError, match="EXO_FIX_PORT: expected a TCP port, got 'x'"):
        from_env("fix", environ={**env, "EXO_FIX_PORT": "x"})
    with pytest.raises(VenueConfigError, match="does not apply to FIX"):
        from_env("fix", testnet=True, environ=env)


def test_unknown_venue_is_refused_with_the_choices() -> None:
    with pytest.raises(
        VenueConfigError, match="unknown venue 'kraken': expected one of binance, bitmex, fix"
    ):
        from_env("kraken", environ={})
