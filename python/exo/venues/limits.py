"""Order rate limits enforced before a request leaves: a venue's "N orders per
window" rules (Binance: ORDERS per 10 s and per day; BitMEX: requests per
minute, 10/s on order routes), as sliding windows.

``await limits.acquire()`` returns when one more request fits every window,
waiting at most ``max_wait`` seconds; if it cannot fit by then it raises
``RateLimited`` at once (nothing is sent, nothing is buffered without bound).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence

__all__ = ["RateLimited", "SlidingWindows"]


class RateLimited(RuntimeError):
    """The request would break a venue rate limit; it was not sent."""


class SlidingWindows:
    """Several ``(count, seconds)`` windows at once, e.g. ``[(50, 10), (160000, 86400)]``."""

    def __init__(
        self,
        windows: Sequence[tuple[int, float]],
        *,
        max_wait: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for count, seconds in windows:
            if count <= 0 or seconds <= 0:
                raise ValueError(f"rate window must be positive, got ({count}, {seconds})")
        self.windows = [(int(c), float(s)) for c, s in windows]
        self.max_wait = max_wait
        self._clock = clock
        self._sent: collections.deque[float] = collections.deque()
        self._blocked_until = 0.0

    def block_until(self, when: float) -> None:
        """The venue said to back off (e.g. HTTP 429 Retry-After): refuse to
        send before ``when`` (same clock as ``clock``)."""
        self._blocked_until = max(self._blocked_until, when)

    def _delay(self, now: float) -> float:
        longest = max(s for _, s in self.windows)
        while self._sent and self._sent[0] <= now - longest:
            self._sent.popleft()
        delay = max(0.0, self._blocked_until - now)
        n = len(self._sent)
        for count, seconds in self.windows:
            in_window = sum(1 for t in self._sent if t > now - seconds) if seconds < longest else n
            if in_window >= count:
                # The oldest request that keeps the window full must age out.
                recent = [t for t in self._sent if t > now - seconds]
                delay = max(delay, recent[in_window - count] + seconds - now)
        return delay

    async def acquire(self) -> None:
        """Take one slot in every window, waiting up to ``max_wait``."""
        delay = self._delay(self._clock())
        if delay > self.max_wait:
            raise RateLimited(
                f"order rate limit reached; next slot in {delay:.3f} s (max wait {self.max_wait} s)"
            )
        if delay > 0:
            await asyncio.sleep(delay)
            delay = self._delay(self._clock())
            if delay > 0:
                raise RateLimited(f"order rate limit reached; next slot in {delay:.3f} s")
        self._sent.append(self._clock())
