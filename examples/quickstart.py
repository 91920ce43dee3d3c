"""exo quickstart: one order, a delegate that buys across the spread, and a
burst of quotes that the engine conflates while the delegate is busy.

    make run        # or: python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import exo


class TakeTheAsk:
    """Buys `order_qty` by taking whatever the ask shows, one Update at a time."""

    def __init__(self, order: exo.Order) -> None:
        self.order = order
        self.left: Decimal = order.order_qty

    async def action(self, update: exo.Update) -> bool:
        if update.quote is None:
            return False
        px, size = update.quote.far(self.order.side), update.quote.far_size(self.order.side)
        if px is None or size is None:  # that side of the book is empty
            return False
        fill = min(size, self.left)
        self.left -= fill
        print(
            f"{update.order_id[:8]} fill {fill} @ {px}"
            f"  (quotes merged into this update: {update.quotes_merged})"
        )
        await asyncio.sleep(0.01)  # an order entry round trip; quotes keep merging meanwhile
        return self.left == 0


async def main() -> None:
    async with exo.Engine(TakeTheAsk) as engine:
        oid = await engine.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal("1.5")))
        for i in range(300):  # a fast market: 300 quotes, ~1 ms apart
            engine.quote(exo.Quote("BTC-USD", 60000 + i, "0.2", 60001 + i, "0.25"))
            await asyncio.sleep(0.001)
            if not engine.is_live(oid):
                break
        await engine.wait_done(oid)
        print(f"{oid[:8]} done; {engine.stats()['handovers']} hand-overs for {i + 1} quotes")


if __name__ == "__main__":
    asyncio.run(main())
