"""Fan-out of one quote to 10,000 orders of one symbol, exo beside the
baseline: the time from ``engine.quote()`` until all 10,000 delegates ran, and
the ``engine.quote()`` call alone (the fan-out and merge, before any hand-over).
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from benchkit import ENGINES, median, run_on, size, times_better

ORDERS = size(10_000, 100)
QUOTES_PER_RUN = size(20, 2)
RUNS = size(5, 1)


class CountDown:
    """Counts Updates; resolves the round's future when every order has had one."""

    __slots__ = ("box",)

    def __init__(self, box: list[Any]) -> None:
        self.box = box

    def action(self, update: Any) -> bool:
        box = self.box
        box[0] -= 1
        if box[0] == 0:
            box[1].set_result(None)
        return False


async def fan_out_ns(api: SimpleNamespace) -> tuple[list[float], list[float]]:
    """Per quote: ns until every delegate ran, and ns the quote() call took."""
    loop = asyncio.get_running_loop()
    box: list[Any] = [ORDERS, loop.create_future()]
    async with api.Engine(lambda o: CountDown(box), idle_interval=3600) as engine:
        for _ in range(ORDERS):
            await engine.submit(api.Order("BUY", "BTC-USD"))
        await box[1]
        q = api.Quote("BTC-USD", "100", "1", "101", "1")
        all_ran, call = [], []
        clock = time.perf_counter_ns
        for _ in range(QUOTES_PER_RUN):
            box[0], box[1] = ORDERS, loop.create_future()
            await asyncio.sleep(0)
            t0 = clock()
            engine.quote(q)
            t1 = clock()
            await box[1]
            all_ran.append(clock() - t0)
            call.append(t1 - t0)
        return all_ran, call


def test_fan_out_of_one_quote_to_10000_orders_ms(benchmark: Any, figures: Any) -> None:
    all_ran: dict[str, list[float]] = {"exo": [], "baseline": []}
    call: dict[str, list[float]] = {"exo": [], "baseline": []}

    def one_round() -> None:
        for name, api in ENGINES.items():
            ran, c = run_on("asyncio", lambda api=api: fan_out_ns(api))
            all_ran[name].extend(ran)
            call[name].extend(c)

    benchmark.pedantic(one_round, rounds=RUNS, iterations=1)
    exo_ms, base_ms = median(all_ran["exo"]) / 1e6, median(all_ran["baseline"]) / 1e6
    exo_call, base_call = median(call["exo"]) / ORDERS, median(call["baseline"]) / ORDERS
    figures(
        "fan-out of one quote to 10,000 orders: all delegates ran",
        f"{exo_ms:.2f} ms",
        f"{base_ms:.2f} ms",
        times_better(exo_ms, base_ms),
        "<= 2 ms (pure asyncio ref. 5.7 ms)",
        exo_ms <= 2,
    )
    figures(
        "fan-out of one quote to 10,000 orders: the quote() call alone, per order",
        f"{exo_call:.1f} ns/order",
        f"{base_call:.1f} ns/order",
        times_better(exo_call, base_call),
        "Rust side <= 10 ns/order (cargo bench; this includes the call from Python)",
        None,
    )
