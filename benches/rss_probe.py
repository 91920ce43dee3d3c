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
  C library has no malloc_trim;
- allocators_before, allocators_after (after the last wave, before the trim):
  where the memory is, see ``allocators()``.
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


def _stderr_of(call: Any) -> str:
    """What a C function writes to file descriptor 2."""
    sys.stderr.flush()
    r, w = os.pipe()
    saved = os.dup(2)
    try:
        os.dup2(w, 2)
        call()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    return b"".join(chunks).decode(errors="replace")


def allocators() -> dict[str, int | None]:
    """Where the process's heap memory is, by allocator:

    - pymalloc_arenas: CPython's small-object arenas (1 MiB each since 3.10),
      and pymalloc_bytes, the bytes of live objects in them (from
      ``sys._debugmallocstats``); an arena is returned to the OS only when
      every object in it is freed;
    - glibc_in_use: bytes malloc'd and not freed, over all of glibc's arenas
      (the Rust core's allocations and CPython's blocks over 512 B), from
      ``malloc_stats()``.

    None where the interpreter or the C library does not say.
    """
    out: dict[str, int | None] = {"pymalloc_arenas": None, "pymalloc_bytes": None, "glibc_in_use": None}
    debug = getattr(sys, "_debugmallocstats", None)
    if debug is not None:
        for line in _stderr_of(debug).splitlines():
            if line.startswith("# arenas allocated current"):
                out["pymalloc_arenas"] = int(line.split()[-1].replace(",", ""))
            elif line.startswith("# bytes in allocated blocks"):
                out["pymalloc_bytes"] = int(line.split()[-1].replace(",", ""))
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        stats = libc.malloc_stats
    except (OSError, AttributeError):
        return out
    text = _stderr_of(stats)
    total = text.rsplit("Total (incl. mmap):", 1)[-1]
    for line in total.splitlines():
        if line.strip().startswith("in use bytes"):
            out["glibc_in_use"] = int(line.split()[-1])
    return out


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
        allocators_before = allocators()
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
        allocators_after = allocators()
        trimmed = rss_bytes() if malloc_trim() else None
    return {
        "before": before,
        "growth": growth,
        "live": live,
        "waves": after_waves,
        "after": after_waves[0],
        "trimmed": trimmed,
        "allocators_before": allocators_before,
        "allocators_after": allocators_after,
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
