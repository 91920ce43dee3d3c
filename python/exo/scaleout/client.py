"""Redis clients for scale-out: one server or a Redis Cluster, from one URL.

``redis://host:port/db`` (or ``rediss://``, ``unix://``) is one server;
``redis+cluster://[:password@]host:port[,host:port...]`` names a Redis
Cluster by seed nodes (any one answering is enough; the rest of the cluster
is discovered). ``cluster_nodes(url)`` parses the seeds.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["CLUSTER_SCHEME", "RETRIES", "cluster_nodes", "connect", "is_cluster"]

CLUSTER_SCHEME = "redis+cluster"


def is_cluster(url: str) -> bool:
    """True for a ``redis+cluster://`` URL."""
    return urlsplit(url).scheme == CLUSTER_SCHEME


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], str | None, str | None]:
    """(seed nodes as (host, port), username, password) of a ``redis+cluster://`` URL.

    Raises ValueError naming what is wrong: no node, a port that is not a number.
    """
    parts = urlsplit(url)
    if parts.scheme != CLUSTER_SCHEME:
        raise ValueError(f"expected redis+cluster://host:port[,host:port...], got scheme {parts.scheme!r}")
    netloc = parts.netloc
    user = password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        name, sep, secret = auth.partition(":")
        user = unquote(name) or None
        password = unquote(secret) if sep else None
    nodes = []
    for seed in filter(None, (s.strip() for s in netloc.split(","))):
        host, sep, port = seed.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"cluster seed {seed!r} in the URL must be host:port")
        nodes.append((host.strip("[]") or "127.0.0.1", int(port)))
    if not nodes:
        raise ValueError("a redis+cluster:// URL needs at least one seed node: redis+cluster://host:port")
    return nodes, user, password


def _retryable(error: Exception) -> bool:
    """A ConnectionError worth another try: not refused credentials or
    permissions (redis-py makes those ConnectionErrors too), not a full pool."""
    from redis.exceptions import AuthenticationError, AuthorizationError, MaxConnectionsError

    return not isinstance(error, (AuthenticationError, AuthorizationError, MaxConnectionsError))


@functools.cache
def _reconnect_class() -> Any:
    """Made on first use: redis is an optional dependency."""
    from redis.asyncio.retry import Retry

    class Reconnect(Retry):
        """redis-py's ``Retry``, minus the errors another try cannot mend."""

        async def call_with_retry(
            self, do: Any, fail: Any, is_retryable: Any = None, with_failure_count: bool = False
        ) -> Any:
            return await super().call_with_retry(
                do, fail, is_retryable=_retryable, with_failure_count=with_failure_count
            )

    return Reconnect


RETRIES = 6
"""Retries of a command that met a dropped connection (``redis.ConnectionError``:
a pooled connection Redis closed when it restarted, a refused connect, LOADING):
each after a reconnect, waiting ``ExponentialBackoff(cap=0.5, base=0.025)``
between them (0.05, 0.1, 0.2, 0.4, 0.5, 0.5 s): an outage of up to about 1.7 s
costs a delay, not an error."""


def connect(
    url: str,
    *,
    socket_timeout: float | None,
    connect_timeout: float = 5.0,
    retry: bool = True,
    **options: Any,
) -> Any:
    """A redis-py asyncio client (``Redis`` or ``RedisCluster``), not yet connected.

    ``retry`` (one server): a command that meets a dropped connection is sent
    again on a new one, ``RETRIES`` times with exponential backoff (redis-py's
    own ``Retry``, ``supported_errors=(ConnectionError,)``). Without it, after
    a Redis restart every stale pooled connection failed one command, lease
    renewals among them (in a loaded run orders changed hands after a 0.5 s
    outage).
    Timeouts are not retried: a command that timed out may have run, and the
    caller decides (the journal undoes the write in doubt). A ConnectionError
    almost always means the command never reached Redis (a stale connection,
    a refused connect, a server still LOADING); the rare one that ran before
    the connection died is retried too, so every command sent through such a
    client must be safe to run twice: see the callers (``EngineNode``,
    ``RedisStore``, ``FencedStore``). ``retry=False`` for blocking reads (their
    loop reconnects) and for ``Intake`` (a CANCEL written twice would be
    applied twice; it retries NEWs itself).

    A Redis Cluster client gets no retries inside the client (redis-py's
    cluster retry re-sends whole pipelines after a reconnect, timeouts
    included): a write whose reply is lost surfaces to the caller.
    ``socket_timeout`` None waits forever: only for blocking reads that bound
    their own wait (XREADGROUP BLOCK).
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff, NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    if is_cluster(url):
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        nodes, user, password = cluster_nodes(url)
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in nodes],
            username=user,
            password=password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 0),
            **options,
        )
    from redis.asyncio import Redis

    policy = (
        _reconnect_class()(
            ExponentialBackoff(cap=0.5, base=0.025), RETRIES, supported_errors=(RedisConnectionError,)
        )
        if retry
        else Retry(NoBackoff(), 0)
    )
    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=policy,
        **options,
    )
