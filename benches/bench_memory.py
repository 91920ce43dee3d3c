"""Memory per idle live order, trivial delegate included, exo beside the
baseline, each measurement in a fresh process (benches/rss_probe.py):

- per order: RSS delta over 100,000 idle live orders / 100,000;
- back where it was: RSS after the 100,000 orders end, against before;
- ten waves: RSS after ten waves of 100,000 orders submitted and completed,
  against before, raw and after glibc's ``malloc_trim(0)``.

The ``met?`` column judges the raw RSS, what ``ps`` shows a user; the
after-trim figure shows how much of the difference is memory glibc keeps for
reuse rather than memory still held by the engine.

Where the ten waves' growth stays is measured by allocator (``allocators()``
in rss_probe.py: pymalloc's arenas and the bytes of live objects in them,
glibc's bytes in use over all its arenas), and exo is run once more with
``PYTHONMALLOC=malloc`` (CPython's small objects from glibc instead of
pymalloc) to show what is left without pymalloc's arenas.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchkit import keep, median, record, size, times_better

ORDERS = size(100_000, 100)
WAVES = size(10, 2)
ROUNDS = size(5, 1)
PROBE = Path(__file__).with_name("rss_probe.py")


def probe(engine: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(PROBE), engine, str(ORDERS), str(WAVES)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
        env=None if env is None else {**os.environ, **env},
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def pct(after: int, before: int) -> float:
    return (after - before) / before * 100


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
def test_memory_per_idle_live_order_bytes(benchmark: Any) -> None:
    runs: dict[str, list[dict[str, Any]]] = {"exo": [], "baseline": []}
    no_pymalloc: list[dict[str, Any]] = []

    def one_round() -> None:
        for name in runs:
            runs[name].append(probe(name))
        no_pymalloc.append(probe("exo", {"PYTHONMALLOC": "malloc"}))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    names = list(runs)
    per_order = {k: median([(r["live"] - r["before"]) / ORDERS for r in v]) for k, v in runs.items()}
    one = {k: median([pct(r["after"], r["before"]) for r in v]) for k, v in runs.items()}
    one_mb = {k: median([(r["after"] - r["before"]) / 1e6 for r in v]) for k, v in runs.items()}
    ten = {k: median([pct(r["waves"][-1], r["before"]) for r in v]) for k, v in runs.items()}
    ten_mb = {k: median([(r["waves"][-1] - r["before"]) / 1e6 for r in v]) for k, v in runs.items()}
    trimmed = {
        k: median([pct(r["trimmed"], r["before"]) for r in v]) if all(r["trimmed"] for r in v) else None
        for k, v in runs.items()
    }
    per_wave = {
        k: median([(r["waves"][-1] - r["waves"][0]) / (WAVES - 1) / ORDERS for r in v])
        for k, v in runs.items()
    }
    before_mb = {k: median([r["before"] / 1e6 for r in v]) for k, v in runs.items()}
    keep(
        "memory",
        {
            k: {
                "growth": [[n, (rss - r["before"]) / 1e6] for n, rss in r["growth"]],
                "waves_pct": [pct(w, r["before"]) for w in r["waves"]],
                "before_mb": r["before"] / 1e6,
            }
            for k in names
            for r in [sorted(runs[k], key=lambda r: r["live"])[len(runs[k]) // 2]]
        },
    )
    record(
        "memory per idle live order, trivial delegate included (RSS delta / 100,000)",
        f"{per_order['exo']:.0f} B",
        f"{per_order['baseline']:.0f} B",
        times_better(per_order["exo"], per_order["baseline"]),
        "<= 700 B (pure asyncio ref. 680 B)",
        per_order["exo"] <= 700,
    )
    record(
        f"RSS after 100,000 orders start and end, vs before (raw; before: exo {before_mb['exo']:.0f} MB,"
        f" baseline {before_mb['baseline']:.0f} MB)",
        f"{one['exo']:+.1f} % ({one_mb['exo']:+.1f} MB)",
        f"{one['baseline']:+.1f} % ({one_mb['baseline']:+.1f} MB)",
        "-",
        "back where it was, within 5 %",
        abs(one["exo"]) <= 5,
    )

    def trim_text(k: str) -> str:
        t = trimmed[k]
        return "no malloc_trim" if t is None else f"{t:+.1f} % after malloc_trim(0)"

    record(
        "RSS after ten waves of 100,000 orders submitted and completed, vs before (raw; met? judges raw)",
        f"{ten['exo']:+.1f} % ({ten_mb['exo']:+.1f} MB); {trim_text('exo')};"
        f" waves 2-10 add {per_wave['exo']:.0f} B per order per wave",
        f"{ten['baseline']:+.1f} % ({ten_mb['baseline']:+.1f} MB); {trim_text('baseline')};"
        f" waves 2-10 add {per_wave['baseline']:.0f} B per order per wave",
        "-",
        "flat, within 5 %",
        abs(ten["exo"]) <= 5,
    )

    def grew(r: dict[str, Any], key: str) -> float | None:
        a, b = r["allocators_after"][key], r["allocators_before"][key]
        return None if a is None or b is None else float(a - b)

    def where(k: str) -> str:
        keys = ("pymalloc_arenas", "pymalloc_bytes", "glibc_in_use")
        deltas = [[grew(r, key) for r in runs[k]] for key in keys]
        known = [[d for d in ds if d is not None] for ds in deltas]
        if any(len(ks) != len(runs[k]) for ks in known):
            return "allocator statistics not available here"
        arenas, objects, glibc = (median(ks) for ks in known)
        return (
            f"pymalloc arenas {arenas:+.0f} MiB holding {objects / 1e6:+.2f} MB of objects;"
            f" glibc in use {glibc / 1e6:+.2f} MB"
        )

    malloc_ten = median([pct(r["waves"][-1], r["before"]) for r in no_pymalloc])
    record(
        "where the ten waves' RSS growth stays, by allocator (after the last wave vs before)",
        f"{where('exo')}; with PYTHONMALLOC=malloc: {malloc_ten:+.1f} % RSS",
        where("baseline"),
        "-",
        "- (shows what bounds the row above)",
        None,
    )
