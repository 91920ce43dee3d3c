"""Type stubs for the Rust extension (rust/python). Keep in step with it:
`make lint` runs mypy's stubtest against the built module."""

import asyncio
import os
from decimal import Decimal
from typing import Any, Callable

from typing_extensions import Self, TypeAlias, disjoint_base, final

__all__ = [
    "ConflatingQueue",
    "EngineCore",
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
]

__version__: str

def new_order_id() -> str:
    """A new order_id as the engine assigns to a NEW without one: a UUIDv7 in
    simple form (32 lowercase hex digits, time-ordered, unique)."""

_DecimalLike: TypeAlias = Decimal | str | int

@final
class Side:
    BUY: Side
    SELL: Side
    @property
    def name(self) -> str: ...
    @staticmethod
    def parse(text: str) -> Side: ...
    def __int__(self) -> int: ...

@final
class MsgType:
    NEW: MsgType
    CANCEL: MsgType
    REPLACE: MsgType
    @property
    def name(self) -> str: ...
    @staticmethod
    def parse(text: str) -> MsgType: ...
    def __int__(self) -> int: ...

@final
class OrdStatus:
    NEW: OrdStatus
    PARTIALLY_FILLED: OrdStatus
    FILLED: OrdStatus
    CANCELED: OrdStatus
    PENDING_CANCEL: OrdStatus
    REJECTED: OrdStatus
    PENDING_NEW: OrdStatus
    EXPIRED: OrdStatus
    PENDING_REPLACE: OrdStatus
    @property
    def name(self) -> str: ...
    @staticmethod
    def parse(text: str) -> OrdStatus: ...
    def __int__(self) -> int: ...

@final
class Quote:
    def __new__(
        cls,
        symbol: str,
        bid_px: _DecimalLike,
        bid_size: _DecimalLike,
        ask_px: _DecimalLike,
        ask_size: _DecimalLike,
    ) -> Quote: ...
    @property
    def symbol(self) -> str: ...
    @property
    def bid_px(self) -> Decimal: ...
    @property
    def bid_size(self) -> Decimal: ...
    @property
    def ask_px(self) -> Decimal: ...
    @property
    def ask_size(self) -> Decimal: ...
    def near(self, side: Side | str) -> Decimal: ...
    def near_size(self, side: Side | str) -> Decimal: ...
    def far(self, side: Side | str) -> Decimal: ...
    def far_size(self, side: Side | str) -> Decimal: ...
    @property
    def spread(self) -> Decimal: ...
    @property
    def mid_price(self) -> Decimal: ...

@final
class Trade:
    def __new__(
        cls,
        symbol: str,
        last_qty: _DecimalLike,
        last_px: _DecimalLike,
        trade_volume: _DecimalLike | None = None,
        avg_px: _DecimalLike | None = None,
    ) -> Trade: ...
    @property
    def symbol(self) -> str: ...
    @property
    def last_qty(self) -> Decimal: ...
    @property
    def last_px(self) -> Decimal: ...
    @property
    def trade_volume(self) -> Decimal | None: ...
    @property
    def avg_px(self) -> Decimal | None: ...
    def merge(self, newer: Trade) -> Trade: ...

@disjoint_base
class Order:
    def __new__(cls, *_args: Any, **_kwargs: Any) -> Self: ...
    @property
    def order_id(self) -> str | None: ...
    @order_id.setter
    def order_id(self, value: str | None) -> None: ...
    @property
    def msg_type(self) -> MsgType: ...
    @msg_type.setter
    def msg_type(self, value: MsgType | str) -> None: ...
    @property
    def side(self) -> Side: ...
    @side.setter
    def side(self, value: Side | str) -> None: ...
    @property
    def symbol(self) -> str: ...
    @symbol.setter
    def symbol(self, value: str) -> None: ...

@disjoint_base
class Report:
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
        **extra: Any,
    ) -> Self: ...
    @property
    def order_id(self) -> str: ...
    @property
    def ord_status(self) -> OrdStatus: ...
    @property
    def last_qty(self) -> Decimal | None: ...
    @property
    def last_px(self) -> Decimal | None: ...
    @property
    def symbol(self) -> str | None: ...
    @property
    def side(self) -> Side | None: ...
    @property
    def secondary_order_id(self) -> str | None: ...
    @property
    def cl_ord_id(self) -> str | None: ...
    @property
    def exec_id(self) -> str | None: ...
    @property
    def transact_time(self) -> str | None: ...
    @property
    def exec_inst(self) -> str | None: ...
    @property
    def leaves_qty(self) -> Decimal | None: ...
    @property
    def cum_qty(self) -> Decimal | None: ...
    @property
    def avg_px(self) -> Decimal | None: ...
    @property
    def text(self) -> str | None: ...
    @property
    def extra(self) -> dict[str, Any]: ...
    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]: ...
    def __getattr__(self, name: str) -> Any: ...

@final
class Update:
    @property
    def order_id(self) -> str: ...
    @property
    def quote(self) -> Quote | None: ...
    @property
    def trade(self) -> Trade | None: ...
    @property
    def instructions(self) -> list[Any]: ...
    @property
    def reports(self) -> list[Any]: ...
    @property
    def quotes_merged(self) -> int: ...
    @property
    def trades_merged(self) -> int: ...
    @property
    def idle(self) -> bool: ...
    @property
    def arrived_ns(self) -> int | None: ...
    @property
    def staleness_ns(self) -> int | None: ...
    @property
    def staleness(self) -> float | None: ...

@disjoint_base
class ConflatingQueue:
    def __new__(cls, merge: Callable[[Any, Any], Any] | None = None) -> Self: ...
    def push(self, key: Any, value: Any) -> None: ...
    def pop(self) -> tuple[Any, Any] | None: ...
    def __len__(self) -> int: ...
    def len(self) -> int: ...
    def _wait(self, event_loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None]) -> None: ...

@final
class LoopRunner:
    """exo.Engine's Rust half: the core's Runner (dispatcher, hand-over loop,
    idle timer, feeds, every rule) driven from the asyncio loop, which calls
    the delegates in batches under the GIL."""

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
    ) -> LoopRunner: ...
    def start(self) -> int:
        """Starts the idle timer and the feeds; returns the fd to watch with
        ``loop.add_reader(fd, on_wakeup)``."""
    def on_wakeup(self) -> None: ...
    def check(self, order: Any) -> str | None:
        """The dispatcher's rules, asked without delivering anything: None when
        ``submit(order)`` would accept it now, else the message ``submit`` would
        report to on_error (NEW for a live order_id; CANCEL/REPLACE for an
        unknown order or with another side or symbol). Raises as ``submit``
        does: TypeError (not an exo.Order), ValueError (empty symbol;
        CANCEL/REPLACE without order_id), RuntimeError (stopping)."""
    def submit(self, order: Any) -> str | None:
        """A NEW (order_id None: one is assigned and set on the order) creates
        the order through the factory and returns its order_id; CANCEL/REPLACE
        go to the live order's delegate. A rule violation goes to on_error and
        returns None."""
    def report(self, report: Any) -> bool: ...
    def restore(self, order: Any, delegate: Any, instructions: list[Any], reports: list[Any]) -> str: ...
    def quote(self, quote: Quote) -> int: ...
    def trade(self, trade: Trade) -> int: ...
    def run_ready(self) -> None: ...
    def complete_async(self, key: int, order_id: str, result: Any, error: str | None = None) -> None: ...
    def is_live(self, order_id: str) -> bool: ...
    def live(self) -> int: ...
    def symbols(self) -> list[str]: ...
    def stats(self) -> dict[str, int]: ...
    def begin_stop(self) -> None: ...
    def shutdown(self) -> None: ...
    def close(self) -> list[tuple[str, Any]]: ...

EngineCore = LoopRunner
"""The former name of LoopRunner, kept until exo.engine and exo.journal use the new one."""

@final
class Feed:
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
    ) -> Feed: ...
    @staticmethod
    def replay(
        path: str | os.PathLike[str],
        venue: str = "coinbase",
        *,
        speed: float | None = None,
        repeat: bool = False,
        symbols: list[str] | None = None,
    ) -> Feed: ...
    @property
    def venue(self) -> str: ...
    @property
    def source(self) -> str: ...
    def stats(self) -> dict[str, int]: ...
