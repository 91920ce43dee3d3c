"""Recovery: a store's live orders back into the engine, each with its
delegate's saved state and the journal entries it has not applied yet."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from exo._core import LoopRunner
from exo.journal.records import OrderRecord
from exo.store import REPORT, Store, StoredOrder

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
    rec.pending.extend(e.seq for e in stored.entries)
    instructions = [e.item for e in stored.entries if e.kind != REPORT]
    reports = [e.item for e in stored.entries if e.kind == REPORT]
    orders[order_id] = rec
    core.restore(order, delegate, instructions, reports)
    return len(stored.entries)
