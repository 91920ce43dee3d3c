"""Store health as the journal's two writers see it: counters, one warning per
outage (then at most one every 5 s), and the retry delay."""

from __future__ import annotations

import logging
import time

from exo.backoff import Backoff
from exo.store import StoreError, StoreUnavailable

__all__ = ["StoreHealth"]

log = logging.getLogger("exo.store")

_WARN_EVERY = 5.0
"""Seconds between two warnings while the store stays down."""


class StoreHealth:
    """Shared by the intake and checkpoint writers of one journal."""

    def __init__(self) -> None:
        self.counters = {"journaled": 0, "checkpoints": 0, "store_failures": 0}
        self._down_since: float | None = None
        self._last_warning = 0.0

    @staticmethod
    def backoff() -> Backoff:
        """A writer's retry delays: 50 ms doubling to 2 s, jittered."""
        return Backoff(0.05, 2.0)

    def failed(self, exc: BaseException, what: str) -> None:
        """A store call failed; ``what`` names it for the warning."""
        self.counters["store_failures"] += 1
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            kind = "unreachable" if isinstance(exc, StoreUnavailable) else "failing"
            log.warning(
                "store %s (%s failed: %s); market data and delegates carry on, checkpoints are "
                "retried with backoff, submit/report raise StoreUnavailable until it is back",
                kind,
                what,
                exc if isinstance(exc, StoreError) else repr(exc),
            )

    def succeeded(self) -> None:
        """A store call succeeded: logs the end of an outage."""
        if self._down_since is not None:
            log.warning("store back after %.1fs", time.monotonic() - self._down_since)
            self._down_since = None
            self._last_warning = 0.0
