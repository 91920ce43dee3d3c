"""Recovery: a store's live orders back into the engine, each with its
delegate's saved state and the journal entries it has not applied yet.

Child order requests journaled after the checkpoint (kind ``REQUEST``: sent,
or about to be, when the process died) are not entries for the delegate: they
go to the delegate's ``resume_requests(requests)`` before its first replayed
action. A venue's delegate wrapper (``exo.venues.base``) has it: it puts each
child the saved state misses back into the delegate's children and routes its
cl_ord_id, so the venue is asked about it (reconciliation) instead of the live
order being forgotten, and a replayed action does not send it again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from exo._core import LoopRunner
from exo.journal.records import OrderRecord
from exo.store import REPORT, REQUEST, Store, StoredOrder

__all__ = ["recover", "restore_one"]

log = logging.getLogger("exo.store")

_LOAD_BATCH = 1000
"""Orders per ``Store.load`` call."""


async def recover(
    store: Store,
    factory: Callable[..., Any],
    report_error: Callable[[str, str], None],
    core: LoopRunner,
    orders: dict[str, OrderRecord],
) -> None:
    """Restores every live order of ``store`` into ``core`` and tracks it in
    ``orders``. A delegate with a saved state is made with
    ``factory(order, state=state)``, one without with ``factory(order)``. An
    order whose delegate cannot be made is reported to ``report_error`` and
    stays in the store for a fixed factory; the others carry on."""
    t0 = time.perf_counter()
    order_ids = await store.live_orders()
    restored = replayed = 0
    for start in range(0, len(order_ids), _LOAD_BATCH):
        for stored in await store.load(order_ids[start : start + _LOAD_BATCH]):
            n = restore_one(store, factory, report_error, core, orders, stored)
            if n is not None:
                restored += 1
                replayed += n
    if order_ids:
        log.info(
            "recovered %d live order(s) from %r, replaying %d journal entries (%.3fs)",
            restored,
            store,
            replayed,
            time.perf_counter() - t0,
        )


def restore_one(
    store: Store,
    factory: Callable[..., Any],
    report_error: Callable[[str, str], None],
    core: LoopRunner,
    orders: dict[str, OrderRecord],
    stored: StoredOrder,
) -> int | None:
    """One order; returns how many entries it replays, None when it was not restored."""
    order = stored.order
    order_id: str = order.order_id
    state = None if stored.state is None else store.decode(stored.state)
    try:
        delegate = factory(order) if state is None else factory(order, state=state)
    except TypeError as exc:
        if state is None:
            raise
        report_error(
            order_id,
            f"recovery: factory(order, state=...) raised {exc}; a delegate with state() needs "
            "a factory that takes (order, state=None). The order stays in the store",
        )
        return None
    except Exception as exc:
        report_error(
            order_id,
            f"recovery: factory raised {type(exc).__name__}: {exc}; the order stays in the store",
        )
        return None
    rec = OrderRecord(order.side, order.symbol, stored.last_seq + 1)
    rec.applied = rec.written = stored.applied
    rec.written_state = stored.state
    rec.attach(delegate)
    entries = [e for e in stored.entries if e.kind != REQUEST]
    requests = [e.item for e in stored.entries if e.kind == REQUEST]
    if requests:
        _resume_requests(delegate, order_id, requests, report_error)
    rec.pending.extend(e.seq for e in entries)
    instructions = [e.item for e in entries if e.kind != REPORT]
    reports = [e.item for e in entries if e.kind == REPORT]
    orders[order_id] = rec
    core.restore(order, delegate, instructions, reports)
    return len(entries)


def _resume_requests(
    delegate: Any, order_id: str, requests: list[Any], report_error: Callable[[str, str], None]
) -> None:
    """Hands the order's journaled child requests to its delegate (see the module doc)."""
    resume = getattr(delegate, "resume_requests", None)
    if resume is None:
        report_error(
            order_id,
            f"recovery: {len(requests)} child order request(s) were journaled before the restart "
            f"({', '.join(str(getattr(r, 'cl_ord_id', '?')) for r in requests[:5])}) but the "
            "delegate has no venue to resume them: make it with venue.delegates(factory)",
        )
        return
    try:
        resume(requests)
    except Exception as exc:
        report_error(order_id, f"recovery: resume_requests raised {type(exc).__name__}: {exc}")
