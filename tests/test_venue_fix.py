"""exo.venues.FIX (a QuickFIX initiator) against a scripted FIX 4.4 acceptor
on simplefix (tests/venue_servers/fix.py): no shared code, so the session
rules are checked from both sides. Reports are applied to real ChildOrders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from exo.instrument import Instrument
from exo.venues import Credentials
from tests.venue_servers.fix import FixAcceptor, need_quickfix
from tests.venue_servers.reports import Reports, exec_type, status_is
from tests.venue_servers.requests import cancel_unknown, child

if TYPE_CHECKING:
    from exo.venues.fix import FIX

need_quickfix()

MARKET = {"BTC-USD": (Decimal("60000"), Decimal("60010"))}
INSTRUMENTS = [Instrument("BTC-USD", tick_size=Decimal("0.01"), lot_size=Decimal("0.0001"))]


@pytest.fixture
async def acceptor() -> AsyncIterator[FixAcceptor]:
    a = FixAcceptor(market=dict(MARKET), username="exo-user")
    await a.start()
    yield a
    await a.stop()


def make(acceptor: FixAcceptor, store: Path, **options: object) -> tuple[FIX, Reports]:
    from exo.venues.fix import FIX  # after need_quickfix(): QuickFIX may be missing

    reports = Reports()
    options.setdefault("request_timeout", 5.0)
    v = FIX(
        INSTRUMENTS,
        host="127.0.0.1",
        port=acceptor.port,
        sender_comp_id="EXO",
        target_comp_id="VENUE",
        store_path=store,
        credentials=Credentials("exo-user", secret="pw-not-sent"),
        reconnect_interval=1,
        **options,
    )  # type: ignore[arg-type]
    v.attach(reports)
    return v, reports


@pytest.fixture
async def venue(acceptor: FixAcceptor, tmp_path: Path) -> AsyncIterator[tuple[FIX, Reports]]:
    v, reports = make(acceptor, tmp_path / "store")
    await v.start()
    yield v, reports
    await v.stop()


async def test_logon_carries_username_and_no_password(
    venue: tuple[FIX, Reports], acceptor: FixAcceptor
) -> None:
    [logon] = acceptor.logons
    assert logon[553] == "exo-user" and 554 not in logon and logon[108] == "30"
    assert logon[49] == "EXO" and logon[56] == "VENUE" and logon[34] == "1"


async def test_ioc_order_fills(venue: tuple[FIX, Reports], acceptor: FixAcceptor) -> None:
    v, reports = venue
    c = reports.follow(child("BTC-USD", "BUY", "0.5", "60010", "IOC"))
    req = c.new()
    assert await v.send(req) is True
    fill = await reports.wait_for(status_is("FILLED"))
    assert (fill.last_qty, fill.last_px, fill.cum_qty, fill.leaves_qty) == (
        Decimal("0.5"),
        Decimal("60010"),
        Decimal("0.5"),
        Decimal(0),
    )
    assert [exec_type(r) for r in reports] == ["NEW", "TRADE"]
    d = next(m for m in acceptor.received if m[35] == "D")
    assert (d[11], d[55], d[54], d[38], d[40], d[44], d[59]) == (
        req.cl_ord_id,
        "BTC-USD",
        "1",
        "0.5",
        "2",
        "60010",
        "3",
    )
    assert c.cum_qty == acceptor.filled_qty() == reports.filled()


async def test_gtc_rests_then_cancel(venue: tuple[FIX, Reports], acceptor: FixAcceptor) -> None:
    v, reports = venue
    c = child("BTC-USD", "SELL", "1", "61000")
    req = await reports.rest(v, c)
    await acceptor.fill(req.cl_ord_id, Decimal("0.3"))
    await reports.wait_for(status_is("PARTIALLY_FILLED"))
    x = c.cancel()
    await v.send(x)
    canceled = await reports.wait_for(status_is("CANCELED"))
    assert canceled.cl_ord_id == x.cl_ord_id and canceled.orig_cl_ord_id == req.cl_ord_id
    assert canceled.cum_qty == Decimal("0.3")
    assert c.ord_status is not None and c.ord_status.name == "CANCELED"


async def test_replace(venue: tuple[FIX, Reports], acceptor: FixAcceptor) -> None:
    v, reports = venue
    c = child("BTC-USD", "BUY", "1", "59000")
    req = await reports.rest(v, c)
    rep = c.replace(Decimal("2"), Decimal("59500"))
    await v.send(rep)
    replaced = await reports.wait_for(lambda r: exec_type(r) == "REPLACED")
    assert replaced.cl_ord_id == rep.cl_ord_id and replaced.orig_cl_ord_id == req.cl_ord_id
    assert c.order_qty == 2 and c.price == Decimal("59500") and c.cl_ord_id == rep.cl_ord_id
    await acceptor.fill(rep.cl_ord_id, Decimal("2"))
    await reports.wait_for(status_is("FILLED"))
    assert c.cum_qty == 2


async def test_too_late_to_cancel(venue: tuple[FIX, Reports], acceptor: FixAcceptor) -> None:
    v, reports = venue
    c = child("BTC-USD", "BUY", "1", "59000")
    req = await reports.rest(v, c)
    x = c.cancel()
    await acceptor.fill(req.cl_ord_id, Decimal("1"))  # fills while the cancel is on its way
    await v.send(x)
    rej = await reports.wait_for(lambda r: r.cxl_rej_response_to is not None)
    assert rej.ord_status.name == "FILLED" and rej.text == "Too late to cancel"
    assert c.ord_status is not None and c.ord_status.name == "FILLED" and c.pending is None


async def test_cancel_reject_for_an_unknown_order(venue: tuple[FIX, Reports]) -> None:
    v, reports = venue
    rej = await reports.cancel_rejected(v, cancel_unknown("BTC-USD", "BUY", order_id="P5"))
    assert rej.text == "Unknown order"


async def test_sequence_gap_forces_a_resend_and_the_report_arrives_once(
    venue: tuple[FIX, Reports], acceptor: FixAcceptor
) -> None:
    v, reports = venue
    c = reports.follow(child("BTC-USD", "BUY", "1", "59000"))
    req = c.new()
    acceptor.lose_next = 1  # the NEW ack is numbered but not sent
    await v.send(req)
    await acceptor.wait_order(req.cl_ord_id)
    await acceptor.fill(req.cl_ord_id, Decimal("1"))  # arrives with a gap before it
    await reports.wait_for(status_is("FILLED"))
    await reports.wait_for(lambda r: exec_type(r) == "NEW")
    resend = [m for m in acceptor.received if m[35] == "2"]
    assert resend and resend[0][7] == str(acceptor.next_out - 2)
    assert len([r for r in reports if exec_type(r) == "NEW"]) == 1
    assert reports.filled() == acceptor.filled_qty() == c.cum_qty


async def test_duplicate_possresend_report_is_applied_once(
    venue: tuple[FIX, Reports], acceptor: FixAcceptor
) -> None:
    v, reports = venue
    c = child("BTC-USD", "BUY", "1", "59000")
    req = await reports.rest(v, c)
    acceptor.possdup_copy_next = True
    await acceptor.fill(req.cl_ord_id, Decimal("0.4"))
    await acceptor.fill(req.cl_ord_id, Decimal("0.6"))
    await reports.wait_for(status_is("FILLED"))
    assert reports.filled() == acceptor.filled_qty() == c.cum_qty == 1
    assert len([r for r in reports if r.last_qty]) == 2


async def test_disconnect_mid_order_then_reconnect_keeps_sequence_numbers_and_recovers_the_fill(
    venue: tuple[FIX, Reports], acceptor: FixAcceptor
) -> None:
    v, reports = venue
    c = reports.follow(child("BTC-USD", "BUY", "1", "59000"))
    req = c.new()
    acceptor.drop_after_order = True  # acks, then the line drops
    await v.send(req)
    await acceptor.wait_order(req.cl_ord_id)
    await acceptor.fill(req.cl_ord_id, Decimal("1"))  # while disconnected: kept for the resend
    await acceptor.wait_logon(2)
    await reports.wait_for(status_is("FILLED"))
    second = acceptor.logons[1]
    assert int(second[34]) > 1 and second.get(141) != "Y"  # sequence numbers kept, no reset
    assert reports.filled() == acceptor.filled_qty() == c.cum_qty == 1
    assert len({r.exec_id for r in reports if r.exec_id}) == len([r for r in reports if r.exec_id])


async def test_sequence_numbers_persist_across_a_restart(acceptor: FixAcceptor, tmp_path: Path) -> None:
    v, reports = make(acceptor, tmp_path / "store")
    await v.start()
    await v.send(child("BTC-USD", "BUY", "0.1", "60010", "IOC").new())
    await reports.wait_for(status_is("FILLED"))
    sent_next = v.next_sender_seq_num()
    await v.stop()
    acceptor.logons.clear()
    v2, _ = make(acceptor, tmp_path / "store")
    await v2.start()
    try:
        assert int(acceptor.logons[-1][34]) >= sent_next
        assert 141 not in acceptor.logons[-1]
    finally:
        await v2.stop()


async def test_business_message_reject_rejects_the_order(
    venue: tuple[FIX, Reports], acceptor: FixAcceptor
) -> None:
    v, reports = venue
    c = reports.follow(child("BTC-USD", "BUY", "1", "59000"))
    req = c.new()
    original = acceptor._new_order  # script: answer the order with a BusinessMessageReject

    async def reject(f: dict[int, str]) -> None:
        await acceptor._send_app(
            "j",
            [(45, "2"), (372, "D"), (379, f[11]), (380, "5"), (58, "Conditionally required field missing")],
        )

    acceptor._new_order = reject  # type: ignore[method-assign]
    try:
        await v.send(req)
        rej = await reports.wait_for(status_is("REJECTED"))
    finally:
        acceptor._new_order = original  # type: ignore[method-assign]
    assert rej.text == "BusinessMessageReject 5: Conditionally required field missing"
    assert c.ord_status is not None and c.ord_status.name == "REJECTED"


async def test_wrong_username_is_logged_out_and_start_fails(acceptor: FixAcceptor, tmp_path: Path) -> None:
    acceptor.username = "someone-else"
    v, _ = make(acceptor, tmp_path / "s2", request_timeout=0.5)
    with pytest.raises(TimeoutError, match=r"no FIX Logon from 127\.0\.0\.1"):
        await v.start()


async def test_password_is_sent_only_when_asked(acceptor: FixAcceptor, tmp_path: Path) -> None:
    acceptor.password = "pw-not-sent"
    v, _ = make(acceptor, tmp_path / "s3", password=True)
    await v.start()
    try:
        assert acceptor.logons[-1][554] == "pw-not-sent"
    finally:
        await v.stop()


async def test_binance_logon_signs_rawdata_with_ed25519_and_resets_sequence_numbers(
    acceptor: FixAcceptor, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from exo.venues.fix import binance_logon

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    creds = Credentials("exo-user", private_key_pem=pem)
    acceptor.rawdata_key = key.public_key()
    v, reports = make(acceptor, tmp_path / "s4", logon_fields=binance_logon(creds), reset_on_logon=True)
    await v.start()
    try:
        logon = acceptor.logons[-1]
        assert logon[141] == "Y" and logon[25035] == "2" and logon[553] == "exo-user"
        await v.send(child("BTC-USD", "BUY", "0.1", "60010", "IOC").new())
        await reports.wait_for(status_is("FILLED"))
    finally:
        await v.stop()


async def test_bad_rawdata_signature_is_refused(acceptor: FixAcceptor, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from exo.venues.fix import binance_logon

    signer = Ed25519PrivateKey.generate()
    pem = signer.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    acceptor.rawdata_key = Ed25519PrivateKey.generate().public_key()  # not the signer's
    v, _ = make(
        acceptor,
        tmp_path / "s5",
        logon_fields=binance_logon(Credentials("exo-user", private_key_pem=pem)),
        reset_on_logon=True,
        request_timeout=0.5,
    )
    with pytest.raises(TimeoutError):
        await v.start()
    assert acceptor.logons and not acceptor._logged_on.is_set()


async def test_test_request_is_answered_with_a_heartbeat_and_stop_logs_out(
    acceptor: FixAcceptor, tmp_path: Path
) -> None:
    v, _ = make(acceptor, tmp_path / "s6")
    await v.start()
    await acceptor.send("1", [(112, "are-you-there")])

    def heartbeat() -> bool:
        return any(m.get(35) == "0" and m.get(112) == "are-you-there" for m in acceptor.received)

    while not heartbeat():
        await asyncio.sleep(0.01)
    await v.stop()
    assert acceptor.received[-1][35] == "5"  # Logout, answered by the acceptor's Logout
    assert not v.logged_on
