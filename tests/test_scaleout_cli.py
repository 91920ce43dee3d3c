"""Roles on the command line: bad input is a clear error and starts nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

import exo
from exo.scaleout import EngineNode, Intake


def _exo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exo", "example", *args], capture_output=True, text=True, timeout=60
    )


def test_a_role_without_redis_is_refused_with_the_reason() -> None:
    done = _exo("--role", "engine", "--http", "127.0.0.1:0")
    assert done.returncode == 2
    assert "--role engine needs --redis URL" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "worker"], "invalid choice: 'worker'"),
        (["--partitions", "0"], "expected a whole number from 1 to 1024, got '0'"),
        (["--lease", "-1"], "expected a positive number of seconds, got '-1'"),
    ],
)
def test_bad_role_flags_are_refused_by_name(args: list[str], message: str) -> None:
    done = _exo(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_engine_names_and_partitions_are_checked() -> None:
    with pytest.raises(ValueError, match="engine name"):
        EngineNode("redis://127.0.0.1:1/0", "a/b", lambda order: None)
    with pytest.raises(ValueError, match="partitions"):
        EngineNode("redis://127.0.0.1:1/0", "a", lambda order: None, partitions=0)
    with pytest.raises(ValueError, match="partitions"):
        Intake("redis://127.0.0.1:1/0", partitions=0)


async def test_the_intake_refuses_what_is_not_an_instruction(redis_url: str) -> None:
    async with Intake(redis_url) as intake:
        with pytest.raises(TypeError, match=r"expected an exo\.Order"):
            await intake.submit("NEW BTC-USD")
        with pytest.raises(ValueError, match="a report needs the order_id"):
            await intake.report(object())
        assert await intake.progress("nope") is None


async def test_the_intake_says_when_redis_is_unreachable() -> None:
    from tests.redis_server import free_port

    with pytest.raises(exo.StoreUnavailable, match="cannot reach Redis for the intake"):
        await Intake(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5).open()
