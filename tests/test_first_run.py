"""What a new user meets first (issue 11, first-run papercuts): the README's
quickstart is the file it names, ``make`` alone builds nothing, the stop line
does not promise a resume that will not happen, order ids are shown whole."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.test_example import Example, start  # noqa: F401  (start: the fixture)

ROOT = Path(__file__).parent.parent


def test_the_readme_quickstart_is_examples_quickstart_line_for_line() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart\n", 1)[1]
    code = section.split("```python\n", 1)[1].split("```\n", 1)[0]
    assert code == (ROOT / "examples" / "quickstart.py").read_text()


def test_the_quickstart_shows_whole_order_ids() -> None:
    done = subprocess.run(
        [sys.executable, "examples/quickstart.py"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    fill = re.compile(r"([0-9a-f]{32}) fill (\S+) @ (\S+) \((\d+) quotes merged\)")
    fills = [fill.fullmatch(x) for x in lines[:-1]]
    assert fills and all(fills), lines
    order_id = fills[0][1]  # type: ignore[index]
    assert re.fullmatch(rf"{order_id} done; \d+ hand-overs for 300 quotes", lines[-1])
    assert sum(float(m[2]) for m in fills if m) == 1.5  # type: ignore[misc]


def test_make_without_a_target_only_prints_the_verbs() -> None:
    # As a user types it: not inside another make (its MAKEFLAGS would leak in).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    run = {"capture_output": True, "text": True, "timeout": 60, "cwd": ROOT, "env": env}
    dry = subprocess.run(["make", "-n"], **run)  # type: ignore[call-overload]
    assert dry.returncode == 0, dry.stderr
    assert all(line.startswith("echo ") for line in dry.stdout.splitlines()), dry.stdout
    out = subprocess.run(["make"], **run).stdout  # type: ignore[call-overload]
    for verb in ("run", "test", "lint", "bench", "fuzz-http", "soak", "wheel"):
        assert f"make {verb} " in out, verb


def test_the_stop_line_promises_a_resume_only_when_orders_are_live(
    start: Callable[..., Example],  # noqa: F811
    redis_url: str,
) -> None:
    idle = start("--redis", redis_url)
    rc, _ = idle.stop(signal.SIGTERM)
    assert rc == 0
    log = idle.err.text()
    assert "SIGTERM: stopping (live orders are cleaned up, not canceled)" in log
    assert "stopped: 0 live order(s) cleaned up, not canceled\n" in log + "\n"
    assert "resume on the next start" not in log

    busy = start("--redis", redis_url)
    order_id = busy.submit("BUY", "BTC-USD", "1000000")
    busy.wait_fills(order_id, 1)
    rc, _ = busy.stop(signal.SIGTERM)
    assert rc == 0
    resume = "stopped: 1 live order(s) cleaned up, not canceled; they resume on the next start"
    assert resume in busy.err.text()
