"""Child order requests as the adapters receive them (the exo.child shapes:
NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest), built with
short helpers so that tests read as scenarios."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

_ids = itertools.count(1)


def cl_id(prefix: str = "c") -> str:
    return f"{prefix}{next(_ids)}"


@dataclass(frozen=True)
class New:
    cl_ord_id: str
    order_id: str
    symbol: str
    side: str
    order_qty: Decimal
    price: Decimal | None
    time_in_force: str = "GTC"
    ord_type: str = "LIMIT"
    msg_type: str = "NEW"


@dataclass(frozen=True)
class Replace:
    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    symbol: str
    side: str
    order_qty: Decimal
    price: Decimal | None
    time_in_force: str = "GTC"
    ord_type: str = "LIMIT"
    msg_type: str = "REPLACE"


@dataclass(frozen=True)
class Cancel:
    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    symbol: str
    side: str
    order_qty: Decimal
    msg_type: str = "CANCEL"


def new(symbol: str, side: str, qty: str, px: str, tif: str = "GTC", order_id: str = "P1") -> New:
    return New(cl_id(), order_id, symbol, side, Decimal(qty), Decimal(px), tif)


def cancel(orig: New | Replace, order_id: str | None = None) -> Cancel:
    return Cancel(
        cl_id("x"), orig.cl_ord_id, order_id or orig.order_id, orig.symbol, orig.side, orig.order_qty
    )


def replace(orig: New | Replace, qty: str, px: str) -> Replace:
    return Replace(
        cl_id("r"), orig.cl_ord_id, orig.order_id, orig.symbol, orig.side, Decimal(qty), Decimal(px)
    )
