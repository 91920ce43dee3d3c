"""The store writer's retry delays: exponential, capped, jittered, reset."""

from __future__ import annotations

import random

import pytest

from exo.backoff import Backoff


def test_steps_double_up_to_the_cap_and_each_delay_is_half_to_all_of_its_step() -> None:
    backoff = Backoff(0.05, 2.0, rng=random.Random(7))
    steps = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    for step in steps:
        delay = backoff.next()
        assert step / 2 <= delay <= step


def test_delays_are_jittered() -> None:
    delays = {Backoff(0.05, 2.0, rng=random.Random(seed)).next() for seed in range(20)}
    assert len(delays) == 20


def test_reset_starts_again_at_the_initial_step() -> None:
    backoff = Backoff(1.0, 60.0, rng=random.Random(1))
    for _ in range(5):
        backoff.next()
    assert backoff.failing
    backoff.reset()
    assert not backoff.failing
    assert 0.5 <= backoff.next() <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": 0}, "initial must be a positive number of seconds, got 0"),
        ({"initial": 1.0, "maximum": 0.5}, r"maximum must be at least initial \(1.0s\), got 0.5"),
        ({"factor": 0.5}, "factor must be at least 1, got 0.5"),
    ],
)
def test_bounds_out_of_range_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)
