"""exo._core: the Rust extension (rust/python), as Python sees it.

Every item is documented here, per item: shapes, units and errors. Keep this
file in step with the extension: ``make lint`` runs mypy's stubtest against
the built module (``.ci/stubtest-allowlist.txt`` lists what is typing-only).

Conventions for the whole module:

- Prices and quantities are ``decimal.Decimal`` on the way out. On the way in
  they are a Decimal, a ``str`` or an ``int`` (``_DecimalLike``); a ``float``
  raises ``TypeError`` (it is not exact: pass ``Decimal('1.5')`` or
  ``'1.5'``), text that is no finite decimal number raises ``ValueError``,
  naming the field.
- Enum-like values (``Side``, ``MsgType``, ``OrdStatus``) are accepted as the
  value or as its name (case-insensitive); an unknown name raises
  ``ValueError`` listing the expected ones. ``int()`` gives their position
  (0, 1, ...), not a FIX code; ``name`` is what to store or send.
- Times: ``*_ns`` on the ``time.monotonic_ns()`` clock, durations in seconds
  as ``float`` unless the name says ``_ns``.
"""

import asyncio
import os
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeAlias

from typing_extensions import Self, disjoint_base, final

__all__ = [
    "ConflatingQueue",
    "ExecType",
    "Feed",
    "LoopRunner",
    "MsgType",
    "OrdStatus",
    "Order",
    "Quote",
    "Report",
    "Side",
    "Trade",
    "Update",
    "__version__",
    "new_order_id",
    "parse_decimal",
]

__version__: str
"""The package version (Cargo's, as built)."""

def parse_decimal(text: str) -> Decimal:
    """A positive price or quantity in exo's grammar ``[0-9]{1,15}(\\.[0-9]{1,13})?``, exactly.

    Raises ValueError naming the rule broken (syntax, digits before or after the point, zero)."""

def new_order_id() -> str:
    """A new order_id as the engine assigns to a NEW without one: a UUIDv7 in
    simple form (32 lowercase hex digits, time-ordered, unique)."""

_DecimalLike: TypeAlias = Decimal | str | int
"""A price or quantity as accepted: Decimal, str or int (never float)."""

@final
class Side:
    """The side of an order (FIX tag 54 Side): ``BUY`` or ``SELL``. Never
    changes for the life of an order."""

    BUY: Side
    """Buy (FIX 54=1); ``int(Side.BUY) == 0``."""
    SELL: Side
    """Sell (FIX 54=2); ``int(Side.SELL) == 1``."""
    @property
    def name(self) -> str:
        """The upper-case name: ``"BUY"`` or ``"SELL"``."""
    @staticmethod
    def parse(text: str) -> Side:
        """The side named ``text``, case-insensitive (``"buy"`` works).
        Raises ``ValueError`` for any other text, listing BUY, SELL."""
    @property
    def fix(self) -> str:
        """The value on the FIX wire, one character (``Side.BUY.fix == "1"``)."""
    @staticmethod
    def from_fix(c: str) -> Side:
        """The value for a FIX wire character; raises ``ValueError`` for an
        unknown one, naming the tag."""
    def __int__(self) -> int:
        """0 for BUY, 1 for SELL."""

@final
class MsgType:
    """What an instruction does, after FIX tag 35 MsgType: NEW
    (NewOrderSingle, 35=D), CANCEL (OrderCancelRequest, 35=F), REPLACE
    (OrderCancelReplaceRequest, 35=G)."""

    NEW: MsgType
    """Creates an order; ``int`` 0."""
    CANCEL: MsgType
    """Asks the live order's delegate to cancel; ``int`` 1."""
    REPLACE: MsgType
    """Asks the live order's delegate to change the order; ``int`` 2."""
    @property
    def name(self) -> str:
        """The upper-case name: ``"NEW"``, ``"CANCEL"`` or ``"REPLACE"``."""
    @staticmethod
    def parse(text: str) -> MsgType:
        """The message type named ``text``, case-insensitive. Raises
        ``ValueError`` for any other text (FIX codes such as ``"D"`` too),
        listing NEW, CANCEL, REPLACE."""
    @property
    def fix(self) -> str:
        """The value on the FIX wire, one character (``MsgType.NEW.fix == "D"``)."""
    @staticmethod
    def from_fix(c: str) -> MsgType:
        """The value for a FIX wire character; raises ``ValueError`` for an
        unknown one, naming the tag."""
    def __int__(self) -> int:
        """0 for NEW, 1 for CANCEL, 2 for REPLACE."""

@final
class OrdStatus:
    """An order's status in an execution report, FIX tag 39 OrdStatus.
    ``int()`` is the position in the list below (0-8), not the FIX code."""

    NEW: OrdStatus
    """Accepted by the counterparty (39=0); ``int`` 0."""
    PARTIALLY_FILLED: OrdStatus
    """Some quantity filled, the rest working (39=1); ``int`` 1."""
    FILLED: OrdStatus
    """Completely filled (39=2); ``int`` 2."""
    CANCELED: OrdStatus
    """Canceled, nothing more will fill (39=4); ``int`` 3."""
    PENDING_CANCEL: OrdStatus
    """A cancel is in progress (39=6); ``int`` 4."""
    REJECTED: OrdStatus
    """Refused by the counterparty (39=8); ``int`` 5."""
    PENDING_NEW: OrdStatus
    """Received, not yet accepted (39=A); ``int`` 6."""
    EXPIRED: OrdStatus
    """Expired by its time in force (39=C); ``int`` 7."""
    PENDING_REPLACE: OrdStatus
    """A replace is in progress (39=E); ``int`` 8."""
    @property
    def name(self) -> str:
        """The upper-case name, e.g. ``"PARTIALLY_FILLED"``."""
    @staticmethod
    def parse(text: str) -> OrdStatus:
        """The status named ``text``, case-insensitive (``"filled"`` works).
        Raises ``ValueError`` for any other text, FIX codes included, listing
        the nine names."""
    @property
    def fix(self) -> str:
        """The value on the FIX wire, one character (``OrdStatus.FILLED.fix == "2"``)."""
    @staticmethod
    def from_fix(c: str) -> OrdStatus:
        """The value for a FIX wire character; raises ``ValueError`` for an
        unknown one, naming the tag."""
    def __int__(self) -> int:
        """0-8, in the order the statuses are listed (not the FIX code)."""

@final
class ExecType:
    """What one execution report says happened, FIX tag 150 ExecType (4.4
    values: a fill is ``TRADE``; 4.2's PartialFill/Fill are gone). ``int()``
    is the position in the list below, not the FIX code."""

    NEW: ExecType
    """The order was accepted (150=0)."""
    DONE_FOR_DAY: ExecType
    """Done for the day (150=3)."""
    CANCELED: ExecType
    """Canceled, solicited or not (150=4)."""
    REPLACED: ExecType
    """A replace took effect (150=5)."""
    PENDING_CANCEL: ExecType
    """A cancel request was received (150=6)."""
    STOPPED: ExecType
    """Stopped (150=7)."""
    REJECTED: ExecType
    """The order was rejected (150=8)."""
    SUSPENDED: ExecType
    """Suspended (150=9)."""
    PENDING_NEW: ExecType
    """The order was received, not yet accepted (150=A)."""
    CALCULATED: ExecType
    """Calculated (150=B)."""
    EXPIRED: ExecType
    """Expired by its time in force (150=C)."""
    RESTATED: ExecType
    """Restated by the venue (150=D)."""
    PENDING_REPLACE: ExecType
    """A replace request was received (150=E)."""
    TRADE: ExecType
    """A fill, partial or complete (150=F)."""
    TRADE_CORRECT: ExecType
    """A fill corrected (150=G)."""
    TRADE_CANCEL: ExecType
    """A fill busted (150=H)."""
    ORDER_STATUS: ExecType
    """An answer to a status request (150=I)."""
    @property
    def name(self) -> str:
        """The upper-case name, e.g. ``"PENDING_NEW"``."""
    @staticmethod
    def parse(text: str) -> ExecType:
        """The exec type named ``text``, case-insensitive. Raises
        ``ValueError`` for any other text, listing the names."""
    @property
    def fix(self) -> str:
        """The value on the FIX wire, one character (``ExecType.TRADE.fix == "F"``)."""
    @staticmethod
    def from_fix(c: str) -> ExecType:
        """The value for a FIX wire character; raises ``ValueError`` for an
        unknown one, naming the tag."""
    def __int__(self) -> int:
        """0-16, in the order listed (not the FIX code)."""

@final
class Quote:
    """Best bid and offer of one symbol (top of book), immutable. A newer
    quote replaces an older one in an order's next Update (conflation).

    ``Quote(symbol, bid_px, bid_size, ask_px, ask_size)``: prices in quote
    currency per unit, sizes in units of the instrument, as the venue gives
    them. Raises ``ValueError`` for an empty symbol or a value that is no
    finite decimal, ``TypeError`` for a float; a crossed book is not refused.

    A side of the book that is empty is ``None``, never 0 (a thin product
    with no asks; an idle product's first ticker has neither side). The feeds
    deliver an empty side as ``None`` price and ``None`` size (a venue's
    ``null``, ``""``, missing field, or price 0 with no size); a price sent
    without its size keeps the price with a ``None`` size. ``near``/``far``
    and their sizes are then ``None`` for that side; ``spread`` and
    ``mid_price`` are ``None`` unless both prices are there.
    """

    def __new__(
        cls,
        symbol: str,
        bid_px: _DecimalLike | None,
        bid_size: _DecimalLike | None,
        ask_px: _DecimalLike | None,
        ask_size: _DecimalLike | None,
    ) -> Quote: ...
    @property
    def symbol(self) -> str:
        """The instrument, e.g. ``"BTC-USD"`` (the venue's spelling)."""
    @property
    def bid_px(self) -> Decimal | None:
        """Best bid price (FIX 132 BidPx); ``None`` when the bid side is empty."""
    @property
    def bid_size(self) -> Decimal | None:
        """Quantity at the best bid (FIX 134 BidSize); ``None`` when empty or not sent."""
    @property
    def ask_px(self) -> Decimal | None:
        """Best offer price (FIX 133 OfferPx); ``None`` when the ask side is empty."""
    @property
    def ask_size(self) -> Decimal | None:
        """Quantity at the best offer (FIX 135 OfferSize); ``None`` when empty or not sent."""
    def near(self, side: Side | str) -> Decimal | None:
        """Price on ``side``'s own side: the bid for a BUY, the ask for a
        SELL; ``None`` when that side is empty. Raises ``ValueError`` for an
        unknown side."""
    def near_size(self, side: Side | str) -> Decimal | None:
        """Size on ``side``'s own side (bid size for a BUY), or ``None``."""
    def far(self, side: Side | str) -> Decimal | None:
        """Price ``side`` would trade against: the ask for a BUY, the bid
        for a SELL; ``None`` when that side is empty."""
    def far_size(self, side: Side | str) -> Decimal | None:
        """Size ``side`` would trade against (ask size for a BUY), or ``None``."""
    @property
    def spread(self) -> Decimal | None:
        """``ask_px - bid_px`` (negative when the book is crossed); ``None``
        when a side is empty."""
    @property
    def mid_price(self) -> Decimal | None:
        """``(bid_px + ask_px) / 2``; ``None`` when a side is empty."""

@final
class Trade:
    """A print on the tape, or several prints of one symbol merged (as an
    order's next Update merges them): the newest print's quantity and price
    plus, once merged, the volume and volume-weighted average price.

    ``Trade(symbol, last_qty, last_px, trade_volume=None, avg_px=None)``.
    Raises ``ValueError`` for an empty symbol or a value that is no finite
    decimal, ``TypeError`` for a float.
    """

    def __new__(
        cls,
        symbol: str,
        last_qty: _DecimalLike,
        last_px: _DecimalLike,
        trade_volume: _DecimalLike | None = None,
        avg_px: _DecimalLike | None = None,
    ) -> Trade: ...
    @property
    def symbol(self) -> str:
        """The instrument, e.g. ``"BTC-USD"``."""
    @property
    def last_qty(self) -> Decimal:
        """Quantity of the newest print (FIX 32 LastQty), in units."""
    @property
    def last_px(self) -> Decimal:
        """Price of the newest print (FIX 31 LastPx)."""
    @property
    def trade_volume(self) -> Decimal | None:
        """Total quantity over the merged prints (FIX 1020 TradeVolume);
        None for a single print."""
    @property
    def avg_px(self) -> Decimal | None:
        """Volume-weighted average price over the merged prints, rounded to
        8 decimal places (FIX 6 AvgPx); None for a single print."""
    def merge(self, newer: Trade) -> Trade:
        """This trade with ``newer`` merged in, as the engine merges prints:
        ``newer``'s last_qty/last_px, summed volume, VWAP. Raises
        ``ValueError`` when the symbols differ."""

@disjoint_base
class Order:
    """The identity of an instruction: order_id, msg_type, side, symbol.
    ``exo.Order`` subclasses it and carries the user's own fields; the engine
    reads only the identity and hands the very same object to the delegate.
    ``__new__`` takes and ignores any arguments (``exo.Order.__init__`` sets
    the fields); a fresh identity is a NEW BUY with no symbol and no id."""

    def __new__(cls, *_args: Any, **_kwargs: Any) -> Self: ...
    @property
    def order_id(self) -> str | None:
        """The order's id (FIX 37 OrderID): None on a NEW until the engine
        assigns one (a UUIDv7, 32 hex digits) on submit."""
    @order_id.setter
    def order_id(self, value: str | None) -> None: ...
    @property
    def msg_type(self) -> MsgType:
        """NEW, CANCEL or REPLACE; set from a MsgType or its name."""
    @msg_type.setter
    def msg_type(self, value: MsgType | str) -> None: ...
    @property
    def side(self) -> Side:
        """BUY or SELL; set from a Side or its name. Never changes for the
        life of an order (a CANCEL/REPLACE with another side is refused)."""
    @side.setter
    def side(self, value: Side | str) -> None: ...
    @property
    def symbol(self) -> str:
        """The instrument; never changes for the life of an order. ``submit``
        raises ``ValueError`` while it is empty."""
    @symbol.setter
    def symbol(self, value: str) -> None: ...

@disjoint_base
class Report:
    """An execution report for one order (FIX 35=8 ExecutionReport, or an
    OrderCancelReject 35=9 when ``cxl_rej_response_to`` is set), as the
    counterparty sent it; the delegate reads it in its next Update.

    ``Report(order_id, ord_status, last_qty=None, last_px=None, *, symbol=...,
    side=..., ..., **extra)``: fields named after their FIX tags; quantities
    and prices as Decimal/str/int (a float raises ``TypeError``), statuses and
    sides as the value or its name (an unknown one raises ``ValueError``).
    Extra keywords are kept and readable as attributes (``report.fee``).
    Pickles exactly.
    """

    def __new__(
        cls,
        order_id: str,
        ord_status: OrdStatus | str,
        last_qty: _DecimalLike | None = None,
        last_px: _DecimalLike | None = None,
        *,
        symbol: str | None = None,
        side: Side | str | None = None,
        secondary_order_id: str | None = None,
        cl_ord_id: str | None = None,
        exec_id: str | None = None,
        transact_time: Any = None,
        exec_inst: str | None = None,
        leaves_qty: _DecimalLike | None = None,
        cum_qty: _DecimalLike | None = None,
        avg_px: _DecimalLike | None = None,
        text: str | None = None,
        exec_type: ExecType | str | None = None,
        orig_cl_ord_id: str | None = None,
        order_qty: _DecimalLike | None = None,
        price: _DecimalLike | None = None,
        cxl_rej_response_to: MsgType | str | None = None,
        **extra: Any,
    ) -> Self: ...
    @property
    def order_id(self) -> str:
        """The exo order it is for (FIX 37 OrderID)."""
    @property
    def ord_status(self) -> OrdStatus:
        """The order's status after this report (FIX 39 OrdStatus)."""
    @property
    def last_qty(self) -> Decimal | None:
        """Quantity filled by this report (FIX 32 LastQty); None if no fill."""
    @property
    def last_px(self) -> Decimal | None:
        """Price of this fill (FIX 31 LastPx); None if no fill."""
    @property
    def symbol(self) -> str | None:
        """FIX 55 Symbol, when the counterparty sent it."""
    @property
    def side(self) -> Side | None:
        """FIX 54 Side, when the counterparty sent it."""
    @property
    def secondary_order_id(self) -> str | None:
        """The counterparty's own id for the order (FIX 198 SecondaryOrderID)."""
    @property
    def cl_ord_id(self) -> str | None:
        """The client order id the request carried (FIX 11 ClOrdID)."""
    @property
    def exec_id(self) -> str | None:
        """The counterparty's id of this report (FIX 17 ExecID)."""
    @property
    def transact_time(self) -> str | None:
        """FIX 60 TransactTime as ISO-8601 text (a datetime given is stored
        as its ``isoformat()``; any other type raises ``TypeError``)."""
    @property
    def exec_inst(self) -> str | None:
        """FIX 18 ExecInst, as sent."""
    @property
    def leaves_qty(self) -> Decimal | None:
        """Quantity still working (FIX 151 LeavesQty)."""
    @property
    def cum_qty(self) -> Decimal | None:
        """Total quantity filled so far (FIX 14 CumQty)."""
    @property
    def avg_px(self) -> Decimal | None:
        """Average price of the fills so far (FIX 6 AvgPx)."""
    @property
    def text(self) -> str | None:
        """Free text from the counterparty (FIX 58 Text), e.g. a reject reason."""
    @property
    def exec_type(self) -> ExecType | None:
        """What this report says happened (FIX 150 ExecType)."""
    @property
    def orig_cl_ord_id(self) -> str | None:
        """The client order id a replace or cancel refers to (FIX 41 OrigClOrdID)."""
    @property
    def order_qty(self) -> Decimal | None:
        """The order's quantity as the counterparty holds it (FIX 38 OrderQty)."""
    @property
    def price(self) -> Decimal | None:
        """The order's limit price as the counterparty holds it (FIX 44 Price)."""
    @property
    def cxl_rej_response_to(self) -> MsgType | None:
        """Set when this report is an OrderCancelReject (35=9): the request
        rejected, CANCEL or REPLACE (FIX 434 CxlRejResponseTo)."""
    @property
    def extra(self) -> dict[str, Any]:
        """The extra keyword arguments given at construction (a copy)."""
    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments for ``__new__``: pickles exactly."""
    def __getattr__(self, name: str) -> Any:
        """Typing only: an extra keyword given at construction reads as an
        attribute; any other name raises ``AttributeError``."""

@final
class Update:
    """What one order's delegate gets per call: everything that arrived for
    it since its last action, merged. Made by the engine only; immutable."""

    @property
    def order_id(self) -> str:
        """The order this Update is for."""
    @property
    def quote(self) -> Quote | None:
        """The newest quote of the order's symbol, or None if none arrived."""
    @property
    def trade(self) -> Trade | None:
        """Every print since the last hand-over merged into one (volume,
        VWAP), or None."""
    @property
    def instructions(self) -> list[Any]:
        """The instructions (the ``exo.Order`` objects submitted: NEW, CANCEL,
        REPLACE) in arrival order; never merged or dropped."""
    @property
    def reports(self) -> list[Any]:
        """The execution reports (the objects given to ``report``) in arrival
        order; never merged or dropped."""
    @property
    def quotes_merged(self) -> int:
        """How many quotes were conflated into ``quote`` (0 when None)."""
    @property
    def trades_merged(self) -> int:
        """How many prints were merged into ``trade`` (0 when None)."""
    @property
    def idle(self) -> bool:
        """True when nothing arrived: the order was idle for the engine's
        ``idle_interval``."""
    @property
    def arrived_ns(self) -> int | None:
        """When the newest item arrived, in ns on the ``time.monotonic_ns()``
        clock; None if idle."""
    @property
    def staleness_ns(self) -> int | None:
        """How old the newest item was just before ``action`` was called with
        this Update, in ns; None if idle. Within a batch of hand-overs, an
        Update taken more than 20 us before its call gets what arrived
        meanwhile, so late delegates are not handed data as old as the batch
        (README, "What bounds staleness")."""
    @property
    def staleness(self) -> float | None:
        """``staleness_ns`` in seconds; None if idle."""

@disjoint_base
class ConflatingQueue:
    """A keyed queue where a key keeps its place until popped; the base of
    ``exo.ConflatingQueue`` (which adds ``await get()``).

    ``merge(existing, new)``, if given, combines a value pushed for a queued
    key with the queued one (its result is queued); without it the newer
    value replaces the older. Safe from any thread.
    """

    def __new__(cls, merge: Callable[[Any, Any], Any] | None = None) -> Self: ...
    def push(self, key: Any, value: Any) -> None:
        """Queues ``value`` under ``key``: appended if the key is new,
        otherwise replaces (or merges into) the queued value, which keeps its
        place. Keys are str, int, bytes or tuples of them; any other key
        raises ``TypeError``. An exception from ``merge`` propagates and
        leaves the queued value as it was."""
    def pop(self) -> tuple[Any, Any] | None:
        """Removes and returns the oldest ``(key, value)``; None when empty."""
    def __len__(self) -> int:
        """How many keys are queued."""
    def len(self) -> int:
        """How many keys are queued (as ``len(queue)``)."""
    def _wait(self, event_loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None]) -> None:
        """Resolves ``fut`` on ``event_loop`` once the queue is non-empty (at
        once if it already is). Used by ``exo.ConflatingQueue.get``."""

@final
class LoopRunner:
    """The engine's Rust half: the core's Runner (dispatcher, hand-over loop,
    rules, idle timer, feeds) driven from the asyncio loop, which calls the
    delegates in batches under the GIL. ``exo.Engine`` owns one per run and is the only intended user;
    its callbacks run on the event loop's thread, with the GIL.

    Constructor arguments: ``factory(order)`` makes a NEW's delegate;
    ``idle_interval`` in seconds (> 0); ``on_error(order_id, message)``
    receives every rule violation and delegate failure; ``on_done(order_id)``
    is called when an order completes; ``spawn(key, order_id, awaitable,
    update)`` runs an async action and must end with ``complete_async``;
    ``call_soon`` is the loop's; ``on_subscribe``/``on_unsubscribe(symbol)``
    for the first/last order of a symbol; ``on_applied([(order_id, delegate,
    update, done), ...])`` after each batch of actions (persistence);
    ``feeds`` are subscribed per symbol while it has live orders;
    ``max_spin`` (seconds, 0 to 1) caps how long the loop keeps polling
    after a wake-up from another thread (the adaptive idle strategy of
    ``exo.Engine(spin=...)``; 0 never polls). Raises ValueError when out of range.
    """

    def __new__(
        cls,
        factory: Callable[[Any], Any],
        idle_interval: float,
        on_error: Callable[[str, str], None],
        on_done: Callable[[str], None],
        spawn: Callable[[int, str, Any, Update], None],
        call_soon: Callable[..., Any],
        on_subscribe: Callable[[str], None] | None = None,
        on_unsubscribe: Callable[[str], None] | None = None,
        on_applied: Callable[[list[tuple[str, Any, Update, bool]]], None] | None = None,
        feeds: list[Feed] = ...,
        max_spin: float = 0.0,
    ) -> LoopRunner: ...
    @property
    def max_spin(self) -> float:
        """Seconds the loop keeps polling at most after a wake-up from
        another thread (0: never)."""
    @property
    def polling(self) -> bool:
        """True while the loop polls (the idle strategy spins or yields)
        rather than sleeping until the wake-up descriptor is written."""
    def start(self) -> int:
        """Starts the idle timer and the feeds; returns the file descriptor
        the loop must watch (``loop.add_reader(fd, core.on_wakeup)``)."""
    def on_wakeup(self) -> None:
        """The wake-up descriptor is readable: reports feed errors and hands
        Updates to ready orders (``run_ready``); with ``max_spin`` > 0 the
        loop then polls (``poll``) instead of sleeping, as the idle strategy says."""
    def poll(self) -> None:
        """One poll while the idle strategy spins or yields (scheduled with
        ``call_soon``, it reschedules itself until the strategy parks): hands
        over what other threads signalled since the last poll."""
    def check(self, order: Any) -> str | None:
        """The dispatcher's rules, asked without delivering anything: None when
        ``submit(order)`` would accept it now, else the message ``submit`` would
        report to on_error (NEW for a live order_id; CANCEL/REPLACE for an
        unknown order or with another side or symbol). Nothing is reported or
        counted. Raises as ``submit`` does: TypeError (not an exo.Order),
        ValueError (empty symbol; CANCEL/REPLACE without order_id),
        RuntimeError (stopping)."""
    def submit(self, order: Any) -> str | None:
        """Submits an instruction (an ``exo.Order``). A NEW creates the order
        through the factory (assigning a UUIDv7 ``order_id`` if it has none)
        and returns its id; CANCEL/REPLACE go to the live order's delegate
        and return its id. A rule violation (NEW for a live id, CANCEL/REPLACE
        for an unknown order or with another side or symbol) goes to
        ``on_error`` and returns None. Raises ``TypeError`` for anything but
        an ``exo.Order``, ``ValueError`` for an empty symbol,
        ``RuntimeError`` once stopping; the factory's exception propagates."""
    def report(self, report: Any) -> bool:
        """Delivers an execution report (any object with a str ``order_id``,
        usually an ``exo.Report``) to its order's delegate: True. A report
        for an order that is not live goes to ``on_error`` and returns False.
        Raises ``RuntimeError`` once stopping."""
    def restore(self, order: Any, delegate: Any, instructions: list[Any], reports: list[Any]) -> str:
        """Re-creates a live order recovered from a store: ``delegate`` was
        made by the factory (with its saved state); ``instructions`` and
        ``reports`` were journaled after its checkpoint and make up its first
        Update (idle when both are empty). The NEW is not delivered again
        unless listed. Returns the order_id."""
    def quote(self, quote: Quote) -> int:
        """Fans a quote out to every live order of its symbol (in Rust, no
        Python object per order); returns how many it reached. Safe from any
        thread; 0 once stopping."""
    def trade(self, trade: Trade) -> int:
        """Fans a print out to every live order of its symbol; returns how
        many it reached."""
    def run_ready(self) -> None:
        """Hands Updates to the delegates of ready orders, in batches, on the
        loop's thread (the GIL is taken once per batch)."""
    def complete_async(self, key: int, order_id: str, result: Any, error: str | None = None) -> None:
        """Ends the async action ``spawn`` was given ``key`` for: ``result``
        is what the coroutine returned (True completes the order), or
        ``error`` (reported to ``on_error``) says how it failed."""
    def is_live(self, order_id: str) -> bool:
        """True while the order's delegate has not returned True."""
    def live(self) -> int:
        """Number of live orders."""
    def symbols(self) -> list[str]:
        """Symbols with at least one live order."""
    def stats(self) -> dict[str, int]:
        """Counters: ``live`` orders, ``handovers`` (Updates handed over),
        ``errors`` reported."""
    def begin_stop(self) -> None:
        """Stops hand-overs and intake: market data is ignored from now on,
        ``submit``/``report`` raise ``RuntimeError``. Running async actions
        may still complete."""
    def shutdown(self) -> None:
        """Stops the idle timer and the feeds and closes the wake-up
        descriptor; releases the GIL while it waits for them."""
    def close(self) -> list[tuple[str, Any]]:
        """Removes every order and returns ``[(order_id, delegate), ...]`` for
        clean-up; drops the Python callbacks so no reference cycle outlives
        the engine."""

@final
class Feed:
    """A market-data feed: pass it to ``exo.Engine(feed=...)``. Made by
    ``exo.feeds.Coinbase(...)``, ``Binance(...)``, ``BitMEX(...)`` or
    ``Replay(...)`` (or the two static methods below). It runs on the engine's
    Rust runtime; frames are parsed there and never reach Python."""

    @staticmethod
    def websocket(
        venue: str,
        url: str | None = None,
        *,
        symbols: list[str] | None = None,
        connects_per_second: float = 2.0,
        lifetime: float = 82800.0,
        silence: float = 30.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_frame_bytes: int = 1048576,
        connect_timeout: float = 10.0,
    ) -> Feed:
        """A websocket feed of ``venue`` (``"coinbase"``, ``"binance"`` or
        ``"bitmex"``) at ``url`` (None: the venue's public endpoint).
        ``symbols``: the symbols it carries (None: any). Connection options
        are those of ``exo.feeds.ConnectionOptions``; durations in seconds.
        Raises ``ValueError`` for an unknown venue, a non-positive rate,
        duration or frame size."""
    @staticmethod
    def replay(
        path: str | os.PathLike[str],
        venue: str = "coinbase",
        *,
        speed: float | None = None,
        repeat: bool = False,
        symbols: list[str] | None = None,
    ) -> Feed:
        """Recorded frames of ``venue`` played from an NDJSON file at
        ``path`` (one ``{"recv_ns": ..., "frame": ...}`` per line).
        ``speed``: 1.0 keeps the recorded spacing, 2.0 is twice as fast, None
        as fast as possible; ``repeat`` starts over at the end. Raises
        ``ValueError`` for a missing file, an unknown venue or a speed that
        is not positive."""
    @property
    def venue(self) -> str:
        """The venue's name, e.g. ``"coinbase"``."""
    @property
    def source(self) -> str:
        """The URL or file this feed reads."""
    def stats(self) -> dict[str, int]:
        """Counters since the feed started: frames, quotes, trades,
        duplicates, stale, errors, connects, reconnects, renewals."""
