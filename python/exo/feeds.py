"""Market-data feeds, parsed and conflated in Rust.

Pass one feed, or a list, to ``exo.Engine(factory, feed=...)``. The engine
subscribes a symbol on a feed when its first order arrives and unsubscribes it
after its last order ends. A symbol names the venue's instrument: ``BTC-USD``
on Coinbase, ``BTCUSDT`` on Binance, ``XBTUSD`` on BitMEX. With several feeds,
give each its ``symbols`` so every symbol goes to the right venue (a feed
without ``symbols`` takes them all).

Problems (malformed frames, venue errors, reconnects) reach the engine's
``on_error`` with order_id ``feed:<venue>`` and are counted in
``feed.stats()``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from exo._core import Feed

__all__ = ["Binance", "BitMEX", "Coinbase", "Feed", "Replay"]


def _websocket(
    venue: str,
    url: str | None,
    symbols: Iterable[str] | None,
    connects_per_second: float,
    lifetime: float,
    silence: float,
    backoff_initial: float,
    backoff_max: float,
    max_frame_bytes: int,
    connect_timeout: float,
) -> Feed:
    return Feed.websocket(
        venue,
        url,
        symbols=None if symbols is None else list(symbols),
        connects_per_second=connects_per_second,
        lifetime=lifetime,
        silence=silence,
        backoff_initial=backoff_initial,
        backoff_max=backoff_max,
        max_frame_bytes=max_frame_bytes,
        connect_timeout=connect_timeout,
    )


def Coinbase(
    url: str | None = None,
    *,
    symbols: Iterable[str] | None = None,
    connects_per_second: float = 2.0,
    lifetime: float = 23 * 3600,
    silence: float = 30.0,
    backoff_initial: float = 0.5,
    backoff_max: float = 30.0,
    max_frame_bytes: int = 1 << 20,
    connect_timeout: float = 10.0,
) -> Feed:
    """Coinbase Exchange ``ticker`` channel (default ``wss://ws-feed.exchange.coinbase.com``).

    Each ticker gives a Quote and, once per ``trade_id``, a Trade.
    ``connects_per_second`` spaces connection attempts; ``lifetime`` renews a
    connection (the new one is live before the old one closes); ``silence``
    is the watchdog; reconnects back off from ``backoff_initial`` to
    ``backoff_max`` seconds; larger frames than ``max_frame_bytes`` are
    reported and skipped.
    """
    return _websocket(
        "coinbase",
        url,
        symbols,
        connects_per_second,
        lifetime,
        silence,
        backoff_initial,
        backoff_max,
        max_frame_bytes,
        connect_timeout,
    )


def Binance(
    url: str | None = None,
    *,
    symbols: Iterable[str] | None = None,
    connects_per_second: float = 2.0,
    lifetime: float = 23 * 3600,
    silence: float = 30.0,
    backoff_initial: float = 0.5,
    backoff_max: float = 30.0,
    max_frame_bytes: int = 1 << 20,
    connect_timeout: float = 10.0,
) -> Feed:
    """Binance spot ``bookTicker`` and ``trade`` streams on the combined endpoint
    (default ``wss://stream.binance.com:9443/stream``). Symbols are Binance's
    uppercase names (``BTCUSDT``). At most 5 client messages per second per
    connection (subscriptions are batched); ``serverShutdown`` renews the
    connection; the default lifetime stays under Binance's 24 h limit."""
    return _websocket(
        "binance",
        url,
        symbols,
        connects_per_second,
        lifetime,
        silence,
        backoff_initial,
        backoff_max,
        max_frame_bytes,
        connect_timeout,
    )


def BitMEX(
    url: str | None = None,
    *,
    symbols: Iterable[str] | None = None,
    connects_per_second: float = 2.0,
    lifetime: float = 23 * 3600,
    silence: float = 30.0,
    backoff_initial: float = 0.5,
    backoff_max: float = 30.0,
    max_frame_bytes: int = 1 << 20,
    connect_timeout: float = 10.0,
) -> Feed:
    """BitMEX ``quote`` and ``trade`` tables (default ``wss://ws.bitmex.com/realtime``);
    numbers are read exactly from the JSON text; a trade ``partial`` is history
    and is not delivered as new prints."""
    return _websocket(
        "bitmex",
        url,
        symbols,
        connects_per_second,
        lifetime,
        silence,
        backoff_initial,
        backoff_max,
        max_frame_bytes,
        connect_timeout,
    )


def Replay(
    path: str | os.PathLike[str],
    venue: str = "coinbase",
    *,
    speed: float | None = None,
    repeat: bool = False,
    symbols: Iterable[str] | None = None,
) -> Feed:
    """Recorded frames of ``venue`` from an NDJSON file: one raw frame per line,
    or ``{"recv_ns": <ns>, "frame": <raw frame>}``. ``speed=None`` plays as fast
    as possible; ``speed=1.0`` at the recorded pace (2.0 twice as fast, ...).
    ``repeat`` starts again at the end. Plays once the first symbol is
    subscribed, and only subscribed symbols, as a venue would."""
    return Feed.replay(
        os.fspath(path), venue, speed=speed, repeat=repeat, symbols=None if symbols is None else list(symbols)
    )
