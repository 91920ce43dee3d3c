"""Real processes for scale-out tests and benchmarks: one ``exo example
--role api`` and N ``--role engine`` on one Redis (or Redis Cluster), each
with its own loopback port, logs in a directory, driven over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.redis_server import free_port

_FIRST_ACTION = re.compile(rb"engine (\S+): first action on claimed order (\S+) at ([0-9.]+)")
_FILL = re.compile(rb"^(\S+) fill (\S+) @ (\S+)$", re.M)


class Proc:
    """One example process: its role, name, port and log files."""

    def __init__(
        self, role: str, name: str, args: list[str], directory: Path, port: int | None = None
    ) -> None:
        self.role, self.name = role, name
        self.port = free_port() if port is None else port
        self.out = directory / f"{name}.out"
        self.err = directory / f"{name}.err"
        cmd = [
            sys.executable,
            "-m",
            "exo",
            "example",
            "--role",
            role,
            "--http",
            f"127.0.0.1:{self.port}",
            *args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.out, "ab") as out, open(self.err, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> bytes:
        return self.err.read_bytes()

    def first_actions(self, orders: set[str] | None = None) -> list[float]:
        """time.time() of each first action after a claim, as the engine logged
        it (one per claim batch), on one of ``orders`` when given."""
        return [
            float(m.group(3))
            for m in _FIRST_ACTION.finditer(self.log())
            if orders is None or m.group(2).decode() in orders
        ]

    def fill_lines(self) -> dict[str, tuple[Decimal, int]]:
        """Per order: (sum of the quantities, number) of the fill lines this engine printed."""
        out: dict[str, tuple[Decimal, int]] = {}
        for m in _FILL.finditer(self.out.read_bytes()):
            oid = m.group(1).decode()
            total, n = out.get(oid, (Decimal(0), 0))
            out[oid] = (total + Decimal(m.group(2).decode()), n + 1)
        return out


async def healthy(procs: list[Proc], timeout: float = 30.0) -> None:
    """Waits until each of ``procs`` answers /healthz with 200 (the timeout is a guard)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        for p in procs:
            while True:
                assert p.alive(), f"{p.name} exited: {p.log()[-3000:]!r}"
                try:
                    if (await client.get(f"{p.url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{p.name} not ready within {timeout}s"
                await asyncio.sleep(0.05)


class Deployment:
    """An api and engines e1..eN on ``url``; ``lease`` seconds; replay ``speed`` (None: max)."""

    def __init__(
        self,
        url: str,
        directory: Path,
        *,
        engines: int = 3,
        lease: float = 1.0,
        speed: float = 1.0,
        partitions: int = 4,
        extra: list[str] | None = None,
    ) -> None:
        self.url, self.dir, self.lease, self.speed, self.partitions = url, directory, lease, speed, partitions
        self.extra = list(extra or [])
        """More flags for every process (e.g. ``--venue binance``)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.api = Proc("api", "api", self._common(), directory)
        self.engines = {f"e{i}": self.start_engine(f"e{i}") for i in range(1, engines + 1)}
        self.http = httpx.AsyncClient(
            base_url=self.api.url, timeout=10.0, limits=httpx.Limits(max_connections=16)
        )

    def _common(self) -> list[str]:
        return [
            "--redis",
            self.url,
            "--partitions",
            str(self.partitions),
            "--summary",
            "0",
            "--log-level",
            "INFO",
            *self.extra,
        ]

    def start_engine(self, name: str) -> Proc:
        speed = "max" if self.speed is None else str(self.speed)
        args = [*self._common(), "--name", name, "--lease", str(self.lease), "--speed", speed]
        return Proc("engine", name, args, self.dir)

    async def ready(self, timeout: float = 30.0) -> None:
        await healthy([self.api, *self.engines.values()], timeout)

    async def post(
        self, n: int, qty: Decimal, side: str = "BUY", symbol: str = "BTC-USD", price: Decimal | None = None
    ) -> list[str]:
        """POSTs ``n`` orders of ``qty`` (MARKET, or LIMIT GTC at ``price``); their orderIDs."""
        sem = asyncio.Semaphore(16)

        async def one() -> str:
            body = {"side": side, "symbol": symbol, "orderQty": str(qty)}
            if price is not None:
                body["price"] = str(price)
            async with sem:
                try:
                    r = await self.http.post("/v1/orders", json=body)
                except httpx.RemoteProtocolError:
                    # The server closed a kept-alive connection as the request
                    # went out (it was not read): once more on a new one.
                    r = await self.http.post("/v1/orders", json=body)
                assert r.status_code == 202, r.text
                return str(r.json()["orderID"])

        return list(await asyncio.gather(*(one() for _ in range(n))))

    async def progress(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        sem = asyncio.Semaphore(16)

        async def one(oid: str) -> tuple[str, dict[str, Any]]:
            async with sem:
                r = await self.http.get(f"/v1/orders/{oid}")
                assert r.status_code == 200, r.text
                return oid, r.json()

        return dict(await asyncio.gather(*(one(i) for i in ids)))

    async def until(
        self, ids: list[str], check: Any, timeout: float, what: str, interval: float = 0.1
    ) -> dict[str, dict[str, Any]]:
        """Polls GET for ``ids`` until ``check(progress)`` holds for each; the timeout is a guard."""
        deadline = time.monotonic() + timeout
        left = list(ids)
        seen: dict[str, dict[str, Any]] = {}
        while True:
            got = await self.progress(left)
            seen.update(got)
            left = [i for i in left if not check(got[i])]
            if not left:
                return seen
            if time.monotonic() > deadline:
                sample = {i: seen[i] for i in left[:3]}
                raise AssertionError(f"{len(left)} order(s) not {what} within {timeout}s, e.g. {sample}")
            await asyncio.sleep(interval)

    async def metrics(self, name: str) -> dict[str, float]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            text = (await client.get(f"{self.engines[name].url}/metrics")).text
        out = {}
        for line in text.splitlines():
            m = re.match(r'exo_scaleout_(\w+)\{engine="[^"]+"\} (\S+)', line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    async def close(self) -> None:
        await self.http.aclose()
        for p in [*self.engines.values(), self.api]:
            p.stop()
