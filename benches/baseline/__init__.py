"""A pure-asyncio engine with exo's public API: the baseline exo's benchmarks
compare against (DESIGN.md, "Performance targets"). Not part of the exo
package; nothing in exo imports it.

    from baseline import Engine, Order, Quote
"""

from .engine import Engine, EngineStopped
from .market import MsgType, Order, OrdStatus, Quote, Report, Side, Trade, Update

__all__ = [
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
]
