"""Market types: exact decimals, enums, quotes, trade merging, orders, reports."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone
from decimal import Decimal

import pytest

import exo
from exo import MsgType, OrdStatus, Side


def test_decimal_fields_accept_decimal_str_and_int_and_return_decimal() -> None:
    q = exo.Quote("BTC-USD", Decimal("100.25"), "1.5", 101, "2E+1")
    assert q.bid_px == Decimal("100.25") and isinstance(q.bid_px, Decimal)
    assert q.bid_size == Decimal("1.5")
    assert q.ask_px == Decimal(101)
    assert q.ask_size == Decimal(20)


def test_floats_are_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"bid_px: float 0.1 is not exact; pass a Decimal, str or int"):
        exo.Quote("X", 0.1, "1", "2", "1")


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "", "1.2.3"])
def test_non_numeric_decimal_text_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="last_px"):
        exo.Trade("X", "1", bad)


def test_bool_and_other_types_are_refused() -> None:
    with pytest.raises(TypeError, match="bool"):
        exo.Trade("X", True, "1")
    with pytest.raises(TypeError, match="expected a Decimal, str or int, got list"):
        exo.Trade("X", [1], "1")


def test_empty_symbol_is_refused() -> None:
    with pytest.raises(ValueError, match="symbol"):
        exo.Quote("", "1", "1", "2", "1")


def test_enums_have_names_and_parse_case_insensitively() -> None:
    assert Side.parse("buy") is Side.BUY
    assert str(MsgType.REPLACE) == "REPLACE"
    assert OrdStatus.PARTIALLY_FILLED.name == "PARTIALLY_FILLED"
    assert [s.name for s in (OrdStatus.NEW, OrdStatus.PENDING_REPLACE, OrdStatus.EXPIRED)] == [
        "NEW",
        "PENDING_REPLACE",
        "EXPIRED",
    ]
    with pytest.raises(ValueError, match="expected one of BUY, SELL"):
        Side.parse("hold")


def test_quote_near_far_spread_mid() -> None:
    q = exo.Quote("X", "99", "1", "101", "3")
    assert q.far(Side.BUY) == Decimal(101) and q.far_size("buy") == Decimal(3)
    assert q.near(Side.BUY) == Decimal(99) and q.near_size(Side.BUY) == Decimal(1)
    assert q.far(Side.SELL) == Decimal(99) and q.far_size(Side.SELL) == Decimal(1)
    assert q.spread == Decimal(2)
    assert q.mid_price == Decimal(100)
    assert q == exo.Quote("X", "99.0", "1", "101", "3")


def test_an_empty_side_is_none_and_so_are_far_spread_and_mid() -> None:
    q = exo.Quote("ZIL-USDC", "0.0214", "10", None, None)
    assert (q.ask_px, q.ask_size) == (None, None)
    assert q.far(Side.BUY) is None and q.far_size(Side.BUY) is None
    assert q.near(Side.BUY) == Decimal("0.0214") and q.far(Side.SELL) == Decimal("0.0214")
    assert q.spread is None and q.mid_price is None
    assert repr(q) == "Quote(symbol='ZIL-USDC', bid_px='0.0214', bid_size='10', ask_px=None, ask_size=None)"
    assert pickle.loads(pickle.dumps(q)) == q
    assert q != exo.Quote("ZIL-USDC", "0.0214", "10", "0", "0"), "None is not 0"
    with pytest.raises(TypeError, match=r"ask_px: float"):
        exo.Quote("X", None, None, 0.5, None)


def test_trade_merge_of_two_prints_gives_volume_and_vwap() -> None:
    t = exo.Trade("X", "1", "100").merge(exo.Trade("X", "3", "200"))
    assert (t.trade_volume, t.avg_px) == (Decimal(4), Decimal(175))
    assert (t.last_qty, t.last_px) == (Decimal(3), Decimal(200))


def test_trade_merge_into_aggregate_then_aggregate_into_aggregate() -> None:
    a = exo.Trade("X", "1", "100").merge(exo.Trade("X", "1", "200"))  # 2 @ 150
    a = a.merge(exo.Trade("X", "2", "300"))  # 4 @ 225
    assert (a.trade_volume, a.avg_px) == (Decimal(4), Decimal(225))
    b = exo.Trade("X", "1", "10").merge(exo.Trade("X", "3", "30"))  # 4 @ 25
    c = a.merge(b)  # (4*225 + 4*25) / 8 = 125
    assert (c.trade_volume, c.avg_px) == (Decimal(8), Decimal(125))
    assert (c.last_qty, c.last_px) == (Decimal(3), Decimal(30))


def test_trade_vwap_is_rounded_half_away_from_zero_to_8_places() -> None:
    t = exo.Trade("X", "2", "1").merge(exo.Trade("X", "1", "2"))
    assert t.avg_px == Decimal("1.33333333")
    t = exo.Trade("X", "1", "0.00000001").merge(exo.Trade("X", "1", "0.00000002"))
    assert t.avg_px == Decimal("0.00000002")  # 0.000000015 rounds up
    t = exo.Trade("X", "1", "2").merge(exo.Trade("X", "2", "1"))
    assert t.avg_px == Decimal("1.33333333")
    t = exo.Trade("X", "1", "1").merge(exo.Trade("X", "2", "2"))
    assert t.avg_px == Decimal("1.66666667")


def test_prints_of_another_symbol_are_not_merged() -> None:
    with pytest.raises(ValueError, match="never merged"):
        exo.Trade("X", "1", "1").merge(exo.Trade("Y", "1", "1"))


def test_trade_volume_and_avg_px_go_together() -> None:
    with pytest.raises(ValueError, match="go together"):
        exo.Trade("X", "1", "1", trade_volume="2")


def test_order_carries_user_fields_and_identity() -> None:
    o = exo.Order("sell", "ETH-USD", order_qty=Decimal(2), limit_px=Decimal(3000))
    assert o.side is Side.SELL and o.symbol == "ETH-USD" and o.msg_type is MsgType.NEW
    assert o.order_id is None
    assert o.order_qty == Decimal(2) and o.limit_px == Decimal(3000)
    assert o.fields() == {"order_qty": Decimal(2), "limit_px": Decimal(3000)}
    with pytest.raises(ValueError, match="expected one of BUY, SELL"):
        exo.Order("hold", "X")


def test_order_cancel_and_replace_keep_identity() -> None:
    o = exo.Order("BUY", "X", order_qty=Decimal(2))
    with pytest.raises(ValueError, match="submit the NEW first"):
        o.cancel()
    o.order_id = "abc"
    c = o.cancel()
    assert (c.msg_type, c.order_id, c.side, c.symbol, c.order_qty) == (
        MsgType.CANCEL,
        "abc",
        Side.BUY,
        "X",
        Decimal(2),
    )
    r = o.replace(order_qty=Decimal(3))
    assert r.msg_type is MsgType.REPLACE and r.order_qty == Decimal(3) and o.order_qty == Decimal(2)
    with pytest.raises(ValueError, match="side cannot change"):
        o.replace(side="SELL")


def test_subclassed_order_keeps_its_own_constructor() -> None:
    class Twap(exo.Order):
        def __init__(self, symbol: str, qty: str, slices: int) -> None:
            super().__init__("BUY", symbol, order_qty=Decimal(qty))
            self.slices = slices

    t = Twap("X", "5", 10)
    assert (t.side, t.symbol, t.order_qty, t.slices) == (Side.BUY, "X", Decimal(5), 10)
    assert t.cancel.__self__ is t


def test_report_fields_and_extras() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    r = exo.Report(
        "o1",
        "partially_filled",
        "0.5",
        "100.1",
        symbol="X",
        side="SELL",
        secondary_order_id="venue-9",
        cl_ord_id="c1",
        exec_id="e1",
        transact_time=when,
        exec_inst="6",
        leaves_qty="1.5",
        cum_qty="0.5",
        avg_px="100.1",
        text="ok",
        venue="cbx",
    )
    assert r.ord_status is OrdStatus.PARTIALLY_FILLED
    assert (r.last_qty, r.last_px) == (Decimal("0.5"), Decimal("100.1"))
    assert r.side is Side.SELL and r.symbol == "X"
    assert r.transact_time == "2026-01-02T03:04:05+00:00"
    assert (r.secondary_order_id, r.cl_ord_id, r.exec_id, r.exec_inst, r.text) == (
        "venue-9",
        "c1",
        "e1",
        "6",
        "ok",
    )
    assert (r.leaves_qty, r.cum_qty, r.avg_px) == (Decimal("1.5"), Decimal("0.5"), Decimal("100.1"))
    assert r.venue == "cbx" and r.extra == {"venue": "cbx"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = r.nope
    with pytest.raises(ValueError, match="unknown ord_status"):
        exo.Report("o1", "DONE")
    with pytest.raises(TypeError, match="last_qty: float"):
        exo.Report("o1", "FILLED", 1.0)


def test_market_types_pickle_exactly() -> None:
    import pickle

    values = [
        exo.Side.SELL,
        MsgType.REPLACE,
        OrdStatus.PENDING_CANCEL,
        exo.Quote("X", "1.50", "2", "3", "4"),
        exo.Trade("X", "1", "2").merge(exo.Trade("X", "3", "4")),
        exo.Report("o", "FILLED", "1", "2", side="BUY", transact_time="t", venue="v"),
        exo.Order("SELL", "Y", order_qty=Decimal("2"), order_id="abc"),
    ]
    for v in values:
        back = pickle.loads(pickle.dumps(v))
        assert back == v and type(back) is type(v)
    order = pickle.loads(pickle.dumps(values[-1]))
    assert (order.side, order.symbol, order.order_id, order.order_qty) == (
        Side.SELL,
        "Y",
        "abc",
        Decimal("2"),
    )
