"""The paper venue through a real engine: requests go out with venue.send(),
reports come back only through engine.report() into the parent's Updates,
where a delegate applies them to its ChildOrders.

Covers: resting, partial fills across several quotes, FIFO at one price, IOC,
FOK, MARKET, post-only, replace, cancel, too-late-to-cancel, latency, status
unknown, reconciliation after a lost connection, rate limits, routing errors
and instrument checks (unknown symbol, off tick, off lot)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any, ClassVar

import pytest

import exo
from exo import ChildOrder, ExecType, InstrumentError, OrdStatus, OrdType, TimeInForce
from exo.venues import Paper, RateLimited, UnknownSymbol
from tests.helpers import Errors, until


class Holder:
    """A delegate that applies every report to its children and keeps them."""

    instances: ClassVar[list[Holder]] = []

    def __init__(self, order: exo.Order, venue: Paper, state: dict[str, Any] | None = None) -> None:
        self.order, self.venue = order, venue
        self.children: list[ChildOrder] = list(state["children"]) if state else []
        self.reports: list[exo.Report] = []
        self.changes = 0
        Holder.instances.append(self)

    def action(self, update: exo.Update) -> bool:
        for r in update.reports:
            self.reports.append(r)
            for c in self.children:
                if c.owns(r.cl_ord_id) or c.owns(r.orig_cl_ord_id):
                    self.changes += c.apply(r)
                    break
        return False

    def state(self) -> dict[str, Any]:
        return {"children": self.children}

    def child(self, qty: str, px: str | None, side: str = "BUY", **kw: Any) -> ChildOrder:
        c = ChildOrder(
            self.order.order_id or "",
            self.order.symbol,
            side,
            D(qty),  # type: ignore[arg-type]
            price=None if px is None else D(px),
            **kw,
        )
        self.children.append(c)
        return c

    def types(self, child: ChildOrder) -> list[str]:
        return [
            r.exec_type.name if r.exec_type else f"CXL_REJ({r.text})"
            for r in self.reports
            if child.owns(r.cl_ord_id) or child.owns(r.orig_cl_ord_id)
        ]


def q(bid: str = "100", bid_size: str = "1", ask: str = "101", ask_size: str = "1") -> exo.Quote:
    return exo.Quote("BTC-USD", bid, bid_size, ask, ask_size)


@contextlib.asynccontextmanager
async def one_order(
    paper: Paper, errors: Errors, delegate: type[Holder] = Holder, *, start: bool = False
) -> AsyncIterator[tuple[exo.Engine, str, Holder]]:
    """An engine whose delegates (``delegate``) send to ``paper`` (started
    first if ``start``), with one BUY BTC-USD order: yields (engine, its
    order_id, its delegate) once the delegate exists."""
    Holder.instances.clear()
    async with exo.Engine(paper.delegates(delegate), on_error=errors) as engine:
        paper.attach(engine)
        if start:
            await paper.start()
        oid = await engine.submit(exo.Order("BUY", "BTC-USD")) or ""
        await until(lambda: bool(Holder.instances))
        yield engine, oid, Holder.instances[0]


@pytest.fixture
async def setup(errors: Errors) -> AsyncIterator[tuple[exo.Engine, Paper, Holder]]:
    paper = Paper()
    async with one_order(paper, errors, start=True) as (engine, _, h):
        yield engine, paper, h
        await paper.stop()


async def settled(paper: Paper, holder: Holder, n: int) -> None:
    """Waits until the venue delivered everything and the delegate saw n reports."""
    await paper.drain()
    await until(lambda: len(holder.reports) >= n)


async def test_limit_rests_then_fills_when_the_ask_reaches_its_price(setup: Any) -> None:
    engine, paper, h = setup
    paper.on_quote(q(ask="101"))
    c = h.child("0.5", "100")
    assert await paper.send(c.new())
    await settled(paper, h, 2)
    assert h.types(c) == ["PENDING_NEW", "NEW"] and c.ord_status == OrdStatus.NEW
    assert paper.open_orders() == [(c.cl_ord_id, exo.Side.BUY, D("100"), D("0.5"))]
    engine.quote(q(ask="99.5", ask_size="3"))  # reaches the delegate's Update, and so the venue
    await settled(paper, h, 3)
    assert c.ord_status == OrdStatus.FILLED and c.avg_px == D("100")  # rests: fills at its own price
    assert paper.open_orders() == []


async def test_partial_fills_across_several_quotes_take_at_most_the_size_shown(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="102"))
    c = h.child("1", "101")
    await paper.send(c.new())
    for size in ("0.3", "0.3", "0.3", "0.3"):
        paper.on_quote(q(ask="101", ask_size=size))
    await settled(paper, h, 6)
    fills = [r for r in h.reports if r.exec_type == ExecType.TRADE]
    assert [r.last_qty for r in fills] == [D("0.3"), D("0.3"), D("0.3"), D("0.1")]
    assert [r.ord_status for r in fills][-1] == OrdStatus.FILLED
    assert c.cum_qty == D("1") and c.ord_status == OrdStatus.FILLED


async def test_the_same_quote_seen_twice_shows_its_size_once(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="102"))
    c = h.child("1", "101")
    await paper.send(c.new())
    quote = q(ask="101", ask_size="0.4")
    paper.on_quote(quote)
    paper.on_quote(quote)
    await settled(paper, h, 3)
    assert c.cum_qty == D("0.4")


async def test_fifo_at_one_price_and_better_price_first(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="105"))
    first, second, better = h.child("1", "100"), h.child("1", "100"), h.child("1", "100.5")
    for c in (first, second, better):
        await paper.send(c.new())
    paper.on_quote(q(ask="100", ask_size="1.5"))
    await settled(paper, h, 8)
    assert (better.cum_qty, first.cum_qty, second.cum_qty) == (D("1"), D("0.5"), D("0"))


async def test_crossing_limit_takes_the_far_price_then_rests(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="101", ask_size="0.2"))
    c = h.child("1", "102")
    await paper.send(c.new())
    await settled(paper, h, 3)
    assert c.cum_qty == D("0.2") and c.avg_px == D("101") and c.ord_status == OrdStatus.PARTIALLY_FILLED
    assert paper.open_orders()[0][3] == D("0.8")


async def test_ioc_fills_what_is_shown_and_cancels_the_rest(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="101", ask_size="0.4"))
    c = h.child("1", "101", time_in_force=TimeInForce.IOC)
    await paper.send(c.new())
    await settled(paper, h, 4)
    assert h.types(c) == ["PENDING_NEW", "NEW", "TRADE", "CANCELED"]
    assert c.ord_status == OrdStatus.CANCELED and c.cum_qty == D("0.4")
    assert paper.open_orders() == []


async def test_fok_that_cannot_fill_whole_is_canceled_with_nothing_filled(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="101", ask_size="0.4"))
    c = h.child("1", "101", time_in_force=TimeInForce.FOK)
    await paper.send(c.new())
    await settled(paper, h, 3)
    assert c.ord_status == OrdStatus.CANCELED and c.cum_qty == 0 and "FOK" in (c.text or "")


async def test_fok_that_can_fill_whole_fills_at_once(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="101", ask_size="2"))
    c = h.child("1", "101", time_in_force=TimeInForce.FOK)
    await paper.send(c.new())
    await settled(paper, h, 3)
    assert c.ord_status == OrdStatus.FILLED and c.cum_qty == D("1")


async def test_market_takes_the_far_side_and_is_rejected_without_one(setup: Any) -> None:
    _, paper, h = setup
    c = h.child("1", None, ord_type=OrdType.MARKET, time_in_force=TimeInForce.IOC)
    await paper.send(c.new())
    await settled(paper, h, 2)
    assert c.ord_status == OrdStatus.REJECTED and "NO_LIQUIDITY" in (c.text or "")
    paper.on_quote(q(ask="101", ask_size="0.7"))
    m = h.child("0.5", None, ord_type=OrdType.MARKET, time_in_force=TimeInForce.IOC)
    await paper.send(m.new())
    await settled(paper, h, 5)
    assert m.ord_status == OrdStatus.FILLED and m.avg_px == D("101")


async def test_post_only_that_would_cross_is_rejected_with_the_reason(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="101"))
    c = h.child("1", "101", time_in_force=TimeInForce.POST_ONLY)
    await paper.send(c.new())
    await settled(paper, h, 2)
    assert (
        c.ord_status == OrdStatus.REJECTED
        and c.text is not None
        and c.text.startswith("POST_ONLY_WOULD_CROSS")
    )
    ok = h.child("1", "100", time_in_force=TimeInForce.POST_ONLY)
    await paper.send(ok.new())
    await settled(paper, h, 4)
    assert ok.ord_status == OrdStatus.NEW


async def test_replace_reprices_a_resting_order_and_it_fills_at_the_new_price(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="102", ask_size="5"))
    c = h.child("1", "100")
    await paper.send(c.new())
    await settled(paper, h, 2)
    req = c.replace(price=D("102"))
    await paper.send(req)
    await settled(paper, h, 5)
    assert h.types(c) == ["PENDING_NEW", "NEW", "PENDING_REPLACE", "REPLACED", "TRADE"]
    assert c.cl_ord_id == req.cl_ord_id and c.price == D("102")
    assert c.ord_status == OrdStatus.FILLED and c.avg_px == D("102")


async def test_a_replaced_order_that_closes_leaves_none_of_its_cl_ord_ids_live(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="102", ask_size="5"))
    c = h.child("1", "100")
    await paper.send(c.new())
    await settled(paper, h, 2)
    await paper.send(c.replace(price=D("101")))
    await settled(paper, h, 4)
    await paper.send(c.replace(price=D("102")))
    await settled(paper, h, 7)
    assert c.ord_status == OrdStatus.FILLED and len(c.cl_ord_ids) == 3
    assert paper._orders == {}  # the old ids used to stay here forever
    assert all(paper._closed[i] is paper._closed[c.cl_ord_id] for i in c.cl_ord_ids)


async def test_cancel_of_a_resting_order(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q())
    c = h.child("1", "99")
    await paper.send(c.new())
    await settled(paper, h, 2)
    await paper.send(c.cancel())
    await settled(paper, h, 4)
    assert h.types(c) == ["PENDING_NEW", "NEW", "PENDING_CANCEL", "CANCELED"]
    assert c.ord_status == OrdStatus.CANCELED and paper.open_orders() == []


async def test_too_late_to_cancel_when_a_fill_got_there_first(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q(ask="102"))
    c = h.child("1", "100")
    await paper.send(c.new())
    await settled(paper, h, 2)
    cancel = c.cancel()
    paper.on_quote(q(ask="100", ask_size="5"))  # fills before the cancel arrives
    await paper.send(cancel)
    await settled(paper, h, 4)
    assert h.types(c) == ["PENDING_NEW", "NEW", "TRADE", "CXL_REJ(TOO_LATE_TO_CANCEL)"]
    assert c.ord_status == OrdStatus.FILLED and c.pending is None


async def test_latency_delays_requests_and_reports(errors: Errors) -> None:
    paper = Paper(request_latency=0.05, report_latency=0.05)
    loop = asyncio.get_running_loop()
    async with one_order(paper, errors) as (_, _, h):
        c = h.child("1", "99")
        t0 = loop.time()
        await paper.send(c.new())
        sent = loop.time() - t0
        await settled(paper, h, 2)
        got = loop.time() - t0
        await paper.stop()
    assert sent >= 0.045 and got >= 0.095


# -- in flight is not a verdict; reconciliation -------------------------------------


async def test_pitfall_timeout_leaves_the_child_in_flight_and_asks_the_venue(errors: Errors) -> None:
    """nautilus RFC #4152, Binance -1007: a timeout is "status unknown", never a reject."""
    paper = Paper(request_latency=0.2, request_timeout=0.02)
    async with one_order(paper, errors) as (_, _, h):
        c = h.child("1", "99")
        assert not await paper.send(c.new())  # status unknown
        assert c.ord_status == OrdStatus.PENDING_NEW and c.is_live
        assert paper.counters["unknown_status"] == 1
        # The request still arrives; the status query follows it on the same wire.
        await until(lambda: any(r.exec_type == ExecType.ORDER_STATUS for r in h.reports))
        await paper.drain()
        await until(lambda: c.ord_status == OrdStatus.NEW)
        assert not any(r.ord_status == OrdStatus.REJECTED for r in h.reports)
        await paper.stop()
    assert errors == []


async def test_pitfall_fills_missed_while_disconnected_come_back_once_on_reconnect(setup: Any) -> None:
    """nautilus PR #4991, hummingbot #8250: venues do not replay missed fills."""
    _, paper, h = setup
    paper.on_quote(q(ask="102"))
    c = h.child("1", "100")
    await paper.send(c.new())
    paper.on_quote(q(ask="100", ask_size="0.25"))
    await settled(paper, h, 3)
    paper.disconnect()
    paper.on_quote(q(ask="100", ask_size="0.25"))
    paper.on_quote(q(ask="100", ask_size="0.25"))
    await paper.drain()
    assert paper.lost == 2 and c.cum_qty == D("0.25")
    delivered = await paper.reconnect()
    await paper.drain()
    await until(lambda: c.cum_qty == D("0.75"))
    assert delivered >= 2
    assert paper.counters["duplicates"] >= 1  # the overlap with the last fill seen
    fills = [r for r in h.reports if r.exec_type == ExecType.TRADE]
    assert len({r.exec_id for r in fills}) == len(fills) == 3


async def test_pitfall_request_while_disconnected_is_status_unknown_then_reconciled(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(q())
    c = h.child("1", "99")
    paper.disconnect()
    assert not await paper.send(c.new())
    assert c.ord_status == OrdStatus.PENDING_NEW
    await paper.reconnect()  # the venue never got it: the status query says so
    await paper.drain()
    await until(lambda: c.is_done)
    assert c.ord_status == OrdStatus.CANCELED and "UNKNOWN_ORDER" in (c.text or "")


async def test_pitfall_retry_after_unknown_status_reconciles_and_keeps_one_order(errors: Errors) -> None:
    """ccxt #2599: reconcile before retrying; the ClOrdID is never re-chosen."""
    paper = Paper(request_latency=0.1, request_timeout=0.01)
    async with one_order(paper, errors) as (_, _, h):
        c = h.child("1", "99")
        req = c.new()
        assert not await paper.send(req)
        await until(lambda: not c.pending)  # the status query settled it
        assert len(paper.open_orders()) == 1 and c.cl_ord_ids == [req.cl_ord_id]
        await paper.stop()


# -- rate limits -------------------------------------------------------------------


async def test_pitfall_rate_limit_refuse_policy_refuses_before_sending(errors: Errors) -> None:
    """nautilus #1249/#1526: enforce before sending; never buffer without bound."""
    paper = Paper(rate_limits="2/second", rate_policy="refuse")
    async with one_order(paper, errors) as (_, _, h):
        a, b, c = h.child("1", "90"), h.child("1", "91"), h.child("1", "92")
        await paper.send(a.new())
        await paper.send(b.new())
        req = c.new()
        with pytest.raises(RateLimited, match="not sent"):
            await paper.send(req)
        c.withdraw(req)
        assert c.ord_status is None and len(paper.open_orders()) == 2 and paper.counters["requests"] == 2
        await paper.stop()


async def test_pitfall_rate_limit_wait_policy_waits_then_refuses_past_max_wait(errors: Errors) -> None:
    paper = Paper(rate_limits="1/second", rate_policy="wait", max_wait=0.01)
    async with one_order(paper, errors) as (_, _, h):
        await paper.send(h.child("1", "90").new())
        with pytest.raises(RateLimited, match="beyond max_wait"):
            await paper.send(h.child("1", "91").new())
        await paper.stop()


async def test_rate_limit_wait_policy_bounds_the_waiters(errors: Errors) -> None:
    paper = Paper(rate_limits="1/second", max_wait=5.0, max_waiting=1)
    async with one_order(paper, errors) as (_, _, h):
        await paper.send(h.child("1", "90").new())
        waiter = asyncio.ensure_future(paper.send(h.child("1", "91").new()))
        await until(lambda: paper._waiting == 1)
        with pytest.raises(RateLimited, match="already wait"):
            await paper.send(h.child("1", "92").new())
        assert await waiter  # the one waiting went out once the window allowed
        await paper.stop()


# -- bad input -----------------------------------------------------------------------


async def test_report_for_unknown_cl_ord_id_goes_to_on_error_not_applied(setup: Any, errors: Errors) -> None:
    _, paper, h = setup
    assert not await paper.deliver(OrdStatus.NEW, cl_ord_id="nobody", exec_type=ExecType.NEW)
    await errors.wait(1)
    assert "unknown cl_ord_id 'nobody'" in errors[0][1] and h.reports == []
    assert paper.counters["unroutable"] == 1


async def test_unknown_symbol_is_refused_before_sending(setup: Any) -> None:
    _, paper, h = setup
    c = ChildOrder(h.order.order_id, "DOGE-USD", "BUY", D("1"), price=D("1"))
    with pytest.raises(UnknownSymbol, match="unknown symbol 'DOGE-USD': venue paper lists BTC-USD, ETH-USD"):
        await paper.send(c.new())
    assert paper.counters["requests"] == 0


async def test_price_off_tick_and_quantity_off_lot_are_refused_before_sending(setup: Any) -> None:
    _, paper, h = setup
    with pytest.raises(InstrumentError, match=r"not a positive multiple of the tick size 0\.01"):
        await paper.send(h.child("1", "100.001").new())
    with pytest.raises(InstrumentError, match="not a multiple of the lot size"):
        await paper.send(h.child("0.00000000000001", "100").new())
    assert paper.counters["requests"] == 0 and paper.open_orders() == []


async def test_the_wrapped_delegate_is_a_venue_delegate() -> None:
    from exo.venues import Venue

    assert isinstance(Paper(), Venue)


async def test_a_finished_parent_releases_its_routes(errors: Errors) -> None:
    class OneShot(Holder):
        def action(self, update: exo.Update) -> bool:
            super().action(update)
            return bool(self.children) and self.children[0].ord_status == OrdStatus.FILLED

    paper = Paper()
    paper.on_quote(q(ask="100", ask_size="5"))
    async with one_order(paper, errors, OneShot) as (engine, oid, h):
        c = h.child("1", "100", time_in_force=TimeInForce.IOC)
        await paper.send(c.new())
        await paper.drain()
        await asyncio.wait_for(engine.wait_done(oid), 5)
        assert paper.route(c.cl_ord_id) is None
        assert not await paper.deliver(OrdStatus.FILLED, cl_ord_id=c.cl_ord_id, exec_id="late")
        await paper.stop()
    assert "unknown cl_ord_id" in errors[-1][1]


async def test_a_long_lived_parent_keeps_routes_only_for_the_children_it_still_holds(errors: Errors) -> None:
    paper = Paper()
    paper.on_quote(q(ask="100", ask_size="50"))
    async with one_order(paper, errors) as (_, oid, h):
        sent = []
        for _ in range(4):
            c = h.child("1", "100", time_in_force=TimeInForce.IOC)
            await paper.send(c.new())
            sent.append(c)
        await paper.drain()
        await until(lambda: all(c.ord_status == OrdStatus.FILLED for c in sent))
        assert len(paper._by_order[oid]) == 4
        h.children[:] = sent[-1:]  # the delegate prunes closed children, as the example does
        last = h.child("1", "100", time_in_force=TimeInForce.IOC)
        await paper.send(last.new())
        await paper.drain()
        await until(lambda: last.ord_status == OrdStatus.FILLED)
        await until(lambda: paper.route(sent[0].cl_ord_id) is None)  # after the next action
        assert [paper.route(c.cl_ord_id) for c in sent] == [None, None, None, oid]
        assert paper.route(last.cl_ord_id) == oid and len(paper._by_order[oid]) == 2
        assert len(paper._routes) == 2
        await paper.stop()
    assert errors == []


async def test_a_quote_seen_by_several_orders_shows_its_size_once(errors: Errors) -> None:
    Holder.instances.clear()
    paper = Paper()
    async with exo.Engine(paper.delegates(Holder), on_error=errors) as engine:
        paper.attach(engine)
        for _ in range(2):
            await engine.submit(exo.Order("BUY", "BTC-USD"))
        await until(lambda: len(Holder.instances) == 2)
        a, b = Holder.instances
        paper.on_quote(q(ask="102"))
        ca, cb = a.child("1", "100"), b.child("1", "100")
        await paper.send(ca.new())
        await paper.send(cb.new())
        await paper.drain()
        await until(lambda: ca.ord_status == cb.ord_status == OrdStatus.NEW)
        engine.quote(q(ask="100", ask_size="1"))  # reaches both orders' Updates
        await until(lambda: ca.cum_qty + cb.cum_qty == 1)
        engine.quote(q(bid="99", ask="100", ask_size="1"))  # new values: shown afresh
        await until(lambda: ca.cum_qty + cb.cum_qty == 2)
        await paper.drain()
        assert (ca.cum_qty, cb.cum_qty) == (D("1"), D("1"))
        await paper.stop()


async def test_an_empty_far_side_is_no_liquidity(setup: Any) -> None:
    _, paper, h = setup
    paper.on_quote(exo.Quote("BTC-USD", "100", "1", None, None))
    ioc = h.child("1", "101", time_in_force=TimeInForce.IOC)
    await paper.send(ioc.new())
    market = h.child("1", None, ord_type=OrdType.MARKET, time_in_force=TimeInForce.IOC)
    await paper.send(market.new())
    await settled(paper, h, 5)
    assert ioc.ord_status == OrdStatus.CANCELED and ioc.cum_qty == 0
    assert market.ord_status == OrdStatus.REJECTED and "NO_LIQUIDITY" in (market.text or "")


async def test_drain_waits_for_the_reports_emitted_so_far_not_for_a_quiet_moment(errors: Errors) -> None:
    """Under a busy market the report queue is never empty: a drain (e.g. a
    claimed order's reconciliation waiting for the venue's answers) must
    return once the reports emitted before it reached the engine."""
    paper = Paper(report_latency=0.002)
    async with one_order(paper, errors, start=True) as (_, _, h):
        paper.on_quote(q(ask="102"))
        sending = True

        async def busy() -> None:  # a resting child every millisecond: an ack each
            while sending:
                await paper.send(h.child("0.01", "99").new())
                await asyncio.sleep(0.001)

        producer = asyncio.create_task(busy())
        await until(lambda: len(h.reports) >= 5)
        before = len(h.children)
        try:
            await asyncio.wait_for(paper.drain(), 5)  # a guard: it never empties
            acked = {r.cl_ord_id for r in h.reports}
            assert all(c.cl_ord_id in acked for c in h.children[: before - 1])
            assert not producer.done()
        finally:
            sending = False
            await producer
        await paper.stop()
    assert errors == []


async def test_reconcile_keeps_its_status_queries_in_flight_together(errors: Errors) -> None:
    """A claim of many orders asks about each live child: on the paper wire
    (FIFO, answers in order) the queries travel together, so the claim waits
    about one round trip, not one per child."""
    paper = Paper(request_latency=0.3)
    async with one_order(paper, errors, start=True) as (_, _, h):
        paper.on_quote(q(ask="102"))
        children = [h.child("0.01", "99") for _ in range(8)]
        sends = [asyncio.create_task(paper.send(c.new())) for c in children]
        await until(lambda: paper._on_wire == 8)  # the NEWs are on the wire, not yet at the venue
        paper.adopt(h, h.order.order_id)  # as a claim restores the delegate: 8 live children
        reconciling = asyncio.create_task(paper.reconcile())
        await until(lambda: paper._on_wire == 16)  # every child's query went out at once
        assert await reconciling == 8
        await asyncio.gather(*sends)
        await paper.stop()
    assert errors == []
