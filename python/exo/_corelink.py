"""What exo's Python side asks the Rust core: ids and the dispatcher's rules.

Two seams, one function each, so that nothing in Python builds an order id or
words a rule violation on its own:

- ``new_order_id()``: the id exo assigns to a NEW without one;
- ``accepts(core, order, known)``: whether the core's dispatcher would take an
  instruction now. When it would not, the caller hands the instruction to the
  core anyway (``EngineCore.submit``), which refuses it and reports the
  violation to ``on_error`` in the core's own words (rust/core/src/error.rs).

Both are written here until the core exports its own (``exo._core.new_order_id``
and the dispatcher's instruction check); switching is a one-line change in
each function.
"""

from __future__ import annotations

import os
import time
from typing import Any

from exo._core import EngineCore, MsgType

__all__ = ["accepts", "new_order_id"]


def new_order_id() -> str:
    """A UUIDv7 (RFC 9562) in simple form: 32 lowercase hex digits, the first
    48 bits the Unix time in milliseconds, so ids sort by creation time. The
    same format the core's ``uuid`` crate gives to NEWs submitted without a
    store."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62
    return f"{value | rand & (2**62 - 1):032x}"


def accepts(core: EngineCore, order: Any, known: tuple[Any, str] | None) -> bool:
    """True when the core's dispatcher would accept ``order`` (an ``exo.Order``
    with a symbol and, for CANCEL/REPLACE, an order_id) right now.

    ``known`` is the ``(side, symbol)`` of the live order with ``order``'s id,
    or None when there is none. The rules are the dispatcher's
    (``Dispatcher::check_instruction`` in rust/core/src/dispatcher.rs): a NEW
    needs an order_id that is not live; a CANCEL or REPLACE needs a live order
    with the same side and symbol. False means: let the core refuse it, so
    that the message is the core's."""
    if order.msg_type == MsgType.NEW:
        return known is None and not core.is_live(order.order_id)
    return known is not None and known == (order.side, order.symbol)
