"""Store: where the engine journals orders, instructions and reports, and
checkpoints each order's progress, so that a restart resumes every live order.

The invariant: an order's journal holds every instruction and report accepted
for it, in arrival order, numbered 1, 2, 3 ... (``seq``; the NEW is 1); its
checkpoint says up to which ``seq`` the delegate has applied them, together
with the delegate's own state as of that point, written in one atomic step.
Recovery = the state from the checkpoint, then the entries after it.

Two stores ship with exo:

- ``MemoryStore()``: in-process dicts. No durability: it survives an engine
  restart inside the same process (pass the same instance again), never a
  crash.
- ``RedisStore(url)`` (``exo.redis_store``): Redis, durable as Redis is
  configured to be (use AOF, ``appendfsync everysec`` or ``always``).

An engine keeps no store unless given one (``Engine(store=None)``, the
default): then nothing is journaled and live orders end with the engine.

Values are encoded with a codec, ``pickle`` by default: whoever can write to
the store can run code in the engine, so the store's content is trusted, as
the engine's own code is. Pass ``codec=`` with ``dumps``/``loads`` to change it.
The store owns the codec: every value, the journal's items and the delegates'
states alike, is encoded by ``Store.encode`` and decoded by ``Store.decode``.
"""

from __future__ import annotations

import logging
import pickle
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "Checkpoint",
    "Codec",
    "Entry",
    "MemoryStore",
    "PickleCodec",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredOrder",
]

log = logging.getLogger("exo.store")

NEW, INSTRUCTION, REPORT, REQUEST = "n", "i", "r", "q"
"""Journal entry kinds: the NEW that created the order, a CANCEL/REPLACE, a
report, and a child order's request (New/Replace/Cancel with its cl_ord_id)
journaled before it left for the venue. A REQUEST is not handed to the
delegate as an entry: recovery gives it back to the venue layer, which puts the
child back in the delegate's children and asks the venue about it."""


class StoreError(RuntimeError):
    """The store refused or failed an operation."""


class StoreUnavailable(StoreError):
    """The store cannot be reached. For ``submit``/``report`` this means the
    instruction or report was not journaled and not delivered: send it again
    once the store is back."""


class Codec(Protocol):
    """Turns stored values into bytes and back (``pickle`` fits)."""

    def dumps(self, obj: Any, /) -> bytes: ...

    def loads(self, data: bytes, /) -> Any: ...


class PickleCodec:
    """The default codec: pickle, highest protocol. exo's market types pickle
    exactly (identity, Decimals and your own fields)."""

    def dumps(self, obj: Any, /) -> bytes:
        return pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes, /) -> Any:
        return pickle.loads(data)


@dataclass(frozen=True)
class Entry:
    """One journaled item: the NEW (``kind == "n"``, ``item`` is the order as
    submitted), an instruction (``"i"``, a CANCEL/REPLACE), a report (``"r"``)
    or a child order's request sent to a venue (``"q"``, an
    ``exo.child.Request``)."""

    order_id: str
    seq: int
    kind: str
    item: Any


@dataclass(frozen=True)
class Checkpoint:
    """An order's progress: every entry up to ``applied`` reached the delegate,
    and ``state`` is the delegate's ``state()`` as of then, encoded by
    ``Store.encode`` (None when the delegate keeps no state)."""

    order_id: str
    applied: int
    state: bytes | None = None


@dataclass
class StoredOrder:
    """A live order as recovery finds it."""

    order: Any
    """The NEW as submitted."""
    applied: int = 0
    """Seq of the last entry the delegate applied; 0: not even the NEW."""
    state: bytes | None = None
    """The delegate's encoded ``state()`` at ``applied``, if it keeps one."""
    entries: list[Entry] = field(default_factory=list)
    """Entries after ``applied``, in arrival order (the NEW among them when 0)."""
    last_seq: int = 0
    """Highest seq ever journaled for the order; the next one is last_seq + 1."""


class Store(ABC):
    """What the engine needs from a store. Every call takes a batch; every
    per-order write touches only that order's keys (so a cluster may put each
    order on its own shard) plus the index of live orders.

    - ``append`` journals entries before ``submit``/``report`` return (and
      before a venue sends a child's request: kind ``REQUEST``). A NEW
      adds the order to the live index. Returns, per entry, False when its
      order is no longer stored (it completed meanwhile), or when a store
      that de-duplicates deliveries found it journaled before (then
      ``was_duplicate(entry)`` says so). Raises
      ``StoreUnavailable`` when the write failed; the entries are then in
      doubt and the engine calls ``discard`` with them once the store is back.
    - ``checkpoint`` writes each order's applied seq and state together,
      atomically, and may drop the entries up to it.
    - ``remove`` forgets completed orders (now, or after a retention period).
    - ``live_orders`` (sorted order_ids) and ``load`` are recovery: they must
      not assume the orders were created by this process.
    """

    durable: bool = False
    """True when what is stored survives the process."""

    def __init__(self, codec: Codec | None = None) -> None:
        self.codec: Codec = PickleCodec() if codec is None else codec

    def encode(self, value: Any) -> bytes:
        """A value (an order, an instruction, a report, a delegate's state) as
        stored: the codec's ``dumps``."""
        return self.codec.dumps(value)

    def decode(self, data: bytes) -> Any:
        """What ``encode`` stored, back: the codec's ``loads``."""
        return self.codec.loads(data)

    async def open(self) -> None:
        """Connects; raises ``StoreUnavailable`` with the reason when it cannot."""
        return None

    async def close(self) -> None:
        """Releases connections. The store can be opened again."""
        return None

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def ping(self) -> None:
        """Raises ``StoreUnavailable`` unless the store answers."""
        return None

    @abstractmethod
    async def append(self, entries: Sequence[Entry]) -> list[bool]: ...

    def was_duplicate(self, entry: Entry) -> bool:
        """Asked once per entry ``append`` returned False for: True when it
        was left out as a second delivery of a message journaled before (e.g.
        ``exo.scaleout.FencedStore``, which records each intake message's id:
        the message was journaled and applied once already), False when its
        order is no longer stored. This store never de-duplicates: False."""
        return False

    @abstractmethod
    async def discard(self, entries: Sequence[Entry]) -> None: ...

    @abstractmethod
    async def checkpoint(self, checkpoints: Sequence[Checkpoint]) -> None: ...

    @abstractmethod
    async def remove(self, order_ids: Sequence[str]) -> None: ...

    @abstractmethod
    async def live_orders(self) -> list[str]: ...

    @abstractmethod
    async def load(self, order_ids: Iterable[str]) -> list[StoredOrder]: ...


@dataclass
class _Kept:
    order: bytes
    entries: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    applied: int = 0
    state: bytes | None = None
    last_seq: int = 0


class MemoryStore(Store):
    """In-process store: dicts, no durability. Values are encoded as in any
    store, so what ``load`` returns are copies, exactly as after a restart.

    Pass the same instance to a new Engine to resume the orders of a stopped
    one within the process; nothing survives the process itself.
    """

    durable = False

    def __init__(self, codec: Codec | None = None) -> None:
        super().__init__(codec)
        self._orders: dict[str, _Kept] = {}

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._orders)} live orders)"

    async def open(self) -> None:
        log.info("store: MemoryStore (in-process, no durability: live orders do not survive the process)")

    async def append(self, entries: Sequence[Entry]) -> list[bool]:
        written = []
        dumps = self.encode
        for e in entries:
            if e.kind == NEW:
                # A NEW (re)starts the order: whatever was kept under its id goes.
                self._orders[e.order_id] = kept = _Kept(dumps(e.item))
                kept.entries[e.seq] = (NEW, b"")
                kept.last_seq = e.seq
                written.append(True)
                continue
            kept_or_none = self._orders.get(e.order_id)
            if kept_or_none is None:
                written.append(False)
                continue
            kept_or_none.entries[e.seq] = (e.kind, dumps(e.item))
            kept_or_none.last_seq = max(kept_or_none.last_seq, e.seq)
            written.append(True)
        return written

    async def discard(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            kept = self._orders.get(e.order_id)
            if kept is None:
                continue
            if e.kind == NEW:
                del self._orders[e.order_id]
            else:
                kept.entries.pop(e.seq, None)

    async def checkpoint(self, checkpoints: Sequence[Checkpoint]) -> None:
        for c in checkpoints:
            kept = self._orders.get(c.order_id)
            if kept is None:
                continue
            kept.applied, kept.state = c.applied, c.state
            for seq in [s for s in kept.entries if s <= c.applied]:
                del kept.entries[seq]

    async def remove(self, order_ids: Sequence[str]) -> None:
        for order_id in order_ids:
            self._orders.pop(order_id, None)

    async def live_orders(self) -> list[str]:
        return sorted(self._orders)

    async def load(self, order_ids: Iterable[str]) -> list[StoredOrder]:
        loads = self.decode
        found = []
        for order_id in order_ids:
            kept = self._orders.get(order_id)
            if kept is None:
                continue
            order = loads(kept.order)
            entries = [
                Entry(order_id, seq, kind, order if kind == NEW else loads(data))
                for seq, (kind, data) in sorted(kept.entries.items())
                if seq > kept.applied
            ]
            found.append(StoredOrder(order, kept.applied, kept.state, entries, kept.last_seq))
        return found
