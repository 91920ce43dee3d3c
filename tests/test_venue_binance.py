"""exo.venues.Binance against a loopback Binance WebSocket API server
(tests/venue_servers/binance.py) that checks every signature as the venue does.
Reports go to a sink that applies each to its exo.ChildOrder, so every report
must also obey ChildOrder's rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from exo.venues import Binance, Credentials, RateLimited
from exo.venues.binance import BinanceError, signature_payload
from tests.venue_servers.binance import BinanceServer
from tests.venue_servers.reports import Reports, exec_type, status_is
from tests.venue_servers.requests import cancel_unknown, child

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
MARKET = {"BTCUSDT": (Decimal("60000"), Decimal("60010"))}


def test_signature_payload_and_hmac_match_the_venue_docs_example() -> None:
    # The signed order.place example of Binance's WebSocket API docs ("SIGNED request example (HMAC)").
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "newOrderRespType": "ACK",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": KEY,
    }
    payload = signature_payload(params)
    assert payload.startswith(
        "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&newOrderRespType=ACK"
    )
    sig = Credentials(KEY, secret=SECRET).sign_hmac(payload)
    assert sig == "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"


@pytest.fixture
async def hmac_server() -> AsyncIterator[BinanceServer]:
    server = BinanceServer(KEY, secret=SECRET, market=dict(MARKET))
    await server.start()
    yield server
    await server.stop()


def make(
    server: BinanceServer, creds: Credentials | None = None, **options: object
) -> tuple[Binance, Reports]:
    reports = Reports()
    options = {"reconnect_delay": 0.05, "request_timeout": 2.0, **options}
    b = Binance(creds or Credentials(KEY, secret=SECRET), url=server.url, **options)  # type: ignore[arg-type]
    b.attach(reports)
    return b, reports


@pytest.fixture
async def venue(hmac_server: BinanceServer) -> AsyncIterator[tuple[Binance, Reports]]:
    b, reports = make(hmac_server)
    await b.start()
    yield b, reports
    await b.stop()


async def test_instruments_are_loaded_from_exchange_info(venue: tuple[Binance, Reports]) -> None:
    b, _ = venue
    inst = b.instrument("BTCUSDT")
    assert (inst.tick_size, inst.lot_size, inst.min_qty, inst.min_notional) == (
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal("0.00001"),
        Decimal("5.00"),
    )


async def test_ioc_order_fills_and_reports_new_then_trade(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    c = reports.follow(child("BTCUSDT", "BUY", "0.5", "60010", "IOC", order_id="P1"))
    req = c.new()
    assert await b.send(req) is True
    fill = await reports.wait_for(status_is("FILLED"))
    assert fill.order_id == "P1" and fill.cl_ord_id == req.cl_ord_id
    assert (fill.last_qty, fill.last_px, fill.cum_qty, fill.leaves_qty) == (
        Decimal("0.5"),
        Decimal("60010"),
        Decimal("0.5"),
        Decimal(0),
    )
    assert fill.avg_px == Decimal("60010")
    venue_order = hmac_server.by_client_id(req.cl_ord_id)
    assert venue_order is not None and fill.secondary_order_id == str(venue_order["orderId"])
    assert [exec_type(r) for r in reports] == ["NEW", "TRADE"]
    assert c.ord_status is not None and c.ord_status.name == "FILLED" and c.cum_qty == Decimal("0.5")
    assert reports.filled() == hmac_server.filled_qty()
    # The request was signed: apiKey + signature on the wire, verified by the server.
    place = next(r for r in hmac_server.requests if r["method"] == "order.place")
    assert place["params"]["apiKey"] == KEY and len(place["params"]["signature"]) == 64


async def test_ioc_order_not_marketable_expires(venue: tuple[Binance, Reports]) -> None:
    b, reports = venue
    c = reports.follow(child("BTCUSDT", "BUY", "0.5", "59000", "IOC"))
    await b.send(c.new())
    expired = await reports.wait_for(status_is("EXPIRED"))
    assert expired.cum_qty == 0 and expired.leaves_qty == 0
    assert c.is_done


async def test_off_tick_price_is_refused_before_sending(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, _ = venue
    from exo.instrument import InstrumentError

    with pytest.raises(InstrumentError):
        await b.send(child("BTCUSDT", "BUY", "0.5", "59000.001").new())
    assert not hmac_server.orders


async def test_gtc_order_rests_then_cancel_reports_cancel_id_and_original_id(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    c = child("BTCUSDT", "BUY", "1", "59000", order_id="P1")
    req = await reports.rest(b, c)
    await hmac_server.fill(req.cl_ord_id, Decimal("0.25"))
    await reports.wait_for(status_is("PARTIALLY_FILLED"))
    x = c.cancel()
    await b.send(x)
    canceled = await reports.wait_for(status_is("CANCELED"))
    # On a CANCELED executionReport `c` is the cancel's id, `C` the original's (nautilus PR #4930).
    assert canceled.cl_ord_id == x.cl_ord_id and canceled.orig_cl_ord_id == req.cl_ord_id
    assert canceled.order_id == "P1"
    # Partly filled then canceled is CANCELED with cum > 0, not FILLED.
    assert canceled.cum_qty == Decimal("0.25") and canceled.leaves_qty == 0
    assert c.ord_status is not None and c.ord_status.name == "CANCELED" and c.cum_qty == Decimal("0.25")


async def test_replace_reports_replaced_with_cum_carried_over(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    c = child("BTCUSDT", "SELL", "1", "61000")
    req = await reports.rest(b, c)
    await hmac_server.fill(req.cl_ord_id, Decimal("0.4"), Decimal("61000"))
    await reports.wait_for(lambda r: r.cum_qty == Decimal("0.4"))
    rep = c.replace(Decimal("2"), Decimal("60500"))
    await b.send(rep)
    replaced = await reports.wait_for(lambda r: exec_type(r) == "REPLACED")
    assert replaced.cl_ord_id == rep.cl_ord_id and replaced.orig_cl_ord_id == req.cl_ord_id
    assert (replaced.cum_qty, replaced.leaves_qty, replaced.order_qty) == (
        Decimal("0.4"),
        Decimal("1.6"),
        Decimal("2"),
    )
    assert replaced.ord_status.name == "PARTIALLY_FILLED"
    assert c.order_qty == Decimal("2") and c.price == Decimal("60500") and c.pending is None
    # The venue's new order carries what is left; its fills add to the child's cum.
    new_order = hmac_server.by_client_id(rep.cl_ord_id)
    assert new_order is not None and Decimal(new_order["origQty"]) == Decimal("1.6")
    await hmac_server.fill(rep.cl_ord_id, Decimal("1.6"), Decimal("60500"))
    done = await reports.wait_for(status_is("FILLED"))
    assert (
        done.cum_qty == Decimal("2") and done.avg_px == (Decimal("0.4") * 61000 + Decimal("1.6") * 60500) / 2
    )
    assert c.cum_qty == Decimal("2") and c.avg_px == done.avg_px
    # The cancel half of the cancelReplace is not reported as the child's cancel.
    assert not reports.status("CANCELED")


async def test_cancel_too_late_is_rejected_and_the_fill_stands(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    c = child("BTCUSDT", "BUY", "1", "59000")
    req = await reports.rest(b, c)
    x = c.cancel()  # the cancel is on its way when the order fills
    await hmac_server.fill(req.cl_ord_id, Decimal("1"))
    await b.send(x)
    rej = await reports.wait_for(lambda r: r.cxl_rej_response_to is not None)
    assert rej.ord_status.name == "FILLED" and rej.text == "Unknown order sent."
    assert rej.cxl_rej_response_to is not None and rej.cxl_rej_response_to.name == "CANCEL"
    assert not reports.status("CANCELED")
    assert c.ord_status is not None and c.ord_status.name == "FILLED" and c.pending is None


async def test_cancel_for_an_unknown_order_reports_cancel_reject(venue: tuple[Binance, Reports]) -> None:
    b, reports = venue
    rej = await reports.cancel_rejected(b, cancel_unknown("BTCUSDT", "BUY", order_id="P9"))
    assert rej.text == "unknown order"


async def test_rejected_order_reports_rejected_with_venue_reason(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    hmac_server.place_faults.append("reject")
    c = reports.follow(child("BTCUSDT", "BUY", "1", "59000"))
    await b.send(c.new())
    rej = await reports.wait_for(status_is("REJECTED"))
    assert rej.text == "-2010: Account has insufficient balance for requested action."
    assert exec_type(rej) == "REJECTED"
    assert c.ord_status is not None and c.ord_status.name == "REJECTED"


async def test_status_unknown_1007_is_not_a_reject_and_is_reconciled(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    hmac_server.place_faults.append("unknown")  # the venue took the order and filled it
    hmac_server.conns[0].subscribed = False  # ...and the stream missed it
    c = reports.follow(child("BTCUSDT", "BUY", "0.3", "60010", "IOC"))
    assert await b.send(c.new()) is False  # status unknown, not refused
    fill = await reports.wait_for(status_is("FILLED"))
    assert not reports.status("REJECTED")
    assert fill.exec_id == f"T-BTCUSDT-{hmac_server.trades[0]['id']}"
    assert "order.status" in [r["method"] for r in hmac_server.requests]
    assert reports.filled() == hmac_server.filled_qty() == Decimal("0.3")
    assert c.ord_status is not None and c.ord_status.name == "FILLED"


async def test_duplicate_execution_reports_are_handed_on_once(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    hmac_server.duplicate_reports = True
    c = child("BTCUSDT", "BUY", "1", "59000")
    req = await reports.place(b, c)
    await hmac_server.fill(req.cl_ord_id, Decimal("0.5"))
    await hmac_server.fill(req.cl_ord_id, Decimal("0.5"))
    await reports.wait_for(status_is("FILLED"))
    await b.send(child("BTCUSDT", "BUY", "1", "10").new())  # a later round trip: every duplicate has arrived
    await reports.wait_for(lambda r: r.ord_status.name == "NEW" and r.price == 10)
    assert len({r.exec_id for r in reports}) == len(reports)
    assert reports.filled() == hmac_server.filled_qty() == Decimal("1")


async def test_fill_while_disconnected_is_recovered_by_reconciliation(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    c = child("BTCUSDT", "BUY", "1", "59000")
    req = await reports.place(b, c)
    await hmac_server.fill(req.cl_ord_id, Decimal("0.2"))
    await reports.wait_for(lambda r: r.cum_qty == Decimal("0.2"))
    await hmac_server.disconnect()
    await hmac_server.fill(req.cl_ord_id, Decimal("0.3"))  # nobody is subscribed: the event is lost
    await hmac_server.fill(req.cl_ord_id, Decimal("0.5"))
    done = await reports.wait_for(status_is("FILLED"))
    assert hmac_server.connections == 2
    assert done.cum_qty == Decimal("1")
    assert reports.filled() == hmac_server.filled_qty() == c.cum_qty == Decimal("1")
    assert len({r.exec_id for r in reports}) == len(reports)


async def test_open_order_is_reported_as_order_status_on_reconnect(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    c = child("BTCUSDT", "BUY", "1", "59000")
    await reports.rest(b, c)
    await hmac_server.disconnect()
    status = await reports.wait_for(lambda r: exec_type(r) == "ORDER_STATUS")
    assert status.ord_status.name == "NEW" and status.leaves_qty == 1
    assert c.ord_status is not None and c.ord_status.name == "NEW"


async def test_server_shutdown_reconnects_and_orders_keep_flowing(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    await hmac_server.server_shutdown()
    await b.send(child("BTCUSDT", "BUY", "0.1", "60010", "IOC").new())
    await reports.wait_for(status_is("FILLED"))
    assert b.connects == 2 and hmac_server.connections == 2


async def test_partial_fill_then_venue_expiry_is_expired_with_cum(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    c = child("BTCUSDT", "BUY", "1", "59000")
    req = await reports.place(b, c)
    await hmac_server.fill(req.cl_ord_id, Decimal("0.6"))
    await hmac_server.expire(req.cl_ord_id)
    r = await reports.wait_for(status_is("EXPIRED"))
    assert r.cum_qty == Decimal("0.6") and r.leaves_qty == 0
    assert c.ord_status is not None and c.ord_status.name == "EXPIRED"


async def test_order_rate_limit_refuses_before_sending(hmac_server: BinanceServer) -> None:
    b, _ = make(hmac_server, rate_limits="2/10 seconds", rate_policy="refuse")
    await b.start()
    try:
        await b.send(child("BTCUSDT", "BUY", "1", "59000").new())
        await b.send(child("BTCUSDT", "BUY", "1", "59000").new())
        with pytest.raises(RateLimited, match="over the rate limit"):
            await b.send(child("BTCUSDT", "BUY", "1", "59000").new())
        assert len(hmac_server.orders) == 2
    finally:
        await b.stop()


async def test_ed25519_key_logs_on_and_trades_without_per_request_signatures() -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    server = BinanceServer("ed-key", public_key=key.public_key(), market=dict(MARKET))
    await server.start()
    b, reports = make(server, Credentials("ed-key", private_key_pem=pem))
    try:
        await b.start()
        await b.send(child("BTCUSDT", "SELL", "0.2", "60000", "IOC").new())
        await reports.wait_for(status_is("FILLED"))
        methods = [r["method"] for r in server.requests]
        assert methods[:2] == ["session.logon", "userDataStream.subscribe"]
        place = next(r for r in server.requests if r["method"] == "order.place")
        assert "signature" not in place["params"] and "timestamp" in place["params"]
    finally:
        await b.stop()
        await server.stop()


async def test_wrong_secret_fails_start_with_venue_error_and_no_secret_in_text(
    hmac_server: BinanceServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "s3cr3t-never-to-be-printed-0123456789"
    caplog.set_level(logging.DEBUG)
    b, _ = make(hmac_server, Credentials(KEY, secret=wrong))
    with pytest.raises(BinanceError) as info:
        await b.start()
    await b.stop()
    assert info.value.code == -1022
    text = str(info.value) + repr(info.value) + caplog.text + repr(b._creds)
    assert wrong not in text and "never-to-be" not in text


async def test_disconnect_with_request_in_flight_keeps_order_pending_then_reconciles(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    hmac_server.place_faults.append("silent")  # accepted and filled, no response
    hmac_server.conns[0].subscribed = False
    c = reports.follow(child("BTCUSDT", "BUY", "0.7", "60010", "IOC"))
    send = asyncio.create_task(b.send(c.new()))
    await hmac_server.traded.wait()
    await hmac_server.disconnect()
    assert await send is False
    await reports.wait_for(status_is("FILLED"))
    assert not reports.status("REJECTED")
    assert reports.filled() == hmac_server.filled_qty() == Decimal("0.7")


async def test_connection_is_renewed_after_its_lifetime_and_reconciled(hmac_server: BinanceServer) -> None:
    b, reports = make(hmac_server, connection_lifetime=0.3)
    await b.start()
    try:
        c = child("BTCUSDT", "BUY", "1", "59000")
        req = await reports.rest(b, c)
        while hmac_server.connections < 2:  # renewed before the venue's 24 h cut
            await asyncio.sleep(0.02)
        await hmac_server.fill(req.cl_ord_id, Decimal("1"))
        await reports.wait_for(status_is("FILLED"))
        assert reports.filled() == hmac_server.filled_qty() == 1
    finally:
        await b.stop()


def test_testnet_selects_the_testnet_endpoint() -> None:
    creds = Credentials(KEY, secret=SECRET)
    assert Binance(creds, testnet=True).url == "wss://ws-api.testnet.binance.vision/ws-api/v3"
    assert Binance(creds).url == "wss://ws-api.binance.com:443/ws-api/v3"


async def test_replace_whose_cancel_event_comes_last_does_not_close_the_child(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    hmac_server.replace_events_new_first = True
    c = child("BTCUSDT", "BUY", "1", "59000")
    await reports.rest(b, c)
    rep = c.replace(Decimal("1"), Decimal("59500"))
    await b.send(rep)
    await reports.wait_for(lambda r: exec_type(r) == "REPLACED")
    await hmac_server.fill(rep.cl_ord_id, Decimal("1"))  # after the late cancel event of the old order
    await reports.wait_for(status_is("FILLED"))
    assert not reports.status("CANCELED")
    assert c.ord_status is not None and c.ord_status.name == "FILLED" and c.cum_qty == 1


async def test_order_sent_while_disconnected_is_status_unknown_then_settled(
    hmac_server: BinanceServer,
) -> None:
    b, reports = make(hmac_server, request_timeout=0.3, reconnect_delay=1.0)
    await b.start()
    try:
        await hmac_server.disconnect()
        c = reports.follow(child("BTCUSDT", "BUY", "1", "59000"))
        assert await b.send(c.new()) is False  # never left: the connection was down
        # After the reconnect the venue is asked and says it never had it.
        rej = await reports.wait_for(status_is("REJECTED"), timeout=10)
        assert rej.text == "-2013: the order never reached the venue"
        assert not hmac_server.orders
    finally:
        await b.stop()


async def test_429_from_the_venue_stops_sending_until_retry_after(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    hmac_server.place_faults.append("throttle")
    c = reports.follow(child("BTCUSDT", "BUY", "1", "59000"))
    req = c.new()
    with pytest.raises(RateLimited, match="-1015 Too many new orders"):
        await b.send(req)
    c.withdraw(req)  # it never took effect: the child can be sent again later
    sent = len(hmac_server.requests)
    with pytest.raises(RateLimited, match="asked to wait"):
        await b.send(child("BTCUSDT", "BUY", "1", "59000").new())
    assert len(hmac_server.requests) == sent and not hmac_server.orders
    assert not reports.status("REJECTED")


async def test_a_finished_parent_releases_the_adapters_view_of_its_children(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    b, reports = venue
    c = child("BTCUSDT", "BUY", "0.1", "60010", "IOC", order_id="P3")
    req = await reports.place(b, c)
    await reports.wait_for(status_is("FILLED"))
    assert b.tracker.get(req.cl_ord_id) is not None
    b.release("P3")  # the engine calls it when the parent's delegate returns True
    assert b.tracker.get(req.cl_ord_id) is None and b.route(req.cl_ord_id) is None


# ---- order.cancelReplace that fails in part (docs: 400 -2022, 409 -2021, with data) ----


async def test_replace_whose_cancel_fails_is_rejected_and_sends_no_new_order(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    """cancelResult FAILURE, newOrderResult NOT_ATTEMPTED (400, -2022): the
    order filled before the replace got there; the replace is rejected with
    the cancel's reason and the fill stands."""
    b, reports = venue
    c = child("BTCUSDT", "BUY", "1", "59000")
    req = await reports.rest(b, c)
    hmac_server.hold_reports()  # the stream lags: exo does not know of the fill yet
    await hmac_server.fill(req.cl_ord_id, Decimal("1"))
    rep = c.replace(Decimal("1"), Decimal("59500"))
    await b.send(rep)
    rej = await reports.wait_for(lambda r: r.cxl_rej_response_to is not None)
    assert rej.cxl_rej_response_to.name == "REPLACE" and rej.cl_ord_id == rep.cl_ord_id
    assert rej.orig_cl_ord_id == req.cl_ord_id and rej.text == "-2011: Unknown order sent."
    assert c.pending is None and c.ord_status is not None and c.ord_status.name == "NEW"
    assert hmac_server.by_client_id(rep.cl_ord_id) is None  # STOP_ON_FAILURE: no new order
    sent = next(r for r in hmac_server.requests if r["method"] == "order.cancelReplace")
    assert sent["params"]["cancelReplaceMode"] == "STOP_ON_FAILURE"
    await hmac_server.release_reports()
    await reports.wait_for(status_is("FILLED"))
    assert c.ord_status.name == "FILLED" and c.cum_qty == 1
    assert reports.filled() == hmac_server.filled_qty() == 1


@pytest.mark.parametrize("cancel_event", ["before_response", "after_response"])
async def test_replace_whose_new_order_fails_cancels_the_child_with_its_fills(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer, cancel_event: str
) -> None:
    """cancelResult SUCCESS, newOrderResult FAILURE (409, -2021): the old order
    is canceled and the new one rejected. The replace is rejected with the new
    order's reason, then the child is CANCELED with the fills it had, once,
    whether the cancel's executionReport comes before the response or after."""
    b, reports = venue
    hmac_server.replace_events_after_response = cancel_event == "after_response"
    c = child("BTCUSDT", "BUY", "1", "59000")
    req = await reports.rest(b, c)
    await hmac_server.fill(req.cl_ord_id, Decimal("0.25"))
    await reports.wait_for(status_is("PARTIALLY_FILLED"))
    hmac_server.place_faults.append("reject")  # the new half fails
    rep = c.replace(Decimal("1"), Decimal("59500"))
    await b.send(rep)
    canceled = await reports.wait_for(status_is("CANCELED"))
    rej = next(r for r in reports if r.cxl_rej_response_to is not None)
    assert reports.index(rej) < reports.index(canceled)
    assert rej.cl_ord_id == rep.cl_ord_id and rej.cxl_rej_response_to.name == "REPLACE"
    assert rej.text == "-2010: Account has insufficient balance for requested action."
    assert (canceled.cum_qty, canceled.leaves_qty, canceled.orig_cl_ord_id) == (
        Decimal("0.25"),
        Decimal(0),
        req.cl_ord_id,
    )
    assert c.ord_status is not None and c.ord_status.name == "CANCELED"
    assert c.cum_qty == Decimal("0.25") and c.pending is None
    old = hmac_server.by_client_id(req.cl_ord_id)
    assert old is not None and old["status"] == "CANCELED"
    assert hmac_server.by_client_id(rep.cl_ord_id) is None
    # Anything the stream still had for the old order has arrived once the next
    # order's NEW is here (one connection, in order): the CANCELED stays single.
    nxt = reports.follow(child("BTCUSDT", "BUY", "1", "58000"))
    await b.send(nxt.new())
    await reports.wait_for(lambda r: r.cl_ord_id == nxt.cl_ord_id and status_is("NEW")(r))
    assert len([r for r in reports.status("CANCELED") if r.cxl_rej_response_to is None]) == 1
    assert reports.filled() == hmac_server.filled_qty() == Decimal("0.25")


async def test_replace_whose_cancel_fails_but_new_order_is_placed_is_rejected_and_reported(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    """cancelResult FAILURE, newOrderResult SUCCESS (409, -2021): what
    ALLOW_FAILURE can give, here from a venue that ignored STOP_ON_FAILURE.
    The replace is rejected with the cancel's reason (the old order is as it
    was) and on_error names the new order left live at the venue."""
    b, reports = venue
    hmac_server.ignore_stop_on_failure = True
    c = child("BTCUSDT", "BUY", "1", "59000", order_id="P1")
    req = await reports.rest(b, c)
    hmac_server.hold_reports()
    await hmac_server.fill(req.cl_ord_id, Decimal("1"))  # the cancel half will fail: filled
    rep = c.replace(Decimal("1"), Decimal("59500"))
    await b.send(rep)
    rej = await reports.wait_for(lambda r: r.cxl_rej_response_to is not None)
    assert rej.cl_ord_id == rep.cl_ord_id and rej.text == "-2011: Unknown order sent."
    [(order_id, message)] = reports.errors
    assert order_id == "P1" and rep.cl_ord_id in message and "left the new order" in message
    stray = hmac_server.by_client_id(rep.cl_ord_id)
    assert stray is not None and stray["status"] == "NEW"
    await hmac_server.release_reports()
    await reports.wait_for(status_is("FILLED"))
    assert c.ord_status is not None and c.ord_status.name == "FILLED" and c.cum_qty == 1


async def test_replace_whose_both_halves_fail_is_rejected_with_the_cancels_reason(
    venue: tuple[Binance, Reports], hmac_server: BinanceServer
) -> None:
    """cancelResult FAILURE, newOrderResult FAILURE (400, -2022): nothing
    changed at the venue; the replace is rejected, no error is raised."""
    b, reports = venue
    hmac_server.ignore_stop_on_failure = True
    c = child("BTCUSDT", "BUY", "1", "59000")
    req = await reports.rest(b, c)
    hmac_server.place_faults.append("reject")  # the new half fails too
    hmac_server.hold_reports()
    await hmac_server.fill(req.cl_ord_id, Decimal("1"))
    rep = c.replace(Decimal("1"), Decimal("59500"))
    await b.send(rep)
    rej = await reports.wait_for(lambda r: r.cxl_rej_response_to is not None)
    assert rej.cl_ord_id == rep.cl_ord_id and rej.text == "-2011: Unknown order sent."
    assert reports.errors == [] and hmac_server.by_client_id(rep.cl_ord_id) is None
    await hmac_server.release_reports()
    await reports.wait_for(status_is("FILLED"))
    assert c.cum_qty == 1
