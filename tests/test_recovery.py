"""The engine with a store: journal before return, checkpoints after actions,
recovery with restored delegate state, clean-up of completed orders, faults."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis

import exo
from tests.helpers import Errors, Ledger, quote, until
from tests.redis_server import RedisServer


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> exo.Store:
    if request.param == "memory":
        return exo.MemoryStore()
    return exo.RedisStore(request.getfixturevalue("redis_url"))


class Ledgers:
    """A factory of Ledger delegates that keeps them by order_id."""

    def __init__(self) -> None:
        self.by_id: dict[str, Ledger] = {}
        self.states: list[Any] = []

    def __call__(self, order: exo.Order, state: dict[str, Any] | None = None) -> Ledger:
        self.states.append(state)
        d = self.by_id[order.order_id or ""] = Ledger(order, state)
        return d


async def test_restart_resumes_each_order_with_its_state_and_delivers_nothing_twice(store: exo.Store) -> None:
    first = Ledgers()
    async with exo.Engine(first, store=store) as engine:
        a = await engine.submit(exo.Order("BUY", "X", n=0))
        b = await engine.submit(exo.Order("SELL", "Y", n=0))
        assert a and b
        await engine.submit(exo.Order("BUY", "X", "REPLACE", a, n=1))
        await engine.report(exo.Report(a, "PARTIALLY_FILLED", "1", "100", text="fill-1"))
        await engine.report(exo.Report(b, "NEW", text="ack"))
        await until(lambda: len(first.by_id[a].seen) == 3 and len(first.by_id[b].seen) == 2)
        engine.quote(quote("X"))
    assert await live_orders(store) == sorted([a, b])

    second = Ledgers()
    async with exo.Engine(second, store=store) as engine:
        assert engine.live == 2 and sorted(engine.symbols()) == ["X", "Y"]
        da = second.by_id[a]
        assert da.restored
        assert da.seen == [("i", "NEW", 0), ("i", "REPLACE", 1), ("r", "PARTIALLY_FILLED", "fill-1")]
        await engine.report(exo.Report(a, "PARTIALLY_FILLED", "1", "100", text="fill-2"))
        await until(lambda: da.seen[-1] == ("r", "PARTIALLY_FILLED", "fill-2"))
        # The restored delegate's first Update was idle: nothing replayed twice.
        assert len(da.seen) == 4
    third = Ledgers()
    async with exo.Engine(third, store=store):
        assert [x[2] for x in third.by_id[a].seen if x[0] == "r"] == ["fill-1", "fill-2"]


async def test_completed_order_is_removed_from_the_store(store: exo.Store) -> None:
    ledgers = Ledgers()
    async with exo.Engine(ledgers, store=store) as engine:
        oid = await engine.submit(exo.Order("BUY", "X"))
        assert oid
        await engine.report(exo.Report(oid, "FILLED", "1", "100"))
        await engine.wait_done(oid)
    assert await live_orders(store) == []
    async with exo.Engine(Ledgers(), store=store) as engine:
        assert engine.live == 0
    if isinstance(store, exo.RedisStore):
        with redis.Redis.from_url(store.url) as r:
            assert r.keys("*") == []


async def test_rule_violations_are_reported_and_not_journaled(store: exo.Store, errors: Errors) -> None:
    async with exo.Engine(Ledgers(), store=store, on_error=errors) as engine:
        oid = await engine.submit(exo.Order("BUY", "X", order_id="o1"))
        assert await engine.submit(exo.Order("BUY", "X", order_id="o1")) is None
        assert await engine.submit(exo.Order("BUY", "X", "CANCEL", "nope")) is None
        assert await engine.submit(exo.Order("SELL", "X", "CANCEL", oid)) is None
        assert await engine.report(exo.Report("nope", "NEW")) is False
        assert [m.split(":")[0] for _, m in errors] == [
            "order o1 is already live",
            "unknown order nope",
            "CANCEL for order o1 has side SELL, but the order is BUY",
            "report for unknown order nope",
        ]
        assert engine.stats()["journaled"] == 1
    (stored,) = await load(store, ["o1"])
    assert stored.applied == 1 and stored.entries == []


async def test_async_delegate_progress_is_checkpointed_after_its_action(store: exo.Store) -> None:
    release = asyncio.Event()

    class Slow(Ledger):
        async def action(self, update: exo.Update) -> bool:  # type: ignore[override]
            done = super().action(update)
            await release.wait()
            return done

    made: list[Slow] = []

    def factory(order: exo.Order, state: dict[str, Any] | None = None) -> Slow:
        made.append(Slow(order, state))
        return made[-1]

    async with exo.Engine(factory, store=store) as engine:
        oid = await engine.submit(exo.Order("BUY", "X", n=0))
        assert oid
        await until(lambda: made and made[0].seen)
        await engine.report(exo.Report(oid, "NEW", text="while-busy"))
        release.set()
        await until(lambda: len(made[0].seen) == 2)
    (stored,) = await load(store, [oid])
    assert stored.entries == [] and stored.applied == 2
    assert store.codec.loads(stored.state or b"") == {"seen": made[0].seen}


async def test_a_delegate_with_state_needs_a_factory_taking_state(store: exo.Store, errors: Errors) -> None:
    async with exo.Engine(Ledgers(), store=store) as engine:
        oid = await engine.submit(exo.Order("BUY", "X"))
    async with exo.Engine(lambda order: Ledger(order), store=store, on_error=errors) as engine:
        assert engine.live == 0
        assert errors and errors[0][0] == oid
        assert "needs a factory that takes (order, state=None)" in errors[0][1]
    assert await live_orders(store) == [oid]  # kept for a fixed factory


async def test_default_engine_keeps_no_store() -> None:
    async with exo.Engine(Ledgers()) as engine:
        assert engine.store is None
        assert await engine.submit(exo.Order("BUY", "X"))
        assert "journaled" not in engine.stats()


async def test_redis_lost_mid_run_market_data_flows_intake_fails_loudly_nothing_lost(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        ledgers = Ledgers()
        store = exo.RedisStore(server.url, timeout=1)
        async with exo.Engine(ledgers, store=store) as engine:
            oid = await engine.submit(exo.Order("BUY", "X", n=0))
            assert oid
            d = ledgers.by_id[oid]
            await engine.report(exo.Report(oid, "NEW", text="before"))
            await until(lambda: len(d.seen) == 2)

            server.stop()
            handovers = engine.stats()["handovers"]
            engine.quote(quote("X", bid="99"))  # market data still reaches the delegate
            await until(lambda: engine.stats()["handovers"] > handovers)
            with pytest.raises(exo.StoreUnavailable, match="not journaled and not delivered"):
                await engine.report(exo.Report(oid, "PARTIALLY_FILLED", text="lost-while-down"))
            assert d.seen[-1] == ("r", "NEW", "before")
            await until(lambda: engine.stats()["store_failures"] >= 1)

            server.start()
            await engine.report(exo.Report(oid, "PARTIALLY_FILLED", text="after"))
            await until(lambda: d.seen[-1] == ("r", "PARTIALLY_FILLED", "after"))
            # The checkpoint writer catches up once Redis is back.
            await until(lambda: engine.stats()["store_failures"] >= 1 and store_checkpointed(server, oid, 4))
        second = Ledgers()
        async with exo.Engine(second, store=exo.RedisStore(server.url)):
            assert second.by_id[oid].seen == [
                ("i", "NEW", 0),
                ("r", "NEW", "before"),
                ("r", "PARTIALLY_FILLED", "after"),
            ]
    finally:
        server.stop()


def store_checkpointed(server: RedisServer, order_id: str, applied: int) -> bool:
    with redis.Redis.from_url(server.url) as r:
        got = r.hget(f"exo:{{{order_id}}}:checkpoint", "applied")
    return got is not None and int(got) >= applied


async def live_orders(store: exo.Store) -> list[str]:
    async with store:
        return await store.live_orders()


async def load(store: exo.Store, order_ids: list[str]) -> list[Any]:
    async with store:
        return await store.load(order_ids)


async def test_concurrent_instructions_for_a_new_still_being_journaled_follow_it(
    store: exo.Store, errors: Errors
) -> None:
    ledgers = Ledgers()
    async with exo.Engine(ledgers, store=store, on_error=errors) as engine:
        # All three are submitted before the NEW's journal write returns.
        first, again, replace = await asyncio.gather(
            engine.submit(exo.Order("BUY", "X", order_id="o1", n=0)),
            engine.submit(exo.Order("BUY", "X", order_id="o1", n=9)),
            engine.submit(exo.Order("BUY", "X", "REPLACE", "o1", n=1)),
        )
        assert (first, again, replace) == ("o1", None, "o1")
        await until(lambda: len(ledgers.by_id["o1"].seen) == 2)
        assert ledgers.by_id["o1"].seen == [("i", "NEW", 0), ("i", "REPLACE", 1)]
        assert [(oid, m.split(":")[0]) for oid, m in errors] == [("o1", "order o1 is already live")]
        assert engine.stats()["journaled"] == 2


async def test_new_without_an_id_gets_a_uuid7_stamped_with_its_creation_time(store: exo.Store) -> None:
    async with exo.Engine(Ledgers(), store=store) as engine:
        ids = [await engine.submit(exo.Order("BUY", "X")) for _ in range(3)]
    for oid in ids:
        assert oid is not None and len(oid) == 32 and int(oid, 16) >= 0
        assert oid[12] == "7" and oid[16] in "89ab"  # version 7, RFC 9562 variant
    ms = [int(oid[:12], 16) for oid in ids if oid]  # the Unix time in ms, first 48 bits
    assert ms == sorted(ms)


async def test_a_delegate_with_the_old_snapshot_method_is_warned_about(
    store: exo.Store, caplog: pytest.LogCaptureFixture
) -> None:
    class OldStyle(Ledger):
        state = None  # type: ignore[assignment]

        def snapshot(self) -> dict[str, Any]:
            return {"seen": self.seen}

    async with exo.Engine(OldStyle, store=store) as engine:
        await engine.submit(exo.Order("BUY", "X"))
        await engine.submit(exo.Order("BUY", "Y"))
    warnings = [r.getMessage() for r in caplog.records if "snapshot()" in r.getMessage()]
    assert len(warnings) == 1  # once per class, not per order
    assert warnings[0].startswith(
        "test_a_delegate_with_the_old_snapshot_method_is_warned_about.<locals>.OldStyle"
    )
    assert "Rename snapshot() to state()" in warnings[0]


async def test_async_actions_finishing_during_stop_are_all_checkpointed(store: exo.Store) -> None:
    """stop() waits for async actions after intake closed; each one's result
    must reach the checkpoint, also after the writer wrote another's."""
    releases = {"a": asyncio.Event(), "b": asyncio.Event()}
    started: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}

    class Slow:
        def __init__(self, order: exo.Order, state: dict[str, Any] | None = None) -> None:
            self.name: str = order.name
            self.n = state["n"] if state else 0

        async def action(self, update: exo.Update) -> bool:
            if update.reports:
                started[self.name].set()
                await releases[self.name].wait()
                self.n += len(update.reports)
            return False

        def state(self) -> dict[str, Any]:
            return {"n": self.n}

    engine = exo.Engine(Slow, store=store)
    await engine.start()
    for name in ("a", "b"):
        oid = await engine.submit(exo.Order("BUY", "X", name=name))
        assert oid is not None
        await engine.report(exo.Report(oid, "NEW"))
        await started[name].wait()
    stopping = asyncio.ensure_future(engine.stop())
    await asyncio.sleep(0.05)  # intake closed; both actions still in flight
    releases["a"].set()
    await asyncio.sleep(0.05)  # a's checkpoint written; the writer finds nothing more
    releases["b"].set()
    await stopping

    states: dict[str, Any] = {}

    def remember(order: exo.Order, state: dict[str, Any] | None = None) -> Slow:
        states[order.name] = state
        return Slow(order, state)

    async with exo.Engine(remember, store=store):
        await until(lambda: len(states) == 2)
    assert states == {"a": {"n": 1}, "b": {"n": 1}}


async def _until_blocked(admin: redis.Redis, command: str, timeout: float = 30.0) -> None:
    """Waits until a client waits in Redis (paused) with ``command``; the timeout is a guard."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not any(c.get("cmd") == command and "b" in c.get("flags", "") for c in admin.client_list()):
        assert asyncio.get_running_loop().time() < deadline, f"no client waits with {command}"
        await asyncio.sleep(0.01)


async def test_a_report_arriving_while_in_doubt_entries_are_undone_is_journaled_and_delivered(
    tmp_path: Path,
) -> None:
    # A write whose reply never came (Redis paused past the store's timeout)
    # leaves its entries in doubt; the writer undoes them (XDEL) as soon as
    # Redis answers. A report handed over while that undo is in flight must be
    # journaled and delivered like any other: the writer once went back to
    # sleep over its wake-up, and the report (and every one queued behind it
    # in a venue's sender) waited forever.
    server = RedisServer(tmp_path)
    server.start()
    admin = redis.Redis.from_url(server.url)
    try:
        ledgers = Ledgers()
        store = exo.RedisStore(server.url, timeout=2)
        async with exo.Engine(ledgers, store=store) as engine:
            oid = await engine.submit(exo.Order("BUY", "X", n=0))
            assert oid
            d = ledgers.by_id[oid]
            admin.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
            with pytest.raises(exo.StoreUnavailable, match="not journaled and not delivered"):
                await engine.report(exo.Report(oid, "NEW", text="in-doubt"))
            # Its undo reaches Redis and waits there, paused.
            await _until_blocked(admin, "xdel")
            later = asyncio.ensure_future(engine.report(exo.Report(oid, "PARTIALLY_FILLED", text="later")))
            await asyncio.sleep(0)  # queued for the writer
            admin.execute_command("CLIENT", "UNPAUSE")
            assert await asyncio.wait_for(later, 10) is True
            await until(lambda: d.seen[-1] == ("r", "PARTIALLY_FILLED", "later"))
        second = Ledgers()
        async with exo.Engine(second, store=exo.RedisStore(server.url)):
            # The in-doubt report was undone, the later one journaled once.
            assert second.by_id[oid].seen == [("i", "NEW", 0), ("r", "PARTIALLY_FILLED", "later")]
    finally:
        admin.close()
        server.stop()
