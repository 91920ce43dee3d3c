"""The intake: Redis Streams read by one consumer group of engines.

Keys (``prefix`` defaults to ``exo``):

    <prefix>:intake:{intake.<p>}     STREAM  partition p of the intake (p = crc32(order_id) % partitions)
    <prefix>:inbox:{inbox.<engine>}  STREAM  instructions and reports forwarded to one engine

Each stream has its own hash tag, so each lives on one Cluster slot and no
command spans two. An entry's fields: ``k`` = n | i | r (NEW, CANCEL/REPLACE,
report), ``o`` = order_id, ``v`` = the item (the store's codec), and on an
inbox entry ``m`` = the intake id it came from (the order's seen set is keyed
by it, so a message forwarded twice is journaled once).

Every stream has one consumer group, ``engines``; the consumer is the engine's
name. The pitfalls of VENUES.md ("Redis Streams for scale-out"), one rule each:

- ``read``: the consumer's own pending entries first (ID ``0``), then new
  ones (``>``); the caller ACKs only after the effect is durable.
- ``autoclaim``: XAUTOCLAIM from a consumer that is gone, iterating the
  cursor to ``0-0`` and without ``justid`` (whose parsing drops the cursor);
  ids the stream deleted meanwhile come back separately and are not work.
- ``retire``: DELCONSUMER only after its pending entries were claimed
  (DELCONSUMER silently drops them).
- Blocking reads need a client of their own whose socket timeout exceeds the
  block time (``connect(url, socket_timeout=None)``), or redis-py raises a
  timeout on a healthy connection.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GROUP",
    "Message",
    "autoclaim",
    "ensure_group",
    "inbox_stream",
    "intake_stream",
    "partition_of",
    "read",
    "retire",
]

GROUP = "engines"


def intake_stream(prefix: str, partition: int) -> str:
    return f"{prefix}:intake:{{intake.{partition}}}"


def inbox_stream(prefix: str, engine: str) -> str:
    return f"{prefix}:inbox:{{inbox.{engine}}}"


def partition_of(order_id: str, partitions: int) -> int:
    """Which intake partition carries an order's messages (stable across processes)."""
    return zlib.crc32(order_id.encode()) % partitions


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Message:
    """One stream entry: its id, the stream it is in, and its fields (bytes keys)."""

    stream: str
    id: str
    fields: dict[bytes, bytes]

    @property
    def kind(self) -> str:
        return _text(self.fields.get(b"k", b""))

    @property
    def order_id(self) -> str:
        return _text(self.fields.get(b"o", b""))

    @property
    def intake_id(self) -> str:
        """``<stream>@<id>`` of the intake entry it came from (itself, unless forwarded)."""
        origin = self.fields.get(b"m")
        return intake_key(self.stream, self.id) if origin is None else _text(origin)


def intake_key(stream: str, entry_id: str) -> str:
    """What the seen set records for an intake entry: stream and id."""
    return f"{stream}@{entry_id}"


async def ensure_group(client: Any, stream: str) -> None:
    """Creates the stream and its ``engines`` group (from the first entry) if missing."""
    from redis.exceptions import ResponseError

    try:
        await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _messages(stream: str, entries: Any) -> list[Message]:
    out = []
    for entry_id, fields in entries or []:
        if fields is None:  # deleted while pending (XREADGROUP with 0 reports it so)
            out.append(Message(stream, _text(entry_id), {}))
            continue
        out.append(Message(stream, _text(entry_id), dict(fields)))
    return out


async def read(
    client: Any, stream: str, consumer: str, *, block_ms: int, count: int = 256
) -> AsyncIterator[list[Message]]:
    """Batches for ``consumer``: its own pending entries first (ID ``0``, left
    from before a restart), then new ones (``>``, blocking up to ``block_ms``
    per call; an empty batch when nothing came). Runs until cancelled."""
    last = "0"
    while last != ">":
        reply = await client.xreadgroup(GROUP, consumer, {stream: last}, count=count)
        batch = _messages(stream, reply[0][1]) if reply else []
        if not batch:
            last = ">"
            break
        last = batch[-1].id
        yield batch
    while True:
        reply = await client.xreadgroup(GROUP, consumer, {stream: ">"}, count=count, block=block_ms)
        yield _messages(stream, reply[0][1]) if reply else []


async def autoclaim(
    client: Any, stream: str, consumer: str, min_idle_ms: int, *, count: int = 256
) -> tuple[list[Message], list[str]]:
    """Claims for ``consumer`` every entry of ``stream`` pending longer than
    ``min_idle_ms`` in the group, iterating XAUTOCLAIM's cursor until ``0-0``.
    Returns (claimed messages, ids that were deleted from the stream while
    pending: Redis 7 drops them from the PEL and reports them; they are no work).
    """
    claimed: list[Message] = []
    deleted: list[str] = []
    cursor = "0-0"
    while True:
        reply = await client.xautoclaim(stream, GROUP, consumer, min_idle_ms, start_id=cursor, count=count)
        cursor = _text(reply[0])
        claimed.extend(m for m in _messages(stream, reply[1]) if m.fields)
        if len(reply) > 2:
            deleted.extend(_text(i) for i in reply[2])
        if cursor == "0-0":
            return claimed, deleted


async def consumers(client: Any, stream: str) -> dict[str, tuple[int, int]]:
    """The group's consumers of ``stream``: name -> (pending entries, idle ms)."""
    from redis.exceptions import ResponseError

    try:
        rows = await client.xinfo_consumers(stream, GROUP)
    except ResponseError:
        return {}
    return {_text(r["name"]): (int(r["pending"]), int(r["idle"])) for r in rows}


async def retire(client: Any, stream: str, gone: str, claimer: str) -> list[Message]:
    """Removes consumer ``gone`` from the group, after claiming every entry it
    still had pending for ``claimer`` (min idle 0: the caller knows it is gone).
    Returns the claimed entries; the caller handles and ACKs them."""
    pending = await client.xpending_range(stream, GROUP, min="-", max="+", count=10_000, consumername=gone)
    ids = [_text(p["message_id"]) for p in pending]
    claimed: list[Message] = []
    if ids:
        for start in range(0, len(ids), 512):
            chunk = ids[start : start + 512]
            entries = await client.xclaim(stream, GROUP, claimer, 0, chunk)
            claimed.extend(m for m in _messages(stream, entries) if m.fields)
    # Only now: DELCONSUMER would have silently dropped what it still had pending.
    left = await client.xpending_range(stream, GROUP, min="-", max="+", count=1, consumername=gone)
    if not left:
        await client.xgroup_delconsumer(stream, GROUP, gone)
    return claimed
