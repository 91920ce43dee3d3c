"""A loopback BitMEX for tests: REST ``/api/v1/order`` (+ amend, cancel,
cancelAllAfter, order and tradeHistory queries) on uvicorn, and the
``/realtime`` websocket with ``authKeyExpires`` and the ``order`` and
``execution`` tables (partial, insert, sparse update rows). Written from
BitMEX's API docs, sharing no code with exo.venues.bitmex. Every REST call's
``api-signature`` and ``api-expires`` are checked as the venue does.

Matching: a Limit order marketable against ``market[symbol] = (bid, ask)``
fills in full at the touch; otherwise ImmediateOrCancel is canceled and
GoodTillCancel rests until ``fill()``. ``executions`` is the venue's own
record (what tests sum fills against).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.server import Server, ServerConnection, serve


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class BitMEXServer:
    api_key: str
    secret: str
    market: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # orderID -> row
    executions: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    """(verb, path with query) of every REST call that passed authentication."""
    refused: list[tuple[int, str]] = field(default_factory=list)
    """(HTTP status, message) of every REST call refused."""
    throttle: int = 0
    """Answer the next N REST calls with 429 and Retry-After."""
    retry_after: int = 2
    unavailable: int = 0
    """Answer the next N order placements with 503 after taking the order."""
    send_execution_partial: bool = True
    drop_reports: bool = False
    """While set, order/execution rows are not published (lost with the
    connection, as BitMEX does not replay them: REST reconciliation finds them)."""
    limit: int = 120
    tick_size: float = 0.5
    lot_size: float = 100
    remaining: int = 120
    dead_man_timeout_ms: int = 0
    dead_man_calls: int = 0
    rest_url: str = ""
    ws_url: str = ""
    ws_conns: list[ServerConnection] = field(default_factory=list)
    ws_connections: int = 0
    _subs: dict[int, set[str]] = field(default_factory=dict)
    _uv: uvicorn.Server | None = None
    _uv_task: asyncio.Task[None] | None = None
    _ws: Server | None = None
    _exec_ids: Any = field(default_factory=lambda: itertools.count(1))
    _dead_man: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/api/v1/order", self._order, methods=["POST", "PUT", "DELETE", "GET"]),
                Route("/api/v1/order/cancelAllAfter", self._cancel_all_after, methods=["POST"]),
                Route("/api/v1/execution/tradeHistory", self._trade_history, methods=["GET"]),
                Route("/api/v1/instrument/active", self._instruments, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self._uv = uvicorn.Server(config)
        self._uv_task = asyncio.create_task(self._uv.serve())
        while not self._uv.started:
            await asyncio.sleep(0.005)
        port = self._uv.servers[0].sockets[0].getsockname()[1]
        self.rest_url = f"http://127.0.0.1:{port}/api/v1"
        self._ws = await serve(self._ws_handle, "127.0.0.1", 0)
        self.ws_url = f"ws://127.0.0.1:{next(iter(self._ws.sockets)).getsockname()[1]}/realtime"

    async def stop(self) -> None:
        if self._dead_man is not None:
            self._dead_man.cancel()
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        if self._uv is not None and self._uv_task is not None:
            self._uv.should_exit = True
            await self._uv_task

    # ---- scripted events -------------------------------------------------------

    def by_cl(self, cl_ord_id: str) -> dict[str, Any] | None:
        for o in self.orders.values():
            if o["clOrdID"] == cl_ord_id:
                return o
        return None

    async def fill(self, cl_ord_id: str, qty: Decimal, px: Decimal | None = None) -> None:
        order = self.by_cl(cl_ord_id)
        assert order is not None
        await self._trade(order, qty, px if px is not None else Decimal(str(order["price"])))

    async def disconnect(self) -> None:
        for ws in list(self.ws_conns):
            await ws.close()

    def filled_qty(self, cl_ord_id: str | None = None) -> Decimal:
        ids = None
        if cl_ord_id is not None:
            o = self.by_cl(cl_ord_id)
            ids = {o["orderID"]} if o else set()
        return sum(
            (
                Decimal(str(e["lastQty"]))
                for e in self.executions
                if e["execType"] == "Trade" and (ids is None or e["orderID"] in ids)
            ),
            Decimal(0),
        )

    # ---- REST ------------------------------------------------------------------

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        self.refused.append((status, message))
        return JSONResponse({"error": {"message": message, "name": "HTTPError"}}, status, headers=headers)

    def _limit_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(int(time.time()) + 60),
        }

    async def _auth(self, request: Request) -> tuple[Response | None, Any]:
        """The venue's rules: api-expires in the future, api-signature =
        hex(HMAC(secret, verb + path + query + expires + body))."""
        body = (await request.body()).decode()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        expires = request.headers.get("api-expires", "")
        if request.headers.get("api-key") != self.api_key:
            return self._error(401, "Invalid API Key."), None
        if not expires.isdigit() or int(expires) < time.time():
            return self._error(401, "This request has expired - `expires` is in the past."), None
        want = hmac.new(
            self.secret.encode(), f"{request.method}{path}{expires}{body}".encode(), hashlib.sha256
        )
        if not hmac.compare_digest(want.hexdigest(), request.headers.get("api-signature", "")):
            return self._error(401, "Signature not valid."), None
        if self.throttle > 0:
            self.throttle -= 1
            headers = dict(self._limit_headers(), **{"retry-after": str(self.retry_after)})
            return self._error(429, "Rate limit exceeded, retry in 1 seconds.", headers), None
        self.calls.append((request.method, path))
        self.remaining = max(self.remaining - 1, 0)
        if request.method == "GET":
            return None, dict(request.query_params)
        return None, json.loads(body) if body else {}

    async def _order(self, request: Request) -> Response:
        refused, p = await self._auth(request)
        if refused is not None:
            return refused
        h = self._limit_headers()
        if request.method == "GET":
            f = json.loads(p.get("filter", "{}"))
            rows = [
                o
                for o in self.orders.values()
                if ("symbol" not in p or o["symbol"] == p["symbol"])
                and (not f.get("open") or o["ordStatus"] in ("New", "PartiallyFilled"))
                and ("clOrdID" not in f or o["clOrdID"] == f["clOrdID"])
            ]
            return JSONResponse(rows, headers=h)
        if request.method == "POST":
            return await self._place(p, h)
        if request.method == "PUT":
            order = self.by_cl(p.get("origClOrdID", "")) or self.orders.get(p.get("orderID", ""))
            if order is None:
                return self._error(404, "Not Found")
            if order["ordStatus"] not in ("New", "PartiallyFilled"):
                return self._error(400, "Invalid ordStatus")
            orig = order["clOrdID"]
            changed: dict[str, Any] = {}
            if "orderQty" in p:
                changed["orderQty"] = p["orderQty"]
                changed["leavesQty"] = p["orderQty"] - order["cumQty"]
            if "price" in p:
                changed["price"] = p["price"]
            changed["clOrdID"] = p.get("clOrdID", orig)
            order.update(changed)
            await self._exec(order, "Replaced", origClOrdID=orig)
            await self._order_update(order, changed)
            return JSONResponse(order, headers=h)
        # DELETE
        order = self.by_cl(p.get("clOrdID", "")) or self.orders.get(p.get("orderID", ""))
        if order is None:
            return self._error(404, "Not Found")
        if order["ordStatus"] not in ("New", "PartiallyFilled"):
            return JSONResponse(
                [dict(order, error=f"Unable to cancel order due to existing state: {order['ordStatus']}")],
                headers=h,
            )
        await self._cancel(order, "Canceled: Cancel from www.bitmex.com")
        return JSONResponse([order], headers=h)

    async def _place(self, p: dict[str, Any], h: dict[str, str]) -> Response:
        for name in ("symbol", "orderQty"):
            if name not in p:
                return self._error(400, f"{name} is required")
        if p["symbol"] not in self.market:
            return self._error(400, "Instrument not listed")
        if p.get("clOrdID") and self.by_cl(p["clOrdID"]) is not None:
            return self._error(400, "Duplicate clOrdID")
        oid = str(uuid.uuid4())
        order = {
            "orderID": oid,
            "clOrdID": p.get("clOrdID", ""),
            "account": 1,
            "symbol": p["symbol"],
            "side": p.get("side", "Buy"),
            "orderQty": p["orderQty"],
            "price": p.get("price"),
            "ordType": p.get("ordType", "Limit"),
            "timeInForce": p.get("timeInForce", "GoodTillCancel"),
            "execInst": p.get("execInst", ""),
            "ordStatus": "New",
            "leavesQty": p["orderQty"],
            "cumQty": 0,
            "avgPx": None,
            "text": "Submitted via API.",
            "transactTime": _now_iso(),
            "timestamp": _now_iso(),
        }
        self.orders[oid] = order
        await self._exec(order, "New")
        await self._publish("order", "insert", [dict(order)])
        bid, ask = self.market[p["symbol"]]
        touch = ask if order["side"] == "Buy" else bid
        px = Decimal(str(order["price"]))
        if px >= touch if order["side"] == "Buy" else px <= touch:
            await self._trade(order, Decimal(str(order["orderQty"])), touch)
        elif order["timeInForce"] == "ImmediateOrCancel":
            await self._cancel(order, "Canceled: Cancel from www.bitmex.com\nSubmission from www.bitmex.com")
        if self.unavailable > 0:
            self.unavailable -= 1
            return self._error(503, "The system is currently overloaded. Please try again later.")
        return JSONResponse(order, headers=h)

    async def _cancel_all_after(self, request: Request) -> Response:
        refused, p = await self._auth(request)
        if refused is not None:
            return refused
        self.dead_man_calls += 1
        self.dead_man_timeout_ms = int(p.get("timeout", 0))
        if self._dead_man is not None:
            self._dead_man.cancel()
            self._dead_man = None
        if self.dead_man_timeout_ms > 0:
            loop = asyncio.get_running_loop()
            self._dead_man = loop.call_later(
                self.dead_man_timeout_ms / 1000, lambda: asyncio.ensure_future(self._cancel_all())
            )
        return JSONResponse({"now": _now_iso(), "cancelTime": _now_iso()}, headers=self._limit_headers())

    async def _cancel_all(self) -> None:
        for o in list(self.orders.values()):
            if o["ordStatus"] in ("New", "PartiallyFilled"):
                await self._cancel(o, "Canceled: Cancel all after timeout")

    async def _instruments(self, request: Request) -> Response:
        # Public at the venue; signed calls are accepted too.
        rows = [
            {
                "symbol": sym,
                "state": "Open",
                "tickSize": self.tick_size,
                "lotSize": self.lot_size,
                "typ": "FFWCSX",
            }
            for sym in sorted(self.market)
        ]
        return JSONResponse(rows, headers=self._limit_headers())

    async def _trade_history(self, request: Request) -> Response:
        refused, p = await self._auth(request)
        if refused is not None:
            return refused
        f = json.loads(p.get("filter", "{}"))
        rows = [e for e in self.executions if e["execType"] == "Trade" and e["orderID"] == f.get("orderID")]
        return JSONResponse(rows, headers=self._limit_headers())

    # ---- state changes, published like the venue -------------------------------

    async def _trade(self, order: dict[str, Any], qty: Decimal, px: Decimal) -> None:
        left = Decimal(str(order["leavesQty"]))
        qty = min(qty, left)
        cum = Decimal(str(order["cumQty"])) + qty
        avg = px if order["avgPx"] is None else (Decimal(str(order["avgPx"])) * (cum - qty) + qty * px) / cum
        changed = {
            "cumQty": int(cum) if cum == int(cum) else float(cum),
            "leavesQty": int(left - qty) if left == int(left) else float(left - qty),
            "avgPx": float(avg),
            "ordStatus": "Filled" if qty == left else "PartiallyFilled",
            "timestamp": _now_iso(),
        }
        order.update(changed)
        await self._exec(
            order, "Trade", lastQty=changed_num(qty), lastPx=float(px), trdMatchID=str(uuid.uuid4())
        )
        await self._order_update(order, changed)

    async def _cancel(self, order: dict[str, Any], text: str) -> None:
        changed = {"ordStatus": "Canceled", "leavesQty": 0, "text": text, "timestamp": _now_iso()}
        order.update(changed)
        await self._exec(order, "Canceled")
        await self._order_update(order, changed)

    async def _order_update(self, order: dict[str, Any], changed: dict[str, Any]) -> None:
        # Sparse: the keys, and only what changed (BitMEX docs, "update" action).
        await self._publish(
            "order", "update", [dict(changed, orderID=order["orderID"], symbol=order["symbol"])]
        )

    async def _exec(self, order: dict[str, Any], exec_type: str, **extra: Any) -> None:
        row = {
            "execID": str(uuid.UUID(int=next(self._exec_ids))),
            "orderID": order["orderID"],
            "clOrdID": order["clOrdID"],
            "account": 1,
            "symbol": order["symbol"],
            "side": order["side"],
            "orderQty": order["orderQty"],
            "price": order["price"],
            "execType": exec_type,
            "ordType": order["ordType"],
            "timeInForce": order["timeInForce"],
            "ordStatus": order["ordStatus"],
            "leavesQty": order["leavesQty"],
            "cumQty": order["cumQty"],
            "avgPx": order["avgPx"],
            "lastQty": None,
            "lastPx": None,
            "text": order["text"],
            "transactTime": _now_iso(),
            "timestamp": _now_iso(),
        }
        row.update(extra)
        self.executions.append(row)
        await self._publish("execution", "insert", [row])

    async def _publish(self, table: str, action: str, data: list[dict[str, Any]]) -> None:
        if self.drop_reports:
            return
        frame = json.dumps({"table": table, "action": action, "data": data})
        for ws in list(self.ws_conns):
            if table in self._subs.get(id(ws), set()):
                try:
                    await ws.send(frame)
                except Exception:
                    pass

    # ---- websocket -------------------------------------------------------------

    async def _ws_handle(self, ws: ServerConnection) -> None:
        self.ws_connections += 1
        authed = False
        await ws.send(json.dumps({"info": "Welcome to the BitMEX Realtime API.", "version": "test"}))
        self.ws_conns.append(ws)
        try:
            async for raw in ws:
                msg = json.loads(raw)
                op, args = msg.get("op"), msg.get("args", [])
                if op == "authKeyExpires":
                    key, expires, sig = args
                    want = hmac.new(self.secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256)
                    if (
                        key != self.api_key
                        or int(expires) < time.time()
                        or not hmac.compare_digest(want.hexdigest(), sig)
                    ):
                        await ws.send(
                            json.dumps({"status": 401, "error": "Signature not valid.", "request": msg})
                        )
                        continue
                    authed = True
                    await ws.send(json.dumps({"success": True, "request": msg}))
                elif op == "subscribe":
                    for topic in args:
                        if not authed:
                            await ws.send(
                                json.dumps(
                                    {
                                        "status": 401,
                                        "error": "User requested an account-locked subscription "
                                        "but no authorization was provided.",
                                        "request": msg,
                                    }
                                )
                            )
                            continue
                        self._subs.setdefault(id(ws), set()).add(topic)
                        await ws.send(json.dumps({"success": True, "subscribe": topic, "request": msg}))
                        if topic == "order":
                            open_rows = [
                                o
                                for o in self.orders.values()
                                if o["ordStatus"] in ("New", "PartiallyFilled")
                            ]
                            await ws.send(
                                json.dumps(
                                    {
                                        "table": "order",
                                        "action": "partial",
                                        "keys": ["orderID"],
                                        "data": open_rows,
                                    }
                                )
                            )
                        elif topic == "execution" and self.send_execution_partial:
                            await ws.send(
                                json.dumps(
                                    {
                                        "table": "execution",
                                        "action": "partial",
                                        "keys": ["execID"],
                                        "data": self.executions[-100:],
                                    }
                                )
                            )
        except Exception:
            pass
        finally:
            if ws in self.ws_conns:
                self.ws_conns.remove(ws)
            self._subs.pop(id(ws), None)


def changed_num(d: Decimal) -> int | float:
    return int(d) if d == int(d) else float(d)
