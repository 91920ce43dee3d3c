"""Order entry round trips over loopback, per venue adapter, beside the paper venue:

- request -> ack: ``await venue.send(NewOrderSingle)`` returns (Binance: the
  WS API response; BitMEX: the REST answer; FIX: handed to the QuickFIX
  session; paper: queued in process);
- request -> report: from the send until the NEW execution report reaches the
  engine side (``engine.report``), over the venue's report path (Binance
  user data stream, BitMEX execution table, FIX ExecutionReport);
- the adapter's own share: encode + sign + decode of one request and one
  report in Python, no I/O (what the adapter adds to each round trip).

The venues are the loopback servers of the tests (tests/venue_servers), run in
this process: the figures include the server's own work, so they are an upper
bound on what the adapter costs, and a floor for a real venue (add the network).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from decimal import Decimal
from typing import Any

from benchkit import median, percentile, size

import exo
from exo.child import ChildOrder
from tests.venue_servers.binance import BinanceServer
from tests.venue_servers.bitmex import BitMEXServer
from tests.venue_servers.fix import FixAcceptor

ROUNDS = size(300, 3)
WARM_UP = size(20, 1)
KEY, SECRET = "bench-key", "bench-secret-0123456789"


class Sink:
    """The engine side: records when each cl_ord_id's first report arrived."""

    def __init__(self) -> None:
        self.first: dict[str, asyncio.Future[float]] = {}

    def expect(self, cl_ord_id: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.first[cl_ord_id] = fut
        return fut

    async def report(self, report: exo.Report) -> bool:
        fut = self.first.get(report.cl_ord_id or "")
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())
        return True

    def report_error(self, order_id: str, message: str) -> None:
        pass


async def _round_trips(
    venue: Any, sink: Sink, symbol: str, qty: str, px: str
) -> tuple[list[float], list[float]]:
    acks, reports = [], []
    for i in range(ROUNDS + WARM_UP):
        req = ChildOrder(f"P{i}", symbol, "BUY", Decimal(qty), price=Decimal(px)).new()
        got = sink.expect(req.cl_ord_id)
        t0 = time.perf_counter()
        await venue.send(req)
        t1 = time.perf_counter()
        t2 = await asyncio.wait_for(got, 10)
        if i >= WARM_UP:
            acks.append((t1 - t0) * 1e6)
            reports.append((t2 - t0) * 1e6)
    return acks, reports


def _row(figures: Any, name: str, acks: list[float], reports: list[float], own_us: float | None) -> None:
    ack = f"{median(acks):.0f} ({percentile(acks, 99):.0f})"
    rep = f"{median(reports):.0f} ({percentile(reports, 99):.0f})"
    figures(
        f"order entry {name}: request->ack / request->report p50 (p99), us",
        f"{ack} / {rep}",
        "-",
        "-",
        "report it",
        None,
    )
    if own_us is not None:
        figures(
            f"order entry {name}: adapter's own encode+sign+decode, us",
            f"{own_us:.1f}",
            "-",
            "-",
            "report it",
            None,
        )


def _per_call_us(fn: Any, n: int = size(5_000, 10)) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e6


def test_order_entry_paper(figures: Any) -> None:
    async def main() -> tuple[list[float], list[float]]:
        sink = Sink()
        venue = exo.venues.Paper()
        venue.attach(sink)
        await venue.start()
        try:
            return await _round_trips(venue, sink, "BTC-USD", "0.01", "1000")
        finally:
            await venue.stop()

    acks, reports = asyncio.run(main())
    _row(figures, "paper (in process)", acks, reports, None)


def test_order_entry_binance(figures: Any) -> None:
    from exo.venues.binance import Binance, execution_report, signature_payload
    from exo.venues.credentials import Credentials
    from exo.venues.tracking import Tracked

    creds = Credentials(KEY, secret=SECRET)

    async def main() -> tuple[list[float], list[float]]:
        server = BinanceServer(KEY, secret=SECRET, market={"BTCUSDT": (Decimal("60000"), Decimal("60010"))})
        await server.start()
        sink = Sink()
        venue = Binance(creds, url=server.url, rate_limits=None)
        venue.attach(sink)
        await venue.start()
        try:
            return await _round_trips(venue, sink, "BTCUSDT", "0.01", "1000")
        finally:
            await venue.stop()
            await server.stop()

    acks, reports = asyncio.run(main())
    child = Tracked("P", "BTCUSDT", "BUY", Decimal("0.01"), "c1", Decimal("1000"))
    frame = json.dumps({"subscriptionId": 0, "event": {
        "e": "executionReport", "E": 1, "s": "BTCUSDT", "c": "c1", "S": "BUY", "o": "LIMIT", "f": "GTC",
        "q": "0.01", "p": "1000", "C": "", "x": "NEW", "X": "NEW", "r": "NONE", "i": 1, "l": "0", "z": "0",
        "L": "0", "T": 1, "t": -1, "Z": "0"}})  # fmt: skip

    def own() -> None:
        params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "1000",
                  "quantity": "0.01", "newClientOrderId": "c1", "newOrderRespType": "ACK", "apiKey": KEY,
                  "timestamp": 1, "recvWindow": 5000}  # fmt: skip
        params["signature"] = creds.sign(signature_payload(params))
        json.dumps({"id": 1, "method": "order.place", "params": params})
        status, fields = execution_report(json.loads(frame)["event"], child)
        exo.Report("P", status, **fields)

    _row(figures, "Binance WS API (loopback)", acks, reports, _per_call_us(own))


def test_order_entry_bitmex(figures: Any) -> None:
    from exo.instrument import Instrument
    from exo.venues.bitmex import BitMEX, execution_report, rest_signature
    from exo.venues.credentials import Credentials
    from exo.venues.tracking import Tracked

    creds = Credentials(KEY, secret=SECRET)

    async def main() -> tuple[list[float], list[float]]:
        server = BitMEXServer(
            KEY,
            SECRET,
            market={"XBTUSD": (Decimal("60000"), Decimal("60000.5"))},
            limit=10**6,
            remaining=10**6,
        )
        await server.start()
        sink = Sink()
        venue = BitMEX(
            creds,
            [Instrument("XBTUSD", tick_size=Decimal("0.5"), lot_size=Decimal("100"))],
            rest_url=server.rest_url,
            ws_url=server.ws_url,
            rate_limits=None,
            cancel_all_after=None,
        )
        venue.attach(sink)
        await venue.start()
        try:
            return await _round_trips(venue, sink, "XBTUSD", "100", "1000")
        finally:
            await venue.stop()
            await server.stop()

    acks, reports = asyncio.run(main())
    child = Tracked("P", "XBTUSD", "BUY", Decimal(100), "c1", Decimal(1000))
    frame = json.dumps({"table": "execution", "action": "insert", "data": [{
        "execID": "e1", "orderID": "o1", "clOrdID": "c1", "symbol": "XBTUSD", "side": "Buy", "orderQty": 100,
        "price": 1000, "execType": "New", "ordStatus": "New", "leavesQty": 100, "cumQty": 0, "avgPx": None,
        "transactTime": "2026-01-01T00:00:00.000Z"}]})  # fmt: skip

    def own() -> None:
        order = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "clOrdID": "c1", "ordType": "Limit",
                 "timeInForce": "GoodTillCancel", "price": 1000}  # fmt: skip
        body = json.dumps(order, separators=(",", ":"))
        rest_signature(creds.sign_hmac, "POST", "/api/v1/order", 1, body)
        status, fields = execution_report(json.loads(frame)["data"][0], child, None)
        exo.Report("P", status, **fields)

    _row(figures, "BitMEX REST + websocket (loopback)", acks, reports, _per_call_us(own))


def test_order_entry_fix(figures: Any) -> None:
    import pytest

    qf = pytest.importorskip("quickfix")

    from exo.instrument import Instrument
    from exo.venues.fix import FIX, execution_report, parse

    async def main() -> tuple[list[float], list[float]]:
        acceptor = FixAcceptor()
        await acceptor.start()
        sink = Sink()
        with tempfile.TemporaryDirectory() as store:
            venue = FIX([Instrument("BTC-USD", tick_size=Decimal("0.01"), lot_size=Decimal("0.0001"))],
                        host="127.0.0.1", port=acceptor.port, sender_comp_id="EXO", target_comp_id="VENUE",
                        store_path=store)  # fmt: skip
            venue.attach(sink)
            await venue.start()
            try:
                return await _round_trips(venue, sink, "BTC-USD", "0.01", "1000")
            finally:
                await venue.stop()
                await acceptor.stop()

    acks, reports = asyncio.run(main())
    raw = ("8=FIX.4.4\x019=200\x0135=8\x0149=VENUE\x0156=EXO\x0134=2\x0152=20260101-00:00:00.000\x0137=O1\x01"
           "11=c1\x0117=E1\x01150=0\x0139=0\x0155=BTC-USD\x0154=1\x0138=0.01\x0144=1000\x01151=0.01\x0114=0\x01"
           "6=0\x0160=20260101-00:00:00.000\x0110=000\x01")  # fmt: skip

    def own() -> None:
        m = qf.Message()
        m.getHeader().setField(35, "D")
        for tag, value in ((11, "c1"), (55, "BTC-USD"), (54, "1"), (38, "0.01"), (40, "2"), (44, "1000"),
                           (59, "1"), (60, "20260101-00:00:00.000")):  # fmt: skip
            m.setField(tag, value)
        m.toString()
        status, fields = execution_report(parse(raw))
        exo.Report("P", status, **{k: v for k, v in fields.items() if v is not None})

    _row(figures, "FIX 4.4 on QuickFIX (loopback)", acks, reports, _per_call_us(own))
