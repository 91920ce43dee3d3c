"""Persistence: what journaling costs submit/report, and how long recovery takes.

- intake throughput: reports/s (and NEW orders/s) through ``await engine.report()``
  with no store, MemoryStore and RedisStore (journaled before return), 200
  calls in flight at a time; and the latency of one call awaited alone.
- hand-over throughput with a store: the 1,000-delegate Updates/s figure of
  bench_handover.py with a MemoryStore, i.e. what on_applied costs per Update.
- recovery: ``engine.start()`` on a Redis holding 10,000 live orders (each a
  checkpoint with state and one journaled report to replay) until every
  delegate has had its replay.

A real redis-server on 127.0.0.1 (tests/redis_server.py), with AOF on
(appendfsync everysec, Redis' default).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from benchkit import median, percentile, size

import exo
from exo.store import NEW, REPORT, Checkpoint, Entry
from tests.redis_server import RedisServer

WINDOW = size(200, 20)
REPORTS = size(10_000, 200)
NEWS = size(5_000, 100)
SEQUENTIAL = size(2_000, 20)
RECOVER = size(10_000, 1_000)  # _populate writes in chunks of 1,000


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


class Quiet:
    """A trivial delegate without state."""

    __slots__ = ()

    def __init__(self, order: exo.Order, state: Any = None) -> None:
        pass

    def action(self, update: exo.Update) -> bool:
        return False


def _flush(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as r:
        r.flushall()


async def _intake(make_store: Callable[[], exo.Store | None]) -> tuple[float, float, float]:
    """(reports/s, NEW orders/s, p50 us of one report awaited alone)."""
    async with exo.Engine(Quiet, idle_interval=3600, store=make_store()) as engine:
        t = time.perf_counter()
        ids: list[str] = []
        for start in range(0, NEWS, WINDOW):
            got = await asyncio.gather(
                *(engine.submit(exo.Order("BUY", "BTC-USD")) for _ in range(min(WINDOW, NEWS - start)))
            )
            ids.extend(i for i in got if i)
        news = NEWS / (time.perf_counter() - t)
        live = ids[:100]
        t = time.perf_counter()
        for start in range(0, REPORTS, WINDOW):
            await asyncio.gather(
                *(engine.report(exo.Report(live[j % 100], "NEW")) for j in range(start, start + WINDOW))
            )
        reports = REPORTS / (time.perf_counter() - t)
        samples = []
        clock = time.perf_counter_ns
        for j in range(SEQUENTIAL):
            t0 = clock()
            await engine.report(exo.Report(live[j % 100], "NEW"))
            samples.append(clock() - t0)
        return reports, news, percentile(samples, 50) / 1000


@pytest.mark.parametrize("kind", ["none", "memory", "redis"])
def test_submit_and_report_throughput_by_store(benchmark: Any, figures: Any, kind: str, request: Any) -> None:
    url = request.getfixturevalue("redis_url") if kind == "redis" else ""

    def make() -> exo.Store | None:
        return {"none": lambda: None, "memory": exo.MemoryStore, "redis": lambda: exo.RedisStore(url)}[kind]()

    runs: list[tuple[float, float, float]] = []

    def one_run() -> None:
        if url:
            _flush(url)
        runs.append(asyncio.run(_intake(make)))

    benchmark.pedantic(one_run, rounds=3, iterations=1)
    reports = median([r[0] for r in runs])
    news = median([r[1] for r in runs])
    latency = median([r[2] for r in runs])
    benchmark.extra_info.update(reports_per_s=reports, news_per_s=news, report_p50_us=latency)
    labels = {"none": "no store", "memory": "MemoryStore", "redis": "RedisStore, journaled before return"}
    label = labels[kind]
    figures(
        f"engine.report() / submit(NEW) throughput, {label}, {WINDOW} in flight",
        f"{reports / 1e3:.1f} k reports/s, {news / 1e3:.1f} k NEW/s; one report alone p50 {latency:.1f} us",
        "-",
        "-",
        "none set (same run: compare the three stores)",
        None,
    )


class Count:
    __slots__ = ("box",)

    def __init__(self, box: list[Any]) -> None:
        self.box = box

    def action(self, update: exo.Update) -> bool:
        box = self.box
        box[0] += 1
        if box[0] == box[1]:
            box[2].set_result(None)
        return False


async def _handover_rate(store: exo.Store | None, orders: int = 1000, rounds: int = 50) -> float:
    box: list[Any] = [0, orders, None]
    loop = asyncio.get_running_loop()
    async with exo.Engine(lambda o: Count(box), idle_interval=3600, store=store) as engine:
        box[2] = loop.create_future()
        await asyncio.gather(*(engine.submit(exo.Order("BUY", "BTC-USD")) for _ in range(orders)))
        await box[2]
        q = exo.Quote("BTC-USD", "100", "1", "101", "1")
        t = time.perf_counter()
        for _ in range(rounds):
            box[0], box[2] = 0, loop.create_future()
            engine.quote(q)
            await box[2]
        return orders * rounds / (time.perf_counter() - t)


def test_updates_per_second_with_and_without_a_store(benchmark: Any, figures: Any) -> None:
    bare: list[float] = []
    stored: list[float] = []

    def one_run() -> None:
        bare.append(asyncio.run(_handover_rate(None)))
        stored.append(asyncio.run(_handover_rate(exo.MemoryStore())))

    benchmark.pedantic(one_run, rounds=5, iterations=1)
    b, s = median(bare), median(stored)
    figures(
        "Updates/s to 1,000 trivial delegates, MemoryStore (on_applied per Update)",
        f"{s / 1e6:.2f} M/s",
        f"no store, same run: {b / 1e6:.2f} M/s",
        f"{s / b:.0%} of no store",
        "none set",
        None,
    )


class Restored:
    """Counts delegates that have had their first (replay) Update."""

    __slots__ = ("box", "first")

    def __init__(self, box: list[Any], state: Any) -> None:
        self.box, self.first = box, True

    def action(self, update: exo.Update) -> bool:
        if self.first:
            self.first = False
            box = self.box
            box[0] += 1
            if box[0] == box[1]:
                box[2].set_result(None)
        return False

    def state(self) -> dict[str, Any]:
        return {"filled": "1"}


async def _populate(url: str, n: int) -> None:
    store = exo.RedisStore(url)
    async with store:
        state = store.codec.dumps({"filled": "1"})
        for start in range(0, n, 1000):
            entries, checkpoints = [], []
            for k in range(start, start + 1000):
                oid = f"order-{k:05d}"
                order = exo.Order("BUY", f"SYM{k % 50}", order_id=oid, order_qty="2")
                entries += [Entry(oid, 1, NEW, order), Entry(oid, 2, REPORT, exo.Report(oid, "NEW"))]
                checkpoints.append(Checkpoint(oid, 1, state))
            await store.append(entries)
            await store.checkpoint(checkpoints)


async def _recover(url: str, n: int) -> float:
    box: list[Any] = [0, n, asyncio.get_running_loop().create_future()]
    engine = exo.Engine(
        lambda order, state=None: Restored(box, state), idle_interval=3600, store=exo.RedisStore(url)
    )
    t = time.perf_counter()
    await engine.start()
    await box[2]
    elapsed = time.perf_counter() - t
    assert engine.live == n
    await engine.stop()
    return elapsed


def test_recovery_of_10000_live_orders_from_redis(benchmark: Any, figures: Any, redis_url: str) -> None:
    def setup() -> None:
        _flush(redis_url)
        asyncio.run(_populate(redis_url, RECOVER))

    times: list[float] = []
    benchmark.pedantic(
        lambda: times.append(asyncio.run(_recover(redis_url, RECOVER))), setup=setup, rounds=3, iterations=1
    )
    s = median(times)
    benchmark.extra_info.update(recovery_s=s)
    figures(
        "recovery: engine.start() on Redis with 10,000 live orders until every replay was applied",
        f"{s:.2f} s ({s / RECOVER * 1e6:.0f} us/order)",
        "-",
        "-",
        "none set (each order: NEW, checkpoint with state, 1 report replayed)",
        None,
    )
