"""exo child orders: a delegate rests a limit order at the bid on the paper
venue and re-prices it when the bid rises, learning its fills only from the
venue's execution reports.

    python examples/child_orders.py
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import exo
from exo.venues import Paper


class JoinTheBid:
    """Works `order_qty` as one LIMIT child resting at the best bid, following
    the bid up (never down: a buyer does not chase the price away)."""

    def __init__(self, order: exo.Order, venue: Paper, state: object = None) -> None:
        self.order, self.venue = order, venue
        self.instrument = venue.instrument(order.symbol)  # unknown symbol: refused here
        self.children: list[exo.ChildOrder] = []  # the venue re-registers them after a restart

    async def action(self, update: exo.Update) -> bool:
        child = self.children[-1] if self.children else None
        for report in update.reports:
            if child is not None and child.apply(report) and report.exec_type == exo.ExecType.TRADE:
                print(f"{self.order.order_id[:8]} fill {report.last_qty} @ {report.last_px}")
        if child is not None and child.ord_status == exo.OrdStatus.FILLED:
            print(f"{self.order.order_id[:8]} done, avg_px {child.avg_px}")
            return True
        if update.quote is None:
            return False
        bid = self.instrument.round_price(update.quote.bid_px, self.order.side)
        if child is None:
            child = exo.ChildOrder(
                self.order.order_id, self.order.symbol, self.order.side, self.order.order_qty, price=bid
            )
            self.children.append(child)
            await self.venue.send(child.new())
        elif child.pending is None and child.is_live and bid > child.price:
            await self.venue.send(child.replace(price=bid))  # re-price; a fill may still come first
        return False


async def main() -> None:
    venue = Paper()
    async with exo.Engine(venue.delegates(JoinTheBid)) as engine:
        venue.attach(engine)
        await venue.start()
        oid = await engine.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal("0.3")))
        for bid in ("60000.00", "60000.50", "60001.00"):  # the bid moves up: the child follows it
            engine.quote(exo.Quote("BTC-USD", bid, "1", "60002.00", "1"))
            await asyncio.sleep(0.02)
        for _ in range(3):  # sellers come down to our price, 0.1 at a time
            engine.quote(exo.Quote("BTC-USD", "60000.00", "1", "60001.00", "0.1"))
            await asyncio.sleep(0.02)
        await asyncio.wait_for(engine.wait_done(oid), 5)
        await venue.stop()


if __name__ == "__main__":
    asyncio.run(main())
