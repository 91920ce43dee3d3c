"""Scaling: Updates/s delivered and p99 staleness as live orders and symbols
grow, with the feed saturated (exo: its Rust Replay feed at full speed;
baseline: a Python feed thread), trivial-but-real delegates (the light work
of bench_feed_saturated.py).

- live orders 10 ... 100,000, all on one symbol (every quote fans out to all);
- symbols 1 ... 1,000 with 1,000 live orders spread over them.

These feed the report's plots; the table carries the end points only.
"""

from __future__ import annotations

from typing import Any

from bench_feed_saturated import RUNS, each_round
from benchkit import keep, median, record, times_better

ORDERS = [10, 100, 1_000, 10_000, 100_000]
SYMBOLS = [1, 10, 100, 1_000]
ORDERS_FOR_SYMBOLS = 1_000
SECONDS = 0.5
ROUNDS = 3
SWEEP_RUNS = {k: RUNS[k] for k in ("exo", "baseline")}


def sweep(points: list[tuple[int, int]]) -> dict[str, dict[str, list[float]]]:
    """Per run name: medians over rounds of Updates/s and staleness p99 (ms), per point."""
    out: dict[str, dict[str, list[float]]] = {
        k: {"updates_per_s": [], "stale_p99_ms": []} for k in SWEEP_RUNS
    }
    for orders, symbols in points:
        rounds = list(
            each_round(ROUNDS, SWEEP_RUNS, orders=orders, symbols=symbols, seconds=SECONDS, gaps=False)
        )
        for k in SWEEP_RUNS:
            out[k]["updates_per_s"].append(median([r[k].updates_per_s for r in rounds]))
            out[k]["stale_p99_ms"].append(median([r[k].stale_p99_ms for r in rounds]))
    return out


def test_scaling_with_live_orders_saturated_feed(benchmark: Any) -> None:
    result: dict[str, Any] = {}
    benchmark.pedantic(lambda: result.update(sweep([(n, 1) for n in ORDERS])), rounds=1, iterations=1)
    keep("scaling_orders", {"orders": ORDERS, **result})
    e, b = result["exo"], result["baseline"]
    record(
        "feed saturated, 100,000 live orders of one symbol: Updates/s delivered, staleness p99",
        f"{e['updates_per_s'][-1] / 1e6:.2f} M/s, {e['stale_p99_ms'][-1]:.1f} ms",
        f"{b['updates_per_s'][-1] / 1e6:.2f} M/s, {b['stale_p99_ms'][-1]:.1f} ms",
        times_better(e["updates_per_s"][-1], b["updates_per_s"][-1], higher_is_better=True),
        "- (plot)",
        None,
    )


def test_scaling_with_symbols_saturated_feed(benchmark: Any) -> None:
    result: dict[str, Any] = {}
    points = [(ORDERS_FOR_SYMBOLS, s) for s in SYMBOLS]
    benchmark.pedantic(lambda: result.update(sweep(points)), rounds=1, iterations=1)
    keep("scaling_symbols", {"symbols": SYMBOLS, "orders": ORDERS_FOR_SYMBOLS, **result})
    e, b = result["exo"], result["baseline"]
    record(
        "feed saturated, 1,000 live orders over 1,000 symbols: Updates/s delivered, staleness p99",
        f"{e['updates_per_s'][-1] / 1e6:.2f} M/s, {e['stale_p99_ms'][-1]:.1f} ms",
        f"{b['updates_per_s'][-1] / 1e6:.2f} M/s, {b['stale_p99_ms'][-1]:.1f} ms",
        times_better(e["updates_per_s"][-1], b["updates_per_s"][-1], higher_is_better=True),
        "- (plot)",
        None,
    )
