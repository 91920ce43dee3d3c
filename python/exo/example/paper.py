"""The paper delegate and the Book of every order's progress.

A ``PaperDelegate`` fills its order on paper: for each quote it takes
``min(size at the far side, quantity left)`` at the far price (a buy takes the
ask, a sell hits the bid) and prints ``<order_id> fill <qty> @ <px>``; once
nothing is left it prints ``<order_id> done``. A CANCEL ends it
(``<order_id> canceled``). Those lines are the example's output, on stdout.

The invariant: an order's ``Progress`` (filled quantity, notional, status) is
changed only by its own delegate, between hand-overs, and is exactly what its
``state()`` returns; so with a durable store a restarted example resumes
each order where its last checkpoint left it, and the HTTP API reads the same
numbers the delegate acts on.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol, TextIO

from exo.market import MsgType, Order, OrdStatus, Side, Update

__all__ = ["Book", "DelegateObserver", "PaperDelegate", "PaperOrder", "Progress"]

log = logging.getLogger("exo.example")

_PX_PLACES = Decimal("0.00000001")
"""Average prices are rounded to 8 places, as exo rounds a merged VWAP."""


class PaperOrder(Order):
    """A NEW order of the example: the identity plus ``order_qty`` (a positive Decimal)."""

    order_qty: Decimal


class DelegateObserver(Protocol):
    """What a paper delegate reports after each action (see ``metrics.py``)."""

    def observe_action(self, update: Update, seconds: float, filled: Decimal) -> None: ...


class Progress:
    """One order as the example knows it: what was filled, at what average
    price, and its status. Also what the once-a-second summary line needs
    (quotes merged since the last line, staleness of the last Update)."""

    __slots__ = (
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
        self.filled = Decimal(0)
        self.notional = Decimal(0)  # sum of qty * px over the fills
        self.fills = 0
        self.status = OrdStatus.NEW
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
        if self.status in (OrdStatus.FILLED, OrdStatus.CANCELED):
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
        return self.status in (OrdStatus.FILLED, OrdStatus.CANCELED)

    def to_json(self) -> dict[str, Any]:
        """The order and its progress as the HTTP API shows it (FIX names)."""
        avg = self.avg_px
        return {
            "orderID": self.order_id,
            "side": self.order.side.name,
            "symbol": self.order.symbol,
            "orderQty": format(self.order.order_qty, "f"),  # never exponent notation
            "cumQty": format(self.filled, "f"),
            "leavesQty": format(self.leaves, "f"),
            "avgPx": None if avg is None else format(avg, "f"),
            "ordStatus": self.status.name,
            "fills": self.fills,
        }

    def state(self) -> dict[str, Any]:
        """The delegate's saved state: strings, so any codec can carry it."""
        return {
            "filled": str(self.filled),
            "notional": str(self.notional),
            "fills": self.fills,
            "status": self.status.name,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.filled = Decimal(state["filled"])
        self.notional = Decimal(state["notional"])
        self.fills = int(state["fills"])
        self.status = OrdStatus.parse(state["status"])


class PaperDelegate:
    """Fills one order on paper against the far side of each quote."""

    __slots__ = ("_book", "_buy", "_out", "progress")

    def __init__(self, progress: Progress, book: Book) -> None:
        self.progress = progress
        self._book = book
        self._out = book.out
        self._buy = progress.order.side == Side.BUY

    def action(self, update: Update) -> bool:
        t0 = time.perf_counter()
        p = self.progress
        filled = Decimal(0)
        p.quotes_since_summary += update.quotes_merged
        if update.arrived_ns is not None:
            p.last_staleness_ns = update.staleness_ns
        for instruction in update.instructions:
            if instruction.msg_type == MsgType.CANCEL:
                p.status = OrdStatus.CANCELED
                self._say(f"{p.order_id} canceled")
                break
        quote = update.quote
        if quote is not None and not p.done:
            side = p.order.side
            px, shown = quote.far(side), quote.far_size(side)
            # An empty far side (None) fills nothing.
            qty = min(shown, p.leaves) if shown is not None else Decimal(0)
            if qty > 0 and px is not None and px > 0:
                p.filled += qty
                p.notional += qty * px
                p.fills += 1
                filled = qty
                self._say(f"{p.order_id} fill {qty} @ {px}")
                if p.leaves == 0:
                    p.status = OrdStatus.FILLED
                    self._say(f"{p.order_id} done")
                else:
                    p.status = OrdStatus.PARTIALLY_FILLED
        if p.done:
            self._book.finished(p)
        observer = self._book.observer
        if observer is not None:
            observer.observe_action(update, time.perf_counter() - t0, filled)
        return p.done

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

    ``book.factory`` is the engine's DelegateFactory: ``factory(order)`` for a
    NEW, ``factory(order, state=...)`` when a store recovers the order.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        observer: DelegateObserver | None = None,
        keep_done: int = 10_000,
    ) -> None:
        self.out: TextIO = sys.stdout if out is None else out
        self.observer = observer
        self._keep_done = keep_done
        self._live: dict[str, Progress] = {}
        self._done: OrderedDict[str, Progress] = OrderedDict()

    def factory(self, order: PaperOrder, state: dict[str, Any] | None = None) -> PaperDelegate:
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
        return PaperDelegate(progress, self)

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
