"""Lua scripts run by digest (EVALSHA), loaded again when Redis lost them.

``redis.Script`` objects from ``register_script`` load themselves when a
single call meets NOSCRIPT; in a pipeline (on one server or a Redis Cluster,
where each master has its own script cache) ``run_many`` does the same for a
batch: the calls that met NOSCRIPT are sent again after SCRIPT LOAD (on every
master), so a restarted Redis or a new master costs one extra round trip,
not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["run_many"]


async def run_many(
    client: Any, script: Any, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]
) -> list[Any]:
    """Runs ``script`` (a ``register_script`` Script) once per (keys, args) in
    one pipeline; returns the replies in order. A reply that is an error other
    than NOSCRIPT is returned as the exception object, not raised; connection
    trouble raises (redis ConnectionError/TimeoutError, OSError).

    On a Redis Cluster too: redis-py refuses ``pipeline.evalsha`` there, but
    routes a plain ``EVALSHA`` command by its keys' slot like any keyed
    command, and sends each node's share of the pipeline in order on one
    connection. So one order's calls (its keys share a hash tag, one slot)
    reach Redis in the order given: a journal's ``XADD 0-<seq>`` never
    overtakes the one before it (sent one by one on several connections, it
    did, and failed "equal or smaller than the target stream top item"), and
    a renewal round of thousands of leases is a round trip per node, not one
    per lease."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import NoScriptError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if not calls:
        return []
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for _attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for i in todo:
            keys, args = calls[i]
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        results = await pipe.execute(raise_on_error=False)
        missing = []
        for i, r in zip(todo, results, strict=True):
            if isinstance(r, (RedisConnectionError, RedisTimeoutError, OSError)):
                raise r  # a Cluster pipeline returns a node's connection trouble: raised, as for one server
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
