"""The soak of tests/soak.py at CI size (issue 11, item 11): 60 s of orders
and cancels against the example at ``--speed max``; ``make soak`` runs it for
10 minutes (SOAK_SECONDS). The RSS curve is written to target/soak/rss-ci.csv."""

from __future__ import annotations

from pathlib import Path

from tests.soak import soak

ROOT = Path(__file__).parent.parent


def test_a_minute_of_orders_and_cancels_keeps_memory_flat_and_accounts_for_every_order() -> None:
    result = soak(60.0, ROOT / "target" / "soak" / "rss-ci.csv", sample_every=2.0)
    print(result.summary())
    assert result.orders > 500 and result.cancels > 50 and result.fills > result.orders
    assert result.problems == []
    assert result.rss_growth() <= 0.05
