"""Prometheus metrics of the example, served at ``/metrics``.

Two sources: the paper delegates observe each action as it happens (action
time, quotes and prints merged, staleness, fills), and the engine, its feeds
and its store are sampled when Prometheus scrapes (their counters already live
in Rust or in the journal, so nothing is counted twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exo.market import Update

if TYPE_CHECKING:
    from exo.engine import Engine

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_SECONDS = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1, 1.0)
"""Buckets from 5 us to 1 s: delegate actions and staleness live in microseconds."""

_STORE_COUNTERS = {
    "journaled": "Instructions and reports journaled to the store",
    "checkpoints": "Checkpoints (applied seq + the delegate's state()) written to the store",
    "store_failures": "Store writes that failed (retried with backoff)",
}


class Metrics:
    """The example's metrics in their own registry (not the process-global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.action_seconds = Histogram(
            "exo_delegate_action_seconds",
            "Time spent in the paper delegate's action per Update",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.staleness_seconds = Histogram(
            "exo_update_staleness_seconds",
            "Age of the newest data in an Update when its delegate got it",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.quotes_merged = Counter(
            "exo_quotes_merged",
            "Quotes merged into the Updates handed to delegates (one per venue quote)",
            registry=self.registry,
        )
        self.trades_merged = Counter(
            "exo_trades_merged",
            "Prints merged into the Updates handed to delegates",
            registry=self.registry,
        )
        self.fills = Counter("exo_paper_fills", "Paper fills", registry=self.registry)
        self._engine: Engine | None = None
        self.registry.register(_Sampled(self))

    def watch(self, engine: Engine) -> None:
        """Samples this engine (its stats, feeds and store) on every scrape."""
        self._engine = engine

    def observe_action(self, update: Update, seconds: float, filled: Decimal) -> None:
        self.action_seconds.observe(seconds)
        if update.quotes_merged:
            self.quotes_merged.inc(update.quotes_merged)
        if update.trades_merged:
            self.trades_merged.inc(update.trades_merged)
        staleness = update.staleness_ns
        if staleness is not None and update.arrived_ns is not None:
            self.staleness_seconds.observe(staleness / 1e9)
        if filled:
            self.fills.inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class _Sampled(Collector):
    """Engine, feed and store counters, read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        engine = self._metrics._engine
        if engine is None:
            return
        stats = engine.stats()
        yield GaugeMetricFamily("exo_live_orders", "Live orders", value=engine.live)
        yield GaugeMetricFamily(
            "exo_asyncio_tasks", "asyncio tasks alive on the example's loop", value=len(asyncio.all_tasks())
        )
        yield CounterMetricFamily(
            "exo_updates_delivered", "Updates handed over to delegates", value=stats.get("handovers", 0)
        )
        yield CounterMetricFamily(
            "exo_engine_errors",
            "Rule violations and delegate failures reported to on_error",
            value=stats.get("errors", 0),
        )
        for key, doc in _STORE_COUNTERS.items():
            if key in stats:
                name = key if key.startswith("store_") else f"store_{key}"
                yield CounterMetricFamily(f"exo_{name}", doc, value=stats[key])
        families: dict[str, CounterMetricFamily] = {}
        for feed in engine.feeds:
            for key, value in feed.stats().items():
                family = families.get(key)
                if family is None:
                    family = families[key] = CounterMetricFamily(
                        f"exo_feed_{key}", f"Feed counter: {key}", labels=["venue", "source"]
                    )
                family.add_metric([feed.venue, feed.source], value)
        yield from families.values()
