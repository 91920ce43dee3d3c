"""Journal: the engine's side of persistence, between ``exo.Engine`` and a Store.

The invariant: every instruction and report reaches the delegate exactly once
across restarts. So each is journaled (numbered ``seq`` per order) before it
enters the engine and before ``submit``/``report`` return; after each action
the order is marked dirty, and a background writer stores, per dirty order,
the seq of the last entry its delegate applied together with its ``state()``,
taken then: both as of the same moment, between actions. Recovery restores
the state and replays the entries after that seq.

One concept per module:

- ``exo.journal.recovery``: a store's live orders back into the engine;
- ``exo.journal.intake``: the intake writer (journal, then hand over);
- ``exo.journal.checkpoints``: the checkpoint writer;
- ``exo.journal.records``: what is tracked per live order;
- ``exo.journal.health``: store failures, warnings and retry delays.

``JournaledIntake`` puts them together as the engine's intake (``exo.intake``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from exo._core import LoopRunner, Update
from exo.intake import Intake
from exo.journal.checkpoints import CheckpointWriter
from exo.journal.health import StoreHealth
from exo.journal.intake import IntakeWriter
from exo.journal.records import OrderRecord
from exo.journal.recovery import recover, restore_one
from exo.store import Store, StoredOrder

__all__ = ["JournaledIntake"]

log = logging.getLogger("exo.store")


class JournaledIntake(Intake):
    """The intake of an engine with a store. See the module doc."""

    def __init__(
        self, store: Store, factory: Callable[..., Any], report_error: Callable[[str, str], None]
    ) -> None:
        super().__init__(self._make_delegate)
        self.store = store
        self._user_factory = factory
        self._report_error = report_error
        self._orders: dict[str, OrderRecord] = {}
        self._health = StoreHealth()
        self._checkpoints = CheckpointWriter(store, self._orders, self._health, report_error)
        self._intake = IntakeWriter(store, self._orders, self._health, report_error, self._checkpoints.remove)
        self.on_applied = self._checkpoints.applied
        self._tasks: list[asyncio.Task[None]] = []

    def _make_delegate(self, order: Any) -> Any:
        """The factory the core calls for a NEW: the user's, remembered here."""
        delegate = self._user_factory(order)
        rec = self._orders.get(order.order_id)
        if rec is not None:
            rec.attach(delegate)
        return delegate

    async def open(self) -> None:
        """Opens the store (``StoreUnavailable`` says why it cannot)."""
        await self.store.open()

    async def start(self, core: LoopRunner) -> None:
        """Recovers the store's live orders into ``core``, then starts the writers."""
        await super().start(core)
        await recover(self.store, self._user_factory, self._report_error, core, self._orders)
        self._tasks = [self._intake.start(core), self._checkpoints.start()]

    def restore(self, stored: StoredOrder) -> int | None:
        """One more order into the running engine, exactly as recovery on start
        does (scale-out: an order claimed from an engine that died). Returns the
        entries it replays, None when its delegate could not be made."""
        return restore_one(
            self.store, self._user_factory, self._report_error, self._running(), self._orders, stored
        )

    def forget(self, order_id: str) -> None:
        """The order is not this engine's any more (scale-out: another engine
        may own it now): nothing more is checkpointed or removed for it from
        here (a removal written once this engine owned the order again, under
        the new epoch, would delete the live order). It stays in the core
        until its delegate returns True; the caller sees to that."""
        self._orders.pop(order_id, None)

    async def submit(self, order: Any) -> str | None:
        return await self._intake.submit(order)

    async def report(self, report: Any) -> bool:
        return await self._intake.report(report)

    keeps_requests = True

    async def request(self, request: Any) -> bool:
        return await self._intake.request(request)

    async def close_intake(self, timeout: float) -> None:
        await self._intake.close(timeout)

    async def finish(self, timeout: float) -> None:
        """Writes every pending checkpoint and removal, stops the writers, closes the store."""
        self._intake.wake()
        self._checkpoints.wake()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
                log.error(
                    "stop: %d order(s) not checkpointed within %ss (store unreachable?); "
                    "their journals replay on the next start",
                    len(self._checkpoints),
                    timeout,
                )
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("journal writer failed", exc_info=task.exception())
        await self.store.close()

    def action_started(self, order_id: str) -> None:
        """The delegate is mid-way through an async action: no ``state()`` now."""
        rec = self._orders.get(order_id)
        if rec is not None:
            rec.busy = True

    def action_finished(self, order_id: str, update: Update, done: bool) -> None:
        """Its Update counts as applied (also when the action raised)."""
        rec = self._orders.get(order_id)
        if rec is None:
            return
        rec.busy = False
        self._checkpoints.applied([(order_id, rec.delegate, update, done)])

    def stats(self) -> dict[str, int]:
        """Entries journaled, checkpoints written, store failures."""
        return dict(self._health.counters)
