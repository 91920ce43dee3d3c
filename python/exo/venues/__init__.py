"""Venues: where child orders go. Each adapter sends exo.child requests and
hands every execution report, once, to a report callback (``engine.report``).

- ``exo.venues.binance.Binance``: Binance spot WebSocket API + user data stream;
- ``exo.venues.credentials.Credentials``: API keys from env vars or a file.
"""

from exo.venues.binance import Binance
from exo.venues.credentials import Credentials, CredentialsError
from exo.venues.limits import RateLimited

__all__ = ["Binance", "Credentials", "CredentialsError", "RateLimited"]
