"""Venue frames parsed: Coinbase ``ticker`` frames into Quote and Trade.

Python: ``json.loads`` + ``Decimal`` into the baseline's Quote/Trade, frames
per second on one core. exo: the same frames through exo's Rust feed (the
replay feed reading them from a file, parsing, de-duplicating prints and
conflating into the engine's queues, then fanned out to one live order),
timed from the order's submit until the feed has counted every frame. The
per-venue parse figures without the engine are in ``cargo bench`` (feeds).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baseline.feed import parse_ticker_frame, ticker_frames
from benchkit import median, size, times_better

import exo

FRAMES = size(200_000, 1_000)
ROUNDS = size(7, 1)


def python_frames_per_second(frames: Sequence[bytes]) -> float:
    """``json.loads`` + ``Decimal`` into Quote and Trade, frames/s."""
    parse = parse_ticker_frame
    t = time.perf_counter()
    for frame in frames:
        parse(frame)
    return len(frames) / (time.perf_counter() - t)


def rust_frames_per_second(frames: Sequence[bytes]) -> float | None:
    """exo's Rust feed: the frames replayed as fast as possible into an engine
    with one live order, frames/s."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.ndjson"
        path.write_bytes(b"\n".join(frames) + b"\n")

        async def run() -> float:
            feed = exo.feeds.Replay(path)
            async with exo.Engine(lambda order: _Idle(), feed=feed, idle_interval=3600) as engine:
                t = time.perf_counter()
                await engine.submit(exo.Order("BUY", "BTC-USD"))
                while feed.stats()["frames"] < len(frames):
                    await asyncio.sleep(0.0005)
                return len(frames) / (time.perf_counter() - t)

        return asyncio.run(run())


class _Idle:
    def action(self, update: exo.Update) -> bool:
        return False


def test_venue_frames_parsed_per_second(benchmark: Any, figures: Any) -> None:
    frames = list(ticker_frames("BTC-USD", FRAMES))
    python_rates: list[float] = []
    rust_rates: list[float] = []

    def one_round() -> None:
        python_rates.append(python_frames_per_second(frames))
        rust = rust_frames_per_second(frames)
        if rust is not None:
            rust_rates.append(rust)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    py = median(python_rates)
    rust = median(rust_rates) if rust_rates else None
    figures(
        "venue frames parsed into Quote+Trade, per core (exo: Rust feed; baseline: json.loads + Decimal)",
        "pending: Rust feed not built yet (hook: rust_frames_per_second)"
        if rust is None
        else f"{rust / 1e3:.0f} k frames/s",
        f"{py / 1e3:.0f} k frames/s",
        "-" if rust is None else times_better(rust, py, higher_is_better=True),
        ">= 1.5 M frames/s and >= 10x Python (Python ref. 120-170 k frames/s)",
        None if rust is None else (rust >= 1.5e6 and rust >= 10 * py),
    )
