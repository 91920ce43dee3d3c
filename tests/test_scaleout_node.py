"""EngineNodes in one process on a real redis-server: NEWs go to whichever
engine reads them, later instructions reach the owner wherever they were
submitted, each exactly once; a graceful stop hands orders over at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, ClassVar

import pytest

import exo
from exo.child import ChildOrder
from exo.market import MsgType, OrdStatus, Side
from exo.scaleout import EngineNode, Intake
from exo.scaleout.lease import Lease, Leases
from exo.scaleout.streams import inbox_stream
from exo.venues import Paper
from tests.helpers import quote
from tests.redis_server import RedisServer


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


class DoneOnSignal:
    """Acts on every (idle) Update; completes at the first action after ``finish`` is set."""

    finish = asyncio.Event()

    def __init__(self, order: Any, state: dict[str, Any] | None = None) -> None:
        self.acted = 0 if state is None else int(state["acted"])
        self.done = False

    def action(self, update: exo.Update) -> bool:
        self.acted += 1
        self.done = DoneOnSignal.finish.is_set()
        return self.done

    def state(self) -> dict[str, Any]:
        return {"acted": self.acted}


async def test_an_order_completed_while_redis_is_down_shows_its_final_progress_once_it_is_back(
    redis_server: RedisServer, redis_url: str, intake: Intake
) -> None:
    DoneOnSignal.finish = asyncio.Event()
    a = EngineNode(
        redis_url,
        "a",
        DoneOnSignal,
        lease=10.0,
        partitions=2,
        describe=lambda d: {"acted": d.acted, "done": d.done},
        block=0.2,
        timeout=1.0,
        idle_interval=0.05,
    )
    async with a:
        oid = await intake.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal(1)))

        async def acting() -> bool:
            p = await intake.progress(oid)
            return p is not None and p["acted"] > 1 and p["engine"] == "a"

        await until(acting)
        redis_server.stop()
        try:
            DoneOnSignal.finish.set()  # completes now: its progress and removal cannot be written

            async def ended_and_failed() -> bool:
                # Its last progress was tried and failed; so was its removal.
                return (
                    a.engine.live == 0
                    and a.counters["progress_failures"] > 0
                    and a.engine.stats()["store_failures"] > 0
                )

            await until(ended_and_failed)
        finally:
            redis_server.start()

        async def final() -> bool:
            p = await intake.progress(oid)
            return p is not None and p["done"]

        await until(final)
        assert await intake.owner(oid) is None  # removed: its lease went with it


class RestsOneChild:
    """Sends one resting LIMIT child to its venue; applies the reports of its
    children; notes, at its first action in this process, which of its
    orders the venue had been asked about already."""

    reconciled: ClassVar[set[str]] = set()

    def __init__(self, order: Any, venue: Paper, state: dict[str, Any] | None = None) -> None:
        self.order, self.venue = order, venue
        self.children: list[ChildOrder] = [] if state is None else list(state["children"])
        self.first: bool | None = None  # reconciled before the first action here
        self.first_reports: list[Any] | None = None  # the reports of the first Update here

    async def action(self, update: exo.Update) -> bool:
        if self.first is None:
            self.first = self.order.order_id in RestsOneChild.reconciled
            self.first_reports = list(update.reports)
        for report in update.reports:
            for child in self.children:
                if child.owns(report.cl_ord_id):
                    child.apply(report)
        if not self.children:
            child = ChildOrder(self.order.order_id, "BTC-USD", Side.BUY, Decimal(1), price=Decimal(1))
            self.children.append(child)
            await self.venue.send(child.new())
        return False

    def state(self) -> dict[str, Any]:
        return {"children": list(self.children)}


async def test_a_claimed_order_s_children_are_reconciled_with_the_venue_before_its_delegate_acts(
    redis_url: str, intake: Intake
) -> None:
    RestsOneChild.reconciled = set()
    venues = {"a": Paper(), "b": Paper()}
    nodes: dict[str, EngineNode] = {}

    def claimed(name: str) -> Callable[[list[str]], Awaitable[int]]:
        async def reconcile(order_ids: list[str]) -> int:
            n = await venues[name].reconcile(order_ids)
            RestsOneChild.reconciled.update(order_ids)
            return n

        return reconcile

    for name in ("a", "b"):
        nodes[name] = EngineNode(
            redis_url,
            name,
            venues[name].delegates(RestsOneChild),
            lease=30.0,
            partitions=2,
            block=0.2,
            on_claimed=claimed(name),
        )
        venues[name].attach(nodes[name].engine)
        await venues[name].start()
    a, b = nodes["a"], nodes["b"]
    await a.start()
    try:
        ids = [await intake.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal(1))) for _ in range(5)]

        async def resting_on_a() -> bool:
            return len(venues["a"].open_orders()) == len(ids)

        await until(resting_on_a)
        await b.start()
        await venues["a"].stop()  # its book goes with it, as with the engine's process
        await a.stop()  # hands the orders over

        def delegate(oid: str) -> Any:
            owned = b._delegates.get(oid)
            return None if owned is None else owned.inner.inner

        async def all_answered() -> bool:
            ds = [delegate(oid) for oid in ids]
            return all(d is not None and d.children[0].ord_status == OrdStatus.CANCELED for d in ds)

        await until(all_answered)
        for oid in ids:
            d = delegate(oid)
            assert d.first is True  # the venue answered before its first action on b
            assert d.children[0].text is not None and "UNKNOWN_ORDER" in d.children[0].text
            # ... and its answer is in the first Update the delegate sees on b, not the one after
            assert d.first_reports is not None
            assert [r.ord_status for r in d.first_reports if "UNKNOWN_ORDER" in (r.text or "")] == [
                OrdStatus.CANCELED
            ], d.first_reports
        assert b.counters["claims"] == len(ids)
    finally:
        await b.stop()
        for v in venues.values():
            await v.stop()


class CountsQuotes:
    """Never completes; counts the quotes it was handed."""

    def __init__(self, order: Any, state: dict[str, Any] | None = None) -> None:
        self.quotes = 0 if state is None else int(state["quotes"])

    def action(self, update: exo.Update) -> bool:
        self.quotes += update.quote is not None
        return False

    def state(self) -> dict[str, Any]:
        return {"quotes": self.quotes}


async def test_an_engine_that_loses_redis_keeps_its_orders_running_and_releases_nothing(
    redis_server: RedisServer, redis_url: str, intake: Intake
) -> None:
    a = EngineNode(redis_url, "a", CountsQuotes, lease=10.0, partitions=2, block=0.2, timeout=1.0)
    async with a:
        ids = [await intake.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal(1))) for _ in range(3)]

        async def owned() -> bool:
            return len(a.held) == 3 and all(a.engine.is_live(i) for i in ids)

        await until(owned)
        leases = dict(a.held)
        redis_server.stop()
        try:

            async def cut_off() -> bool:
                return not a.redis_ok

            await until(cut_off)
            # Market data still reaches every order, one Update at a time.
            for n in range(1, 4):
                a.engine.quote(quote("BTC-USD", bid=str(100 + n)))

                async def handed(n: int = n) -> bool:
                    return all(a._delegates[i].inner.quotes >= n for i in ids)

                await until(handed)
            assert a.held == leases  # nothing released while it cannot prove what it owns
        finally:
            redis_server.start()

        async def back() -> bool:
            return a.redis_ok and a.counters["lease_renewals"] > 0

        await until(back)
        assert a.held == leases and a.counters["leases_lost"] == 0
        assert {await intake.owner(i) for i in ids} == {"a"}  # still its own


async def test_a_message_delivered_twice_is_applied_once_and_logged_as_a_duplicate_not_an_error(
    redis_url: str, intake: Intake, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[tuple[str, str]] = []
    a = EngineNode(
        redis_url,
        "a",
        Waiting,
        lease=30.0,
        partitions=2,
        describe=describe,
        block=0.2,
        on_error=lambda oid, message: errors.append((oid, message)),
    )
    async with a:
        oid = await intake.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal(1)))

        async def owned() -> bool:
            return await intake.progress(oid) is not None

        await until(owned)
        # One intake message, forwarded to the owner's inbox twice (a forwarder
        # that died before its ACK, then the engine that took its entries over).
        fields = {
            "k": "r",
            "o": oid,
            "v": a.store.encode(exo.Report(oid, "NEW", text="once")),
            "m": "exo:intake:{intake.0}@7-0",
        }
        caplog.set_level("INFO", logger="exo")
        for _ in range(2):
            await a._client.xadd(inbox_stream("exo", "a"), fields)

        async def both_handled() -> bool:
            p = await intake.progress(oid)
            return a.store.duplicates == 1 and p is not None and p["reports"] == 1

        await until(both_handled)
        assert a.stats()["duplicates"] == 1
    assert errors == []  # a duplicate is no error: the order has the report, once
    assert "no longer in" not in caplog.text
    said = [r for r in caplog.records if "delivered again" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "INFO", caplog.text
    assert oid in said[0].getMessage() and "exo:intake:{intake.0}@7-0" in said[0].getMessage()


async def test_a_backlog_of_news_read_in_one_batch_is_admitted_once_each_with_its_lease(
    redis_url: str, intake: Intake
) -> None:
    # Written before any engine runs: the engine reads them in batches (its
    # leases acquired together), one of them twice in the same batch.
    orders = [exo.Order("BUY", "BTC-USD", order_qty=Decimal(1)) for _ in range(120)]
    ids = [await intake.submit(o) for o in orders]
    await intake.submit(orders[7])  # the same NEW again (same order_id)
    a = node(redis_url, "a", lease=30.0)
    async with a:

        async def all_owned() -> bool:
            return all([await intake.progress(i) is not None for i in ids])

        await until(all_owned)
        assert a.engine.live == 120
        assert sorted(a.held) == sorted(ids)
        assert {await intake.owner(i) for i in ids} == {"a"}
        client = intake._c()
        for oid in ids:
            journal = a.store.keys(oid)[1]
            kinds = [fields[b"k"] for _, fields in await client.xrange(journal)]
            assert kinds.count(b"n") <= 1, kinds  # journaled once (the NEW may be checkpointed away)
        for p in range(2):
            stream = f"exo:intake:{{intake.{p}}}"
            assert (await client.xpending(stream, "engines"))["pending"] == 0  # every entry ACKed
        for oid in ids:
            order = await intake.order(oid)
            await intake.submit(order.cancel())

        async def all_done() -> bool:
            return all([(p := await intake.progress(i)) is not None and p["done"] for i in ids])

        await until(all_done)
        for oid in ids:
            p = await intake.progress(oid)
            assert p is not None and p["applied"] == 2 and p["instructions"] == 2, p


async def test_an_order_acting_without_a_change_to_its_progress_is_not_written_again(
    redis_url: str, intake: Intake
) -> None:
    DoneOnSignal.finish = asyncio.Event()
    a = EngineNode(
        redis_url,
        "a",
        DoneOnSignal,
        lease=10.0,
        partitions=2,
        describe=lambda d: {"done": d.done},  # the same at every action until it completes
        block=0.2,
        idle_interval=0.02,
        progress_interval=0.02,
    )
    async with a:
        oid = await intake.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal(1)))
        pver = f"exo:{{{oid}}}:pver"
        client = intake._c()

        async def written() -> bool:
            p = await intake.progress(oid)
            return p is not None and p.get("engine") == "a"

        await until(written)
        first = await client.get(pver)
        owned = a._delegates[oid]

        async def acted_often() -> bool:
            return bool(owned.inner.acted > 40)

        await until(acted_often)  # 40 actions, each marking the order for a progress write
        assert await client.get(pver) == first  # none written: nothing GET shows changed
        DoneOnSignal.finish.set()

        async def final() -> bool:
            p = await intake.progress(oid)
            return p is not None and p["done"]

        await until(final)
        assert await client.get(pver) != first


class HangsOnce:
    """Like ``Waiting``, async: its first action in the test awaits an answer
    that never comes (an order entry round trip that hangs)."""

    hang: ClassVar[bool] = True
    hanging: ClassVar[asyncio.Event] = asyncio.Event()

    def __init__(self, order: Any, state: dict[str, Any] | None = None) -> None:
        self.applied = 0 if state is None else int(state["applied"])
        self.done = False

    async def action(self, update: exo.Update) -> bool:
        self.applied += len(update.instructions)
        self.done = any(i.msg_type == MsgType.CANCEL for i in update.instructions)
        if HangsOnce.hang:
            HangsOnce.hang = False
            HangsOnce.hanging.set()
            await asyncio.Event().wait()
        return self.done

    def state(self) -> dict[str, Any]:
        return {"applied": self.applied}


@pytest.mark.parametrize("delegate", ["resting on a quiet symbol", "mid-way through an async action"])
async def test_an_order_whose_lease_moved_on_with_no_owner_left_stops_here_and_is_claimed_again(
    redis_url: str, intake: Intake, delegate: str
) -> None:
    # One engine. Another took the order's lease once it lapsed and let it go
    # (as a claim that finds the order still busy there does): the epoch moved
    # on, nobody holds the lease. The engine's renewal finds it lost; the
    # order must not stay live here, unleased, where no scan can claim it.
    HangsOnce.hang, HangsOnce.hanging = True, asyncio.Event()
    factory: Any = Waiting if delegate == "resting on a quiet symbol" else HangsOnce
    a = EngineNode(
        redis_url,
        "a",
        factory,
        lease=1.0,
        partitions=2,
        describe=describe,
        block=0.2,
        idle_interval=3600.0,  # no idle Update: nothing wakes the order but the engine
    )
    async with a:
        oid = await intake.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal(1)))

        async def working() -> bool:
            owned = a._delegates.get(oid)
            if owned is None or oid not in a.held:
                return False
            if factory is HangsOnce:
                return HangsOnce.hanging.is_set()  # its first action hangs
            return await intake.progress(oid) is not None

        await until(working)
        client = intake._c()
        ghost = Leases(client, "ghost", 30.0)
        taken: Lease | None = None
        while taken is None:  # a's renewal may take the lapsed lease back first: again
            await client.delete(f"exo:{{{oid}}}:lease")
            got = (await ghost.acquire([oid]))[oid]
            taken = got if isinstance(got, Lease) else None
        assert await ghost.release([taken]) == [True]

        async def claimed_again() -> bool:
            lease = a.held.get(oid)
            return (
                a.counters["leases_lost"] == 1
                and lease is not None
                and lease.epoch > taken.epoch  # acquired anew: earlier writes stay fenced
                and a.engine.is_live(oid)
            )

        await until(claimed_again)
        assert await intake.owner(oid) == "a"
        order = await intake.order(oid)
        await intake.submit(order.cancel())

        async def done() -> bool:
            p = await intake.progress(oid)
            return p is not None and p["done"]

        await until(done)
        p = await intake.progress(oid)
        assert p is not None and p["applied"] == 2 and p["instructions"] == 2, p  # each once
        assert a.engine.live == 0 and a.counters["claims"] == 1


async def test_an_engine_keeps_its_orders_across_a_half_second_redis_outage(
    redis_server: RedisServer, redis_url: str, intake: Intake
) -> None:
    # Lease 3 s, renewed every second. After the restart each pooled
    # connection Redis closed failed one command (a renewal round among them)
    # until the lease lapsed and b claimed a's orders: now such a command is
    # sent again on a new connection.
    a, b = node(redis_url, "a", lease=3.0), node(redis_url, "b", lease=3.0)
    await a.start()
    try:
        ids = [await intake.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal(1))) for _ in range(6)]

        async def on_a() -> bool:
            return all([await intake.owner(i) == "a" for i in ids]) and len(a.held) == 6

        await until(on_a)
        await b.start()
        for n in (a, b):  # several pooled connections each, open when Redis goes down
            await asyncio.gather(*(n._client.time() for _ in range(8)))
        leases = dict(a.held)
        await asyncio.to_thread(redis_server.stop)
        await asyncio.sleep(0.5)  # the outage
        await asyncio.to_thread(redis_server.start)
        renewed = a.counters["lease_renewals"]

        async def renewed_twice() -> bool:
            return a.counters["lease_renewals"] >= renewed + 2 * len(ids)

        await until(renewed_twice)
        assert a.counters["leases_lost"] == 0 and a.counters["orders_fenced"] == 0
        assert b.counters["claims"] == 0 and a.held == leases
        # A new api client: the fixture's pooled connections are stale too
        # (the api does not retry a CANCEL: it could be applied twice).
        async with Intake(redis_url, partitions=2) as api:
            assert {await api.owner(i) for i in ids} == {"a"}
            for oid in ids:
                order = await api.order(oid)
                await api.submit(order.cancel())

            async def all_done() -> bool:
                return all([(p := await api.progress(i)) is not None and p["done"] for i in ids])

            await until(all_done)
            for oid in ids:
                p = await api.progress(oid)
                assert p is not None and p["applied"] == 2 and p["engine"] == "a", p
    finally:
        await b.stop()
        await a.stop()
