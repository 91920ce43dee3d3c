"""Instruments: validation before sending, rounding to the venue's grid, loading."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from exo import Instrument, InstrumentError, InstrumentStatus
from exo.instrument import load_instruments

BTC = Instrument("BTC-USD", D("0.01"), D("0.0001"), min_qty=D("0.001"), min_notional=D("10"))


def test_a_price_on_the_tick_and_a_quantity_on_the_lot_pass() -> None:
    BTC.check(D("0.0150"), D("60000.01"))
    BTC.check(D("0.001"), None)  # MARKET: no price rules


def test_price_off_the_tick_is_refused() -> None:
    with pytest.raises(
        InstrumentError, match=r"price 60000\.005 is not a positive multiple of the tick size 0\.01"
    ):
        BTC.check(D("0.01"), D("60000.005"))


def test_quantity_off_the_lot_is_refused() -> None:
    with pytest.raises(InstrumentError, match=r"quantity 0\.00105 is not a multiple of the lot size 0\.0001"):
        BTC.check(D("0.00105"), D("60000"))


def test_quantity_below_minimum_and_notional_below_minimum_are_refused() -> None:
    with pytest.raises(InstrumentError, match=r"below the minimum 0\.001"):
        BTC.check(D("0.0001"), D("60000"))
    with pytest.raises(InstrumentError, match=r"notional 9\.99 is below the minimum 10"):
        BTC.check(D("0.001"), D("9990"))


def test_halted_instrument_refuses_orders() -> None:
    halted = Instrument("X", D("1"), D("1"), status=InstrumentStatus.HALTED)
    with pytest.raises(InstrumentError, match="not trading now"):
        halted.check(D("1"), D("1"))


def test_rounding_is_passive_for_the_side_and_down_for_quantity() -> None:
    assert BTC.round_price(D("60000.019"), "BUY") == D("60000.01")
    assert BTC.round_price(D("60000.011"), "SELL") == D("60000.02")
    assert BTC.round_price(D("60000.01"), "SELL") == D("60000.01")
    assert BTC.round_qty(D("0.12349")) == D("0.1234")


def test_bad_definitions_are_refused_with_the_field() -> None:
    with pytest.raises(InstrumentError, match="tick_size must be positive"):
        Instrument("X", D("0"), D("1"))
    with pytest.raises(InstrumentError, match="status must be TRADING or HALTED"):
        Instrument("X", D("1"), D("1"), status="OPEN")  # type: ignore[arg-type]
    with pytest.raises(InstrumentError, match="non-empty"):
        Instrument(" ", D("1"), D("1"))


def test_load_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "instruments.json"
    path.write_text(json.dumps([{"symbol": "SOL-USD", "tick_size": "0.01", "lot_size": "0.001"}]))
    got = load_instruments(path)
    assert got == {"SOL-USD": Instrument("SOL-USD", D("0.01"), D("0.001"))}


def test_load_refuses_unknown_fields_and_duplicates() -> None:
    with pytest.raises(InstrumentError, match=r"unknown fields \['tick'\]"):
        load_instruments([{"symbol": "X", "tick": "1", "tick_size": "1", "lot_size": "1"}])
    row = {"symbol": "X", "tick_size": "1", "lot_size": "1"}
    with pytest.raises(InstrumentError, match="listed twice"):
        load_instruments([row, row])
