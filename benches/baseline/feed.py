"""A Python market-data feed: venue frames parsed with ``json.loads`` and
``Decimal`` into Quote/Trade, on a thread of its own, pushed to the engine with
``loop.call_soon_threadsafe``.

This is what a pure-Python system does for the "feed saturated" row of
DESIGN.md: the feed thread and the event loop share the GIL, so a delegate's
hand-over can wait for the interpreter's switch interval (5 ms by default).
The frames are Coinbase Exchange ``ticker`` messages (the example's venue).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from .market import Quote, Trade

__all__ = ["PythonFeedThread", "parse_ticker_frame", "ticker_frames"]


def ticker_frames(symbol: str, n: int, start_px: int = 60_000) -> Iterator[bytes]:
    """``n`` Coinbase-style ``ticker`` frames for ``symbol``, every one different."""
    for i in range(n):
        px = start_px + (i % 1000) * 0.01
        yield json.dumps(
            {
                "type": "ticker",
                "sequence": 1_000_000 + i,
                "product_id": symbol,
                "price": f"{px + 0.005:.3f}",
                "open_24h": "59000.00",
                "volume_24h": "12345.67890123",
                "low_24h": "58000.00",
                "high_24h": "61000.00",
                "best_bid": f"{px:.2f}",
                "best_bid_size": f"0.{i % 997 + 1:08d}",
                "best_ask": f"{px + 0.01:.2f}",
                "best_ask_size": f"1.{i % 991:08d}",
                "side": "buy" if i % 2 else "sell",
                "time": "2026-01-02T03:04:05.123456Z",
                "trade_id": 5_000_000 + i,
                "last_size": f"0.{i % 983 + 1:08d}",
            },
            separators=(",", ":"),
        ).encode()


def parse_ticker_frame(frame: bytes | str, _loads: Callable[[Any], Any] = json.loads) -> tuple[Quote, Trade]:
    """One ``ticker`` frame into its Quote and its Trade (exact decimals)."""
    m = _loads(frame)
    symbol = m["product_id"]
    q = Quote.__new__(Quote)
    q.symbol = symbol
    q.bid_px = Decimal(m["best_bid"])
    q.bid_size = Decimal(m["best_bid_size"])
    q.ask_px = Decimal(m["best_ask"])
    q.ask_size = Decimal(m["best_ask_size"])
    t = Trade.__new__(Trade)
    t.symbol = symbol
    t.last_qty = Decimal(m["last_size"])
    t.last_px = Decimal(m["price"])
    t.trade_volume = t.avg_px = None
    return q, t


class PythonFeedThread(threading.Thread):
    """Parses frames as fast as it can and pushes each Quote (and Trade) to
    ``push_quote``/``push_trade`` through ``call_soon_threadsafe``.

    ``frames`` is consumed in order, cycling until ``stop()``; ``pushed``
    counts frames delivered.
    """

    def __init__(
        self,
        loop: Any,
        frames: Iterable[bytes],
        push_quote: Callable[[Any], Any],
        push_trade: Callable[[Any], Any] | None = None,
        parse: Callable[[bytes], tuple[Any, Any]] = parse_ticker_frame,
        hop: bool = True,
    ) -> None:
        """``hop``: deliver through ``loop.call_soon_threadsafe`` (the pure-Python
        way); False calls the push functions on this thread (exo's quote()
        and trade() are thread-safe)."""
        super().__init__(name="python-feed", daemon=True)
        self._loop = loop
        self._parse = parse
        self._hop = hop
        self._frames = list(frames)
        self._push_quote = push_quote
        self._push_trade = push_trade
        self._stop_event = threading.Event()
        self.pushed = 0

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        call: Callable[..., Any] = self._loop.call_soon_threadsafe if self._hop else _direct
        push_quote, push_trade = self._push_quote, self._push_trade
        stopped = self._stop_event.is_set
        frames, parse = self._frames, self._parse
        while not stopped():
            for frame in frames:
                q, t = parse(frame)
                call(push_quote, q)
                if push_trade is not None:
                    call(push_trade, t)
                self.pushed += 1
                if self.pushed & 63 == 0 and stopped():
                    return


def _direct(push: Callable[[Any], Any], item: Any) -> None:
    push(item)
