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


async def run_many(client: Any, script: Any, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
    """Runs ``script`` (a ``register_script`` Script) once per (keys, args) in
    one pipeline; returns the replies in order. A reply that is an error other
    than NOSCRIPT is returned as the exception object, not raised; connection
    trouble raises (redis ConnectionError/TimeoutError, OSError)."""
    from redis.exceptions import NoScriptError

    if not calls:
        return []
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for i in todo:
            keys, args = calls[i]
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        results = await pipe.execute(raise_on_error=False)
        missing = []
        for i, r in zip(todo, results):
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
