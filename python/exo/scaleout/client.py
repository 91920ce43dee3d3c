"""Redis clients for scale-out: one server or a Redis Cluster, from one URL.

``redis://host:port/db`` (or ``rediss://``, ``unix://``) is one server;
``redis+cluster://[:password@]host:port[,host:port...]`` names a Redis
Cluster by seed nodes (any one answering is enough; the rest of the cluster
is discovered). ``cluster_nodes(url)`` parses the seeds.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["CLUSTER_SCHEME", "cluster_nodes", "connect", "is_cluster"]

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


def connect(url: str, *, socket_timeout: float | None, connect_timeout: float = 5.0, **options: Any) -> Any:
    """A redis-py asyncio client (``Redis`` or ``RedisCluster``), not yet connected.

    No retries inside the client: a write whose reply is lost surfaces to the
    caller, which decides (the journal undoes it; a lease renewal retries).
    ``socket_timeout`` None waits forever: only for blocking reads that bound
    their own wait (XREADGROUP BLOCK).
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

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

    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
        **options,
    )
