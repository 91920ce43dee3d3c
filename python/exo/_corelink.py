"""What exo's Python side asks the Rust core: ids and the dispatcher's rules.

Two seams, one function each, so that nothing in Python builds an order id or
words a rule violation on its own:

- ``new_order_id()``: the id exo assigns to a NEW without one;
- ``accepts(core, order, known)``: whether the core's dispatcher would take an
  instruction now. When it would not, the caller hands the instruction to the
  core anyway (``EngineCore.submit``), which refuses it and reports the
  violation to ``on_error`` in the core's own words (rust/core/src/error.rs).

The id is the core's own (``exo._core.new_order_id``, the uuid crate's
UUIDv7). A NEW is checked by the core (``LoopRunner.check``); a CANCEL or
REPLACE is checked against the journal's record of the order, which also
knows orders whose NEW is still being journaled and not yet in the core.
"""

from __future__ import annotations

from typing import Any

from exo._core import EngineCore, MsgType, new_order_id

__all__ = ["accepts", "new_order_id"]


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
        return known is None and core.check(order) is None
    return known is not None and known == (order.side, order.symbol)
