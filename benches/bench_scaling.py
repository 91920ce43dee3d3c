"""Scaling: Updates/s delivered and p99 staleness as live orders and symbols
grow, for the report's plots (the table carries the end points only).

- live orders 10 ... 100,000, all on one symbol (every quote fans out to all);
- symbols 1 ... 1,000 with 1,000 live orders spread over them (round robin).

Two ways of driving, each a line on the plots:

- conflation defeated, exo beside the baseline: ``engine.quote()`` on the
  loop, one quote per symbol, then wait until every delegate ran, repeat.
  Updates/s over the run; latency p99 is from the quote() call to each
  delegate being called (read by the delegate on one clock for both engines),
  i.e. the fan-out latency. It stands for staleness here: the engines'
  ``staleness_ns`` are not stamped at quite the same points.
- feed saturated, exo only: its Rust Replay feed at full speed, with trivial
  delegates as in the conflation-defeated runs (``Touch`` of
  bench_feed_saturated.py: it reads ``staleness_ns``), so that the two lines
  differ only by the feed. The baseline has no line here: its Python feed
  thread fills the loop with ``call_soon_threadsafe`` callbacks faster than
  1,000 or more delegates drain them, and the backlog grows without bound (the
  run never ends).

The end points under the saturated feed are judged against DESIGN.md's
targets, with the light-work delegates of bench_feed_saturated.py beside
them (their own Decimal arithmetic bounds those: see the row). With one order
per symbol, an order gets at most one Update per frame of its symbol (a frame
is a quote and a print): Updates/s cannot exceed the feed's frames/s.
"""

from __future__ import annotations

import asyncio
import functools
import time
from types import SimpleNamespace
from typing import Any

from bench_feed_saturated import LightWork, Saturated, Touch, each_round, symbol_names
from benchkit import ENGINES, keep, median, percentile, record, run_on, size, times_better

ORDERS = size([10, 100, 1_000, 10_000, 100_000], [10, 100])
SYMBOLS = size([1, 10, 100, 1_000], [1, 10])
ORDERS_FOR_SYMBOLS = size(1_000, 10)
UPDATES_PER_RUN = size(200_000, 1_000)
MIN_QUOTE_ROUNDS = size(5, 1)
LIGHT_ROUNDS = size(3, 1)
SATURATED_S = size(0.5, 0.05)
ROUNDS = size(5, 1)
LIGHT_ROUNDS = size(3, 1)


class Count:
    """Counts Updates and keeps how long after the round's quote() each came;
    resolves the round's future when every order has had one."""

    __slots__ = ("box",)

    def __init__(self, box: list[Any]) -> None:
        self.box = box

    def action(self, update: Any) -> bool:
        box = self.box
        box[3].append(time.monotonic_ns() - box[4])
        box[0] += 1
        if box[0] == box[1]:
            box[2].set_result(None)
        return False


async def defeated(api: SimpleNamespace, orders: int, symbols: int) -> tuple[float, float]:
    """(Updates/s, quote() -> delegate p99 ms) with conflation defeated."""
    names = symbol_names(symbols)
    quote_rounds = max(MIN_QUOTE_ROUNDS, UPDATES_PER_RUN // orders)
    loop = asyncio.get_running_loop()
    box: list[Any] = [0, orders, loop.create_future(), [], time.monotonic_ns()]
    async with api.Engine(lambda o: Count(box), idle_interval=3600) as engine:
        for i in range(orders):
            await engine.submit(api.Order("BUY", names[i % symbols]))
        await box[2]
        quotes = [api.Quote(s, "100", "1", "101", "1") for s in names]
        box[3] = []
        t = time.perf_counter()
        for _ in range(quote_rounds):
            box[0], box[2], box[4] = 0, loop.create_future(), time.monotonic_ns()
            for q in quotes:
                engine.quote(q)
            await box[2]
        elapsed = time.perf_counter() - t
    return orders * quote_rounds / elapsed, percentile(box[3], 99) / 1e6


def saturated_rounds(
    orders: int, symbols: int, delegate: type[LightWork] | type[Touch], rounds: int = ROUNDS
) -> list[Saturated]:
    return [
        r["exo"]
        for r in each_round(
            rounds,
            {"exo": ("exo", "rust")},
            orders=orders,
            symbols=symbols,
            seconds=SATURATED_S,
            gaps=False,
            delegate=delegate,
        )
    ]


def sweep(points: list[tuple[int, int]]) -> dict[str, dict[str, list[float]]]:
    """Per line: medians over rounds of Updates/s and staleness p99 (ms), per
    point; for the saturated line also the feed's frames/s."""
    lines = ("exo", "baseline", "exo_rust_feed_saturated")
    out: dict[str, dict[str, list[float]]] = {k: {"updates_per_s": [], "stale_p99_ms": []} for k in lines}
    for orders, symbols in points:
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in lines}
        for _ in range(ROUNDS):
            for name, api in ENGINES.items():
                got[name].append(run_on("asyncio", functools.partial(defeated, api, orders, symbols)))
        frames = []
        for r in saturated_rounds(orders, symbols, Touch):
            got["exo_rust_feed_saturated"].append((r.updates_per_s, r.stale_p99_ms))
            frames.append(r.frames_per_s)
        for k in lines:
            out[k]["updates_per_s"].append(median([u for u, _ in got[k]]))
            out[k]["stale_p99_ms"].append(median([s for _, s in got[k]]))
        out["exo_rust_feed_saturated"].setdefault("frames_per_s", []).append(median(frames))
    return out


def saturated_end_point_row(
    what: str, result: dict[str, Any], orders: int, symbols: int, target: tuple[float, float]
) -> None:
    """The judged row: the saturated line's end point (trivial delegates), with
    light-work delegates beside it, and the figures that bound them."""
    f = result["exo_rust_feed_saturated"]
    ups, stale, frames = f["updates_per_s"][-1], f["stale_p99_ms"][-1], f["frames_per_s"][-1]
    light = saturated_rounds(orders, symbols, LightWork, LIGHT_ROUNDS)
    light_ups = median([r.updates_per_s for r in light])
    light_stale = median([r.stale_p99_ms for r in light])
    # No "frames" in the figure's text: report.py files rows by substring,
    # and that word belongs to the frames row.
    bound = "; at most one Update per frame per order: the feed's rate bounds it" if symbols == orders else ""
    unfed = result["exo"]["updates_per_s"][-1]
    record(
        f"feed saturated, {what}, trivial delegates (exo: Rust Replay feed at full speed{bound};"
        f" light-work delegates: {light_ups / 1e6:.2f} M/s, staleness p99 {light_stale:.2f} ms,"
        f" their Decimal arithmetic bounds them; without the feed: {unfed / 1e6:.2f} M/s)",
        f"{ups / 1e6:.2f} M/s, staleness p99 {stale:.2f} ms, feed {frames / 1e3:.0f} k frames/s",
        "- (its Python feed thread's backlog grows without bound)",
        "-",
        f">= {target[0]:g} M/s and staleness p99 <= {target[1]:g} ms (round 1: {ROUND_1[what]})",
        ups >= target[0] * 1e6 and stale <= target[1],
    )


ROUND_1 = {
    "100,000 live orders of one symbol": "0.02 M/s, 10.2 ms",
    "1,000 live orders over 1,000 symbols": "0.27-0.42 M/s, 1.3-1.4 ms, light work",
}
"""The round-1 figures (light-work delegates), for the target column."""


def end_point_row(what: str, result: dict[str, Any]) -> None:
    e, b, f = result["exo"], result["baseline"], result["exo_rust_feed_saturated"]
    record(
        f"{what}: Updates/s and quote() -> delegate p99, conflation defeated"
        f" (exo with its Rust feed saturated, trivial delegates: {f['updates_per_s'][-1] / 1e6:.2f} M/s,"
        f" staleness p99 {f['stale_p99_ms'][-1]:.2f} ms)",
        f"{e['updates_per_s'][-1] / 1e6:.2f} M/s, p99 {e['stale_p99_ms'][-1]:.2f} ms",
        f"{b['updates_per_s'][-1] / 1e6:.2f} M/s, p99 {b['stale_p99_ms'][-1]:.2f} ms",
        times_better(e["updates_per_s"][-1], b["updates_per_s"][-1], higher_is_better=True),
        "- (see the plots)",
        None,
    )


def test_scaling_with_live_orders(benchmark: Any) -> None:
    result: dict[str, Any] = {}
    benchmark.pedantic(lambda: result.update(sweep([(n, 1) for n in ORDERS])), rounds=1, iterations=1)
    keep("scaling_orders", {"orders": ORDERS, **result})
    end_point_row("100,000 live orders of one symbol", result)
    saturated_end_point_row("100,000 live orders of one symbol", result, ORDERS[-1], 1, (1, 2))


def test_scaling_with_symbols(benchmark: Any) -> None:
    result: dict[str, Any] = {}
    points = [(ORDERS_FOR_SYMBOLS, s) for s in SYMBOLS]
    benchmark.pedantic(lambda: result.update(sweep(points)), rounds=1, iterations=1)
    keep("scaling_symbols", {"symbols": SYMBOLS, "orders": ORDERS_FOR_SYMBOLS, **result})
    end_point_row("1,000 live orders over 1,000 symbols", result)
    saturated_end_point_row(
        "1,000 live orders over 1,000 symbols", result, ORDERS_FOR_SYMBOLS, SYMBOLS[-1], (1.5, 0.5)
    )
