"""A loopback Binance spot WebSocket API server for tests: the request and
response shapes, signature checks and user data stream of the real one
(Binance spot WebSocket API docs), with an in-memory matching rule and
scripted faults. Written from the docs, sharing no code with
exo.venues.binance, so a misreading in one is not mirrored in the other.

Matching: a LIMIT order marketable against ``market[symbol] = (bid, ask)``
fills at once in full at the touch; otherwise IOC expires and GTC rests
until the test calls ``fill()``. ``trades`` is the venue's own record of
every fill (what the tests sum against).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from websockets.asyncio.server import Server, ServerConnection, serve


class ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.data = status, code, msg, data


@dataclass
class Conn:
    ws: ServerConnection
    logged_on: bool = False
    subscribed: bool = False


@dataclass
class BinanceServer:
    api_key: str
    secret: str | None = None
    public_key: Ed25519PublicKey | None = None
    market: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every request received, as parsed JSON (signatures included)."""
    place_faults: list[str] = field(default_factory=list)
    """Scripted outcomes for the next order.place requests, in order:
    'unknown' (order accepted, response is -1007), 'reject' (-2010),
    'silent' (order accepted, no response at all), 'throttle' (429, -1015,
    retryAfter 30 s)."""
    duplicate_reports: bool = False
    replace_events_new_first: bool = False
    """order.cancelReplace: publish the new order's events before the cancel's."""
    replace_events_after_response: bool = False
    """order.cancelReplace: publish its executionReports only after its response."""
    drop_reports: bool = False
    """While set, executionReports are not published (lost with the connection:
    the user data stream does not replay them; order.status/myTrades find them)."""
    ignore_stop_on_failure: bool = False
    """order.cancelReplace: try the new order even when the cancel failed under
    STOP_ON_FAILURE (a venue contradicting the request, as under ALLOW_FAILURE)."""
    _held: list[str] | None = None
    _after_response: list[str] = field(default_factory=list)
    order_limit: int = 50
    conns: list[Conn] = field(default_factory=list)
    url: str = ""
    _server: Server | None = None
    _order_ids: Any = field(default_factory=lambda: itertools.count(1001))
    _trade_ids: Any = field(default_factory=lambda: itertools.count(5001))
    _ws_connected: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0
    traded: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at the first fill."""

    async def start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws-api/v3"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # ---- scripted events -------------------------------------------------------

    async def disconnect(self) -> None:
        """Close every client connection (as a network drop would)."""
        for c in list(self.conns):
            await c.ws.close(1001)
        self.conns.clear()

    async def server_shutdown(self) -> None:
        """Send the serverShutdown event to every connection."""
        for c in list(self.conns):
            await c.ws.send(json.dumps({"event": {"e": "serverShutdown", "E": _ms()}}))

    async def fill(self, client_order_id: str, qty: Decimal, px: Decimal | None = None) -> None:
        """Fill part of a resting order (the matching engine crossed it)."""
        order = self.by_client_id(client_order_id)
        assert order is not None, client_order_id
        await self._trade(order, qty, px if px is not None else Decimal(order["price"]))

    def hold_reports(self) -> None:
        """From now on executionReports wait (the stream lags the matching engine)."""
        self._hold_reports()

    async def release_reports(self) -> None:
        """Publish the executionReports held since ``hold_reports``."""
        held = self._held or []
        self._held = None
        for frame in held:
            await self._push(frame)

    async def expire(self, client_order_id: str) -> None:
        """An unsolicited cancel (e.g. venue risk check)."""
        order = self.by_client_id(client_order_id)
        assert order is not None
        order["status"] = "EXPIRED"
        await self._report(order, "EXPIRED")

    def by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        for o in self.orders.values():
            if o["clientOrderId"] == client_order_id:
                return o
        return None

    def filled_qty(self, client_order_id: str | None = None) -> Decimal:
        """Sum of the venue's own trades (of one order, or all)."""
        ids = None
        if client_order_id is not None:
            o = self.by_client_id(client_order_id)
            ids = {o["orderId"]} if o else set()
        return sum((Decimal(t["qty"]) for t in self.trades if ids is None or t["orderId"] in ids), Decimal(0))

    # ---- protocol --------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Conn(ws)
        self.conns.append(conn)
        self.connections += 1
        try:
            async for raw in ws:
                req = json.loads(raw)
                self.requests.append(req)
                rid, method, params = req.get("id"), req.get("method"), req.get("params", {})
                try:
                    result = await self._dispatch(conn, method, params)
                except ApiError as e:
                    await ws.send(
                        json.dumps(
                            {
                                "id": rid,
                                "status": e.status,
                                "error": {
                                    "code": e.code,
                                    "msg": e.msg,
                                    **({"data": e.data} if e.data else {}),
                                },
                                "rateLimits": self._rate_limits(),
                            }
                        )
                    )
                    await self._publish_after_response()
                    continue
                if result is _SILENT:
                    continue
                await ws.send(
                    json.dumps(
                        {"id": rid, "status": 200, "result": result, "rateLimits": self._rate_limits()}
                    )
                )
                await self._publish_after_response()
        except Exception:  # connection closed under us
            pass
        finally:
            if conn in self.conns:
                self.conns.remove(conn)

    def _rate_limits(self) -> list[dict[str, Any]]:
        now = time.time()
        count = sum(1 for o in self.orders.values() if o["time"] / 1000 > now - 10)
        return [
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": self.order_limit,
                "count": count,
            }
        ]

    def _verify(self, conn: Conn, params: dict[str, Any], *, allow_session: bool = True) -> None:
        """Signature rules of the venue: every param but ``signature``, sorted,
        ``k=v`` joined by ``&``; HMAC hex or Ed25519 base64; timestamp within
        recvWindow."""
        ts = params.get("timestamp")
        if ts is None:
            raise ApiError(
                400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            )
        window = int(params.get("recvWindow", 5000))
        if window > 60000:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        if abs(_ms() - int(ts)) > window:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        if "signature" not in params:
            if allow_session and conn.logged_on:
                return
            raise ApiError(
                400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        if params.get("apiKey") != self.api_key:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload = "&".join(
            f"{k}={'true' if v is True else 'false' if v is False else v}"
            for k, v in sorted(params.items())
            if k != "signature"
        ).encode()
        sig = params["signature"]
        if self.secret is not None:
            expect = hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expect, sig):
                raise ApiError(400, -1022, "Signature for this request is not valid.")
        else:
            assert self.public_key is not None
            try:
                self.public_key.verify(base64.b64decode(sig), payload)
            except (InvalidSignature, ValueError):
                raise ApiError(400, -1022, "Signature for this request is not valid.") from None

    async def _dispatch(self, conn: Conn, method: str, p: dict[str, Any]) -> Any:
        if method == "session.logon":
            if self.public_key is None:
                raise ApiError(400, -4056, "HMAC_SHA256 API key is not supported.")
            self._verify(conn, p, allow_session=False)
            conn.logged_on = True
            return {"apiKey": self.api_key, "authorizedSince": _ms(), "serverTime": _ms()}
        if method == "userDataStream.subscribe":
            if not conn.logged_on:
                raise ApiError(400, -2015, "Invalid API-key, IP, or permissions for action.")
            conn.subscribed = True
            return {"subscriptionId": 0}
        if method == "userDataStream.subscribe.signature":
            self._verify(conn, p, allow_session=False)
            conn.subscribed = True
            return {"subscriptionId": 0}
        if method == "exchangeInfo":  # market data: not signed
            return {
                "timezone": "UTC",
                "serverTime": _ms(),
                "symbols": [
                    {
                        "symbol": sym,
                        "status": "TRADING",
                        "filters": [
                            {
                                "filterType": "PRICE_FILTER",
                                "minPrice": "0.01",
                                "maxPrice": "1000000.00",
                                "tickSize": "0.01",
                            },
                            {
                                "filterType": "LOT_SIZE",
                                "minQty": "0.00001",
                                "maxQty": "9000.00",
                                "stepSize": "0.00001",
                            },
                            {"filterType": "NOTIONAL", "minNotional": "5.00", "applyMinToMarket": True},
                        ],
                    }
                    for sym in sorted(self.market)
                    if "symbols" not in p or sym in p["symbols"]
                ],
            }
        self._verify(conn, p)
        if method == "order.place":
            return await self._place(p)
        if method == "order.cancel":
            order = self._find(p, "origClientOrderId", "orderId")
            if order is None or order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                raise ApiError(400, -2011, "Unknown order sent.")
            return await self._cancel(order, p.get("newClientOrderId"))
        if method == "order.cancelReplace":
            return await self._cancel_replace(p)
        if method == "order.status":
            order = self._find(p, "origClientOrderId", "orderId")
            if order is None:
                raise ApiError(400, -2013, "Order does not exist.")
            return dict(order)
        if method == "openOrders.status":
            return [
                dict(o)
                for o in self.orders.values()
                if o["symbol"] == p.get("symbol") and o["status"] in ("NEW", "PARTIALLY_FILLED")
            ]
        if method == "myTrades":
            return [
                t
                for t in self.trades
                if t["symbol"] == p["symbol"] and ("orderId" not in p or t["orderId"] == int(p["orderId"]))
            ]
        raise ApiError(400, -1100, f"Unknown method {method}")

    async def _cancel_replace(self, p: dict[str, Any]) -> Any:
        """order.cancelReplace as the WebSocket API docs describe it: the
        cancel first; with STOP_ON_FAILURE a failed cancel means no new
        order (400, -2022, newOrderResult NOT_ATTEMPTED); with ALLOW_FAILURE
        the new order is tried anyway. Exactly one half failing is 409,
        -2021 "Order cancel-replace partially failed."; both failing 400,
        -2022. ``data`` holds cancelResult/newOrderResult (SUCCESS, FAILURE,
        NOT_ATTEMPTED) and cancelResponse/newOrderResponse (the result, or
        the half's own {code, msg})."""
        mode = p.get("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise ApiError(
                400,
                -1102,
                "Mandatory parameter 'cancelReplaceMode' was not sent, was empty/null, or malformed.",
            )
        held = (
            self._hold_reports()
            if self.replace_events_new_first or self.replace_events_after_response
            else None
        )
        order = self._find(p, "cancelOrigClientOrderId", "cancelOrderId")
        cancel: dict[str, Any]
        if order is None or order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            cancel_ok, cancel = False, {"code": -2011, "msg": "Unknown order sent."}
        else:
            cancel_ok, cancel = True, await self._cancel(order, p.get("cancelNewClientOrderId"))
        cancel_frames = self._release(held) if held is not None and self.replace_events_new_first else None
        if cancel_frames is not None:
            held = self._hold_reports() if self.replace_events_after_response else None
        new_result, new = "NOT_ATTEMPTED", None
        if cancel_ok or mode == "ALLOW_FAILURE" or self.ignore_stop_on_failure:
            try:
                new = await self._place({k: v for k, v in p.items() if not k.startswith("cancel")})
                new_result = "SUCCESS"
            except ApiError as e:
                new_result, new = "FAILURE", {"code": e.code, "msg": e.msg}
        if cancel_frames is not None:
            for frame in cancel_frames:
                await self._report_frame(frame)
        if held is not None and self.replace_events_after_response:
            self._after_response.extend(self._release(held))
        data = {
            "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
            "newOrderResult": new_result,
            "cancelResponse": cancel,
            "newOrderResponse": new,
        }
        if cancel_ok and new_result == "SUCCESS":
            return data
        if cancel_ok or new_result == "SUCCESS":
            raise ApiError(409, -2021, "Order cancel-replace partially failed.", data=data)
        raise ApiError(400, -2022, "Order cancel-replace failed.", data=data)

    async def _report_frame(self, frame: str) -> None:
        if self._held is not None:
            self._held.append(frame)
        else:
            await self._push(frame)

    async def _publish_after_response(self) -> None:
        frames, self._after_response = self._after_response, []
        for frame in frames:
            await self._push(frame)

    def _find(self, p: dict[str, Any], cl_key: str, id_key: str) -> dict[str, Any] | None:
        if id_key in p:
            return self.orders.get(int(p[id_key]))
        return self.by_client_id(p.get(cl_key, ""))

    async def _place(self, p: dict[str, Any]) -> Any:
        fault = self.place_faults.pop(0) if self.place_faults else None
        if fault == "throttle":
            raise ApiError(
                429,
                -1015,
                "Too many new orders; current limit is 50 orders per 10 SECOND.",
                data={"retryAfter": _ms() + 30_000},
            )
        if fault == "reject":
            raise ApiError(400, -2010, "Account has insufficient balance for requested action.")
        for name in ("symbol", "side", "type", "quantity"):
            if name not in p:
                raise ApiError(
                    400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
                )
        if p["type"] == "LIMIT" and ("price" not in p or "timeInForce" not in p):
            raise ApiError(
                400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed."
            )
        if p.get("newClientOrderId") and self.by_client_id(p["newClientOrderId"]) is not None:
            raise ApiError(400, -2010, "Duplicate order sent.")
        oid = next(self._order_ids)
        now = _ms()
        order = {
            "symbol": p["symbol"],
            "orderId": oid,
            "orderListId": -1,
            "clientOrderId": p.get("newClientOrderId") or f"x-{oid}",
            "price": p.get("price", "0"),
            "origQty": p["quantity"],
            "executedQty": "0",
            "cummulativeQuoteQty": "0",
            "status": "NEW",
            "timeInForce": p.get("timeInForce", "GTC"),
            "type": p["type"],
            "side": p["side"],
            "time": now,
            "updateTime": now,
            "isWorking": True,
        }
        self.orders[oid] = order
        await self._report(order, "NEW")
        bid, ask = self.market.get(p["symbol"], (None, None))
        price = Decimal(order["price"])
        touch = ask if p["side"] == "BUY" else bid
        if touch is not None and (price >= touch if p["side"] == "BUY" else price <= touch):
            await self._trade(order, Decimal(order["origQty"]), touch)
        elif order["timeInForce"] == "IOC":
            order["status"] = "EXPIRED"
            await self._report(order, "EXPIRED")
        if fault == "unknown":
            raise ApiError(
                408,
                -1007,
                "Timeout waiting for response from backend server. Send status unknown; "
                "execution status unknown.",
            )
        if fault == "silent":
            return _SILENT
        return {
            "symbol": order["symbol"],
            "orderId": oid,
            "orderListId": -1,
            "clientOrderId": order["clientOrderId"],
            "transactTime": now,
        }

    async def _cancel(self, order: dict[str, Any], cancel_id: str | None) -> dict[str, Any]:
        order["status"] = "CANCELED"
        order["updateTime"] = _ms()
        await self._report(order, "CANCELED", cancel_id=cancel_id or f"cancel-{order['orderId']}")
        return dict(
            order,
            origClientOrderId=order["clientOrderId"],
            clientOrderId=cancel_id or f"cancel-{order['orderId']}",
        )

    async def _trade(self, order: dict[str, Any], qty: Decimal, px: Decimal) -> None:
        left = Decimal(order["origQty"]) - Decimal(order["executedQty"])
        qty = min(qty, left)
        tid = next(self._trade_ids)
        now = _ms()
        order["executedQty"] = str(Decimal(order["executedQty"]) + qty)
        order["cummulativeQuoteQty"] = str(Decimal(order["cummulativeQuoteQty"]) + qty * px)
        order["status"] = "FILLED" if qty == left else "PARTIALLY_FILLED"
        order["updateTime"] = now
        self.trades.append(
            {
                "symbol": order["symbol"],
                "id": tid,
                "orderId": order["orderId"],
                "orderListId": -1,
                "price": str(px),
                "qty": str(qty),
                "quoteQty": str(qty * px),
                "commission": "0",
                "commissionAsset": "BNB",
                "time": now,
                "isBuyer": order["side"] == "BUY",
                "isMaker": False,
                "isBestMatch": True,
            }
        )
        self.traded.set()
        await self._report(order, "TRADE", last=(qty, px, tid))

    async def _report(
        self,
        order: dict[str, Any],
        x: str,
        *,
        last: tuple[Decimal, Decimal, int] | None = None,
        cancel_id: str | None = None,
    ) -> None:
        now = _ms()
        event = {
            "e": "executionReport",
            "E": now,
            "s": order["symbol"],
            "c": cancel_id if cancel_id else order["clientOrderId"],
            "S": order["side"],
            "o": order["type"],
            "f": order["timeInForce"],
            "q": order["origQty"],
            "p": order["price"],
            "P": "0.00000000",
            "F": "0.00000000",
            "g": -1,
            "C": order["clientOrderId"] if cancel_id else "",
            "x": x,
            "X": order["status"],
            "r": "NONE",
            "i": order["orderId"],
            "l": str(last[0]) if last else "0",
            "z": order["executedQty"],
            "L": str(last[1]) if last else "0",
            "n": "0",
            "N": None,
            "T": now,
            "t": last[2] if last else -1,
            "I": 0,
            "w": order["status"] == "NEW",
            "m": False,
            "M": False,
            "O": order["time"],
            "Z": order["cummulativeQuoteQty"],
            "Y": str(last[0] * last[1]) if last else "0",
            "Q": "0",
            "W": order["time"],
            "V": "NONE",
        }
        frame = json.dumps({"subscriptionId": 0, "event": event})
        if self._held is not None:
            self._held.append(frame)
            return
        await self._push(frame)

    def _hold_reports(self) -> list[str]:
        self._held = []
        return self._held

    def _release(self, held: list[str]) -> list[str]:
        self._held = None
        return held

    async def _push(self, frame: str) -> None:
        if self.drop_reports:
            return
        for c in list(self.conns):
            if c.subscribed:
                try:
                    await c.ws.send(frame)
                    if self.duplicate_reports:
                        await c.ws.send(frame)
                except Exception:
                    pass


_SILENT = object()


def _ms() -> int:
    return int(time.time() * 1000)
