"""A child's request (its ClOrdID) is journaled before it leaves for the venue
(VENUES.md: "chosen once, journaled before the request is sent"), and a
restart puts a child its saved state misses back in flight and asks the venue
about it. The kill -9 version with the real venue adapters is in
test_venue_crash.py; here the venue layer itself, in process.

``Wire`` is a venue whose wire is a dict standing for the venue's own book: it
outlives the exo "process" (engine and venue object) a test restarts."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from decimal import Decimal as D
from typing import Any

import pytest

import exo
from exo import ChildOrder, OrdStatus
from exo.child import NewOrderSingle, Request
from exo.store import REQUEST, Entry, StoreUnavailable
from exo.venues import DEFAULT_INSTRUMENTS, NotJournaled, Paper, VenueBase
from tests.helpers import Errors, until
from tests.test_paper import Holder


class Wire(VenueBase):
    """Takes each request into ``book`` (cl_ord_id -> request); answers a
    status query with NEW and, if ``fills`` has some for it, one TRADE each."""

    def __init__(self, book: dict[str, Request], store: exo.Store | None = None, **options: Any) -> None:
        super().__init__("wire", DEFAULT_INSTRUMENTS, **options)
        self.book, self.store = book, store
        self.journaled_at_transmit: list[bool] = []
        self.queried: list[str] = []
        self.fills: dict[str, list[tuple[str, D, D]]] = {}

    async def _transmit(self, request: Request) -> None:
        if self.store is not None:
            (stored,) = await self.store.load([request.order_id])
            self.journaled_at_transmit.append(
                any(e.kind == REQUEST and e.item.cl_ord_id == request.cl_ord_id for e in stored.entries)
            )
        self.book[request.cl_ord_id] = request

    async def _query_status(self, cl_ord_id: str, order_id: str) -> int:
        self.queried.append(cl_ord_id)
        req = self.book.get(cl_ord_id)
        if not isinstance(req, NewOrderSingle):
            return 0
        common = {"cl_ord_id": cl_ord_id, "order_qty": req.order_qty, "symbol": req.symbol, "side": "BUY"}
        n = int(await self.deliver("NEW", exec_type="NEW", exec_id=f"{cl_ord_id}-new", **common))
        cum = D(0)
        for exec_id, qty, px in self.fills.get(cl_ord_id, []):
            cum += qty
            status = "FILLED" if cum == req.order_qty else "PARTIALLY_FILLED"
            n += await self.deliver(
                status, last_qty=qty, last_px=px, exec_type="TRADE", exec_id=exec_id, cum_qty=cum, **common
            )
        return n

    async def _open_orders_and_fills(self) -> list[tuple[Any, dict[str, Any]]]:
        return []


class FailingStore(exo.MemoryStore):
    """A MemoryStore that cannot take request entries once ``down``."""

    down = False

    async def append(self, entries: Sequence[Entry]) -> list[bool]:
        if self.down and any(e.kind == REQUEST for e in entries):
            raise StoreUnavailable("store down (test)")
        return await super().append(entries)


def _child(h: Holder, qty: str = "1") -> ChildOrder:
    c = ChildOrder(h.order.order_id or "", "BTC-USD", "BUY", D(qty), price=D("100"))
    h.children.append(c)
    return c


def _engine(venue: VenueBase, store: exo.Store | None = None, errors: Errors | None = None) -> exo.Engine:
    """An engine whose orders' delegates (Holder) send to ``venue``, attached to it."""
    engine = exo.Engine(venue.delegates(Holder), store=store, on_error=errors, idle_interval=3600)
    venue.attach(engine)
    return engine


async def _order(engine: exo.Engine, symbol: str = "BTC-USD") -> tuple[str, Holder]:
    """Submits a BUY order of ``symbol``: its order_id and, once it acted, its delegate."""
    oid = await engine.submit(exo.Order("BUY", symbol)) or ""
    await until(lambda: bool(Holder.instances))
    return oid, Holder.instances[0]


@pytest.fixture(autouse=True)
def _clear() -> Any:
    Holder.instances.clear()
    yield
    Holder.instances.clear()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_request_is_journaled_before_it_is_transmitted(kind: str, request: Any, errors: Errors) -> None:
    store = exo.MemoryStore() if kind == "memory" else exo.RedisStore(request.getfixturevalue("redis_url"))
    wire = Wire({}, store)
    engine = _engine(wire, store, errors)
    async with engine:
        oid, h = await _order(engine)
        c = _child(h)
        assert await wire.send(c.new()) is True
        c.apply(exo.Report(oid, "NEW", exec_type="NEW", cl_ord_id=c.cl_ord_id, exec_id="n1"))
        assert await wire.send(c.cancel()) is True
    assert wire.journaled_at_transmit == [True, True]
    assert errors == []


async def test_send_is_refused_when_the_store_cannot_journal_it(errors: Errors) -> None:
    store = FailingStore()
    wire = Wire({}, store)
    engine = _engine(wire, store, errors)
    async with engine:
        _, h = await _order(engine)
        c = _child(h)
        req = c.new()
        store.down = True
        with pytest.raises(NotJournaled, match=f"{req.cl_ord_id} not sent.*store down"):
            await wire.send(req)
        assert wire.book == {} and wire.route(req.cl_ord_id) is None
        c.withdraw(req)  # it never left: the child can be sent again
        store.down = False
        assert await wire.send(c.new()) is True
    assert list(wire.book) == [c.cl_ord_id] and wire.journaled_at_transmit == [True]


async def test_without_a_store_requests_are_sent_unjournaled() -> None:
    wire = Wire({})
    engine = _engine(wire)
    async with engine:
        _, h = await _order(engine)
        c = _child(h)
        req = c.new()
        assert await engine.journal_request(req) is False  # nothing kept without a store
        assert await wire.send(req) is True
    assert list(wire.book) == [req.cl_ord_id]


async def test_paper_venue_does_not_journal_its_requests() -> None:
    store = exo.MemoryStore()
    paper = Paper()
    engine = _engine(paper, store)
    async with engine:
        oid, h = await _order(engine)
        await paper.send(_child(h).new())
        (stored,) = await store.load([oid or ""])
        await paper.stop()
    assert [e for e in stored.entries if e.kind == REQUEST] == []


async def _sent_then_restarted(
    store: exo.Store, book: dict[str, Request], errors: Errors
) -> tuple[str, str, ChildOrder]:
    """exo sends one child, then its process ends before any report or
    checkpoint holds the child; returns (order_id, cl_ord_id, the child the
    restarted delegate holds), with the second engine running."""
    wire = Wire(book)
    engine = _engine(wire, store, errors)
    async with engine:
        oid, h = await _order(engine)
        c = _child(h, "3")
        await wire.send(c.new())  # outside an action: no checkpoint after it
    Holder.instances.clear()
    return oid, c.cl_ord_id or "", c


async def test_restart_puts_a_journaled_child_back_in_flight_and_reconciles_it(errors: Errors) -> None:
    store, book = exo.MemoryStore(), {}
    oid, cl, _ = await _sent_then_restarted(store, book, errors)
    wire = Wire(book)  # a fresh exo process: no routes
    wire.fills[cl] = [("t1", D(1), D("99")), ("t2", D(2), D("100"))]
    engine = _engine(wire, store, errors)
    async with engine:
        [h] = Holder.instances
        [c] = h.children
        assert (c.cl_ord_id, c.ord_status, c.order_qty) == (cl, OrdStatus.PENDING_NEW, D(3))
        assert wire.route(cl) == oid
        await wire.start()  # reconcile: the venue is asked about the child
        assert wire.queried == [cl]
        await until(lambda: c.ord_status == OrdStatus.FILLED)
        assert [r.exec_id for r in h.reports] == [f"{cl}-new", "t1", "t2"]
        await wire.start()  # a second reconcile (reconnect) delivers nothing twice
        assert c.cum_qty == 3 and c.avg_px == D("299") / 3
        await wire.stop()
    assert list(book) == [cl] and errors == []


async def test_restart_without_a_venue_wrapper_reports_the_journaled_requests(errors: Errors) -> None:
    store = exo.MemoryStore()
    oid, cl, _ = await _sent_then_restarted(store, {}, errors)

    def plain(order: exo.Order, state: Any = None) -> Holder:
        return Holder(order, None, state)  # type: ignore[arg-type]

    async with exo.Engine(plain, store=store, on_error=errors, idle_interval=3600):
        await errors.wait()
    [(order_id, message)] = errors
    assert order_id == oid and cl in message and "venue.delegates" in message


def test_resume_puts_a_journaled_cancel_back_as_pending() -> None:
    wire = Wire({})
    c = ChildOrder("o1", "BTC-USD", "BUY", D(1), price=D("100"))
    new = c.new()
    c.apply(exo.Report("o1", "NEW", exec_type="NEW", cl_ord_id=new.cl_ord_id, exec_id="n1"))
    saved = copy.deepcopy(c)  # the checkpoint: NEW, nothing in flight
    cancel = c.cancel()  # sent after it; then the process died
    h = Holder(exo.Order("BUY", "BTC-USD"), None, {"children": [saved]})  # type: ignore[arg-type]
    assert wire.resume(h, "o1", [new, cancel]) == [saved]
    assert saved.ord_status == OrdStatus.PENDING_CANCEL and saved.pending == cancel
    assert wire.route(cancel.cl_ord_id) == "o1" and wire.route(new.cl_ord_id) == "o1"
    assert h.children == [saved]  # nothing added: the saved state had the child


def test_resume_of_a_cancel_for_no_held_child_is_reported(errors: Errors) -> None:
    wire = Wire({}, on_error=errors)
    c = ChildOrder("o1", "BTC-USD", "BUY", D(1), price=D("100"))
    new = c.new()
    c.apply(exo.Report("o1", "NEW", exec_type="NEW", cl_ord_id=new.cl_ord_id, exec_id="n1"))
    cancel = c.cancel()
    h = Holder(exo.Order("BUY", "BTC-USD"), None)  # type: ignore[arg-type]
    assert wire.resume(h, "o1", [cancel]) == []
    [(order_id, message)] = errors
    assert order_id == "o1" and cancel.cl_ord_id in message and "no child of the order holds" in message


async def test_a_journaled_request_that_never_left_is_rejected_after_the_restart(errors: Errors) -> None:
    """The process died between the journal write and the send: the venue
    never had the order. After the restart the child is put back and the
    venue asked; it answers that the order does not exist, so the child is
    REJECTED (never reached the venue) and the delegate may send again."""
    from exo.venues import Binance, Credentials
    from tests.venue_servers.binance import BinanceServer

    creds = Credentials("k", secret="s" * 16)
    server = BinanceServer("k", secret="s" * 16, market={"BTCUSDT": (D(1), D(99999))})
    await server.start()
    store = exo.MemoryStore()
    try:
        venue = Binance(creds, url=server.url, reconnect_delay=0.05)
        engine = _engine(venue, store, errors)
        async with engine:
            await venue.start()
            oid, h = await _order(engine, "BTCUSDT")
            c = ChildOrder(oid, "BTCUSDT", "BUY", D(1), price=D(100))
            h.children.append(c)
            assert await engine.journal_request(c.new()) is True  # ... and then the process died
            await venue.stop()
        Holder.instances.clear()

        venue = Binance(creds, url=server.url, reconnect_delay=0.05)
        engine = _engine(venue, store, errors)
        async with engine:
            [h] = Holder.instances
            [c2] = h.children
            assert c2.cl_ord_id == c.cl_ord_id and c2.ord_status == OrdStatus.PENDING_NEW
            await venue.start()  # reconcile: order.status answers -2013
            await until(lambda: c2.ord_status == OrdStatus.REJECTED)
            assert c2.text == "-2013: the order never reached the venue"
            await venue.stop()
    finally:
        await server.stop()
    assert not server.orders and errors == []
