"""Benchmark helpers: every figure is recorded with its DESIGN.md target and
printed in one table at the end of the run."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

FIGURES: list[tuple[str, str, str, str]] = []


def record(figure: str, value: str, target: str, baseline: str = "-") -> None:
    """Adds a row: figure | exo | target | baseline/ratio."""
    FIGURES.append((figure, value, target, baseline))


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section("exo figures beside DESIGN.md targets (medians of repeated runs)")
    tr.write_line("| figure | exo | target | baseline / ratio |")
    tr.write_line("|---|---|---|---|")
    for row in FIGURES:
        tr.write_line("| " + " | ".join(row) + " |")


@pytest.fixture
def figures() -> Any:
    return record
