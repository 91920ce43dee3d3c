"""Resolving asyncio futures from Rust (called through ``loop.call_soon_threadsafe``)."""

from __future__ import annotations

import asyncio
from typing import Any


def resolve(fut: asyncio.Future[Any]) -> None:
    """Wake an awaiting ``get()``; a cancelled waiter is left alone."""
    if not fut.done():
        fut.set_result(None)
