"""The example's Progress: what GET shows of an order's child orders once old
ones are dropped to keep a long order's state small."""

from __future__ import annotations

from decimal import Decimal

from exo.child import ChildOrder, OrdType, TimeInForce
from exo.example.paper import PaperOrder, Progress
from exo.market import Side


def _progress_with_children(qtys: list[str]) -> Progress:
    order = PaperOrder(
        order_id="o-1",
        symbol="BTC-USD",
        side=Side.BUY,
        order_qty=Decimal("1"),
        price=None,
        ord_type=OrdType.MARKET,
        time_in_force=TimeInForce.IOC,
    )
    progress = Progress(order)
    for i, qty in enumerate(qtys):
        child = ChildOrder(
            order_id="o-1", symbol="BTC-USD", side=Side.BUY, order_qty=Decimal(qty), price=Decimal(100)
        )
        child.cum_qty = Decimal(qty)
        child.cl_ord_id = f"c-{i}"
        progress.children.append(child)
        progress.filled += Decimal(qty)
    return progress


def test_dropped_children_are_counted_so_shown_plus_dropped_is_filled() -> None:
    progress = _progress_with_children(["0.1", "0.2", "0.3", "0.4"])
    progress.drop_children(progress.children[:2])
    body = progress.to_json()
    assert [c["clOrdID"] for c in body["childOrders"]] == ["c-2", "c-3"]
    assert body["childOrdersDropped"] == 2
    assert body["childOrdersDroppedCumQty"] == "0.3"
    shown = sum(Decimal(c["cumQty"]) for c in body["childOrders"])
    assert shown + Decimal(body["childOrdersDroppedCumQty"]) == Decimal(body["cumQty"]) == Decimal("1.0")


def test_the_dropped_count_survives_a_restart_from_state() -> None:
    progress = _progress_with_children(["0.25", "0.75"])
    progress.drop_children(progress.children[:1])
    restored = Progress(progress.order)
    restored.restore(progress.state())
    assert (restored.dropped, restored.dropped_qty) == (1, Decimal("0.25"))
    assert len(restored.children) == 1


def test_a_state_saved_before_dropping_was_counted_restores_as_nothing_dropped() -> None:
    progress = _progress_with_children(["0.5"])
    state = progress.state()
    del state["dropped"], state["dropped_qty"]
    restored = Progress(progress.order)
    restored.restore(state)
    assert (restored.dropped, restored.dropped_qty) == (0, Decimal(0))
