"""Fixtures for the test suite; helpers live in helpers.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import Errors, Recorder
from tests.redis_cluster import RedisCluster
from tests.redis_server import RedisServer


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture(autouse=True)
def _reset_recorders() -> None:
    Recorder.instances.clear()


# -- Redis: a real redis-server per test session (see redis_server.py) -----------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's server, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A 3-master Redis Cluster on loopback ports for the session (redis_cluster.py)."""
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
