"""The baseline obeys exo's rules: every test runs against exo and the
pure-asyncio baseline alike, with the same assertions (error messages included).

Not collected by ``make bench`` (which collects ``bench_*.py``) nor by the
default ``pytest`` run (``testpaths = tests``); ``make test`` runs it
explicitly: ``.venv/bin/python -m pytest benches/baseline``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

import baseline
import exo

API = {
    "exo": SimpleNamespace(
        name="exo",
        Engine=exo.Engine,
        EngineStopped=exo.EngineStopped,
        Order=exo.Order,
        Quote=exo.Quote,
        Trade=exo.Trade,
        Report=exo.Report,
        MsgType=exo.MsgType,
        OrdStatus=exo.OrdStatus,
    ),
    "baseline": SimpleNamespace(
        name="baseline",
        Engine=baseline.Engine,
        EngineStopped=baseline.EngineStopped,
        Order=baseline.Order,
        Quote=baseline.Quote,
        Trade=baseline.Trade,
        Report=baseline.Report,
        MsgType=baseline.MsgType,
        OrdStatus=baseline.OrdStatus,
    ),
}


@pytest.fixture(params=list(API))
def api(request: pytest.FixtureRequest) -> Any:
    return API[request.param]


class Recorder:
    """Records every Update; finishes after ``finish_after`` calls (or never)."""

    def __init__(self, order: Any, instances: list[Recorder], finish_after: int | None = None) -> None:
        self.order = order
        self.updates: list[Any] = []
        self.finish_after = finish_after
        self.cleaned = 0
        self.changed = asyncio.Event()
        instances.append(self)

    def action(self, update: Any) -> bool:
        self.updates.append(update)
        self.changed.set()
        return self.finish_after is not None and len(self.updates) >= self.finish_after

    def clean_up(self) -> None:
        self.cleaned += 1

    async def wait_calls(self, n: int, timeout: float = 5.0) -> None:
        async def _wait() -> None:
            while len(self.updates) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_wait(), timeout)


class Errors(list[tuple[str, str]]):
    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def __call__(self, order_id: str, message: str) -> None:
        self.append((order_id, message))
        self.event.set()

    async def wait(self, n: int = 1, timeout: float = 5.0) -> None:
        async def _wait() -> None:
            while len(self) < n:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(_wait(), timeout)


def recorders(finish_after: int | None = None) -> tuple[Callable[[Any], Recorder], list[Recorder]]:
    instances: list[Recorder] = []
    return (lambda order: Recorder(order, instances, finish_after)), instances


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    async def _wait() -> None:
        while not predicate():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(_wait(), timeout)


def q(api: Any, symbol: str = "X", bid: str = "100") -> Any:
    return api.Quote(symbol, bid, "1", "101", "2")


# -- merge arithmetic ------------------------------------------------------------


@pytest.mark.parametrize(
    ("prints", "volume", "avg"),
    [
        ([("1", "100"), ("3", "200")], "4", "175"),
        ([("2", "1"), ("1", "2")], "3", "1.33333333"),
        ([("1", "0.00000001"), ("1", "0.00000002")], "2", "0.00000002"),  # half away from zero
        ([("1", "2"), ("2", "1")], "3", "1.33333333"),
        ([("1", "1"), ("2", "2")], "3", "1.66666667"),
        ([("1", "100"), ("1", "200"), ("2", "300")], "4", "225"),
        ([("0.1", "3"), ("0.2", "7"), ("0.3", "11"), ("0.7", "13.5")], "1.3", "11.11538462"),
    ],
)
def test_trade_merge_gives_volume_and_vwap_to_8_places_like_exo(
    prints: list[tuple[str, str]], volume: str, avg: str
) -> None:
    results = []
    for ns in API.values():
        t = ns.Trade("X", *prints[0])
        for p in prints[1:]:
            t = t.merge(ns.Trade("X", *p))
        results.append((t.trade_volume, t.avg_px, t.last_qty, t.last_px))
    assert results[0] == results[1]
    assert results[0][:2] == (Decimal(volume), Decimal(avg))


def test_trade_merge_of_aggregates_matches_exo() -> None:
    results = []
    for ns in API.values():
        a = ns.Trade("X", "1", "100").merge(ns.Trade("X", "1", "200")).merge(ns.Trade("X", "2", "300"))
        b = ns.Trade("X", "1", "10").merge(ns.Trade("X", "3", "30"))
        c = a.merge(b)
        results.append((c.trade_volume, c.avg_px, c.last_qty, c.last_px))
    assert results[0] == results[1] == (Decimal(8), Decimal(125), Decimal(3), Decimal(30))


def test_prints_of_another_symbol_are_not_merged(api: Any) -> None:
    with pytest.raises(ValueError, match="never merged"):
        api.Trade("X", "1", "1").merge(api.Trade("Y", "1", "1"))


def test_floats_are_refused(api: Any) -> None:
    with pytest.raises(TypeError, match=r"bid_px: float 0.1 is not exact; pass a Decimal, str or int"):
        api.Quote("X", 0.1, "1", "2", "1")


def test_quote_helpers_agree(api: Any) -> None:
    quote = api.Quote("X", "99", "1", "101", "3")
    assert (quote.far("BUY"), quote.far_size("buy"), quote.near("SELL"), quote.spread, quote.mid_price) == (
        Decimal(101),
        Decimal(3),
        Decimal(101),
        Decimal(2),
        Decimal(100),
    )


# -- dispatcher rules -------------------------------------------------------------


async def test_new_order_creates_a_delegate_that_gets_the_new_first(api: Any) -> None:
    make, made = recorders()
    async with api.Engine(make) as engine:
        order = api.Order("BUY", "BTC-USD", order_qty=Decimal(2))
        oid = await engine.submit(order)
        assert oid is not None and order.order_id == oid and len(oid) == 32
        (d,) = made
        await d.wait_calls(1)
        first = d.updates[0]
        assert first.order_id == oid and first.instructions[0] is order
        assert first.instructions[0].order_qty == Decimal(2)
        assert engine.is_live(oid)


async def test_first_order_of_a_symbol_subscribes_and_last_unsubscribes(api: Any) -> None:
    events: list[tuple[str, str]] = []
    make, made = recorders(finish_after=2)
    engine = api.Engine(
        make,
        on_subscribe=lambda s: events.append(("sub", s)),
        on_unsubscribe=lambda s: events.append(("unsub", s)),
    )
    async with engine:
        a = await engine.submit(api.Order("BUY", "BTC-USD"))
        b = await engine.submit(api.Order("SELL", "BTC-USD"))
        c = await engine.submit(api.Order("BUY", "ETH-USD"))
        assert events == [("sub", "BTC-USD"), ("sub", "ETH-USD")]
        await until(lambda: all(len(d.updates) == 1 for d in made))
        engine.quote(q(api, "BTC-USD"))
        await engine.wait_done(a)
        await engine.wait_done(b)
        assert events[-1] == ("unsub", "BTC-USD")
        assert engine.symbols() == ["ETH-USD"] and engine.is_live(c)


async def test_known_order_id_arriving_as_new_is_reported(api: Any) -> None:
    errors = Errors()
    make, made = recorders()
    async with api.Engine(make, on_error=errors) as engine:
        oid = await engine.submit(api.Order("BUY", "X"))
        assert await engine.submit(api.Order("BUY", "X", order_id=oid)) is None
        assert errors == [
            (
                oid,
                f"order {oid} is already live: NEW must create a new order;"
                " send CANCEL or REPLACE to change it",
            )
        ]
        assert len(made) == 1


async def test_cancel_or_replace_for_unknown_order_is_reported(api: Any) -> None:
    errors = Errors()
    make, made = recorders()
    async with api.Engine(make, on_error=errors) as engine:
        assert await engine.submit(api.Order("BUY", "X", msg_type="CANCEL", order_id="nope")) is None
        assert await engine.submit(api.Order("BUY", "X", msg_type="replace", order_id="nope2")) is None
        assert errors == [
            (
                "nope",
                "unknown order nope: CANCEL is only accepted for a live order;"
                " an unknown order_id must arrive as NEW",
            ),
            (
                "nope2",
                "unknown order nope2: REPLACE is only accepted for a live order;"
                " an unknown order_id must arrive as NEW",
            ),
        ]
        assert made == []


async def test_cancel_or_replace_changing_side_or_symbol_is_reported(api: Any) -> None:
    errors = Errors()
    make, made = recorders()
    async with api.Engine(make, on_error=errors) as engine:
        oid = await engine.submit(api.Order("BUY", "X"))
        (d,) = made
        await d.wait_calls(1)
        assert await engine.submit(api.Order("SELL", "X", msg_type="CANCEL", order_id=oid)) is None
        assert await engine.submit(api.Order("BUY", "Y", msg_type="REPLACE", order_id=oid)) is None
        assert [m for _, m in errors] == [
            f"CANCEL for order {oid} has side SELL, but the order is BUY: side never changes",
            f"REPLACE for order {oid} has symbol Y, but the order is for X: symbol never changes",
        ]
        await asyncio.sleep(0.02)
        assert len(d.updates) == 1


async def test_cancel_and_replace_reach_the_delegate_which_decides(api: Any) -> None:
    make, made = recorders()
    async with api.Engine(make) as engine:
        order = api.Order("BUY", "X", order_qty=Decimal(1))
        oid = await engine.submit(order)
        (d,) = made
        await d.wait_calls(1)
        r, c = order.replace(order_qty=Decimal(3)), order.cancel()
        assert await engine.submit(r) == oid
        assert await engine.submit(c) == oid
        await d.wait_calls(2)
        assert d.updates[1].instructions == [r, c]
        assert engine.is_live(oid)


async def test_report_for_unknown_order_is_reported(api: Any) -> None:
    errors = Errors()
    make, _ = recorders()
    async with api.Engine(make, on_error=errors) as engine:
        assert await engine.report(api.Report("ghost", "FILLED")) is False
        assert errors == [
            ("ghost", "report for unknown order ghost: reports are only accepted for live orders")
        ]


async def test_quotes_and_trades_reach_every_order_of_their_symbol_only(api: Any) -> None:
    make, made = recorders()
    async with api.Engine(make) as engine:
        for side, sym in [("BUY", "X"), ("SELL", "X"), ("BUY", "Y")]:
            await engine.submit(api.Order(side, sym))
        a, b, c = made
        await until(lambda: all(len(d.updates) == 1 for d in made))
        assert engine.quote(q(api, "X", bid="7")) == 2
        assert engine.trade(api.Trade("Y", "2", "9")) == 1
        assert engine.quote(q(api, "Z")) == 0
        await until(lambda: all(len(d.updates) == 2 for d in made))
        assert a.updates[1].quote == q(api, "X", bid="7") and a.updates[1].trade is None
        assert b.updates[1].quote == q(api, "X", bid="7")
        assert c.updates[1].quote is None and c.updates[1].trade == api.Trade("Y", "2", "9")
        assert (c.updates[1].trades_merged, a.updates[1].quotes_merged) == (1, 1)


async def test_idle_order_gets_an_empty_idle_update(api: Any) -> None:
    make, made = recorders()
    async with api.Engine(make, idle_interval=0.05) as engine:
        await engine.submit(api.Order("BUY", "X"))
        (d,) = made
        await d.wait_calls(3)
        for u in d.updates[1:3]:
            assert u.idle and u.quote is None and u.trade is None
            assert u.instructions == [] and u.reports == []
            assert (u.quotes_merged, u.trades_merged, u.staleness_ns, u.arrived_ns) == (0, 0, None, None)
        assert not d.updates[0].idle


async def test_stop_calls_every_live_delegates_clean_up_and_does_not_cancel(api: Any) -> None:
    make, made = recorders()
    engine = api.Engine(make)
    async with engine:
        for i in range(5):
            await engine.submit(api.Order("BUY", f"S{i}"))
        await until(lambda: len(made) == 5 and all(d.updates for d in made))
    assert [d.cleaned for d in made] == [1] * 5
    assert all(i.msg_type is api.MsgType.NEW for d in made for u in d.updates for i in u.instructions)
    assert not engine.running and engine.live == 0


# -- the engine around the dispatcher ---------------------------------------------


async def test_one_hand_over_at_a_time_async_action_sees_merged_data(api: Any) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    running = max_running = 0
    made: list[Recorder] = []

    class Sleepy(Recorder):
        async def action(self, update: Any) -> bool:  # type: ignore[override]
            nonlocal running, max_running
            running += 1
            max_running = max(max_running, running)
            super().action(update)
            if len(self.updates) == 2:
                started.set()
                await release.wait()
            running -= 1
            return len(self.updates) == 3

    async with api.Engine(lambda o: Sleepy(o, made)) as engine:
        oid = await engine.submit(api.Order("BUY", "X"))
        (d,) = made
        await d.wait_calls(1)
        engine.quote(q(api, bid="1"))
        await started.wait()
        for bid in range(2, 12):
            engine.quote(q(api, bid=str(bid)))
        engine.trade(api.Trade("X", "1", "100"))
        engine.trade(api.Trade("X", "3", "200"))
        await engine.report(api.Report(oid, "NEW"))
        await asyncio.sleep(0.02)
        assert len(d.updates) == 2
        release.set()
        await engine.wait_done(oid)
        third = d.updates[2]
        assert third.quote == q(api, bid="11") and third.quotes_merged == 10
        assert third.trades_merged == 2
        assert (third.trade.trade_volume, third.trade.avg_px) == (Decimal(4), Decimal(175))
        assert (third.trade.last_qty, third.trade.last_px) == (Decimal(3), Decimal(200))
        assert [r.ord_status for r in third.reports] == [api.OrdStatus.NEW]
        assert third.staleness_ns is not None and third.staleness_ns > 0
        assert max_running == 1


async def test_sync_delegate_is_called_once_per_burst_not_per_tick(api: Any) -> None:
    make, made = recorders()
    async with api.Engine(make) as engine:
        await engine.submit(api.Order("BUY", "X"))
        (d,) = made
        await d.wait_calls(1)
        for bid in range(1000):
            engine.quote(q(api, bid=str(bid)))
        await d.wait_calls(2)
        await asyncio.sleep(0.01)
        assert len(d.updates) == 2
        assert d.updates[1].quotes_merged == 1000 and d.updates[1].quote.bid_px == Decimal(999)


async def test_raising_delegate_is_reported_and_stays_live(api: Any) -> None:
    errors = Errors()

    class Bad:
        def __init__(self, order: Any) -> None:
            self.calls = 0

        def action(self, update: Any) -> bool:
            self.calls += 1
            raise ValueError("bad algo")

    async with api.Engine(Bad, on_error=errors) as engine:
        oid = await engine.submit(api.Order("BUY", "X"))
        await errors.wait(1)
        assert errors[0][0] == oid and "action raised ValueError: bad algo" in errors[0][1]
        assert "Traceback" in errors[0][1]
        engine.quote(q(api))
        await errors.wait(2)
        assert engine.is_live(oid)


async def test_async_delegate_that_raises_is_reported(api: Any) -> None:
    errors = Errors()

    class Bad:
        def __init__(self, order: Any) -> None:
            pass

        async def action(self, update: Any) -> bool:
            await asyncio.sleep(0)
            raise KeyError("missing")

    async with api.Engine(Bad, on_error=errors) as engine:
        oid = await engine.submit(api.Order("BUY", "X"))
        await errors.wait(1)
        assert errors[0][0] == oid and "action raised KeyError" in errors[0][1]
        assert engine.is_live(oid)


@pytest.mark.parametrize("returned", [None, 1, "yes"])
async def test_non_bool_return_is_reported_and_treated_as_false(api: Any, returned: Any) -> None:
    errors = Errors()

    class Odd:
        def __init__(self, order: Any) -> None:
            pass

        def action(self, update: Any) -> Any:
            return returned

    async with api.Engine(Odd, on_error=errors) as engine:
        oid = await engine.submit(api.Order("BUY", "X"))
        await errors.wait(1)
        assert f"action returned {type(returned).__name__}, expected bool" in errors[0][1]
        assert engine.is_live(oid)


async def test_factory_errors_raise_from_submit(api: Any) -> None:
    def broken(order: Any) -> Any:
        raise RuntimeError("no delegate for you")

    async with api.Engine(broken) as engine:
        with pytest.raises(RuntimeError, match="no delegate for you"):
            await engine.submit(api.Order("BUY", "X"))
        assert engine.live == 0
    async with api.Engine(lambda o: object()) as engine:
        with pytest.raises(TypeError, match="has no action"):
            await engine.submit(api.Order("BUY", "X"))


async def test_engine_not_running_says_how_to_start(api: Any) -> None:
    make, _ = recorders()
    engine = api.Engine(make)
    with pytest.raises(RuntimeError, match="async with engine"):
        await engine.submit(api.Order("BUY", "X"))
    assert engine.quote(q(api)) == 0


async def test_stop_waits_for_async_clean_up_and_cancels_a_hung_action(api: Any) -> None:
    errors = Errors()
    cleaned: list[str] = []

    class Hangs:
        def __init__(self, order: Any) -> None:
            self.order = order

        async def action(self, update: Any) -> bool:
            await asyncio.Event().wait()
            return True

        async def clean_up(self) -> None:
            await asyncio.sleep(0.01)
            cleaned.append(self.order.order_id)

    engine = api.Engine(Hangs, on_error=errors, stop_timeout=0.2)
    async with engine:
        oid = await engine.submit(api.Order("BUY", "X"))
        await asyncio.sleep(0.02)
        waiter = asyncio.ensure_future(engine.wait_done(oid))
    assert cleaned == [oid]
    assert any("action cancelled: the engine is stopping" in m for _, m in errors)
    with pytest.raises(api.EngineStopped):
        await waiter


async def test_a_delegate_may_call_back_into_the_engine(api: Any) -> None:
    made: list[Recorder] = []

    class Chatty(Recorder):
        def action(self, update: Any) -> bool:
            super().action(update)
            if len(self.updates) == 1:
                engine.quote(q(api, bid="42"))
            return len(self.updates) == 2

    engine = api.Engine(lambda o: Chatty(o, made))
    async with engine:
        oid = await engine.submit(api.Order("BUY", "X"))
        await engine.wait_done(oid)
        assert made[0].updates[1].quote == q(api, bid="42")


async def test_many_orders_all_get_every_burst(api: Any) -> None:
    make, made = recorders()
    async with api.Engine(make) as engine:
        n = 5000  # more than one scheduler budget
        for _ in range(n):
            await engine.submit(api.Order("BUY", "X"))
        await until(lambda: all(len(d.updates) == 1 for d in made))
        engine.quote(q(api))
        await until(lambda: all(len(d.updates) == 2 for d in made))
        assert engine.stats()["handovers"] == 2 * n


async def test_orders_ending_in_any_order_keep_the_symbol_index_right(api: Any) -> None:
    """Swap-removal from the per-symbol list: every survivor still gets data."""
    done_ids: set[str] = set()

    class Finishes(Recorder):
        def action(self, update: Any) -> bool:
            super().action(update)
            return self.order.order_id in done_ids

    made: list[Recorder] = []
    async with api.Engine(lambda o: Finishes(o, made)) as engine:
        ids = [await engine.submit(api.Order("BUY", "X")) for _ in range(10)]
        await until(lambda: all(len(d.updates) == 1 for d in made))
        done_ids.update(ids[i] for i in (0, 3, 9, 4))
        assert engine.quote(q(api)) == 10
        await until(lambda: engine.live == 6)
        assert engine.quote(q(api, bid="5")) == 6
        survivors = [d for d in made if d.order.order_id not in done_ids]
        await until(lambda: all(len(d.updates) == 3 for d in survivors))
        assert all(d.updates[2].quote.bid_px == Decimal(5) for d in survivors)


async def test_quotes_from_a_feed_thread_reach_the_delegate(api: Any) -> None:
    """exo's quote() is safe from any thread; the baseline hops with call_soon_threadsafe."""
    make, made = recorders()
    async with api.Engine(make) as engine:
        await engine.submit(api.Order("BUY", "X"))
        (d,) = made
        await d.wait_calls(1)
        push = engine.quote if api.name == "exo" else engine.quote_threadsafe
        n = 2000
        thread = threading.Thread(target=lambda: [push(q(api, bid=str(i))) for i in range(n)])
        thread.start()
        await until(lambda: sum(u.quotes_merged for u in d.updates) == n)
        thread.join()
        assert d.updates[-1].quote.bid_px == Decimal(n - 1)


def test_feed_frames_parse_into_exact_quotes_and_trades() -> None:
    from baseline.feed import parse_ticker_frame, ticker_frames

    frame = next(iter(ticker_frames("BTC-USD", 1)))
    quote, trade = parse_ticker_frame(frame)
    assert quote == baseline.Quote("BTC-USD", "60000.00", "0.00000001", "60000.01", "1.00000000")
    assert trade == baseline.Trade("BTC-USD", "0.00000001", "60000.005")
