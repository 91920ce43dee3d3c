"""Lua scripts run by digest (EVALSHA), loaded again when Redis lost them.

``redis.Script`` objects from ``register_script`` load themselves when a
single call meets NOSCRIPT; in a pipeline (and on a Redis Cluster, where each
master has its own script cache) ``run_many`` does the same for a batch: the
calls that met NOSCRIPT are sent again after SCRIPT LOAD, so a restarted
Redis or a new master costs one extra round trip, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["run_many"]

_IN_FLIGHT = 64
"""Concurrent script calls on a Redis Cluster (redis-py does not pipeline EVALSHA there)."""


def _tag(keys: Sequence[Any]) -> Any:
    """The hash tag of a call's first key (its Cluster slot), or the key itself."""
    if not keys:
        return None
    key = keys[0]
    text = key.decode() if isinstance(key, bytes) else str(key)
    start = text.find("{")
    end = text.find("}", start + 1)
    return text[start + 1 : end] if start >= 0 and end > start + 1 else text


async def _run_cluster(
    client: Any, script: Any, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]
) -> list[Any]:
    """One call per (keys, args), each routed to the master of its keys' slot;
    the Script loads itself on NOSCRIPT. Calls on the same hash tag (one
    order's keys) run one after the other in the given order, as a pipeline
    would run them: concurrent calls go out on different connections and may
    reach Redis in any order, and a journal's ``XADD 0-<seq>`` that overtakes
    the one before it makes that one fail ("equal or smaller than the target
    stream top item"). At most ``_IN_FLIGHT`` tags at a time."""
    import asyncio

    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    gate = asyncio.Semaphore(_IN_FLIGHT)
    replies: list[Any] = [None] * len(calls)
    groups: dict[Any, list[int]] = {}
    for i, (keys, _args) in enumerate(calls):
        groups.setdefault(_tag(keys), []).append(i)

    async def one(indices: list[int]) -> None:
        async with gate:
            for i in indices:
                keys, args = calls[i]
                try:
                    replies[i] = await script(keys=list(keys), args=list(args), client=client)
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    raise
                except Exception as exc:  # a command error: returned, as run_many does
                    replies[i] = exc

    await asyncio.gather(*(one(indices) for indices in groups.values()))
    return replies


async def run_many(
    client: Any, script: Any, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]
) -> list[Any]:
    """Runs ``script`` (a ``register_script`` Script) once per (keys, args) in
    one pipeline; returns the replies in order. A reply that is an error other
    than NOSCRIPT is returned as the exception object, not raised; connection
    trouble raises (redis ConnectionError/TimeoutError, OSError)."""
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import NoScriptError

    if not calls:
        return []
    if isinstance(client, RedisCluster):
        return await _run_cluster(client, script, calls)
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for _attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for i in todo:
            keys, args = calls[i]
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        results = await pipe.execute(raise_on_error=False)
        missing = []
        for i, r in zip(todo, results, strict=True):
            if isinstance(r, NoScriptError) or (isinstance(r, Exception) and "NOSCRIPT" in str(r)):
                missing.append(i)
            else:
                replies[i] = r
        if not missing:
            return replies
        await client.script_load(script.script)
        todo = missing
    for i in todo:
        replies[i] = RuntimeError("NOSCRIPT after SCRIPT LOAD")
    return replies
