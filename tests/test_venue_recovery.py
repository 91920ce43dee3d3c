"""The cl_ord_id -> parent order_id mapping survives a restart: it is kept with
the order (in the delegate's checkpointed children), so after recovery a venue
report for a child sent before the restart still reaches its parent, once.

The paper venue object stands for the venue itself (its book lives on while
exo restarts); its routing table is emptied to stand for a fresh exo process."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

import exo
from exo import ExecType, OrdStatus
from exo.venues import Paper
from tests.helpers import Errors, until
from tests.test_paper import Holder, q


async def _restart_keeps_routes(store: exo.Store, errors: Errors) -> None:
    Holder.instances.clear()
    paper = Paper()
    engine = exo.Engine(paper.delegates(Holder), on_error=errors, store=store)
    paper.attach(engine)
    async with engine:
        oid = await engine.submit(exo.Order("BUY", "BTC-USD"))
        await until(lambda: bool(Holder.instances))
        h = Holder.instances[0]
        paper.on_quote(q(ask="102"))
        c = h.child("1", "100")
        await paper.send(c.new())
        await paper.drain()
        await until(lambda: c.ord_status == OrdStatus.NEW)
        engine.quote(q(bid="99"))  # one more hand-over, so the checkpoint holds the acked child
        await until(lambda: h.changes >= 2)
    # A fresh exo process: the venue adapter knows no routes.
    paper._routes.clear()
    paper._children.clear()
    paper._by_order.clear()
    Holder.instances.clear()
    engine = exo.Engine(paper.delegates(Holder), on_error=errors, store=store)
    paper.attach(engine)
    async with engine:
        await until(lambda: bool(Holder.instances))
        h2 = Holder.instances[0]
        assert h2.order.order_id == oid
        (c2,) = h2.children
        assert c2.ord_status == OrdStatus.NEW and paper.route(c2.cl_ord_id) == oid
        await paper.start()  # reconcile: the child is open at the venue
        paper.on_quote(q(ask="100", ask_size="1"))
        await paper.drain()
        await until(lambda: c2.ord_status == OrdStatus.FILLED)
        assert c2.cum_qty == D("1")
        assert [r.exec_type for r in h2.reports if r.exec_type == ExecType.TRADE] == [ExecType.TRADE]
        await paper.stop()
    assert errors == []


async def test_routes_survive_restart_with_memory_store(errors: Errors) -> None:
    await _restart_keeps_routes(exo.MemoryStore(), errors)


async def test_routes_survive_restart_with_redis(redis_url: str, errors: Errors) -> None:
    await _restart_keeps_routes(exo.RedisStore(redis_url), errors)


@pytest.fixture(autouse=True)
def _clear() -> Any:
    Holder.instances.clear()
    yield
