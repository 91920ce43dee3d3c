"""The intake writer: ``submit``/``report`` through the journal.

Each accepted instruction or report is numbered (``seq``, per order; the NEW
is 1) and queued; one task writes what is queued in one store call, then
hands the entries to the engine in journal order, so the order in which they
were numbered is the order in which the delegate sees them. The caller's
``submit``/``report`` returns once its entry is journaled and handed over.

``request`` journals a child order's request the same way (kind ``REQUEST``)
before a venue sends it; it is never handed to the engine: recovery gives it
back to the venue layer (``exo.journal.recovery``).

A write that fails leaves its entries in doubt (written or not): they are
undone (``Store.discard``) as soon as the store answers again, and the callers
get ``StoreUnavailable``: nothing was delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from exo._core import LoopRunner, MsgType
from exo._core import Order as _CoreOrder
from exo._corelink import accepts, new_order_id
from exo.journal.health import StoreHealth
from exo.journal.records import OrderRecord
from exo.store import INSTRUCTION, NEW, REPORT, REQUEST, Entry, Store, StoreUnavailable

__all__ = ["IntakeWriter"]

log = logging.getLogger("exo.store")


class IntakeWriter:
    """Owned by a JournaledIntake. ``forget(order_id)`` is called for a NEW
    that was journaled but created no order, so that its keys are removed."""

    def __init__(
        self,
        store: Store,
        orders: dict[str, OrderRecord],
        health: StoreHealth,
        report_error: Callable[[str, str], None],
        forget: Callable[[str], None],
    ) -> None:
        self._store = store
        self._orders = orders
        self._health = health
        self._report_error = report_error
        self._forget = forget
        self._core: LoopRunner | None = None
        self._queue: list[tuple[Entry, asyncio.Future[Any], OrderRecord]] = []
        self._unsettled: dict[str, asyncio.Future[Any]] = {}  # NEWs queued, not handed over yet
        self._doubt: list[Entry] = []  # written or not: undo once the store answers
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.closing = False

    def start(self, core: LoopRunner) -> asyncio.Task[None]:
        """Starts the writer task, which hands entries to ``core``."""
        self._core = core
        return asyncio.get_running_loop().create_task(self._run(), name="exo-journal")

    async def close(self, timeout: float) -> None:
        """No more submits; waits up to ``timeout`` seconds until what was
        queued is journaled and handed over."""
        self.closing = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            log.error("stop: journal writes still pending after %ss", timeout)

    def wake(self) -> None:
        """Lets the writer see ``closing`` and return."""
        self.closing = True
        self._wake.set()

    # -- submit / report ----------------------------------------------------------

    def _open(self, what: str) -> LoopRunner:
        if self.closing or self._core is None:
            raise RuntimeError(f"the engine is stopping: no more {what}")
        return self._core

    async def _settled(self, order_id: str, what: str) -> LoopRunner:
        """Waits until no NEW of ``order_id`` is between the journal and the
        engine, so the core knows every order the journal does."""
        while (waiting := self._unsettled.get(order_id)) is not None:
            await asyncio.wait([waiting])
        return self._open(what)

    async def submit(self, order: Any) -> str | None:
        """``Engine.submit`` with a store: see there."""
        core = self._open("instructions")
        if not isinstance(order, _CoreOrder) or not order.symbol:
            return core.submit(order)  # raises the core's TypeError/ValueError
        if order.msg_type == MsgType.NEW and order.order_id is None:
            order.order_id = new_order_id()
        order_id = order.order_id
        if order_id is None:
            return core.submit(order)  # the core says what is wrong
        core = await self._settled(order_id, "instructions")
        rec = self._orders.get(order_id)
        if not accepts(core, order, None if rec is None else (rec.side, rec.symbol)):
            return core.submit(order)  # refused by the core, in its words
        if order.msg_type == MsgType.NEW:
            rec = self._orders[order_id] = OrderRecord(order.side, order.symbol, 1)
            fut = self._unsettled[order_id] = self._enqueue(rec, order_id, NEW, order)
            return await fut  # type: ignore[no-any-return]
        assert rec is not None
        return await self._enqueue(rec, order_id, INSTRUCTION, order)  # type: ignore[no-any-return]

    async def report(self, report: Any) -> bool:
        """``Engine.report`` with a store: see there."""
        core = self._open("reports")
        order_id = getattr(report, "order_id", None)
        if not isinstance(order_id, str):
            return core.report(report)  # raises the core's TypeError
        core = await self._settled(order_id, "reports")
        rec = self._orders.get(order_id)
        if rec is None:
            return core.report(report)  # refused by the core, in its words
        return await self._enqueue(rec, order_id, REPORT, report)  # type: ignore[no-any-return]

    async def request(self, request: Any) -> bool:
        """Journals a child order's request (``exo.child.Request``) for its
        parent ``request.order_id``; returns once it is durable: True, or
        False when the parent is not live here (nothing to recover it with).
        Raises ``StoreUnavailable`` when the store cannot take it (then it
        must not be sent) and RuntimeError once the engine is stopping."""
        order_id = request.order_id
        await self._settled(order_id, "requests")
        rec = self._orders.get(order_id)
        if rec is None:
            return False
        return await self._enqueue(rec, order_id, REQUEST, request)  # type: ignore[no-any-return]

    def _enqueue(self, rec: OrderRecord, order_id: str, kind: str, item: Any) -> asyncio.Future[Any]:
        seq = rec.next_seq
        rec.next_seq += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((Entry(order_id, seq, kind, item), fut, rec))
        self._idle.clear()
        self._wake.set()
        return fut

    # -- the writer task ------------------------------------------------------------

    async def _run(self) -> None:
        backoff = StoreHealth.backoff()
        while True:
            # Cleared before the queue is looked at, never after an await: an
            # entry queued while the writer awaits the store (undoing entries
            # in doubt, say) sets it again, so the writer looks once more
            # instead of sleeping over it. Cleared after the undo, that
            # wake-up was lost: the entry, and its caller, waited for ever
            # (a venue's report sender with them, and every report behind it).
            self._wake.clear()
            if not self._queue:
                self._idle.set()
                if self._doubt:
                    # Undo unconfirmed writes as soon as the store answers,
                    # not only when the next submit comes.
                    try:
                        await self._store.discard(self._doubt)
                        self._doubt.clear()
                        backoff.reset()
                        self._health.succeeded()
                    except Exception as exc:
                        self._health.failed(exc, "undoing unconfirmed journal writes")
                        if self.closing:
                            return
                        try:
                            await asyncio.wait_for(self._wake.wait(), backoff.next())
                        except asyncio.TimeoutError:
                            pass
                    continue  # look again: entries may have come meanwhile
                if self.closing:
                    return
                await self._wake.wait()
                continue
            batch, self._queue = self._queue, []
            entries = [e for e, _, _ in batch]
            try:
                if self._doubt:
                    await self._store.discard(self._doubt)
                    self._doubt.clear()
                written = await self._store.append(entries)
            except Exception as exc:
                self._health.failed(exc, "journal write")
                self._doubt.extend(entries)
                failure = StoreUnavailable(
                    f"{exc}; the instruction or report was not journaled and not delivered: "
                    "send it again once the store is back"
                )
                for e, fut, rec in batch:
                    if e.kind == NEW and self._orders.get(e.order_id) is rec:
                        del self._orders[e.order_id]
                    self._settle(e, fut, failure)
                continue
            self._health.succeeded()
            self._health.counters["journaled"] += len(entries)
            for (e, fut, rec), ok in zip(batch, written, strict=False):
                self._hand_over(e, fut, rec, ok)

    def _hand_over(self, e: Entry, fut: asyncio.Future[Any], rec: OrderRecord, ok: bool) -> None:
        """Gives a journaled entry to the engine and the caller its result."""
        if e.kind == REQUEST:
            self._settle(e, fut, ok)  # the venue's, not the delegate's: not handed over
            return
        core = self._core
        assert core is not None
        result: Any
        if e.kind == NEW and not ok:
            # The store did not write the NEW (a fenced store: another engine
            # acquired the order since, or it was journaled before): it must
            # not start here unjournaled, and what the store holds for it is
            # not this engine's to remove.
            if self._orders.get(e.order_id) is rec:
                del self._orders[e.order_id]
            self._report_error(
                e.order_id, f"the NEW was not journaled ({self._store!r} refused it); not started here"
            )
            self._settle(e, fut, None)
            return
        if not ok and self._store.was_duplicate(e):
            # Delivered twice (at-least-once intake): journaled and applied
            # once already; the store said so in its log. Nothing to deliver.
            result = False if e.kind == REPORT else None
        elif not ok and core.is_live(e.order_id):
            # Its keys vanished from the store while it is live here: an entry
            # the journal cannot hold must not reach the delegate.
            what = "report" if e.kind == REPORT else "instruction"
            gone = f"order {e.order_id} is no longer in {self._store!r}; the {what} was not delivered"
            self._report_error(e.order_id, gone)
            result = False if e.kind == REPORT else None
        else:
            try:
                result = core.report(e.item) if e.kind == REPORT else core.submit(e.item)
            except Exception as exc:  # e.g. the factory raised for a NEW
                result = exc
        accepted = result is not None and result is not False and not isinstance(result, Exception)
        if accepted and ok:
            rec.pending.append(e.seq)
        elif e.kind == NEW:
            # Journaled but no order came of it: forget it here and in the store.
            if self._orders.get(e.order_id) is rec:
                del self._orders[e.order_id]
            self._forget(e.order_id)
        self._settle(e, fut, result)

    def _settle(self, e: Entry, fut: asyncio.Future[Any], result: Any) -> None:
        if e.kind == NEW and self._unsettled.get(e.order_id) is fut:
            del self._unsettled[e.order_id]
        if fut.done():
            return
        if isinstance(result, BaseException):
            fut.set_exception(result)
        else:
            fut.set_result(result)
