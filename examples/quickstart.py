"""exo quickstart: one order, a delegate that buys across the spread, and a
burst of quotes that the engine conflates while the delegate is busy."""

import asyncio
from decimal import Decimal

import exo


class TakeTheAsk:  # a Delegate: one per order
    def __init__(self, order: exo.Order) -> None:  # the factory: a class works
        self.order, self.left = order, order.order_qty

    async def action(self, update: exo.Update) -> bool:  # plain def works too
        size = update.quote.far_size(self.order.side) if update.quote else None
        if size is not None:  # None: that side of the book is empty
            fill = min(size, self.left)
            self.left -= fill
            px = update.quote.far(self.order.side)
            print(f"{update.order_id} fill {fill} @ {px} ({update.quotes_merged} quotes merged)")
            await asyncio.sleep(0.01)  # an order entry round trip: quotes keep merging meanwhile
        return self.left == 0  # True: the order is complete

    def clean_up(self) -> None:  # the engine is stopping (not a cancel)
        pass


async def main() -> None:
    async with exo.Engine(TakeTheAsk) as engine:
        oid = await engine.submit(exo.Order("BUY", "BTC-USD", order_qty=Decimal("1.5")))
        for i in range(300):  # a fast market: 300 quotes, ~1 ms apart
            engine.quote(exo.Quote("BTC-USD", 60000 + i, "0.2", 60001 + i, "0.25"))
            await asyncio.sleep(0.001)
        await engine.wait_done(oid)
        print(f"{oid} done; {engine.stats()['handovers']} hand-overs for 300 quotes")


asyncio.run(main())
