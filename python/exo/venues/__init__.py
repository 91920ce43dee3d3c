"""Venues: where child orders go and execution reports come from.

- ``Venue``: the interface (a Protocol), and ``VenueBase``: what every venue
  shares (routing reports to their parent, rate limits, "status unknown",
  reconciliation). See ``exo.venues.base``.
- ``Paper``: the in-process paper venue, matching against the feed.
- ``Binance``: Binance spot WebSocket API + user data stream (``exo.venues.binance``).
- ``BitMEX``: REST order entry + authenticated websocket (``exo.venues.bitmex``).
- ``FIX``: a FIX 4.4 initiator on QuickFIX (``exo.venues.fix``).
- ``Credentials``: API keys from environment variables or a file, never printed.

The real venues are imported on first use: their libraries (websockets,
cryptography, httpx, quickfix) are the ``venues`` extra, not needed for paper.
"""

from typing import Any

from exo.venues.base import NotJournaled, RateLimited, UnknownSymbol, Venue, VenueBase, VenueError
from exo.venues.credentials import Credentials, CredentialsError
from exo.venues.paper import DEFAULT_INSTRUMENTS, Paper

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "FIX",
    "Binance",
    "BitMEX",
    "Credentials",
    "CredentialsError",
    "NotJournaled",
    "Paper",
    "RateLimited",
    "UnknownSymbol",
    "Venue",
    "VenueBase",
    "VenueError",
]

_LAZY = {"Binance": "exo.venues.binance", "BitMEX": "exo.venues.bitmex", "FIX": "exo.venues.fix"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'exo.venues' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
