"""Journal: the engine's side of persistence, between ``exo.Engine`` and a Store.

The invariant: every instruction and report reaches the delegate exactly once
across restarts. So each is journaled (numbered ``seq`` per order) before it
enters the engine and before ``submit``/``report`` return; after each action
the order is marked dirty, and a background writer stores, per dirty order,
the seq of the last entry its delegate applied together with its
``snapshot()``, taken then: both as of the same moment, between actions.
Recovery restores the snapshot and replays the entries after that seq.

Two tasks talk to the store, both owned by the engine:

- the intake writer batches what ``submit``/``report`` queued into one store
  call, then hands the entries to the engine in journal order (so the order
  in which they were numbered is the order in which the delegate sees them);
- the checkpoint writer drains a ConflatingQueue keyed by order_id (newest
  wins; a completion wins over a checkpoint), so busy orders cost one write
  per writer cycle, not one per hand-over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from exo._core import EngineCore, MsgType, Update
from exo._core import Order as _OrderIdentity
from exo.queue import ConflatingQueue
from exo.store import INSTRUCTION, NEW, REPORT, Checkpoint, Entry, Store, StoreError, StoreUnavailable

__all__ = ["Journal", "new_order_id"]

log = logging.getLogger("exo.store")

_BATCH = 1024
"""Orders per checkpoint write; entries per journal write are not capped."""
_BACKOFF_MIN, _BACKOFF_MAX = 0.05, 2.0
_WAKE = 0
"""A key that is no order_id: pushed to wake the checkpoint writer on stop."""


def new_order_id() -> str:
    """A UUIDv7 in simple form, as the core makes them (time-ordered, unique)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62
    return f"{value | rand & (2**62 - 1):032x}"


class _Live:
    """What the journal keeps per live order."""

    __slots__ = (
        "applied",
        "busy",
        "delegate",
        "next_seq",
        "pending",
        "side",
        "snapshots",
        "symbol",
        "written",
        "written_state",
    )

    def __init__(self, side: Any, symbol: str, next_seq: int) -> None:
        self.side, self.symbol = side, symbol
        self.next_seq = next_seq
        self.pending: deque[int] = deque()  # seqs handed to the engine, not yet applied
        self.applied = 0  # seq of the last entry the delegate applied
        self.written = 0  # applied as of the last checkpoint written
        self.written_state: bytes | None = None
        self.delegate: Any = None
        self.snapshots = False  # the delegate has snapshot()
        self.busy = False  # an async action is in flight: no snapshot now


def _prefer_removal(existing: _Live | None, new: _Live | None) -> _Live | None:
    """Conflation rule: once an order is to be removed, it stays so."""
    return None if existing is None or new is None else new


class Journal:
    """Owned by one Engine while it runs. See the module doc."""

    def __init__(
        self,
        store: Store,
        factory: Callable[..., Any],
        report_error: Callable[[str, str], None],
    ) -> None:
        self.store = store
        self._factory = factory
        self._report_error = report_error
        self._orders: dict[str, _Live] = {}
        self._intake: list[tuple[Entry, asyncio.Future[Any], _Live]] = []
        self._intake_wake = asyncio.Event()
        self._intake_idle = asyncio.Event()
        self._intake_idle.set()
        self._doubt: list[Entry] = []  # written or not: undo once the store answers
        self._dirty = ConflatingQueue(_prefer_removal)
        self._core: EngineCore | None = None
        self._closing = False
        self._flushing = False  # flush() called: the checkpoint writer ends once drained
        self._tasks: list[asyncio.Task[None]] = []
        self._down_since: float | None = None
        self._last_warning = 0.0
        self.counters = {"journaled": 0, "checkpoints": 0, "store_failures": 0}

    # -- life cycle -------------------------------------------------------------

    async def start(self, core: EngineCore) -> None:
        """Recovers the live orders into ``core``, then starts the writers."""
        self._core = core
        t0 = time.perf_counter()
        order_ids = await self.store.live_orders()
        restored = replayed = 0
        for start in range(0, len(order_ids), 1000):
            for stored in await self.store.load(order_ids[start : start + 1000]):
                n = self._restore(core, stored)
                if n is not None:
                    restored += 1
                    replayed += n
        if order_ids:
            log.info(
                "recovered %d live order(s) from %r, replaying %d journal entries (%.3fs)",
                restored,
                self.store,
                replayed,
                time.perf_counter() - t0,
            )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._write_intake(), name="exo-journal"),
            loop.create_task(self._write_checkpoints(), name="exo-checkpoints"),
        ]

    def _restore(self, core: EngineCore, stored: Any) -> int | None:
        order = stored.order
        order_id: str = order.order_id
        state = None if stored.state is None else self.store.codec.loads(stored.state)
        try:
            delegate = self._factory(order) if state is None else self._factory(order, state=state)
        except TypeError as exc:
            if state is None:
                raise
            self._report_error(
                order_id,
                f"recovery: factory(order, state=...) raised {exc}; a delegate with snapshot() needs "
                "a factory that takes (order, state=None). The order stays in the store",
            )
            return None
        except Exception as exc:
            self._report_error(
                order_id,
                f"recovery: factory raised {type(exc).__name__}: {exc}; the order stays in the store",
            )
            return None
        rec = _Live(order.side, order.symbol, stored.last_seq + 1)
        rec.applied = rec.written = stored.applied
        rec.written_state = stored.state
        rec.delegate = delegate
        rec.snapshots = callable(getattr(delegate, "snapshot", None))
        rec.pending.extend(e.seq for e in stored.entries)
        instructions = [e.item for e in stored.entries if e.kind != REPORT]
        reports = [e.item for e in stored.entries if e.kind == REPORT]
        self._orders[order_id] = rec
        core.restore(order, delegate, instructions, reports)
        return len(stored.entries)

    async def close_intake(self, timeout: float) -> None:
        """No more submits; waits until what was queued is journaled and handed over."""
        self._closing = True
        try:
            await asyncio.wait_for(self._intake_idle.wait(), timeout)
        except asyncio.TimeoutError:
            log.error("stop: journal writes still pending after %ss", timeout)

    async def flush(self, timeout: float) -> None:
        """Writes every pending checkpoint and removal, then stops the writers."""
        self._closing = self._flushing = True
        self._dirty.push(_WAKE, None)
        self._intake_wake.set()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            log.error(
                "stop: %d order(s) not checkpointed within %ss (store unreachable?); "
                "their journals replay on the next start",
                len(self._dirty),
                timeout,
            )
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("journal writer failed", exc_info=task.exception())

    # -- intake -----------------------------------------------------------------

    def make_delegate(self, order: Any) -> Any:
        """The factory the core calls for a NEW: the user's, remembered here."""
        delegate = self._factory(order)
        rec = self._orders.get(order.order_id)
        if rec is not None:
            rec.delegate = delegate
            rec.snapshots = callable(getattr(delegate, "snapshot", None))
        return delegate

    def _check_open(self, what: str) -> EngineCore:
        if self._closing or self._core is None:
            raise RuntimeError(f"the engine is stopping: no more {what}")
        return self._core

    async def submit(self, order: Any) -> str | None:
        core = self._check_open("instructions")
        if not isinstance(order, _OrderIdentity) or not order.symbol:
            return core.submit(order)  # raises the core's TypeError/ValueError
        if order.msg_type == MsgType.NEW:
            if order.order_id is None:
                order.order_id = new_order_id()
            new_id: str = order.order_id
            if new_id in self._orders:
                self._report_error(
                    new_id,
                    f"order {new_id} is already live: NEW must create a new order; "
                    "send CANCEL or REPLACE to change it",
                )
                return None
            rec = self._orders[new_id] = _Live(order.side, order.symbol, 1)
            return await self._journal(rec, new_id, NEW, order)  # type: ignore[no-any-return]
        order_id = order.order_id
        live = self._orders.get(order_id) if order_id is not None else None
        if order_id is None or live is None or live.side != order.side or live.symbol != order.symbol:
            return core.submit(order)  # the core says what is wrong
        return await self._journal(live, order_id, INSTRUCTION, order)  # type: ignore[no-any-return]

    async def report(self, report: Any) -> bool:
        core = self._check_open("reports")
        order_id = getattr(report, "order_id", None)
        live = self._orders.get(order_id) if isinstance(order_id, str) else None
        if not isinstance(order_id, str) or live is None:
            return core.report(report)  # the core says what is wrong
        return await self._journal(live, order_id, REPORT, report)  # type: ignore[no-any-return]

    def _journal(self, rec: _Live, order_id: str, kind: str, item: Any) -> asyncio.Future[Any]:
        seq = rec.next_seq
        rec.next_seq += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._intake.append((Entry(order_id, seq, kind, item), fut, rec))
        self._intake_idle.clear()
        self._intake_wake.set()
        return fut

    async def _write_intake(self) -> None:
        backoff = 0.0
        while True:
            if not self._intake:
                self._intake_idle.set()
                if self._doubt:
                    # Undo unconfirmed writes as soon as the store answers,
                    # not only when the next submit comes.
                    try:
                        await self.store.discard(self._doubt)
                        self._doubt.clear()
                        backoff = 0.0
                        self._recovered()
                    except Exception as exc:
                        self._failed(exc, "undoing unconfirmed journal writes")
                        if self._closing:
                            return
                        backoff = min(_BACKOFF_MAX, max(_BACKOFF_MIN, backoff * 2))
                        self._intake_wake.clear()
                        try:
                            await asyncio.wait_for(self._intake_wake.wait(), backoff)
                        except asyncio.TimeoutError:
                            pass
                        continue
                if self._closing:
                    return
                self._intake_wake.clear()
                await self._intake_wake.wait()
                continue
            batch, self._intake = self._intake, []
            entries = [e for e, _, _ in batch]
            try:
                if self._doubt:
                    await self.store.discard(self._doubt)
                    self._doubt.clear()
                written = await self.store.append(entries)
            except Exception as exc:
                self._failed(exc, "journal write")
                self._doubt.extend(entries)
                failure = StoreUnavailable(
                    f"{exc}; the instruction or report was not journaled and not delivered: "
                    "send it again once the store is back"
                )
                for e, fut, rec in batch:
                    if e.kind == NEW and self._orders.get(e.order_id) is rec:
                        del self._orders[e.order_id]
                    if not fut.done():
                        fut.set_exception(failure)
                continue
            self._recovered()
            self.counters["journaled"] += len(entries)
            for (e, fut, rec), ok in zip(batch, written):
                self._hand_over(e, fut, rec, ok)

    def _hand_over(self, e: Entry, fut: asyncio.Future[Any], rec: _Live, ok: bool) -> None:
        """Gives a journaled entry to the engine and the caller its result."""
        core = self._core
        assert core is not None
        result: Any
        if not ok and core.is_live(e.order_id):
            # Its keys vanished from the store while it is live here: an entry
            # the journal cannot hold must not reach the delegate.
            what = "report" if e.kind == REPORT else "instruction"
            self._report_error(
                e.order_id, f"order {e.order_id} is no longer in {self.store!r}; the {what} was not delivered"
            )
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
            self._dirty.push(e.order_id, None)
        if fut.done():
            return
        if isinstance(result, Exception):
            fut.set_exception(result)
        else:
            fut.set_result(result)

    # -- after actions -----------------------------------------------------------

    def applied(self, items: list[tuple[str, Any, Update, bool]]) -> None:
        """EngineCore's on_applied: a batch of sync actions returned."""
        orders, push = self._orders, self._dirty.push
        for order_id, _delegate, update, done in items:
            rec = orders.get(order_id)
            if rec is None:
                continue
            n = len(update.instructions) + len(update.reports)
            if n:
                self._consume(rec, order_id, n)
            if done:
                del orders[order_id]
                push(order_id, None)
            elif n or rec.snapshots:
                push(order_id, rec)

    def _consume(self, rec: _Live, order_id: str, n: int) -> None:
        pending = rec.pending
        if len(pending) < n:
            log.error("order %s: %d entries applied but %d journaled (bug)", order_id, n, len(pending))
            n = len(pending)
        for _ in range(n):
            rec.applied = pending.popleft()

    def action_started(self, order_id: str) -> None:
        """An async action is in flight: the delegate is mid-way, no snapshot now."""
        rec = self._orders.get(order_id)
        if rec is not None:
            rec.busy = True

    def action_finished(self, order_id: str, update: Update, done: bool) -> None:
        """An async action returned (or raised: its Update counts as applied)."""
        rec = self._orders.get(order_id)
        if rec is None:
            return
        rec.busy = False
        self.applied([(order_id, rec.delegate, update, done)])

    async def _write_checkpoints(self) -> None:
        backoff = 0.0
        dumps = self.store.codec.dumps
        while True:
            first = self._dirty.pop()
            if first is None:
                # Not on _closing: async actions still finishing after intake
                # closed must get their checkpoints (flush comes after them).
                if self._flushing:
                    return
                first = await self._dirty.get()
            batch: list[tuple[Any, _Live | None]] = [first]
            while len(batch) < _BATCH:
                item = self._dirty.pop()
                if item is None:
                    break
                batch.append(item)
            checkpoints: list[Checkpoint] = []
            written: list[tuple[_Live, int, bytes | None]] = []
            removals: list[str] = []
            for order_id, maybe in batch:
                if order_id == _WAKE:
                    continue
                if maybe is None:
                    removals.append(order_id)
                    continue
                rec = maybe
                if rec.busy or self._orders.get(order_id) is not rec:
                    continue
                state = None
                if rec.snapshots:
                    try:
                        state = dumps(rec.delegate.snapshot())
                    except Exception as exc:
                        self._report_error(
                            order_id,
                            f"snapshot() raised {type(exc).__name__}: {exc}; checkpoint not written "
                            "(the journal still has everything since the last one)",
                        )
                        continue
                if rec.applied == rec.written and state == rec.written_state:
                    continue
                checkpoints.append(Checkpoint(order_id, rec.applied, state))
                written.append((rec, rec.applied, state))
            try:
                if checkpoints:
                    await self.store.checkpoint(checkpoints)
                if removals:
                    await self.store.remove(removals)
            except Exception as exc:
                self._failed(exc, "checkpoint write")
                for order_id, maybe in batch:
                    if order_id != _WAKE and (maybe is None or self._orders.get(order_id) is maybe):
                        self._dirty.push(order_id, maybe)
                backoff = min(_BACKOFF_MAX, max(_BACKOFF_MIN, backoff * 2))
                await asyncio.sleep(backoff)
                continue
            backoff = 0.0
            self._recovered()
            self.counters["checkpoints"] += len(checkpoints)
            for rec, applied, state in written:
                rec.written, rec.written_state = applied, state

    # -- store health -------------------------------------------------------------

    def _failed(self, exc: BaseException, what: str) -> None:
        self.counters["store_failures"] += 1
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        if now - self._last_warning >= 5.0:
            self._last_warning = now
            kind = "unreachable" if isinstance(exc, StoreUnavailable) else "failing"
            log.warning(
                "store %s (%s failed: %s); market data and delegates carry on, checkpoints are "
                "retried with backoff, submit/report raise StoreUnavailable until it is back",
                kind,
                what,
                exc if isinstance(exc, StoreError) else repr(exc),
            )

    def _recovered(self) -> None:
        if self._down_since is not None:
            log.warning("store back after %.1fs", time.monotonic() - self._down_since)
            self._down_since = None
            self._last_warning = 0.0

    @property
    def healthy(self) -> bool:
        """False from a failed store write until the next one succeeds."""
        return self._down_since is None

    def live_records(self) -> Sequence[str]:
        """Order ids the journal tracks (for tests and diagnostics)."""
        return list(self._orders)
