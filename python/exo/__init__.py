"""exo: an exoskeleton for automated order execution.

Market data is conflated and fanned out in Rust; each order's Python delegate
gets one merged Update at a time. See README.md for a quickstart.
"""

from exo import feeds
from exo._core import __version__
from exo.engine import Delegate, DelegateFactory, Engine, EngineStopped
from exo.market import MsgType, Order, OrdStatus, Quote, Report, Side, Trade, Update, parse_decimal
from exo.queue import ConflatingQueue
from exo.redis_store import RedisStore
from exo.store import MemoryStore, Store, StoreError, StoreUnavailable

__all__ = [
    "ConflatingQueue",
    "Delegate",
    "DelegateFactory",
    "Engine",
    "EngineStopped",
    "MemoryStore",
    "MsgType",
    "OrdStatus",
    "Order",
    "Quote",
    "RedisStore",
    "Report",
    "Side",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Trade",
    "Update",
    "__version__",
    "feeds",
    "parse_decimal",
]
