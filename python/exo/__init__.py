"""exo: an exoskeleton for automated order execution.

Market data is conflated and fanned out in Rust; each order's Python delegate
gets one merged Update at a time. See README.md for a quickstart.
"""

from exo import feeds, venues
from exo._core import __version__
from exo.child import ChildOrder, ChildOrderError, OrdType, TimeInForce
from exo.engine import Delegate, DelegateFactory, Engine, EngineStopped
from exo.instrument import Instrument, InstrumentError, InstrumentStatus
from exo.market import (
    ExecType,
    MsgType,
    Order,
    OrdStatus,
    Quote,
    Report,
    Side,
    Trade,
    Update,
    parse_decimal,
)
from exo.queue import ConflatingQueue
from exo.redis_store import RedisStore
from exo.store import MemoryStore, Store, StoreError, StoreUnavailable

__all__ = [
    "ChildOrder",
    "ChildOrderError",
    "ConflatingQueue",
    "Delegate",
    "DelegateFactory",
    "Engine",
    "EngineStopped",
    "ExecType",
    "Instrument",
    "InstrumentError",
    "InstrumentStatus",
    "MemoryStore",
    "MsgType",
    "OrdStatus",
    "OrdType",
    "Order",
    "Quote",
    "RedisStore",
    "Report",
    "Side",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TimeInForce",
    "Trade",
    "Update",
    "__version__",
    "feeds",
    "parse_decimal",
    "venues",
]
