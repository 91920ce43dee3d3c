"""Venues: where child orders go and execution reports come from.

- ``Venue``: the interface (a Protocol), and ``VenueBase``: what every venue
  shares (routing reports to their parent, rate limits, "status unknown",
  reconciliation). See ``exo.venues.base``.
- ``Paper``: the in-process paper venue, matching against the feed.
"""

from exo.venues.base import RateLimited, UnknownSymbol, Venue, VenueBase, VenueError
from exo.venues.paper import DEFAULT_INSTRUMENTS, Paper

__all__ = ["DEFAULT_INSTRUMENTS", "Paper", "RateLimited", "UnknownSymbol", "Venue", "VenueBase", "VenueError"]
