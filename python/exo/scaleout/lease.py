"""Leases on orders, with a fencing epoch.

Each live order has at most one owner (an engine, by name). Keys, beside the
order's own (same hash tag, so one Cluster slot and atomic Lua):

    <prefix>:{<order_id>}:lease   STRING  "<engine>/<epoch>", expires after the lease (PX)
    <prefix>:{<order_id>}:epoch   STRING  fencing epoch, INCR at every acquisition
    <prefix>:{<order_id>}:done    STRING  "1" once the order completed (kept for the retention)

- acquire: only when no lease exists (``SET NX PX`` semantics, done in Lua so
  the epoch is INCR-ed in the same step); returns the new epoch. A completed
  order (``done``) is never acquired again, so a NEW delivered twice never
  restarts it.
- renew: compare-and-set on the token; a lease that lapsed is taken back only
  when nobody acquired it since (the epoch is still ours): the owner keeps
  what it can prove it still owns and nothing else.
- release: compare-and-delete on the token (a graceful stop hands the order
  over at once).

Pitfall (VENUES.md "Redis Streams for scale-out"): renew and release are
never a plain SET/DEL, which would take or drop another engine's lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exo.scaleout.scripts import run_many

__all__ = ["Lease", "LeaseKeys", "Leases"]

# KEYS: lease, epoch, done. ARGV: owner, ttl ms.
# -> {epoch, token} when acquired, {0, current token} when held, {-1, ''} when done.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return {-1, ''} end
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
local e = redis.call('INCR', KEYS[2])
local token = ARGV[1] .. '/' .. e
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return {e, token}
"""

# KEYS: lease, epoch. ARGV: token, ttl ms, epoch.
# 1 renewed, 2 taken back after it lapsed (nobody acquired it since), 0 lost.
_RENEW = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""

# KEYS: lease. ARGV: token. 1 released, 0 not ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class LeaseKeys:
    """Key names of one order's lease."""

    lease: str
    epoch: str
    done: str


def lease_keys(prefix: str, order_id: str) -> LeaseKeys:
    tag = f"{prefix}:{{{order_id}}}"
    return LeaseKeys(f"{tag}:lease", f"{tag}:epoch", f"{tag}:done")


@dataclass(frozen=True)
class Lease:
    """An order's lease as held by one engine."""

    order_id: str
    epoch: int
    token: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def owner_of(token: str | bytes | None) -> str | None:
    """The engine name in a lease token ``<engine>/<epoch>``, or None."""
    if token is None:
        return None
    return _text(token).rsplit("/", 1)[0] or None


class Leases:
    """Acquire, renew and release order leases for one engine (``owner``).

    ``client``: a redis-py asyncio client (``Redis`` or ``RedisCluster``).
    ``ttl``: lease length in seconds; renew at least every ``ttl / 3``.
    """

    def __init__(self, client: Any, owner: str, ttl: float, prefix: str = "exo") -> None:
        if not owner or "/" in owner or "{" in owner or "}" in owner:
            raise ValueError(f"engine name must be non-empty, without '/', '{{' or '}}', got {owner!r}")
        if not ttl > 0:
            raise ValueError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
        self.client = client
        self.owner = owner
        self.ttl = ttl
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    def keys(self, order_id: str) -> LeaseKeys:
        return lease_keys(self.prefix, order_id)

    async def acquire(self, order_ids: Sequence[str]) -> dict[str, Lease | str | None]:
        """Per order: a Lease when acquired; the holder's engine name (str) when
        another lease is held; None when the order completed (never again)."""
        calls = []
        for oid in order_ids:
            k = self.keys(oid)
            calls.append(([k.lease, k.epoch, k.done], [self.owner, self.ttl_ms]))
        replies = await run_many(self.client, self._acquire, calls)
        out: dict[str, Lease | str | None] = {}
        for oid, reply in zip(order_ids, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            epoch, token = int(reply[0]), _text(reply[1])
            if epoch > 0:
                out[oid] = Lease(oid, epoch, token)
            elif epoch == 0:
                out[oid] = owner_of(token) or ""
            else:
                out[oid] = None
        return out

    async def renew(self, leases: Sequence[Lease]) -> list[bool]:
        """Per lease: True while it is still ours (renewed, or taken back after
        it lapsed with nobody acquiring it); False once another engine holds it."""
        calls = []
        for lease in leases:
            k = self.keys(lease.order_id)
            calls.append(([k.lease, k.epoch], [lease.token, self.ttl_ms, lease.epoch]))
        replies = await run_many(self.client, self._renew, calls)
        out = []
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
            out.append(int(reply) > 0)
        return out

    async def release(self, leases: Sequence[Lease]) -> list[bool]:
        """Per lease: True when it was ours and is now gone."""
        calls = [([self.keys(lease.order_id).lease], [lease.token]) for lease in leases]
        replies = await run_many(self.client, self._release, calls)
        return [not isinstance(r, Exception) and int(r) == 1 for r in replies]

    async def owners(self, order_ids: Sequence[str]) -> dict[str, str | None]:
        """The engine holding each order's lease, or None (no lease: lapsed or never taken)."""
        if not order_ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for oid in order_ids:
            pipe.get(self.keys(oid).lease)
        replies = await pipe.execute()
        return {oid: owner_of(r) for oid, r in zip(order_ids, replies, strict=True)}
