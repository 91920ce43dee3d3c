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
from typing import TYPE_CHECKING, TypedDict

from exo._core import Feed

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Binance", "BitMEX", "Coinbase", "ConnectionOptions", "Feed", "Replay"]


class ConnectionOptions(TypedDict, total=False):
    """How a websocket feed manages its connections (every key optional; the
    defaults are those of ``Feed.websocket``).

    - ``connects_per_second`` (2.0): connection attempts are spaced to this rate.
    - ``lifetime`` (23 h, in seconds): a connection is renewed after this long;
      the new one is live before the old one closes.
    - ``silence`` (30 s): the watchdog reconnects a connection silent this long.
    - ``backoff_initial`` (0.5 s) / ``backoff_max`` (30 s): reconnect delays,
      doubling per failure.
    - ``max_frame_bytes`` (1 MiB): larger frames are reported and skipped.
    - ``connect_timeout`` (10 s): a connection attempt gives up after this long.
    """

    connects_per_second: float
    lifetime: float
    silence: float
    backoff_initial: float
    backoff_max: float
    max_frame_bytes: int
    connect_timeout: float


def _websocket(
    venue: str, url: str | None, symbols: Iterable[str] | None, options: ConnectionOptions
) -> Feed:
    return Feed.websocket(venue, url, symbols=None if symbols is None else list(symbols), **options)


def Coinbase(
    url: str | None = None, *, symbols: Iterable[str] | None = None, **options: Unpack[ConnectionOptions]
) -> Feed:
    """Coinbase Exchange ``ticker`` channel (default ``wss://ws-feed.exchange.coinbase.com``).

    Each ticker gives a Quote (ordered by the product's ``sequence``; an older
    one is dropped and counted as ``stale``) and, once per ``trade_id``, a
    Trade. A side sent as ``null``/``""``/missing, or price 0 without size,
    is an empty side (``None``); an idle product's first ticker is a quote
    with both sides empty and no trade. ``options``: see ``ConnectionOptions``.
    """
    return _websocket("coinbase", url, symbols, options)


def Binance(
    url: str | None = None, *, symbols: Iterable[str] | None = None, **options: Unpack[ConnectionOptions]
) -> Feed:
    """Binance spot ``bookTicker`` and ``trade`` streams on the combined endpoint
    (default ``wss://stream.binance.com:9443/stream``). Symbols are Binance's
    uppercase names (``BTCUSDT``). At most 5 client messages per second per
    connection (subscriptions are batched); ``serverShutdown`` renews the
    connection; the default lifetime stays under Binance's 24 h limit.
    bookTicker quotes are ordered by their update id ``u`` (an older one, e.g.
    from the old connection during a renewal, is dropped and counted as
    ``stale``); a side with price and size 0 is empty (``None``).
    ``options``: see ``ConnectionOptions``."""
    return _websocket("binance", url, symbols, options)


def BitMEX(
    url: str | None = None, *, symbols: Iterable[str] | None = None, **options: Unpack[ConnectionOptions]
) -> Feed:
    """BitMEX ``quote`` and ``trade`` tables (default ``wss://ws.bitmex.com/realtime``);
    numbers are read exactly from the JSON text; a trade ``partial`` is history
    and is not delivered as new prints. Quotes are ordered by their
    ``timestamp`` (ms; earlier than the newest is dropped as ``stale``, equal
    is kept); a ``null`` price is an empty side (``None``).
    ``options``: see ``ConnectionOptions``."""
    return _websocket("bitmex", url, symbols, options)


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
