"""Async actions: the life of an ``async def action`` from the moment the core
hands its awaitable over until the core hears how it ended.

The core calls ``spawn(key, order_id, awaitable, update)`` when a delegate's
action returned an awaitable; the order stays busy (new data merges into its
next Update) until ``EngineCore.complete_async`` is called with the result.
In between: the intake hears that the action started and finished (a journal
takes no ``state()`` mid-action and counts the Update as applied when it
ends), and on stop the running actions get a timeout, then are cancelled.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable
from typing import Any

from exo._core import EngineCore, Update
from exo.intake import Intake

__all__ = ["AsyncActions", "describe_failure"]


def describe_failure(what: str, exc: BaseException) -> str:
    """The on_error message for a delegate method that raised, with its traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{what} raised {type(exc).__name__}: {exc}; the order stays live\n{tb}"


class AsyncActions:
    """The running async actions of one engine run."""

    def __init__(self, loop: asyncio.AbstractEventLoop, intake: Intake) -> None:
        self._loop = loop
        self._intake = intake
        self._tasks: set[asyncio.Task[None]] = set()
        self.core: EngineCore | None = None
        """Set once the core exists; it is told how each action ended."""

    def spawn(self, key: int, order_id: str, awaitable: Awaitable[Any], update: Update) -> None:
        """The core's ``spawn`` callback: runs the action as a task."""
        self._intake.action_started(order_id)
        task = self._loop.create_task(self._run(key, order_id, awaitable, update))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: int, order_id: str, awaitable: Awaitable[Any], update: Update) -> None:
        core = self.core
        assert core is not None
        try:
            result = await awaitable
        except asyncio.CancelledError:
            # Not counted as applied: with a store, this Update replays on restart.
            core.complete_async(key, order_id, None, "action cancelled: the engine is stopping")
            raise
        except Exception as exc:
            self._intake.action_finished(order_id, update, False)
            core.complete_async(key, order_id, None, describe_failure("action", exc))
        else:
            self._intake.action_finished(order_id, update, result is True)
            core.complete_async(key, order_id, result)

    async def settle(self, timeout: float) -> None:
        """Waits up to ``timeout`` seconds for the running actions, then
        cancels the rest and waits for them to unwind."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
