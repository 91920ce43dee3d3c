"""exo.venues.BitMEX against a loopback BitMEX (tests/venue_servers/bitmex.py):
REST order entry with signatures and expiry checked, the authenticated
websocket's order/execution tables, reconciliation over REST, 429 handling and
the cancelAllAfter dead-man switch. Reports are applied to real ChildOrders."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from exo.instrument import Instrument
from exo.venues import Credentials, RateLimited
from exo.venues.bitmex import BitMEX, rest_signature
from tests.venue_servers.bitmex import BitMEXServer
from tests.venue_servers.reports import Reports, exec_type, status_is
from tests.venue_servers.requests import cancel_unknown, child

KEY, SECRET = "LAqUlngMIQkIUjXMUreyu3qn", "chNOOS4KvNXR_Xq4k4c9qsfoKWvnDecLATCRlcBwyKDYnWgO"
MARKET = {"XBTUSD": (Decimal("60000"), Decimal("60000.5"))}
INSTRUMENTS = [Instrument("XBTUSD", tick_size=Decimal("0.5"), lot_size=Decimal("100"))]


def test_rest_signature_matches_the_venue_docs_example() -> None:
    # BitMEX API docs ("Authenticating with an API key"), the POST example.
    body = '{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA","orderQty":98}'
    sig = rest_signature(Credentials(KEY, secret=SECRET).sign_hmac, "POST", "/api/v1/order", 1518064238, body)
    assert sig == "1749cd2ccae4aa49048ae09f0b95110cee706e0944e6a14ad0b3a8cb45bd336b"


@pytest.fixture
async def server() -> AsyncIterator[BitMEXServer]:
    s = BitMEXServer(KEY, SECRET, market=dict(MARKET))
    await s.start()
    yield s
    await s.stop()


def make(server: BitMEXServer, secret: str = SECRET, **options: object) -> tuple[BitMEX, Reports]:
    reports = Reports()
    v = BitMEX(
        Credentials(KEY, secret=secret),
        INSTRUMENTS,
        rest_url=server.rest_url,
        ws_url=server.ws_url,
        reconnect_delay=0.05,
        request_timeout=2.0,
        **options,
    )  # type: ignore[arg-type]
    v.attach(reports)
    return v, reports


@pytest.fixture
async def venue(server: BitMEXServer) -> AsyncIterator[tuple[BitMEX, Reports]]:
    v, reports = make(server)
    await v.start()
    yield v, reports
    await v.stop()


async def test_ioc_limit_fills_with_execution_ids_from_the_venue(
    venue: tuple[BitMEX, Reports], server: BitMEXServer
) -> None:
    v, reports = venue
    c = reports.follow(child("XBTUSD", "BUY", "300", "60000.5", "IOC"))
    req = c.new()
    assert await v.send(req) is True
    fill = await reports.wait_for(status_is("FILLED"))
    assert (fill.last_qty, fill.last_px, fill.cum_qty, fill.leaves_qty) == (
        Decimal(300),
        Decimal("60000.5"),
        Decimal(300),
        Decimal(0),
    )
    trade = next(e for e in server.executions if e["execType"] == "Trade")
    assert fill.exec_id == trade["execID"] and fill.secondary_order_id == trade["orderID"]
    assert [exec_type(r) for r in reports] == ["NEW", "TRADE"]
    assert c.cum_qty == server.filled_qty() == reports.filled()
    assert ("POST", "/api/v1/order") in server.calls


async def test_gtc_rest_partial_fill_then_cancel(venue: tuple[BitMEX, Reports], server: BitMEXServer) -> None:
    v, reports = venue
    c = child("XBTUSD", "SELL", "500", "61000")
    req = await reports.rest(v, c)
    await server.fill(req.cl_ord_id, Decimal(200))
    await reports.wait_for(status_is("PARTIALLY_FILLED"))
    x = c.cancel()
    await v.send(x)
    canceled = await reports.wait_for(status_is("CANCELED"))
    assert canceled.cl_ord_id == x.cl_ord_id and canceled.orig_cl_ord_id == req.cl_ord_id
    assert canceled.cum_qty == Decimal(200) and canceled.leaves_qty == 0
    assert c.ord_status is not None and c.ord_status.name == "CANCELED"


async def test_amend_reports_replaced_with_new_cl_ord_id(
    venue: tuple[BitMEX, Reports], server: BitMEXServer
) -> None:
    v, reports = venue
    c = child("XBTUSD", "BUY", "500", "59000")
    req = await reports.rest(v, c)
    rep = c.replace(Decimal(800), Decimal("59500"))
    await v.send(rep)
    replaced = await reports.wait_for(lambda r: exec_type(r) == "REPLACED")
    assert replaced.cl_ord_id == rep.cl_ord_id and replaced.orig_cl_ord_id == req.cl_ord_id
    assert (replaced.order_qty, replaced.price) == (Decimal(800), Decimal("59500"))
    assert c.order_qty == Decimal(800) and c.cl_ord_id == rep.cl_ord_id
    await server.fill(rep.cl_ord_id, Decimal(800))
    await reports.wait_for(status_is("FILLED"))
    assert c.cum_qty == 800


async def test_amend_of_a_filled_order_is_a_cancel_reject(
    venue: tuple[BitMEX, Reports], server: BitMEXServer
) -> None:
    v, reports = venue
    c = child("XBTUSD", "BUY", "500", "59000")
    req = await reports.rest(v, c)
    rep = c.replace(Decimal(800), Decimal("59500"))
    await server.fill(req.cl_ord_id, Decimal(500))  # fills before the amend arrives
    await v.send(rep)
    rej = await reports.wait_for(lambda r: r.cxl_rej_response_to is not None)
    assert rej.cxl_rej_response_to is not None and rej.cxl_rej_response_to.name == "REPLACE"
    assert rej.text == "Invalid ordStatus"
    assert c.ord_status is not None and c.ord_status.name == "FILLED" and c.pending is None


async def test_cancel_too_late_is_rejected_and_the_fill_stands(
    venue: tuple[BitMEX, Reports], server: BitMEXServer
) -> None:
    v, reports = venue
    c = child("XBTUSD", "BUY", "500", "59000")
    req = await reports.rest(v, c)
    x = c.cancel()
    await server.fill(req.cl_ord_id, Decimal(500))
    await v.send(x)
    rej = await reports.wait_for(lambda r: r.cxl_rej_response_to is not None)
    assert rej.text == "Unable to cancel order due to existing state: Filled"
    assert not reports.status("CANCELED") and c.ord_status is not None and c.ord_status.name == "FILLED"


async def test_cancel_unknown_order_is_a_cancel_reject(venue: tuple[BitMEX, Reports]) -> None:
    v, reports = venue
    rej = await reports.cancel_rejected(v, cancel_unknown("XBTUSD", "SELL", order_id="P7"))
    assert rej.text == "unknown order"  # refused before sending: the adapter does not know it


async def test_sparse_order_updates_are_merged_by_key(
    venue: tuple[BitMEX, Reports], server: BitMEXServer
) -> None:
    v, reports = venue
    c = child("XBTUSD", "BUY", "500", "59000")
    req = await reports.place(v, c)
    await server.fill(req.cl_ord_id, Decimal(100))
    await reports.wait_for(status_is("PARTIALLY_FILLED"))
    await v.send(c.cancel())
    await reports.wait_for(status_is("CANCELED"))
    [row] = [r for r in v.orders() if r.get("clOrdID") == req.cl_ord_id]
    # Fields from the insert survive the sparse updates; the updates' fields are applied.
    assert (row["side"], row["orderQty"], row["price"]) == ("Buy", 500, 59000)
    assert (row["ordStatus"], row["cumQty"], row["leavesQty"]) == ("Canceled", 100, 0)


async def test_missing_execution_partial_fills_are_recovered_over_rest(server: BitMEXServer) -> None:
    v, reports = make(server)
    await v.start()
    try:
        c = child("XBTUSD", "BUY", "600", "59000")
        req = await reports.rest(v, c)
        server.send_execution_partial = False
        await server.disconnect()
        await server.fill(req.cl_ord_id, Decimal(200))  # while disconnected
        await server.fill(req.cl_ord_id, Decimal(400))
        await reports.wait_for(status_is("FILLED"))
        assert server.ws_connections == 2
        assert any(path.startswith("/api/v1/execution/tradeHistory") for _, path in server.calls)
        assert reports.filled() == server.filled_qty() == c.cum_qty == 600
        assert len({r.exec_id for r in reports if r.exec_id}) == len([r for r in reports if r.exec_id])
    finally:
        await v.stop()


async def test_execution_partial_replays_missed_fills_once(server: BitMEXServer) -> None:
    v, reports = make(server)
    await v.start()
    try:
        c = child("XBTUSD", "SELL", "300", "61000")
        req = await reports.place(v, c)
        await server.fill(req.cl_ord_id, Decimal(100))
        await reports.wait_for(status_is("PARTIALLY_FILLED"))
        await server.disconnect()
        await server.fill(req.cl_ord_id, Decimal(200))
        await reports.wait_for(status_is("FILLED"))
        assert reports.filled() == server.filled_qty() == 300
        fills = [r.exec_id for r in reports if r.last_qty]
        assert len(fills) == len(set(fills)) == 2
    finally:
        await v.stop()


async def test_503_is_status_unknown_and_the_order_is_found(
    venue: tuple[BitMEX, Reports], server: BitMEXServer
) -> None:
    v, reports = venue
    server.unavailable = 1  # takes the order, answers 503
    c = reports.follow(child("XBTUSD", "BUY", "100", "59000"))
    assert await v.send(c.new()) is False
    await reports.wait_for(status_is("NEW"))
    assert not reports.status("REJECTED")
    assert c.ord_status is not None and c.ord_status.name == "NEW" and c.pending is None


async def test_429_refuses_further_requests_until_retry_after(
    venue: tuple[BitMEX, Reports], server: BitMEXServer
) -> None:
    v, reports = venue
    server.throttle, server.retry_after = 1, 30
    c = reports.follow(child("XBTUSD", "BUY", "100", "59000"))
    req = c.new()
    with pytest.raises(RateLimited, match="429"):
        await v.send(req)
    calls = len(server.calls) + len(server.refused)
    with pytest.raises(RateLimited, match="rate limited by the venue"):
        await v.send(child("XBTUSD", "BUY", "100", "59000").new())
    assert len(server.calls) + len(server.refused) == calls  # nothing more was sent
    assert v.rate_limit["limit"] == 120


async def test_exhausted_rate_limit_window_stops_sending_until_reset(
    venue: tuple[BitMEX, Reports], server: BitMEXServer
) -> None:
    v, _ = venue
    server.remaining = 1  # this call uses the last request of the window
    await v.send(child("XBTUSD", "BUY", "100", "59000").new())
    assert v.rate_limit["remaining"] == 0
    sent = len(server.calls)
    with pytest.raises(RateLimited, match="rate limited by the venue"):
        await v.send(child("XBTUSD", "BUY", "100", "59000").new())
    assert len(server.calls) == sent


async def test_request_past_its_expiry_is_refused_by_the_venue_and_rejected(
    venue: tuple[BitMEX, Reports], server: BitMEXServer
) -> None:
    v, reports = venue
    v._expires_in = -5  # as a clock 5 s + behind would sign
    c = reports.follow(child("XBTUSD", "BUY", "100", "59000"))
    await v.send(c.new())
    rej = await reports.wait_for(status_is("REJECTED"))
    assert rej.text == "HTTP 401: This request has expired - `expires` is in the past."
    assert not server.orders


async def test_dead_man_switch_is_kept_alive_and_disarmed_on_stop(server: BitMEXServer) -> None:
    v, reports = make(server, cancel_all_after=0.2)
    await v.start()
    c = child("XBTUSD", "BUY", "100", "59000")
    await reports.rest(v, c)
    while server.dead_man_calls < 4:  # refreshed every timeout / 4
        await asyncio.sleep(0.05)
    assert server.orders and all(o["ordStatus"] == "New" for o in server.orders.values())
    await v.stop()
    assert server.dead_man_timeout_ms == 0  # disarmed


async def test_dead_man_switch_cancels_orders_when_the_engine_vanishes(server: BitMEXServer) -> None:
    v, reports = make(server, cancel_all_after=0.2)
    await v.start()
    c = child("XBTUSD", "BUY", "100", "59000")
    await reports.rest(v, c)
    assert v._dead_man_task is not None
    v._dead_man_task.cancel()  # the engine stops refreshing (as if killed)
    o = next(iter(server.orders.values()))
    while o["ordStatus"] != "Canceled":
        await asyncio.sleep(0.05)
    assert o["text"] == "Canceled: Cancel all after timeout"
    v._dead_man = None  # do not disarm: the switch already fired
    await v.stop()


async def test_secret_never_appears_in_logs_or_errors(
    server: BitMEXServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-do-not-print-abcdef"
    v, _ = make(server, secret=wrong)
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(v.start(), 5)
    await v.stop()
    text = caplog.text + str(info.value) + repr(info.value) + repr(v._creds)
    assert wrong not in text and "do-not-print" not in text


async def test_instruments_are_loaded_from_the_venue_when_not_given(server: BitMEXServer) -> None:
    reports = Reports()
    v = BitMEX(Credentials(KEY, secret=SECRET), rest_url=server.rest_url, ws_url=server.ws_url)
    v.attach(reports)
    await v.start()
    try:
        inst = v.instrument("XBTUSD")
        assert (inst.tick_size, inst.lot_size, inst.min_qty) == (Decimal("0.5"), Decimal(100), Decimal(100))
    finally:
        await v.stop()


def test_testnet_selects_the_testnet_endpoints() -> None:
    v = BitMEX(Credentials(KEY, secret=SECRET), INSTRUMENTS, testnet=True)
    assert (v.rest_url, v.ws_url) == (
        "https://testnet.bitmex.com/api/v1",
        "wss://ws.testnet.bitmex.com/realtime",
    )
