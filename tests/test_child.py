"""ChildOrder: every state transition, and each pitfall of VENUES.md as a named
test (test_pitfall_*). Reports here are built by hand as a venue would send
them; tests/test_paper.py drives the same states through the paper venue."""

from __future__ import annotations

import dataclasses
import itertools
import pickle
from decimal import Decimal as D
from typing import Any

import pytest

from exo import ChildOrder, ChildOrderError, ExecType, MsgType, OrdStatus, OrdType, Report, TimeInForce

_exec = itertools.count(1)


def rep(child: ChildOrder, status: str, exec_type: str | None, **fields: Any) -> Report:
    fields.setdefault("cl_ord_id", child.cl_ord_id)
    fields.setdefault("exec_id", f"x{next(_exec)}")
    return Report(child.order_id, status, exec_type=exec_type, **fields)


def fill(child: ChildOrder, qty: str, px: str, status: str = "PARTIALLY_FILLED", **fields: Any) -> Report:
    return rep(child, status, "TRADE", last_qty=qty, last_px=px, **fields)


def new_child(qty: str = "1", px: str = "100") -> ChildOrder:
    return ChildOrder("parent-1", "BTC-USD", "BUY", D(qty), price=D(px))


def working(qty: str = "1") -> ChildOrder:
    c = new_child(qty)
    c.new()
    assert c.apply(rep(c, "NEW", "NEW"))
    return c


# -- requests ------------------------------------------------------------------


def test_unsent_child_has_no_status_and_is_not_live() -> None:
    c = new_child()
    assert c.ord_status is None and not c.is_live and not c.is_done


def test_new_makes_a_new_order_single_and_goes_pending_new() -> None:
    c = new_child()
    req = c.new()
    assert req.msg_type == MsgType.NEW and req.order_id == "parent-1" and req.order_qty == D("1")
    assert req.price == D("100") and req.cl_ord_id == c.cl_ord_id
    assert c.ord_status == OrdStatus.PENDING_NEW and c.is_live


def test_new_twice_is_refused() -> None:
    c = new_child()
    c.new()
    with pytest.raises(ChildOrderError, match="new\\(\\) once only"):
        c.new()


def test_replace_carries_a_fresh_cl_ord_id_and_the_orig() -> None:
    c = working()
    first = c.cl_ord_id
    req = c.replace(price=D("101"))
    assert req.orig_cl_ord_id == first and req.cl_ord_id != first and req.price == D("101")
    assert c.ord_status == OrdStatus.PENDING_REPLACE


def test_cancel_carries_a_fresh_cl_ord_id_and_the_orig() -> None:
    c = working()
    req = c.cancel()
    assert req.orig_cl_ord_id == c.cl_ord_id and req.cl_ord_id != c.cl_ord_id
    assert c.ord_status == OrdStatus.PENDING_CANCEL


def test_replace_or_cancel_before_new_is_refused() -> None:
    c = new_child()
    with pytest.raises(ChildOrderError, match="never sent"):
        c.cancel()
    with pytest.raises(ChildOrderError, match="never sent"):
        c.replace(price=D("99"))


def test_request_while_another_is_pending_is_refused() -> None:
    c = working()
    c.cancel()
    with pytest.raises(ChildOrderError, match="CANCEL in flight"):
        c.replace(price=D("99"))
    with pytest.raises(ChildOrderError, match="CANCEL in flight"):
        c.cancel()
    p = new_child()
    p.new()
    with pytest.raises(ChildOrderError, match="NEW in flight"):
        p.cancel()


def test_request_on_a_closed_child_is_refused() -> None:
    c = working()
    c.apply(fill(c, "1", "100", "FILLED"))
    with pytest.raises(ChildOrderError, match="FILLED, closed"):
        c.cancel()


def test_replace_with_nothing_to_change_is_refused() -> None:
    c = working()
    with pytest.raises(ChildOrderError, match="nothing to change"):
        c.replace(order_qty=D("1"), price=D("100"))


def test_replace_below_cum_qty_is_refused() -> None:
    c = working("2")
    c.apply(fill(c, "1", "100"))
    with pytest.raises(ChildOrderError, match="must exceed cum_qty"):
        c.replace(order_qty=D("1"))


def test_bad_construction_is_refused_with_the_reason() -> None:
    with pytest.raises(ChildOrderError, match="needs a price"):
        ChildOrder("p", "BTC-USD", "BUY", D("1"))
    with pytest.raises(ChildOrderError, match="must be positive"):
        ChildOrder("p", "BTC-USD", "BUY", D("0"), price=D("1"))
    with pytest.raises(ChildOrderError, match="exact"):
        ChildOrder("p", "BTC-USD", "BUY", 0.1, price=D("1"))  # type: ignore[arg-type]
    with pytest.raises(ChildOrderError, match="IOC or FOK"):
        ChildOrder("p", "BTC-USD", "BUY", D("1"), ord_type=OrdType.MARKET)


def test_withdraw_undoes_a_request_that_never_left() -> None:
    c = working()
    req = c.cancel()
    c.withdraw(req)
    assert c.ord_status == OrdStatus.NEW and c.pending is None


# -- reports: each transition ----------------------------------------------------


def test_pending_new_ack_keeps_pending_new() -> None:
    c = new_child()
    c.new()
    assert c.apply(rep(c, "PENDING_NEW", "PENDING_NEW", secondary_order_id="V1"))
    assert c.ord_status == OrdStatus.PENDING_NEW and c.secondary_order_id == "V1"


def test_new_ack_makes_it_new() -> None:
    c = new_child()
    c.new()
    assert c.apply(rep(c, "NEW", "NEW"))
    assert c.ord_status == OrdStatus.NEW and c.pending is None and c.leaves_qty == D("1")


def test_reject_of_new_closes_it_with_the_reason() -> None:
    c = new_child()
    c.new()
    assert c.apply(rep(c, "REJECTED", "REJECTED", text="POST_ONLY_WOULD_CROSS"))
    assert c.ord_status == OrdStatus.REJECTED and c.is_done and c.text == "POST_ONLY_WOULD_CROSS"


def test_partial_fills_then_filled_with_exact_avg_px() -> None:
    c = working("1")
    assert c.apply(fill(c, "0.3", "100.01"))
    assert c.ord_status == OrdStatus.PARTIALLY_FILLED and c.cum_qty == D("0.3") and c.leaves_qty == D("0.7")
    assert c.apply(fill(c, "0.7", "100.02", "FILLED"))
    assert c.ord_status == OrdStatus.FILLED and c.leaves_qty == 0
    assert c.avg_px == (D("0.3") * D("100.01") + D("0.7") * D("100.02")) / D("1")
    assert c.avg_px == D("100.017")


def test_replaced_takes_the_new_quantity_price_and_cl_ord_id() -> None:
    c = working("1")
    req = c.replace(order_qty=D("2"), price=D("99"))
    assert c.apply(rep(c, "PENDING_REPLACE", "PENDING_REPLACE", cl_ord_id=req.cl_ord_id))
    assert c.apply(rep(c, "NEW", "REPLACED", cl_ord_id=req.cl_ord_id, orig_cl_ord_id=req.orig_cl_ord_id))
    assert (c.order_qty, c.price, c.cl_ord_id, c.ord_status) == (
        D("2"),
        D("99"),
        req.cl_ord_id,
        OrdStatus.NEW,
    )


def test_replace_reject_restores_the_prior_state() -> None:
    c = working("2")
    c.apply(fill(c, "1", "100"))
    req = c.replace(price=D("101"))
    assert c.ord_status == OrdStatus.PENDING_REPLACE
    assert c.apply(
        rep(
            c,
            "PARTIALLY_FILLED",
            None,
            cl_ord_id=req.cl_ord_id,
            orig_cl_ord_id=req.orig_cl_ord_id,
            cxl_rej_response_to="REPLACE",
            text="TOO_LATE",
        )
    )
    assert c.ord_status == OrdStatus.PARTIALLY_FILLED and c.price == D("100") and c.pending is None
    assert c.cl_ord_id == req.orig_cl_ord_id


def test_cancel_then_canceled_closes_it() -> None:
    c = working()
    req = c.cancel()
    assert c.apply(
        rep(c, "PENDING_CANCEL", "PENDING_CANCEL", cl_ord_id=req.cl_ord_id, orig_cl_ord_id=req.orig_cl_ord_id)
    )
    assert c.ord_status == OrdStatus.PENDING_CANCEL and c.is_live
    assert c.apply(rep(c, "CANCELED", "CANCELED", cl_ord_id=req.cl_ord_id, orig_cl_ord_id=req.orig_cl_ord_id))
    assert c.ord_status == OrdStatus.CANCELED and c.leaves_qty == 0


def test_expired_closes_it() -> None:
    c = working()
    assert c.apply(rep(c, "EXPIRED", "EXPIRED"))
    assert c.ord_status == OrdStatus.EXPIRED and c.is_done


def test_fix42_style_report_without_exec_type_is_read_from_ord_status() -> None:
    c = new_child()
    c.new()
    assert c.apply(rep(c, "NEW", None))
    assert c.apply(Report(c.order_id, "PARTIALLY_FILLED", "0.5", "100", cl_ord_id=c.cl_ord_id, exec_id="f1"))
    assert c.cum_qty == D("0.5") and c.ord_status == OrdStatus.PARTIALLY_FILLED


def test_status_answer_settles_a_child_in_flight() -> None:
    c = new_child()
    c.new()
    assert c.apply(rep(c, "NEW", "ORDER_STATUS", exec_id=None, cum_qty="0"))
    assert c.ord_status == OrdStatus.NEW


def test_child_pickles_with_its_state() -> None:
    c = working("2")
    c.apply(fill(c, "1", "100"))
    c.cancel()
    back = pickle.loads(pickle.dumps(c))
    assert back == c and back.ord_status == OrdStatus.PENDING_CANCEL and back.exec_ids == c.exec_ids


# -- bad input ----------------------------------------------------------------------


def test_report_for_another_child_is_an_error_and_not_applied() -> None:
    c = working()
    other = working()
    with pytest.raises(ChildOrderError, match="is not for child"):
        c.apply(fill(other, "1", "100"))
    assert c.cum_qty == 0


def test_fill_beyond_order_qty_is_an_error_and_not_applied() -> None:
    c = working("1")
    c.apply(fill(c, "0.6", "100"))
    with pytest.raises(ChildOrderError, match="beyond order_qty 1"):
        c.apply(fill(c, "0.5", "100"))
    assert c.cum_qty == D("0.6") and c.ord_status == OrdStatus.PARTIALLY_FILLED


def test_report_with_inconsistent_quantities_is_an_error_and_not_applied() -> None:
    c = working("1")
    with pytest.raises(ChildOrderError, match="exceed order_qty"):
        c.apply(rep(c, "NEW", "NEW", cum_qty="0.5", leaves_qty="0.7"))
    with pytest.raises(ChildOrderError, match="cum_qty 2 exceeds"):
        c.apply(rep(c, "CANCELED", "CANCELED", cum_qty="2"))
    with pytest.raises(ChildOrderError, match="positive last_qty"):
        c.apply(rep(c, "PARTIALLY_FILLED", "TRADE", last_qty="0", last_px="1"))
    assert c.ord_status == OrdStatus.NEW and c.cum_qty == 0


def test_refused_report_does_not_consume_its_exec_id() -> None:
    c = working("1")
    bad = fill(c, "2", "100", exec_id="same")
    with pytest.raises(ChildOrderError):
        c.apply(bad)
    assert "same" not in c.exec_ids


# -- VENUES.md pitfalls -----------------------------------------------------------------


def test_pitfall_duplicate_report_same_exec_id_changes_nothing() -> None:
    """ccxt #18028, #18854: duplicate fills over websockets."""
    c = working("1")
    r = fill(c, "0.4", "100")
    assert c.apply(r)
    assert not c.apply(r)
    assert not c.apply(fill(c, "0.4", "100", exec_id=r.exec_id))
    assert c.cum_qty == D("0.4")


def test_pitfall_canceled_after_filled_neither_revives_nor_recloses() -> None:
    """nautilus #4157: a late CANCELED must not touch a FILLED order."""
    c = working("1")
    c.apply(fill(c, "1", "100", "FILLED"))
    assert not c.apply(rep(c, "CANCELED", "CANCELED"))
    assert not c.apply(rep(c, "NEW", "NEW"))
    assert not c.apply(rep(c, "NEW", "ORDER_STATUS", cum_qty="1"))
    assert c.ord_status == OrdStatus.FILLED


def test_pitfall_nothing_revives_a_canceled_order() -> None:
    c = working("1")
    c.apply(rep(c, "CANCELED", "CANCELED"))
    assert not c.apply(rep(c, "NEW", "NEW"))
    assert not c.apply(rep(c, "NEW", "REPLACED"))
    assert c.ord_status == OrdStatus.CANCELED


def test_pitfall_fill_after_cancel_request_then_too_late_reject_leaves_it_filled() -> None:
    """parity #70/#71: the fill keeps the original ClOrdID; CxlRejReason 0 follows."""
    c = working("1")
    original = c.cl_ord_id
    req = c.cancel()
    assert c.apply(fill(c, "1", "100", "FILLED", cl_ord_id=original))
    assert c.ord_status == OrdStatus.FILLED
    assert c.apply(
        rep(
            c,
            "FILLED",
            None,
            cl_ord_id=req.cl_ord_id,
            orig_cl_ord_id=original,
            cxl_rej_response_to="CANCEL",
            text="TOO_LATE_TO_CANCEL",
        )
    )
    assert c.ord_status == OrdStatus.FILLED and c.pending is None and c.cum_qty == D("1")


def test_pitfall_pending_cancel_is_live_and_still_fills() -> None:
    c = working("2")
    c.cancel()
    assert c.is_live
    assert c.apply(fill(c, "1", "100"))
    assert c.ord_status == OrdStatus.PENDING_CANCEL and c.cum_qty == D("1")


def test_pitfall_unsolicited_cancel_after_partial_fill_is_canceled_not_filled() -> None:
    """nautilus #4787: venue risk check / expiry / self-trade prevention."""
    c = working("2")
    c.apply(fill(c, "1", "100"))
    assert c.apply(rep(c, "CANCELED", "CANCELED", cum_qty="1", leaves_qty="0", text="SELF_TRADE_PREVENTION"))
    assert c.ord_status == OrdStatus.CANCELED and c.cum_qty == D("1") and c.leaves_qty == 0


def test_pitfall_binance_cancel_report_names_the_cancel_id_and_the_original() -> None:
    """nautilus PR #4930: on CANCELED, `c` is the cancel's id and `C` the original's."""
    c = working("1")
    req = c.cancel()
    assert c.apply(rep(c, "CANCELED", "CANCELED", cl_ord_id=req.cl_ord_id, orig_cl_ord_id=req.orig_cl_ord_id))
    assert c.ord_status == OrdStatus.CANCELED


def test_pitfall_fill_before_new_ack_out_of_order() -> None:
    """Reports arrive out of order: the fill settles PENDING_NEW; the late NEW changes nothing."""
    c = new_child("1")
    c.new()
    assert c.apply(fill(c, "0.5", "100"))
    assert c.ord_status == OrdStatus.PARTIALLY_FILLED
    assert not c.apply(rep(c, "NEW", "NEW"))
    assert c.ord_status == OrdStatus.PARTIALLY_FILLED


def test_pitfall_unknown_status_is_no_reject_the_child_stays_pending() -> None:
    """nautilus RFC #4152, Binance -1007: until a report says so, it is in flight."""
    c = new_child()
    c.new()
    assert c.ord_status == OrdStatus.PENDING_NEW and c.is_live
    with pytest.raises(ChildOrderError, match="withdraw"):
        c.withdraw(new_child().new())  # only the very request in flight can be withdrawn


def test_pitfall_retry_reuses_the_cl_ord_id_chosen_once() -> None:
    """ccxt #2599: the id is chosen once; a retry sends the same request."""
    c = new_child()
    req = c.new()
    with pytest.raises(ChildOrderError):
        c.new()  # no second id for the same child
    assert c.pending is req and c.cl_ord_ids == [req.cl_ord_id]


def test_late_fill_of_a_closed_order_is_counted_without_reopening_it() -> None:
    c = working("2")
    c.apply(rep(c, "CANCELED", "CANCELED"))
    assert c.apply(fill(c, "1", "100"))
    assert c.ord_status == OrdStatus.CANCELED and c.cum_qty == D("1")


def test_exec_type_and_ord_status_know_their_fix_values() -> None:
    assert ExecType.TRADE.fix == "F" and ExecType.from_fix("4") == ExecType.CANCELED
    assert OrdStatus.PENDING_NEW.fix == "A" and OrdStatus.from_fix("2") == OrdStatus.FILLED
    assert TimeInForce.IOC.fix == "3" and OrdType.LIMIT.fix == "2"
    with pytest.raises(ValueError, match="ExecType\\(150\\)"):
        ExecType.from_fix("Z")


# -- after a restart: a request journaled before the crash, missing from the saved state


def test_resumed_child_is_pending_new_under_the_journaled_cl_ord_id() -> None:
    sent = ChildOrder("p1", "BTC-USD", "BUY", D("2"), price=D("100"), time_in_force=TimeInForce.IOC)
    req = sent.new()
    c = ChildOrder.resumed(req)
    assert (c.cl_ord_id, c.cl_ord_ids, c.ord_status, c.pending) == (
        req.cl_ord_id,
        [req.cl_ord_id],
        OrdStatus.PENDING_NEW,
        req,
    )
    assert (c.order_qty, c.price, c.time_in_force, c.is_live) == (D("2"), D("100"), TimeInForce.IOC, True)
    assert c.apply(fill(c, "2", "99.5", "FILLED"))
    assert c.ord_status == OrdStatus.FILLED and c.pending is None and c.cum_qty == 2
    with pytest.raises(ChildOrderError, match="new\\(\\) once only"):
        c.new()


def test_resume_makes_a_journaled_replace_pending_again() -> None:
    c = working("2")
    saved = pickle.loads(pickle.dumps(c))
    req = c.replace(price=D("101"))
    assert saved.resume(req) is True
    assert saved.ord_status == OrdStatus.PENDING_REPLACE and saved.owns(req.cl_ord_id)
    assert saved.apply(
        rep(saved, "NEW", "REPLACED", cl_ord_id=req.cl_ord_id, orig_cl_ord_id=req.orig_cl_ord_id)
    )
    assert saved.price == D("101") and saved.cl_ord_id == req.cl_ord_id


def test_resumed_replace_waits_for_the_unacknowledged_new_before_it() -> None:
    # Saved while the NEW was in flight; the journal holds its ack, then the replace.
    c = new_child("2")
    saved_new = c.new()
    saved = pickle.loads(pickle.dumps(c))
    ack = rep(c, "NEW", "NEW")
    c.apply(ack)
    replace = c.replace(price=D("101"))
    assert saved.resume(replace) is False  # the NEW is still in flight here
    assert saved.ord_status == OrdStatus.PENDING_NEW and saved.owns(replace.cl_ord_id)
    assert saved.apply(ack)  # replayed: the NEW settles, the replace is in flight again
    assert saved.ord_status == OrdStatus.PENDING_REPLACE and saved.pending == replace
    assert saved.cl_ord_id == saved_new.cl_ord_id


def test_resumed_cancel_waits_for_the_replace_before_it_and_amends_its_order() -> None:
    c = working("2")
    r1 = c.replace(price=D("101"))
    saved = pickle.loads(pickle.dumps(c))  # saved with the replace in flight
    replaced = rep(c, "NEW", "REPLACED", cl_ord_id=r1.cl_ord_id, orig_cl_ord_id=r1.orig_cl_ord_id)
    c.apply(replaced)
    cancel = c.cancel()  # amends the replaced order
    assert saved.resume(cancel) is False
    assert saved.ord_status == OrdStatus.PENDING_REPLACE
    assert saved.apply(replaced)
    assert saved.ord_status == OrdStatus.PENDING_CANCEL and saved.pending == cancel
    assert saved.price == D("101") and saved.cl_ord_id == r1.cl_ord_id


def test_resumed_request_is_dropped_when_the_order_closes_first() -> None:
    c = new_child("1")
    c.new()
    saved = pickle.loads(pickle.dumps(c))
    ack = rep(c, "NEW", "NEW")
    c.apply(ack)
    cancel = c.cancel()
    saved.resume(cancel)
    assert saved.apply(fill(saved, "1", "100", "FILLED"))  # filled before the ack was replayed
    assert saved.ord_status == OrdStatus.FILLED and saved.pending is None
    assert saved.owns(cancel.cl_ord_id)  # the venue's reject of the cancel still finds the child


def test_child_pickled_before_a_field_was_added_restores_with_its_default() -> None:
    c = working()
    old = [getattr(c, f.name) for f in dataclasses.fields(c)][:-1]  # an older exo's pickle: a list
    restored = ChildOrder.__new__(ChildOrder)
    restored.__setstate__(old)
    assert restored == c and restored.ord_status == OrdStatus.NEW
    assert pickle.loads(pickle.dumps(restored)) == c


def test_resume_of_another_orders_request_raises() -> None:
    other = working()
    with pytest.raises(ChildOrderError, match="not child"):
        working().resume(other.cancel())
