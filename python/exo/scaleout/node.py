"""EngineNode: one exo Engine in the ``engine`` role of a scale-out.

Several processes, each an EngineNode with its own name, share the orders
that ``api`` processes (``Intake``) write to the intake streams:

- A NEW goes to whichever engine's consumer reads it. That engine acquires
  the order's lease (``exo.scaleout.lease``: SET NX PX in Lua, fencing epoch
  INCR-ed at the same step), journals the NEW under its epoch and ACKs the
  stream entry only then (the effect is durable).
- A CANCEL/REPLACE or a report read by an engine that does not own the order
  is forwarded to the owner's inbox stream; when the order has no owner (its
  lease lapsed) the reader claims the order first. Each is journaled once:
  the order's seen set records its intake id in the same Lua call.
- Every lease is renewed by compare-and-set every ``lease / 3``. A lease
  lost to another engine (this one was paused or cut off past its lease)
  drops the order here; every write it still attempts is refused by the
  epoch check (``FencedStore``) and counted.
- Every ``lease / 4`` each node scans for orders without a lease and claims
  them: acquire, load from the journal, restore into its engine (the
  delegate resumes from its checkpoint and the entries after it are applied
  exactly once), which subscribes their symbols; and it takes over the
  pending intake entries and inbox of engines whose heartbeat stopped
  (XAUTOCLAIM, then DELCONSUMER).
- ``stop()`` (graceful): checkpoints everything, releases every lease by
  compare-and-delete, and tells the others to scan at once, so the orders
  move without waiting for the lease to lapse.

When Redis is unreachable an engine keeps its orders running on market data
(the journal retries its writes), takes no new ones (its readers back off
until Redis answers) and releases nothing: a lease it cannot renew may lapse
and be claimed elsewhere, and then its writes are refused when Redis is back.

The engine heartbeat is a sorted set (one key): ``<prefix>:engines``, member
= engine name, score = Redis server time (ms) until which it counts as alive
(three leases after its last renewal round).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from exo.engine import Engine
from exo.journal import JournaledIntake
from exo.scaleout.client import connect
from exo.scaleout.lease import Lease, Leases
from exo.scaleout.store import FencedStore
from exo.scaleout.streams import (
    GROUP,
    Message,
    agree_partitions,
    autoclaim,
    consumers,
    engines_key,
    ensure_group,
    inbox_stream,
    intake_stream,
    read,
    retire,
)
from exo.store import INSTRUCTION, NEW, REPORT, StoreError

__all__ = ["EngineNode", "engines_key"]

log = logging.getLogger("exo.scaleout")

_BACKOFF_MIN, _BACKOFF_MAX = 0.05, 2.0
HINT = "h"
"""Intake entry kind: 'scan now' (a graceful stop released leases)."""


CLAIM_BATCH = 50
"""Orders acquired, loaded (one pipeline each) and restored together by one
scan step: small, so that one claim's burst of restores and first actions
never holds up the claimer's lease renewals for long."""


@dataclass(frozen=True)
class _Admission:
    """A NEW's lease as acquired for its batch (``Leases.acquire``: a Lease,
    the holder's name, or None when the order completed) and whether the
    order was journaled already when it was acquired."""

    lease: Lease | str | None
    journaled: bool


class _Held:
    """An Update held back for a claimed order (see ``_Owned._after_gate``),
    and the Update it is merged into: what the delegate gets then is one
    Update with the held one's instructions and reports first, then the
    newer one's, and the newer one's market data (a print merged over both).
    Duck-types ``exo.Update``."""

    __slots__ = (
        "arrived_ns",
        "instructions",
        "order_id",
        "quote",
        "quotes_merged",
        "reports",
        "staleness_ns",
        "trade",
        "trades_merged",
    )

    def __init__(self, held: Any, newer: Any | None = None) -> None:
        self.order_id: str = held.order_id
        self.instructions: list[Any] = list(held.instructions)
        self.reports: list[Any] = list(held.reports)
        self.quote = getattr(held, "quote", None)
        self.trade = getattr(held, "trade", None)
        self.quotes_merged: int = getattr(held, "quotes_merged", 0)
        self.trades_merged: int = getattr(held, "trades_merged", 0)
        self.arrived_ns: int | None = getattr(held, "arrived_ns", None)
        self.staleness_ns: int | None = getattr(held, "staleness_ns", None)
        if newer is None:
            return
        self.instructions += newer.instructions
        self.reports += newer.reports
        if newer.quote is not None:
            self.quote = newer.quote
        if newer.trade is not None:
            self.trade = newer.trade if self.trade is None else self.trade.merge(newer.trade)
        self.quotes_merged += newer.quotes_merged
        self.trades_merged += newer.trades_merged
        if newer.arrived_ns is not None:
            self.arrived_ns, self.staleness_ns = newer.arrived_ns, newer.staleness_ns

    @property
    def idle(self) -> bool:
        return self.arrived_ns is None and not self.instructions and not self.reports

    @property
    def staleness(self) -> float | None:
        return None if self.staleness_ns is None else self.staleness_ns / 1e9


class _Entries:
    """Instructions and reports of a held Update, restored from a checkpoint."""

    __slots__ = ("instructions", "order_id", "reports")

    def __init__(self, order_id: str, instructions: list[Any], reports: list[Any]) -> None:
        self.order_id, self.instructions, self.reports = order_id, instructions, reports


class _Stop:
    """Handed to a dropped order in the core (not journaled): its next Update
    comes now, and its delegate wrapper ends it (``EngineNode._drop``)."""

    __slots__ = ("order_id",)

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id


class _Owned:
    """The delegate as the engine sees it: the user's delegate, plus what the
    node needs. Counts the instructions and reports applied (kept in the
    snapshot, so exact across failovers), and once the order was lost to
    another engine, never calls the user's delegate again and ends the order
    here (``dropped``)."""

    __slots__ = (
        "claimed_at",
        "dropped",
        "epoch",
        "gate",
        "held",
        "inner",
        "instructions",
        "node",
        "order_id",
        "reports",
        "task",
    )

    def __init__(
        self, node: EngineNode, order_id: str, epoch: int, inner: Any, counts: tuple[int, int]
    ) -> None:
        self.node = node
        self.order_id = order_id
        self.epoch = epoch
        self.inner = inner
        self.instructions, self.reports = counts
        self.dropped = False
        self.claimed_at: float | None = None
        self.gate: asyncio.Future[Any] | None = None
        """Set for an order restored here from another engine: its first
        action waits until the venue was asked about its children."""
        self.held: _Held | None = None
        """An Update not shown to the delegate yet: merged into the next one."""
        self.task: asyncio.Task[Any] | None = None
        """The task running the delegate's async action, while one runs
        (cancelled when the order is dropped: it ends here at once)."""

    def action(self, update: Any) -> bool | Awaitable[bool]:
        if self.dropped:
            # Ends here now; once it is out of the core, a scan may claim it
            # again from its journal (even this engine, if nobody holds it).
            self.node._scan_now.set()
            return True
        if self.held is not None:
            update, self.held = _Held(self.held, update), None
        gate = self.gate
        if gate is not None:
            self.gate = None
            if not gate.done():
                return self._after_gate(gate, update)
        return self._act(update)

    async def _after_gate(self, gate: asyncio.Future[Any], update: Any) -> bool:
        # One hand-over at a time: what arrives meanwhile (the venue's answers
        # among it) merges into the order's next Update. So when anything was
        # journaled for the order while the venue was asked, this Update is
        # held back, and the delegate's first action here gets it merged with
        # the next one, which the engine hands over at once: the venue's
        # answers are in the first Update it sees, not one late.
        self.task = asyncio.current_task()
        try:
            journaled = self.node._journaled(self.order_id)
            await asyncio.wait({gate}, timeout=self.node.timeout)
            if not gate.done():
                log.warning(
                    "engine %s: order %s acts before the venue answered about its children (%.3gs)",
                    self.node.name,
                    self.order_id,
                    self.node.timeout,
                )
            if self.dropped:
                return self._stopped()
            if self.node._journaled(self.order_id) != journaled:
                self.held = _Held(update)
                return False
            result = self._act(update)
            return (await result) if inspect.isawaitable(result) else bool(result)
        except asyncio.CancelledError:
            if not self.dropped:
                raise
            return self._stopped()
        finally:
            self.task = None

    def _act(self, update: Any) -> bool | Awaitable[bool]:
        if self.claimed_at is not None:
            self.node._first_action(self)
        self.instructions += len(update.instructions)
        self.reports += len(update.reports)
        result = self.inner.action(update)
        if inspect.isawaitable(result):
            return self._after(result)
        self.node._changed(self, result is True)
        return bool(result)

    async def _after(self, result: Awaitable[bool]) -> bool:
        self.task = asyncio.current_task()
        try:
            done = await result
        except asyncio.CancelledError:
            if not self.dropped:
                raise  # the engine is stopping
            return self._stopped()
        finally:
            self.task = None
        if self.dropped:
            return self._stopped()  # dropped meanwhile (a delegate that swallowed the cancel)
        self.node._changed(self, done is True)
        return done is True

    def _stopped(self) -> bool:
        """A dropped order's action was cut short (``EngineNode._drop``): it
        ends here now, as if its delegate had returned True."""
        # The cancel is handled here (3.11+ counts it on the task: taken back).
        uncancel = getattr(asyncio.current_task(), "uncancel", None)
        if uncancel is not None:
            uncancel()
        self.node._scan_now.set()
        return True

    def state(self) -> dict[str, Any]:
        take = getattr(self.inner, "state", None)
        state = {
            "inner": None if take is None else take(),
            "instructions": self.instructions,
            "reports": self.reports,
        }
        if self.held is not None:
            # Counted as applied by the journal, not yet seen by the delegate:
            # kept, so a restart shows them to it first.
            state["held"] = {"instructions": self.held.instructions, "reports": self.held.reports}
        return state

    def clean_up(self) -> Any:
        clean_up = getattr(self.inner, "clean_up", None)
        return None if clean_up is None or self.dropped else clean_up()

    def __getattr__(self, name: str) -> Any:
        # The user's delegate's other attributes (e.g. a venue delegate's
        # resume_requests, which recovery calls with journaled child requests).
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


class EngineNode:
    """An Engine sharing orders with other EngineNodes through Redis.

    - ``url``: ``redis://...`` or ``redis+cluster://host:port,...``.
    - ``name``: this engine's consumer name and lease owner; unique among
      the engines, stable across restarts of the same engine (its pending
      entries are read again on start).
    - ``factory``: the delegate factory (``factory(order)``, and
      ``factory(order, state=...)`` when the delegate keeps a snapshot).
    - ``lease``: seconds; an engine that stops renewing loses its orders
      after this long (failover target: first action on the new owner
      within 2 x lease after kill -9).
    - ``partitions``: intake streams (each on its own Cluster slot); every
      api and engine must agree.
    - ``describe(delegate) -> dict | None``: the order's progress, written to
      Redis after actions (what ``Intake.progress`` and the api's GET read).
    - ``progress_interval``: seconds between progress writes of one order
      (a completed order's last progress is written within this).
    - ``on_claimed(order_ids)``: called after orders another engine held were
      restored here (recovered from their journals, as after a restart), e.g.
      to reconcile their children with the venue (``venue.reconcile(ids)``).
      When it returns an awaitable, each of these orders' first action waits
      for it (at most ``timeout`` seconds): the venue has answered about the
      children before the delegate acts, and its answers (journaled before
      the awaitable ends) reach the delegate in the first Update it gets
      here, merged with the one it was restored with.
    - ``engine_options``: passed to ``exo.Engine`` (feed, idle_interval, ...).
    """

    def __init__(
        self,
        url: str,
        name: str,
        factory: Callable[..., Any],
        *,
        lease: float = 2.0,
        partitions: int = 4,
        prefix: str = "exo",
        describe: Callable[[Any], dict[str, Any] | None] | None = None,
        block: float = 0.5,
        timeout: float = 5.0,
        keep: float = 86_400.0,
        on_dropped: Callable[[str], None] | None = None,
        on_claimed: Callable[[list[str]], Awaitable[Any] | None] | None = None,
        progress_interval: float = 0.25,
        **engine_options: Any,
    ) -> None:
        if not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"partitions must be a positive integer, got {partitions!r}")
        if not lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, got {lease!r}")
        self.url, self.name, self.prefix = url, name, prefix
        self.lease_s, self.partitions, self.block, self.timeout = lease, partitions, block, timeout
        self.progress_interval = progress_interval
        self._user_factory = factory
        self._describe = describe
        self._on_dropped = on_dropped
        self._on_claimed = on_claimed
        self.store = FencedStore(url, prefix=prefix, timeout=timeout, keep=keep, on_fenced=self._fenced)
        self.engine = Engine(self._factory, store=self.store, **engine_options)
        self.store.final_progress = self._final_progress
        self.store.on_removed = self._removed
        if not name or any(c in name for c in "/{}"):
            raise ValueError(f"engine name must be non-empty, without '/', '{{' or '}}', got {name!r}")
        self._client: Any = None
        self._leases: Leases | None = None
        self.held: dict[str, Lease] = {}
        self._delegates: dict[str, _Owned] = {}
        self._claiming: dict[str, float] = {}
        self._arriving: set[str] = set()
        """Orders whose lease was just acquired, on their way into the engine."""
        self._dirty: dict[str, bool] = {}
        self._written: dict[str, tuple[dict[str, Any], float]] = {}
        """Per order: the progress written last and when (time.monotonic())."""
        self._progress_refresh = max(5.0, 20 * progress_interval)
        """Seconds after which an unchanged progress is written again."""
        self._finished: dict[str, _Owned] = {}
        self._progress_version = 0
        self._log_first_action = False
        self._dirty_wake = asyncio.Event()
        self._scan_now = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._gates: set[asyncio.Future[Any]] = set()
        self._readers: list[Any] = []
        self._stopping = False
        self.redis_ok = True
        self.counters: dict[str, int] = {
            "claims": 0,
            "lease_renewals": 0,
            "leases_lost": 0,
            "orders_fenced": 0,
            "forwarded": 0,
            "intake_read": 0,
            "duplicates": 0,
            "redis_failures": 0,
            "progress_failures": 0,
            "stray_leases": 0,
        }
        self.first_actions: list[tuple[str, float, float]] = []
        """(order_id, claimed at, first action at), time.time() seconds, per claimed order."""

    # -- life cycle -------------------------------------------------------------

    @property
    def streams(self) -> list[str]:
        return [intake_stream(self.prefix, p) for p in range(self.partitions)] + [
            inbox_stream(self.prefix, self.name)
        ]

    async def start(self) -> None:
        """Connects, joins the consumer group and starts taking orders.

        :raises ValueError: Redis serves a deployment with another
            ``partitions`` (``exo.scaleout.streams.agree_partitions``).
        """
        # Commands meeting a dropped connection are sent again (``connect``):
        # each is safe to run twice. Lease acquire: a second run finds the
        # token of the first and answers "held by <this engine>", so the order
        # is not taken now and the lease, renewed by nobody, lapses and is
        # acquired again; renew and release are compare-and-set/-delete;
        # heartbeat ZADD, XACK, ZREM, XCLAIM to this engine are idempotent; a
        # forward XADD twice is journaled once by the owner (the seen set, by
        # the entry's intake id).
        self._client = connect(self.url, socket_timeout=self.timeout)
        self._leases = Leases(self._client, self.name, self.lease_s, self.prefix)
        await agree_partitions(self._client, self.prefix, self.partitions)
        for stream in self.streams:
            await ensure_group(self._client, stream)
        await self._heartbeat()
        await self.engine.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read(s), name=f"exo-read {s}") for s in self.streams]
        self._tasks += [
            loop.create_task(self._renew_loop(), name="exo-renew"),
            loop.create_task(self._scan_loop(), name="exo-scan"),
            loop.create_task(self._progress_loop(), name="exo-progress"),
        ]
        log.info(
            "engine %s: reading %d intake partition(s) and its inbox, lease %.3gs",
            self.name,
            self.partitions,
            self.lease_s,
        )

    async def stop(self) -> None:
        """Graceful: stops reading, checkpoints, releases every lease so the
        other engines claim the orders at once."""
        self._stopping = True
        readers_and_scan = [
            t for t in self._tasks if t.get_name() != "exo-renew" and t.get_name() != "exo-progress"
        ]
        await self._cancel(readers_and_scan, "readers")
        self._readers.clear()
        held = list(self.held.values())
        try:
            await asyncio.wait_for(self._write_progress(), self.timeout)
        except Exception as exc:
            log.warning("engine %s: last progress not written (%s)", self.name, exc)
        for gate in list(self._gates):
            gate.cancel()
        await self.engine.stop()  # checkpoints everything while the leases are still ours
        await self._cancel(self._tasks, "background tasks")
        self._tasks = []
        client = self._client
        if client is None:
            return
        try:
            if self._leases is not None and held:
                released = await self._leases.release(held)
                log.info("engine %s: released %d of %d lease(s)", self.name, sum(released), len(held))
            # Dead at once for the others' scans: they take over its pending
            # entries and inbox now, not after the heartbeat lapses.
            await client.zadd(engines_key(self.prefix), {self.name: 0})
            await client.xadd(intake_stream(self.prefix, 0), {"k": HINT, "o": "", "v": self.name})
        except Exception as exc:
            log.warning(
                "engine %s: could not release its leases (%s); they lapse after %.3gs",
                self.name,
                exc,
                self.lease_s,
            )
        finally:
            self.held.clear()
            await client.aclose()
            self._client = None

    async def _cancel(self, tasks: list[asyncio.Task[None]], what: str) -> None:
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.timeout)
        if pending:
            log.error(
                "engine %s: %d of its %s did not stop within %.3gs: %s",
                self.name,
                len(pending),
                what,
                self.timeout,
                ", ".join(t.get_name() for t in pending),
            )

    async def __aenter__(self) -> EngineNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the delegate wrapper ------------------------------------------------------

    def _factory(self, order: Any, state: dict[str, Any] | None = None) -> _Owned:
        inner_state = None if state is None else state.get("inner")
        counts = (0, 0) if state is None else (int(state["instructions"]), int(state["reports"]))
        inner = (
            self._user_factory(order) if inner_state is None else self._user_factory(order, state=inner_state)
        )
        owned = _Owned(self, order.order_id, self.store.epochs.get(order.order_id, 0), inner, counts)
        held = None if state is None else state.get("held")
        if held is not None:
            owned.held = _Held(_Entries(order.order_id, held["instructions"], held["reports"]))
        claimed = self._claiming.get(order.order_id)
        if claimed is not None:
            owned.claimed_at = claimed
        self._delegates[order.order_id] = owned
        return owned

    def _journaled(self, order_id: str) -> int:
        """The seq the journal gives the order's next entry (it grows with
        each instruction or report journaled for it); 0 when not tracked."""
        intake = self.engine._intake
        rec = intake._orders.get(order_id) if isinstance(intake, JournaledIntake) else None
        return 0 if rec is None else int(rec.next_seq)

    def _first_action(self, owned: _Owned) -> None:
        assert owned.claimed_at is not None
        now = time.time()
        self.first_actions.append((owned.order_id, owned.claimed_at, now))
        owned.claimed_at = None
        if self._log_first_action:
            self._log_first_action = False
            log.info(
                "engine %s: first action on claimed order %s at %.6f (%.3f s after it was claimed)",
                self.name,
                owned.order_id,
                now,
                now - self.first_actions[-1][1],
            )

    def _changed(self, owned: _Owned, done: bool) -> None:
        if self._describe is not None and not owned.dropped:
            self._dirty[owned.order_id] = self._dirty.get(owned.order_id, False) or done
            self._dirty_wake.set()
        if done:
            self._delegates.pop(owned.order_id, None)
            self.held.pop(owned.order_id, None)
            if self._describe is not None:
                self._finished[owned.order_id] = owned

    def _fenced(self, order_id: str) -> None:
        """The store refused a write: another engine acquired the order since."""
        self.counters["orders_fenced"] += 1
        self._drop(order_id, "a write was refused (fencing epoch)")

    def _drop(self, order_id: str, why: str) -> None:
        """The order is not this engine's any more: it stops here at once.

        The rule: an order is live in exactly one engine, which holds its
        lease, or in none and claimable. So a dropped order does not wait
        in this engine's core for its next Update (a resting order on a quiet
        symbol may get none for long; an async action may never end): its
        journal record is forgotten (nothing more is checkpointed or removed
        for it from here), its running async action is cancelled, and it is
        handed a ``_Stop`` so that its delegate wrapper returns True now. Once
        it is out of the core, scans may claim it from its journal, this
        engine's included when nobody holds the lease (it acquires it anew,
        SET NX, with a new epoch, so the writes of its earlier ownership stay
        fenced)."""
        self.held.pop(order_id, None)
        self._written.pop(order_id, None)
        self.store.disown(order_id)
        self._finished.pop(order_id, None)
        owned = self._delegates.pop(order_id, None)
        if owned is None or owned.dropped:
            return
        owned.dropped = True
        log.warning(
            "engine %s: order %s is not this engine's any more (%s); stopped here",
            self.name,
            order_id,
            why,
        )
        intake = self.engine._intake
        if isinstance(intake, JournaledIntake):
            intake.forget(order_id)
        if owned.task is not None:
            owned.task.cancel()
        core = self.engine._core
        if core is not None and core.is_live(order_id):
            core.report(_Stop(order_id))
        if self._on_dropped is not None:
            self._on_dropped(order_id)

    # -- stream intake -------------------------------------------------------------

    async def _read(self, stream: str) -> None:
        """One stream, on a connection of its own (blocking reads)."""
        backoff = 0.0
        block_ms = max(1, int(self.block * 1000))
        while True:
            # No retries inside: this loop reconnects with its own backoff.
            reader = connect(self.url, socket_timeout=self.block + self.timeout, retry=False)
            self._readers.append(reader)
            try:
                await ensure_group(reader, stream)  # again after Redis lost it (restart without AOF)
                async for batch in read(reader, stream, self.name, block_ms=block_ms):
                    self.counters["intake_read"] += len(batch)
                    await self._handle_all(batch)
                    backoff = 0.0
                    self._healthy()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc, f"reading {stream}")
                backoff = min(_BACKOFF_MAX, max(_BACKOFF_MIN, backoff * 2))
                await asyncio.sleep(backoff)
            finally:
                if reader in self._readers:
                    self._readers.remove(reader)
                with contextlib.suppress(Exception):
                    await reader.aclose()

    async def _handle_all(self, batch: list[Message]) -> None:
        """Handles a batch; ACKs each entry once its effect is durable. An entry
        that could not be handled stays pending (read again from ``0``).

        Entries of different orders are handled concurrently (so the journal
        writes them in one store call); one order's entries in stream order.
        The leases of the batch's NEWs are acquired together first (one
        pipeline: ``_admit``), so a batch of NEWs costs a few round trips,
        not a few per order."""
        from redis.exceptions import RedisError

        by_order: dict[str, list[Message]] = {}
        for msg in batch:
            by_order.setdefault(msg.order_id, []).append(msg)
        done: dict[str, list[str]] = {}
        failures: list[BaseException] = []
        # Raises when Redis fails: nothing acquired, every entry stays pending.
        admitted = await self._admit(by_order)

        async def one_order(messages: list[Message]) -> None:
            for msg in messages:
                try:
                    # The order's first entry, when _admit took its lease (a
                    # second NEW of the order in the batch goes the usual way).
                    pre = admitted.pop(msg.order_id, None) if msg.kind == NEW else None
                    ok = await self._handle(msg, pre)
                except (StoreError, OSError, ConnectionError, RedisError) as exc:
                    failures.append(exc)
                    return  # this order's later entries wait too: stream order
                except Exception:
                    log.exception(
                        "engine %s: entry %s of %s could not be handled; dropped",
                        self.name,
                        msg.id,
                        msg.stream,
                    )
                    ok = True
                if ok:
                    done.setdefault(msg.stream, []).append(msg.id)
                else:
                    return

        try:
            await asyncio.gather(*(one_order(m) for m in by_order.values()))
        finally:
            # Leases taken for NEWs never handled (cancelled): not live here.
            unused = [a.lease for a in admitted.values() if isinstance(a.lease, Lease)]
            if unused:
                await self._let_go(unused)
        if done:
            pipe = self._client.pipeline(transaction=False)
            for stream, ids in done.items():
                pipe.xack(stream, GROUP, *ids)
            await pipe.execute()
        if failures:
            raise failures[0]

    async def _admit(self, by_order: dict[str, list[Message]]) -> dict[str, _Admission]:
        """For the orders whose first entry in the batch is a NEW not live
        here: their leases, acquired in one pipeline (one EVALSHA per order,
        as on a Redis Cluster each order's keys are on their own slot), and
        whether each order's NEW was journaled already (one pipeline of
        EXISTS), for ``_take_new``."""
        assert self._leases is not None
        oids = [
            oid
            for oid, messages in by_order.items()
            if messages[0].kind == NEW and oid and not (oid in self.held and self.engine.is_live(oid))
        ]
        if not oids:
            return {}
        got = await self._leases.acquire(oids)
        # The order's key, for those not completed: a NEW journaled by an
        # engine that died before its ACK is recovered, not restarted.
        asked = [oid for oid in oids if got[oid] is not None]
        journaled: list[Any] = []
        if asked:
            pipe = self._client.pipeline(transaction=False)
            for oid in asked:
                pipe.exists(self.store.keys(oid)[0])
            try:
                journaled = await pipe.execute()
            except BaseException:
                await self._let_go([g for g in got.values() if isinstance(g, Lease)])
                raise
        exists = dict(zip(asked, (bool(n) for n in journaled), strict=True))
        return {oid: _Admission(got[oid], exists.get(oid, False)) for oid in oids}

    async def _handle(self, msg: Message, admission: _Admission | None = None) -> bool:
        """True when the entry's effect is durable (or it needs none).
        ``admission``: a NEW's lease and journal check, made for the batch."""
        kind, oid = msg.kind, msg.order_id
        if kind == HINT:
            self._scan_now.set()
            return True
        if kind not in (NEW, INSTRUCTION, REPORT) or not oid:
            log.warning(
                "engine %s: entry %s of %s is not an exo intake entry; dropped", self.name, msg.id, msg.stream
            )
            return True
        try:
            item = self.store.decode(msg.fields[b"v"])
        except BaseException:
            if admission is not None and isinstance(admission.lease, Lease):
                await self._let_go([admission.lease])
            raise
        if kind == NEW:
            return await self._take_new(oid, item, admission)
        return await self._route(msg, oid, kind, item)

    async def _take_new(self, oid: str, order: Any, admission: _Admission | None = None) -> bool:
        if admission is None:
            if oid in self.held and self.engine.is_live(oid):
                return True  # delivered again: ours already
            assert self._leases is not None
            got = (await self._leases.acquire([oid]))[oid]
            journaled = got is not None and bool(await self._client.exists(self.store.keys(oid)[0]))
        else:
            got, journaled = admission.lease, admission.journaled
        if got is None:
            return True  # it completed: nothing to do
        if not isinstance(got, Lease):
            # Another engine holds it. Journaled: that engine (or whoever claims
            # it from the index) has it. Not yet: the holder may have died
            # before journaling; keep the entry pending until its lease lapses.
            return journaled
        self._own(got)
        self._arriving.add(oid)
        try:
            if journaled:
                if self._busy(oid):
                    # Still ending here after it was dropped: restored now, it
                    # would be in the core twice. Scans claim it from the index
                    # once it is out (this entry is done: the NEW is journaled).
                    await self._let_go([got])
                    return True
                # Journaled by an engine that died before its ACK: recover, do not restart.
                stored = await self.store.load([oid])
                if stored and self._restore(stored[0], claimed=False):
                    self.counters["claims"] += 1  # recovered from another engine's journal, as a claim
                    self._claimed([oid])
                else:
                    await self._let_go([got])
                return True
            order.order_id = oid
            result = await self.engine.submit(order)
        except BaseException:
            # Not journaled (Redis went away): let the lease go, the entry stays
            # pending and is taken again (by us or another engine). Held on
            # to, the lease would be renewed for an order live nowhere: the
            # entry's next delivery would find it "held by another" for good.
            await self._let_go([got])
            raise
        finally:
            self._arriving.discard(oid)
        if result is None:
            fenced = oid not in self.store.epochs  # its journal write was refused: the order moved on
            log.warning(
                "engine %s: NEW %s was refused by the %s",
                self.name,
                oid,
                "store (its lease lapsed and another engine acquired it before the NEW was "
                "journaled); left pending, taken again"
                if fenced
                else "engine",
            )
            await self._let_go([got])
            # Not journaled anywhere: the entry stays pending (taken again
            # by XAUTOCLAIM) rather than ACKed with the order lost.
            return not fenced
        return True

    async def _let_go(self, leases: list[Lease]) -> None:
        """Forgets leases whose orders are not live here, and releases them
        (compare-and-delete: only if still ours) when Redis answers; otherwise
        they lapse, as nobody renews them."""
        for lease in leases:
            if self.held.get(lease.order_id) is lease:
                self.held.pop(lease.order_id, None)
                self.store.disown(lease.order_id)
                if lease.order_id not in self._arriving and self.engine.is_live(lease.order_id):
                    # Live here without its lease it would run unleased, its
                    # writes refused, claimed by nobody: it stops here.
                    self._drop(lease.order_id, "its lease was let go")
        assert self._leases is not None
        try:
            await self._leases.release(leases)
        except Exception as exc:
            log.info("engine %s: %d lease(s) not released (%s); they lapse", self.name, len(leases), exc)

    async def _route(self, msg: Message, oid: str, kind: str, item: Any) -> bool:
        assert self._leases is not None
        for _ in range(3):
            if oid in self.held and self.engine.is_live(oid):
                self.store.tag(item, msg.intake_id)
                try:
                    accepted = await (
                        self.engine.report(item) if kind == REPORT else self.engine.submit(item)
                    )
                finally:
                    self.store.untag(item)
                if accepted or oid in self.held:
                    return True  # applied, or a duplicate / rule violation already reported
                continue  # fenced meanwhile: route again
            owner = (await self._leases.owners([oid]))[oid]
            if owner is not None and owner != self.name and not await self._alive(owner):
                return False  # its owner is gone: pending until the lease lapses, then claimed
            if owner is not None and owner != self.name:
                fields = {
                    b"k": kind.encode(),
                    b"o": oid.encode(),
                    b"v": msg.fields[b"v"],
                    b"m": msg.intake_id.encode(),
                }
                await self._client.xadd(inbox_stream(self.prefix, owner), fields)
                self.counters["forwarded"] += 1
                return True
            got = (await self._leases.acquire([oid]))[oid]
            if got is None:
                log.info("engine %s: %s for order %s, which completed; ignored", self.name, kind, oid)
                return True
            if isinstance(got, Lease) and not await self._claim([got]):
                if await self._client.exists(self.store.keys(oid)[0]):
                    return False  # journaled but not restored here: left pending
                log.warning("engine %s: %s for unknown order %s; dropped", self.name, kind, oid)
                return True
        log.warning("engine %s: could not route %s for order %s; left pending", self.name, kind, oid)
        return False

    # -- ownership -------------------------------------------------------------------

    def _own(self, lease: Lease) -> None:
        self.held[lease.order_id] = lease
        self.store.own(lease.order_id, lease.epoch)

    def _restore(self, stored: Any, claimed: bool) -> bool:
        """Recovery exactly as after a crash, into the running engine; False
        when the order could not be restored (its delegate was not made)."""
        oid = stored.order.order_id
        if claimed:
            self._claiming[oid] = time.time()
        try:
            intake = self.engine._intake
            assert isinstance(intake, JournaledIntake), "the engine runs with its FencedStore"
            return intake.restore(stored) is not None and self.engine.is_live(oid)
        finally:
            self._claiming.pop(oid, None)

    def _claimed(self, order_ids: list[str]) -> None:
        """Orders restored here from another engine's journal: ``on_claimed``
        (e.g. the venue's reconcile); when it returns an awaitable, each of
        these orders' first action waits for it (the venue is asked about
        their children before their delegates act on the new owner)."""
        if not order_ids or self._on_claimed is None:
            return
        try:
            result = self._on_claimed(order_ids)
        except Exception:
            log.exception("engine %s: on_claimed failed for %d order(s)", self.name, len(order_ids))
            return
        if not inspect.isawaitable(result):
            return
        gate = asyncio.ensure_future(result)
        self._gates.add(gate)
        gate.add_done_callback(self._gate_done)
        for oid in order_ids:
            owned = self._delegates.get(oid)
            if owned is not None:
                owned.gate = gate

    def _gate_done(self, gate: asyncio.Future[Any]) -> None:
        self._gates.discard(gate)
        if not gate.cancelled() and gate.exception() is not None:
            log.error("engine %s: on_claimed failed", self.name, exc_info=gate.exception())

    async def _claim(self, leases: list[Lease]) -> int:
        """Loads and restores orders whose leases were just acquired; returns
        how many were found in the store (the others are released)."""
        # Still live here after being dropped, or completed here with its
        # removal not yet written: claim it again once that is over (its
        # journal writes are fenced with this engine's epoch for the order).
        busy = [lease for lease in leases if self._busy(lease.order_id)]
        if busy:
            assert self._leases is not None
            await self._leases.release(busy)
            leases = [lease for lease in leases if not self._busy(lease.order_id)]
        for lease in leases:
            self._own(lease)
            self._arriving.add(lease.order_id)
        t0 = time.perf_counter()
        restored: list[str] = []
        try:
            stored = await self.store.load([lease.order_id for lease in leases])
            for s in stored:
                if self._restore(s, claimed=True):
                    restored.append(s.order.order_id)
        finally:
            for lease in leases:
                self._arriving.discard(lease.order_id)
            # Not found in the store, not restored, or the load failed: not
            # live here, so the lease goes (renewed, it would keep the order
            # from every other engine while it runs nowhere).
            done = set(restored)
            missing = [lease for lease in leases if lease.order_id not in done]
            if missing:
                await self._let_go(missing)
        self._claimed(restored)
        if restored:
            self._log_first_action = True
            self.counters["claims"] += len(restored)
            log.info(
                "engine %s: claimed %d order(s) (recovered from their journals in %.3fs)",
                self.name,
                len(restored),
                time.perf_counter() - t0,
            )
        return len(restored)

    def _busy(self, order_id: str) -> bool:
        return self.engine.is_live(order_id) or order_id in self._finished

    async def _renew_loop(self) -> None:
        assert self._leases is not None
        period = self.lease_s / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self._heartbeat()
                await self._let_go_strays()
                held = list(self.held.values())
                for start in range(0, len(held), 1000):
                    chunk = held[start : start + 1000]
                    kept = await self._leases.renew(chunk)
                    for lease, ok in zip(chunk, kept, strict=True):
                        if ok:
                            self.counters["lease_renewals"] += 1
                        elif self.held.get(lease.order_id) is lease:
                            self.counters["leases_lost"] += 1
                            self._drop(lease.order_id, "its lease is held by another engine")
                self._healthy()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Nothing is released: the orders keep running on market data;
                # whatever lapsed meanwhile is found lost at the next renewal.
                self._failed(exc, "renewing leases")

    async def _let_go_strays(self) -> None:
        """Leases held for orders that are not live here (and not on their
        way in) are let go: a lease is only worth renewing for an order this
        engine runs."""
        strays = [
            lease
            for oid, lease in self.held.items()
            if oid not in self._arriving and not self.engine.is_live(oid)
        ]
        if strays:
            self.counters["stray_leases"] += len(strays)
            log.warning(
                "engine %s: %d lease(s) held for orders not live here; let go", self.name, len(strays)
            )
            await self._let_go(strays)

    async def _alive(self, engine: str) -> bool:
        """The engine's heartbeat has not lapsed (forwarding to it is safe)."""
        score = await self._client.zscore(engines_key(self.prefix), engine)
        if score is None:
            return False
        seconds, micros = await self._client.time()
        return float(score) > int(seconds) * 1000 + int(micros) // 1000

    async def _heartbeat(self) -> None:
        seconds, micros = await self._client.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        # Three leases: a slow start or a busy loop is not taken for a death
        # (a wrong call costs only a take-over of entries, never an order: those have leases).
        await self._client.zadd(engines_key(self.prefix), {self.name: now_ms + int(self.lease_s * 3000)})

    async def _scan_loop(self) -> None:
        period = self.lease_s / 4
        while not self._stopping:
            # Not asyncio.wait_for: on 3.11 a cancel racing its timeout can be lost.
            wake = asyncio.ensure_future(self._scan_now.wait())
            try:
                await asyncio.wait({wake}, timeout=period * (0.8 + 0.4 * random.random()))
            finally:
                wake.cancel()
            self._scan_now.clear()
            try:
                await self.scan()
                self._healthy()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc, "scanning for orders without a lease")

    async def scan(self) -> int:
        """One pass: claims orders without a lease, and the pending entries and
        inboxes of engines that are gone. Returns the orders claimed."""
        assert self._leases is not None
        if self._stopping:
            return 0
        claimed = 0
        # Engines that are gone: their pending intake entries and their inbox.
        seconds, micros = await self._client.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        gone = [
            n.decode() if isinstance(n, bytes) else n
            for n in await self._client.zrangebyscore(engines_key(self.prefix), "-inf", now_ms)
        ]
        for engine in gone:
            if engine == self.name:
                continue
            await self._take_over(engine)
        # Entries pending too long with a live consumer (or one not in the
        # heartbeat set): min-idle well past the worst handling time.
        for p in range(self.partitions):
            stream = intake_stream(self.prefix, p)
            messages, _deleted = await autoclaim(self._client, stream, self.name, int(self.lease_s * 2000))
            if messages:
                await self._handle_all(messages)
        # Orders whose lease lapsed.
        live = await self.store.all_live_orders()
        orphans = [oid for oid in live if oid not in self.held and oid not in self._finished]
        for start in range(0, len(orphans), 1000):
            chunk = orphans[start : start + 1000]
            owners = await self._leases.owners(chunk)
            free = [oid for oid in chunk if owners[oid] is None]
            # A few at a time: each batch is acquired just before it is loaded
            # and restored, so recovering many orders with long journals never
            # holds a fresh lease past its term, and renewals of the orders
            # already held run between batches.
            for first in range(0, len(free), CLAIM_BATCH):
                if self._stopping:
                    return claimed
                got = await self._leases.acquire(free[first : first + CLAIM_BATCH])
                leases = [lease for lease in got.values() if isinstance(lease, Lease)]
                if leases:
                    claimed += await self._claim(leases)
                await asyncio.sleep(0)
        return claimed

    async def _take_over(self, engine: str) -> None:
        """A gone engine's pending intake entries and inbox become ours (claimed
        before its consumer is deleted), then it leaves the heartbeat set."""
        for p in range(self.partitions):
            stream = intake_stream(self.prefix, p)
            if engine in await consumers(self._client, stream):
                claimed = await retire(self._client, stream, engine, self.name)
                if claimed:
                    await self._handle_all(claimed)
        inbox = inbox_stream(self.prefix, engine)
        if await self._client.exists(inbox):
            await ensure_group(self._client, inbox)
            messages, _deleted = await autoclaim(self._client, inbox, self.name, 0)
            # Entries the gone engine never read are not pending: read them too.
            reply = await self._client.xreadgroup(GROUP, self.name, {inbox: ">"}, count=10_000)
            if reply:
                from exo.scaleout.streams import _messages

                messages += [m for m in _messages(inbox, reply[0][1]) if m.fields]
            if messages:
                await self._handle_all(messages)
        await self._client.zrem(engines_key(self.prefix), engine)
        log.info("engine %s: took over what engine %s left (it is gone)", self.name, engine)

    # -- progress ----------------------------------------------------------------------

    async def _progress_loop(self) -> None:
        while True:
            await self._dirty_wake.wait()
            self._dirty_wake.clear()
            try:
                await self._write_progress()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters["progress_failures"] += 1
                self._failed(exc, "writing progress")
                await asyncio.sleep(_BACKOFF_MIN)
            # Conflate: at most one write per order per interval (a busy order
            # acts on every quote; GET needs its progress, not every step).
            await asyncio.sleep(self.progress_interval)

    def _doc(self, owned: _Owned) -> tuple[dict[str, Any], int] | None:
        """The order's progress now, and its version (growing with each one taken)."""
        assert self._describe is not None
        doc = self._describe(owned.inner)
        if doc is None:
            return None
        self._progress_version += 1
        return {
            **doc,
            "instructions": owned.instructions,
            "reports": owned.reports,
            "engine": self.name,
            "epoch": owned.epoch,
        }, self._progress_version

    def _final_progress(self, order_id: str) -> tuple[dict[str, Any], int] | None:
        """The store removes a completed order: its last progress goes with it."""
        owned = self._finished.get(order_id)
        if owned is None or self._describe is None or owned.dropped:
            return None
        return self._doc(owned)

    def _removed(self, order_id: str) -> None:
        """The removal (with the last progress, newer than any write before it)
        is written: nothing left to write for the order."""
        self._finished.pop(order_id, None)
        self._dirty.pop(order_id, None)
        self._written.pop(order_id, None)

    async def _write_progress(self) -> None:
        if self._describe is None or not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        docs = []
        now = time.monotonic()
        for oid in dirty:
            # A completed order stays in _finished until its removal is
            # written (_removed): if this write fails, the removal (or the
            # next write) still has its last progress.
            owned = self._delegates.get(oid) or self._finished.get(oid)
            if owned is None or owned.dropped:
                continue
            made = self._doc(owned)
            if made is None:
                continue
            # An order that acted without changing what GET shows (a resting
            # order on each quote) is not written again, until the refresh.
            last = self._written.get(oid)
            if last is not None and last[0] == made[0] and now - last[1] < self._progress_refresh:
                continue
            docs.append((oid, owned.epoch, *made))
        try:
            for start in range(0, len(docs), 1000):
                chunk = docs[start : start + 1000]
                await self.store.write_progress(chunk)
                for oid, _epoch, doc, _version in chunk:
                    if oid in self._delegates:
                        self._written[oid] = (doc, now)
        except Exception:
            for oid, done in dirty.items():
                self._dirty[oid] = self._dirty.get(oid, False) or done
            raise

    # -- health --------------------------------------------------------------------------

    def _failed(self, exc: BaseException, what: str) -> None:
        self.counters["redis_failures"] += 1
        if self.redis_ok:
            log.warning(
                "engine %s: Redis trouble while %s (%s: %s): orders keep running on market data, "
                "no new ones are taken, nothing is released; retrying",
                self.name,
                what,
                type(exc).__name__,
                exc,
            )
        self.redis_ok = False

    def _healthy(self) -> None:
        if not self.redis_ok:
            log.warning("engine %s: Redis answers again", self.name)
        self.redis_ok = True

    def stats(self) -> dict[str, int]:
        """The node's counters plus the engine's: owned orders, claims, lease
        renewals, leases lost, fencing refusals, forwarded entries ..."""
        stats = dict(self.engine.stats())
        stats.update(self.counters)
        stats["owned"] = len(self.held)
        stats["fencing_refusals"] = self.store.refused
        stats["duplicates"] = self.store.duplicates
        return stats
