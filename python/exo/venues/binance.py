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
  REPLACED with the cumulative quantity carried over; it is sent with
  ``cancelReplaceMode=STOP_ON_FAILURE`` (no new order unless the old one was
  canceled: ALLOW_FAILURE could leave two live orders for one child). When it
  fails, ``data`` says which half did (docs: 400 -2022 both/cancel failed, 409
  -2021 one half failed): a failed cancel leaves the order as it was (the
  replace is rejected with the cancel's reason); a cancel that succeeded with
  a new order that failed is the replace rejected (the new order's reason)
  and then the child CANCELED, with the fills it had; a replace whose outcome
  was never heard (a restart, a lost connection) is settled by asking for the
  replacement order: if it exists, the old order's missed fills then REPLACED
  are reported as the stream would have; if not, the replace is rejected and
  the old order mended as it stands;
- the ORDERS rate limits (per 10 s and per day) are enforced before sending;
  a 429 (or 418) from the venue raises ``RateLimited`` and stops all sending
  until its ``retryAfter``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from exo.child import NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest, Request
from exo.instrument import Instrument, InstrumentStatus
from exo.venues.base import RateLimited
from exo.venues.credentials import Credentials
from exo.venues.tracking import Tracked, dispatch, from_millis
from exo.venues.websocket import WebSocketVenue

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

    def __init__(self, code: int, msg: str, status: int | None = None, data: Any = None) -> None:
        super().__init__(f"Binance error {code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.data = data
        """The error's ``data`` (order.cancelReplace: cancelResult, newOrderResult,
        cancelResponse, newOrderResponse), or None."""


class StatusUnknown(ConnectionError):
    """The venue may or may not have acted on the request (-1007, timeout,
    connection lost): the order stays in flight and is reconciled."""


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


def execution_report(event: dict[str, Any], child: Tracked) -> tuple[str, dict[str, Any]]:
    """Map one ``executionReport`` event to (ord_status, Report fields) for
    ``child``'s parent.

    cum/avg/leaves are the child's (across the venue orders of a
    cancelReplace chain); ``exec_id`` is ``T-<symbol>-<t>`` for a fill (the
    venue's trade id), ``<orderId>-<x>`` otherwise; on CANCELED, ``c`` is the
    cancel request's id and ``C`` the original order's.
    """
    x = event["x"]
    status = _ORD_STATUS.get(event["X"], event["X"])
    cum = child.base_cum + Decimal(event["z"])
    notional = child.base_notional + Decimal(event["Z"])
    order_qty = child.base_cum + Decimal(event["q"])
    fields: dict[str, Any] = {
        "symbol": event["s"],
        "side": event["S"],
        "secondary_order_id": str(event["i"]),
        "cl_ord_id": event["c"],
        "exec_id": _exec_id(event["s"], event["i"], x, event.get("t")),
        "exec_type": _EXEC_TYPE.get(x, x),
        "transact_time": from_millis(event.get("T")),
        "leaves_qty": Decimal(0) if status in _CLOSED else order_qty - cum,
        "cum_qty": cum,
        "avg_px": (notional / cum) if cum else None,
        "order_qty": order_qty,
        "price": Decimal(event["p"]),
    }
    if x == "TRADE":
        fields.update(last_qty=Decimal(event["l"]), last_px=Decimal(event["L"]))
    if x == "CANCELED" and event.get("C"):
        fields["orig_cl_ord_id"] = event["C"]
    if event.get("r") not in (None, "NONE"):
        fields["text"] = event["r"]
    return status, fields


_CLOSED = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED"})


def instruments_from_exchange_info(info: dict[str, Any]) -> list[Instrument]:
    """Instruments from an ``exchangeInfo`` result: PRICE_FILTER.tickSize,
    LOT_SIZE.stepSize/minQty, NOTIONAL (or MIN_NOTIONAL).minNotional; status
    TRADING or not."""
    out = []
    for sym in info.get("symbols", []):
        filters = {f["filterType"]: f for f in sym.get("filters", [])}
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        out.append(
            Instrument(
                sym["symbol"],
                tick_size=Decimal(filters.get("PRICE_FILTER", {}).get("tickSize", "0.00000001")),
                lot_size=Decimal(filters.get("LOT_SIZE", {}).get("stepSize", "0.00000001")),
                min_qty=Decimal(filters.get("LOT_SIZE", {}).get("minQty", "0")),
                min_notional=Decimal(notional.get("minNotional", "0")),
                status=InstrumentStatus.TRADING
                if sym.get("status") == "TRADING"
                else InstrumentStatus.HALTED,
            )
        )
    return out


def _exec_id(symbol: str, order_id: Any, x: str, trade_id: Any) -> str:
    if x == "TRADE":
        return f"T-{symbol}-{trade_id}"
    return f"{order_id}-{_EXEC_TYPE.get(x, x)}"


class Binance(WebSocketVenue):
    """Binance spot order entry (WebSocket API) for child orders.

    ``Binance(Credentials.from_env("EXO_BINANCE"), testnet=True)``; ``attach(engine)``
    then ``await start()`` connects, logs on (Ed25519 keys) and subscribes
    the user data stream, loads the instruments from ``exchangeInfo`` unless
    given, then reconciles. ``await send(request)`` (see ``Venue.send``)
    returns once the venue acknowledged the request; reports go to
    ``engine.report()``. ``await stop()`` closes the connection (orders stay
    at the venue).

    ``rate_limits``: the account's ORDERS limits in ``limits`` notation
    (default ``"50/10 seconds;160000/day"``, Binance spot's defaults);
    ``request_timeout`` (s) before a request counts as status unknown;
    ``connection_lifetime`` (s) after which the connection is renewed (the
    venue closes it at 24 h); ``symbols`` restricts the exchangeInfo load.
    """

    # A refusal during the session start is a lost connection too (reconnect),
    # unless the key or signature is bad (``_connection_lost``).
    _reconnect_on = (*WebSocketVenue._reconnect_on, BinanceError)

    def __init__(
        self,
        credentials: Credentials,
        instruments: Iterable[Instrument] | None = None,
        *,
        name: str = "binance",
        testnet: bool = False,
        url: str | None = None,
        symbols: Iterable[str] | None = None,
        recv_window: int = 5000,
        rate_limits: str | None = "50/10 seconds;160000/day",
        request_timeout: float = 10.0,
        connection_lifetime: float = 23.5 * 3600,
        reconnect_delay: float = 0.5,
        self_trade_prevention: str | None = None,
        **options: Any,
    ) -> None:
        if not 0 < recv_window <= 60000:
            raise ValueError(f"recv_window: 1..60000 ms, got {recv_window}")
        super().__init__(
            name,
            instruments or (),
            rate_limits=rate_limits,
            request_timeout=request_timeout,
            reconnect_delay=reconnect_delay,
            connection_lifetime=connection_lifetime,
            **options,
        )
        self.url = url or (TESTNET_URL if testnet else LIVE_URL)
        self._creds = credentials
        self._load_instruments = instruments is None
        self._symbols = sorted(symbols) if symbols is not None else None
        self._recv_window = recv_window
        self._stp = self_trade_prevention
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._held_cancels: dict[str, dict[str, Any]] = {}
        self._replacing_now: set[str] = set()
        """ClOrdIDs of cancelReplace requests awaiting their response here."""

    # ---- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Connect, authenticate, subscribe reports and reconcile; returns when
        ready. Raises BinanceError if the venue refuses the key or signature."""
        await self._connect(self.url, max_size=2**24)

    def _connection_lost(self, exc: BaseException) -> None:
        if isinstance(exc, BinanceError) and exc.code in (-2014, -2015, -1022, -4056):
            raise exc  # bad key or signature: reconnecting will not help
        log.warning("%s: connection lost (%s); reconnecting", self.name, _safe(exc))

    def _disconnected(self) -> None:
        """The requests awaiting a response on the lost connection: status unknown."""
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
        if self._load_instruments:
            params = {"symbols": self._symbols} if self._symbols else {}
            info = await self._request("exchangeInfo", params)
            self._instruments = {i.symbol: i for i in instruments_from_exchange_info(info)}
            self._load_instruments = False

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("id") is not None:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                continue
            event = msg.get("event")
            if not isinstance(event, dict):
                continue
            kind = event.get("e")
            if kind == "executionReport":
                await self._on_execution(event)
            elif kind in ("serverShutdown", "eventStreamTerminated"):
                log.info("%s: %s; reconnecting", self.name, kind)
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
        """One request -> its ``result``. Raises BinanceError (refused) or
        StatusUnknown (-1007, no response, connection lost)."""
        ws = self._ws
        if ws is None:
            raise StatusUnknown(f"{method}: not connected")
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await ws.send(json.dumps({"id": rid, "method": method, "params": params}))
            msg = await asyncio.wait_for(fut, self._request_timeout)
        except asyncio.TimeoutError:
            raise StatusUnknown(f"{method}: no response in {self._request_timeout} s") from None
        except websockets.WebSocketException as exc:
            raise StatusUnknown(f"{method}: {_safe(exc)}") from None
        finally:
            self._pending.pop(rid, None)
        if msg.get("status") != 200 or "error" in msg:
            err = msg.get("error") or {}
            code, text = int(err.get("code", 0)), str(err.get("msg", ""))
            if code == STATUS_UNKNOWN:
                raise StatusUnknown(f"{method}: {text}")
            if msg.get("status") in (418, 429):
                # Over a limit (429) or banned for going on (418): nothing was
                # done; send nothing more until the venue's retryAfter.
                data = err.get("data") or {}
                retry_ms = data.get("retryAfter") if isinstance(data, dict) else None
                until = retry_ms / 1000 if retry_ms else time.time() + 1.0
                self._block_until(until)
                raise RateLimited(f"{self.name}: {code} {text} (HTTP {msg.get('status')}); not sent")
            raise BinanceError(code, text, msg.get("status"), err.get("data"))
        return msg.get("result")

    async def _transmit(self, request: Request) -> None:
        """A refusal is reported (REJECTED, or a cancel reject with
        cxl_rej_response_to); an unknown outcome raises StatusUnknown, which
        ``VenueBase.send`` turns into a status query."""
        self._refuse_while_blocked()
        if isinstance(request, NewOrderSingle) and self.tracker.get(request.cl_ord_id) is None:
            # Known before anything can go wrong, so reconciliation can ask about it.
            self.tracker.add(Tracked.of(request))
        if not self._ready.is_set():
            await self._ready.wait()  # bounded by VenueBase's request_timeout
        await dispatch(request, self._place, self._cancel, self._replace)

    async def _place(self, req: NewOrderSingle) -> None:
        child = self.tracker.get(req.cl_ord_id)
        assert child is not None  # added by _transmit
        params: dict[str, Any] = {
            "symbol": req.symbol,
            "side": _name(req.side),
            "newClientOrderId": req.cl_ord_id,
            "quantity": str(req.order_qty),
            "newOrderRespType": "ACK",
        }
        tif = _name(req.time_in_force)
        if _name(req.ord_type) == "MARKET":
            params["type"] = "MARKET"
        elif tif == "POST_ONLY":
            params.update(type="LIMIT_MAKER", price=str(req.price))
        else:
            params.update(type="LIMIT", timeInForce=tif, price=str(req.price))
        if self._stp:
            params["selfTradePreventionMode"] = self._stp
        try:
            result = await self._request("order.place", self._auth(params))
        except BinanceError as exc:
            await self._reject(child, req.cl_ord_id, exc)
            return
        if isinstance(result, dict) and "orderId" in result:
            child.secondary_order_id = str(result["orderId"])

    async def _cancel(self, req: OrderCancelRequest) -> None:
        child = await self._child_to_amend(req)
        if child is None:
            return
        params = {
            "symbol": req.symbol,
            "origClientOrderId": child.cl_ord_id,
            "newClientOrderId": req.cl_ord_id,
        }
        try:
            await self._request("order.cancel", self._auth(params))
        except BinanceError as exc:
            # -2011 "Unknown order sent.": filled or canceled meanwhile, or never there.
            await self._cancel_reject(req, child, exc.msg)

    async def _replace(self, req: OrderCancelReplaceRequest) -> None:
        child = await self._child_to_amend(req)
        if child is None:
            return
        child.replacing = req.cl_ord_id
        # Binance replaces by cancel + new order: the new order carries what is left.
        params: dict[str, Any] = {
            "symbol": req.symbol,
            "side": _name(req.side),
            "type": "LIMIT",
            "timeInForce": "GTC" if _name(req.time_in_force) == "POST_ONLY" else _name(req.time_in_force),
            "cancelReplaceMode": "STOP_ON_FAILURE",
            "cancelOrigClientOrderId": child.cl_ord_id,
            "newClientOrderId": req.cl_ord_id,
            "price": str(req.price),
            "quantity": str(req.order_qty - child.cum_qty),
            "newOrderRespType": "ACK",
        }
        self._replacing_now.add(req.cl_ord_id)
        try:
            await self._request("order.cancelReplace", self._auth(params))
        except BinanceError as exc:
            child.replacing = None
            await self._replace_failed(req, child, exc)
        finally:
            self._replacing_now.discard(req.cl_ord_id)

    async def _replace_failed(
        self, req: OrderCancelReplaceRequest, child: Tracked, exc: BinanceError
    ) -> None:
        """An order.cancelReplace that did not wholly succeed; its ``data``
        says which half failed (Binance spot WebSocket API, order.cancelReplace;
        errors -2021 "Order cancel-replace partially failed." (409) and -2022
        "Order cancel-replace failed." (400)):

        - cancelResult SUCCESS, newOrderResult FAILURE: the old order is
          canceled and the new one rejected: the replace is rejected with the
          new order's reason, then the child is CANCELED with the fills it had
          (from the cancel's executionReport if it came first, else from
          ``cancelResponse``, with the id the stream uses so a later copy is
          dropped);
        - cancelResult FAILURE (newOrderResult NOT_ATTEMPTED under
          STOP_ON_FAILURE): the order is as it was (e.g. it filled meanwhile:
          the fills come on the stream): the replace is rejected with the
          cancel's reason;
        - cancelResult FAILURE, newOrderResult SUCCESS (ALLOW_FAILURE only,
          which exo never sends): also rejected, and on_error names the new
          order left live at the venue;
        - no ``data`` (the request itself was refused): rejected.
        """
        data = exc.data if isinstance(exc.data, dict) else {}
        held = self._held_cancels.pop(child.cl_ord_id, None)
        canceled = data.get("cancelResult") == "SUCCESS" or (not data and exc.status == 409)
        if not canceled:
            await self._cancel_reject(req, child, _half_text(data.get("cancelResponse"), exc))
            if data.get("newOrderResult") == "SUCCESS":
                self._error(
                    req.order_id,
                    f"venue {self.name}: order.cancelReplace left the new order {req.cl_ord_id} live "
                    f"although its cancel failed; cancel it at the venue",
                )
            return
        await self._cancel_reject(req, child, _half_text(data.get("newOrderResponse"), exc))
        if held is not None:
            await self._on_execution(held)
            return
        response = data.get("cancelResponse")
        if not isinstance(response, dict) or "orderId" not in response:
            return  # the stream's CANCELED (or reconciliation) closes the child
        executed = Decimal(str(response.get("executedQty", "0")))
        cum = child.base_cum + executed
        notional = child.base_notional + Decimal(str(response.get("cummulativeQuoteQty", "0")))
        child.secondary_order_id = str(response["orderId"])
        status, fields = child.report(
            "CANCELED",
            "CANCELED",
            _exec_id(req.symbol, response["orderId"], "CANCELED", None),
            cl_ord_id=response.get("clientOrderId") or child.cl_ord_id,
            orig_cl_ord_id=child.cl_ord_id,
            cum_qty=cum,
            avg_px=(notional / cum) if cum else None,
            transact_time=from_millis(response.get("transactTime")),
            text=f"canceled by order.cancelReplace {req.cl_ord_id}, whose new order failed",
        )
        await self._emit(status, fields, child)

    # ---- reports ---------------------------------------------------------------

    def _keep_in_step(self, child: Tracked, fields: dict[str, Any]) -> None:
        """cum and avg are the child's across its cancelReplace chain (``execution_report``)."""
        if fields.get("cum_qty") is not None and fields.get("cxl_rej_response_to") is None:
            child.cum_qty = fields["cum_qty"]
            avg = fields.get("avg_px")
            child.notional = avg * child.cum_qty if avg is not None else Decimal(0)

    async def _on_execution(self, event: dict[str, Any]) -> None:
        x = event.get("x")
        original = event.get("C") if x == "CANCELED" and event.get("C") else event.get("c")
        child = self.tracker.get(original)
        if child is None:
            log.debug("%s: executionReport for an order not routed here", self.name)
            return
        if (
            x == "CANCELED"
            and original != child.cl_ord_id
            and str(event.get("i")) != child.secondary_order_id
        ):
            # The cancel half of a cancelReplace that was already reported REPLACED
            # (its event came after the new order's): the child lives on in the new order.
            return
        if x == "CANCELED" and child.replacing and original == child.cl_ord_id:
            # The cancel half of a cancelReplace: the NEW of the replacement says REPLACED.
            self._held_cancels[child.cl_ord_id] = event
            return
        if x == "NEW" and child.replacing is not None and child.replacing == event.get("c"):
            await self._replaced(child, event)
            return
        if event.get("c") == child.cl_ord_id or child.secondary_order_id is None:
            child.secondary_order_id = str(event["i"])
        status, fields = execution_report(event, child)
        await self._emit(status, fields, child)

    async def _replaced(self, child: Tracked, event: dict[str, Any]) -> None:
        orig = child.cl_ord_id
        held = self._held_cancels.pop(orig, None)
        if held is not None:
            # Fills of the old order up to its cancel stay in the child's cum.
            child.base_cum += Decimal(held["z"])
            child.base_notional += Decimal(held["Z"])
        else:
            child.base_cum, child.base_notional = child.cum_qty, child.notional
        child.cl_ord_id = event["c"]
        child.replacing = None
        child.secondary_order_id = str(event["i"])
        child.order_qty = child.base_cum + Decimal(event["q"])
        child.price = Decimal(event["p"])
        status, fields = child.report(
            "PARTIALLY_FILLED" if child.base_cum else "NEW",
            "REPLACED",
            f"{event['i']}-REPLACED",
            orig_cl_ord_id=orig,
            transact_time=from_millis(event.get("T")),
            cum_qty=child.base_cum,
            avg_px=(child.base_notional / child.base_cum) if child.base_cum else None,
        )
        await self._emit(status, fields, child)

    async def _reject(self, child: Tracked, cl_ord_id: str, exc: BinanceError) -> None:
        status, fields = child.report(
            "REJECTED",
            "REJECTED",
            f"{cl_ord_id}-REJECTED",
            cl_ord_id=cl_ord_id,
            text=f"{exc.code}: {exc.msg}",
        )
        await self._emit(status, fields, child)

    # ---- reconciliation (VenueBase hooks) --------------------------------------

    async def _open_orders(self, symbol: str) -> list[tuple[str | None, dict[str, Any], str]]:
        orders = await self._request("openOrders.status", self._auth({"symbol": symbol}))
        return [
            (o["clientOrderId"], o, _ORD_STATUS.get(o["status"], o["status"]))
            for o in (orders if isinstance(orders, list) else [])
        ]

    async def _ask_about(self, child: Tracked) -> None:
        if child.replacing is not None:
            await self._settle_replace(child)
            return
        try:
            order = await self._request(
                "order.status", self._auth({"symbol": child.symbol, "origClientOrderId": child.cl_ord_id})
            )
        except BinanceError as exc:
            if exc.code == -2013 and child.ord_status is None:  # "Order does not exist."
                await self._reject(
                    child, child.cl_ord_id, BinanceError(exc.code, "the order never reached the venue")
                )
            return
        await self._mend(child, order)

    async def _settle_replace(self, child: Tracked) -> None:
        """A cancelReplace whose outcome was never heard (exo restarted with it
        in flight): the replacement order (``child.replacing``) is asked for.
        If it exists the replace happened (``_mend`` reports it REPLACED, then
        its fills); if not, the replace is rejected and the old order is
        mended as it stands (canceled if the cancel half went through)."""
        replacing = child.replacing
        assert replacing is not None
        if replacing in self._replacing_now:
            return  # its response (and the stream) will say: asking now could race it
        try:
            new = await self._request(
                "order.status", self._auth({"symbol": child.symbol, "origClientOrderId": replacing})
            )
        except BinanceError as exc:
            if exc.code != -2013:  # "Order does not exist."
                log.warning("%s: status of %s not known (%s): asked again at the next reconcile",
                            self.name, replacing, exc)  # fmt: skip
                return
            new = None
        if new is not None:
            await self._mend(child, new)
            return
        child.replacing = None
        await self.deliver(
            child.ord_status.name if child.ord_status is not None else "NEW",
            symbol=child.symbol,
            side=child.side,
            cl_ord_id=replacing,
            orig_cl_ord_id=child.cl_ord_id,
            cxl_rej_response_to="REPLACE",
            cum_qty=child.cum_qty,
            text="-2013: the replacement order does not exist at the venue",
        )
        old = await self._request(
            "order.status", self._auth({"symbol": child.symbol, "origClientOrderId": child.cl_ord_id})
        )
        await self._mend(child, old)

    async def _replace_done(self, child: Tracked, new: dict[str, Any]) -> None:
        """The replacement order ``new`` (an order.status / openOrders row)
        exists: the old order's fills the stream did not deliver are emitted,
        then REPLACED, as the stream would have said it."""
        old = await self._request(
            "order.status", self._auth({"symbol": child.symbol, "origClientOrderId": child.cl_ord_id})
        )
        if child.replacing != new["clientOrderId"]:
            return  # the stream's event of the new order got there first: REPLACED already
        await self._mend_fills(child, old)
        self._held_cancels[child.cl_ord_id] = {"z": old["executedQty"], "Z": old["cummulativeQuoteQty"]}
        event = {"c": new["clientOrderId"], "i": new["orderId"], "q": new["origQty"], "p": new["price"]}
        await self._replaced(child, {**event, "T": new.get("time")})

    async def _mend(self, child: Tracked, order: dict[str, Any]) -> None:
        """Emit the fills and the status ``order`` (an order.status result)
        shows beyond what was handed on, with the ids the stream uses."""
        if child.replacing is not None:
            if order.get("clientOrderId") != child.replacing:
                await self._settle_replace(child)  # the old order: the replace's outcome first
                return
            await self._replace_done(child, order)
        child.secondary_order_id = str(order["orderId"])
        if child.ord_status is None:
            status, fields = child.report(
                "NEW", "NEW", f"{order['orderId']}-NEW", transact_time=from_millis(order.get("time"))
            )
            await self._emit(status, fields, child)
        await self._mend_fills(child, order)
        venue_status = _ORD_STATUS.get(order["status"], order["status"])
        if venue_status in ("CANCELED", "EXPIRED", "REJECTED") and child.live:
            status, fields = child.report(
                venue_status,
                venue_status,
                f"{order['orderId']}-{venue_status}",
                transact_time=from_millis(order.get("updateTime")),
            )
            await self._emit(status, fields, child)

    async def _mend_fills(self, child: Tracked, order: dict[str, Any]) -> None:
        """Emit the fills of ``order`` (an order.status result) not handed on
        yet, from ``myTrades``, with the trade ids the stream uses."""
        if child.base_cum + Decimal(order["executedQty"]) > child.cum_qty:
            trades = await self._request(
                "myTrades", self._auth({"symbol": child.symbol, "orderId": int(order["orderId"])})
            )
            for trade in sorted(trades if isinstance(trades, list) else [], key=lambda t: int(t["id"])):
                exec_id = f"T-{child.symbol}-{trade['id']}"
                if self.tracker.handed_on(exec_id):
                    continue
                qty, px = Decimal(trade["qty"]), Decimal(trade["price"])
                cum = child.cum_qty + qty
                notional = child.notional + qty * px
                status, fields = child.report(
                    "FILLED" if cum >= child.order_qty else "PARTIALLY_FILLED",
                    "TRADE",
                    exec_id,
                    last_qty=qty,
                    last_px=px,
                    cum_qty=cum,
                    avg_px=notional / cum,
                    transact_time=from_millis(trade.get("time")),
                )
                await self._emit(status, fields, child)


def _half_text(half: Any, exc: BinanceError) -> str:
    """The reason one half of an order.cancelReplace failed (its own
    ``{code, msg}``), else the error's."""
    if isinstance(half, dict) and "msg" in half:
        return f"{half.get('code')}: {half['msg']}"
    return f"{exc.code}: {exc.msg}"


def _safe(exc: BaseException) -> str:
    """An exception's type and message; websockets/OS errors carry no secrets,
    and this module never puts one in a message."""
    return f"{type(exc).__name__}: {exc}"
