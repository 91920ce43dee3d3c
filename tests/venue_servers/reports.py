"""The engine side of a venue adapter in its tests: ``report()`` takes each
Report as ``engine.report()`` would, applies it to the ChildOrder that owns
it (so every report must obey ChildOrder's rules) and lets tests await it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import exo
from exo.child import ChildOrder, NewOrderSingle, OrderCancelRequest
from exo.venues import Venue


class Reports(list[exo.Report]):
    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()
        self.children: list[ChildOrder] = []
        self.errors: list[tuple[str, str]] = []

    def follow(self, child: ChildOrder) -> ChildOrder:
        self.children.append(child)
        return child

    async def place(self, venue: Venue, child: ChildOrder) -> NewOrderSingle:
        """Follows ``child`` and sends its NewOrderSingle to ``venue`` (returned)."""
        self.follow(child)
        request = child.new()
        await venue.send(request)
        return request

    async def rest(self, venue: Venue, child: ChildOrder) -> NewOrderSingle:
        """``place``, then waits until the venue acknowledged the order (NEW): it rests."""
        request = await self.place(venue, child)
        await self.wait_for(lambda r: r.cl_ord_id == request.cl_ord_id and status_is("NEW")(r))
        return request

    async def cancel_rejected(self, venue: Venue, request: OrderCancelRequest) -> exo.Report:
        """Sends ``request``, a cancel the venue must refuse, and returns the
        OrderCancelReject that answers it (CxlRejResponseTo CANCEL)."""
        await venue.send(request)
        rej = await self.wait_for(lambda r: r.order_id == request.order_id)
        assert rej.cxl_rej_response_to is not None and rej.cxl_rej_response_to.name == "CANCEL"
        return rej

    async def report(self, report: exo.Report) -> bool:
        for c in self.children:
            if c.owns(report.cl_ord_id) or c.owns(report.orig_cl_ord_id):
                c.apply(report)  # raises ChildOrderError on a report that breaks the rules
        self.append(report)
        self._changed.set()
        return True

    def report_error(self, order_id: str, message: str) -> None:
        self.errors.append((order_id, message))

    async def wait_for(self, pred: Callable[[exo.Report], bool], timeout: float = 5.0) -> exo.Report:
        """The first report (already here or to come) matching ``pred``."""

        async def _wait() -> exo.Report:
            while True:
                for r in self:
                    if pred(r):
                        return r
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_wait(), timeout)

    def status(self, name: str) -> list[exo.Report]:
        return [r for r in self if r.ord_status.name == name]

    def filled(self, order_id: str | None = None) -> Decimal:
        """Sum of last_qty over fill reports: what the engine was told filled."""
        return sum(
            (r.last_qty for r in self if r.last_qty and (order_id is None or r.order_id == order_id)),
            Decimal(0),
        )


def exec_type(r: exo.Report) -> str | None:
    return r.exec_type.name if r.exec_type is not None else None


def status_is(name: str) -> Callable[[exo.Report], bool]:
    return lambda r: r.ord_status.name == name and r.cxl_rej_response_to is None
