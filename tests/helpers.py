"""Shared test helpers: recording delegates, an awaitable error sink, polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import exo


class Recorder:
    """A delegate that records every Update and finishes after `finish_after` calls
    (or never). `calls` is awaited through `wait_calls`."""

    instances: ClassVar[list[Recorder]] = []

    def __init__(self, order: exo.Order, finish_after: int | None = None) -> None:
        self.order = order
        self.updates: list[exo.Update] = []
        self.finish_after = finish_after
        self.cleaned = 0
        self.changed = asyncio.Event()
        Recorder.instances.append(self)

    def action(self, update: exo.Update) -> bool:
        self.updates.append(update)
        self.changed.set()
        return self.finish_after is not None and len(self.updates) >= self.finish_after

    def clean_up(self) -> None:
        self.cleaned += 1

    async def wait_calls(self, n: int, timeout: float = 5.0) -> None:
        async def _wait() -> None:
            while len(self.updates) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_wait(), timeout)


class Errors(list[tuple[str, str]]):
    """on_error sink that can be awaited."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def __call__(self, order_id: str, message: str) -> None:
        self.append((order_id, message))
        self.event.set()

    async def wait(self, n: int = 1, timeout: float = 5.0) -> None:
        async def _wait() -> None:
            while len(self) < n:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(_wait(), timeout)


def quote(
    symbol: str = "BTC-USD",
    bid: str = "100",
    bid_size: str = "1",
    ask: str = "101",
    ask_size: str = "2",
) -> exo.Quote:
    return exo.Quote(symbol, bid, bid_size, ask, ask_size)


def factory(finish_after: int | None = None) -> Callable[[exo.Order], Recorder]:
    return lambda order: Recorder(order, finish_after)


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    """Polls a condition on the loop (each check yields to the engine)."""

    async def _wait() -> None:
        while not predicate():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(_wait(), timeout)


class Ledger:
    """A delegate that keeps what it applied, and says so in state():
    instructions as ("i", msg_type, n), reports as ("r", status, text)."""

    def __init__(self, order: exo.Order, state: dict[str, Any] | None = None) -> None:
        self.order = order
        self.seen: list[tuple[str, str, Any]] = list(state["seen"]) if state else []
        self.restored = state is not None
        self.changed = asyncio.Event()

    def action(self, update: exo.Update) -> bool:
        for i in update.instructions:
            self.seen.append(("i", i.msg_type.name, getattr(i, "n", None)))
        for r in update.reports:
            self.seen.append(("r", r.ord_status.name, r.text))
        self.changed.set()
        return any(r.ord_status == exo.OrdStatus.FILLED for r in update.reports)

    def state(self) -> dict[str, Any]:
        return {"seen": self.seen}
