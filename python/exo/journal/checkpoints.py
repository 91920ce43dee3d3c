"""The checkpoint writer: how far each order's delegate got, with its state.

After each action the order is marked dirty in a ConflatingQueue keyed by
order_id (newest wins; a completion wins over a checkpoint), so a busy order
costs one write per writer cycle, not one per hand-over. The writer stores,
per dirty order, the seq of the last entry its delegate applied together with
its ``state()``, taken then: both as of the same moment, between actions. A
completed order is removed from the store instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from exo._core import Update
from exo.journal.health import StoreHealth
from exo.journal.records import OrderRecord, prefer_removal
from exo.queue import ConflatingQueue
from exo.store import Checkpoint, Store

__all__ = ["CheckpointWriter"]

log = logging.getLogger("exo.store")

_BATCH = 1024
"""Orders per checkpoint write."""
_WAKE = 0
"""A key that is no order_id: pushed to wake the writer on stop."""


class CheckpointWriter:
    """Owned by a JournaledIntake; ``applied`` is the core's ``on_applied``."""

    def __init__(
        self,
        store: Store,
        orders: dict[str, OrderRecord],
        health: StoreHealth,
        report_error: Callable[[str, str], None],
    ) -> None:
        self._store = store
        self._orders = orders
        self._health = health
        self._report_error = report_error
        self._dirty = ConflatingQueue(prefer_removal)
        self._closing = False

    def __len__(self) -> int:
        """Orders waiting for a checkpoint or a removal."""
        return len(self._dirty)

    def start(self) -> asyncio.Task[None]:
        """Starts the writer task."""
        return asyncio.get_running_loop().create_task(self._run(), name="exo-checkpoints")

    def wake(self) -> None:
        """Lets the writer write what is dirty, then return."""
        self._closing = True
        self._dirty.push(_WAKE, None)

    def remove(self, order_id: str) -> None:
        """Removes the order from the store (it completed, or never started)."""
        self._dirty.push(order_id, None)

    def applied(self, items: list[tuple[str, Any, Update, bool]]) -> None:
        """The core's on_applied: ``(order_id, delegate, update, done)`` for a
        batch of actions that returned (or raised: their Updates count as
        applied)."""
        orders, push = self._orders, self._dirty.push
        for order_id, _delegate, update, done in items:
            rec = orders.get(order_id)
            if rec is None:
                continue
            n = len(update.instructions) + len(update.reports)
            if n and rec.consume(n) < n:
                log.error("order %s: %d entries applied but fewer journaled (bug)", order_id, n)
            if done:
                del orders[order_id]
                push(order_id, None)
            elif n or rec.keeps_state:
                push(order_id, rec)

    async def _run(self) -> None:
        backoff = StoreHealth.backoff()
        while True:
            first = self._dirty.pop()
            if first is None:
                if self._closing:
                    return
                first = await self._dirty.get()
            batch: list[tuple[Any, OrderRecord | None]] = [first]
            while len(batch) < _BATCH:
                item = self._dirty.pop()
                if item is None:
                    break
                batch.append(item)
            checkpoints, written, removals = self._prepare(batch)
            try:
                if checkpoints:
                    await self._store.checkpoint(checkpoints)
                if removals:
                    await self._store.remove(removals)
            except Exception as exc:
                self._health.failed(exc, "checkpoint write")
                for order_id, maybe in batch:
                    if order_id != _WAKE and (maybe is None or self._orders.get(order_id) is maybe):
                        self._dirty.push(order_id, maybe)
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            self._health.succeeded()
            self._health.counters["checkpoints"] += len(checkpoints)
            for rec, applied, state in written:
                rec.written, rec.written_state = applied, state

    def _prepare(
        self, batch: list[tuple[Any, OrderRecord | None]]
    ) -> tuple[list[Checkpoint], list[tuple[OrderRecord, int, bytes | None]], list[str]]:
        """What to write for a batch: checkpoints (with what each records),
        removals. Orders mid-action or unchanged since their last checkpoint
        are skipped."""
        checkpoints: list[Checkpoint] = []
        written: list[tuple[OrderRecord, int, bytes | None]] = []
        removals: list[str] = []
        for order_id, rec in batch:
            if order_id == _WAKE:
                continue
            if rec is None:
                removals.append(order_id)
                continue
            if rec.busy or self._orders.get(order_id) is not rec:
                continue
            state = None
            if rec.keeps_state:
                try:
                    state = self._store.encode(rec.delegate.state())
                except Exception as exc:
                    self._report_error(
                        order_id,
                        f"state() raised {type(exc).__name__}: {exc}; checkpoint not written "
                        "(the journal still has everything since the last one)",
                    )
                    continue
            if rec.applied == rec.written and state == rec.written_state:
                continue
            checkpoints.append(Checkpoint(order_id, rec.applied, state))
            written.append((rec, rec.applied, state))
        return checkpoints, written, removals
