"""An awaitable sink for the Reports a venue adapter hands on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import exo


class Reports(list[exo.Report]):
    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def __call__(self, report: exo.Report) -> None:
        self.append(report)
        self._changed.set()

    async def wait_for(self, pred: Callable[[exo.Report], bool], timeout: float = 5.0) -> exo.Report:
        """The first report (already here or to come) matching ``pred``."""

        async def _wait() -> exo.Report:
            while True:
                for r in self:
                    if pred(r):
                        return r
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_wait(), timeout)

    def status(self, name: str) -> list[exo.Report]:
        return [r for r in self if r.ord_status.name == name]

    def exec_type(self, name: str) -> list[exo.Report]:
        return [r for r in self if _exec_type(r) == name]

    def filled(self, order_id: str | None = None) -> Decimal:
        """Sum of last_qty over fill reports: what the engine was told filled."""
        return sum(
            (r.last_qty for r in self if r.last_qty and (order_id is None or r.order_id == order_id)),
            Decimal(0),
        )


def _exec_type(r: exo.Report) -> str | None:
    et = getattr(r, "exec_type", None)
    if et is None:
        return None
    return et if isinstance(et, str) else str(et.name)


def exec_type(r: exo.Report) -> str | None:
    return _exec_type(r)
