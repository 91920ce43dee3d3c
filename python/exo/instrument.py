"""Instruments: what a venue accepts for a symbol (tick, lot, minimums, status).

``Instrument`` validates a child order's price and quantity before it leaves
(``check``) and rounds them to the venue's grid (``round_price``,
``round_qty``). The rules are the venues' own reference data: Binance
``exchangeInfo`` filters PRICE_FILTER.tickSize, LOT_SIZE.stepSize/minQty and
NOTIONAL.minNotional; Coinbase ``/products`` quote_increment, base_increment,
min_market_funds; BitMEX ``instrument`` tickSize and lotSize.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from exo._core import Side

__all__ = ["Instrument", "InstrumentError", "InstrumentStatus", "load_instruments"]


class InstrumentError(ValueError):
    """A price off the tick, a quantity off the lot or below a minimum, a
    symbol the venue does not list or does not trade now."""


class InstrumentStatus(str, enum.Enum):
    """Whether the venue takes orders for the symbol now."""

    TRADING = "TRADING"
    HALTED = "HALTED"


def _positive(value: Any, name: str, symbol: str, zero_ok: bool = False) -> Decimal:
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError:
        raise InstrumentError(f"{symbol}: {name} {value!r} is not a decimal number") from None
    if not d.is_finite() or d < 0 or (d == 0 and not zero_ok):
        raise InstrumentError(
            f"{symbol}: {name} must be {'non-negative' if zero_ok else 'positive'}, got {value!r}"
        )
    return d


@dataclass(frozen=True)
class Instrument:
    """One symbol's trading rules at one venue. Prices in quote currency,
    quantities in base currency, all exact ``Decimal``.

    - ``tick_size``: prices are whole multiples of it;
    - ``lot_size``: quantities are whole multiples of it;
    - ``min_qty``: smallest quantity; ``min_notional``: smallest price * qty
      (0 = none; a MARKET child is checked at the reference price given);
    - ``status``: TRADING, or HALTED (orders refused).
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    status: InstrumentStatus = InstrumentStatus.TRADING

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise InstrumentError(f"symbol must be a non-empty string, got {self.symbol!r}")
        s = self.symbol
        object.__setattr__(self, "tick_size", _positive(self.tick_size, "tick_size", s))
        object.__setattr__(self, "lot_size", _positive(self.lot_size, "lot_size", s))
        object.__setattr__(self, "min_qty", _positive(self.min_qty, "min_qty", s, zero_ok=True))
        object.__setattr__(
            self, "min_notional", _positive(self.min_notional, "min_notional", s, zero_ok=True)
        )
        try:
            object.__setattr__(self, "status", InstrumentStatus(self.status))
        except ValueError:
            raise InstrumentError(f"{s}: status must be TRADING or HALTED, got {self.status!r}") from None

    def round_price(self, price: Decimal, side: Side | str) -> Decimal:
        """``price`` on the tick, rounded passively: down for a BUY, up for a
        SELL (never more aggressive than asked)."""
        buy = (Side.parse(side) if isinstance(side, str) else side) == Side.BUY
        steps = (price / self.tick_size).to_integral_value(ROUND_FLOOR if buy else ROUND_CEILING)
        return steps * self.tick_size

    def round_qty(self, qty: Decimal) -> Decimal:
        """``qty`` rounded down to the lot (never more than asked)."""
        return (qty / self.lot_size).to_integral_value(ROUND_FLOOR) * self.lot_size

    def check(self, order_qty: Decimal, price: Decimal | None = None) -> None:
        """Raises InstrumentError naming the rule if the venue would refuse
        ``order_qty`` at ``price`` (None: a MARKET child, no price rules)."""
        s = self.symbol
        if self.status is not InstrumentStatus.TRADING:
            raise InstrumentError(f"{s}: not trading now ({self.status.value})")
        if order_qty % self.lot_size != 0:
            raise InstrumentError(
                f"{s}: quantity {order_qty} is not a multiple of the lot size {self.lot_size}"
            )
        if order_qty < self.min_qty or order_qty <= 0:
            raise InstrumentError(f"{s}: quantity {order_qty} is below the minimum {self.min_qty}")
        if price is None:
            return
        if price <= 0 or price % self.tick_size != 0:
            raise InstrumentError(
                f"{s}: price {price} is not a positive multiple of the tick size {self.tick_size}"
            )
        notional = price * order_qty
        if notional < self.min_notional:
            shown = format(notional.normalize(), "f")
            raise InstrumentError(f"{s}: notional {shown} is below the minimum {self.min_notional}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Instrument:
        """From ``{"symbol", "tick_size", "lot_size", "min_qty"?, "min_notional"?,
        "status"?}`` with decimals as strings. Unknown keys raise InstrumentError."""
        known = {"symbol", "tick_size", "lot_size", "min_qty", "min_notional", "status"}
        extra = set(data) - known
        if extra:
            raise InstrumentError(f"instrument {data.get('symbol')!r}: unknown fields {sorted(extra)}")
        missing = {"symbol", "tick_size", "lot_size"} - set(data)
        if missing:
            raise InstrumentError(f"instrument {data.get('symbol')!r}: missing {sorted(missing)}")
        return cls(**data)


def load_instruments(source: str | Path | Iterable[Mapping[str, Any]]) -> dict[str, Instrument]:
    """Instruments by symbol, from a JSON file (a list of mappings as
    ``Instrument.from_mapping`` takes) or from the mappings themselves."""
    if isinstance(source, (str, Path)):
        rows = json.loads(Path(source).read_text())
        if not isinstance(rows, list):
            raise InstrumentError(f"{source}: expected a JSON list of instruments")
    else:
        rows = list(source)
    out: dict[str, Instrument] = {}
    for row in rows:
        inst = Instrument.from_mapping(row)
        if inst.symbol in out:
            raise InstrumentError(f"instrument {inst.symbol!r} listed twice")
        out[inst.symbol] = inst
    return out
