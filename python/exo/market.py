"""The market vocabulary, as Python users meet it.

Quote, Trade, Report and the enums are Rust classes (exact decimals, converted
to ``decimal.Decimal`` only when read). ``Order`` is a thin Python subclass of
the Rust identity so that it can carry the user's own fields: the engine reads
only ``order_id``, ``msg_type``, ``side`` and ``symbol`` and hands the very same
object back to the delegate.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

from exo._core import MsgType, OrdStatus, Quote, Report, Side, Trade, Update, parse_decimal
from exo._core import Order as _OrderIdentity

__all__ = ["MsgType", "OrdStatus", "Order", "Quote", "Report", "Side", "Trade", "Update", "parse_decimal"]

DECIMAL_FIELDS = ("order_qty", "price")
"""Order fields that are a positive price or quantity (FIX OrderQty, Price):
checked against exo's one decimal grammar (``parse_decimal``) and stored as ``Decimal``."""


def _checked(name: str, value: Any) -> Any:
    """``value`` of field ``name`` as exo's grammar reads it (``None`` stays ``None``).

    ``str`` must be in the grammar itself; a ``Decimal`` or ``int`` is written out
    without exponent and must then be in it (same bounds); a float is refused
    (not exact). Raises ValueError or TypeError naming the field."""
    if name not in DECIMAL_FIELDS or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise TypeError(f"{name}: expected a Decimal, str or int, got {type(value).__name__} {value!r:.40}")
    text = value if isinstance(value, str) else format(value, "f")
    try:
        return parse_decimal(text)
    except ValueError as exc:
        raise ValueError(f"{name} {exc}, got {value!r:.40}") from None


class Order(_OrderIdentity):
    """An instruction that creates or changes an order.

    ``Order("BUY", "BTC-USD", order_qty=Decimal("0.5"))`` is a NEW; exo assigns
    ``order_id`` on submit. Any keyword beyond the identity becomes an attribute
    (``order.order_qty``). Subclass it to give your fields a fixed shape.
    ``order_qty`` and ``price`` are positive decimals in exo's one grammar
    (``parse_decimal``: ``[0-9]{1,15}(\\.[0-9]{1,13})?``, no sign or exponent),
    stored as ``Decimal``; anything else is a ValueError (a float: TypeError).
    ``order.cancel()`` and ``order.replace(**changes)`` make the follow-up
    instructions for a live order.
    """

    def __init__(
        self,
        side: Side | str,
        symbol: str,
        msg_type: MsgType | str = MsgType.NEW,
        order_id: str | None = None,
        **fields: Any,
    ) -> None:
        self.side = side  # the setter accepts str too
        self.symbol = symbol
        self.msg_type = msg_type
        self.order_id = order_id
        for name, value in fields.items():
            setattr(self, name, _checked(name, value))

    def _copy(self, msg_type: MsgType, changes: dict[str, Any]) -> Self:
        if self.order_id is None:
            raise ValueError(f"{msg_type.name} needs a live order: submit the NEW first (order_id is None)")
        for fixed in ("side", "symbol", "order_id", "msg_type"):
            if fixed in changes:
                raise ValueError(f"{fixed} cannot change on a {msg_type.name}")
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.side, new.symbol, new.order_id = self.side, self.symbol, self.order_id
        new.msg_type = msg_type
        for name, value in changes.items():
            setattr(new, name, _checked(name, value))
        return new

    def cancel(self) -> Self:
        """A CANCEL for this order (same identity and fields)."""
        return self._copy(MsgType.CANCEL, {})

    def replace(self, **changes: Any) -> Self:
        """A REPLACE for this order with some of its own fields changed."""
        return self._copy(MsgType.REPLACE, changes)

    def fields(self) -> dict[str, Any]:
        """The user's own fields."""
        return dict(self.__dict__)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.__dict__.items())
        return (
            f"{type(self).__name__}(side={self.side.name}, symbol={self.symbol!r}, "
            f"msg_type={self.msg_type.name}, order_id={self.order_id!r}{extra})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _OrderIdentity):
            return NotImplemented
        return (self.order_id, self.msg_type, self.side, self.symbol) == (
            other.order_id,
            other.msg_type,
            other.side,
            other.symbol,
        ) and self.__dict__ == getattr(other, "__dict__", {})

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __getstate__(self) -> dict[str, Any]:
        # The identity lives in the Rust base, not in __dict__: pickle both.
        return {
            "_identity": (self.side.name, self.symbol, self.msg_type.name, self.order_id),
            **self.__dict__,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        side, symbol, msg_type, order_id = state.pop("_identity")
        self.side, self.symbol, self.msg_type, self.order_id = side, symbol, msg_type, order_id
        self.__dict__.update(state)
