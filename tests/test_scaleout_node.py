"""EngineNodes in one process on a real redis-server: NEWs go to whichever
engine reads them, later instructions reach the owner wherever they were
submitted, each exactly once; a graceful stop hands orders over at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

import exo
from exo.market import MsgType
from exo.scaleout import EngineNode, Intake


class Waiting:
    """Completes on a CANCEL; keeps how many instructions it applied."""

    def __init__(self, order: Any, state: dict[str, Any] | None = None) -> None:
        self.order_id = order.order_id
        self.applied = 0 if state is None else int(state["applied"])
        self.done = False

    def action(self, update: exo.Update) -> bool:
        self.applied += len(update.instructions)
        self.done = any(i.msg_type == MsgType.CANCEL for i in update.instructions)
        return self.done

    def state(self) -> dict[str, Any]:
        return {"applied": self.applied}


def describe(d: Waiting) -> dict[str, Any]:
    return {"applied": d.applied, "done": d.done}


async def until(check: Callable[[], Any], timeout: float = 20.0) -> None:
    """Waits until ``await check()`` is true; the timeout is a guard."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


@pytest.fixture
async def intake(redis_url: str) -> AsyncIterator[Intake]:
    async with Intake(redis_url, partitions=2) as i:
        yield i


def node(url: str, name: str, lease: float = 1.0) -> EngineNode:
    return EngineNode(url, name, Waiting, lease=lease, partitions=2, describe=describe, block=0.2)


async def test_instructions_reach_the_owner_wherever_they_were_read_once_each(
    redis_url: str, intake: Intake
) -> None:
    a, b = node(redis_url, "a"), node(redis_url, "b")
    async with a, b:
        ids = [await intake.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal(1))) for _ in range(40)]

        async def all_owned() -> bool:
            return all([await intake.progress(i) is not None for i in ids])

        await until(all_owned)
        owners = {await intake.owner(i) for i in ids}
        assert owners <= {"a", "b"}
        for oid in ids:
            order = await intake.order(oid)
            await intake.submit(order.cancel())

        async def all_done() -> bool:
            return all([(p := await intake.progress(i)) is not None and p["done"] for i in ids])

        await until(all_done)
        for oid in ids:
            p = await intake.progress(oid)
            assert p is not None and p["applied"] == 2 and p["instructions"] == 2, p
        assert a.counters["forwarded"] + b.counters["forwarded"] > 0  # some CANCELs met the other engine
        assert a.engine.live == b.engine.live == 0


async def test_a_graceful_stop_hands_the_orders_over_without_waiting_for_the_lease(
    redis_url: str, intake: Intake
) -> None:
    a, b = node(redis_url, "a", lease=30.0), node(redis_url, "b", lease=30.0)
    await a.start()
    ids = [await intake.submit(exo.Order("SELL", "BTC-USD", order_qty=Decimal(1))) for _ in range(20)]

    async def on_a() -> bool:
        return all([await intake.owner(i) == "a" for i in ids])

    await until(on_a)
    await b.start()
    try:
        await a.stop()  # leases released: b need not wait 30 s

        async def on_b() -> bool:
            return all([await intake.owner(i) == "b" for i in ids])

        await until(on_b, timeout=10)
        assert b.counters["claims"] == 20
        for oid in ids:
            order = await intake.order(oid)
            await intake.submit(order.cancel())

        async def all_done() -> bool:
            return all([(p := await intake.progress(i)) is not None and p["done"] for i in ids])

        await until(all_done)
        for oid in ids:
            p = await intake.progress(oid)
            assert p is not None and p["applied"] == 2 and p["engine"] == "b"
    finally:
        await b.stop()
