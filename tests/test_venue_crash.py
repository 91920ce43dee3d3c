"""kill -9 of the engine with a child order live at a real venue adapter: no
report is lost or applied twice. The engine (venue_child.py, a separate
process on a real redis-server) sends one GTC child of 10; the loopback
venue, in this process, fills it in parts before, while and after the engine
is dead. The final delegate state must hold each venue fill exactly once,
summing to what the venue's own record says it filled.

The ``between`` tests kill the engine right after a request left (a NEW, or a
replace of a NEW child), while the venue's reports are lost on the way (Binance
and BitMEX streams do not replay them; the FIX acceptor resends on request):
only the journal knows the request, and the restarted engine must put it back
in flight and learn its outcome from the venue."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.venue_servers.binance import BinanceServer
from tests.venue_servers.bitmex import BitMEXServer
from tests.venue_servers.fix import FixAcceptor, need_quickfix

CHILD = str(Path(__file__).with_name("venue_child.py"))
KEY, SECRET = "crash-key", "crash-secret-0123456789"


class Venue:
    """The loopback venue of one kind, seen the same way by the test."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind, self.tmp = kind, tmp
        self.server: Any = None

    async def start(self) -> dict[str, Any]:
        if self.kind == "binance":
            self.server = BinanceServer(KEY, secret=SECRET, market={"BTCUSDT": (Decimal(1), Decimal(99999))})
            await self.server.start()
            return {"key": KEY, "secret": SECRET, "url": self.server.url}
        if self.kind == "bitmex":
            self.server = BitMEXServer(KEY, SECRET, market={"XBTUSD": (Decimal(1), Decimal(99999))})
            await self.server.start()
            return {
                "key": KEY,
                "secret": SECRET,
                "rest_url": self.server.rest_url,
                "ws_url": self.server.ws_url,
            }
        self.server = FixAcceptor(market={"BTC-USD": (Decimal(1), Decimal(99999))})
        await self.server.start()
        return {"port": self.server.port, "store": str(self.tmp / "fixstore")}

    def lose_reports(self, lose: bool) -> None:
        """While ``lose``, the venue's reports never reach the engine: dropped
        by Binance/BitMEX (their streams do not replay: reconciliation asks),
        numbered but unsent by the FIX acceptor (resent on request after the
        next Logon)."""
        if self.kind == "fix":
            self.server.lose_next = 1_000_000 if lose else 0
        else:
            self.server.drop_reports = lose

    def order_count(self) -> int:
        """Orders the venue holds (the FIX acceptor indexes each under all its ClOrdIDs)."""
        if self.kind == "fix":
            return len({id(o) for o in self.server.orders.values()})
        return len(self.server.orders)

    def cl_ord_ids(self) -> list[str]:
        if self.kind == "binance":
            return [o["clientOrderId"] for o in self.server.orders.values()]
        if self.kind == "bitmex":
            return [o["clOrdID"] for o in self.server.orders.values()]
        return list(self.server.orders)

    def venue_fills(self) -> tuple[int, Decimal]:
        """(number of fills, quantity) in the venue's own record."""
        if self.kind == "binance":
            return len(self.server.trades), self.server.filled_qty()
        if self.kind == "bitmex":
            n = sum(1 for e in self.server.executions if e["execType"] == "Trade")
            return n, self.server.filled_qty()
        return len(self.server.fills), self.server.filled_qty()

    def describe(self) -> str:
        """What the venue saw (for a failure message)."""
        if self.kind != "fix":
            return f"{self.kind}: {self.venue_fills()}"
        seen = [(m.get(35), m.get(34), m.get(43), m.get(58)) for m in self.server.received]
        return f"fix: next_out {self.server.next_out}, expected_in {self.server.expected_in}, received {seen}"

    async def stop(self) -> None:
        await self.server.stop()


def _progress(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def _until(pred: Any, timeout: float = 30.0) -> None:
    async def _wait() -> None:
        while not pred():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(_wait(), timeout)


def _cum(path: Path) -> Decimal:
    lines = [x for x in _progress(path) if not x.startswith(("DONE", "SENT", "ACKED"))]
    return Decimal(lines[-1].split()[0]) if lines else Decimal(-1)


def _child_cl_ord_ids(path: Path) -> set[str]:
    """The cl_ord_ids the delegate's child had, as its actions recorded them."""
    return {x.split()[1] for x in _progress(path) if not x.startswith(("DONE", "ACKED"))}


@pytest.fixture(params=["binance", "bitmex", "fix"])
async def venue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Venue]:
    if request.param == "fix":
        need_quickfix()
    v = Venue(request.param, tmp_path)
    v.endpoint = await v.start()  # type: ignore[attr-defined]
    yield v
    await v.stop()


async def test_kill_9_mid_fills_loses_and_repeats_no_report(
    venue: Venue, redis_url: str, tmp_path: Path
) -> None:
    progress, log_path = tmp_path / "progress", tmp_path / "engine.log"
    args = [sys.executable, CHILD, venue.kind, redis_url, json.dumps(venue.endpoint), str(progress)]  # type: ignore[attr-defined]
    with log_path.open("ab") as log:
        first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        try:
            await _until(lambda: bool(venue.cl_ord_ids()))
            [cl] = venue.cl_ord_ids()
            await venue.server.fill(cl, Decimal(2))
            await _until(lambda: _cum(progress) == 2)
            await venue.server.fill(cl, Decimal(3))  # in flight when the engine dies
            first.kill()
            first.wait()
            await venue.server.fill(cl, Decimal(2))  # while the engine is dead
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        second = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        try:
            try:
                await _until(lambda: _cum(progress) == 7)
            except TimeoutError:
                raise AssertionError(
                    f"{venue.describe()}\nprogress {_progress(progress)}\n{log_path.read_text()[-3000:]}"
                ) from None
            await venue.server.fill(cl, Decimal(3))
            await _until(lambda: any(x.startswith("DONE") for x in _progress(progress)))
            assert await asyncio.to_thread(second.wait, 30) == 0, log_path.read_text()[-3000:]
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
    done = next(x for x in _progress(progress) if x.startswith("DONE"))
    trades = json.loads(done[5:])
    n, qty = venue.venue_fills()
    assert len(trades) == n == 4, trades  # each venue fill handed to the delegate once
    assert len({exec_id for exec_id, _ in trades}) == n
    assert sum(Decimal(q) for _, q in trades) == qty == 10


async def test_kill_9_between_send_and_first_report_reconciles_the_journaled_child(
    venue: Venue, redis_url: str, tmp_path: Path
) -> None:
    """The engine dies right after its child's request left (no report
    applied, no checkpoint holding the child): the request was journaled
    before it was sent, so the restarted engine puts the child back in flight
    under the same cl_ord_id and asks the venue about it, instead of
    forgetting a live order and sending a second one. Its fills, made while the
    engine was dead and after, reach the delegate exactly once."""
    progress, log_path = tmp_path / "progress", tmp_path / "engine.log"
    args = [sys.executable, CHILD, venue.kind, redis_url, json.dumps(venue.endpoint), str(progress)]  # type: ignore[attr-defined]
    with log_path.open("ab") as log:
        venue.lose_reports(True)  # the venue's acknowledgement never reaches this engine
        first = subprocess.Popen([*args, "hold"], stdout=subprocess.DEVNULL, stderr=log)
        try:
            await _until(lambda: any(x.startswith("SENT") for x in _progress(progress)))
            first.kill()  # the send returned; no report or checkpoint has the child
            first.wait()
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
            venue.lose_reports(False)
        [sent] = [x.split()[1] for x in _progress(progress) if x.startswith("SENT")]
        assert venue.cl_ord_ids() == [sent]
        await venue.server.fill(sent, Decimal(4))  # while the engine is dead
        second = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        try:
            try:
                await _until(lambda: _cum(progress) == 4)
            except TimeoutError:
                raise AssertionError(
                    f"{venue.describe()}\nprogress {_progress(progress)}\n{log_path.read_text()[-3000:]}"
                ) from None
            await venue.server.fill(sent, Decimal(6))
            await _until(lambda: any(x.startswith("DONE") for x in _progress(progress)))
            assert await asyncio.to_thread(second.wait, 30) == 0, log_path.read_text()[-3000:]
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
    assert venue.cl_ord_ids() == [sent]  # no second order was sent
    assert _child_cl_ord_ids(progress) == {sent}  # the restarted delegate worked the same child
    done = next(x for x in _progress(progress) if x.startswith("DONE"))
    trades = json.loads(done[5:])
    n, qty = venue.venue_fills()
    assert len(trades) == n == 2, trades
    assert len({exec_id for exec_id, _ in trades}) == n
    assert sum(Decimal(q) for _, q in trades) == qty == 10


async def test_kill_9_between_replace_and_its_report_reconciles_the_replaced_child(
    venue: Venue, redis_url: str, tmp_path: Path
) -> None:
    """The engine dies right after a replace left (the child was NEW; no
    report of the replace applied, no checkpoint holding it): the restarted
    engine has the replace in flight again and learns its outcome from the
    venue; the fills of the replaced order count once, and the delegate
    works the child under the replace's cl_ord_id."""
    progress, log_path = tmp_path / "progress", tmp_path / "engine.log"
    args = [sys.executable, CHILD, venue.kind, redis_url, json.dumps(venue.endpoint), str(progress)]  # type: ignore[attr-defined]
    with log_path.open("ab") as log:
        first = subprocess.Popen(
            [*args, "hold-replace"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log
        )
        assert first.stdin is not None
        try:
            await _until(lambda: "ACKED" in _progress(progress))
            venue.lose_reports(True)  # what the venue says of the replace never reaches this engine
            first.stdin.write(b"go\n")
            first.stdin.flush()
            await _until(lambda: any(x.startswith("SENT") for x in _progress(progress)))
            first.kill()
            first.wait()
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
            first.stdin.close()
            venue.lose_reports(False)
        [replace] = [x.split()[1] for x in _progress(progress) if x.startswith("SENT")]
        await venue.server.fill(replace, Decimal(4))  # the replaced order fills while exo is dead
        second = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        try:
            try:
                await _until(lambda: _cum(progress) == 4)
            except TimeoutError:
                raise AssertionError(
                    f"{venue.describe()}\nprogress {_progress(progress)}\n{log_path.read_text()[-3000:]}"
                ) from None
            await venue.server.fill(replace, Decimal(6))
            await _until(lambda: any(x.startswith("DONE") for x in _progress(progress)))
            assert await asyncio.to_thread(second.wait, 30) == 0, log_path.read_text()[-3000:]
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
    lines = [x for x in _progress(progress) if not x.startswith(("DONE", "SENT", "ACKED"))]
    assert lines[-1].split()[1] == replace, lines  # REPLACED was applied: the child is the new order
    done = next(x for x in _progress(progress) if x.startswith("DONE"))
    trades = json.loads(done[5:])
    n, qty = venue.venue_fills()
    assert len(trades) == n == 2, trades
    assert sum(Decimal(q) for _, q in trades) == qty == 10


async def test_kill_9_between_cancel_and_its_report_reconciles_the_canceled_child(
    venue: Venue, redis_url: str, tmp_path: Path
) -> None:
    """The engine dies right after a cancel left, a fill of 3 not applied by
    the delegate yet and the venue's cancel report lost: the restarted engine has
    the cancel in flight again and learns from the venue that the child is
    CANCELED with cum 3, the fill counted once."""
    progress, log_path = tmp_path / "progress", tmp_path / "engine.log"
    args = [sys.executable, CHILD, venue.kind, redis_url, json.dumps(venue.endpoint), str(progress)]  # type: ignore[attr-defined]
    with log_path.open("ab") as log:
        first = subprocess.Popen(
            [*args, "hold-cancel"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log
        )
        assert first.stdin is not None
        try:
            await _until(lambda: "ACKED" in _progress(progress))
            [cl] = venue.cl_ord_ids()
            await venue.server.fill(cl, Decimal(3))  # on its way to the engine; the delegate waits
            venue.lose_reports(True)
            first.stdin.write(b"go\n")
            first.stdin.flush()
            await _until(lambda: any(x.startswith("SENT") for x in _progress(progress)))
            first.kill()
            first.wait()
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
            first.stdin.close()
            venue.lose_reports(False)
        second = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        try:
            try:
                await _until(lambda: any(x.startswith("DONE") for x in _progress(progress)))
            except TimeoutError:
                raise AssertionError(
                    f"{venue.describe()}\nprogress {_progress(progress)}\n{log_path.read_text()[-3000:]}"
                ) from None
            assert await asyncio.to_thread(second.wait, 30) == 0, log_path.read_text()[-3000:]
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
    last = [x for x in _progress(progress) if not x.startswith(("DONE", "SENT", "ACKED"))][-1].split()
    assert (Decimal(last[0]), last[2]) == (3, "CANCELED"), last  # canceled with its fill, not FILLED
    trades = json.loads(next(x for x in _progress(progress) if x.startswith("DONE"))[5:])
    assert venue.venue_fills() == (1, Decimal(3)) and [q for _, q in trades] == ["3"]
    assert venue.order_count() == 1
