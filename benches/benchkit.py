"""Benchmark helpers: exo and the pure-asyncio baseline (benches/baseline) are
measured in the same run, and every figure is printed in one table at the end:

    figure | exo | baseline | ratio | target | met?

``ratio`` is how many times better exo is than the baseline (time: baseline /
exo; rate: exo / baseline; memory: baseline / exo). ``met?`` judges exo's
figure against DESIGN.md's target.

At the end of the session the rows (``FIGURES``) and the raw series kept for
the plots (``SERIES``) are written as JSON to ``$EXO_BENCH_JSON`` (default
``target/bench/figures.json``), which ``benches/report.py`` turns into
``benches/REPORT.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import baseline  # benches/ is on sys.path: pytest puts the conftest's folder there
import pytest

import exo

T = TypeVar("T")

SMOKE = os.environ.get("EXO_BENCH_SMOKE") == "1"
"""``make test`` runs every bench once at toy sizes (``EXO_BENCH_SMOKE=1``,
``--benchmark-disable``) so that none can rot; its figures mean nothing and
are not written."""


def size(full: T, smoke: T) -> T:
    """A bench's size: ``full`` for ``make bench``, ``smoke`` under SMOKE."""
    return smoke if SMOKE else full


FIGURES: list[tuple[str, str, str, str, str, str]] = []

SERIES: dict[str, Any] = {}
"""Raw measurements for the report's plots, by name (JSON-serialisable values)."""

FIGURES_JSON = Path(
    os.environ.get(
        "EXO_BENCH_JSON", Path(__file__).resolve().parent.parent / "target" / "bench" / "figures.json"
    )
)

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


def keep(name: str, value: Any) -> None:
    """Keeps a raw series for the report's plots (see ``SERIES``)."""
    SERIES[name] = value


def thin(samples: list[float], at_most: int = 4_000) -> list[float]:
    """Every k-th sample, so that a kept distribution stays small."""
    step = max(1, len(samples) // at_most)
    return samples[::step]


def percentile(samples: Sequence[float], p: float) -> float:
    xs = sorted(samples)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def times_better(exo_value: float, baseline_value: float, higher_is_better: bool = False) -> str:
    """The ratio column: how many times better exo is than the baseline."""
    if exo_value <= 0 or baseline_value <= 0:
        return "-"
    r = exo_value / baseline_value if higher_is_better else baseline_value / exo_value
    return f"{r:.2f}x"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SMOKE or (not FIGURES and not SERIES):
        return
    FIGURES_JSON.parent.mkdir(parents=True, exist_ok=True)
    FIGURES_JSON.write_text(json.dumps({"figures": FIGURES, "series": SERIES}))
    tr = terminalreporter
    tr.section("exo vs the pure-asyncio baseline, same run, beside DESIGN.md targets (medians of rounds)")
    tr.write_line("| figure | exo | baseline | ratio (exo better by) | target | met? |")
    tr.write_line("|---|---|---|---|---|---|")
    for row in FIGURES:
        tr.write_line("| " + " | ".join(row) + " |")
    tr.write_line(f"figures and series written to {FIGURES_JSON}")


@pytest.fixture
def figures() -> Callable[..., None]:
    return record
