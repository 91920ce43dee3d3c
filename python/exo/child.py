"""Child orders: one order a delegate sends to a venue for part of its parent.

``ChildOrder`` keeps one child's state with FIX names (cl_ord_id chain,
secondary_order_id, pending NEW/REPLACE/CANCEL, cum/leaves/avg) and makes the
requests to send (``new()``, ``replace()``, ``cancel()``). ``apply(report)``
moves the state on an execution report and says whether it changed anything.

The invariant: a child's state is the sum of distinct reports. A report seen
before (same exec_id) changes nothing; a closed order (FILLED, CANCELED,
REJECTED, EXPIRED) is never revived or re-closed; cum_qty never exceeds
order_qty; a report that would break a rule raises ``ChildOrderError`` and is
not applied. The pitfalls these rules answer are listed, with their sources
(NautilusTrader, ccxt, parity issue threads), in VENUES.md.

Why Python and not the Rust core: reports are rare next to ticks (a busy
venue sends tens to a few thousand reports/s for a whole account, while ticks
come at millions/s), and ``apply()`` costs a few microseconds in Python
(``benches/bench_child.py`` measures it), so clarity wins here.
"""

from __future__ import annotations

import enum
import itertools
import os
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from typing import Any

from exo._core import ExecType, MsgType, OrdStatus, Side

__all__ = [
    "ChildOrder",
    "ChildOrderError",
    "NewOrderSingle",
    "OrdType",
    "OrderCancelReplaceRequest",
    "OrderCancelRequest",
    "Request",
    "TimeInForce",
]


class ChildOrderError(ValueError):
    """A request the child's state forbids, or a report that would break its
    rules (inconsistent quantities, a fill beyond order_qty, another order's
    report). Nothing was changed."""


class OrdType(str, enum.Enum):
    """FIX OrdType (40): LIMIT ('2') or MARKET ('1')."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"

    @property
    def fix(self) -> str:
        return "2" if self is OrdType.LIMIT else "1"


class TimeInForce(str, enum.Enum):
    """FIX TimeInForce (59). POST_ONLY is GTC with ExecInst (18) '6'
    (participate don't initiate): rejected if it would take liquidity."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "POST_ONLY"

    @property
    def fix(self) -> str:
        return {"GTC": "1", "IOC": "3", "FOK": "4", "POST_ONLY": "1"}[self.value]


_TERMINAL = frozenset({OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED})

_ids = itertools.count(1)
_prefix = os.urandom(4).hex()


def new_cl_ord_id() -> str:
    """A fresh ClOrdID (11): unique per process run and across runs
    (random prefix), 8 + 1 + up to 12 characters (venues allow 36)."""
    return f"{_prefix}-{next(_ids):x}"


@dataclass(frozen=True, slots=True)
class NewOrderSingle:
    """FIX NewOrderSingle (35=D) for one child. ``order_id`` is the parent's."""

    cl_ord_id: str
    order_id: str
    symbol: str
    side: Side
    order_qty: Decimal
    ord_type: OrdType
    time_in_force: TimeInForce
    price: Decimal | None

    msg_type = MsgType.NEW


@dataclass(frozen=True, slots=True)
class OrderCancelReplaceRequest:
    """FIX OrderCancelReplaceRequest (35=G): new quantity and/or price."""

    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    symbol: str
    side: Side
    order_qty: Decimal
    ord_type: OrdType
    time_in_force: TimeInForce
    price: Decimal | None

    msg_type = MsgType.REPLACE


@dataclass(frozen=True, slots=True)
class OrderCancelRequest:
    """FIX OrderCancelRequest (35=F)."""

    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    symbol: str
    side: Side
    order_qty: Decimal

    msg_type = MsgType.CANCEL


Request = NewOrderSingle | OrderCancelReplaceRequest | OrderCancelRequest


def _dec(value: Any, name: str) -> Decimal:
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            d = Decimal(value)
        except ArithmeticError:
            raise ChildOrderError(f"{name}: {value!r} is not a decimal number") from None
    else:
        raise ChildOrderError(f"{name}: expected Decimal, int or str (exact), got {type(value).__name__}")
    if not d.is_finite():
        raise ChildOrderError(f"{name}: must be finite, got {value!r}")
    return d


@dataclass(slots=True)
class ChildOrder:
    """One child order of a parent ``exo.Order`` (``order_id`` is the parent's).

    ``ChildOrder(order_id, "BTC-USD", "BUY", Decimal("0.5"), price=Decimal("60000"))``
    is a LIMIT GTC child not yet sent (``ord_status`` None). Quantities and
    prices are exact ``Decimal``. ``ord_status`` reads as the venue would
    report it: PENDING_NEW / PENDING_REPLACE / PENDING_CANCEL while a request
    is in flight (all live: the order can still fill), else NEW,
    PARTIALLY_FILLED, FILLED, CANCELED, REJECTED or EXPIRED.

    Pickles (and so checkpoints) as plain data: it is the delegate's own state.
    """

    order_id: str
    symbol: str
    side: Side
    order_qty: Decimal
    price: Decimal | None = None
    ord_type: OrdType = OrdType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    cl_ord_id: str | None = None
    """The ClOrdID the venue knows the order by now (changes on REPLACED)."""
    secondary_order_id: str | None = None
    """The venue's OrderID (37)."""
    cum_qty: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    """Sum of last_qty * last_px over the fills: avg_px = notional / cum_qty, exact."""
    pending: Request | None = None
    """The request in flight, if any."""
    acknowledged: bool = False
    """The venue acknowledged the pending request (PENDING_* report)."""
    text: str | None = None
    """The last reject or cancel reason the venue gave."""
    cl_ord_ids: list[str] = field(default_factory=list)
    """Every ClOrdID this child has used, oldest first: the venue's routing keys."""
    exec_ids: set[str] = field(default_factory=set)
    _status: OrdStatus | None = None
    _resumed: list[OrderCancelReplaceRequest | OrderCancelRequest] | None = None
    """Replaces/cancels put back after a restart that wait for the request in
    flight before them to settle (see ``resume``)."""

    def __getstate__(self) -> list[Any]:
        return [getattr(self, f.name) for f in fields(self)]  # by field order: compact

    def __setstate__(self, state: list[Any]) -> None:
        """Also takes a child pickled by an older exo, whose state lacks the
        fields added since (new fields go last): those get their defaults, so
        a checkpoint written before an upgrade still restores."""
        for i, f in enumerate(fields(self)):
            if i < len(state):
                value = state[i]
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                value = f.default
            object.__setattr__(self, f.name, value)

    def __post_init__(self) -> None:
        if isinstance(self.side, str):
            self.side = Side.parse(self.side)
        self.ord_type = OrdType(self.ord_type)
        self.time_in_force = TimeInForce(self.time_in_force)
        self.order_qty = _dec(self.order_qty, "order_qty")
        if self.order_qty <= 0:
            raise ChildOrderError(f"order_qty: must be positive, got {self.order_qty}")
        if self.price is not None:
            self.price = _dec(self.price, "price")
            if self.price <= 0:
                raise ChildOrderError(f"price: must be positive, got {self.price}")
        if self.ord_type is OrdType.LIMIT and self.price is None:
            raise ChildOrderError("price: a LIMIT child needs a price (or ord_type=MARKET)")
        if self.ord_type is OrdType.MARKET and self.price is not None:
            raise ChildOrderError("price: a MARKET child has no price")
        if self.ord_type is OrdType.MARKET and self.time_in_force in (TimeInForce.GTC, TimeInForce.POST_ONLY):
            raise ChildOrderError(
                f"time_in_force: a MARKET child is IOC or FOK, not {self.time_in_force.value}"
            )

    # -- reading ----------------------------------------------------------------

    @property
    def ord_status(self) -> OrdStatus | None:
        """As a venue would report it; None before ``new()``."""
        status = self._status
        if status in _TERMINAL or self.pending is None:
            return status
        return {
            MsgType.NEW: OrdStatus.PENDING_NEW,
            MsgType.REPLACE: OrdStatus.PENDING_REPLACE,
            MsgType.CANCEL: OrdStatus.PENDING_CANCEL,
        }[self.pending.msg_type]

    @property
    def is_live(self) -> bool:
        """Sent and not closed (pending states are live: the order may fill)."""
        return self._status is not None and self._status not in _TERMINAL

    @property
    def is_done(self) -> bool:
        """FILLED, CANCELED, REJECTED or EXPIRED: no report changes it back."""
        return self._status in _TERMINAL

    @property
    def leaves_qty(self) -> Decimal:
        """Quantity still working at the venue (0 once closed)."""
        return Decimal(0) if self.is_done else self.order_qty - self.cum_qty

    @property
    def requests_in_flight(self) -> list[Request]:
        """The request in flight, then those put back after a restart that
        wait for it (``resume``), oldest first."""
        queued: list[Request] = list(self._resumed or ())
        return queued if self.pending is None else [self.pending, *queued]

    @property
    def avg_px(self) -> Decimal | None:
        return None if not self.cum_qty else self.notional / self.cum_qty

    # -- requests ---------------------------------------------------------------

    def new(self) -> NewOrderSingle:
        """The NewOrderSingle to send; the child becomes PENDING_NEW.
        Raises ChildOrderError if it was sent already."""
        if self._status is not None or self.cl_ord_ids:
            raise ChildOrderError(f"child {self.cl_ord_id}: new() once only; it was sent already")
        req = NewOrderSingle(
            new_cl_ord_id(),
            self.order_id,
            self.symbol,
            self.side,
            self.order_qty,
            self.ord_type,
            self.time_in_force,
            self.price,
        )
        self.cl_ord_id = req.cl_ord_id
        self.cl_ord_ids.append(req.cl_ord_id)
        self._status = OrdStatus.PENDING_NEW
        self.pending, self.acknowledged = req, False
        return req

    def _check_amendable(self, what: str) -> str:
        if self._status is None or self.cl_ord_id is None:
            raise ChildOrderError(f"{what}: the child was never sent; call new() first")
        if self.is_done:
            raise ChildOrderError(f"{what}: child {self.cl_ord_id} is {self._status.name}, closed")
        if self.pending is not None:
            raise ChildOrderError(
                f"{what}: child {self.cl_ord_id} has a {self.pending.msg_type.name} in flight "
                f"({self.pending.cl_ord_id}); wait for its report"
            )
        return self.cl_ord_id

    def replace(
        self, order_qty: Decimal | None = None, price: Decimal | None = None
    ) -> OrderCancelReplaceRequest:
        """The OrderCancelReplaceRequest to send (a fresh cl_ord_id, orig_cl_ord_id
        the current one); the child becomes PENDING_REPLACE. ``order_qty`` is
        the new total (FIX), at least cum_qty + something. Raises
        ChildOrderError if a request is in flight, the child is closed, or
        nothing changes."""
        orig = self._check_amendable("replace")
        qty = self.order_qty if order_qty is None else _dec(order_qty, "order_qty")
        px = self.price if price is None else _dec(price, "price")
        if price is not None and self.ord_type is OrdType.MARKET:
            raise ChildOrderError("replace: a MARKET child has no price to change")
        if qty == self.order_qty and px == self.price:
            raise ChildOrderError(f"replace: nothing to change (order_qty {qty}, price {px})")
        if qty <= self.cum_qty:
            raise ChildOrderError(
                f"replace: order_qty {qty} must exceed cum_qty {self.cum_qty}; cancel instead"
            )
        if px is not None and px <= 0:
            raise ChildOrderError(f"replace: price must be positive, got {px}")
        req = OrderCancelReplaceRequest(
            new_cl_ord_id(),
            orig,
            self.order_id,
            self.symbol,
            self.side,
            qty,
            self.ord_type,
            self.time_in_force,
            px,
        )
        self.cl_ord_ids.append(req.cl_ord_id)
        self.pending, self.acknowledged = req, False
        return req

    def cancel(self) -> OrderCancelRequest:
        """The OrderCancelRequest to send; the child becomes PENDING_CANCEL (still
        live: it can fill until the venue confirms). Raises ChildOrderError if a
        request is in flight or the child is closed."""
        orig = self._check_amendable("cancel")
        req = OrderCancelRequest(new_cl_ord_id(), orig, self.order_id, self.symbol, self.side, self.order_qty)
        self.cl_ord_ids.append(req.cl_ord_id)
        self.pending, self.acknowledged = req, False
        return req

    def withdraw(self, request: Request) -> None:
        """Undoes ``request`` when it provably never left (e.g. the venue refused
        it under its rate limit before sending). Never after a timeout: then the
        status is unknown and only a report settles it."""
        if self.pending is not request:
            raise ChildOrderError(f"withdraw: {request.cl_ord_id} is not the request in flight")
        self.pending = None
        if isinstance(request, NewOrderSingle):
            self._status, self.cl_ord_id = None, None
            self.cl_ord_ids.clear()

    # -- after a restart ----------------------------------------------------------

    @classmethod
    def resumed(cls, request: NewOrderSingle) -> ChildOrder:
        """The child a journaled NewOrderSingle stands for, PENDING_NEW with
        that request in flight: the child of a delegate whose saved state
        predates the send (the process died between the send and the next
        checkpoint). Its status is then asked of the venue (see exo.venues)."""
        child = cls(
            request.order_id,
            request.symbol,
            request.side,
            request.order_qty,
            request.price,
            request.ord_type,
            request.time_in_force,
        )
        child.cl_ord_id = request.cl_ord_id
        child.cl_ord_ids.append(request.cl_ord_id)
        child._status = OrdStatus.PENDING_NEW
        child.pending = request
        return child

    def resume(self, request: OrderCancelReplaceRequest | OrderCancelRequest) -> bool:
        """Puts back a replace or cancel of this child journaled before a
        restart that the saved state misses: its cl_ord_id is the child's
        again (its reports route here) and it is the pending request again
        (PENDING_REPLACE/CANCEL). If another request is still in flight in the
        saved state (its report is in the journal, replayed after this), the
        resumed one waits and becomes pending once that one settles with the
        order it amends still live, as it did before the crash. Returns True
        if it is pending now. Raises ChildOrderError if it amends another
        order."""
        if not self.owns(request.orig_cl_ord_id):
            raise ChildOrderError(
                f"resume: {request.cl_ord_id} amends {request.orig_cl_ord_id}, not child {self.cl_ord_id}"
            )
        if not self.owns(request.cl_ord_id):
            self.cl_ord_ids.append(request.cl_ord_id)
        if self.pending is None and not self.is_done and request.orig_cl_ord_id == self.cl_ord_id:
            self.pending, self.acknowledged = request, False
            return True
        if self._resumed is None:
            self._resumed = []
        self._resumed.append(request)
        return False

    def _take_resumed(self) -> None:
        """After a report: the next resumed request becomes pending once nothing
        is in flight and it amends the order as it now stands."""
        queue = self._resumed
        if not queue or self.pending is not None:
            return
        if self.is_done:
            self._resumed = None  # the order closed first: the venue rejects (or rejected) them
            return
        if queue[0].orig_cl_ord_id == self.cl_ord_id:
            self.pending, self.acknowledged = queue.pop(0), False

    # -- reports ----------------------------------------------------------------

    def owns(self, cl_ord_id: str | None) -> bool:
        return cl_ord_id is not None and cl_ord_id in self.cl_ord_ids

    def apply(self, report: Any) -> bool:
        """Applies one execution report (an ``exo.Report`` for this child: its
        cl_ord_id or orig_cl_ord_id is one of this child's). Returns True if the
        state changed. Raises ChildOrderError, changing nothing, if the report
        is another order's or its quantities are inconsistent."""
        if not (self.owns(report.cl_ord_id) or self.owns(report.orig_cl_ord_id)):
            raise ChildOrderError(
                f"report {report.exec_id or '?'} for cl_ord_id {report.cl_ord_id!r} "
                f"(orig {report.orig_cl_ord_id!r}) is not for child {self.cl_ord_id}"
            )
        exec_id = report.exec_id
        if exec_id is not None and exec_id in self.exec_ids:
            return False  # duplicate delivery (ccxt #18028): nothing new
        if report.cxl_rej_response_to is not None:
            changed = self._cancel_reject(report)
        else:
            exec_type = report.exec_type
            if exec_type is None:  # a venue that sends only OrdStatus (FIX 4.2 style)
                exec_type = _EXEC_FROM_STATUS.get(report.ord_status)
                if report.last_qty:
                    exec_type = ExecType.TRADE
            changed = self._apply(exec_type, report)
        if report.secondary_order_id and report.secondary_order_id != self.secondary_order_id:
            self.secondary_order_id = report.secondary_order_id
            changed = True
        if exec_id is not None:
            self.exec_ids.add(exec_id)
        if changed:
            self._take_resumed()
        return changed

    def _apply(self, exec_type: ExecType | None, r: Any) -> bool:
        if exec_type is ExecType.TRADE:
            return self._fill(r)
        self._check_totals(r)
        if self.is_done:
            return False  # late: a closed order is never revived or re-closed (nautilus #4157)
        pending = self.pending
        if (
            exec_type is ExecType.PENDING_NEW
            or exec_type is ExecType.PENDING_CANCEL
            or (exec_type is ExecType.PENDING_REPLACE)
        ):
            if pending is None or self.acknowledged:
                return False
            self.acknowledged = True
            return True
        if exec_type is ExecType.NEW:
            if isinstance(pending, NewOrderSingle):
                self.pending = None
            if self._status is OrdStatus.PENDING_NEW:
                self._status = OrdStatus.NEW
                return True
            return pending is not None and self.pending is None
        if exec_type is ExecType.REPLACED:
            if not isinstance(pending, OrderCancelReplaceRequest):
                raise ChildOrderError(
                    f"REPLACED for {r.cl_ord_id} but child {self.cl_ord_id} has no replace in flight"
                )
            qty = r.order_qty if r.order_qty is not None else pending.order_qty
            if qty < self.cum_qty:
                raise ChildOrderError(f"REPLACED to order_qty {qty} below cum_qty {self.cum_qty}")
            self.order_qty, self.price = qty, (r.price if r.price is not None else pending.price)
            self.cl_ord_id, self.pending = pending.cl_ord_id, None
            self._settle()
            return True
        if (
            exec_type is ExecType.CANCELED
            or exec_type is ExecType.EXPIRED
            or exec_type is ExecType.DONE_FOR_DAY
        ):
            # Solicited or not (venue risk checks, expiry, self-trade prevention):
            # CANCELED even with cum_qty > 0, never FILLED (nautilus #4787).
            self._status = OrdStatus.EXPIRED if exec_type is ExecType.EXPIRED else OrdStatus.CANCELED
            self.pending, self.text = None, r.text
            return True
        if exec_type is ExecType.REJECTED:
            if isinstance(pending, NewOrderSingle) or self._status is OrdStatus.PENDING_NEW:
                self._status, self.pending, self.text = OrdStatus.REJECTED, None, r.text
                return True
            if pending is not None:  # a venue that rejects an amend with an ExecutionReport
                self.pending, self.text = None, r.text
                return True
            return False
        if exec_type is ExecType.ORDER_STATUS:
            return self._status_answer(r)
        return False  # RESTATED, SUSPENDED, CALCULATED, ...: no change to the state kept here

    def _status_answer(self, r: Any) -> bool:
        """An answer to a status query (reconciliation). Missing fills come as
        TRADE reports before it; here only the status is mended."""
        status = r.ord_status
        if status in (OrdStatus.CANCELED, OrdStatus.EXPIRED, OrdStatus.REJECTED):
            if r.cum_qty is not None and r.cum_qty != self.cum_qty:
                raise ChildOrderError(
                    f"status {status.name} with cum_qty {r.cum_qty} but {self.cum_qty} applied: "
                    "fills are missing"
                )
            self._status, self.pending, self.text = status, None, r.text
            return True
        if status in (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED) and isinstance(self.pending, NewOrderSingle):
            self.pending = None
            self._settle()
            return True
        return False

    def _cancel_reject(self, r: Any) -> bool:
        """OrderCancelReject (35=9): the pending cancel/replace failed; the order
        is as before it. A fill that got there first stays (parity #70)."""
        pending = self.pending
        if pending is None or pending.msg_type != r.cxl_rej_response_to:
            return False
        if r.cl_ord_id is not None and r.cl_ord_id != pending.cl_ord_id:
            return False  # a reject of an older request
        self.pending, self.acknowledged, self.text = None, False, r.text
        return True

    def _check_totals(self, r: Any) -> None:
        for name in ("cum_qty", "leaves_qty", "order_qty"):
            v = getattr(r, name)
            if v is not None and v < 0:
                raise ChildOrderError(f"{name} {v} is negative")
        limit = r.order_qty if r.order_qty is not None else self._max_qty()
        if r.cum_qty is not None and r.cum_qty > limit:
            raise ChildOrderError(f"cum_qty {r.cum_qty} exceeds order_qty {limit}")
        if r.cum_qty is not None and r.leaves_qty is not None and r.cum_qty + r.leaves_qty > limit:
            raise ChildOrderError(f"cum_qty {r.cum_qty} + leaves_qty {r.leaves_qty} exceed order_qty {limit}")

    def _max_qty(self) -> Decimal:
        if isinstance(self.pending, OrderCancelReplaceRequest):
            return max(self.order_qty, self.pending.order_qty)
        return self.order_qty

    def _fill(self, r: Any) -> bool:
        qty, px = r.last_qty, r.last_px
        if qty is None or px is None or qty <= 0 or px <= 0:
            raise ChildOrderError(f"fill {r.exec_id}: needs positive last_qty and last_px, got {qty} @ {px}")
        self._check_totals(r)
        cum = self.cum_qty + qty
        if cum > self._max_qty():
            raise ChildOrderError(
                f"fill {r.exec_id}: {qty} @ {px} takes cum_qty to {cum}, beyond order_qty {self.order_qty}"
            )
        self.cum_qty, self.notional = cum, self.notional + qty * px
        if isinstance(self.pending, NewOrderSingle):
            self.pending = None  # a fill means the venue has the order
        if self._status in (OrdStatus.PENDING_NEW, OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED):
            self._settle()
        # A late fill of a closed order is counted but does not reopen it.
        return True

    def _settle(self) -> None:
        if self.cum_qty >= self.order_qty:
            self._status = OrdStatus.FILLED
        elif self.cum_qty:
            self._status = OrdStatus.PARTIALLY_FILLED
        else:
            self._status = OrdStatus.NEW

    def __repr__(self) -> str:
        status = self.ord_status.name if self.ord_status is not None else "UNSENT"
        px = "" if self.price is None else f" @ {self.price}"
        return (
            f"ChildOrder({self.cl_ord_id} {self.side.name} {self.order_qty} {self.symbol}{px} "
            f"{self.ord_type.value} {self.time_in_force.value} {status} cum {self.cum_qty})"
        )


_EXEC_FROM_STATUS = {
    OrdStatus.PENDING_NEW: ExecType.PENDING_NEW,
    OrdStatus.NEW: ExecType.NEW,
    OrdStatus.CANCELED: ExecType.CANCELED,
    OrdStatus.PENDING_CANCEL: ExecType.PENDING_CANCEL,
    OrdStatus.PENDING_REPLACE: ExecType.PENDING_REPLACE,
    OrdStatus.REJECTED: ExecType.REJECTED,
    OrdStatus.EXPIRED: ExecType.EXPIRED,
}
