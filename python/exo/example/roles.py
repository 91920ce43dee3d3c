"""The example split in roles for scale-out (``exo example --role api|engine``).

- ``api``: the HTTP API only. POST writes the NEW to the intake streams
  (``exo.scaleout.Intake``) and answers 202 once Redis has it; GET answers
  from Redis (the progress the order's owner wrote), so any api process
  answers for any order; DELETE writes a CANCEL that reaches the owner.
- ``engine``: an ``exo.scaleout.EngineNode`` running the example's delegates
  on the feed, their child orders going to its own ``--venue`` (the paper
  venue lives in the engine process: after a failover the new owner's venue
  does not know the children the dead engine sent, so they come back CANCELED
  "UNKNOWN_ORDER", as after a restart, and the delegate sends a new child for
  the rest); it serves ``/metrics`` (per engine: owned orders, claims, lease
  renewals, leases lost, fencing refusals, forwarded entries ...) and
  ``/healthz`` on its own ``--http`` address.

``all`` (the default) is the single process of ``exo.example.runner``.
Every process of one deployment must use the same Redis, prefix and
``--partitions``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi_offline import FastAPIOffline

import exo
from exo.example.app import NewOrder, _drop_impossible_422s, _show, read_new_order
from exo.example.metrics import CONTENT_TYPE, Metrics
from exo.example.paper import Book, PaperOrder
from exo.example.runner import (
    Settings,
    _describe_feed,
    _summaries,
    http_server,
    listen,
    make_feed,
    make_venue,
)
from exo.scaleout import EngineNode, Intake
from exo.store import StoreUnavailable
from exo.venues import Venue, VenueBase

__all__ = ["create_api_app", "run_api", "run_engine"]

log = logging.getLogger("exo.example")

_DONE = ("FILLED", "CANCELED")

_API_HELP = {
    "accepted": "NEW orders written to the intake streams (202)",
    "unavailable": "POSTs and DELETEs refused because Redis was unavailable (503)",
    "cancels": "CANCELs written to the intake streams (202)",
}


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status)


def _bearer(token: str | None) -> Callable[[Request], str | None]:
    def check(request: Request) -> str | None:
        if token is None:
            return None
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return "missing bearer token: send 'Authorization: Bearer <token>'"
        if not secrets.compare_digest(given.strip().encode(), token.encode()):
            return "wrong bearer token"
        return None

    return check


def _unauthorized(reason: str) -> JSONResponse:
    return JSONResponse({"detail": reason}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def create_api_app(intake: Intake, token: str | None = None, venue: Venue | None = None) -> FastAPI:
    """The api role's HTTP API over an open ``intake``; with a ``venue``, a NEW
    for a symbol it does not list (or a quantity/price its instrument refuses)
    is a 400, as in the single process."""
    # FastAPIOffline: /docs works without internet, as in the single process.
    app = FastAPIOffline(
        title="exo example (api role)",
        version=exo.__version__,
        summary="Orders over HTTP to a scale-out of exo engines.",
        redoc_url=None,
    )
    check = _bearer(token)
    counts = {"accepted": 0, "unavailable": 0, "cancels": 0}

    @app.post(
        "/v1/orders",
        status_code=202,
        summary="Submit a NEW order (to the engines, through the intake streams)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": NewOrder.model_json_schema()}},
            }
        },
    )
    async def submit(request: Request) -> JSONResponse:
        if (reason := check(request)) is not None:
            return _unauthorized(reason)
        order = await read_new_order(request, venue)
        if isinstance(order, JSONResponse):
            return order
        try:
            order_id = await intake.submit_new(order, _pending(order))
        except StoreUnavailable as exc:
            counts["unavailable"] += 1
            return _error(503, f"store unavailable, the order was not accepted: {exc}")
        counts["accepted"] += 1
        return JSONResponse(
            {"orderID": order_id}, status_code=202, headers={"Location": f"/v1/orders/{order_id}"}
        )

    @app.get("/v1/orders/{order_id}")
    async def get(order_id: str, request: Request) -> JSONResponse:
        if (reason := check(request)) is not None:
            return _unauthorized(reason)
        try:
            progress = await intake.progress(order_id)
        except StoreUnavailable as exc:
            return _error(503, f"store unavailable: {exc}")
        if progress is None:
            return _error(404, f"no order {_show(order_id)}")
        return JSONResponse(progress)

    @app.get("/v1/orders", status_code=501)
    async def live(request: Request) -> JSONResponse:
        if (reason := check(request)) is not None:
            return _unauthorized(reason)
        return _error(
            501,
            "the api role does not list the live orders (each engine holds its own: "
            "exo_scaleout_owned on its /metrics); GET /v1/orders/{id} answers for any order",
        )

    @app.delete("/v1/orders/{order_id}", status_code=202)
    async def cancel(order_id: str, request: Request) -> JSONResponse:
        if (reason := check(request)) is not None:
            return _unauthorized(reason)
        try:
            progress = await intake.progress(order_id)
            if progress is None:
                return _error(404, f"no order {_show(order_id)}")
            if progress.get("ordStatus") in _DONE:
                return _error(409, f"order {order_id} is already {progress['ordStatus']}: nothing to cancel")
            order = PaperOrder(
                progress["side"],
                progress["symbol"],
                order_qty=Decimal(progress["orderQty"]),
                order_id=order_id,
            )
            await intake.submit(order.cancel())
        except StoreUnavailable as exc:
            counts["unavailable"] += 1
            return _error(503, f"store unavailable, the cancel was not accepted: {exc}")
        counts["cancels"] += 1
        return JSONResponse({"orderID": order_id, "ordStatus": "PENDING_CANCEL"}, status_code=202)

    @app.get("/metrics")
    async def metrics() -> Response:
        # Prometheus text format 0.0.4: HELP and TYPE name the sample itself (`_total` included).
        lines = []
        for key, value in counts.items():
            name = f"exo_api_{key}_total"
            lines.append(f"# HELP {name} {_API_HELP[key]}\n# TYPE {name} counter\n{name} {value}")
        return Response("\n".join(lines) + "\n", media_type=CONTENT_TYPE)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        try:
            await intake.ping()
            engines = await intake.engines()
        except StoreUnavailable as exc:
            return _error(503, str(exc))
        # 200 without engines too (the api itself is fine), but it says so:
        # orders wait PENDING_NEW until an engine runs.
        return JSONResponse({"status": "ok", "role": "api", "engines": engines})

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    _drop_impossible_422s(app)
    return app


def _pending(order: PaperOrder) -> dict[str, Any]:
    """What GET shows between POST and the owner's first action."""
    return {
        "orderID": order.order_id,
        "side": order.side.name,
        "symbol": order.symbol,
        "orderQty": str(order.order_qty),
        "cumQty": "0",
        "leavesQty": str(order.order_qty),
        "avgPx": None,
        "ordStatus": "PENDING_NEW",
        "fills": 0,
    }


def _engine_app(node: EngineNode, metrics: Metrics) -> FastAPI:
    app = FastAPI(title="exo example (engine role)")

    @app.get("/metrics")
    async def prometheus() -> Response:
        lines = [metrics.render().decode()]
        for key, value in sorted(node.stats().items()):
            kind = "gauge" if key in ("owned", "live") else "counter"
            name = f"exo_scaleout_{key}"
            lines.append(f'# TYPE {name} {kind}\n{name}{{engine="{node.name}"}} {value}\n')
        return Response("".join(lines), media_type=CONTENT_TYPE)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        status = 200 if node.engine.running else 503
        return JSONResponse(
            {
                "status": "ok" if status == 200 else "stopped",
                "role": "engine",
                "engine": node.name,
                "owned": len(node.held),
                "redis": node.redis_ok,
            },
            status_code=status,
        )

    return app


async def _serve(
    app: FastAPI, sock: socket.socket, name: str, stop: asyncio.Event
) -> Callable[[], Awaitable[None]]:
    server = http_server(app)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name=name)

    async def close() -> None:
        server.should_exit = True
        try:
            await serving
        except Exception:
            log.exception("HTTP server failed")

    serving.add_done_callback(lambda _: stop.set())
    return close


def _signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s again: exiting now", sig.name)
            os._exit(128 + sig.value)
        log.info("%s: stopping", sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)


def engine_name(settings: Settings, port: int) -> str:
    """``--name``, or ``<host>-<port>``: the host's name and the port the
    engine's ``--http`` listens on (``port``, as bound).

    The default is stable across restarts of one engine (same host, same
    ``--http``), so a restarted engine is the same consumer: it reads the
    intake entries it had pending and its inbox, instead of leaving them to
    the others' take-over. It is unique on the host, as two processes cannot
    listen on one port. With ``--http HOST:0`` the port is new at each start,
    and so is the default name: give ``--name`` then."""
    return settings.name or f"{socket.gethostname()}-{port}"


async def run_engine(settings: Settings) -> int:
    """The engine role until SIGINT/SIGTERM (graceful: its orders move at once)."""
    assert settings.redis is not None
    try:
        feed = make_feed(settings.feed, settings.speed)
        venue = make_venue(settings.venue, settings.testnet)
        sock = listen(settings.host, settings.port)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    metrics = Metrics()
    book = Book(observer=metrics, keep_done=settings.keep_done, venue=venue)

    def describe(delegate: Any) -> dict[str, Any]:
        return dict(delegate.progress.to_json())

    def dropped(order_id: str) -> None:
        venue.release(order_id)  # its reports now go to the new owner's venue, not here
        book.forget(order_id)

    def claimed(order_ids: list[str]) -> Awaitable[int]:
        # Restored as after a restart: the venue is asked about their children
        # now, and their first actions here wait for its answer.
        return _reconcile(venue, order_ids)

    name = engine_name(settings, sock.getsockname()[1])
    if settings.name is None and settings.port == 0:
        log.warning(
            "engine %s: named after a port chosen at start (--http %s:0): a restart gets another "
            "name and leaves its pending entries to the other engines; give --name",
            name,
            settings.host,
        )
    try:
        node = EngineNode(
            settings.redis,
            name,
            venue.delegates(book.factory),
            lease=settings.lease,
            partitions=settings.partitions,
            describe=describe,
            on_dropped=dropped,
            on_claimed=claimed,
            idle_interval=settings.idle,
            on_error=lambda order_id, message: log.warning("order %s: %s", order_id, message),
            on_subscribe=lambda symbol: log.info("subscribed %s", symbol),
            on_unsubscribe=lambda symbol: log.info("unsubscribed %s (no live order left)", symbol),
            feed=feed,
        )
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    metrics.watch(node.engine)
    venue.attach(node.engine)
    stop = asyncio.Event()
    _signals(stop)
    try:
        await venue.start()
    except (RuntimeError, OSError, TimeoutError) as exc:  # refused key, unreachable venue
        log.error("venue %s: %s", venue.name, exc)
        sock.close()
        return 1
    try:
        await node.start()
    except StoreUnavailable as exc:
        log.error("%s", exc)
        await venue.stop()
        return 1
    except Exception as exc:
        log.error("cannot start engine %s: %s: %s", name, type(exc).__name__, exc)
        await venue.stop()
        await node.stop()
        return 1
    log.info("feed: %s", _describe_feed(feed, settings.speed))
    log.info("venue: %s (instruments %s)", venue.name, ", ".join(sorted(venue.instruments)))
    host, port = sock.getsockname()[:2]
    close = await _serve(_engine_app(node, metrics), sock, "exo-engine-http", stop)
    log.info("engine %s: metrics on http://%s:%s/metrics; Ctrl-C hands its orders over", name, host, port)
    # The summary line per live order, as in the single process (--summary).
    summaries = (
        asyncio.create_task(_summaries(book, settings.summary), name="exo-summary")
        if settings.summary > 0
        else None
    )
    await stop.wait()
    if summaries is not None:
        summaries.cancel()
    log.info("engine %s: closing its HTTP server", name)
    await close()
    owned = len(node.held)
    log.info("engine %s: stopping, %d order(s) to hand over", name, owned)
    # The venue first, as in the single process: its children end with it, and
    # the next owner reconciles them (UNKNOWN_ORDER for the paper venue).
    await venue.stop()
    await node.stop()
    log.info(
        "engine %s stopped: %d order(s) released; another engine takes them at once "
        "(if none runs, the next to start)",
        name,
        owned,
    )
    return 0


async def _reconcile(venue: VenueBase, order_ids: list[str]) -> int:
    try:
        return await venue.reconcile(order_ids)
    except (ConnectionError, OSError, RuntimeError) as exc:
        log.warning(
            "venue %s: children of %d claimed order(s) not reconciled yet: %s",
            venue.name,
            len(order_ids),
            exc,
        )
        return 0


async def run_api(settings: Settings) -> int:
    """The api role until SIGINT/SIGTERM."""
    assert settings.redis is not None
    try:
        venue = make_venue(settings.venue, settings.testnet)  # its instruments only: never started here
        sock = listen(settings.host, settings.port)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    intake = Intake(settings.redis, partitions=settings.partitions)
    try:
        await intake.open()
    except (StoreUnavailable, ValueError) as exc:
        log.error("%s", exc)
        sock.close()
        return 1
    stop = asyncio.Event()
    _signals(stop)
    host, port = sock.getsockname()[:2]
    close = await _serve(
        create_api_app(
            intake,
            settings.token,
            # A venue that loads its instruments when it connects (Binance's
            # exchangeInfo) lists none here: its engines check the symbols.
            venue if venue.instruments else None,
        ),
        sock,
        "exo-api-http",
        stop,
    )
    url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    log.info("api: listening on %s (API docs %s/docs; orders go to the engines through Redis)", url, url)
    try:
        engines = await intake.engines()
    except StoreUnavailable:
        engines = None  # said by the first request that needs Redis
    if engines == []:
        log.warning(
            "no engine is running on this Redis yet: orders are accepted (202) and wait, "
            "PENDING_NEW, until one runs (exo example --role engine --redis ...)"
        )
    log.info(
        "try: curl -X POST %s/v1/orders -H 'Content-Type: application/json' "
        '-d \'{"side":"BUY","symbol":"BTC-USD","orderQty":"0.5"}\' (an engine works it: --role engine)',
        url,
    )
    await stop.wait()
    await close()
    await intake.close()
    return 0
