"""Order entry: what child orders and the paper venue cost.

- ``ChildOrder.apply()``: us per report (a NEW then fills), the figure behind
  keeping the state machine in Python: a venue sends tens to a few thousand
  reports/s per account, so a few us each is far below any report rate.
- reports/s through ``engine.report()`` from the paper venue (IOC children
  that fill at once: PENDING_NEW, NEW, TRADE each), 100 parents, with no
  store, MemoryStore and RedisStore (journaled before each report enters).
- round trip delegate -> paper venue -> report -> next Update: an async
  delegate sends an IOC child and waits for the Update in which it is done
  (zero configured latency: the figure is exo's and the venue's own cost).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest
from benchkit import median, percentile, size

import exo
from exo import ChildOrder, OrdStatus, TimeInForce
from exo.venues import Paper
from tests.redis_server import RedisServer

PARENTS = size(100, 5)
CHILDREN = size(20, 2)  # per parent
ROUND_TRIPS = size(2_000, 20)
BIG = exo.Quote("BTC-USD", "99.99", "1000000000", "100.00", "1000000000")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_child_apply_cost(benchmark: Any, figures: Any) -> None:
    ids = itertools.count()
    fills = size(50, 5)

    def reports() -> tuple[ChildOrder, list[exo.Report]]:
        c = ChildOrder("p", "BTC-USD", "BUY", D(fills), price=D("100"))
        c.new()
        cl = c.cl_ord_id
        rs = [exo.Report("p", "NEW", exec_type="NEW", cl_ord_id=cl, exec_id=f"n{next(ids)}")]
        rs += [
            exo.Report(
                "p",
                "PARTIALLY_FILLED",
                "1",
                "100.01",
                exec_type="TRADE",
                cl_ord_id=cl,
                exec_id=f"f{next(ids)}",
            )
            for _ in range(fills)
        ]
        return c, rs

    times: list[float] = []

    def run(c: ChildOrder, rs: list[exo.Report]) -> None:
        t = time.perf_counter()
        for r in rs:
            c.apply(r)
        times.append(time.perf_counter() - t)

    benchmark.pedantic(run, setup=lambda: (reports(), {}), rounds=size(200, 2), iterations=1)
    per_report_us = median(times) / (fills + 1) * 1e6
    benchmark.extra_info["us_per_report"] = per_report_us
    figures(
        "ChildOrder.apply() cost per report (Python)",
        f"{per_report_us:.2f} us/report ({1e6 / per_report_us / 1e3:.0f} k reports/s on one core)",
        "-",
        "-",
        "none set: far below venue report rates (tens to thousands/s)",
        None,
    )


class Taker:
    """Sends CHILDREN IOC children one after another, each when the last is done."""

    done = 0
    all_done: asyncio.Event

    def __init__(self, order: exo.Order, venue: Paper, state: Any = None) -> None:
        self.order, self.venue = order, venue
        self.children: list[ChildOrder] = []
        self.reports = 0

    async def action(self, update: exo.Update) -> bool:
        for r in update.reports:
            self.reports += 1
            self.children[-1].apply(r)
        if self.children and not self.children[-1].is_done:
            return False
        if len(self.children) == CHILDREN:
            Taker.done += 1
            if Taker.done == PARENTS:
                Taker.all_done.set()
            return True
        c = ChildOrder(
            self.order.order_id or "",
            "BTC-USD",
            "BUY",
            D("0.01"),
            price=D("100"),
            time_in_force=TimeInForce.IOC,
        )
        self.children.append(c)
        await self.venue.send(c.new())
        return False


async def _reports_per_s(store: exo.Store | None) -> float:
    Taker.done, Taker.all_done = 0, asyncio.Event()
    paper = Paper()
    paper.on_quote(BIG)
    engine = exo.Engine(paper.delegates(Taker), store=store)
    paper.attach(engine)
    async with engine:
        t = time.perf_counter()
        for _ in range(PARENTS):
            await engine.submit(exo.Order("BUY", "BTC-USD"))
        await Taker.all_done.wait()
        elapsed = time.perf_counter() - t
        await paper.stop()
    return paper.counters["reports"] / elapsed


@pytest.mark.parametrize("kind", ["none", "memory", "redis"])
def test_paper_reports_per_s_by_store(benchmark: Any, figures: Any, kind: str, request: Any) -> None:
    url = request.getfixturevalue("redis_url") if kind == "redis" else ""
    runs: list[float] = []

    def one() -> None:
        store = {"none": lambda: None, "memory": exo.MemoryStore, "redis": lambda: exo.RedisStore(url)}[
            kind
        ]()
        runs.append(asyncio.run(_reports_per_s(store)))

    benchmark.pedantic(one, rounds=3, iterations=1)
    rate = median(runs)
    benchmark.extra_info["reports_per_s"] = rate
    label = {"none": "no store", "memory": "MemoryStore", "redis": "RedisStore"}[kind]
    figures(
        f"paper venue reports/s through engine.report(), {label}, {PARENTS} parents",
        f"{rate / 1e3:.1f} k reports/s (3 reports per IOC child, each child sent after the last is done)",
        "-",
        "-",
        "none set (same run: compare the stores)",
        None,
    )


class PingPong:
    samples: list[int]
    finished: asyncio.Event

    def __init__(self, order: exo.Order, venue: Paper, state: Any = None) -> None:
        self.order, self.venue = order, venue
        self.child: ChildOrder | None = None
        self.t0 = 0

    async def action(self, update: exo.Update) -> bool:
        c = self.child
        if c is not None:
            for r in update.reports:
                c.apply(r)
            if not c.is_done:
                return False
            PingPong.samples.append(time.perf_counter_ns() - self.t0)
            if len(PingPong.samples) == ROUND_TRIPS:
                PingPong.finished.set()
                return True
        self.child = ChildOrder(
            self.order.order_id or "",
            "BTC-USD",
            "BUY",
            D("0.01"),
            price=D("100"),
            time_in_force=TimeInForce.IOC,
        )
        self.t0 = time.perf_counter_ns()
        await self.venue.send(self.child.new())
        return False


async def _round_trip() -> list[int]:
    PingPong.samples, PingPong.finished = [], asyncio.Event()
    paper = Paper()
    paper.on_quote(BIG)
    engine = exo.Engine(paper.delegates(PingPong))
    paper.attach(engine)
    async with engine:
        await engine.submit(exo.Order("BUY", "BTC-USD"))
        await PingPong.finished.wait()
        await paper.stop()
    return PingPong.samples


def test_round_trip_delegate_paper_report_update(benchmark: Any, figures: Any) -> None:
    samples: list[int] = []
    benchmark.pedantic(lambda: samples.extend(asyncio.run(_round_trip())), rounds=3, iterations=1)
    p50, p99 = percentile(samples, 50) / 1e3, percentile(samples, 99) / 1e3
    benchmark.extra_info.update(p50_us=p50, p99_us=p99)
    assert all(s > 0 for s in samples) and OrdStatus.FILLED is not None
    figures(
        "round trip delegate -> paper venue -> report -> next Update (IOC, no latency)",
        f"p50 {p50:.0f} us, p99 {p99:.0f} us (3 reports via engine.report() per trip)",
        "-",
        "-",
        "report it; the engine's share near zero",
        None,
    )


class _Wire(exo.venues.VenueBase):
    """A venue whose wire takes every request at once: what is timed is the
    venue layer's own send path (checks, routing, and with a store the
    journal write of the request before it leaves)."""

    def __init__(self) -> None:
        super().__init__("wire", exo.venues.DEFAULT_INSTRUMENTS, rate_limits=None)
        self.sent = 0

    async def _transmit(self, request: Any) -> None:
        self.sent += 1


class _Idle:
    def __init__(self, order: exo.Order, venue: Any, state: Any = None) -> None:
        self.children: list[ChildOrder] = []

    def action(self, update: exo.Update) -> bool:
        return False


async def _send_path(store: exo.Store | None, n: int) -> list[int]:
    wire = _Wire()
    engine = exo.Engine(wire.delegates(_Idle), store=store, idle_interval=3600)
    wire.attach(engine)
    samples: list[int] = []
    async with engine:
        order_id = await engine.submit(exo.Order("BUY", "BTC-USD")) or ""
        for _ in range(n):
            request = ChildOrder(order_id, "BTC-USD", "BUY", D("0.01"), price=D("100")).new()
            t = time.perf_counter_ns()
            await wire.send(request)
            samples.append(time.perf_counter_ns() - t)
        await wire.stop()
    assert wire.sent == n
    return samples


@pytest.mark.parametrize("kind", ["none", "memory", "redis"])
def test_send_path_cost_by_store(benchmark: Any, figures: Any, kind: str, request: Any) -> None:
    """``await venue.send(NewOrderSingle)`` on a venue whose wire costs nothing:
    with a store, the request is journaled (one store write) before it leaves."""
    url = request.getfixturevalue("redis_url") if kind == "redis" else ""
    samples: list[int] = []

    def one() -> None:
        store = {"none": lambda: None, "memory": exo.MemoryStore, "redis": lambda: exo.RedisStore(url)}[
            kind
        ]()
        samples.extend(asyncio.run(_send_path(store, size(2_000, 20))))

    benchmark.pedantic(one, rounds=3, iterations=1)
    p50, p99 = percentile(samples, 50) / 1e3, percentile(samples, 99) / 1e3
    benchmark.extra_info.update(p50_us=p50, p99_us=p99)
    label = {"none": "no store", "memory": "MemoryStore", "redis": "RedisStore"}[kind]
    figures(
        f"venue send path (request journaled before it leaves), {label}",
        f"p50 {p50:.1f} us, p99 {p99:.1f} us per send",
        "-",
        "-",
        "none set (same run: compare the stores)",
        None,
    )
