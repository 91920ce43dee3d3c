"""examples/child_orders.py (copied into the README) runs as a real process and
fills exactly its order_qty from the paper venue's reports."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "child_orders.py"


def test_child_orders_example_rests_reprices_and_fills_from_reports() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=True
    )
    fills = re.findall(r"fill (\S+) @ (\S+)", out.stdout)
    assert sum(Decimal(q) for q, _ in fills) == Decimal("0.3")
    # Re-priced from 60000.00 up to the last bid, 60001.00, before the fills came.
    assert {px for _, px in fills} == {"60001.00"}
    assert out.stdout.rstrip().endswith("done, avg_px 60001.00")
