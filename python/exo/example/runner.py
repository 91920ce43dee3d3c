"""Runs the example: engine + feed + store + HTTP server + signals, and the
once-a-second summary line per live order.

The invariant: SIGINT/SIGTERM stop it gracefully, in this order: the HTTP
server stops taking requests, then the engine stops (every live delegate's
``clean_up()``; nothing is canceled, and with a durable store the orders
resume on the next start). A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from exo import feeds
from exo.engine import Engine
from exo.example import SAMPLE
from exo.example.app import create_app
from exo.example.metrics import Metrics
from exo.example.paper import Book, Progress
from exo.feeds import Feed
from exo.redis_store import RedisStore
from exo.store import MemoryStore, Store, StoreUnavailable
from exo.venues import Paper, VenueBase
from exo.venues.config import KINDS, from_env

__all__ = ["Settings", "http_server", "listen", "make_feed", "make_venue", "run"]

log = logging.getLogger("exo.example")

VENUES = ("coinbase", "binance", "bitmex")


@dataclass
class Settings:
    """What ``exo example`` runs with (see ``exo.cli`` for flags and env vars)."""

    feed: str = "replay"
    """coinbase | binance | bitmex | replay (the bundled sample) | replay:PATH."""
    speed: float | None = 1.0
    """Replay pace: 1.0 as recorded, 2.0 twice as fast, None as fast as possible."""
    redis: str | None = None
    """A Redis URL for a durable store; None keeps orders in process."""
    host: str = "127.0.0.1"
    port: int = 8000
    idle: float = 1.0
    token: str | None = None
    summary: float = 1.0
    """Seconds between summary lines; 0 turns them off."""
    keep_done: int = 10_000
    """Finished orders kept for GET (the oldest are dropped first)."""
    venue: str = "paper"
    """Where child orders go: paper (in process, fills against the feed), or
    binance, bitmex, fix configured from environment variables."""
    testnet: bool = False
    """Real venues: their test endpoints (Binance spot testnet, BitMEX testnet)."""
    role: str = "all"
    """all (one process), api (HTTP to the intake streams) or engine (takes
    orders from them); api and engine need ``redis``."""
    name: str | None = None
    """The engine's name in the scale-out (default ``<host>-<port>``, the
    port of ``--http``: the same at each restart, see ``roles.engine_name``)."""
    lease: float = 2.0
    """Seconds an engine's order lease lasts without renewal."""
    partitions: int = 4
    """Intake streams; the same for every process of a deployment."""


def make_feed(spec: str, speed: float | None = 1.0) -> Feed:
    """The feed named by ``--feed``; replays loop (``repeat=True``)."""
    name = spec.strip()
    if name.lower() == "coinbase":
        return feeds.Coinbase()
    if name.lower() == "binance":
        return feeds.Binance()
    if name.lower() == "bitmex":
        return feeds.BitMEX()
    if name.lower() == "replay":
        return feeds.Replay(SAMPLE, speed=speed, repeat=True)
    if name.lower().startswith("replay:"):
        path = Path(name[len("replay:") :]).expanduser()
        if not path.is_file():
            raise ValueError(f"replay file not found: {path}")
        return feeds.Replay(path, speed=speed, repeat=True)
    raise ValueError(f"unknown feed {spec!r}: expected coinbase, binance, bitmex, replay or replay:PATH")


def make_venue(spec: str, testnet: bool = False) -> VenueBase:
    """The venue named by ``--venue``: paper, or binance, bitmex, fix
    configured from environment variables (``exo.venues.config``)."""
    kind = spec.strip().lower()
    if kind == "paper":
        return Paper()
    if kind in KINDS:
        return from_env(kind, testnet=testnet)
    raise ValueError(f"unknown venue {spec!r}: expected paper, {', '.join(KINDS)}")


def _describe_feed(feed: Feed, speed: float | None) -> str:
    if "://" not in feed.source:
        pace = "as fast as possible" if speed is None else f"{speed:g}x the recorded pace"
        return f"replay of {feed.source} ({feed.venue} frames, {pace}, looping)"
    return f"{feed.venue} live ({feed.source})"


def listen(host: str, port: int) -> socket.socket:
    """Binds before anything starts, so a busy port is a clear error at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: accepted sockets inherit it, and asyncio sets
    # TCP_NODELAY on a transport only when its socket says IPPROTO_TCP. Without
    # it every response on a kept-alive connection (headers and body in two
    # writes) waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or exc
        raise OSError(f"cannot listen on {host}:{port}: {reason}; choose another with --http") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the runner owns SIGINT/SIGTERM
    (uvicorn's would re-raise the signal after shutdown, before clean-up)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


KEEP_ALIVE_S = 30
"""Seconds an idle HTTP connection is kept open by the example's server."""


def http_server(app: FastAPI) -> uvicorn.Server:
    """The example's uvicorn server for ``app``, to be served on a socket from
    ``listen`` (``server.serve(sockets=[sock])``); signals are left to the caller."""
    return _Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            # An idle kept-alive connection stays open longer than clients keep
            # theirs (httpx and aiohttp: 5 s, uvicorn's own default): with equal
            # timeouts the server may close a connection just as a client sends
            # on it, and the client sees a reset instead of an answer.
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    )


def _staleness(ns: int | None) -> str:
    if ns is None:
        return "-"
    if ns < 1_000_000:
        return f"{ns / 1_000:.0f} us"
    return f"{ns / 1_000_000:.1f} ms"


def summary_line(p: Progress) -> str:
    """One line per live order, e.g. ``<order_id> BUY 0.5 BTC-USD: 412 quotes merged,
    staleness 85 us, filled 0.2 of 0.5 (PARTIALLY_FILLED)``."""
    o = p.order
    return (
        f"{p.order_id} {o.side.name} {o.order_qty} {o.symbol}: {p.quotes_since_summary} quotes merged, "
        f"staleness {_staleness(p.last_staleness_ns)}, filled {p.filled} of {o.order_qty} ({p.status.name})"
    )


async def _summaries(book: Book, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for p in book.live():
            log.info("%s", summary_line(p))
            p.quotes_since_summary = 0


async def run(settings: Settings) -> int:
    """Runs until SIGINT/SIGTERM; returns the process exit code."""
    if settings.role != "all":
        if settings.redis is None:
            log.error("--role %s needs --redis URL (the roles share the orders through Redis)", settings.role)
            return 2
        from exo.example.roles import run_api, run_engine

        return await (run_api(settings) if settings.role == "api" else run_engine(settings))
    try:
        feed = make_feed(settings.feed, settings.speed)
        venue = make_venue(settings.venue, settings.testnet)
        sock = listen(settings.host, settings.port)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    host, port = sock.getsockname()[:2]
    store: Store = MemoryStore() if settings.redis is None else RedisStore(settings.redis)
    metrics = Metrics()
    book = Book(observer=metrics, keep_done=settings.keep_done, venue=venue)
    engine = Engine(
        venue.delegates(book.factory),
        idle_interval=settings.idle,
        on_error=lambda order_id, message: log.warning("order %s: %s", order_id, message),
        on_subscribe=lambda symbol: log.info("subscribed %s", symbol),
        on_unsubscribe=lambda symbol: log.info("unsubscribed %s (no live order left)", symbol),
        feed=feed,
        store=store,
    )
    metrics.watch(engine)
    venue.attach(engine)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s again: exiting now, without clean-up", sig.name)
            os._exit(128 + sig.value)
        log.info(
            "%s: stopping (live orders are cleaned up, not canceled%s)",
            sig.name,
            "; they resume on the next start" if store.durable and engine.live else "",
        )
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        try:
            await engine.start()
        except StoreUnavailable as exc:
            log.error("%s", exc)
            sock.close()
            return 1
        try:
            await venue.start()  # reconciles the children of the orders recovered
        except (RuntimeError, OSError, TimeoutError) as exc:  # refused key, unreachable venue
            log.error("venue %s: %s", venue.name, exc)
            sock.close()
            return 1
        log.info("feed: %s", _describe_feed(feed, settings.speed))
        log.info("venue: %s (instruments %s)", venue.name, ", ".join(sorted(venue.instruments)))
        if not store.durable:
            log.info("orders end with the process; --redis URL keeps them across restarts")
        server = http_server(create_app(engine, book, metrics, settings.token))
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="exo-http")
        summaries = (
            asyncio.create_task(_summaries(book, settings.summary), name="exo-summary")
            if settings.summary > 0
            else None
        )
        url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
        log.info(
            "listening on %s (API docs %s/docs, metrics %s/metrics%s); Ctrl-C stops",
            url,
            url,
            url,
            ", bearer token required" if settings.token else "",
        )
        if settings.token is None and host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("listening on %s without a token: anyone who can reach it can submit orders", host)
        log.info(
            "try: curl -X POST %s/v1/orders -H 'Content-Type: application/json' "
            '-d \'{"side":"BUY","symbol":"BTC-USD","orderQty":"0.5"}\'',
            url,
        )
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        if summaries is not None:
            summaries.cancel()
        stopped.cancel()
        try:
            await serving
        except Exception:  # whatever stopped the server, the engine still stops cleanly
            log.exception("HTTP server failed")
        live = engine.live
        # The venue first: its last reports are dropped rather than refused by a
        # stopping engine; requests still on its wire end as "status unknown",
        # so actions in flight finish, and a restart reconciles those children.
        await venue.stop()
        await engine.stop()
        log.info(
            "stopped: %d live order(s) cleaned up, not canceled%s",
            live,
            "; they resume on the next start" if store.durable and live else "",
        )
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if engine.running:
            await engine.stop()
        await venue.stop()
