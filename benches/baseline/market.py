"""The market vocabulary in pure Python, with exo's names and arithmetic.

Quote, Trade, Order, Report and Update are ``__slots__`` classes holding
``decimal.Decimal`` values. ``Trade.merge`` is exo's merge rule exactly: volumes
add, the average is the VWAP rounded half away from zero to 8 places, and
last_qty/last_px become the newer print's.
"""

from __future__ import annotations

import enum
import random
import time
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "MsgType",
    "OrdStatus",
    "Order",
    "Quote",
    "Report",
    "Side",
    "Trade",
    "Update",
    "new_order_id",
    "to_decimal",
]

DecimalLike = Decimal | str | int

AVG_PX_QUANTUM = Decimal("0.00000001")
"""A merged trade's average price has 8 decimal places."""

# Wide enough that no realistic notional loses a digit before the final rounding
# (rust_decimal carries 28 digits; this carries more, so the 8-place result is exact).
_VWAP_CONTEXT = Context(prec=60)


class _Named(enum.Enum):
    """An enum whose members parse from their name in any case."""

    @classmethod
    def parse(cls, text: Any) -> Any:
        if isinstance(text, cls):
            return text
        try:
            return cls.__members__[str(text).upper()]
        except KeyError:
            names = ", ".join(cls.__members__)
            raise ValueError(f"unknown {cls.__name__} {text!r}: expected one of {names}") from None

    def __str__(self) -> str:
        return self.name


class Side(_Named):
    BUY = 1
    SELL = 2


class MsgType(_Named):
    NEW = 1
    CANCEL = 2
    REPLACE = 3


class OrdStatus(_Named):
    NEW = 0
    PARTIALLY_FILLED = 1
    FILLED = 2
    CANCELED = 4
    PENDING_CANCEL = 6
    REJECTED = 8
    PENDING_NEW = 10
    EXPIRED = 12
    PENDING_REPLACE = 14


def to_decimal(name: str, value: DecimalLike) -> Decimal:
    """An exact decimal from a Decimal, str or int; floats and bools are refused."""
    kind = type(value)
    if kind is Decimal:
        if not value.is_finite():  # type: ignore[union-attr]
            raise ValueError(f"{name}: {value} is not a finite number")
        return value  # type: ignore[return-value]
    if kind is str:
        try:
            d = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{name}: {value!r} is not a decimal number") from None
        if not d.is_finite():
            raise ValueError(f"{name}: {value!r} is not a finite number")
        return d
    if kind is int:
        return Decimal(value)
    if kind is float:
        raise TypeError(f"{name}: float {value!r} is not exact; pass a Decimal, str or int")
    if kind is bool:
        raise TypeError(f"{name}: bool is not a number; pass a Decimal, str or int")
    raise TypeError(f"{name}: expected a Decimal, str or int, got {kind.__name__}")


def _side(side: Side | str) -> Side:
    return side if type(side) is Side else Side.parse(side)  # type: ignore[return-value]


class Quote:
    """Best bid and ask for a symbol."""

    __slots__ = ("ask_px", "ask_size", "bid_px", "bid_size", "symbol")

    def __init__(
        self,
        symbol: str,
        bid_px: DecimalLike,
        bid_size: DecimalLike,
        ask_px: DecimalLike,
        ask_size: DecimalLike,
    ) -> None:
        if not symbol:
            raise ValueError("symbol: must not be empty")
        self.symbol = symbol
        self.bid_px = to_decimal("bid_px", bid_px)
        self.bid_size = to_decimal("bid_size", bid_size)
        self.ask_px = to_decimal("ask_px", ask_px)
        self.ask_size = to_decimal("ask_size", ask_size)

    def near(self, side: Side | str) -> Decimal:
        return self.bid_px if _side(side) is Side.BUY else self.ask_px

    def near_size(self, side: Side | str) -> Decimal:
        return self.bid_size if _side(side) is Side.BUY else self.ask_size

    def far(self, side: Side | str) -> Decimal:
        return self.ask_px if _side(side) is Side.BUY else self.bid_px

    def far_size(self, side: Side | str) -> Decimal:
        return self.ask_size if _side(side) is Side.BUY else self.bid_size

    @property
    def spread(self) -> Decimal:
        return self.ask_px - self.bid_px

    @property
    def mid_price(self) -> Decimal:
        return (self.bid_px + self.ask_px) / 2

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quote):
            return NotImplemented
        return (self.symbol, self.bid_px, self.bid_size, self.ask_px, self.ask_size) == (
            other.symbol,
            other.bid_px,
            other.bid_size,
            other.ask_px,
            other.ask_size,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        bid, ask = f"{self.bid_size} @ {self.bid_px}", f"{self.ask_size} @ {self.ask_px}"
        return f"Quote({self.symbol!r}, bid {bid}, ask {ask})"


class Trade:
    """A print, or several prints of one symbol merged (``trade_volume``, ``avg_px``)."""

    __slots__ = ("avg_px", "last_px", "last_qty", "symbol", "trade_volume")

    def __init__(
        self,
        symbol: str,
        last_qty: DecimalLike,
        last_px: DecimalLike,
        trade_volume: DecimalLike | None = None,
        avg_px: DecimalLike | None = None,
    ) -> None:
        if not symbol:
            raise ValueError("symbol: must not be empty")
        if (trade_volume is None) != (avg_px is None):
            raise ValueError("trade_volume and avg_px go together: give both or neither")
        self.symbol = symbol
        self.last_qty = to_decimal("last_qty", last_qty)
        self.last_px = to_decimal("last_px", last_px)
        self.trade_volume = None if trade_volume is None else to_decimal("trade_volume", trade_volume)
        self.avg_px = None if avg_px is None else to_decimal("avg_px", avg_px)

    def merge(self, newer: Trade) -> Trade:
        """A new Trade: this one with ``newer`` merged in (same symbol only)."""
        if newer.symbol != self.symbol:
            raise ValueError(
                f"cannot merge a {newer.symbol} print into a {self.symbol} trade:"
                " prints of different symbols are never merged"
            )
        merged = Trade.__new__(Trade)
        merged.symbol = self.symbol
        merged.trade_volume, merged.avg_px = merged_volume_and_vwap(self, newer)
        merged.last_qty, merged.last_px = newer.last_qty, newer.last_px
        return merged

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trade):
            return NotImplemented
        return (self.symbol, self.last_qty, self.last_px, self.trade_volume, self.avg_px) == (
            other.symbol,
            other.last_qty,
            other.last_px,
            other.trade_volume,
            other.avg_px,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        agg = "" if self.trade_volume is None else f", volume {self.trade_volume} @ avg {self.avg_px}"
        return f"Trade({self.symbol!r}, {self.last_qty} @ {self.last_px}{agg})"


def merged_volume_and_vwap(a: Trade, b: Trade) -> tuple[Decimal, Decimal]:
    """DESIGN.md's merge: each side stands for its aggregate when it has one,
    otherwise its own print; cum = q1 + q2, avg = round((q1*p1 + q2*p2) / cum, 8)."""
    if a.trade_volume is None:
        q1, p1 = a.last_qty, a.last_px
    else:
        q1, p1 = a.trade_volume, a.avg_px  # type: ignore[assignment]
    if b.trade_volume is None:
        q2, p2 = b.last_qty, b.last_px
    else:
        q2, p2 = b.trade_volume, b.avg_px  # type: ignore[assignment]
    ctx = _VWAP_CONTEXT
    cum = ctx.add(q1, q2)
    if not cum:
        avg = b.last_px
    else:
        avg = ctx.divide(ctx.add(ctx.multiply(q1, p1), ctx.multiply(q2, p2)), cum)
    return cum, avg.quantize(AVG_PX_QUANTUM, rounding=ROUND_HALF_UP, context=ctx)


def new_order_id() -> str:
    """A time-ordered UUIDv7 as 32 hex digits, the form exo assigns."""
    ms = time.time_ns() // 1_000_000
    r = random.getrandbits(74)
    return f"{ms:012x}7{r >> 62:03x}{0x8000 | ((r >> 48) & 0x3FFF):04x}{r & 0xFFFFFFFFFFFF:012x}"


class Order:
    """An instruction that creates or changes an order; extra keywords become
    attributes, as with ``exo.Order``."""

    __slots__ = ("__dict__", "msg_type", "order_id", "side", "symbol")

    def __init__(
        self,
        side: Side | str,
        symbol: str,
        msg_type: MsgType | str = MsgType.NEW,
        order_id: str | None = None,
        **fields: Any,
    ) -> None:
        self.side: Side = _side(side)
        self.symbol = symbol
        self.msg_type: MsgType = msg_type if type(msg_type) is MsgType else MsgType.parse(msg_type)
        self.order_id = order_id
        if fields:
            self.__dict__.update(fields)

    def _copy(self, msg_type: MsgType, changes: dict[str, Any]) -> Order:
        if self.order_id is None:
            raise ValueError(f"{msg_type.name} needs a live order: submit the NEW first (order_id is None)")
        for fixed in ("side", "symbol", "order_id", "msg_type"):
            if fixed in changes:
                raise ValueError(f"{fixed} cannot change on a {msg_type.name}")
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.side, new.symbol, new.order_id, new.msg_type = self.side, self.symbol, self.order_id, msg_type
        new.__dict__.update(changes)
        return new

    def cancel(self) -> Order:
        return self._copy(MsgType.CANCEL, {})

    def replace(self, **changes: Any) -> Order:
        return self._copy(MsgType.REPLACE, changes)

    def fields(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Order):
            return NotImplemented
        return (self.order_id, self.msg_type, self.side, self.symbol, self.__dict__) == (
            other.order_id,
            other.msg_type,
            other.side,
            other.symbol,
            other.__dict__,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.__dict__.items())
        return (
            f"Order(side={self.side.name}, symbol={self.symbol!r}, msg_type={self.msg_type.name},"
            f" order_id={self.order_id!r}{extra})"
        )


class Report:
    """An execution report for one order_id."""

    __slots__ = (
        "avg_px",
        "cl_ord_id",
        "cum_qty",
        "exec_id",
        "exec_inst",
        "extra",
        "last_px",
        "last_qty",
        "leaves_qty",
        "ord_status",
        "order_id",
        "secondary_order_id",
        "side",
        "symbol",
        "text",
        "transact_time",
    )

    def __init__(
        self,
        order_id: str,
        ord_status: OrdStatus | str,
        last_qty: DecimalLike | None = None,
        last_px: DecimalLike | None = None,
        *,
        symbol: str | None = None,
        side: Side | str | None = None,
        secondary_order_id: str | None = None,
        cl_ord_id: str | None = None,
        exec_id: str | None = None,
        transact_time: Any = None,
        exec_inst: str | None = None,
        leaves_qty: DecimalLike | None = None,
        cum_qty: DecimalLike | None = None,
        avg_px: DecimalLike | None = None,
        text: str | None = None,
        **extra: Any,
    ) -> None:
        self.order_id = order_id
        self.ord_status: OrdStatus = OrdStatus.parse(ord_status)
        self.last_qty = None if last_qty is None else to_decimal("last_qty", last_qty)
        self.last_px = None if last_px is None else to_decimal("last_px", last_px)
        self.symbol = symbol
        self.side = None if side is None else _side(side)
        self.secondary_order_id = secondary_order_id
        self.cl_ord_id = cl_ord_id
        self.exec_id = exec_id
        self.transact_time = (
            transact_time.isoformat()
            if hasattr(transact_time, "isoformat")
            else (None if transact_time is None else str(transact_time))
        )
        self.exec_inst = exec_inst
        self.leaves_qty = None if leaves_qty is None else to_decimal("leaves_qty", leaves_qty)
        self.cum_qty = None if cum_qty is None else to_decimal("cum_qty", cum_qty)
        self.avg_px = None if avg_px is None else to_decimal("avg_px", avg_px)
        self.text = text
        self.extra = extra

    def __getattr__(self, name: str) -> Any:
        try:
            return object.__getattribute__(self, "extra")[name]
        except KeyError:
            raise AttributeError(f"'Report' object has no attribute '{name}'") from None

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, s) for s in Report.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Report):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Report({self.order_id!r}, {self.ord_status.name}, {self.last_qty}, {self.last_px})"


class Update:
    """The merged snapshot handed to a delegate (exo's fields)."""

    __slots__ = (
        "arrived_ns",
        "idle",
        "instructions",
        "order_id",
        "quote",
        "quotes_merged",
        "reports",
        "staleness_ns",
        "trade",
        "trades_merged",
    )

    order_id: str
    quote: Quote | None
    trade: Trade | None
    instructions: list[Any]
    reports: list[Any]
    quotes_merged: int
    trades_merged: int
    idle: bool
    arrived_ns: int | None
    """When the newest item arrived, on ``time.monotonic_ns()``."""
    staleness_ns: int | None
    """How old the newest item was at hand-over."""

    @property
    def staleness(self) -> float | None:
        s = self.staleness_ns
        return None if s is None else s / 1e9

    def __repr__(self) -> str:
        return (
            f"Update(order_id={self.order_id!r}, quotes_merged={self.quotes_merged},"
            f" trades_merged={self.trades_merged}, instructions={len(self.instructions)},"
            f" reports={len(self.reports)}, idle={self.idle})"
        )
