"""A venue built from environment variables (what ``exo example --venue``
uses): credentials and endpoints never come from command-line flags.

``from_env("binance", testnet=True)`` reads:

- Binance: credentials ``EXO_BINANCE_*`` (see ``Credentials.from_env``),
  optional ``EXO_BINANCE_URL`` (WS API endpoint) and ``EXO_BINANCE_SYMBOLS``
  (comma-separated: restricts the instruments loaded from exchangeInfo);
- BitMEX: credentials ``EXO_BITMEX_*``, optional ``EXO_BITMEX_REST_URL``,
  ``EXO_BITMEX_WS_URL``, ``EXO_BITMEX_CANCEL_ALL_AFTER`` (dead-man switch
  seconds, default 60; 0 turns it off);
- FIX: ``EXO_FIX_HOST``, ``EXO_FIX_PORT``, ``EXO_FIX_SENDER_COMP_ID``,
  ``EXO_FIX_TARGET_COMP_ID``, ``EXO_FIX_INSTRUMENTS`` (a JSON file of
  instruments, see ``exo.instrument.load_instruments``), optional
  ``EXO_FIX_STORE`` (sequence number store, default ``.exo/fix-store``),
  ``EXO_FIX_RESET_ON_LOGON`` (``1``: ResetSeqNumFlag=Y), and credentials
  ``EXO_FIX_*`` when the venue wants a Username.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from exo.venues.base import VenueBase
from exo.venues.credentials import Credentials

__all__ = ["KINDS", "VenueConfigError", "from_env"]

KINDS = ("binance", "bitmex", "fix")


class VenueConfigError(ValueError):
    """A variable is missing or malformed; the message names it (never a secret)."""


def _need(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise VenueConfigError(f"{name} is not set")
    return value


def from_env(kind: str, *, testnet: bool = False, environ: Mapping[str, str] | None = None) -> VenueBase:
    """The venue ``kind`` (binance, bitmex or fix) configured from ``environ``
    (default ``os.environ``). Raises VenueConfigError / CredentialsError."""
    env = os.environ if environ is None else environ
    kind = kind.strip().lower()
    if kind == "binance":
        from exo.venues.binance import Binance

        symbols = [s.strip() for s in env.get("EXO_BINANCE_SYMBOLS", "").split(",") if s.strip()]
        return Binance(
            Credentials.from_env("EXO_BINANCE", env),
            testnet=testnet,
            url=env.get("EXO_BINANCE_URL") or None,
            symbols=symbols or None,
        )
    if kind == "bitmex":
        from exo.venues.bitmex import BitMEX

        dead_man = env.get("EXO_BITMEX_CANCEL_ALL_AFTER", "60")
        try:
            seconds = float(dead_man)
        except ValueError:
            raise VenueConfigError(
                f"EXO_BITMEX_CANCEL_ALL_AFTER: expected seconds, got {dead_man!r}"
            ) from None
        return BitMEX(
            Credentials.from_env("EXO_BITMEX", env),
            testnet=testnet,
            rest_url=env.get("EXO_BITMEX_REST_URL") or None,
            ws_url=env.get("EXO_BITMEX_WS_URL") or None,
            cancel_all_after=seconds or None,
        )
    if kind == "fix":
        from exo.instrument import load_instruments
        from exo.venues.fix import FIX

        if testnet:
            raise VenueConfigError(
                "--testnet does not apply to FIX: point EXO_FIX_HOST at the venue's test host"
            )
        port = _need(env, "EXO_FIX_PORT")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise VenueConfigError(f"EXO_FIX_PORT: expected a TCP port, got {port!r}")
        creds: Any = None
        if env.get("EXO_FIX_API_KEY") or env.get("EXO_FIX_CREDENTIALS_FILE"):
            creds = Credentials.from_env("EXO_FIX", env)
        return FIX(
            load_instruments(_need(env, "EXO_FIX_INSTRUMENTS")).values(),
            host=_need(env, "EXO_FIX_HOST"),
            port=int(port),
            sender_comp_id=_need(env, "EXO_FIX_SENDER_COMP_ID"),
            target_comp_id=_need(env, "EXO_FIX_TARGET_COMP_ID"),
            store_path=env.get("EXO_FIX_STORE") or ".exo/fix-store",
            credentials=creds,
            reset_on_logon=env.get("EXO_FIX_RESET_ON_LOGON", "") in ("1", "true", "yes", "Y"),
        )
    raise VenueConfigError(f"unknown venue {kind!r}: expected one of {', '.join(KINDS)}")
