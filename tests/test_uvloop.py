"""exo's Engine on uvloop: hand-over, async delegates, the idle timer's
wake-up pipe (add_reader), a feed thread, and a clean stop."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest

import exo
from tests.helpers import Recorder, factory, quote, until

uvloop = pytest.importorskip(
    "uvloop", reason="uvloop is not installed (make test installs it; pip install uvloop)"
)


def run_on_uvloop(main: object) -> None:
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(main)  # type: ignore[arg-type]
    finally:
        loop.close()


def test_engine_runs_on_uvloop() -> None:
    async def main() -> None:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        async with exo.Engine(factory(), idle_interval=0.05) as engine:
            oid = await engine.submit(exo.Order("BUY", "X", order_qty=Decimal(1)))
            (d,) = Recorder.instances
            await d.wait_calls(1)
            for bid in range(100):
                engine.quote(quote("X", bid=str(bid)))
            engine.trade(exo.Trade("X", "1", "100"))
            engine.trade(exo.Trade("X", "3", "200"))
            await until(lambda: any(u.quote is not None for u in d.updates))
            merged = [u for u in d.updates if u.quote is not None]
            assert merged[-1].quote.bid_px == Decimal(99)
            assert sum(u.quotes_merged for u in d.updates) == 100
            trade = next(u.trade for u in d.updates if u.trade is not None)
            assert (trade.trade_volume, trade.avg_px) == (Decimal(4), Decimal(175))
            # The idle timer runs on a tokio thread and wakes the loop through add_reader.
            await until(lambda: any(u.idle for u in d.updates))
            assert engine.is_live(oid)
        assert d.cleaned == 1

    run_on_uvloop(main())


def test_async_delegates_and_feed_thread_on_uvloop() -> None:
    class Async(Recorder):
        async def action(self, update: exo.Update) -> bool:  # type: ignore[override]
            super().action(update)
            await asyncio.sleep(0.001)
            return sum(u.quotes_merged for u in self.updates) == 1000

    async def main() -> None:
        async with exo.Engine(lambda o: Async(o)) as engine:
            oid = await engine.submit(exo.Order("BUY", "X"))
            (d,) = Recorder.instances
            await d.wait_calls(1)
            t = threading.Thread(target=lambda: [engine.quote(quote("X", bid=str(i))) for i in range(1000)])
            t.start()
            await asyncio.wait_for(engine.wait_done(oid), 10)
            t.join()
            assert d.updates[-1].quote.bid_px == Decimal(999)

    run_on_uvloop(main())
