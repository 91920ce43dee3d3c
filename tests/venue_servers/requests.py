"""Child orders for venue tests: real ``exo.ChildOrder`` objects make the
requests (NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest)."""

from __future__ import annotations

from decimal import Decimal

from exo.child import ChildOrder, NewOrderSingle, OrderCancelRequest, new_cl_ord_id


def child(symbol: str, side: str, qty: str, px: str, tif: str = "GTC", order_id: str = "P1") -> ChildOrder:
    return ChildOrder(order_id, symbol, side, Decimal(qty), price=Decimal(px), time_in_force=tif)


def new(symbol: str, side: str, qty: str, px: str, tif: str = "GTC", order_id: str = "P1") -> NewOrderSingle:
    """A NewOrderSingle of a fresh child (for tests that do not follow the child)."""
    return child(symbol, side, qty, px, tif, order_id).new()


def cancel_unknown(symbol: str, side: str, order_id: str = "P9") -> OrderCancelRequest:
    """A cancel for an order the venue never saw."""
    from exo import Side

    return OrderCancelRequest(new_cl_ord_id(), "never-sent-1", order_id, symbol, Side.parse(side), Decimal(1))
