"""RSS of one engine before, during and after N idle live orders, measured in a
fresh process (run by bench_memory.py; not a benchmark on its own):

    python benches/rss_probe.py exo|baseline N

prints one JSON line: {"before": bytes, "live": bytes, "after": bytes}.
RSS is read from /proc/self/statm.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Trivial:
    """Does nothing until a quote arrives, then completes."""

    __slots__ = ()
    handed_over = 0

    def __init__(self, order: Any) -> None:
        pass

    def action(self, update: Any) -> bool:
        Trivial.handed_over += 1
        return update.quote is not None


async def until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.001)


async def measure(api: Any, n: int) -> dict[str, int]:
    async with api.Engine(Trivial, idle_interval=3600) as engine:
        # Warm the engine's code paths (one order, start to end) before the baseline reading.
        await engine.submit(api.Order("BUY", "BTC-USD"))
        await until(lambda: Trivial.handed_over == 1)
        engine.quote(api.Quote("BTC-USD", "100", "1", "101", "1"))
        await until(lambda: engine.live == 0)
        Trivial.handed_over = 0
        gc.collect()
        before = rss_bytes()
        for _ in range(n):
            await engine.submit(api.Order("BUY", "BTC-USD"))
        await until(lambda: Trivial.handed_over == n)  # every order Idle after its NEW
        gc.collect()
        live = rss_bytes()
        engine.quote(api.Quote("BTC-USD", "100", "1", "101", "1"))
        await until(lambda: engine.live == 0)
        gc.collect()
        after = rss_bytes()
    return {"before": before, "live": live, "after": after}


def main() -> None:
    name, n = sys.argv[1], int(sys.argv[2])
    if name == "exo":
        import exo as api
    else:
        import baseline as api
    print(json.dumps(asyncio.run(measure(api, n))))


if __name__ == "__main__":
    main()
