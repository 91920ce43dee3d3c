"""The example's delegate, which works each order through child orders sent to
a venue, and the Book of every order's progress.

An ``ExampleDelegate`` never fills itself: it sends child orders to its venue
(``exo.venues.Paper`` by default) and learns its fills only from the venue's
execution reports, printing ``<order_id> fill <qty> @ <px>`` for each fill
report and ``<order_id> done`` once the fills sum to ``order_qty``. A CANCEL
cancels the live child; once no child is live it prints ``<order_id> canceled``.
Those lines are the example's output, on stdout.

How it works an order:

- no ``price`` (MARKET, the default): on each new quote, one IOC child at the
  far price for ``min(size shown, quantity left)`` (a buy takes the ask, a sell
  hits the bid), rounded to the instrument's lot; up to ``_IN_FLIGHT`` such
  children may be live at once, never for more than is left;
- with a ``price`` (LIMIT): one child at that price for what is left, with the
  order's ``time_in_force`` (GTC rests until filled; IOC/FOK end the order
  with whatever filled, printing ``canceled`` if not all).

The invariant: an order's ``Progress`` (children, filled quantity, notional,
status) is changed only by its own delegate, between hand-overs, and is
exactly what its ``state()`` returns; so with a durable store a restarted
example resumes each order where its last checkpoint left it (its children
included: the venue routes their reports again), and the HTTP API reads the
same numbers the delegate acts on.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol, TextIO

from exo.child import ChildOrder, ChildOrderError, OrdType, TimeInForce
from exo.instrument import InstrumentError
from exo.market import ExecType, MsgType, Order, OrdStatus, Update
from exo.venues import Venue, VenueError

__all__ = ["Book", "DelegateObserver", "ExampleDelegate", "PaperOrder", "Progress"]

log = logging.getLogger("exo.example")

_PX_PLACES = Decimal("0.00000001")
"""Average prices are rounded to 8 places, as exo rounds a merged VWAP."""


class PaperOrder(Order):
    """A NEW order of the example: the identity plus ``order_qty`` (a positive
    Decimal) and optionally ``price`` (a LIMIT), ``ord_type`` and
    ``time_in_force`` (GTC, IOC, FOK, POST_ONLY; GTC by default)."""

    order_qty: Decimal
    price: Decimal | None
    ord_type: OrdType
    time_in_force: TimeInForce


class DelegateObserver(Protocol):
    """What a delegate reports after each action (see ``metrics.py``)."""

    def observe_action(self, update: Update, seconds: float, filled: Decimal) -> None: ...


_DONE = (OrdStatus.FILLED, OrdStatus.CANCELED)
_IN_FLIGHT = 4
"""Taking children live at once per order (one per new quote): the next quote
need not wait for the last child's reports."""
_CLOSED_KEPT = 8
"""Closed children a live order keeps (shown by GET); older ones are dropped."""
_DONE_KEPT = 3
"""Children a finished order keeps for GET; the rest are counted in
``childOrdersDropped`` and ``childOrdersDroppedCumQty``."""


class Progress:
    """One order as the example knows it: its child orders, what was filled,
    at what average price, and its status. Also what the once-a-second summary
    line needs (quotes merged since the last line, staleness of the last
    Update)."""

    __slots__ = (
        "cancel_requested",
        "children",
        "dropped",
        "dropped_qty",
        "filled",
        "fills",
        "last_staleness_ns",
        "notional",
        "order",
        "quotes_since_summary",
        "status",
    )

    def __init__(self, order: PaperOrder) -> None:
        self.order = order
        self.children: list[ChildOrder] = []
        self.dropped = 0  # closed children pruned from ``children`` (GET shows the count)
        self.dropped_qty = Decimal(0)  # their cum_qty, so shown + dropped = filled
        self.filled = Decimal(0)
        self.notional = Decimal(0)  # sum of last_qty * last_px over the fill reports
        self.fills = 0
        self.status = OrdStatus.NEW
        self.cancel_requested = False
        self.quotes_since_summary = 0
        self.last_staleness_ns: int | None = None

    @property
    def order_id(self) -> str:
        order_id = self.order.order_id
        assert order_id is not None, "a tracked order has been submitted"
        return order_id

    @property
    def leaves(self) -> Decimal:
        """Quantity left to fill (0 once the order is done or canceled)."""
        if self.status in _DONE:
            return Decimal(0)
        return self.order.order_qty - self.filled

    @property
    def avg_px(self) -> Decimal | None:
        """Volume-weighted average fill price, 8 places; None before the first fill."""
        if not self.filled:
            return None
        return (self.notional / self.filled).quantize(_PX_PLACES, ROUND_HALF_EVEN)

    @property
    def done(self) -> bool:
        return self.status in _DONE

    def to_json(self) -> dict[str, Any]:
        """The order, its progress and its child orders as the HTTP API shows
        them (FIX names)."""
        avg = self.avg_px
        price = getattr(self.order, "price", None)
        return {
            "orderID": self.order_id,
            "side": self.order.side.name,
            "symbol": self.order.symbol,
            "orderQty": format(self.order.order_qty, "f"),  # never exponent notation
            "ordType": _ord_type(self.order).value,
            "price": None if price is None else format(price, "f"),
            "timeInForce": _tif(self.order).value,
            "cumQty": format(self.filled, "f"),
            "leavesQty": format(self.leaves, "f"),
            "avgPx": None if avg is None else format(avg, "f"),
            "ordStatus": self.status.name,
            "fills": self.fills,
            "childOrders": [_child_json(c) for c in self.children],
            "childOrdersDropped": self.dropped,
            "childOrdersDroppedCumQty": format(self.dropped_qty, "f"),
        }

    def drop_children(self, drop: list[ChildOrder]) -> None:
        """Forgets closed children (their fills stay counted in ``filled``)."""
        gone = {id(c) for c in drop}
        self.children[:] = [c for c in self.children if id(c) not in gone]
        self.dropped += len(drop)
        self.dropped_qty += sum((c.cum_qty for c in drop), Decimal(0))

    def state(self) -> dict[str, Any]:
        """The delegate's saved state (the children are plain dataclasses)."""
        return {
            "filled": str(self.filled),
            "notional": str(self.notional),
            "fills": self.fills,
            "status": self.status.name,
            "cancel_requested": self.cancel_requested,
            "children": list(self.children),
            "dropped": self.dropped,
            "dropped_qty": str(self.dropped_qty),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.filled = Decimal(state["filled"])
        self.notional = Decimal(state["notional"])
        self.fills = int(state["fills"])
        self.status = OrdStatus.parse(state["status"])
        self.cancel_requested = bool(state.get("cancel_requested", False))
        self.children = list(state.get("children", ()))
        self.dropped = int(state.get("dropped", 0))
        self.dropped_qty = Decimal(state.get("dropped_qty", "0"))


def _ord_type(order: Any) -> OrdType:
    return OrdType(
        getattr(order, "ord_type", None) or (OrdType.LIMIT if getattr(order, "price", None) else "MARKET")
    )


def _tif(order: Any) -> TimeInForce:
    return TimeInForce(getattr(order, "time_in_force", None) or TimeInForce.GTC)


def _child_json(c: ChildOrder) -> dict[str, Any]:
    avg = c.avg_px
    return {
        "clOrdID": c.cl_ord_id,
        "secondaryOrderID": c.secondary_order_id,
        "ordType": c.ord_type.value,
        "timeInForce": c.time_in_force.value,
        "price": None if c.price is None else format(c.price, "f"),
        "orderQty": format(c.order_qty, "f"),
        "cumQty": format(c.cum_qty, "f"),
        "leavesQty": format(c.leaves_qty, "f"),
        "avgPx": None if avg is None else format(avg.quantize(_PX_PLACES, ROUND_HALF_EVEN), "f"),
        "ordStatus": None if c.ord_status is None else c.ord_status.name,
        "text": c.text,
    }


class ExampleDelegate:
    """Works one order through child orders sent to ``venue`` (module doc)."""

    __slots__ = ("_book", "_instrument", "_out", "_venue", "progress")

    def __init__(self, progress: Progress, book: Book, venue: Venue) -> None:
        self.progress = progress
        self._book = book
        self._out = book.out
        self._venue = venue
        self._instrument = venue.instrument(progress.order.symbol)

    @property
    def children(self) -> list[ChildOrder]:
        """The venue re-registers these after a restart (see exo.venues)."""
        return self.progress.children

    async def action(self, update: Update) -> bool:
        t0 = time.perf_counter()
        p = self.progress
        before = p.filled
        p.quotes_since_summary += update.quotes_merged
        if update.arrived_ns is not None:
            p.last_staleness_ns = update.staleness_ns
        if any(i.msg_type == MsgType.CANCEL for i in update.instructions):
            p.cancel_requested = True
        for report in update.reports:
            self._apply(report)
        if not p.done:
            await self._work(update)
        if p.done:
            # Finished: GET shows the last children; their exec_ids served only
            # to drop duplicates while live. Keeps the book of done orders small.
            p.drop_children(p.children[: max(0, len(p.children) - _DONE_KEPT)])
            for c in p.children:
                c.exec_ids.clear()
            self._book.finished(p)
        observer = self._book.observer
        if observer is not None:
            observer.observe_action(update, time.perf_counter() - t0, p.filled - before)
        return p.done

    def _apply(self, report: Any) -> None:
        p = self.progress
        child = next(
            (c for c in p.children if c.owns(report.cl_ord_id) or c.owns(report.orig_cl_ord_id)), None
        )
        if child is None:
            log.warning("order %s: report for no child of it (cl_ord_id %s)", p.order_id, report.cl_ord_id)
            return
        try:
            changed = child.apply(report)
        except ChildOrderError as exc:
            log.warning("order %s: report not applied: %s", p.order_id, exc)
            return
        if changed and report.exec_type == ExecType.TRADE:
            qty, px = report.last_qty, report.last_px
            p.filled += qty
            p.notional += qty * px
            p.fills += 1
            self._say(f"{p.order_id} fill {qty} @ {px}")
            if p.status is OrdStatus.NEW:
                p.status = OrdStatus.PARTIALLY_FILLED
        elif changed and report.ord_status == OrdStatus.REJECTED and report.cxl_rej_response_to is None:
            log.warning("order %s: child %s rejected: %s", p.order_id, child.cl_ord_id, report.text)

    async def _work(self, update: Update) -> None:
        p, order = self.progress, self.progress.order
        if p.filled >= order.order_qty:
            p.status = OrdStatus.FILLED
            self._say(f"{p.order_id} done")
            return
        live = [c for c in p.children if c.is_live]
        if p.cancel_requested:
            for c in live:
                if c.pending is None:
                    await self._send(c, c.cancel())
            if not any(c.is_live for c in p.children):
                p.status = OrdStatus.CANCELED
                self._say(f"{p.order_id} canceled")
            return
        price = getattr(order, "price", None)
        if live and (price is not None or len(live) >= _IN_FLIGHT):
            return
        if price is not None:
            if not p.children and update.quote is None:
                return  # the venue matches against quotes: send once the market is there
            tif = _tif(order)
            if p.children and tif in (TimeInForce.IOC, TimeInForce.FOK):
                p.status = OrdStatus.CANCELED  # its one chance is over
                self._say(f"{p.order_id} canceled")
                return
            if p.children and p.children[-1].ord_status == OrdStatus.REJECTED:
                p.status = OrdStatus.CANCELED  # e.g. post-only that would cross: say so, end
                self._say(f"{p.order_id} canceled")
                return
            child = ChildOrder(p.order_id, order.symbol, order.side, p.leaves, price=price, time_in_force=tif)
        else:
            quote = update.quote
            if quote is None:
                return  # one taking child per new quote
            side = order.side
            px, shown = quote.far(side), quote.far_size(side)
            if px is None or shown is None or px <= 0:
                return  # that side of the book is empty: nothing to take
            working = sum((c.leaves_qty for c in live), Decimal(0))  # may still fill
            qty = self._instrument.round_qty(min(shown, p.leaves - working))
            if qty <= 0:
                return
            child = ChildOrder(p.order_id, order.symbol, side, qty, price=px, time_in_force=TimeInForce.IOC)
        p.children.append(child)
        self._prune()
        await self._send(child, child.new())

    def _prune(self) -> None:
        """Keeps the live children and the newest closed ones (their fills are
        counted in the Progress already), so a long order's saved state stays small."""
        closed = [c for c in self.progress.children if c.is_done]
        if len(closed) > _CLOSED_KEPT:
            self.progress.drop_children(closed[: len(closed) - _CLOSED_KEPT])

    async def _send(self, child: ChildOrder, request: Any) -> None:
        try:
            await self._venue.send(request)
        except (InstrumentError, VenueError) as exc:
            # Refused before it left: undo, say why, try again on a later Update.
            child.withdraw(request)
            if child.ord_status is None:
                self.progress.children.remove(child)
            log.warning("order %s: %s", self.progress.order_id, exc)

    def state(self) -> dict[str, Any]:
        return self.progress.state()

    def clean_up(self) -> None:
        # The example is stopping: the order is left as it is, not canceled.
        log.debug(
            "order %s left %s with %s of %s filled",
            self.progress.order_id,
            self.progress.status.name,
            self.progress.filled,
            self.progress.order.order_qty,
        )

    def _say(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()


class Book:
    """Every order's progress by order_id: the live ones, and the last
    ``keep_done`` that were filled or canceled (so GET still finds them).

    ``book.factory`` is the factory a venue wraps (``venue.delegates(book.factory)``):
    ``factory(order, venue)`` for a NEW, ``factory(order, venue, state=...)``
    when a store recovers the order.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        observer: DelegateObserver | None = None,
        keep_done: int = 10_000,
        venue: Venue | None = None,
    ) -> None:
        self.out: TextIO = sys.stdout if out is None else out
        self.observer = observer
        self.venue = venue
        """The venue the orders' children go to (the HTTP API checks symbols against it)."""
        self._keep_done = keep_done
        self._live: dict[str, Progress] = {}
        self._done: OrderedDict[str, Progress] = OrderedDict()

    def factory(
        self, order: PaperOrder, venue: Venue, state: dict[str, Any] | None = None
    ) -> ExampleDelegate:
        progress = self.track(order)
        if state is not None:
            progress.restore(state)
            log.info(
                "order %s resumed: %s %s %s, %s filled, %s left",
                progress.order_id,
                order.side.name,
                order.order_qty,
                order.symbol,
                progress.filled,
                progress.leaves,
            )
        return ExampleDelegate(progress, self, venue)

    def track(self, order: PaperOrder) -> Progress:
        """The order's Progress, created on first sight (by the HTTP handler
        or the factory, whichever runs first)."""
        order_id = order.order_id
        if order_id is None:
            raise ValueError("submit the order first: it has no order_id")
        progress = self.get(order_id)  # done already, if it filled before the handler looked
        if progress is None:
            progress = self._live[order_id] = Progress(order)
        return progress

    def finished(self, progress: Progress) -> None:
        order_id = progress.order_id
        if self._live.pop(order_id, None) is None:
            return
        self._done[order_id] = progress
        while len(self._done) > self._keep_done:
            self._done.popitem(last=False)

    def get(self, order_id: str) -> Progress | None:
        return self._live.get(order_id) or self._done.get(order_id)

    def forget(self, order_id: str) -> None:
        """Drops a live order the engine refused or never created."""
        self._live.pop(order_id, None)

    def live(self) -> list[Progress]:
        return list(self._live.values())
