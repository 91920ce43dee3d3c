"""exo: an exoskeleton for automated order execution.

Market data is conflated and fanned out in Rust; each order's Python delegate
gets one merged Update at a time. See README.md for a quickstart.
"""

from exo import feeds
from exo._core import __version__
from exo.engine import Delegate, DelegateFactory, Engine, EngineStopped
from exo.market import MsgType, Order, OrdStatus, Quote, Report, Side, Trade, Update
from exo.queue import ConflatingQueue

__all__ = [
    "ConflatingQueue",
    "Delegate",
    "DelegateFactory",
    "Engine",
    "EngineStopped",
    "MsgType",
    "OrdStatus",
    "Order",
    "Quote",
    "Report",
    "Side",
    "Trade",
    "Update",
    "__version__",
    "feeds",
]
