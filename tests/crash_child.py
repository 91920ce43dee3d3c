"""The process test_crash.py kills: an engine on Redis driving ORDERS orders
through ITEMS instructions and reports, resuming whatever a previous (killed)
run left in Redis.

    python crash_child.py <redis-url> <ack-file>

Item j goes to order j % ORDERS: a REPLACE (n=j) when j is even, else a
PARTIALLY_FILLED report for quantity 1 (text=j). After recovery has replayed
the journal, the run sends every item no delegate has seen yet, appending
"<j>" to the ack file once submit/report returned. When all are applied it
stops the engine (a graceful stop, leaving a checkpoint) and prints DONE.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from decimal import Decimal
from typing import Any

import exo

ORDERS = 1000
ITEMS = 10_000
SYMBOLS = [f"S{k}" for k in range(10)]
WINDOW = 100


class Tally:
    """State: the items applied, in order, and the filled quantity."""

    first_actions = 0
    total = 0  # items in every delegate's state
    wake = asyncio.Event()

    def __init__(self, order: exo.Order, state: dict[str, Any] | None = None) -> None:
        self.seen: list[int] = list(state["seen"]) if state else []
        self.filled = Decimal(state["filled"]) if state else Decimal(0)
        self.is_restored = state is not None
        self.acted = False
        Tally.total += len(self.seen)

    def action(self, update: exo.Update) -> bool:
        before = len(self.seen)
        for i in update.instructions:
            if i.msg_type == exo.MsgType.REPLACE:
                self.seen.append(i.n)
        for r in update.reports:
            self.seen.append(int(r.text))
            self.filled += r.last_qty
        Tally.total = Tally.total - before + len(self.seen)
        if not self.acted:
            self.acted = True
            Tally.first_actions += 1
        Tally.wake.set()
        return False

    def state(self) -> dict[str, Any]:
        return {"seen": self.seen, "filled": str(self.filled)}


def order_id(k: int) -> str:
    return f"o{k:04d}"


async def wait_for(predicate: Any) -> None:
    while not predicate():
        Tally.wake.clear()
        await Tally.wake.wait()


async def main(url: str, ack_path: str) -> None:
    delegates: dict[str, Tally] = {}

    def factory(order: exo.Order, state: dict[str, Any] | None = None) -> Tally:
        d = delegates[order.order_id or ""] = Tally(order, state)
        return d

    ack = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    async with exo.Engine(factory, store=exo.RedisStore(url), idle_interval=30) as engine:
        # Recovery: every restored order gets its replay as its first Update.
        restored = engine.live
        await wait_for(lambda: Tally.first_actions >= restored)
        print(f"RECOVERED {restored}", flush=True)
        for k in range(ORDERS):
            if order_id(k) not in delegates:
                await engine.submit(exo.Order("BUY", SYMBOLS[k % len(SYMBOLS)], order_id=order_id(k)))
        print("READY", flush=True)
        seen = {j for d in delegates.values() for j in d.seen}
        todo = [j for j in range(ITEMS) if j not in seen]

        async def send(j: int) -> None:
            oid = order_id(j % ORDERS)
            if j % 2 == 0:
                sym = SYMBOLS[(j % ORDERS) % len(SYMBOLS)]
                await engine.submit(exo.Order("BUY", sym, "REPLACE", oid, n=j))
            else:
                await engine.report(exo.Report(oid, "PARTIALLY_FILLED", "1", "100", text=str(j)))
            os.write(ack, f"{j}\n".encode())

        for start in range(0, len(todo), WINDOW):
            await asyncio.gather(*(send(j) for j in todo[start : start + WINDOW]))
            for sym in SYMBOLS:
                engine.quote(exo.Quote(sym, "99", "1", "101", "1"))
        await wait_for(lambda: Tally.total >= ITEMS)
    os.close(ack)
    everything = sorted(j for d in delegates.values() for j in d.seen)
    assert everything == list(range(ITEMS)), "in-memory state differs from the plan"
    print("DONE", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
