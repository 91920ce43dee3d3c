"""Memory per idle live order, trivial delegate included, exo beside the
baseline: RSS delta over 100,000 idle orders / 100,000, and RSS after they all
end against RSS before. Each measurement runs in a fresh process
(benches/rss_probe.py) so that runs do not pollute each other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchkit import median, times_better

ORDERS = 100_000
ROUNDS = 3
PROBE = Path(__file__).with_name("rss_probe.py")


def probe(engine: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, str(PROBE), engine, str(ORDERS)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
def test_memory_per_idle_live_order_bytes(benchmark: Any, figures: Any) -> None:
    runs: dict[str, list[dict[str, int]]] = {"exo": [], "baseline": []}

    def one_round() -> None:
        for name in runs:
            runs[name].append(probe(name))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    per_order = {k: median([(r["live"] - r["before"]) / ORDERS for r in v]) for k, v in runs.items()}
    back = {k: median([(r["after"] - r["before"]) / r["before"] * 100 for r in v]) for k, v in runs.items()}
    back_mb = {k: median([(r["after"] - r["before"]) / 1e6 for r in v]) for k, v in runs.items()}
    figures(
        "memory per idle live order, trivial delegate included (RSS delta / 100,000)",
        f"{per_order['exo']:.0f} B",
        f"{per_order['baseline']:.0f} B",
        times_better(per_order["exo"], per_order["baseline"]),
        "<= 700 B (pure asyncio ref. 680 B)",
        per_order["exo"] <= 700,
    )
    figures(
        "RSS after 100,000 orders start and end, vs before",
        f"{back['exo']:+.1f} % ({back_mb['exo']:+.1f} MB)",
        f"{back['baseline']:+.1f} % ({back_mb['baseline']:+.1f} MB)",
        "-",
        "back where it was, within 5 %",
        abs(back["exo"]) <= 5,
    )
