"""Every Dispatcher rule (README, "Rules the engine enforces"), through the Python Engine."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

import exo
from exo import MsgType
from tests.helpers import Errors, Recorder, factory, quote, until


async def test_new_order_creates_a_delegate_that_gets_the_new_first() -> None:
    async with exo.Engine(factory()) as engine:
        order = exo.Order("BUY", "BTC-USD", order_qty=Decimal(2))
        oid = await engine.submit(order)
        assert oid is not None and order.order_id == oid
        (d,) = Recorder.instances
        assert d.order is order
        await d.wait_calls(1)
        first = d.updates[0]
        assert first.order_id == oid
        assert first.instructions == [order]
        assert first.instructions[0] is order  # the very same object, user fields and all
        assert first.instructions[0].order_qty == Decimal(2)
        assert engine.is_live(oid)


async def test_first_order_of_a_symbol_subscribes_and_last_unsubscribes() -> None:
    events: list[tuple[str, str]] = []
    engine = exo.Engine(
        factory(finish_after=2),
        on_subscribe=lambda s: events.append(("sub", s)),
        on_unsubscribe=lambda s: events.append(("unsub", s)),
    )
    async with engine:
        a = await engine.submit(exo.Order("BUY", "BTC-USD"))
        b = await engine.submit(exo.Order("SELL", "BTC-USD"))
        c = await engine.submit(exo.Order("BUY", "ETH-USD"))
        assert events == [("sub", "BTC-USD"), ("sub", "ETH-USD")]
        assert sorted(engine.symbols()) == ["BTC-USD", "ETH-USD"]
        await until(lambda: all(len(d.updates) == 1 for d in Recorder.instances))
        engine.quote(quote("BTC-USD"))
        await engine.wait_done(a)
        await engine.wait_done(b)
        assert events[-1] == ("unsub", "BTC-USD")
        assert engine.symbols() == ["ETH-USD"]
        assert engine.is_live(c)


async def test_known_order_id_arriving_as_new_is_reported(errors: Errors) -> None:
    async with exo.Engine(factory(), on_error=errors) as engine:
        oid = await engine.submit(exo.Order("BUY", "X"))
        again = exo.Order("BUY", "X", order_id=oid)
        assert await engine.submit(again) is None
        assert errors == [
            (
                oid,
                f"order {oid} is already live: NEW must create a new order;"
                " send CANCEL or REPLACE to change it",
            )
        ]
        assert len(Recorder.instances) == 1  # factory not called for the duplicate


async def test_cancel_or_replace_for_unknown_order_is_reported(errors: Errors) -> None:
    async with exo.Engine(factory(), on_error=errors) as engine:
        cancel = exo.Order("BUY", "X", msg_type=MsgType.CANCEL, order_id="nope")
        assert await engine.submit(cancel) is None
        replace = exo.Order("BUY", "X", msg_type="replace", order_id="nope2")
        assert await engine.submit(replace) is None
        assert errors[0][0] == "nope" and "unknown order nope: CANCEL" in errors[0][1]
        assert "must arrive as NEW" in errors[0][1]
        assert errors[1][0] == "nope2" and "REPLACE" in errors[1][1]
        assert Recorder.instances == []


async def test_cancel_or_replace_changing_side_or_symbol_is_reported(errors: Errors) -> None:
    async with exo.Engine(factory(), on_error=errors) as engine:
        order = exo.Order("BUY", "X")
        oid = await engine.submit(order)
        (d,) = Recorder.instances
        await d.wait_calls(1)
        bad_side = exo.Order("SELL", "X", msg_type="CANCEL", order_id=oid)
        bad_symbol = exo.Order("BUY", "Y", msg_type="REPLACE", order_id=oid)
        assert await engine.submit(bad_side) is None
        assert await engine.submit(bad_symbol) is None
        assert "has side SELL, but the order is BUY: side never changes" in errors[0][1]
        assert "has symbol Y, but the order is for X: symbol never changes" in errors[1][1]
        await asyncio.sleep(0.02)
        assert len(d.updates) == 1  # nothing delivered


async def test_cancel_and_replace_reach_the_delegate_which_decides() -> None:
    async with exo.Engine(factory()) as engine:
        order = exo.Order("BUY", "X", order_qty=Decimal(1))
        oid = await engine.submit(order)
        (d,) = Recorder.instances
        await d.wait_calls(1)
        r = order.replace(order_qty=Decimal(3))
        c = order.cancel()
        assert await engine.submit(r) == oid
        assert await engine.submit(c) == oid
        await d.wait_calls(2)
        assert d.updates[1].instructions == [r, c]
        assert [i.msg_type for i in d.updates[1].instructions] == [MsgType.REPLACE, MsgType.CANCEL]
        assert engine.is_live(oid)  # a CANCEL is only an instruction; the delegate decides


async def test_report_for_unknown_order_is_reported(errors: Errors) -> None:
    async with exo.Engine(factory(), on_error=errors) as engine:
        assert await engine.report(exo.Report("ghost", "FILLED")) is False
        assert errors == [
            ("ghost", "report for unknown order ghost: reports are only accepted for live orders")
        ]


async def test_reports_and_instructions_arrive_in_order_never_merged() -> None:
    gate = asyncio.Event()

    class Slow(Recorder):
        async def action(self, update: exo.Update) -> bool:  # type: ignore[override]
            super().action(update)
            if len(self.updates) == 1:
                await gate.wait()
            return False

    async with exo.Engine(lambda o: Slow(o)) as engine:
        order = exo.Order("BUY", "X")
        oid = await engine.submit(order)
        (d,) = Recorder.instances
        await d.wait_calls(1)
        reports = [
            exo.Report(oid, "NEW"),
            exo.Report(oid, "PARTIALLY_FILLED", "1", "10"),
            exo.Report(oid, "FILLED", "1", "11"),
        ]
        instructions = [order.replace(n=i) for i in range(3)]
        for r, i in zip(reports, instructions, strict=True):
            await engine.report(r)
            await engine.submit(i)
        gate.set()
        await d.wait_calls(2)
        assert d.updates[1].reports == reports
        assert d.updates[1].instructions == instructions


async def test_quotes_and_trades_reach_every_order_of_their_symbol_only() -> None:
    async with exo.Engine(factory()) as engine:
        for side, sym in [("BUY", "X"), ("SELL", "X"), ("BUY", "Y")]:
            await engine.submit(exo.Order(side, sym))
        a, b, c = Recorder.instances
        await until(lambda: all(len(d.updates) == 1 for d in (a, b, c)))
        assert engine.quote(quote("X", bid="7")) == 2
        assert engine.trade(exo.Trade("Y", "2", "9")) == 1
        assert engine.quote(quote("Z")) == 0
        await until(lambda: all(len(d.updates) == 2 for d in (a, b, c)))
        assert a.updates[1].quote == quote("X", bid="7") and a.updates[1].trade is None
        assert b.updates[1].quote == quote("X", bid="7")
        assert c.updates[1].quote is None and c.updates[1].trade == exo.Trade("Y", "2", "9")
        assert c.updates[1].trades_merged == 1


async def test_true_removes_the_order() -> None:
    async with exo.Engine(factory(finish_after=1)) as engine:
        oid = await engine.submit(exo.Order("BUY", "X"))
        await engine.wait_done(oid)
        assert not engine.is_live(oid) and engine.live == 0
        assert engine.quote(quote("X")) == 0


async def test_idle_order_gets_an_empty_idle_update() -> None:
    async with exo.Engine(factory(), idle_interval=0.05) as engine:
        await engine.submit(exo.Order("BUY", "X"))
        (d,) = Recorder.instances
        await d.wait_calls(3)
        for u in d.updates[1:3]:
            assert u.idle and u.quote is None and u.trade is None
            assert u.instructions == [] and u.reports == []
            assert (u.quotes_merged, u.trades_merged, u.staleness_ns, u.arrived_ns) == (
                0,
                0,
                None,
                None,
            )
        assert not d.updates[0].idle


async def test_stop_calls_every_live_delegates_clean_up_and_does_not_cancel() -> None:
    engine = exo.Engine(factory())
    async with engine:
        for i in range(5):
            await engine.submit(exo.Order("BUY", f"S{i}"))
        await until(lambda: all(d.updates for d in Recorder.instances))
    assert [d.cleaned for d in Recorder.instances] == [1] * 5
    for d in Recorder.instances:  # no CANCEL was delivered
        assert all(i.msg_type is MsgType.NEW for u in d.updates for i in u.instructions)
    assert not engine.running and engine.live == 0


async def test_the_cores_check_answers_as_submit_would_without_delivering(errors: Errors) -> None:
    async with exo.Engine(factory(), on_error=errors) as engine:
        core = engine._core
        assert core is not None
        oid = await engine.submit(exo.Order("BUY", "X"))
        assert core.check(exo.Order("BUY", "X")) is None  # a NEW without an id gets one
        assert core.check(exo.Order("BUY", "X", order_id=oid)) == (
            f"order {oid} is already live: NEW must create a new order; send CANCEL or REPLACE to change it"
        )
        assert core.check(exo.Order("SELL", "X", msg_type=MsgType.CANCEL, order_id=oid)) == (
            f"CANCEL for order {oid} has side SELL, but the order is BUY: side never changes"
        )
        assert core.check(exo.Order("BUY", "X", msg_type=MsgType.REPLACE, order_id=oid)) is None
        with pytest.raises(ValueError, match="a CANCEL needs the order_id of a live order"):
            core.check(exo.Order("BUY", "X", msg_type=MsgType.CANCEL))
        assert errors == []  # a check reports nothing...
        assert len(Recorder.instances) == 1  # ...and makes no delegate


def test_new_order_id_is_the_cores_uuid_v7() -> None:
    ids = [exo._core.new_order_id() for _ in range(100)]
    assert len(set(ids)) == 100
    now_ms = time.time() * 1000
    for oid in ids:
        assert len(oid) == 32 and int(oid, 16) >= 0 and oid == oid.lower()
        assert oid[12] == "7" and oid[16] in "89ab"  # version 7, RFC 4122 variant
        assert abs(int(oid[:12], 16) - now_ms) < 60_000  # milliseconds since the epoch


async def test_a_delegate_late_in_a_batch_gets_data_that_arrived_while_earlier_ones_ran() -> None:
    """Each order's Update is refreshed just before its delegate is called once
    the batch has run longer than REFRESH_AFTER (20 us): the second delegate
    sees the quote the first one pushed, in the same hand-over."""
    seen: list[tuple[str, Decimal, int]] = []
    batch_started = asyncio.Event()
    engine: exo.Engine

    class Slow:
        def __init__(self, order: exo.Order) -> None:
            self.order = order

        def action(self, update: exo.Update) -> bool:
            q = update.quote
            if q is None:
                return False
            seen.append((update.order_id, q.bid_px, update.quotes_merged))
            if len(seen) == 1:
                # Longer than REFRESH_AFTER (a precondition, not a measurement).
                end = time.perf_counter_ns() + 200_000
                while time.perf_counter_ns() < end:
                    pass
                engine.quote(quote("X", bid="2"))
                batch_started.set()
            return False

    async with exo.Engine(Slow) as engine:
        a = await engine.submit(exo.Order("BUY", "X"))
        b = await engine.submit(exo.Order("BUY", "X"))
        await until(lambda: engine.stats()["handovers"] >= 2)
        engine.quote(quote("X", bid="1"))
        await batch_started.wait()
        await until(lambda: len(seen) >= 2)
        first, second = seen[0], seen[1]
        assert {first[0], second[0]} == {a, b}
        assert first[1:] == (Decimal(1), 1)
        assert second[1:] == (Decimal(2), 2), "refreshed: newest quote, both quotes counted"
