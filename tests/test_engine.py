"""The engine around the dispatcher: hand-over, merging while busy, async
delegates, errors that affect only their own order, threads, shutdown."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

import exo
from tests.helpers import Errors, Recorder, factory, quote, until


async def test_one_hand_over_at_a_time_async_action_sees_merged_data() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    running = 0
    max_running = 0

    class Sleepy(Recorder):
        async def action(self, update: exo.Update) -> bool:  # type: ignore[override]
            nonlocal running, max_running
            running += 1
            max_running = max(max_running, running)
            super().action(update)
            if len(self.updates) == 2:
                started.set()
                await release.wait()
            running -= 1
            return len(self.updates) == 3

    async with exo.Engine(lambda o: Sleepy(o)) as engine:
        oid = await engine.submit(exo.Order("BUY", "X"))
        (d,) = Recorder.instances
        await d.wait_calls(1)
        engine.quote(quote("X", bid="1"))
        await started.wait()
        # The action is awaiting: everything below merges into the next Update.
        for bid in range(2, 12):
            engine.quote(quote("X", bid=str(bid)))
        engine.trade(exo.Trade("X", "1", "100"))
        engine.trade(exo.Trade("X", "3", "200"))
        await engine.report(exo.Report(oid, "NEW"))
        await asyncio.sleep(0.02)
        assert len(d.updates) == 2
        release.set()
        await engine.wait_done(oid)
        third = d.updates[2]
        assert third.quote == quote("X", bid="11") and third.quotes_merged == 10
        assert third.trade is not None and third.trades_merged == 2
        assert (third.trade.trade_volume, third.trade.avg_px) == (Decimal(4), Decimal(175))
        assert (third.trade.last_qty, third.trade.last_px) == (Decimal(3), Decimal(200))
        assert [r.ord_status for r in third.reports] == [exo.OrdStatus.NEW]
        assert third.staleness_ns is not None and third.staleness_ns > 0
        assert max_running == 1


async def test_sync_delegate_is_called_once_per_burst_not_per_tick() -> None:
    async with exo.Engine(factory()) as engine:
        await engine.submit(exo.Order("BUY", "X"))
        (d,) = Recorder.instances
        await d.wait_calls(1)
        for bid in range(1000):
            engine.quote(quote("X", bid=str(bid)))
        await d.wait_calls(2)
        await asyncio.sleep(0.01)
        assert len(d.updates) == 2
        assert d.updates[1].quotes_merged == 1000
        assert d.updates[1].quote.bid_px == Decimal(999)


async def test_raising_delegate_is_reported_with_traceback_and_others_carry_on(
    errors: Errors,
) -> None:
    class Bad:
        def __init__(self, order: exo.Order) -> None:
            self.calls = 0

        def action(self, update: exo.Update) -> bool:
            self.calls += 1
            raise ValueError("bad algo")

    bad: list[Bad] = []

    def make(order: exo.Order) -> Any:
        if order.symbol == "BAD":
            bad.append(Bad(order))
            return bad[-1]
        return Recorder(order, finish_after=2)

    async with exo.Engine(make, on_error=errors) as engine:
        b = await engine.submit(exo.Order("BUY", "BAD"))
        g = await engine.submit(exo.Order("BUY", "GOOD"))
        await errors.wait(1)
        assert errors[0][0] == b
        assert "action raised ValueError: bad algo" in errors[0][1]
        assert "Traceback" in errors[0][1] and "test_engine.py" in errors[0][1]
        engine.quote(quote("GOOD"))
        await engine.wait_done(g)
        # The failing order stays live and keeps getting Updates.
        assert engine.is_live(b)
        engine.quote(quote("BAD"))
        await errors.wait(2)
        assert bad[0].calls == 2


async def test_async_delegate_that_raises_is_reported(errors: Errors) -> None:
    class Bad:
        def __init__(self, order: exo.Order) -> None:
            pass

        async def action(self, update: exo.Update) -> bool:
            await asyncio.sleep(0)
            raise KeyError("missing")

    async with exo.Engine(Bad, on_error=errors) as engine:
        oid = await engine.submit(exo.Order("BUY", "X"))
        await errors.wait(1)
        assert errors[0][0] == oid and "action raised KeyError" in errors[0][1]
        assert engine.is_live(oid)


@pytest.mark.parametrize("returned", [None, 1, "yes"])
async def test_non_bool_return_is_reported_and_treated_as_false(errors: Errors, returned: Any) -> None:
    class Odd:
        def __init__(self, order: exo.Order) -> None:
            pass

        def action(self, update: exo.Update) -> Any:
            return returned

    async with exo.Engine(Odd, on_error=errors) as engine:
        oid = await engine.submit(exo.Order("BUY", "X"))
        await errors.wait(1)
        assert f"action returned {type(returned).__name__}, expected bool" in errors[0][1]
        assert engine.is_live(oid)


async def test_factory_errors_raise_from_submit() -> None:
    def broken(order: exo.Order) -> Any:
        raise RuntimeError("no delegate for you")

    async with exo.Engine(broken) as engine:
        with pytest.raises(RuntimeError, match="no delegate for you"):
            await engine.submit(exo.Order("BUY", "X"))
        assert engine.live == 0

    async with exo.Engine(lambda o: object()) as engine:
        with pytest.raises(TypeError, match="has no action"):
            await engine.submit(exo.Order("BUY", "X"))


async def test_submit_rejects_non_orders_and_missing_ids() -> None:
    async with exo.Engine(factory()) as engine:
        with pytest.raises(TypeError, match=r"submit\(\) takes an exo\.Order"):
            await engine.submit({"side": "BUY"})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="needs the order_id of a live order"):
            await engine.submit(exo.Order("BUY", "X", msg_type="CANCEL"))


async def test_engine_not_running_says_how_to_start() -> None:
    engine = exo.Engine(factory())
    with pytest.raises(RuntimeError, match="async with engine"):
        await engine.submit(exo.Order("BUY", "X"))
    assert engine.quote(quote()) == 0


@pytest.mark.parametrize("bad", [-1, "5", None, float("nan"), float("inf"), True])
def test_a_bad_stop_timeout_is_refused_when_the_engine_is_made(bad: Any) -> None:
    # Not at stop(), which would fail half-way and leave the engine running.
    with pytest.raises(ValueError, match=r"stop_timeout must be a number of seconds, 0 or more, got "):
        exo.Engine(factory(), stop_timeout=bad)


async def test_quotes_pushed_from_many_threads_reach_the_delegate() -> None:
    async with exo.Engine(factory()) as engine:
        await engine.submit(exo.Order("BUY", "X"))
        (d,) = Recorder.instances
        await d.wait_calls(1)
        per_thread = 2000

        def pusher(t: int) -> None:
            for i in range(per_thread):
                engine.quote(quote("X", bid=str(t * per_thread + i)))

        threads = [threading.Thread(target=pusher, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            await asyncio.sleep(0.001)
        for t in threads:
            t.join()
        await until(lambda: sum(u.quotes_merged for u in d.updates) == 4 * per_thread)
        assert len(d.updates) >= 2


async def test_stop_waits_for_async_clean_up_and_cancels_a_hung_action(errors: Errors) -> None:
    cleaned: list[str] = []

    class Hangs:
        def __init__(self, order: exo.Order) -> None:
            self.order = order

        async def action(self, update: exo.Update) -> bool:
            await asyncio.Event().wait()  # never returns
            return True

        async def clean_up(self) -> None:
            await asyncio.sleep(0.01)
            cleaned.append(self.order.order_id)

    engine = exo.Engine(Hangs, on_error=errors, stop_timeout=0.2)
    async with engine:
        oid = await engine.submit(exo.Order("BUY", "X"))
        await asyncio.sleep(0.02)
        waiter = asyncio.ensure_future(engine.wait_done(oid))
    assert cleaned == [oid]
    assert any("action cancelled: the engine is stopping" in m for _, m in errors)
    with pytest.raises(exo.EngineStopped):
        await waiter


async def test_clean_up_that_raises_is_reported(errors: Errors) -> None:
    class Messy(Recorder):
        def clean_up(self) -> None:
            raise OSError("disk full")

    async with exo.Engine(lambda o: Messy(o), on_error=errors) as engine:
        oid = await engine.submit(exo.Order("BUY", "X"))
    assert errors[0][0] == oid and "clean_up raised OSError: disk full" in errors[0][1]


async def test_intake_after_stop_is_refused() -> None:
    engine = exo.Engine(factory())
    async with engine:
        pass
    with pytest.raises(RuntimeError, match="not running"):
        await engine.report(exo.Report("x", "NEW"))


def _os_threads() -> int:
    """Threads of this process as the OS sees them (tokio's included)."""
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
async def test_starting_and_stopping_many_times_leaks_no_threads() -> None:
    async with exo.Engine(factory()):
        during = _os_threads()
    before = _os_threads()
    assert during > before, "the engine's timer thread should be visible while it runs"
    for _ in range(30):
        async with exo.Engine(factory(finish_after=1)) as engine:
            oid = await engine.submit(exo.Order("BUY", "X"))
            await engine.wait_done(oid)
    deadline = time.monotonic() + 5
    while _os_threads() > before and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert _os_threads() == before


async def test_a_delegate_may_call_back_into_the_engine() -> None:
    class Chatty(Recorder):
        def action(self, update: exo.Update) -> bool:
            super().action(update)
            if len(self.updates) == 1:
                # Re-entrant: push data for itself from inside its own action.
                engine.quote(quote("X", bid="42"))
            return len(self.updates) == 2

    engine = exo.Engine(lambda o: Chatty(o))
    async with engine:
        oid = await engine.submit(exo.Order("BUY", "X"))
        await engine.wait_done(oid)
        (d,) = Recorder.instances
        assert d.updates[1].quote == quote("X", bid="42")


async def test_many_orders_all_get_every_burst() -> None:
    async with exo.Engine(factory()) as engine:
        n = 2000
        for _ in range(n):
            await engine.submit(exo.Order("BUY", "X"))
        await until(lambda: all(len(d.updates) == 1 for d in Recorder.instances))
        engine.quote(quote("X"))
        await until(lambda: all(len(d.updates) == 2 for d in Recorder.instances))
        assert engine.stats()["handovers"] == 2 * n


async def test_update_reports_arrival_time_on_the_monotonic_clock() -> None:
    async with exo.Engine(factory()) as engine:
        await engine.submit(exo.Order("BUY", "X"))
        (d,) = Recorder.instances
        await d.wait_calls(1)
        before = time.monotonic_ns()
        engine.quote(quote("X"))
        await d.wait_calls(2)
        after = time.monotonic_ns()
        arrived = d.updates[1].arrived_ns
        assert arrived is not None and before - 1_000_000 <= arrived <= after + 1_000_000
        assert 0 < d.updates[1].staleness_ns < 5_000_000_000


async def _poll_states_while_a_thread_pushes(engine: exo.Engine, gap_s: float, pushes: int) -> set[bool]:
    """The loop's polling flag, sampled on the loop while a thread pushes a
    quote every ``gap_s`` seconds."""
    core = engine._core
    assert core is not None
    seen: set[bool] = set()

    def pusher() -> None:
        for i in range(pushes):
            engine.quote(quote("X", bid=str(i + 1)))
            time.sleep(gap_s)

    t = threading.Thread(target=pusher)
    t.start()
    while t.is_alive():
        seen.add(core.polling)
        await asyncio.sleep(0.0005)
    t.join()
    return seen


async def test_default_loop_polls_while_a_thread_feeds_it_and_sleeps_once_data_stops() -> None:
    async with exo.Engine(factory()) as engine:
        assert engine._core is not None and engine._core.max_spin == exo.engine.DEFAULT_SPIN == 0.002
        await engine.submit(exo.Order("BUY", "X"))
        (d,) = Recorder.instances
        await d.wait_calls(1)
        seen = await _poll_states_while_a_thread_pushes(engine, 0.0002, 200)
        assert True in seen
        # The window (twice a ~0.2 ms gap), then 10 yields: then it sleeps.
        await until(lambda: engine._core is not None and not engine._core.polling)
        await until(lambda: d.updates[-1].quote is not None and d.updates[-1].quote.bid_px == Decimal(200))


async def test_spin_zero_never_polls_and_still_delivers_from_a_thread() -> None:
    async with exo.Engine(factory(), spin=0) as engine:
        assert engine._core is not None and engine._core.max_spin == 0
        await engine.submit(exo.Order("BUY", "X"))
        (d,) = Recorder.instances
        await d.wait_calls(1)
        seen = await _poll_states_while_a_thread_pushes(engine, 0.0002, 200)
        assert seen == {False}
        await until(lambda: d.updates[-1].quote is not None and d.updates[-1].quote.bid_px == Decimal(200))


@pytest.mark.parametrize("bad", [-0.001, 1.5, True, "0.002", None])
def test_spin_out_of_range_or_not_a_number_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"spin must be a number of seconds between 0 and 1, got "):
        exo.Engine(factory(), spin=bad)  # type: ignore[arg-type]


async def test_quote_is_the_cores_own_method_while_running_and_returns_zero_after() -> None:
    engine = exo.Engine(factory())
    q = quote("X", bid="1")
    assert engine.quote(q) == 0
    async with engine:
        await engine.submit(exo.Order("BUY", "X"))
        assert engine.quote(q) == 1
        with pytest.raises(TypeError):
            engine.quote("not a quote")  # type: ignore[arg-type]
    assert engine.quote(q) == 0 and engine.trade(exo.Trade("X", "1", "100")) == 0


class _KeepsSome:
    """Keeps every other Update it is handed (and reads what it keeps later)."""

    def __init__(self, order: exo.Order, kept: list[tuple[exo.Update, str | None, str]]) -> None:
        self.kept = kept
        self.calls = 0

    def action(self, update: exo.Update) -> bool:
        self.calls += 1
        if self.calls % 2 == 0:
            q = update.quote
            self.kept.append((update, None if q is None else str(q.bid_px), update.order_id))
        return False


async def test_an_update_a_delegate_keeps_never_changes_after_later_hand_overs() -> None:
    # The engine reuses an Update object only when nothing else holds it; one
    # kept by a delegate must read the same forever, whatever came after.
    kept: list[tuple[exo.Update, str | None, str]] = []
    delegates: list[_KeepsSome] = []

    def make(order: exo.Order) -> _KeepsSome:
        delegates.append(_KeepsSome(order, kept))
        return delegates[-1]

    async with exo.Engine(make) as engine:
        for i in range(3):
            await engine.submit(exo.Order("BUY", "X" if i < 2 else "Y"))
        await until(lambda: all(d.calls == 1 for d in delegates))
        for bid in range(1, 41):
            engine.quote(quote("X", bid=str(bid)))
            engine.quote(quote("Y", bid=str(1000 + bid)))
            await until(lambda n=bid + 1: all(d.calls == n for d in delegates))
    assert len(kept) == 3 * 20
    for update, bid, order_id in kept:
        q = update.quote
        assert (None if q is None else str(q.bid_px), update.order_id) == (bid, order_id)
    assert len({id(u) for u, _, _ in kept}) == len(kept)


async def test_updates_handed_over_in_one_batch_each_carry_their_own_order_and_quote() -> None:
    seen: list[tuple[str, str, str | None, int]] = []

    class Reads:
        def __init__(self, order: exo.Order) -> None:
            self.symbol = order.symbol

        def action(self, update: exo.Update) -> bool:
            q = update.quote
            seen.append((update.order_id, self.symbol, None if q is None else q.symbol, update.quotes_merged))
            return False

    async with exo.Engine(Reads) as engine:
        ids = [await engine.submit(exo.Order("BUY", f"S{i % 3}")) for i in range(30)]
        await until(lambda: len(seen) == 30)
        for i in range(3):
            engine.quote(quote(f"S{i}"))
        await until(lambda: len(seen) == 60)
    first, second = seen[:30], seen[30:]
    assert sorted(o for o, _, _, _ in first) == sorted(ids)
    assert all(q is None and n == 0 for _, _, q, n in first)
    assert sorted(o for o, _, _, _ in second) == sorted(ids)
    assert all(q == s and n == 1 for _, s, q, n in second)


class _CountingLoop(asyncio.SelectorEventLoop):
    """A loop subclass whose call_soon does more than queue the callback: it
    records the callbacks' names."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def call_soon(self, callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:
        self.names.append(getattr(callback, "__name__", ""))
        return super().call_soon(callback, *args, context=context)


def test_a_loop_that_overrides_call_soon_gets_every_hand_over_through_it() -> None:
    # On asyncio's own loop the engine queues its hand-over Handle directly;
    # a subclass with its own call_soon must see each hand-over scheduled.
    loop = _CountingLoop()

    async def run() -> list[str]:
        async with exo.Engine(factory()) as engine:
            await engine.submit(exo.Order("BUY", "X"))
            (d,) = Recorder.instances
            await d.wait_calls(1)
            del loop.names[:]
            for i in range(3):
                engine.quote(quote("X", bid=str(100 + i)))
                await d.wait_calls(2 + i)
            return list(loop.names)

    try:
        names = loop.run_until_complete(run())
    finally:
        loop.close()
    assert names.count("run_ready") == 3
