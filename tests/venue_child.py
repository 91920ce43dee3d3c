"""The engine process test_venue_crash.py kills: an exo engine on Redis with
one parent order whose delegate sends one GTC child of 10 to a real venue
adapter (Binance, BitMEX or FIX) talking to the test's loopback venue.

    python venue_child.py KIND REDIS_URL ENDPOINT_JSON PROGRESS_FILE [hold|hold-replace|hold-cancel]

The delegate applies each report to its ChildOrder and records every TRADE
report it is handed, duplicates included, in its checkpointed state. After
each action it appends ``<cum_qty> <cl_ord_id> <ord_status>`` to PROGRESS_FILE; when the child is
closed (FILLED, CANCELED, ...) it writes ``DONE <json of the recorded trades>`` and the process stops
the engine and exits.

With ``hold-replace`` (``hold-cancel``), once the child is NEW the action
writes ``ACKED``, waits for a line on stdin, sends a replace (price +1) (a
cancel), writes ``SENT <its cl_ord_id>`` and never returns, likewise.

With ``hold``, the first action writes ``SENT <cl_ord_id>`` once its send
returned and then never returns: no report is applied and no checkpoint holds
the child, so a kill -9 then finds the child only in the journal (its request,
journaled before it left). A restarted engine (without ``hold``) must put it
back in flight and reconcile it instead of sending a second order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import exo
from exo.child import ChildOrder
from exo.instrument import Instrument

QTY = Decimal(10)


class Worker:
    done = asyncio.Event()
    acted = asyncio.Event()
    progress = ""

    def __init__(self, order: exo.Order, venue: Any, state: dict[str, Any] | None = None) -> None:
        self.order, self.venue = order, venue
        self.children: list[ChildOrder] = list(state["children"]) if state else []
        self.trades: list[list[str]] = list(state["trades"]) if state else []

    async def action(self, update: exo.Update) -> bool:
        for r in update.reports:
            if r.exec_type is not None and r.exec_type.name == "TRADE":
                self.trades.append([r.exec_id or "", str(r.last_qty)])
            for c in self.children:
                if c.owns(r.cl_ord_id) or c.owns(r.orig_cl_ord_id):
                    c.apply(r)
        if not self.children:
            c = ChildOrder(self.order.order_id or "", self.order.symbol, "BUY", QTY, price=PRICE[KIND])
            self.children.append(c)
            await self.venue.send(c.new())
            if HOLD:
                with open(Worker.progress, "a") as f:
                    f.write(f"SENT {c.cl_ord_id}\n")
                await asyncio.Event().wait()  # killed here: before any report or checkpoint
        first = self.children[0]
        if AMEND and first.ord_status is not None and first.ord_status.name == "NEW":
            with open(Worker.progress, "a") as f:
                f.write("ACKED\n")
            await asyncio.to_thread(sys.stdin.readline)  # the test says when to amend
            request = first.replace(price=PRICE[KIND] + 1) if AMEND == "replace" else first.cancel()
            await self.venue.send(request)
            with open(Worker.progress, "a") as f:
                f.write(f"SENT {request.cl_ord_id}\n")
            await asyncio.Event().wait()  # killed here: the request left, no report applied
        cum, status = first.cum_qty, first.ord_status
        with open(Worker.progress, "a") as f:
            f.write(f"{cum} {first.cl_ord_id} {status.name if status else None}\n")
            if first.is_done:
                f.write("DONE " + json.dumps(self.trades) + "\n")
                Worker.done.set()
        Worker.acted.set()
        return False

    def state(self) -> dict[str, Any]:
        return {"children": self.children, "trades": self.trades}


KIND = sys.argv[1] if len(sys.argv) > 1 else "binance"
HOLD = len(sys.argv) > 5 and sys.argv[5] == "hold"
AMEND = (
    sys.argv[5][len("hold-") :]
    if len(sys.argv) > 5 and sys.argv[5] in ("hold-replace", "hold-cancel")
    else ""
)
SYMBOL = {"binance": "BTCUSDT", "bitmex": "XBTUSD", "fix": "BTC-USD"}
PRICE = {"binance": Decimal("59000"), "bitmex": Decimal("59000"), "fix": Decimal("59000")}


def make_venue(kind: str, ep: dict[str, Any]) -> Any:
    from exo.venues import Credentials

    if kind == "binance":
        from exo.venues.binance import Binance

        return Binance(Credentials(ep["key"], secret=ep["secret"]), url=ep["url"], reconnect_delay=0.05)
    if kind == "bitmex":
        from exo.venues.bitmex import BitMEX

        return BitMEX(
            Credentials(ep["key"], secret=ep["secret"]),
            [Instrument("XBTUSD", tick_size=Decimal("0.5"), lot_size=Decimal(1))],
            rest_url=ep["rest_url"],
            ws_url=ep["ws_url"],
            cancel_all_after=None,
            reconnect_delay=0.05,
        )
    from exo.venues.fix import FIX

    return FIX(
        [Instrument("BTC-USD", tick_size=Decimal("0.01"), lot_size=Decimal("0.0001"))],
        host="127.0.0.1",
        port=ep["port"],
        sender_comp_id="EXO",
        target_comp_id="VENUE",
        store_path=ep["store"],
        reconnect_interval=1,
    )


async def main(kind: str, url: str, ep: dict[str, Any], progress: str) -> None:
    Worker.progress = progress
    venue = make_venue(kind, ep)
    engine = exo.Engine(venue.delegates(Worker), store=exo.RedisStore(url), idle_interval=3600)
    venue.attach(engine)
    async with engine:
        if engine.live:
            await Worker.acted.wait()  # recovery: the replay reached the delegate
            await venue.start()  # then reconcile with the children it holds
        else:
            await venue.start()
            await engine.submit(exo.Order("BUY", SYMBOL[kind]))
        await Worker.done.wait()
        await venue.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    asyncio.run(main(KIND, sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]))
    Path(sys.argv[4]).touch()
    os._exit(0)
