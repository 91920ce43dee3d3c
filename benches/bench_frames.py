"""Venue frames parsed: Coinbase ``ticker`` frames into Quote and Trade.

The Python side is measured here: ``json.loads`` + ``Decimal`` into the
baseline's Quote/Trade, frames per second on one core. The Rust feed (parse
and conflate in Rust) arrives with another issue; wire it into
``rust_frames_per_second`` below and the row fills in, with the ratio.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from baseline.feed import parse_ticker_frame, ticker_frames
from benchkit import median, times_better

FRAMES = 50_000
ROUNDS = 7


def python_frames_per_second(frames: Sequence[bytes]) -> float:
    """``json.loads`` + ``Decimal`` into Quote and Trade, frames/s."""
    parse = parse_ticker_frame
    t = time.perf_counter()
    for frame in frames:
        parse(frame)
    return len(frames) / (time.perf_counter() - t)


def rust_frames_per_second(frames: Sequence[bytes]) -> float | None:
    """HOOK for the Rust feed: parse and conflate ``frames`` in Rust, return
    frames/s on one core. None until exo has a Rust feed parser."""
    return None


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
