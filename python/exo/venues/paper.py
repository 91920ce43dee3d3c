"""The paper venue: in process, matching child orders against the engine's own
market data.

Matching is against the newest quote seen for the symbol (``on_quote``, or the
quote of each Update shown to it by the delegates it wraps):

- a LIMIT order rests and fills when the opposite side reaches its price, at
  the order's own price, at most the size shown, FIFO among orders at the
  same price (better prices first); each new quote shows its size afresh;
- an order that crosses on arrival takes the far side at the far price, at
  most the size shown; the rest rests (GTC) or is canceled (IOC, MARKET); a
  FOK that cannot fill whole is canceled; a post-only that would cross is
  rejected;
- a side of the book that is missing (None) or empty is no liquidity;
- replace and cancel act as a real venue's: a request for an order already
  filled is rejected as too late (OrderCancelReject, text
  ``TOO_LATE_TO_CANCEL``), a fill that got there first stays.

Latency: ``request_latency`` seconds pass before the venue has a request
(``send`` returns then), ``report_latency`` seconds before each report reaches
the engine; reports keep their order. Reports: PENDING_NEW, NEW, TRADE
(PARTIALLY_FILLED / FILLED), PENDING_CANCEL, CANCELED, PENDING_REPLACE,
REPLACED, REJECTED with a reason in ``text``, and OrderCancelReject.

The book lives in memory: after a restart it is empty, and a status query for
an order it does not know answers CANCELED ("unknown order"), as a venue whose
book was cleared would.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exo._core import ExecType, OrdStatus, Quote, Side, Update
from exo.child import (
    NewOrderSingle,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrdType,
    Request,
    TimeInForce,
)
from exo.instrument import Instrument
from exo.store import StoreUnavailable
from exo.venues.base import VenueBase, log

__all__ = ["DEFAULT_INSTRUMENTS", "Paper"]

DEFAULT_INSTRUMENTS = (
    # The bundled replay's symbols with Coinbase Exchange's tick (GET /products:
    # quote_increment 0.01). The lot is exo's finest decimal step (13 places,
    # ``exo.parse_decimal``), not Coinbase's base_increment (1e-8), so that any
    # quantity the example's API takes can fill exactly on paper; no minimum
    # notional, so a last remainder can always trade. Real rules: pass
    # ``instruments=exo.instrument.load_instruments(path)``.
    Instrument("BTC-USD", Decimal("0.01"), Decimal("0.0000000000001")),
    Instrument("ETH-USD", Decimal("0.01"), Decimal("0.0000000000001")),
)

_RETRY_MIN, _RETRY_MAX = 0.05, 2.0
"""Seconds between attempts to hand over a report the store could not journal."""
_CLOSED_KEPT = 1_000
"""Closed orders remembered (for too-late-to-cancel answers and status queries)."""
_TRADES_KEPT = 1_000
"""Fills remembered for reconciliation ("fills since the last one seen")."""
_BATCH_MAX = 64
"""Reports handed over at once: a store journals them in one write, and a
backlog (the engine slower than the venue) costs a task per report only for
this many, not for the whole outbox."""


@dataclass
class _Resting:
    """One order in the paper book."""

    order_id: str
    cl_ord_id: str
    symbol: str
    side: Side
    order_qty: Decimal
    price: Decimal | None
    ord_type: OrdType
    time_in_force: TimeInForce
    venue_order_id: str
    seq: int
    cum_qty: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    old_ids: list[str] = field(default_factory=list)  # ClOrdIDs it had before a replace

    @property
    def leaves(self) -> Decimal:
        return self.order_qty - self.cum_qty


@dataclass
class _Book:
    """Newest quote of one symbol and what of its shown size is left."""

    quote: Quote | None = None
    seen_by: set[str] = field(default_factory=set)  # order_ids whose Updates carried this quote
    bid_left: Decimal = Decimal(0)
    ask_left: Decimal = Decimal(0)


def _side_of(quote: Quote | None, side: Side) -> tuple[Decimal | None, Decimal]:
    """(price, size) on the far side for an order of ``side``; None: no liquidity."""
    if quote is None:
        return None, Decimal(0)
    px = getattr(quote, "ask_px" if side == Side.BUY else "bid_px", None)
    size = getattr(quote, "ask_size" if side == Side.BUY else "bid_size", None)
    if px is None or size is None or size <= 0:
        return None, Decimal(0)
    return px, size


def _crosses(side: Side, limit: Decimal | None, far: Decimal | None) -> bool:
    if far is None:
        return False
    if limit is None:
        return True
    return far <= limit if side == Side.BUY else far >= limit


class Paper(VenueBase):
    """An in-process venue that fills child orders against the feed (module doc).

    ``Paper()`` knows BTC-USD and ETH-USD (``DEFAULT_INSTRUMENTS``); pass
    ``instruments=`` for others. Rate limits, timeouts and on_error as
    ``VenueBase``.

    Its requests are not journaled before they are sent (``journals_requests``
    False): its orders live in this process and die with it, so after a crash
    there is nothing at the venue to reconcile, and a store write per child
    would only slow the example down.
    """

    journals_requests = False
    status_queries_at_once = 64  # an in-process FIFO wire: answers keep their order

    def __init__(
        self,
        instruments: Iterable[Instrument] = DEFAULT_INSTRUMENTS,
        *,
        name: str = "paper",
        request_latency: float = 0.0,
        report_latency: float = 0.0,
        **options: Any,
    ) -> None:
        super().__init__(name, instruments, **options)
        self.request_latency, self.report_latency = request_latency, report_latency
        self._books: dict[str, _Book] = {}
        self._orders: dict[str, _Resting] = {}  # every id it was known by -> the order
        self._closed: OrderedDict[str, _Resting] = OrderedDict()  # the newest _CLOSED_KEPT
        self._resting: dict[str, list[_Resting]] = {}  # symbol -> live orders
        self._seq = itertools.count(1)
        self._exec_ids = itertools.count(1)
        self._prefix = f"{name}-{time.time_ns():x}"
        self._outbox: asyncio.Queue[tuple[float, Any, dict[str, Any], int | None]] | None = None
        self._sender: asyncio.Task[None] | None = None
        # Reports are delivered in the order queued: a drain waits for the
        # count delivered to reach the count queued when it was called.
        self._queued = 0
        self._delivered = 0
        self._drains: list[tuple[int, asyncio.Future[None]]] = []
        self._inbox: asyncio.Queue[tuple[float, Callable[[], Any], asyncio.Future[Any]]] | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._on_wire = 0  # requests sent, not yet arrived
        self._trades: deque[tuple[OrdStatus, dict[str, Any]]] = deque(maxlen=_TRADES_KEPT)
        self._trades_total = 0  # trades ever emitted; _trades holds the newest
        self._trades_seen = 0  # trades delivered while connected: "the last fill seen"
        self.connected = True
        self.lost = 0  # reports dropped while disconnected

    # -- market data --------------------------------------------------------------

    def on_update(self, update: Update) -> None:
        """Takes the quote of an Update a delegate is about to see. Each
        Update carries the newest quote at its hand-over, so successive calls
        never go back in time; but one quote reaches every order of its
        symbol and must show its size once. So a quote shows its size afresh
        when its values differ from the held one, or when an order that has
        already seen the held quote sees another (a newer quote with the same
        values); an order seeing the held quote for the first time changes
        nothing."""
        quote = update.quote
        if quote is None:
            return
        book = self._books.get(quote.symbol)
        if book is None or book.quote is None or quote != book.quote or update.order_id in book.seen_by:
            self._refresh(quote)
        self._books[quote.symbol].seen_by.add(update.order_id)

    def on_quote(self, quote: Quote) -> None:
        """A new quote for its symbol: it becomes the newest, shows its size
        afresh and resting orders match against it (the very object already
        held changes nothing)."""
        book = self._books.get(quote.symbol)
        if book is not None and book.quote is quote:
            return
        self._refresh(quote)

    def _refresh(self, quote: Quote) -> None:
        book = self._books.setdefault(quote.symbol, _Book())
        book.quote = quote
        book.seen_by = set()
        bid_size, ask_size = getattr(quote, "bid_size", None), getattr(quote, "ask_size", None)
        book.bid_left = bid_size if bid_size is not None else Decimal(0)
        book.ask_left = ask_size if ask_size is not None else Decimal(0)
        self._match_resting(quote.symbol)

    def _take(self, book: _Book, side: Side, want: Decimal) -> tuple[Decimal | None, Decimal]:
        """Takes up to ``want`` from the far side of ``book``: (price, qty)."""
        px, _ = _side_of(book.quote, side)
        left = book.ask_left if side == Side.BUY else book.bid_left
        qty = min(want, left) if px is not None else Decimal(0)
        if qty > 0:
            if side == Side.BUY:
                book.ask_left -= qty
            else:
                book.bid_left -= qty
        return px, qty

    def _match_resting(self, symbol: str) -> None:
        book = self._books[symbol]
        resting = self._resting.get(symbol)
        if not resting:
            return

        # Price priority (better first), then time (FIFO per price).
        def key(o: _Resting) -> tuple[Decimal, int]:
            assert o.price is not None
            return (-o.price if o.side == Side.BUY else o.price, o.seq)

        for o in sorted(resting, key=key):
            far, _ = _side_of(book.quote, o.side)
            if not _crosses(o.side, o.price, far):
                continue
            _, qty = self._take(book, o.side, o.leaves)
            if qty > 0:
                assert o.price is not None
                self._fill(o, qty, o.price)  # a resting order trades at its own price

    # -- requests -----------------------------------------------------------------

    def _transmit_now(self, request: Request) -> bool:
        if self.request_latency or not self.connected or self._stopped or self._on_wire:
            return False
        self._ensure_sender()
        self._handle(request)  # no latency, nothing ahead of it: the venue has it now
        return True

    async def _transmit(self, request: Request) -> None:
        await self._arrive(lambda: self._handle(request))

    def _handle(self, request: Request) -> None:
        if isinstance(request, NewOrderSingle):
            self._on_new(request)
        elif isinstance(request, OrderCancelReplaceRequest):
            self._on_replace(request)
        else:
            self._on_cancel(request)

    async def _arrive(self, handle: Callable[[], Any]) -> Any:
        """Requests travel one wire: each reaches the venue ``request_latency``
        after it was sent, in the order sent, and is handled there even if the
        sender stopped waiting (a timeout does not recall a request)."""
        if not self.connected or self._stopped:
            raise ConnectionError(f"venue {self.name}: {'stopped' if self._stopped else 'disconnected'}")
        self._ensure_sender()
        assert self._inbox is not None
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait((time.monotonic() + self.request_latency, handle, fut))
        self._on_wire += 1
        return await fut

    async def _receive(self) -> None:
        assert self._inbox is not None
        while True:
            due, handle, fut = await self._inbox.get()
            delay = due - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.sleep(delay)
                except asyncio.CancelledError:
                    if not fut.done():
                        fut.set_exception(ConnectionError(f"venue {self.name} stopped"))
                    raise
            self._on_wire -= 1
            try:
                result = handle()
            except Exception as exc:  # a bug in matching: the sender hears of it
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(result)

    def disconnect(self) -> None:
        """Simulates a lost connection: requests fail (status unknown) and the
        reports the venue emits meanwhile are lost, as over a dropped websocket."""
        self.connected = False

    async def reconnect(self) -> int:
        """Back online: reconciles (fills since the last seen, open orders, the
        status of every child exo holds live). Returns reports delivered."""
        self.connected = True
        return await self.reconcile()

    def _on_new(self, r: NewOrderSingle) -> None:
        o = _Resting(
            r.order_id,
            r.cl_ord_id,
            r.symbol,
            r.side,
            r.order_qty,
            r.price,
            r.ord_type,
            r.time_in_force,
            f"{self._prefix}-{next(self._seq)}",
            next(self._seq),
        )
        self._emit(o, OrdStatus.PENDING_NEW, ExecType.PENDING_NEW)
        if r.cl_ord_id in self._orders or r.cl_ord_id in self._closed:
            self._emit(o, OrdStatus.REJECTED, ExecType.REJECTED, text="DUPLICATE_CL_ORD_ID")
            return
        book = self._books.setdefault(r.symbol, _Book())
        far, far_size = _side_of(book.quote, r.side)
        crosses = _crosses(r.side, r.price, far)
        if r.ord_type is OrdType.MARKET and far is None:
            self._close(o)
            self._emit(
                o, OrdStatus.REJECTED, ExecType.REJECTED, text="NO_LIQUIDITY: no far side to trade against"
            )
            return
        if r.time_in_force is TimeInForce.POST_ONLY and crosses:
            self._close(o)
            self._emit(
                o, OrdStatus.REJECTED, ExecType.REJECTED, text=f"POST_ONLY_WOULD_CROSS: far side at {far}"
            )
            return
        self._orders[o.cl_ord_id] = o
        self._emit(o, OrdStatus.NEW, ExecType.NEW)
        if r.time_in_force is TimeInForce.FOK:
            left = book.ask_left if r.side == Side.BUY else book.bid_left
            if not crosses or min(left, far_size) < r.order_qty:
                self._close(o)
                self._emit(o, OrdStatus.CANCELED, ExecType.CANCELED, text="FOK_NOT_FILLED: not enough shown")
                return
        if crosses:
            px, qty = self._take(book, r.side, o.leaves)
            if qty > 0 and px is not None:
                self._fill(o, qty, px)  # an arriving order takes the far price
        if o.leaves > 0:
            if r.time_in_force in (TimeInForce.IOC, TimeInForce.FOK) or r.ord_type is OrdType.MARKET:
                self._close(o)
                self._emit(o, OrdStatus.CANCELED, ExecType.CANCELED, text="IOC_REMAINDER_CANCELED")
            else:
                self._resting.setdefault(o.symbol, []).append(o)

    def _find(self, orig: str) -> _Resting | None:
        return self._orders.get(orig) or self._closed.get(orig)

    def _cancel_reject(
        self, r: OrderCancelRequest | OrderCancelReplaceRequest, o: _Resting | None, text: str
    ) -> None:
        fields: dict[str, Any] = {
            "cl_ord_id": r.cl_ord_id,
            "orig_cl_ord_id": r.orig_cl_ord_id,
            "cxl_rej_response_to": r.msg_type,
            "text": text,
            "symbol": r.symbol,
            "side": r.side,
        }
        status = OrdStatus.REJECTED
        if o is not None:
            status = self._status(o)
            fields.update(secondary_order_id=o.venue_order_id, cum_qty=o.cum_qty, leaves_qty=self._leaves(o))
        self._queue(r.order_id, status, fields)

    def _amendable(self, r: OrderCancelRequest | OrderCancelReplaceRequest) -> _Resting | None:
        """The resting order ``r`` amends (by orig_cl_ord_id); None after
        rejecting ``r``: TOO_LATE_TO_CANCEL for a closed order, UNKNOWN_ORDER
        for one this venue never had."""
        o = self._find(r.orig_cl_ord_id)
        if o is None or o.cl_ord_id in self._closed or o not in self._resting.get(o.symbol, ()):
            self._cancel_reject(r, o, "TOO_LATE_TO_CANCEL" if o is not None else "UNKNOWN_ORDER")
            return None
        return o

    def _acknowledge(
        self, o: _Resting, r: OrderCancelRequest | OrderCancelReplaceRequest, status: OrdStatus, x: ExecType
    ) -> None:
        """The PENDING_CANCEL / PENDING_REPLACE report of amendment ``r`` to ``o``."""
        self._emit(o, status, x, cl_ord_id=r.cl_ord_id, orig_cl_ord_id=o.cl_ord_id)

    def _on_cancel(self, r: OrderCancelRequest) -> None:
        o = self._amendable(r)
        if o is None:
            return
        self._acknowledge(o, r, OrdStatus.PENDING_CANCEL, ExecType.PENDING_CANCEL)
        self._close(o)
        self._emit(
            o, OrdStatus.CANCELED, ExecType.CANCELED, cl_ord_id=r.cl_ord_id, orig_cl_ord_id=o.cl_ord_id
        )

    def _on_replace(self, r: OrderCancelReplaceRequest) -> None:
        o = self._amendable(r)
        if o is None:
            return
        if r.order_qty <= o.cum_qty:
            self._cancel_reject(r, o, f"ORDER_QTY_BELOW_CUM_QTY: {r.order_qty} <= {o.cum_qty}")
            return
        book = self._books.setdefault(o.symbol, _Book())
        far, _ = _side_of(book.quote, o.side)
        if o.time_in_force is TimeInForce.POST_ONLY and _crosses(o.side, r.price, far):
            self._cancel_reject(r, o, f"POST_ONLY_WOULD_CROSS: far side at {far}")
            return
        self._acknowledge(o, r, OrdStatus.PENDING_REPLACE, ExecType.PENDING_REPLACE)
        # Time priority is lost when the price changes or the quantity grows.
        if r.price != o.price or r.order_qty > o.order_qty:
            o.seq = next(self._seq)
        old = o.cl_ord_id
        o.old_ids.append(old)
        o.cl_ord_id, o.order_qty, o.price = r.cl_ord_id, r.order_qty, r.price
        self._orders[o.cl_ord_id] = o
        self._emit(o, self._status(o), ExecType.REPLACED, orig_cl_ord_id=old)
        if _crosses(o.side, o.price, far):
            px, qty = self._take(book, o.side, o.leaves)
            if qty > 0 and px is not None:
                self._fill(o, qty, px)

    # -- state and reports ----------------------------------------------------

    def _status(self, o: _Resting) -> OrdStatus:
        if o.cum_qty >= o.order_qty:
            return OrdStatus.FILLED
        if o.cl_ord_id in self._closed:
            return OrdStatus.CANCELED
        return OrdStatus.PARTIALLY_FILLED if o.cum_qty else OrdStatus.NEW

    def _leaves(self, o: _Resting) -> Decimal:
        return Decimal(0) if o.cl_ord_id in self._closed else o.leaves

    def _close(self, o: _Resting) -> None:
        # Every id it was known by leaves the live map (a replaced order's old
        # ones too, or they would stay forever) and is remembered while closed.
        for cl_ord_id in (*o.old_ids, o.cl_ord_id):
            self._orders.pop(cl_ord_id, None)
            self._closed[cl_ord_id] = o
        while len(self._closed) > _CLOSED_KEPT:
            self._closed.popitem(last=False)
        resting = self._resting.get(o.symbol)
        if resting is not None and o in resting:
            resting.remove(o)

    def _fill(self, o: _Resting, qty: Decimal, px: Decimal) -> None:
        o.cum_qty += qty
        o.notional += qty * px
        if o.leaves == 0:
            self._close(o)
        self._emit(o, self._status(o), ExecType.TRADE, last_qty=qty, last_px=px)

    def _emit(self, o: _Resting, status: OrdStatus, exec_type: ExecType, **fields: Any) -> None:
        report: dict[str, Any] = {
            "cl_ord_id": o.cl_ord_id,
            "exec_id": f"{self._prefix}-e{next(self._exec_ids)}",
            "exec_type": exec_type,
            "secondary_order_id": o.venue_order_id,
            "symbol": o.symbol,
            "side": o.side,
            "order_qty": o.order_qty,
            "price": o.price,
            "cum_qty": o.cum_qty,
            "leaves_qty": Decimal(0) if status in (OrdStatus.CANCELED, OrdStatus.REJECTED) else o.leaves,
            "avg_px": (o.notional / o.cum_qty) if o.cum_qty else None,
        }
        report.update(fields)
        trade = None
        if exec_type is ExecType.TRADE:
            trade = self._trades_total
            self._trades_total += 1
            self._trades.append((status, report))
        self._queue(o.order_id, status, report, trade)

    def _queue(
        self, order_id: str, status: OrdStatus, fields: dict[str, Any], trade: int | None = None
    ) -> None:
        if self._stopped:
            return  # a stopped venue sends nothing
        self._ensure_sender()
        assert self._outbox is not None
        self._outbox.put_nowait((time.monotonic() + self.report_latency, status, fields, trade))
        self._queued += 1

    def _ensure_sender(self) -> None:
        if self._sender is None or self._sender.done():
            self._outbox = self._outbox or asyncio.Queue()
            self._sender = asyncio.ensure_future(self._send_reports())
        if self._receiver is None or self._receiver.done():
            self._inbox = self._inbox or asyncio.Queue()
            self._receiver = asyncio.ensure_future(self._receive())

    async def _send_reports(self) -> None:
        """Delivers the reports that are due, a batch at a time, in order: each
        ``deliver`` numbers its report in the journal before its first await,
        and gather starts them in order, so a store writes a batch at once."""
        outbox = self._outbox
        assert outbox is not None
        held: tuple[float, Any, dict[str, Any], int | None] | None = None
        while True:
            first = held if held is not None else await outbox.get()
            held = None
            delay = first[0] - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            batch = [first]
            now = time.monotonic()
            while not outbox.empty() and len(batch) < _BATCH_MAX:
                item = outbox.get_nowait()
                if item[0] > now:
                    held = item
                    break
                batch.append(item)
            pause = _RETRY_MIN
            while batch:
                results = await asyncio.gather(*(self._deliver_one(*item) for item in batch))
                # A report the store could not journal is kept, in order, and
                # sent again: the venue filled it, so exo must learn of it.
                retry = [item for item, ok in zip(batch, results, strict=True) if not ok]
                for _ in range(len(batch) - len(retry)):
                    outbox.task_done()
                self._reached(len(batch) - len(retry))
                batch = retry
                if batch:
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _RETRY_MAX)

    async def _deliver_one(self, due: float, status: Any, fields: dict[str, Any], trade: int | None) -> bool:
        """False: the store could not journal it (try again); True otherwise."""
        if not self.connected:
            self.lost += 1
            return True
        try:
            await self.deliver(status, **fields)
        except StoreUnavailable as exc:
            log.warning("%s: report %s waits for the store: %s", self.name, fields.get("exec_id"), exc)
            return False
        except Exception as exc:  # the engine stopped, or a bug: never kill the sender
            if self._engine is not None and not getattr(self._engine, "running", True):
                log.debug("%s: report %s after the engine stopped: %s", self.name, fields.get("exec_id"), exc)
                return True
            self._error("", f"venue {self.name}: report {fields.get('exec_id')} not delivered: {exc}")
            return True
        if trade is not None:
            self._trades_seen = max(self._trades_seen, trade + 1)
        return True

    async def drain(self) -> None:
        """Waits until every report emitted so far reached the engine; not
        for the reports emitted meanwhile (under a busy market the queue is
        never empty, so waiting for it to empty could wait for ever)."""
        if self._delivered >= self._queued:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drains.append((self._queued, waiter))
        await waiter

    def _reached(self, delivered: int) -> None:
        """``delivered`` more reports reached the engine: wakes the drains
        whose reports all did (or all, once the venue stopped)."""
        self._delivered += delivered
        if not self._drains:
            return
        everything = self._stopped
        waiting = []
        for target, waiter in self._drains:
            if everything or self._delivered >= target:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._drains = waiting

    async def stop(self) -> None:
        """Stops the wire: requests not yet arrived fail with ConnectionError
        (their senders see "status unknown"), reports not yet sent are dropped."""
        self._stopped = True
        for task in (self._sender, self._receiver):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._sender = self._receiver = None
        self._reached(0)  # reports not yet sent are dropped: nothing left to wait for
        inbox = self._inbox
        while inbox is not None and not inbox.empty():
            _, _, fut = inbox.get_nowait()
            if not fut.done():
                fut.set_exception(ConnectionError(f"venue {self.name} stopped"))
        await super().stop()

    # -- reconciliation -------------------------------------------------------

    async def reconcile(self, order_ids: Collection[str] | None = None) -> int:
        """``VenueBase.reconcile``, returning once its answers reached the
        engine (each travels like any report, ``report_latency`` later): the
        caller, e.g. a claimed order's first action, sees them at once."""
        delivered = await super().reconcile(order_ids)
        await self.drain()
        return delivered

    async def _query_status(self, cl_ord_id: str, order_id: str) -> int:
        """The answer travels like any report (after the requests sent before
        it, ``report_latency`` later); returns 1 once it is queued."""
        status, fields = await self._arrive(lambda: self._status_of(cl_ord_id))
        self._queue(order_id, status, fields)
        return 1

    def _status_of(self, cl_ord_id: str) -> tuple[OrdStatus, dict[str, Any]]:
        o = self._find(cl_ord_id)
        fields: dict[str, Any] = {"cl_ord_id": cl_ord_id, "exec_type": ExecType.ORDER_STATUS}
        if o is None:
            status = OrdStatus.CANCELED
            fields.update(text="UNKNOWN_ORDER: not in the paper book (it does not survive a restart)")
        else:
            status = self._status(o)
            fields.update(
                secondary_order_id=o.venue_order_id,
                cum_qty=o.cum_qty,
                leaves_qty=self._leaves(o),
                order_qty=o.order_qty,
                price=o.price,
                cl_ord_id=o.cl_ord_id,
            )
            if o.cl_ord_id != cl_ord_id:
                fields["orig_cl_ord_id"] = cl_ord_id
        return status, fields

    async def _open_orders_and_fills(self) -> list[tuple[Any, dict[str, Any]]]:
        # Fills from the last one seen (inclusive: an overlap, as a "since T"
        # query gives; exec_id de-duplicates it), then the open orders.
        first_kept = self._trades_total - len(self._trades)
        start = max(self._trades_seen - 1 - first_kept, 0)
        out: list[tuple[Any, dict[str, Any]]] = list(itertools.islice(self._trades, start, None))
        for orders in self._resting.values():
            for o in orders:
                out.append(
                    (
                        self._status(o),
                        {
                            "cl_ord_id": o.cl_ord_id,
                            "exec_type": ExecType.ORDER_STATUS,
                            "secondary_order_id": o.venue_order_id,
                            "cum_qty": o.cum_qty,
                            "leaves_qty": o.leaves,
                            "order_qty": o.order_qty,
                            "price": o.price,
                        },
                    )
                )
        return out

    def open_orders(self, symbol: str | None = None) -> list[tuple[str, Side, Decimal | None, Decimal]]:
        """(cl_ord_id, side, price, leaves_qty) of the resting orders, FIFO."""
        return [
            (o.cl_ord_id, o.side, o.price, o.leaves)
            for sym, orders in self._resting.items()
            if symbol is None or sym == symbol
            for o in sorted(orders, key=lambda o: o.seq)
        ]
