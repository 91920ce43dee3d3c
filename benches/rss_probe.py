"""RSS of one engine before, during and after N idle live orders, measured in a
fresh process (run by bench_memory.py; not a benchmark on its own):

    python benches/rss_probe.py exo|baseline N [WAVES]

prints one JSON line (RSS in bytes, read from /proc/self/statm):

- before: the engine started and warmed up, no live order;
- growth: [[k, RSS], ...] while the first wave's orders are submitted, at
  k = 10, 100, ... N live orders;
- live: N idle live orders (each handed its NEW);
- waves: RSS after each of WAVES (default 1) waves of N orders submitted and
  completed (waves[0] is "after" the first);
- after: waves[0];
- trimmed: after the last wave and ``malloc_trim(0)`` (glibc returns the free
  memory it keeps at the top of its heaps and in free pages), or null when the
  C library has no malloc_trim.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
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


def malloc_trim() -> bool:
    """glibc's malloc_trim(0); False when the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True


async def measure(api: Any, n: int, waves: int = 1) -> dict[str, Any]:
    async with api.Engine(Trivial, idle_interval=3600) as engine:
        # Warm the engine's code paths (one order, start to end) before the baseline reading.
        await engine.submit(api.Order("BUY", "BTC-USD"))
        await until(lambda: Trivial.handed_over == 1)
        engine.quote(api.Quote("BTC-USD", "100", "1", "101", "1"))
        await until(lambda: engine.live == 0)
        Trivial.handed_over = 0
        gc.collect()
        before = rss_bytes()
        growth: list[list[int]] = []
        marks = [10**k for k in range(1, 12) if 10**k <= n]
        live = 0
        after_waves: list[int] = []
        for wave in range(waves):
            Trivial.handed_over = 0
            for i in range(1, n + 1):
                await engine.submit(api.Order("BUY", "BTC-USD"))
                if wave == 0 and marks and i == marks[0]:
                    marks.pop(0)
                    await until(lambda i=i: Trivial.handed_over == i)
                    gc.collect()
                    growth.append([i, rss_bytes()])
            await until(lambda: Trivial.handed_over == n)  # every order Idle after its NEW
            if wave == 0:
                gc.collect()
                live = rss_bytes()
            engine.quote(api.Quote("BTC-USD", "100", "1", "101", "1"))
            await until(lambda: engine.live == 0)
            gc.collect()
            after_waves.append(rss_bytes())
        trimmed = rss_bytes() if malloc_trim() else None
    return {
        "before": before,
        "growth": growth,
        "live": live,
        "waves": after_waves,
        "after": after_waves[0],
        "trimmed": trimmed,
    }


def main() -> None:
    name, n = sys.argv[1], int(sys.argv[2])
    waves = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if name == "exo":
        import exo as api
    else:
        import baseline as api
    print(json.dumps(asyncio.run(measure(api, n, waves))))


if __name__ == "__main__":
    main()
