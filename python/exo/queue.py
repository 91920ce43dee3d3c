"""ConflatingQueue: a keyed queue where a key keeps its place until popped.

Pushing a queued key replaces its value in place (or merges it, with
``merge(existing, new)``); pushing a new key appends it. ``pop()`` returns the
oldest ``(key, value)``. Push is safe from any thread; ``await q.get()`` waits
on the event loop without blocking it or holding the GIL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from exo._core import ConflatingQueue as _RustQueue

__all__ = ["ConflatingQueue"]


class ConflatingQueue(_RustQueue):
    """Keys are str, int, bytes or tuples of them; values are any object."""

    async def get(self) -> tuple[Any, Any]:
        """Wait until an item is queued, then pop it."""
        loop = asyncio.get_running_loop()
        while True:
            item = self.pop()
            if item is not None:
                return item
            fut: asyncio.Future[None] = loop.create_future()
            self._wait(loop, fut)
            await fut
