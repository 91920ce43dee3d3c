"""A real 3-master Redis Cluster on loopback ports for tests and benchmarks:
three ``redis-server --cluster-enabled yes`` processes (AOF on) joined by
``redis-cli --cluster create ... --cluster-yes``, stopped at the end."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.redis_server import RedisServer, redis_server_path


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too; Redis needs it <= 55535."""
    for _ in range(1000):
        port = random.randint(20000, 55000)
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) for a Redis Cluster node")


class RedisCluster:
    """Three masters, no replicas: every hash slot covered, so a command on any key answers."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        redis_server_path()  # skip (fail under CI) without redis-server
        self.cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        self.nodes = []
        for i in range(masters):
            d = directory / f"node{i}"
            d.mkdir(parents=True, exist_ok=True)
            extra = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
            self.nodes.append(RedisServer(d, extra=extra, port=_cluster_port()))

    @property
    def url(self) -> str:
        """``redis+cluster://`` with every node as a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while b"cluster_state:ok" not in self._info(node):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster on {addresses} not ok within {timeout}s")
                time.sleep(0.05)

    def _info(self, node: RedisServer) -> bytes:
        done = subprocess.run(
            [self.cli, "-p", str(node.port), "cluster", "info"], capture_output=True, timeout=5
        )
        return done.stdout

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def flush(self) -> None:
        for node in self.nodes:
            subprocess.run([self.cli, "-p", str(node.port), "flushall"], capture_output=True, timeout=5)
