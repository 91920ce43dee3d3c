"""BitMEX order entry: REST for requests, the authenticated websocket for
execution reports, REST again for reconciliation.

Protocol (BitMEX API docs, "API keys" / "Websocket API"; VENUES.md):

- REST ``/api/v1``: ``POST /order`` (symbol, side Buy|Sell, orderQty, price,
  ordType, timeInForce, execInst, clOrdID), ``PUT /order`` amend
  (origClOrdID, new clOrdID, orderQty, price), ``DELETE /order`` (clOrdID),
  ``POST /order/cancelAllAfter`` (dead-man switch); headers ``api-expires``
  (unix s), ``api-key``, ``api-signature`` = hex(HMAC-SHA256(secret, verb +
  path with ``/api/v1`` and query + expires + body));
- every response carries ``x-ratelimit-limit/-remaining/-reset``; a 429 gives
  ``Retry-After`` (s) and continuing earns a ban: the adapter refuses to send
  (``RateLimited``) until the reset, and when ``remaining`` hits 0;
- websocket ``/realtime``: ``{"op":"authKeyExpires","args":[key, expires,
  hex(HMAC(secret, "GET/realtime" + expires))]}``, subscribe ``order`` and
  ``execution``; frames ``{table, action: partial|insert|update|delete,
  data}``; update rows carry only the changed fields and are merged by the
  table's keys (``orderID``; ``execID``).

Reports come from ``execution`` rows (execType New, Trade, Canceled,
Replaced, Rejected, Expired, CancelReject, ...; exec_id = execID). The
``execution`` partial can be missing (VENUES.md): after every (re)connect the
adapter reconciles over REST (``GET /order`` for live children, ``GET
/execution/tradeHistory`` for their fills), delivering what the stream missed
with the same execIDs, so nothing is applied twice.

A 5xx, a timeout or a dropped connection is "status unknown" (BitMEX 503
"overloaded" included: the docs say the order may or may not be placed): the
child stays in flight and is queried.

Dead-man switch: with ``cancel_all_after`` (s, default 60) the adapter calls
``cancelAllAfter`` every ``cancel_all_after / 4`` s while it runs, so if the
engine vanishes the venue cancels every open order of the account within
that time; ``stop()`` disarms it (timeout 0). None leaves it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from websockets.asyncio.client import ClientConnection

from exo.child import NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest, Request
from exo.instrument import Instrument, InstrumentStatus
from exo.venues.base import RateLimited
from exo.venues.credentials import Credentials
from exo.venues.tracking import Tracked, dispatch
from exo.venues.websocket import WebSocketVenue, stop_task

__all__ = [
    "LIVE_REST",
    "LIVE_WS",
    "TESTNET_REST",
    "TESTNET_WS",
    "BitMEX",
    "BitMEXError",
    "execution_report",
    "rest_signature",
]

log = logging.getLogger(__name__)

LIVE_REST = "https://www.bitmex.com/api/v1"
TESTNET_REST = "https://testnet.bitmex.com/api/v1"
LIVE_WS = "wss://ws.bitmex.com/realtime"
TESTNET_WS = "wss://ws.testnet.bitmex.com/realtime"

_TIF = {
    "GTC": "GoodTillCancel",
    "IOC": "ImmediateOrCancel",
    "FOK": "FillOrKill",
    "POST_ONLY": "GoodTillCancel",
}
_CLOSED = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED"})


class BitMEXError(RuntimeError):
    """A request the venue refused: HTTP status and the venue's error message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"BitMEX HTTP {status}: {message}")
        self.status = status
        self.message = message


class StatusUnknown(ConnectionError):
    """5xx, timeout or connection lost: the venue may have acted."""


def rest_signature(secret_sign: Any, verb: str, path: str, expires: int, body: str) -> str:
    """``secret_sign(verb + path + str(expires) + body)``: path includes
    ``/api/v1`` and the query string."""
    return str(secret_sign(f"{verb}{path}{expires}{body}"))


def _snake(camel: str) -> str:
    """BitMEX's ``PartiallyFilled`` -> ``PARTIALLY_FILLED``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).upper()


def _status_name(ord_status: str) -> str:
    name = _snake(ord_status)
    return {"CANCELLED": "CANCELED"}.get(name, name)


def execution_report(
    row: dict[str, Any], child: Tracked, cancel_id: str | None
) -> tuple[str, dict[str, Any]]:
    """Map one (merged) ``execution`` row to (ord_status, Report fields).

    ``cancel_id``: the exo cancel request in flight for this child, if any:
    BitMEX cancels carry the order's own clOrdID, so a Canceled row is
    reported with the cancel's id as cl_ord_id and the order's as
    orig_cl_ord_id, like FIX.
    """
    exec_type = _snake(row["execType"])
    status = _status_name(row["ordStatus"])
    cum = Decimal(str(row.get("cumQty", 0)))
    order_qty = Decimal(str(row.get("orderQty", child.order_qty)))
    fields: dict[str, Any] = {
        "symbol": row.get("symbol", child.symbol),
        "side": (row.get("side") or child.side).upper(),
        "secondary_order_id": row.get("orderID"),
        "cl_ord_id": row.get("clOrdID") or child.cl_ord_id,
        "exec_id": row["execID"],
        "exec_type": {"CANCEL_REJECT": None}.get(exec_type, exec_type),
        "transact_time": row.get("transactTime"),
        "cum_qty": cum,
        "leaves_qty": Decimal(0)
        if status in _CLOSED
        else Decimal(str(row.get("leavesQty", order_qty - cum))),
        "avg_px": Decimal(str(row["avgPx"])) if row.get("avgPx") else None,
        "order_qty": order_qty,
        "price": Decimal(str(row["price"])) if row.get("price") else None,
    }
    if exec_type == "TRADE":
        fields.update(last_qty=Decimal(str(row["lastQty"])), last_px=Decimal(str(row["lastPx"])))
    if exec_type == "REPLACED" and row.get("origClOrdID"):
        fields["orig_cl_ord_id"] = row["origClOrdID"]
    if exec_type == "CANCELED" and cancel_id is not None:
        fields.update(cl_ord_id=cancel_id, orig_cl_ord_id=row.get("clOrdID") or child.cl_ord_id)
    if row.get("text"):
        fields["text"] = row["text"]
    return status, fields


def instruments_from_rows(rows: Iterable[dict[str, Any]]) -> list[Instrument]:
    """Instruments from BitMEX ``instrument`` rows: tickSize, lotSize (also
    the minimum quantity); state Open is trading."""
    out = []
    for row in rows:
        if not row.get("tickSize") or not row.get("lotSize"):
            continue
        lot = Decimal(str(row["lotSize"]))
        out.append(
            Instrument(
                row["symbol"],
                tick_size=Decimal(str(row["tickSize"])),
                lot_size=lot,
                min_qty=lot,
                status=InstrumentStatus.TRADING if row.get("state") == "Open" else InstrumentStatus.HALTED,
            )
        )
    return out


class _Table:
    """One websocket table: rows by key, partial replaces, insert adds,
    update merges the changed fields, delete removes."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.has_partial = False

    def key(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row.get(k) for k in self.keys)

    def apply(self, action: str, msg: dict[str, Any]) -> list[dict[str, Any]]:
        """Apply one frame; return the merged rows it touched."""
        data: list[dict[str, Any]] = msg.get("data", [])
        if action == "partial":
            self.keys = list(msg.get("keys", []))
            self.rows = {self.key(r): dict(r) for r in data}
            self.has_partial = True
            return list(self.rows.values())
        out = []
        for row in data:
            k = self.key(row)
            if action == "insert":
                self.rows[k] = dict(row)
                out.append(self.rows[k])
            elif action == "update":
                merged = self.rows.setdefault(k, {})
                merged.update(row)
                out.append(dict(merged))
            elif action == "delete":
                self.rows.pop(k, None)
        return out


class BitMEX(WebSocketVenue):
    """BitMEX order entry for child orders (module doc).

    ``BitMEX(Credentials.from_env("EXO_BITMEX"), instruments, testnet=True)``;
    ``attach(engine)``, ``await start()`` (websocket authenticated and
    subscribed, dead-man switch armed, reconciled), ``await send(request)``
    (returns when the REST call answered), ``await stop()`` (disarms the
    dead-man switch; orders stay).

    ``rate_limits``: client-side windows in ``limits`` notation (default
    ``"10/second;120/minute"``, BitMEX's order-route and REST limits);
    ``expires_in`` (s): how long a signed request stays valid.
    """

    def __init__(
        self,
        credentials: Credentials,
        instruments: Iterable[Instrument] | None = None,
        *,
        name: str = "bitmex",
        testnet: bool = False,
        rest_url: str | None = None,
        ws_url: str | None = None,
        rate_limits: str | None = "10/second;120/minute",
        request_timeout: float = 10.0,
        expires_in: int = 10,
        cancel_all_after: float | None = 60.0,
        reconnect_delay: float = 0.5,
        **options: Any,
    ) -> None:
        super().__init__(
            name,
            instruments or (),
            rate_limits=rate_limits,
            request_timeout=request_timeout,
            reconnect_delay=reconnect_delay,
            **options,
        )
        self._load_instruments: bool = instruments is None
        if credentials.kind != "hmac":
            raise ValueError("BitMEX keys are HMAC (api key + secret)")
        self.rest_url = (rest_url or (TESTNET_REST if testnet else LIVE_REST)).rstrip("/")
        self.ws_url = ws_url or (TESTNET_WS if testnet else LIVE_WS)
        self._prefix = urlsplit(self.rest_url).path  # "/api/v1"
        self._creds = credentials
        self._expires_in = expires_in
        self._dead_man = cancel_all_after
        self._http: httpx.AsyncClient | None = None
        self._dead_man_task: asyncio.Task[None] | None = None
        self._tables: dict[str, _Table] = {}
        self._canceling: dict[str, str] = {}  # order's clOrdID -> exo cancel cl_ord_id in flight
        self.rate_limit: dict[str, int] = {}
        """The last x-ratelimit-* headers seen: limit, remaining, reset (unix s)."""
        self.dead_man_calls = 0

    # ---- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Load the instruments (``GET /instrument/active``) unless given,
        connect and authenticate the websocket, reconcile, arm the dead-man
        switch. Raises BitMEXError if the venue refuses the key."""
        self._http = httpx.AsyncClient(timeout=self._request_timeout)
        if self._load_instruments:
            rows = await self._rest("GET", "/instrument/active")
            self._instruments = {i.symbol: i for i in instruments_from_rows(rows or [])}
            self._load_instruments = False
        await self._connect(self.ws_url)
        if self._dead_man:
            await self._cancel_all_after(self._dead_man)
            self._dead_man_task = asyncio.create_task(self._keep_dead_man(), name=f"exo-{self.name}-deadman")

    async def stop(self) -> None:
        """Disarm the dead-man switch, close the websocket and HTTP client."""
        await stop_task(self._dead_man_task)
        await super().stop()
        if self._dead_man and self._http is not None:
            with contextlib.suppress(Exception):
                await self._cancel_all_after(0)
        if self._http is not None:
            await self._http.aclose()

    async def _keep_dead_man(self) -> None:
        assert self._dead_man
        while True:
            await asyncio.sleep(self._dead_man / 4)
            try:
                await self._cancel_all_after(self._dead_man)
            except (BitMEXError, ConnectionError, RateLimited) as exc:
                log.warning("%s: cancelAllAfter refresh failed (%s)", self.name, exc)

    async def _cancel_all_after(self, seconds: float) -> None:
        await self._rest("POST", "/order/cancelAllAfter", {"timeout": int(seconds * 1000)})
        self.dead_man_calls += 1

    # ---- REST ------------------------------------------------------------------

    def _headers(self, verb: str, path: str, body: str) -> dict[str, str]:
        expires = int(time.time()) + self._expires_in
        return {
            "api-expires": str(expires),
            "api-key": self._creds.api_key,
            "api-signature": rest_signature(self._creds.sign_hmac, verb, path, expires, body),
            "content-type": "application/json",
            "accept": "application/json",
        }

    async def _rest(self, verb: str, route: str, params: dict[str, Any] | None = None) -> Any:
        """One signed call. Raises RateLimited (not sent: blocked after a 429
        or an exhausted window), BitMEXError (4xx), StatusUnknown (5xx,
        timeout, connection)."""
        if self._http is None:
            raise StatusUnknown("not started")
        self._refuse_while_blocked()
        path = self._prefix + route
        body = ""
        if verb == "GET" and params:
            path += "?" + urlencode(params)
        elif params is not None:
            body = json.dumps(params, separators=(",", ":"))
        url = self.rest_url[: -len(self._prefix)] + path if self._prefix else self.rest_url + path
        try:
            resp = await self._http.request(
                verb, url, content=body or None, headers=self._headers(verb, path, body)
            )
        except httpx.TimeoutException:
            raise StatusUnknown(f"{verb} {route}: no response in {self._request_timeout} s") from None
        except httpx.TransportError as exc:
            raise StatusUnknown(f"{verb} {route}: {type(exc).__name__}") from None
        self._note_limits(resp)
        if resp.status_code == 429:
            retry = float(resp.headers.get("retry-after", "1"))
            self._block_until(time.time() + retry)
            raise RateLimited(f"{self.name}: HTTP 429 from the venue; retry after {retry:g} s")
        if resp.status_code >= 500:
            raise StatusUnknown(f"{verb} {route}: HTTP {resp.status_code}")
        data = resp.json() if resp.content else None
        if resp.status_code >= 400:
            err = data.get("error", {}) if isinstance(data, dict) else {}
            raise BitMEXError(resp.status_code, str(err.get("message") or resp.reason_phrase))
        return data

    def _note_limits(self, resp: httpx.Response) -> None:
        h = resp.headers
        try:
            self.rate_limit = {
                k: int(h[f"x-ratelimit-{k}"])
                for k in ("limit", "remaining", "reset")
                if f"x-ratelimit-{k}" in h
            }
        except ValueError:
            return
        if self.rate_limit.get("remaining") == 0 and "reset" in self.rate_limit:
            self._block_until(float(self.rate_limit["reset"]))

    # ---- requests --------------------------------------------------------------

    async def _transmit(self, request: Request) -> None:
        await dispatch(request, self._place, self._cancel, self._amend)

    async def _place(self, req: NewOrderSingle) -> None:
        child = self.tracker.get(req.cl_ord_id) or self.tracker.add(Tracked.of(req))
        params: dict[str, Any] = {
            "symbol": req.symbol,
            "side": "Buy" if req.side.name == "BUY" else "Sell",
            "orderQty": _num(req.order_qty),
            "clOrdID": req.cl_ord_id,
            "ordType": "Limit" if req.ord_type.value == "LIMIT" else "Market",
            "timeInForce": _TIF[req.time_in_force.value],
        }
        if req.price is not None:
            params["price"] = _num(req.price)
        if req.time_in_force.value == "POST_ONLY":
            params["execInst"] = "ParticipateDoNotInitiate"
        try:
            row = await self._rest("POST", "/order", params)
        except BitMEXError as exc:
            status, fields = child.report(
                "REJECTED", "REJECTED", f"{req.cl_ord_id}-REJECTED", text=f"HTTP {exc.status}: {exc.message}"
            )
            await self._emit(status, fields, child)
            return
        if isinstance(row, dict) and row.get("orderID"):
            child.secondary_order_id = row["orderID"]

    async def _cancel(self, req: OrderCancelRequest) -> None:
        child = await self._child_to_amend(req)
        if child is None:
            return
        self._canceling[child.cl_ord_id] = req.cl_ord_id
        try:
            rows = await self._rest("DELETE", "/order", {"clOrdID": child.cl_ord_id})
        except BitMEXError as exc:
            self._canceling.pop(child.cl_ord_id, None)
            await self._cancel_reject(req, child, exc.message)
            return
        for row in rows if isinstance(rows, list) else []:
            if row.get("error"):  # e.g. "Unable to cancel order due to existing state: Filled"
                self._canceling.pop(child.cl_ord_id, None)
                await self._cancel_reject(req, child, row["error"])

    async def _amend(self, req: OrderCancelReplaceRequest) -> None:
        child = await self._child_to_amend(req)
        if child is None:
            return
        params: dict[str, Any] = {"origClOrdID": child.cl_ord_id, "clOrdID": req.cl_ord_id}
        params["orderQty"] = _num(req.order_qty)
        if req.price is not None:
            params["price"] = _num(req.price)
        try:
            await self._rest("PUT", "/order", params)
        except BitMEXError as exc:
            # Amending a finished order is a 400 (VENUES.md).
            await self._cancel_reject(req, child, exc.message)

    # ---- websocket -------------------------------------------------------------

    async def _open_session(self, ws: ClientConnection) -> None:
        """Authenticate, then subscribe ``order`` and ``execution`` (tables anew)."""
        self._tables = {"order": _Table(), "execution": _Table()}
        expires = int(time.time()) + self._expires_in
        sig = self._creds.sign_hmac(f"GET/realtime{expires}")
        await ws.send(json.dumps({"op": "authKeyExpires", "args": [self._creds.api_key, expires, sig]}))
        while True:  # the welcome message ({"info": ...}) comes first
            reply = json.loads(await asyncio.wait_for(ws.recv(), self._request_timeout))
            if "success" in reply or "error" in reply:
                break
        if not reply.get("success"):
            raise BitMEXError(401, str(reply.get("error", "websocket authentication failed")))
        await ws.send(json.dumps({"op": "subscribe", "args": ["order", "execution"]}))

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            table = self._tables.get(msg.get("table", ""))
            if table is None:
                if "error" in msg:
                    log.warning("%s: websocket error: %s", self.name, msg["error"])
                continue
            action = msg.get("action", "")
            if action != "partial" and not table.has_partial:
                # Rows before the partial would be merged into nothing (BitMEX docs).
                table.keys = table.keys or (["execID"] if msg["table"] == "execution" else ["orderID"])
            rows = table.apply(action, msg)
            if msg["table"] == "execution" and action in ("insert", "update", "partial"):
                for row in rows:
                    await self._on_execution(row)

    def orders(self) -> list[dict[str, Any]]:
        """The ``order`` table as merged from the websocket (partial, inserts
        and sparse updates), one dict per order."""
        table = self._tables.get("order")
        return [dict(r) for r in table.rows.values()] if table else []

    # ---- reports ---------------------------------------------------------------

    def _keep_in_step(self, child: Tracked, fields: dict[str, Any]) -> None:
        """cum as the venue reports it; the notional sums the fills (last_qty x last_px)."""
        if fields.get("cum_qty") is not None:
            child.cum_qty = fields["cum_qty"]
        if fields.get("last_qty"):
            child.notional += fields["last_qty"] * fields["last_px"]

    async def _on_execution(self, row: dict[str, Any]) -> None:
        if "execType" not in row or "execID" not in row:
            return
        child = self.tracker.get(row.get("clOrdID")) or (
            self.tracker.by_secondary(row["orderID"]) if row.get("orderID") else None
        )
        if child is None:
            return
        if row.get("orderID"):
            child.secondary_order_id = row["orderID"]
        exec_type = _snake(row["execType"])
        if exec_type in ("FUNDING", "SETTLEMENT", "INSURANCE"):
            return
        if exec_type == "CANCEL_REJECT":
            return  # the REST answer already reported it
        cancel_id = self._canceling.pop(child.cl_ord_id, None) if exec_type == "CANCELED" else None
        status, fields = execution_report(row, child, cancel_id)
        if exec_type == "REPLACED" and row.get("clOrdID"):
            child.cl_ord_id = row["clOrdID"]
            child.order_qty = fields["order_qty"]
            child.price = fields["price"]
        await self._emit(status, fields, child)

    # ---- reconciliation (VenueBase hooks) --------------------------------------

    async def _open_orders(self, symbol: str) -> list[tuple[str | None, dict[str, Any], str]]:
        rows = await self._rest("GET", "/order", {"symbol": symbol, "filter": json.dumps({"open": True})})
        return [
            (r.get("clOrdID"), r, _status_name(r["ordStatus"]))
            for r in (rows if isinstance(rows, list) else [])
        ]

    async def _ask_about(self, child: Tracked) -> None:
        rows = await self._rest(
            "GET", "/order", {"symbol": child.symbol, "filter": json.dumps({"clOrdID": child.cl_ord_id})}
        )
        if not rows:
            if child.ord_status is None:
                status, fields = child.report(
                    "REJECTED",
                    "REJECTED",
                    f"{child.cl_ord_id}-REJECTED",
                    text="the order never reached the venue",
                )
                await self._emit(status, fields, child)
            return
        await self._mend(child, rows[0])
        status = _status_name(rows[0]["ordStatus"])
        if status in ("CANCELED", "EXPIRED", "REJECTED") and child.live:
            st, fields = child.report(
                status, status, f"{rows[0]['orderID']}-{status}", text=rows[0].get("text")
            )
            await self._emit(st, fields, child)

    async def _mend(self, child: Tracked, row: dict[str, Any]) -> None:
        """Deliver the fills of ``row``'s order beyond what was handed on,
        from tradeHistory (same execIDs as the stream)."""
        child.secondary_order_id = row.get("orderID") or child.secondary_order_id
        if child.ord_status is None:
            status, fields = child.report("NEW", "NEW", f"{row['orderID']}-NEW")
            await self._emit(status, fields, child)
        if Decimal(str(row.get("cumQty", 0))) <= child.cum_qty:
            return
        fills = await self._rest(
            "GET",
            "/execution/tradeHistory",
            {"filter": json.dumps({"orderID": row["orderID"]}), "reverse": "false"},
        )
        for f in fills if isinstance(fills, list) else []:
            if self.tracker.handed_on(f["execID"]):
                continue
            status, fields = execution_report(f, child, None)
            await self._emit(status, fields, child)


def _num(d: Decimal) -> int | float | str:
    """BitMEX takes JSON numbers: integral quantities as ints, prices as the
    shortest exact decimal text parsed by the venue as a double."""
    if d == d.to_integral_value():
        return int(d)
    return float(d)
