"""Binance spot order entry over the WebSocket API, with execution reports from
the user data stream on the same connection.

Protocol (Binance spot WebSocket API docs, "Request security" and "Trading
requests"; facts and pitfalls in VENUES.md):

- requests ``{id, method, params}``, responses ``{id, status, result | error:
  {code, msg}, rateLimits}``; signed params are every param except
  ``signature`` sorted by name and joined ``k=v&...`` (not percent-encoded),
  signed with HMAC-SHA256 (hex) or Ed25519 (base64), with ``timestamp`` in ms
  and ``recvWindow``;
- Ed25519 keys log the connection on (``session.logon``) and then send
  ``timestamp`` only; HMAC keys sign every request; reports come from
  ``userDataStream.subscribe`` (after logon) or
  ``userDataStream.subscribe.signature`` as ``{subscriptionId, event}``;
- a connection lives at most 24 h and ``serverShutdown`` asks the client to
  reconnect: both reconnect, then reconcile.

What the adapter guarantees:

- a request whose outcome is unknown (error -1007, a timeout, the connection
  dropped before the response) is NOT a reject: the child stays in flight and
  is queried (``order.status``, then ``myTrades`` for fills) until known;
- every report reaches ``on_report`` once: executionReports are de-duplicated
  by trade id (fills) or order id + execution type (the rest), and
  reconciliation after each (re)connect emits exactly the fills and closes the
  stream did not deliver, with the same ids;
- on a CANCELED report ``c`` is the cancel request's id and ``C`` the
  original order's (cl_ord_id and orig_cl_ord_id of the Report);
- ``order.cancelReplace`` (cancel + new order at Binance) is reported as one
  REPLACED with the cumulative quantity carried over;
- the ORDERS rate limits (per 10 s and per day) are enforced before sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect

from exo.market import Report
from exo.venues.credentials import Credentials
from exo.venues.limits import SlidingWindows
from exo.venues.tracking import Tracked, Tracker, from_millis

__all__ = [
    "LIVE_URL",
    "TESTNET_URL",
    "Binance",
    "BinanceError",
    "execution_report",
    "signature_payload",
]

log = logging.getLogger(__name__)

LIVE_URL = "wss://ws-api.binance.com:443/ws-api/v3"
TESTNET_URL = "wss://ws-api.testnet.binance.vision/ws-api/v3"

STATUS_UNKNOWN = -1007
"""Binance error -1007: "Timeout waiting for response from backend server.
Send status unknown; execution status unknown." Never a reject."""

_ORD_STATUS = {
    "NEW": "NEW",
    "PARTIALLY_FILLED": "PARTIALLY_FILLED",
    "FILLED": "FILLED",
    "CANCELED": "CANCELED",
    "PENDING_CANCEL": "PENDING_CANCEL",
    "REJECTED": "REJECTED",
    "EXPIRED": "EXPIRED",
    "EXPIRED_IN_MATCH": "EXPIRED",  # self-trade prevention expired it
    "PENDING_NEW": "PENDING_NEW",
}
_EXEC_TYPE = {
    "NEW": "NEW",
    "CANCELED": "CANCELED",
    "REPLACED": "REPLACED",
    "REJECTED": "REJECTED",
    "TRADE": "TRADE",
    "EXPIRED": "EXPIRED",
    "TRADE_PREVENTION": "EXPIRED",
}


class BinanceError(RuntimeError):
    """A request the venue refused (code and msg from its error object)."""

    def __init__(self, code: int, msg: str, status: int | None = None) -> None:
        super().__init__(f"Binance error {code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status


class StatusUnknown(RuntimeError):
    """The venue may or may not have acted on the request (-1007, timeout,
    connection lost): the order stays in flight and is reconciled."""


class _Request(Protocol):
    cl_ord_id: str
    order_id: str
    symbol: str
    side: Any
    order_qty: Decimal


def signature_payload(params: dict[str, Any]) -> str:
    """The text Binance signs: params except ``signature``, sorted by name,
    ``k=v`` joined with ``&``, values as sent (no percent-encoding)."""
    return "&".join(f"{k}={_text(v)}" for k, v in sorted(params.items()) if k != "signature")


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _name(v: Any) -> str:
    """Side / TimeInForce / OrdType as text: enums by name or value."""
    if isinstance(v, str):
        return v.upper()
    value = getattr(v, "value", None)
    if isinstance(value, str):
        return value
    return str(v.name)


def execution_report(event: dict[str, Any], child: Tracked) -> Report:
    """Map one ``executionReport`` event to a Report for ``child``'s parent.

    cum/avg/leaves are the child's (across the venue orders of a
    cancelReplace chain); ``exec_id`` is ``T-<symbol>-<t>`` for a fill (the
    venue's trade id), ``<orderId>-<x>`` otherwise.
    """
    x = event["x"]
    status = _ORD_STATUS.get(event["X"], event["X"])
    z = Decimal(event["z"])
    cum = child.base_cum + z
    notional = child.base_notional + Decimal(event["Z"])
    last_qty = Decimal(event["l"]) if x == "TRADE" else None
    last_px = Decimal(event["L"]) if x == "TRADE" else None
    if x == "CANCELED" and event.get("C"):
        cl_ord_id, orig = event["c"], event["C"]
    else:
        cl_ord_id, orig = event["c"], None
    terminal = status in {"FILLED", "CANCELED", "REJECTED", "EXPIRED"}
    order_qty = child.base_cum + Decimal(event["q"])
    return Report(
        child.order_id,
        status,
        last_qty,
        last_px,
        symbol=event["s"],
        side=event["S"],
        secondary_order_id=str(event["i"]),
        cl_ord_id=cl_ord_id,
        orig_cl_ord_id=orig,
        exec_id=_exec_id(event["s"], event["i"], x, event.get("t")),
        exec_type=_EXEC_TYPE.get(x, x),
        transact_time=from_millis(event.get("T")),
        leaves_qty=Decimal(0) if terminal else order_qty - cum,
        cum_qty=cum,
        avg_px=(notional / cum) if cum else None,
        order_qty=order_qty,
        price=Decimal(event["p"]),
        text=None if event.get("r") in (None, "NONE") else event["r"],
    )


def _exec_id(symbol: str, order_id: Any, x: str, trade_id: Any) -> str:
    if x == "TRADE":
        return f"T-{symbol}-{trade_id}"
    return f"{order_id}-{_EXEC_TYPE.get(x, x)}"


class Binance:
    """Binance spot order entry (WebSocket API) for child orders.

    ``Binance(credentials, on_report, testnet=True)``; ``await start()``
    connects, logs on (Ed25519) and subscribes the user data stream, then
    reconciles; ``await send(request)`` sends a NewOrderSingle /
    OrderCancelReplaceRequest / OrderCancelRequest (exo.child shapes: any
    object with those FIX-named attributes) and returns once the venue
    acknowledged it; reports go to ``on_report(Report)``. ``await stop()``
    closes the connection (orders stay at the venue).

    ``order_limits``: ``(count, seconds)`` windows of the account's ORDERS
    limits (default 50 per 10 s, 160,000 per day, Binance spot's defaults);
    ``request_timeout`` (s) before a request counts as status unknown;
    ``connection_lifetime`` (s) after which the connection is renewed (the
    venue closes it at 24 h).
    """

    def __init__(
        self,
        credentials: Credentials,
        on_report: Callable[[Report], object],
        *,
        testnet: bool = False,
        url: str | None = None,
        recv_window: int = 5000,
        order_limits: list[tuple[int, float]] | None = None,
        max_rate_wait: float = 1.0,
        request_timeout: float = 10.0,
        connection_lifetime: float = 23.5 * 3600,
        reconnect_delay: float = 0.5,
        self_trade_prevention: str | None = None,
    ) -> None:
        if not 0 < recv_window <= 60000:
            raise ValueError(f"recv_window: 1..60000 ms, got {recv_window}")
        self.url = url or (TESTNET_URL if testnet else LIVE_URL)
        self._creds = credentials
        self._on_report = on_report
        self._recv_window = recv_window
        self._limits = SlidingWindows(
            order_limits or [(50, 10.0), (160_000, 86_400.0)], max_wait=max_rate_wait
        )
        self._timeout = request_timeout
        self._lifetime = connection_lifetime
        self._reconnect_delay = reconnect_delay
        self._stp = self_trade_prevention
        self.tracker = Tracker()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._unknown: set[str] = set()
        self._held_cancels: dict[str, dict[str, Any]] = {}
        self._reconciling: asyncio.Task[None] | None = None
        self.connects = 0
        """How many times a connection was established (1 + reconnects)."""

    # ---- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Connect, authenticate, subscribe reports and reconcile; returns when ready."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="exo-binance")
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            self._task.result()

    async def stop(self) -> None:
        """Close the connection and stop reconnecting. Orders are left at the venue."""
        self._stopping = True
        for task in (self._reconciling, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._ws is not None:
            await self._ws.close()

    async def wait_ready(self) -> None:
        """Wait until connected, authenticated, subscribed and reconciled."""
        await self._ready.wait()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                async with connect(self.url, max_size=2**22, open_timeout=self._timeout) as ws:
                    self._ws = ws
                    self.connects += 1
                    reader = asyncio.create_task(self._read(ws))
                    try:
                        await self._session_start()
                        self._reconciling = asyncio.create_task(self._reconcile_all())
                        await self._reconciling
                        self._ready.set()
                        await asyncio.wait_for(asyncio.shield(reader), self._lifetime)
                    except asyncio.TimeoutError:
                        log.info("Binance: renewing the connection after %.0f s", self._lifetime)
                    finally:
                        self._ready.clear()
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await reader
            except (OSError, websockets.WebSocketException, BinanceError, StatusUnknown) as exc:
                if isinstance(exc, BinanceError) and exc.code in (-2014, -2015, -1022):
                    raise  # bad key or signature: reconnecting will not help
                log.warning("Binance: connection lost (%s); reconnecting", _safe(exc))
            finally:
                self._ws = None
                self._fail_pending()
            if not self._stopping:
                await asyncio.sleep(self._reconnect_delay)

    def _fail_pending(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(StatusUnknown("connection lost before the response"))
        self._pending.clear()

    async def _session_start(self) -> None:
        if self._creds.kind == "ed25519":
            await self._request("session.logon", self._signed({}, api_key=True))
            await self._request("userDataStream.subscribe", {})
        else:
            await self._request("userDataStream.subscribe.signature", self._signed({}, api_key=True))

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] is not None:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                continue
            event = msg.get("event")
            if not isinstance(event, dict):
                continue
            kind = event.get("e")
            if kind == "executionReport":
                self._on_execution(event)
            elif kind in ("serverShutdown", "eventStreamTerminated"):
                log.info("Binance: %s; reconnecting", kind)
                return

    # ---- requests --------------------------------------------------------------

    def _signed(self, params: dict[str, Any], *, api_key: bool) -> dict[str, Any]:
        params = dict(params)
        params["timestamp"] = int(time.time() * 1000)
        params["recvWindow"] = self._recv_window
        if api_key:
            params["apiKey"] = self._creds.api_key
            params["signature"] = self._creds.sign(signature_payload(params))
        return params

    def _auth(self, params: dict[str, Any]) -> dict[str, Any]:
        """Trading request params: Ed25519 sessions are logged on (timestamp
        only); HMAC keys sign each request."""
        return self._signed(params, api_key=self._creds.kind != "ed25519")

    async def _request(self, method: str, params: dict[str, Any]) -> Any:
        ws = self._ws
        if ws is None:
            raise StatusUnknown("not connected")
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await ws.send(json.dumps({"id": rid, "method": method, "params": params}))
            msg = await asyncio.wait_for(fut, self._timeout)
        except asyncio.TimeoutError:
            raise StatusUnknown(f"{method}: no response in {self._timeout} s") from None
        except websockets.WebSocketException as exc:
            raise StatusUnknown(f"{method}: {_safe(exc)}") from None
        finally:
            self._pending.pop(rid, None)
        if msg.get("status") != 200 or "error" in msg:
            err = msg.get("error") or {}
            code, text = int(err.get("code", 0)), str(err.get("msg", ""))
            if code == STATUS_UNKNOWN:
                raise StatusUnknown(f"{method}: {text}")
            raise BinanceError(code, text, msg.get("status"))
        return msg.get("result")

    async def send(self, request: Any) -> None:
        """Send one child request (exo.child NewOrderSingle,
        OrderCancelReplaceRequest or OrderCancelRequest); returns on the
        venue's acknowledgement. A refusal is reported (REJECTED, or a cancel
        reject with cxl_rej_response_to) rather than raised; an unknown
        outcome leaves the order in flight and starts reconciliation.
        Raises ``RateLimited`` (nothing sent) when the order limits are full."""
        kind = _name(request.msg_type)
        if not self._ready.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), self._timeout)
        if kind == "NEW":
            await self._place(request)
        elif kind == "CANCEL":
            await self._cancel(request)
        elif kind == "REPLACE":
            await self._replace(request)
        else:
            raise ValueError(f"unsupported request msg_type {kind}")

    async def _place(self, req: Any) -> None:
        child = self.tracker.get(req.cl_ord_id)
        if child is None:
            child = self.tracker.add(
                Tracked(
                    req.order_id,
                    req.symbol,
                    _name(req.side),
                    Decimal(req.order_qty),
                    req.cl_ord_id,
                    req.price,
                )
            )
        params: dict[str, Any] = {
            "symbol": req.symbol,
            "side": _name(req.side),
            "newClientOrderId": req.cl_ord_id,
            "quantity": str(req.order_qty),
            "newOrderRespType": "ACK",
        }
        ord_type = _name(getattr(req, "ord_type", "LIMIT"))
        tif = _name(getattr(req, "time_in_force", "GTC"))
        if ord_type == "LIMIT" and tif == "POST_ONLY":
            params.update(type="LIMIT_MAKER", price=str(req.price))
        elif ord_type == "LIMIT":
            params.update(type="LIMIT", timeInForce=tif, price=str(req.price))
        else:
            params["type"] = "MARKET"
        if self._stp:
            params["selfTradePreventionMode"] = self._stp
        await self._limits.acquire()
        try:
            result = await self._request("order.place", self._auth(params))
        except StatusUnknown as exc:
            self._status_unknown(child, exc)
            return
        except BinanceError as exc:
            self._reject(child, req.cl_ord_id, exc)
            return
        if "orderId" in result:
            child.secondary_order_id = str(result["orderId"])

    async def _cancel(self, req: Any) -> None:
        child = self.tracker.get(req.orig_cl_ord_id)
        if child is None:
            self._emit_cancel_reject(req, None, "CANCEL", "unknown order")
            return
        self.tracker.alias(req.cl_ord_id, child)
        params = {
            "symbol": req.symbol,
            "origClientOrderId": child.cl_ord_id,
            "newClientOrderId": req.cl_ord_id,
        }
        try:
            await self._request("order.cancel", self._auth(params))
        except StatusUnknown as exc:
            self._status_unknown(child, exc)
        except BinanceError as exc:
            # -2011 "Unknown order sent.": filled or canceled meanwhile, or never there.
            self._emit_cancel_reject(req, child, "CANCEL", exc.msg)

    async def _replace(self, req: Any) -> None:
        child = self.tracker.get(req.orig_cl_ord_id)
        if child is None:
            self._emit_cancel_reject(req, None, "REPLACE", "unknown order")
            return
        self.tracker.alias(req.cl_ord_id, child)
        child.replacing = req.cl_ord_id
        # Binance replaces by cancel + new order: the new order carries what is left.
        params: dict[str, Any] = {
            "symbol": req.symbol,
            "side": _name(req.side),
            "type": "LIMIT",
            "timeInForce": _name(getattr(req, "time_in_force", "GTC")),
            "cancelReplaceMode": "STOP_ON_FAILURE",
            "cancelOrigClientOrderId": child.cl_ord_id,
            "newClientOrderId": req.cl_ord_id,
            "price": str(req.price),
            "quantity": str(Decimal(req.order_qty) - child.cum_qty),
            "newOrderRespType": "ACK",
        }
        await self._limits.acquire()
        try:
            await self._request("order.cancelReplace", self._auth(params))
        except StatusUnknown as exc:
            self._status_unknown(child, exc)
            return
        except BinanceError as exc:
            child.replacing = None
            if exc.status == 409:
                # The cancel half happened, the new order failed: the order is canceled.
                held = self._held_cancels.pop(child.cl_ord_id, None)
                if held is not None:
                    self._on_execution(held)
                return
            self._emit_cancel_reject(req, child, "REPLACE", exc.msg)
            return

    # ---- reports ---------------------------------------------------------------

    def _emit(self, report: Report, child: Tracked) -> None:
        if report.exec_id and self.tracker.seen(report.exec_id):
            return
        child.ord_status = report.ord_status
        if report.cum_qty is not None:
            child.cum_qty = report.cum_qty
            if report.avg_px is not None:
                child.notional = report.avg_px * report.cum_qty
        self._on_report(report)

    def _on_execution(self, event: dict[str, Any]) -> None:
        x = event.get("x")
        child = self.tracker.get(event.get("C") if x == "CANCELED" and event.get("C") else event.get("c"))
        if child is None:
            log.debug("Binance: executionReport for an order not routed here (%s)", event.get("c"))
            return
        if x == "CANCELED" and child.replacing and event.get("C") == child.cl_ord_id:
            # The cancel half of a cancelReplace: the NEW of the replacement says REPLACED.
            self._held_cancels[child.cl_ord_id] = event
            return
        if x == "NEW" and child.replacing == event.get("c"):
            self._replaced(child, event)
            return
        if child.secondary_order_id is None or event.get("c") == child.cl_ord_id:
            child.secondary_order_id = str(event["i"])
        self._emit(execution_report(event, child), child)

    def _replaced(self, child: Tracked, event: dict[str, Any]) -> None:
        orig = child.cl_ord_id
        held = self._held_cancels.pop(orig, None)
        if held is not None:
            # Fills of the old order up to its cancel stay in the child's cum.
            child.base_cum = child.base_cum + Decimal(held["z"])
            child.base_notional = child.base_notional + Decimal(held["Z"])
        else:
            child.base_cum, child.base_notional = child.cum_qty, child.notional
        child.cl_ord_id = event["c"]
        child.replacing = None
        child.secondary_order_id = str(event["i"])
        child.order_qty = child.base_cum + Decimal(event["q"])
        child.price = Decimal(event["p"])
        report = execution_report(event, child)
        status = "PARTIALLY_FILLED" if child.base_cum else "NEW"
        self._emit(
            child.report(
                status,
                "REPLACED",
                f"{event['i']}-REPLACED",
                orig_cl_ord_id=orig,
                transact_time=report.transact_time,
                cum_qty=child.base_cum,
                avg_px=(child.base_notional / child.base_cum) if child.base_cum else None,
            ),
            child,
        )

    def _reject(self, child: Tracked, cl_ord_id: str, exc: BinanceError) -> None:
        self._emit(
            child.report(
                "REJECTED",
                "REJECTED",
                f"{cl_ord_id}-REJECTED",
                cl_ord_id=cl_ord_id,
                text=f"{exc.code}: {exc.msg}",
            ),
            child,
        )

    def _emit_cancel_reject(self, req: Any, child: Tracked | None, to: str, text: str) -> None:
        """OrderCancelReject in FIX terms: the order's status is unchanged."""
        status = child.ord_status if child is not None and child.ord_status is not None else "REJECTED"
        report = Report(
            req.order_id,
            status,
            symbol=req.symbol,
            side=_name(req.side),
            secondary_order_id=child.secondary_order_id if child else None,
            cl_ord_id=req.cl_ord_id,
            orig_cl_ord_id=req.orig_cl_ord_id,
            cxl_rej_response_to=to,
            cum_qty=child.cum_qty if child else None,
            text=text,
        )
        if child is not None:
            child.replacing = None
        self._on_report(report)

    # ---- status unknown and reconciliation -------------------------------------

    def _status_unknown(self, child: Tracked, exc: Exception) -> None:
        log.warning("Binance: %s: status unknown (%s); reconciling", child.cl_ord_id, _safe(exc))
        self._unknown.add(child.cl_ord_id)
        if self._ws is not None and (self._reconciling is None or self._reconciling.done()):
            self._reconciling = asyncio.create_task(self._reconcile_all())

    async def reconcile(self) -> None:
        """Ask the venue about every live child (openOrders.status, then
        order.status and myTrades for each one not open) and emit what the
        stream did not deliver."""
        await self._reconcile_all()

    async def _reconcile_all(self) -> None:
        live = self.tracker.live()
        if not live:
            return
        for symbol in sorted({c.symbol for c in live}):
            open_orders = await self._request("openOrders.status", self._auth({"symbol": symbol}))
            by_cl = {o["clientOrderId"]: o for o in (open_orders if isinstance(open_orders, list) else [])}
            for child in [c for c in live if c.symbol == symbol]:
                order = by_cl.get(child.cl_ord_id)
                if order is None:
                    try:
                        order = await self._request(
                            "order.status",
                            self._auth({"symbol": symbol, "origClientOrderId": child.cl_ord_id}),
                        )
                    except BinanceError as exc:
                        if exc.code == -2013:  # "Order does not exist."
                            self._never_arrived(child)
                            continue
                        raise
                await self._mend(child, order)
        self._unknown.clear()

    def _never_arrived(self, child: Tracked) -> None:
        if child.cl_ord_id in self._unknown and child.ord_status is None:
            self._reject(child, child.cl_ord_id, BinanceError(-2013, "order never reached the venue"))

    async def _mend(self, child: Tracked, order: dict[str, Any]) -> None:
        """Emit the fills and the status ``order`` (an order.status result)
        shows beyond what was handed on."""
        child.secondary_order_id = str(order["orderId"])
        executed = child.base_cum + Decimal(order["executedQty"])
        if child.ord_status is None:
            self._emit(
                child.report(
                    "NEW",
                    "NEW",
                    f"{order['orderId']}-NEW",
                    transact_time=from_millis(order.get("time")),
                    price=Decimal(order["price"]),
                ),
                child,
            )
        if executed > child.cum_qty:
            trades = await self._request(
                "myTrades", self._auth({"symbol": child.symbol, "orderId": int(order["orderId"])})
            )
            for trade in sorted(trades if isinstance(trades, list) else [], key=lambda t: int(t["id"])):
                exec_id = f"T-{child.symbol}-{trade['id']}"
                qty, px = Decimal(trade["qty"]), Decimal(trade["price"])
                if self.tracker.handed_on(exec_id):
                    continue
                cum = child.cum_qty + qty
                notional = child.notional + qty * px
                status = "FILLED" if cum >= child.order_qty else "PARTIALLY_FILLED"
                self._emit(
                    child.report(
                        status,
                        "TRADE",
                        exec_id,
                        last_qty=qty,
                        last_px=px,
                        cum_qty=cum,
                        avg_px=notional / cum,
                        transact_time=from_millis(trade.get("time")),
                    ),
                    child,
                )
                child.notional = notional
        venue_status = _ORD_STATUS.get(order["status"], order["status"])
        if venue_status in ("CANCELED", "EXPIRED", "REJECTED") and child.live:
            self._emit(
                child.report(
                    venue_status,
                    venue_status,
                    f"{order['orderId']}-{venue_status}",
                    transact_time=from_millis(order.get("updateTime")),
                ),
                child,
            )


def _safe(exc: BaseException) -> str:
    """An exception's type and message; websockets/OS errors carry no secrets,
    and this module never puts one in a message."""
    return f"{type(exc).__name__}: {exc}"
