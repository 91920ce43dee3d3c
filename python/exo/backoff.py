"""Backoff: how long to wait before retrying a store write that failed.

Exponential with "equal jitter" (AWS Architecture Blog, "Exponential Backoff
And Jitter", 2015): the n-th consecutive failure waits a random time between
half and all of ``min(maximum, initial * factor**(n-1))``, so that engines
sharing one store that went down do not all retry at the same instants, and
no wait is shorter than half its step.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays in seconds for consecutive failures; ``reset()`` after a success.

    ``initial`` > 0 is the first step, ``maximum`` >= ``initial`` caps the
    steps, ``factor`` >= 1 multiplies them. ``rng`` draws the jitter (a seeded
    ``random.Random`` makes the delays reproducible). Raises ``ValueError``
    for bounds out of range.
    """

    __slots__ = ("_rng", "_step", "factor", "initial", "maximum")

    def __init__(
        self,
        initial: float = 0.05,
        maximum: float = 2.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if not initial > 0:
            raise ValueError(f"initial must be a positive number of seconds, got {initial!r}")
        if not maximum >= initial:
            raise ValueError(f"maximum must be at least initial ({initial}s), got {maximum!r}")
        if not factor >= 1:
            raise ValueError(f"factor must be at least 1, got {factor!r}")
        self.initial, self.maximum, self.factor = float(initial), float(maximum), float(factor)
        self._rng = rng if rng is not None else random.Random()
        self._step = 0.0

    def next(self) -> float:
        """The delay before the next retry, in seconds; each call is one more
        consecutive failure."""
        self._step = self.initial if self._step == 0 else min(self.maximum, self._step * self.factor)
        return self._step / 2 + self._rng.uniform(0, self._step / 2)

    def reset(self) -> None:
        """The operation succeeded: the next failure starts at ``initial`` again."""
        self._step = 0.0

    @property
    def failing(self) -> bool:
        """True after a ``next()`` without a ``reset()`` since."""
        return self._step != 0
