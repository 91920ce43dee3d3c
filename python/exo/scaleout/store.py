"""FencedStore: a RedisStore whose every per-order write carries the order's
fencing epoch, checked atomically in Lua against ``<prefix>:{<order_id>}:epoch``.

A write whose epoch is not the current one (another engine acquired the order
since) changes nothing; it is counted (``refused``). The refusal carries the
order's epoch in Redis, and that is what is judged: unless it is still the
epoch this engine holds the order with (the refused write was a late copy
from an earlier ownership here), the order moved on and ``on_fenced(order_id)``
is told, once, so the stale owner drops it. Entries in doubt (a write whose
reply was lost) are undone under the epoch they were sent with, in Lua too.
The new owner's state is never overwritten nor deleted.

Per-order keys added to RedisStore's (same hash tag, one Cluster slot):

    <prefix>:{<order_id>}:seen      SET     intake message ids already journaled (exactly once)
    <prefix>:{<order_id>}:progress  STRING  the order's progress as JSON (what GET answers)
    <prefix>:{<order_id>}:pver      STRING  "<epoch>:<version>" of the progress written last

Progress writes carry a version that grows with each one an engine takes
(``version``): a write older than the one in Redis under the same epoch
changes nothing. Two writes of one order can reach Redis out of order (the
progress writer and the removal of a completed order go out on different
connections); without the version an older progress landing last stayed:
a FILLED order shown PARTIALLY_FILLED (or NEW) for good.

Only orders this engine acquired (``own``) are in ``live_orders()``: recovery
on another machine loads exactly the orders it claimed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from exo.redis_store import RedisStore
from exo.scaleout.lease import lease_keys
from exo.scaleout.scripts import run_many
from exo.store import NEW, REPORT, Checkpoint, Entry, StoredOrder, StoreError, StoreUnavailable

__all__ = ["FencedStore"]

log = logging.getLogger("exo.scaleout")

# Every fenced script refuses with {-1, the order's epoch in Redis now (0: none)}:
# the writer judges by it whether the order moved on (see FencedStore._refused).

# KEYS: order, journal, checkpoint, epoch. ARGV: epoch, NEW (encoded), seq.
# 1 written, 0 the order exists already (journaled before: recover, do not restart), -1 fenced.
_NEW = """
local cur = redis.call('GET', KEYS[4])
if cur ~= ARGV[1] then return {-1, tonumber(cur) or 0} end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], '0-' .. ARGV[3], 'k', 'n')
return 1
"""

# KEYS: journal, epoch, seen, order. ARGV: epoch, seq, kind, value, intake id ('' none).
# 1 written, 0 order gone, -1 fenced, 2 duplicate intake message (already journaled).
# Idempotent: the same call run twice (redis-py sent it again after the
# connection dropped, the first copy having run) finds its entry 0-<seq> there
# and answers 1 again, not "duplicate" (which would keep the entry from the
# delegate while the journal holds it) nor an XADD error. Under one epoch only
# this engine writes, and it never gives one seq to two entries.
_APPEND = """
local cur = redis.call('GET', KEYS[2])
if cur ~= ARGV[1] then return {-1, tonumber(cur) or 0} end
if redis.call('EXISTS', KEYS[4]) == 0 then return 0 end
local id = '0-' .. ARGV[2]
if #redis.call('XRANGE', KEYS[1], id, id) > 0 then return 1 end
if ARGV[5] ~= '' and redis.call('SADD', KEYS[3], ARGV[5]) == 0 then return 2 end
redis.call('XADD', KEYS[1], id, 'k', ARGV[3], 'v', ARGV[4])
return 1
"""

# KEYS: checkpoint, journal, order, epoch. ARGV: epoch, applied, has state, state.
_CHECKPOINT = """
local cur = redis.call('GET', KEYS[4])
if cur ~= ARGV[1] then return {-1, tonumber(cur) or 0} end
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'applied', ARGV[2], 'state', ARGV[4])
else
  redis.call('HSET', KEYS[1], 'applied', ARGV[2])
end
redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. (tonumber(ARGV[2]) + 1))
return 1
"""

# KEYS: order, journal, checkpoint, seen, lease, epoch, done, progress, pver.
# ARGV: epoch, keep ms, final progress ('' none), its version.
# The completed order's journal goes; its final progress, epoch and done marker
# stay for keep ms (GET answers, a NEW delivered again is refused), all in one step.
_REMOVE = """
local ep = redis.call('GET', KEYS[6])
if ep ~= ARGV[1] then return {-1, tonumber(ep) or 0} end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('SET', KEYS[7], '1', 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[6], ARGV[2])
local cur = redis.call('GET', KEYS[9])
local newer = true
if cur then
  local e, v = string.match(cur, '^(%d+):(%d+)$')
  newer = e ~= ARGV[1] or tonumber(ARGV[4]) > tonumber(v)
end
if ARGV[3] ~= '' and newer then
  redis.call('SET', KEYS[8], ARGV[3], 'PX', ARGV[2])
  redis.call('SET', KEYS[9], ARGV[1] .. ':' .. ARGV[4], 'PX', ARGV[2])
else
  if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('PEXPIRE', KEYS[8], ARGV[2]) end
  if cur then redis.call('PEXPIRE', KEYS[9], ARGV[2]) end
end
return 1
"""

# KEYS: progress, epoch, done, pver. ARGV: epoch, json, version.
# 1 written, 0 older than the progress there (same epoch), -1 fenced.
# Once done, it expires with the done marker.
_PROGRESS = """
local ep = redis.call('GET', KEYS[2])
if ep ~= ARGV[1] then return {-1, tonumber(ep) or 0} end
local cur = redis.call('GET', KEYS[4])
if cur then
  local e, v = string.match(cur, '^(%d+):(%d+)$')
  if e == ARGV[1] and tonumber(ARGV[3]) <= tonumber(v) then return 0 end
end
local ttl = redis.call('PTTL', KEYS[3])
local stamp = ARGV[1] .. ':' .. ARGV[3]
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
  redis.call('SET', KEYS[4], stamp, 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[4], stamp)
end
return 1
"""

# KEYS: order, journal, checkpoint, epoch. ARGV: epoch the entry was written with, '1' for a NEW, seq.
# An entry in doubt is undone only under the epoch it was written with: a stale owner never
# deletes the new owner's order or its journal entry of the same seq. 1 undone, -1 fenced.
_DISCARD = """
local cur = redis.call('GET', KEYS[4])
if cur ~= ARGV[1] then return {-1, tonumber(cur) or 0} end
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
else
  redis.call('XDEL', KEYS[2], '0-' .. ARGV[3])
end
return 1
"""


class FencedStore(RedisStore):
    """RedisStore with fencing epochs; see the module doc.

    ``keep``: seconds a completed order's progress and done marker stay
    (GET answers, a late duplicate NEW is refused). ``on_fenced(order_id)``
    is called once per order whose write was refused.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "exo",
        timeout: float = 5.0,
        keep: float = 86_400.0,
        on_fenced: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(url, prefix=prefix, timeout=timeout)
        self.keep = keep
        self.on_fenced = on_fenced
        self.epochs: dict[str, int] = {}
        """order_id -> the epoch this engine acquired it with."""
        self.refused = 0
        """Writes refused because another engine acquired the order since."""
        self.duplicates = 0
        """Intake messages found already journaled (delivered twice, applied once)."""
        self._tags: dict[int, tuple[Any, str]] = {}
        self._duplicates: set[tuple[str, int]] = set()
        self._sent_with: dict[tuple[str, int], int] = {}
        """(order_id, seq) -> the epoch an entry was sent with, until its write is confirmed."""
        self.final_progress: Callable[[str], tuple[dict[str, Any], int] | None] | None = None
        """Called per completed order at its removal: its last progress and
        that progress's version, written with the removal in one step (so GET
        never shows a finished order as live). Called again if the removal is
        retried (Redis was unreachable)."""
        self.on_removed: Callable[[str], None] | None = None
        """Called once per completed order whose removal was written."""
        self._fenced_scripts: dict[str, Any] = {}

    # -- ownership --------------------------------------------------------------

    def own(self, order_id: str, epoch: int) -> None:
        self.epochs[order_id] = epoch

    def disown(self, order_id: str) -> None:
        self.epochs.pop(order_id, None)

    def tag(self, item: Any, intake_id: str) -> None:
        """The next journal write of ``item`` records ``intake_id`` in the
        order's seen set, atomically: a message delivered twice is journaled once."""
        self._tags[id(item)] = (item, intake_id)

    def untag(self, item: Any) -> None:
        self._tags.pop(id(item), None)

    def progress_key(self, order_id: str) -> str:
        return f"{self.prefix}:{{{order_id}}}:progress"

    def progress_version_key(self, order_id: str) -> str:
        return f"{self.prefix}:{{{order_id}}}:pver"

    def _script(self, source: str) -> Any:
        script = self._fenced_scripts.get(source)
        if script is None:
            script = self._fenced_scripts[source] = self._client().register_script(source)
        return script

    async def open(self) -> None:
        self._fenced_scripts.clear()
        await super().open()

    async def _load_scripts(self) -> None:
        # One SCRIPT LOAD per script, not pipelined: on a Redis Cluster
        # redis-py sends it to every master (and refuses it in a pipeline).
        from redis.exceptions import RedisError

        try:
            for script in self._scripts.values():
                await self._client().script_load(script.script)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"loading the Lua scripts failed: {type(exc).__name__}: {exc}") from exc

    async def _run_raw(self, source: str, calls: list[tuple[list[Any], list[Any]]], what: str) -> list[Any]:
        from redis.exceptions import RedisError

        try:
            replies = await run_many(self._client(), self._script(source), calls)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"{what} failed: Redis unreachable ({type(exc).__name__}: {exc})") from exc
        for r in replies:
            if isinstance(r, Exception):
                raise StoreError(f"{what} failed in Redis: {r}")
        return replies

    async def _run(
        self, source: str, calls: list[tuple[list[Any], list[Any]]], what: str
    ) -> list[tuple[int, int]]:
        """(code, the order's epoch in Redis) per call; the epoch only with a
        refusal (code -1), 0 otherwise."""
        out = []
        for r in await self._run_raw(source, calls, what):
            out.append((int(r[0]), int(r[1])) if isinstance(r, list) else (int(r), 0))
        return out

    def _refused(self, order_id: str, current: int) -> None:
        """A write of ``order_id`` was refused; ``current`` is the order's
        epoch in Redis at that moment (0: none). Judged by it, not by the
        epoch the refused write carried: when ``current`` is still the epoch
        this engine holds the order with, only that write was stale (a late
        copy from an earlier ownership here) and the order stays; otherwise
        the order moved on, and this engine drops it (``on_fenced``, once)."""
        self.refused += 1
        mine = self.epochs.get(order_id)
        if mine is None or mine == current:
            return
        del self.epochs[order_id]
        if self.on_fenced is not None:
            self.on_fenced(order_id)

    def _epoch(self, order_id: str) -> int:
        # 0 is never a live epoch (INCR starts at 1): an order not acquired is refused.
        return self.epochs.get(order_id, 0)

    # -- journal ----------------------------------------------------------------

    async def append(self, entries: Sequence[Entry]) -> list[bool]:
        dumps = self.encode
        news, others = [], []
        intakes: dict[int, str] = {}
        sent = self._sent_with
        for n, e in enumerate(entries):
            order_key, journal, checkpoint = self.keys(e.order_id)
            epoch_key = lease_keys(self.prefix, e.order_id).epoch
            # Kept until the write is confirmed: an entry in doubt is undone
            # (discard) only under the epoch it was sent with.
            sent[(e.order_id, e.seq)] = self._epoch(e.order_id)
            if e.kind == NEW:
                news.append(
                    (
                        n,
                        (
                            [order_key, journal, checkpoint, epoch_key],
                            [self._epoch(e.order_id), dumps(e.item), e.seq],
                        ),
                    )
                )
            else:
                tagged = self._tags.pop(id(e.item), None)
                intake = tagged[1] if tagged is not None else ""
                if intake:
                    intakes[n] = intake
                seen = f"{self.prefix}:{{{e.order_id}}}:seen"
                others.append(
                    (
                        n,
                        (
                            [journal, epoch_key, seen, order_key],
                            [self._epoch(e.order_id), e.seq, e.kind, dumps(e.item), intake],
                        ),
                    )
                )
        written = [False] * len(entries)
        if news:
            # The index first (a crash leaves an index entry that recovery drops).
            pipe = self._client().pipeline(transaction=False)
            pipe.sadd(self.index_key, *{entries[n].order_id for n, _ in news})
            await self._execute(pipe, "live-order index")
        for batch, source in ((news, _NEW), (others, _APPEND)):
            if not batch:
                continue
            replies = await self._run(source, [c for _, c in batch], f"journal write of {len(batch)} entries")
            for (n, _), (r, current) in zip(batch, replies, strict=True):
                if r == -1:
                    self._refused(entries[n].order_id, current)
                elif r == 2:
                    self._duplicated(entries[n], intakes.get(n, ""))
                written[n] = r == 1
        for e in entries:
            sent.pop((e.order_id, e.seq), None)
        return written

    def _duplicated(self, entry: Entry, intake_id: str) -> None:
        self.duplicates += 1
        self._duplicates.add((entry.order_id, entry.seq))
        kind = "report" if entry.kind == REPORT else "instruction"
        log.info(
            "order %s: %s %s delivered again; it was journaled and applied once already, "
            "this copy is dropped",
            entry.order_id,
            kind,
            intake_id,
        )

    def was_duplicate(self, entry: Entry) -> bool:
        """True (once) for an entry ``append`` left out as a second delivery of
        an intake message already journaled (its id in the order's seen set)."""
        try:
            self._duplicates.remove((entry.order_id, entry.seq))
        except KeyError:
            return False
        return True

    async def discard(self, entries: Sequence[Entry]) -> None:
        """Undoes entries in doubt, each fenced by the epoch it was sent with
        (in Lua, against the order's epoch in Redis): once another engine
        acquired the order, nothing is undone, so a stale owner never deletes
        the new owner's order nor its journal entry of the same seq."""
        calls, undone = [], []
        for e in entries:
            epoch = self._sent_with.get((e.order_id, e.seq))
            if not epoch:
                continue  # never sent under an epoch of ours: nothing written to undo
            order_key, journal, checkpoint = self.keys(e.order_id)
            keys = [order_key, journal, checkpoint, lease_keys(self.prefix, e.order_id).epoch]
            calls.append((keys, [epoch, "1" if e.kind == NEW else "0", e.seq]))
            undone.append(e)
        replies = await self._run(_DISCARD, calls, f"discarding {len(calls)} unconfirmed journal entries")
        gone = []
        for e, (r, current) in zip(undone, replies, strict=True):
            if r == -1:
                self._refused(e.order_id, current)
            elif e.kind == NEW:
                gone.append(e.order_id)
        for e in entries:
            self._sent_with.pop((e.order_id, e.seq), None)
        if gone:
            pipe = self._client().pipeline(transaction=False)
            pipe.srem(self.index_key, *gone)
            await self._execute(pipe, "live-order index")

    async def checkpoint(self, checkpoints: Sequence[Checkpoint]) -> None:
        calls = []
        for c in checkpoints:
            order_key, journal, checkpoint = self.keys(c.order_id)
            flag, state = ("0", b"") if c.state is None else ("1", c.state)
            epoch_key = lease_keys(self.prefix, c.order_id).epoch
            calls.append(
                (
                    [checkpoint, journal, order_key, epoch_key],
                    [self._epoch(c.order_id), c.applied, flag, state],
                )
            )
        replies = await self._run(_CHECKPOINT, calls, f"checkpoint of {len(calls)} orders")
        for c, (r, current) in zip(checkpoints, replies, strict=True):
            if r == -1:
                self._refused(c.order_id, current)

    async def remove(self, order_ids: Sequence[str]) -> None:
        calls = []
        keep_ms = max(1, int(self.keep * 1000))
        for oid in order_ids:
            lk = lease_keys(self.prefix, oid)
            seen = f"{self.prefix}:{{{oid}}}:seen"
            keys = [
                *self.keys(oid),
                seen,
                lk.lease,
                lk.epoch,
                lk.done,
                self.progress_key(oid),
                self.progress_version_key(oid),
            ]
            final = None if self.final_progress is None else self.final_progress(oid)
            doc, version = ("", 0) if final is None else (json.dumps(final[0]), final[1])
            calls.append((keys, [self._epoch(oid), keep_ms, doc, version]))
        replies = await self._run(_REMOVE, calls, f"removal of {len(calls)} completed orders")
        removed = []
        for oid, (r, current) in zip(order_ids, replies, strict=True):
            if r == -1:
                self._refused(oid, current)
            else:
                removed.append(oid)
                self.epochs.pop(oid, None)
                if self.on_removed is not None:
                    self.on_removed(oid)
        if removed:
            pipe = self._client().pipeline(transaction=False)
            pipe.srem(self.index_key, *removed)
            await self._execute(pipe, "live-order index")

    async def write_progress(self, progress: Sequence[tuple[str, int, dict[str, Any], int]]) -> int:
        """Writes each (order_id, epoch, progress, version) as JSON (what GET
        answers), fenced by the epoch the order was acquired with; a version
        not above the one written last under that epoch changes nothing (a
        completed order's last progress may land after its removal, an older
        one never over it). Returns how many were older and left out."""
        calls = []
        for oid, epoch, doc, version in progress:
            lk = lease_keys(self.prefix, oid)
            keys = [self.progress_key(oid), lk.epoch, lk.done, self.progress_version_key(oid)]
            calls.append((keys, [epoch, json.dumps(doc), version]))
        replies = await self._run(_PROGRESS, calls, f"progress of {len(calls)} orders")
        for (oid, _, _, _), (r, current) in zip(progress, replies, strict=True):
            if r == -1:
                self._refused(oid, current)
        return sum(1 for r, _ in replies if r == 0)

    # -- recovery ---------------------------------------------------------------

    async def live_orders(self) -> list[str]:
        return sorted(self.epochs)

    async def all_live_orders(self) -> list[str]:
        """Every live order in the index, whoever owns it."""
        return await super().live_orders()

    async def load(self, order_ids: Iterable[str]) -> list[StoredOrder]:
        return await super().load(order_ids)

    async def _load_replies(self, ids: list[str]) -> list[Any]:
        # Through run_many, so that a Redis Cluster (no EVALSHA in pipelines) works too.
        from exo.redis_store import _LOAD

        replies = await self._run_raw(
            _LOAD, [(list(self.keys(oid)), []) for oid in ids], f"loading {len(ids)} orders"
        )
        return replies
