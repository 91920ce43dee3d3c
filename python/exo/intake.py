"""Intake: how ``Engine.submit``/``report`` reach the core, chosen once when
the engine starts.

- ``DirectIntake``: straight to the core; nothing is kept (no store).
- ``exo.journal.JournaledIntake``: through a store's journal first, with
  checkpoints after actions and recovery on start.

The engine talks to either through the ``Intake`` interface below and never
asks which one it has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exo._core import LoopRunner, Update

__all__ = ["DirectIntake", "Intake"]


class Intake:
    """The interface, with the behaviour of an intake that keeps nothing.

    Life cycle, driven by the engine: ``open()`` before the core exists,
    ``start(core)`` once it runs, then ``submit``/``report``; on stop
    ``close_intake(timeout)`` before the core stops taking instructions and
    ``finish(timeout)`` once every action has returned (or was cancelled).
    """

    on_applied: Callable[[list[tuple[str, Any, Update, bool]]], None] | None = None
    """Given to the core: called with ``(order_id, delegate, update, done)``
    after a batch of actions, or None when nothing needs to know."""

    def __init__(self, factory: Callable[..., Any]) -> None:
        self.factory: Callable[..., Any] = factory
        """What the core calls to make the delegate of a NEW: ``factory(order)``."""
        self._core: LoopRunner | None = None

    async def open(self) -> None:
        """Before the core exists: opens what the intake needs."""

    async def start(self, core: LoopRunner) -> None:
        """The core runs: from now on ``submit``/``report`` go to it."""
        self._core = core

    def _running(self) -> LoopRunner:
        assert self._core is not None, "intake not started"
        return self._core

    async def submit(self, order: Any) -> str | None:
        """``Engine.submit``: see there."""
        return self._running().submit(order)

    async def report(self, report: Any) -> bool:
        """``Engine.report``: see there."""
        return self._running().report(report)

    keeps_requests = False
    """True when ``request`` journals child order requests (an intake with a store)."""

    async def request(self, request: Any) -> bool:
        """``Engine.journal_request``: nothing is kept without a store."""
        return False

    async def close_intake(self, timeout: float) -> None:
        """No more submits; what was accepted reaches the core within ``timeout`` s."""

    async def finish(self, timeout: float) -> None:
        """Every action has returned: last writes within ``timeout`` s, then release."""

    def action_started(self, order_id: str) -> None:
        """An async action of ``order_id`` is in flight."""

    def action_finished(self, order_id: str, update: Update, done: bool) -> None:
        """An async action returned ``done`` (or raised: False) for ``update``."""

    def stats(self) -> dict[str, int]:
        """Counters of the intake, merged into ``Engine.stats()``."""
        return {}


class DirectIntake(Intake):
    """Straight to the core: no store, live orders end with the engine."""
