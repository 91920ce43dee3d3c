"""What an adapter knows of the child orders it routes: the ClOrdID chain of
each child, the parent it belongs to, and the execution ids already handed on.

One ``Tracked`` per child order; every ClOrdID the child has used (its own,
replace and cancel requests') maps to it. ``Tracker.seen(exec_id)`` is the
de-duplication point: a venue report with an ExecID (or the venue's trade id
where it has none) already handed on is dropped, so a report that arrives twice
(websocket duplicates, FIX PossDup resends, reconciliation replaying what the
stream already said) reaches ``engine.report()`` once.
"""

from __future__ import annotations

import datetime as _dt
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exo.market import MsgType, OrdStatus
from exo.venues.base import VenueBase

__all__ = ["TERMINAL", "Tracked", "Tracker", "TrackingVenue", "cancel_reject", "dispatch", "from_millis"]

TERMINAL = frozenset({OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED})
_TERMINAL_NAMES = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED"})


def from_millis(ms: int | str | None) -> _dt.datetime | None:
    """Unix milliseconds -> aware UTC datetime (None stays None)."""
    if ms is None:
        return None
    return _dt.datetime.fromtimestamp(int(ms) / 1000, tz=_dt.timezone.utc)


async def dispatch(
    request: Any,
    place: Callable[[Any], Awaitable[None]],
    cancel: Callable[[Any], Awaitable[None]],
    replace: Callable[[Any], Awaitable[None]],
) -> None:
    """Call the adapter's handler for a NewOrderSingle, OrderCancelRequest or
    OrderCancelReplaceRequest (by its msg_type)."""
    kind = getattr(request.msg_type, "name", request.msg_type)
    handler = {"NEW": place, "CANCEL": cancel, "REPLACE": replace}.get(kind)
    if handler is None:
        raise TypeError(f"unsupported request {type(request).__name__}")
    await handler(request)


def cancel_reject(request: Any, child: Tracked | None, text: str) -> tuple[str, dict[str, Any]]:
    """(ord_status, Report fields) of an OrderCancelReject (FIX 35=9) for a
    cancel or replace ``request``: the order is as it was (its status and
    cum as last reported; REJECTED for an order the venue does not know)."""
    status = child.ord_status.name if child is not None and child.ord_status is not None else "REJECTED"
    if child is not None:
        child.replacing = None
    return status, {
        "symbol": request.symbol,
        "side": request.side.name,
        "secondary_order_id": child.secondary_order_id if child else None,
        "cl_ord_id": request.cl_ord_id,
        "orig_cl_ord_id": request.orig_cl_ord_id,
        "cxl_rej_response_to": request.msg_type,
        "cum_qty": child.cum_qty if child else None,
        "text": text,
    }


@dataclass
class Tracked:
    """One child order as the adapter sees it. ``cl_ord_id`` is the id the
    venue knows the live order by now; ``cum_qty``/``notional`` sum the fills
    handed on (avg = notional / cum)."""

    order_id: str
    symbol: str
    side: str
    order_qty: Decimal
    cl_ord_id: str
    price: Decimal | None = None
    secondary_order_id: str | None = None
    ord_status: OrdStatus | None = None
    cum_qty: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    base_cum: Decimal = Decimal(0)
    """Quantity filled on earlier venue orders of this child (venues whose
    replace is cancel + new, e.g. Binance order.cancelReplace)."""
    base_notional: Decimal = Decimal(0)
    replacing: str | None = None
    """ClOrdID of a replace in flight."""
    aliases: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, request: Any) -> Tracked:
        """A child as its NewOrderSingle describes it."""
        return cls(
            request.order_id,
            request.symbol,
            request.side.name,
            request.order_qty,
            request.cl_ord_id,
            request.price,
        )

    @property
    def live(self) -> bool:
        return self.ord_status not in TERMINAL

    @property
    def avg_px(self) -> Decimal | None:
        return self.notional / self.cum_qty if self.cum_qty else None

    @property
    def leaves_qty(self) -> Decimal:
        return Decimal(0) if not self.live else max(self.order_qty - self.cum_qty, Decimal(0))

    def report(
        self, ord_status: str, exec_type: str | None, exec_id: str | None, **fields: Any
    ) -> tuple[str, dict[str, Any]]:
        """(ord_status, Report fields) for this child's parent with the child's identity and
        quantities (cum, avg, leaves as the child stands; ``fields`` override,
        e.g. last_qty/last_px, or cum_qty for a fill not yet applied).
        Terminal statuses get leaves_qty 0."""
        cum = fields.pop("cum_qty", self.cum_qty)
        values: dict[str, Any] = {
            "symbol": self.symbol,
            "side": self.side,
            "secondary_order_id": self.secondary_order_id,
            "cl_ord_id": self.cl_ord_id,
            "exec_id": exec_id,
            "exec_type": exec_type,
            "order_qty": self.order_qty,
            "price": self.price,
            "cum_qty": cum,
            "avg_px": self.avg_px if cum == self.cum_qty else None,
            "leaves_qty": Decimal(0)
            if ord_status in _TERMINAL_NAMES
            else max(self.order_qty - cum, Decimal(0)),
        }
        values.update(fields)
        return ord_status, values


class Tracker:
    """ClOrdID -> Tracked, and the set of ExecIDs already handed on (bounded:
    the oldest ``max_exec_ids`` are forgotten first). The adapter's own view,
    beside the delegate's ChildOrder: what the venue-specific mapping needs
    (the venue's order id, cum carried over a cancel + new replace)."""

    def __init__(self, max_exec_ids: int = 100_000) -> None:
        self._by_cl: dict[str, Tracked] = {}
        self._exec_ids: OrderedDict[str, None] = OrderedDict()
        self._max = max_exec_ids

    def add(self, child: Tracked) -> Tracked:
        self._by_cl[child.cl_ord_id] = child
        child.aliases.append(child.cl_ord_id)
        return child

    def adopt(self, child: Any) -> None:
        """Know a delegate's ``exo.ChildOrder`` (e.g. restored after a
        restart): its ClOrdIDs route to one Tracked, and the exec_ids it has
        applied count as handed on, so reconciliation does not deliver them
        again. Called after every action; cheap when nothing is new."""
        for exec_id in child.exec_ids:
            self.seen(exec_id)
        if child.cl_ord_id is None:
            return
        t = self.get(child.cl_ord_id)
        if t is None:
            t = self.add(
                Tracked(
                    child.order_id,
                    child.symbol,
                    child.side.name,
                    child.order_qty,
                    child.cl_ord_id,
                    child.price,
                    secondary_order_id=child.secondary_order_id,
                    # PENDING_NEW: the venue never acknowledged it (None, as for a
                    # request this adapter sent): a venue that does not know it
                    # then says it never arrived, a REJECTED.
                    ord_status=None if child.ord_status is OrdStatus.PENDING_NEW else child.ord_status,
                    cum_qty=child.cum_qty,
                    notional=child.notional,
                )
            )
            for request in child.requests_in_flight:
                if request.msg_type is MsgType.REPLACE:
                    t.replacing = request.cl_ord_id  # its outcome is asked of the venue
        elif child.cum_qty > t.cum_qty:
            t.cum_qty, t.notional = child.cum_qty, child.notional
        for cl in child.cl_ord_ids:
            if self.get(cl) is None:
                self.alias(cl, t)

    def release(self, order_id: str) -> None:
        """Forget every child of a finished parent (its ClOrdIDs; the exec_ids
        stay, bounded, for late duplicates)."""
        for cl in [cl for cl, c in self._by_cl.items() if c.order_id == order_id]:
            del self._by_cl[cl]

    def amends(self, request: Any) -> Tracked | None:
        """The child a cancel or replace ``request`` amends (by its
        orig_cl_ord_id), now also routing the request's ClOrdID; None if this
        adapter does not know it."""
        child = self.get(request.orig_cl_ord_id)
        if child is not None:
            self.alias(request.cl_ord_id, child)
        return child

    def alias(self, cl_ord_id: str, child: Tracked) -> None:
        """Route reports naming ``cl_ord_id`` (a replace's or cancel's) to ``child``."""
        self._by_cl[cl_ord_id] = child
        child.aliases.append(cl_ord_id)

    def get(self, cl_ord_id: str | None) -> Tracked | None:
        return self._by_cl.get(cl_ord_id) if cl_ord_id else None

    def by_secondary(self, secondary_order_id: str) -> Tracked | None:
        for child in self._by_cl.values():
            if child.secondary_order_id == secondary_order_id:
                return child
        return None

    def children(self) -> list[Tracked]:
        """Each tracked child once."""
        return list({id(c): c for c in self._by_cl.values()}.values())

    def live(self) -> list[Tracked]:
        return [c for c in self.children() if c.live]

    def handed_on(self, exec_id: str) -> bool:
        """True if ``exec_id`` was handed on before (does not record it)."""
        return exec_id in self._exec_ids

    def seen(self, exec_id: str) -> bool:
        """True if ``exec_id`` was handed on before; else remember it and return False."""
        if exec_id in self._exec_ids:
            return True
        self._exec_ids[exec_id] = None
        if len(self._exec_ids) > self._max:
            self._exec_ids.popitem(last=False)
        return False


class TrackingVenue(VenueBase):
    """What the real venue adapters add to VenueBase: their own ``tracker``
    kept in step with the delegates' children (adopted after a restart,
    released with a finished parent)."""

    tracker: Tracker

    def track(self, child: Any) -> None:
        """Also keep the adapter's view of a delegate's child (after a restart)."""
        super().track(child)
        self.tracker.adopt(child)

    def release(self, order_id: str) -> None:
        super().release(order_id)
        self.tracker.release(order_id)

    def held_by_delegates(self, child: Tracked) -> bool:
        """True if a delegate holds this child live (VenueBase's reconcile asks
        about those; the adapter asks about the rest itself)."""
        return any(c.owns(alias) for c in self._children.get(child.order_id, ()) for alias in child.aliases)

    async def _emit(self, ord_status: str, fields: dict[str, Any], child: Tracked | None) -> None:
        """Hands one report on, once per exec_id (``Tracker.seen``), keeping
        the adapter's view of ``child`` in step first (``_keep_in_step``)."""
        exec_id = fields.get("exec_id")
        if exec_id is not None and self.tracker.seen(exec_id):
            return
        if child is not None:
            child.ord_status = OrdStatus.parse(ord_status)
            self._keep_in_step(child, fields)
        await self.deliver(ord_status, **fields)

    def _keep_in_step(self, child: Tracked, fields: dict[str, Any]) -> None:
        """Applies a report's quantities to the adapter's ``child`` (its
        ord_status is set already); the venue knows how its reports carry them."""

    async def _cancel_reject(self, request: Any, child: Tracked | None, text: str) -> None:
        """Delivers an OrderCancelReject for a cancel or replace ``request``
        (``cancel_reject``): the order is as it was."""
        status, fields = cancel_reject(request, child, text)
        await self.deliver(status, **fields)

    async def _child_to_amend(self, request: Any) -> Tracked | None:
        """The child a cancel or replace ``request`` amends (``Tracker.amends``);
        None, with the request rejected "unknown order" and nothing sent, if
        this adapter does not know it."""
        child = self.tracker.amends(request)
        if child is None:
            await self._cancel_reject(request, None, "unknown order")
        return child

    async def _query_status(self, cl_ord_id: str, order_id: str) -> int:
        """Asks the venue about the child (``_ask_about``); returns how many
        reports that delivered (0 for a ClOrdID this adapter does not know)."""
        child = self.tracker.get(cl_ord_id)
        if child is None:
            return 0
        before = self.counters["reports"]
        await self._ask_about(child)
        return self.counters["reports"] - before

    async def _ask_about(self, child: Tracked) -> None:
        """Asks the venue for one child's status and delivers what it shows
        beyond what was handed on."""
        raise NotImplementedError

    async def _open_orders(self, symbol: str) -> list[tuple[str | None, dict[str, Any], str]]:
        """The venue's open orders of ``symbol``: (ClOrdID, the venue's row,
        ord_status name) each."""
        raise NotImplementedError

    async def _mend(self, child: Tracked, row: dict[str, Any]) -> None:
        """Deliver what the venue's ``row`` for ``child`` shows beyond what was
        handed on (missed fills, with the ids the stream uses)."""
        raise NotImplementedError

    async def _open_orders_and_fills(self) -> list[tuple[Any, dict[str, Any]]]:
        """The open orders of the symbols with live children: each one's missed
        fills are delivered (``_mend``), then an ORDER_STATUS per open order is
        returned. Live children neither open nor held by a delegate (VenueBase
        asks about those) are asked about one by one."""
        out: list[tuple[Any, dict[str, Any]]] = []
        open_children: set[int] = set()
        for symbol in sorted({c.symbol for c in self.tracker.live()}):
            for cl_ord_id, row, status in await self._open_orders(symbol):
                child = self.tracker.get(cl_ord_id)
                if child is None:
                    continue
                open_children.add(id(child))
                await self._mend(child, row)
                out.append(child.report(status, "ORDER_STATUS", None))
        for child in self.tracker.live():
            if id(child) not in open_children and not self.held_by_delegates(child):
                await self._query_status(child.cl_ord_id, child.order_id)
        return out
