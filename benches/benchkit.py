"""Benchmark helpers: exo and the pure-asyncio baseline (benches/baseline) are
measured in the same run, and every figure is printed in one table at the end:

    figure | exo | baseline | ratio | target | met?

``ratio`` is how many times better exo is than the baseline (time: baseline /
exo; rate: exo / baseline; memory: baseline / exo). ``met?`` judges exo's
figure against DESIGN.md's target.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any, Callable, TypeVar

import baseline  # benches/ is on sys.path: pytest puts the conftest's folder there
import pytest

import exo

T = TypeVar("T")

FIGURES: list[tuple[str, str, str, str, str, str]] = []

ENGINES: dict[str, SimpleNamespace] = {
    name: SimpleNamespace(name=name, Engine=m.Engine, Order=m.Order, Quote=m.Quote, Trade=m.Trade)
    for name, m in (("exo", exo), ("baseline", baseline))
}
"""The two engines, by name, with the types their API takes."""


def _uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


LOOPS = ["asyncio", "uvloop"] if _uvloop_available() else ["asyncio"]
"""Event loops the loop-sensitive rows are measured under (uvloop when installed)."""


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_on(kind: str, main: Callable[[], Awaitable[T]]) -> T:
    """Runs ``main()`` to completion on a fresh loop of ``kind`` ("asyncio" or "uvloop")."""
    loop = new_loop(kind)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()


def record(figure: str, exo: str, baseline: str, ratio: str, target: str, met: bool | None) -> None:
    """Adds a row: figure | exo | baseline | ratio | target | met? (None: not judged)."""
    FIGURES.append((figure, exo, baseline, ratio, target, "-" if met is None else ("yes" if met else "NO")))


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def times_better(exo_value: float, baseline_value: float, higher_is_better: bool = False) -> str:
    """The ratio column: how many times better exo is than the baseline."""
    if exo_value <= 0 or baseline_value <= 0:
        return "-"
    r = exo_value / baseline_value if higher_is_better else baseline_value / exo_value
    return f"{r:.2f}x"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section("exo vs the pure-asyncio baseline, same run, beside DESIGN.md targets (medians of rounds)")
    tr.write_line("| figure | exo | baseline | ratio (exo better by) | target | met? |")
    tr.write_line("|---|---|---|---|---|---|")
    for row in FIGURES:
        tr.write_line("| " + " | ".join(row) + " |")


@pytest.fixture
def figures() -> Callable[..., None]:
    return record
