"""Intake: what an ``api`` process uses to hand instructions to the engines.

``submit(order)`` writes a NEW, CANCEL or REPLACE to the order's intake
partition (``exo.scaleout.streams``) and returns once Redis has it: the
engines' consumer group delivers it to one engine (a NEW) or to the order's
owner (the others), even if that engine dies meanwhile. ``progress(order_id)``
reads what the owner last wrote for the order (any api process can answer a
GET; nothing lives in one process's memory).
"""

from __future__ import annotations

import json
from typing import Any

from exo._core import MsgType
from exo._corelink import new_order_id
from exo.scaleout.client import connect
from exo.scaleout.lease import lease_keys, owner_of
from exo.scaleout.streams import agree_partitions, engines_key, intake_stream, partition_of
from exo.store import INSTRUCTION, NEW, REPORT, Codec, PickleCodec, StoreUnavailable

__all__ = ["Intake"]


class Intake:
    """The api role's side of the intake. Use ``async with Intake(url):``."""

    def __init__(
        self,
        url: str,
        *,
        partitions: int = 4,
        prefix: str = "exo",
        timeout: float = 5.0,
        codec: Codec | None = None,
    ) -> None:
        if not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"partitions must be a positive integer, got {partitions!r}")
        self.url, self.partitions, self.prefix, self.timeout = url, partitions, prefix, timeout
        self.codec: Codec = PickleCodec() if codec is None else codec
        self._client: Any = None

    async def open(self) -> None:
        """Connects and checks the deployment's partition count.

        :raises StoreUnavailable: Redis does not answer.
        :raises ValueError: Redis serves a deployment with another
            ``partitions`` (``exo.scaleout.streams.agree_partitions``).
        """
        from redis.exceptions import RedisError

        # No retries inside the client: a CANCEL/REPLACE written twice would be
        # applied twice (two intake ids); ``_send`` retries a NEW itself.
        self._client = connect(
            self.url, socket_timeout=self.timeout, connect_timeout=self.timeout, retry=False
        )
        try:
            await self._client.ping()
            await agree_partitions(self._client, self.prefix, self.partitions)
        except (RedisError, OSError) as exc:
            await self.close()
            raise StoreUnavailable(f"cannot reach Redis for the intake: {type(exc).__name__}: {exc}") from exc
        except ValueError:
            await self.close()
            raise

    async def engines(self) -> list[str]:
        """The engines alive now, by name: those whose heartbeat in ``exo:engines``
        is not past Redis's clock (an engine stopped gracefully is not listed).

        :raises StoreUnavailable: Redis does not answer.
        """
        from redis.exceptions import RedisError

        client = self._c()
        try:
            seconds, micros = await client.time()
            now_ms = int(seconds) * 1000 + int(micros) // 1000
            names = await client.zrangebyscore(engines_key(self.prefix), f"({now_ms}", "+inf")
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"cannot read the live engines: {type(exc).__name__}: {exc}") from exc
        return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> Intake:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _c(self) -> Any:
        if self._client is None:
            raise RuntimeError("Intake is not open: use 'async with Intake(url):'")
        return self._client

    async def _send(self, kind: str, order_id: str, item: Any) -> str:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import RedisError

        stream = intake_stream(self.prefix, partition_of(order_id, self.partitions))
        fields = {"k": kind, "o": order_id, "v": self.codec.dumps(item)}
        try:
            try:
                entry = await self._c().xadd(stream, fields)
            except RedisConnectionError:
                if kind != NEW:
                    raise
                # A pooled connection Redis closed (it restarted): once more on a
                # fresh one. Safe for a NEW only: its order_id makes a second
                # copy a no-op (the engines take an order_id once).
                entry = await self._c().xadd(stream, fields)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(
                f"the intake stream did not take it ({type(exc).__name__}: {exc}): not accepted, send again"
            ) from exc
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    async def submit(self, order: Any) -> str:
        """Writes the instruction to the intake; returns its order_id (a NEW
        gets one here). Raises StoreUnavailable when Redis did not take it,
        TypeError/ValueError for what is not an instruction."""
        msg_type = getattr(order, "msg_type", None)
        if msg_type == MsgType.NEW:
            if order.order_id is None:
                order.order_id = new_order_id()
            kind = NEW
        elif msg_type in (MsgType.CANCEL, MsgType.REPLACE):
            if not order.order_id:
                raise ValueError("a CANCEL or REPLACE needs the order_id of a live order")
            kind = INSTRUCTION
        else:
            raise TypeError(f"expected an exo.Order (NEW, CANCEL or REPLACE), got {order!r}")
        await self._send(kind, order.order_id, order)
        return str(order.order_id)

    async def submit_new(self, order: Any, progress: dict[str, Any]) -> str:
        """A NEW, with what ``progress(order_id)`` answers until its owner's
        first action (so a GET right after the POST finds the order)."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import RedisError

        if getattr(order, "msg_type", None) != MsgType.NEW:
            raise TypeError(f"submit_new takes a NEW order, got {order!r}")
        if order.order_id is None:
            order.order_id = new_order_id()
        progress = {**progress, "orderID": order.order_id}
        key = f"{self.prefix}:{{{order.order_id}}}:progress"
        try:
            try:
                await self._c().set(key, json.dumps(progress), nx=True)
            except RedisConnectionError:
                await self._c().set(key, json.dumps(progress), nx=True)  # idempotent (NX)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis did not take the order ({type(exc).__name__}: {exc})") from exc
        try:
            return await self.submit(order)
        except StoreUnavailable:
            try:
                await self._c().delete(key)
            except (RedisError, OSError):
                pass  # a placeholder without an order: GET shows PENDING_NEW until it expires
            raise

    async def ping(self) -> None:
        """Raises StoreUnavailable unless Redis answers."""
        from redis.exceptions import RedisError

        try:
            await self._c().ping()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis unreachable: {type(exc).__name__}: {exc}") from exc

    async def report(self, report: Any) -> None:
        """Writes an execution report for its order's owner to the intake."""
        order_id = getattr(report, "order_id", None)
        if not isinstance(order_id, str) or not order_id:
            raise ValueError("a report needs the order_id of a live order")
        await self._send(REPORT, order_id, report)

    async def progress(self, order_id: str) -> dict[str, Any] | None:
        """The order's progress as its owner last wrote it (after each action,
        kept for a while after it completed), or None when unknown."""
        from redis.exceptions import RedisError

        key = f"{self.prefix}:{{{order_id}}}:progress"
        try:
            raw = await self._get(key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"cannot read the order's progress: {type(exc).__name__}: {exc}") from exc
        return None if raw is None else dict(json.loads(raw))

    async def _get(self, key: str) -> Any:
        from redis.exceptions import ConnectionError as RedisConnectionError

        try:
            return await self._c().get(key)
        except RedisConnectionError:
            return await self._c().get(key)  # a read: once more on a fresh connection (Redis restarted)

    async def order(self, order_id: str) -> Any | None:
        """The NEW as submitted, while the order is live (None otherwise)."""
        raw = await self._get(f"{self.prefix}:{{{order_id}}}:order")
        return None if raw is None else self.codec.loads(raw)

    async def owner(self, order_id: str) -> str | None:
        """The engine holding the order's lease, or None."""
        return owner_of(await self._get(lease_keys(self.prefix, order_id).lease))
