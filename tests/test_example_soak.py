"""The soak of tests/soak.py at CI size (issue 11, item 11): 60 s of orders
and cancels against the example at ``--speed max``; ``make soak`` runs it for
10 minutes (SOAK_SECONDS). The RSS curve is written to target/soak/rss-ci.csv."""

from __future__ import annotations

from pathlib import Path

from tests.soak import Result, Sample, _steady, soak

ROOT = Path(__file__).parent.parent


def test_a_minute_of_orders_and_cancels_keeps_memory_flat_and_accounts_for_every_order() -> None:
    result = soak(60.0, ROOT / "target" / "soak" / "rss-ci.csv", sample_every=2.0)
    print(result.summary())
    assert result.orders > 500 and result.cancels > 50 and result.fills > result.orders
    assert result.problems == []
    assert result.rss_growth() <= 0.05


_WARM_UP = [6, 8, 21, 23, 8, 21, 8, 23, 8, 21]
"""Tasks sampled every 2 s in the 20 s warm-up (happened to sample low)."""


def _result(tasks: list[int]) -> Result:
    samples = [Sample(2.0 * i, 60_000, 13, 2, n, 10) for i, n in enumerate(tasks)]
    return Result(60.0, 0, 0, 0, samples, 20.0, [])


def test_tasks_that_swing_with_live_orders_are_not_a_leak() -> None:
    # After the warm-up, samples swing between 8 and 86 with the live orders.
    swings = [*_WARM_UP, 72, 8, 86, 21, 72, 8, 84, 72, 8, 86, 72, 8, 63, 72, 8]
    assert _steady(_result(swings)) == []


def test_tasks_whose_floor_rises_are_reported_as_grown() -> None:
    # Leaked tasks never end: even the lowest samples climb past the warm-up's peak.
    leaking = [*_WARM_UP, *(30 + 10 * i + (40 if i % 2 else 0) for i in range(15))]
    assert _steady(_result(leaking)) == ["tasks grew: at most 23 in the warm-up, 130 at the end"]
