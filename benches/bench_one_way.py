"""One-way latency from exo's Rust feed to the Python delegate being called.

A Coinbase-style venue runs in another process (benches/stamped_venue.py) on
127.0.0.1 and sends one ticker frame every millisecond (slow enough that
nothing conflates), stamping ``time.monotonic_ns()`` into the frame just before
the send. exo's Rust Coinbase feed receives it on a tokio thread, parses and
conflates it, and the engine hands the Update to the delegate of the one live
order on the event loop. The delegate reads the clock first thing and records:

- feed thread -> delegate: now - ``update.arrived_ns`` (stamped when the
  engine's tokio thread fanned the parsed quote out to the order): the
  figure DESIGN.md names, and the one ``met?`` judges.
- wire -> delegate: now - the frame's stamp. Adds the venue's send, loopback
  TCP and the tokio thread's own wake-up from epoll (a parked thread on this
  VM takes 20-60 us to wake), shown beside it.

Each runs with the default idle strategy (``spin`` = 2 ms, adaptive: the
loop polls through the ~1 ms gaps of this feed, see ``exo.Engine``), with
``spin=5 ms`` and with ``spin=0`` (never polls: the loop sleeps between
frames and each frame must wake it). Each also measures what the strategy
costs: the process's CPU seconds per wall second while the 1 kHz feed flows
and while the engine waits with no data (the feed connected, the venue
silent), from ``time.process_time()`` (every thread of the process).

The baseline has no Rust feed, so it has no figure here.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchkit import LOOPS, keep, median, percentile, record, run_on, size, thin

import exo

FRAMES = size(1_500, 150)
INTERVAL_S = 0.001
WARM_UP_FRAMES = size(100, 10)
ROUNDS = size(5, 1)
VENUE = Path(__file__).with_name("stamped_venue.py")
IDLE_S = size(1.0, 0.1)


@pytest.fixture(scope="module")
def venue_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(VENUE), str(FRAMES), str(INTERVAL_S)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


class Stamps:
    """Records, per Update with a quote, the two one-way latencies in ns."""

    __slots__ = ("engine_ns", "seen", "wire_ns")

    def __init__(self) -> None:
        self.wire_ns: list[int] = []
        self.engine_ns: list[int] = []
        self.seen = 0

    def action(self, update: exo.Update) -> bool:
        now = time.monotonic_ns()
        arrived = update.arrived_ns
        q = update.quote
        if q is not None:
            self.seen += 1
            if self.seen > WARM_UP_FRAMES:
                self.wire_ns.append(now - int(q.bid_px))
                if arrived is not None:
                    self.engine_ns.append(now - arrived)
        return False


def cpu_per_wall(since: tuple[float, float]) -> float:
    """Process CPU seconds per wall second since ``since`` = (cpu, wall)."""
    return (time.process_time() - since[0]) / max(1e-9, time.perf_counter() - since[1])


def clocks() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


async def one_way_ns(url: str, spin: float | None) -> tuple[list[int], list[int], float, float]:
    """(wire ns, engine ns, CPU s/s while the feed flows, CPU s/s idle)."""
    stamps = Stamps()
    feed = exo.feeds.Coinbase(url, symbols=["BTC-USD"])
    knob = {} if spin is None else {"spin": spin}
    async with exo.Engine(lambda order: stamps, feed=feed, idle_interval=3600, **knob) as engine:
        await engine.submit(exo.Order("BUY", "BTC-USD"))
        deadline = time.monotonic() + FRAMES * INTERVAL_S * 3 + 5
        while stamps.seen < WARM_UP_FRAMES and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        busy = clocks()
        while feed.stats()["frames"] < FRAMES and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        busy_cpu = cpu_per_wall(busy)
        await asyncio.sleep(0.05)  # the last frame's hand-over, and the strategy parks
        idle = clocks()
        await asyncio.sleep(IDLE_S)
        idle_cpu = cpu_per_wall(idle)
    return stamps.wire_ns, stamps.engine_ns, busy_cpu, idle_cpu


KNOBS = {None: "", 0.005: ", spin=5 ms", 0.0: ", spin=0"}
"""spin -> the label of its rows (None: the default, adaptive up to 2 ms)."""


@pytest.mark.parametrize("spin", list(KNOBS))
@pytest.mark.parametrize("loop_kind", LOOPS)
def test_one_way_latency_rust_feed_to_python_delegate_us(
    benchmark: Any, venue_url: str, loop_kind: str, spin: float | None
) -> None:
    wire: list[list[int]] = []
    engine: list[list[int]] = []
    busy: list[float] = []
    idle: list[float] = []

    def one_round() -> None:
        w, e, b, i = run_on(loop_kind, lambda: one_way_ns(venue_url, spin))
        assert w, "no frame reached the delegate"
        wire.append(w)
        engine.append(e)
        busy.append(b)
        idle.append(i)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    w50, w99 = (median([percentile(r, p) for r in wire]) / 1e3 for p in (50, 99))
    e50, e99 = (median([percentile(r, p) for r in engine]) / 1e3 for p in (50, 99))
    knob = KNOBS[spin]
    keep(
        f"one_way_us[{loop_kind}{knob}]",
        {
            "wire": thin([x / 1e3 for r in wire for x in r]),
            "engine": thin([x / 1e3 for r in engine for x in r]),
        },
    )
    record(
        f"one-way latency, Rust feed thread -> Python delegate called [{loop_kind}{knob}]"
        f" (from the websocket frame on the wire, incl. the tokio thread's own wake-up:"
        f" p50 {w50:.1f} us, p99 {w99:.1f} us)",
        f"p50 {e50:.1f} us, p99 {e99:.1f} us",
        "- (no Rust feed)",
        "-",
        "p50 <= 20 us, p99 <= 50 us",
        e50 <= 20 and e99 <= 50,
    )
    strategy = "default: adaptive, spin <= 2 ms" if spin is None else knob.lstrip(", ")
    record(
        f"CPU of the idle strategy, process CPU seconds per wall second [{loop_kind}, {strategy}]",
        f"idle {median(idle):.3f} s/s, steady 1 kHz feed {median(busy):.3f} s/s",
        "-",
        "-",
        "report it (the cost of the latency above)",
        None,
    )
