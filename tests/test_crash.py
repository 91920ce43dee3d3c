"""kill -9: a child engine on Redis drives 1,000 orders through 10,000
instructions and reports (crash_child.py); it is killed at random points and
restarted until it finishes. Every instruction and report must have reached
its delegate exactly once, and every order's stored state must match."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import exo
from tests import crash_child as plan

CHILD = str(Path(__file__).with_name("crash_child.py"))


def _acked(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _run_and_kill(url: str, acks: Path, kill_after_s: float | None, kill_at_acks: int | None) -> str:
    """Runs the child until it is killed (-9) at the given point, or finishes."""
    child = subprocess.Popen(
        [sys.executable, CHILD, url, str(acks)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    start = time.monotonic()
    while child.poll() is None:
        elapsed = time.monotonic() - start
        if (kill_after_s is not None and elapsed >= kill_after_s) or (
            kill_at_acks is not None and _acked(acks) >= kill_at_acks
        ):
            child.send_signal(signal.SIGKILL)
            break
        assert elapsed < 60, "child did not finish within 60s"
        time.sleep(0.002)
    out, err = child.communicate(timeout=60)
    print(err.decode(errors="replace"))
    if child.returncode == -signal.SIGKILL:
        return "killed"
    assert child.returncode == 0, err.decode()[-3000:]
    assert b"DONE" in out
    return "done"


async def test_kill_9_at_random_points_loses_and_repeats_nothing(redis_url: str, tmp_path: Path) -> None:
    seed = int(os.environ.get("EXO_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    acks = tmp_path / "acks"
    kills = 0
    # Kill points: by time (anywhere from start-up and recovery to the NEWs),
    # then by progress (mid-burst), three times, then let it finish.
    points = [
        (rng.uniform(0.05, 0.6), None),
        (None, rng.randrange(500, 4000)),
        (None, rng.randrange(4000, 9000)),
    ]
    for after_s, at_acks in points:
        kills += _run_and_kill(redis_url, acks, after_s, at_acks) == "killed"
    assert _run_and_kill(redis_url, acks, None, None) == "done"
    assert kills >= 2, f"the child finished before it could be killed (seed {seed})"

    store = exo.RedisStore(redis_url)
    async with store:
        ids = await store.live_orders()
        assert ids == [plan.order_id(k) for k in range(plan.ORDERS)], f"seed {seed}"
        applied: list[int] = []
        for stored in await store.load(ids):
            oid = stored.order.order_id
            k = int(oid[1:])
            assert stored.entries == [], f"{oid}: entries left unapplied after a graceful stop (seed {seed})"
            state = store.codec.loads(stored.state)
            expected = list(range(k, plan.ITEMS, plan.ORDERS))
            seen = state["seen"]
            assert len(seen) == len(set(seen)), f"{oid}: an item applied twice (seed {seed})"
            assert sorted(state["seen"]) == expected, f"{oid}: items missing or foreign (seed {seed})"
            assert Decimal(state["filled"]) == sum(1 for j in expected if j % 2), f"{oid} (seed {seed})"
            applied.extend(state["seen"])
    assert sorted(applied) == list(range(plan.ITEMS))
    acked = {int(line) for line in acks.read_text().split()}
    assert acked <= set(applied)  # nothing acknowledged was lost
    assert len(acked) > plan.ITEMS // 2
