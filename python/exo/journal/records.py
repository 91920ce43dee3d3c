"""What the journal keeps per live order, between the intake writer (which
numbers entries), the engine (which applies them) and the checkpoint writer
(which stores how far the delegate got)."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

__all__ = ["OrderRecord", "prefer_removal"]

log = logging.getLogger("exo.store")
_warned_snapshot: set[type] = set()


class OrderRecord:
    """One live order as the journal tracks it.

    ``next_seq`` is the seq the next entry gets; ``pending`` the seqs handed to
    the engine and not yet applied, in order; ``applied`` the seq of the last
    entry the delegate applied; ``written``/``written_state`` what the last
    checkpoint stored (the state encoded by the store's codec).
    """

    __slots__ = (
        "applied",
        "busy",
        "delegate",
        "keeps_state",
        "next_seq",
        "pending",
        "side",
        "symbol",
        "written",
        "written_state",
    )

    def __init__(self, side: Any, symbol: str, next_seq: int) -> None:
        self.side, self.symbol = side, symbol
        self.next_seq = next_seq
        self.pending: deque[int] = deque()
        self.applied = 0
        self.written = 0
        self.written_state: bytes | None = None
        self.delegate: Any = None
        self.keeps_state = False
        self.busy = False
        """An async action is in flight: the delegate is mid-way, no state now."""

    def attach(self, delegate: Any) -> None:
        """The delegate made for this order; it keeps a state if it has ``state()``."""
        self.delegate = delegate
        self.keeps_state = callable(getattr(delegate, "state", None))
        kind = type(delegate)
        if (
            not self.keeps_state
            and kind not in _warned_snapshot
            and callable(getattr(delegate, "snapshot", None))
        ):
            # The method was called snapshot() until the names were untangled (an
            # Update is the snapshot); a delegate still using it would lose its state.
            _warned_snapshot.add(kind)
            log.warning(
                "%s defines snapshot() but not state(): its saved state is not checkpointed. "
                "Rename snapshot() to state() (the factory keeps taking state=)",
                kind.__qualname__,
            )

    def consume(self, n: int) -> int:
        """The delegate applied the next ``n`` pending entries; returns how many
        were pending (fewer than ``n`` is a bug the caller logs)."""
        pending = self.pending
        n = min(n, len(pending))
        for _ in range(n):
            self.applied = pending.popleft()
        return n


def prefer_removal(existing: OrderRecord | None, new: OrderRecord | None) -> OrderRecord | None:
    """Conflation rule of the checkpoint queue: once an order is to be removed
    (None), it stays so."""
    return None if existing is None or new is None else new
