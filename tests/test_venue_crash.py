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
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
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
        self.endpoint: dict[str, Any] = {}

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


class Engine:
    """The engine process (venue_child.py) of one test, on ``venue`` and
    redis: started, killed and restarted by the test; what its delegate did
    is read back from the progress file."""

    def __init__(self, venue: Venue, redis_url: str, tmp: Path) -> None:
        self.venue = venue
        self.progress, self.log_path = tmp / "progress", tmp / "engine.log"
        self.args = [
            sys.executable,
            CHILD,
            venue.kind,
            redis_url,
            json.dumps(venue.endpoint),
            str(self.progress),
        ]

    @contextlib.contextmanager
    def running(self, mode: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
        """One engine process (``mode``: venue_child.py's hold modes; those
        that wait for a go get a stdin pipe), killed if still running at the end."""
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                [*self.args, mode] if mode else self.args,
                stdin=subprocess.PIPE if mode in ("hold-replace", "hold-cancel") else None,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            yield proc
        finally:
            kill_9(proc)
            if proc.stdin is not None:
                proc.stdin.close()

    def lines(self) -> list[str]:
        return self.progress.read_text().splitlines() if self.progress.exists() else []

    def actions(self) -> list[str]:
        """The delegate's ``<cum_qty> <cl_ord_id> <ord_status>`` lines."""
        return [x for x in self.lines() if not x.startswith(("DONE", "SENT", "ACKED"))]

    def cum(self) -> Decimal:
        lines = self.actions()
        return Decimal(lines[-1].split()[0]) if lines else Decimal(-1)

    def sent(self) -> list[str]:
        """The cl_ord_ids of the requests a held action sent."""
        return [x.split()[1] for x in self.lines() if x.startswith("SENT")]

    def done(self) -> bool:
        return any(x.startswith("DONE") for x in self.lines())

    def trades(self) -> list[tuple[str, str]]:
        """(exec_id, last_qty) of every TRADE report the delegate was handed, duplicates included."""
        done = next(x for x in self.lines() if x.startswith("DONE"))
        return [(exec_id, qty) for exec_id, qty in json.loads(done[5:])]

    async def until(self, pred: Any) -> None:
        """Waits for ``pred()``; on timeout fails with what the venue, the delegate and the engine said."""
        try:
            await _until(pred)
        except TimeoutError:
            raise AssertionError(
                f"{self.venue.describe()}\nprogress {self.lines()}\n{self.log_path.read_text()[-3000:]}"
            ) from None

    async def finishes(self, proc: subprocess.Popen[bytes]) -> None:
        """The delegate wrote DONE and the engine process exits 0."""
        await self.until(self.done)
        assert await asyncio.to_thread(proc.wait, 30) == 0, self.log_path.read_text()[-3000:]


def kill_9(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def go(proc: subprocess.Popen[bytes]) -> None:
    """Lets a held action (hold-replace, hold-cancel) send its request."""
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    proc.stdin.flush()


async def _until(pred: Any, timeout: float = 30.0) -> None:
    async def _wait() -> None:
        while not pred():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(_wait(), timeout)


@pytest.fixture(params=["binance", "bitmex", "fix"])
async def venue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Venue]:
    if request.param == "fix":
        need_quickfix()
    v = Venue(request.param, tmp_path)
    v.endpoint = await v.start()
    yield v
    await v.stop()


@pytest.fixture
def engine(venue: Venue, redis_url: str, tmp_path: Path) -> Engine:
    return Engine(venue, redis_url, tmp_path)


async def test_kill_9_mid_fills_loses_and_repeats_no_report(venue: Venue, engine: Engine) -> None:
    with engine.running() as first:
        await _until(lambda: bool(venue.cl_ord_ids()))
        [cl] = venue.cl_ord_ids()
        await venue.server.fill(cl, Decimal(2))
        await _until(lambda: engine.cum() == 2)
        await venue.server.fill(cl, Decimal(3))  # in flight when the engine dies
        kill_9(first)
        await venue.server.fill(cl, Decimal(2))  # while the engine is dead
    with engine.running() as second:
        await engine.until(lambda: engine.cum() == 7)
        await venue.server.fill(cl, Decimal(3))
        await engine.finishes(second)
    trades = engine.trades()
    n, qty = venue.venue_fills()
    assert len(trades) == n == 4, trades  # each venue fill handed to the delegate once
    assert len({exec_id for exec_id, _ in trades}) == n
    assert sum(Decimal(q) for _, q in trades) == qty == 10


async def test_kill_9_between_send_and_first_report_reconciles_the_journaled_child(
    venue: Venue, engine: Engine
) -> None:
    """The engine dies right after its child's request left (no report
    applied, no checkpoint holding the child): the request was journaled
    before it was sent, so the restarted engine puts the child back in flight
    under the same cl_ord_id and asks the venue about it, instead of
    forgetting a live order and sending a second one. Its fills, made while the
    engine was dead and after, reach the delegate exactly once."""
    venue.lose_reports(True)  # the venue's acknowledgement never reaches this engine
    with engine.running("hold") as first:
        await _until(lambda: bool(engine.sent()))
        kill_9(first)  # the send returned; no report or checkpoint has the child
    venue.lose_reports(False)
    [sent] = engine.sent()
    assert venue.cl_ord_ids() == [sent]
    await venue.server.fill(sent, Decimal(4))  # while the engine is dead
    with engine.running() as second:
        await engine.until(lambda: engine.cum() == 4)
        await venue.server.fill(sent, Decimal(6))
        await engine.finishes(second)
    assert venue.cl_ord_ids() == [sent]  # no second order was sent
    # The restarted delegate worked the same child.
    assert {x.split()[1] for x in engine.actions()} == {sent}
    trades = engine.trades()
    n, qty = venue.venue_fills()
    assert len(trades) == n == 2, trades
    assert len({exec_id for exec_id, _ in trades}) == n
    assert sum(Decimal(q) for _, q in trades) == qty == 10


async def test_kill_9_between_replace_and_its_report_reconciles_the_replaced_child(
    venue: Venue, engine: Engine
) -> None:
    """The engine dies right after a replace left (the child was NEW; no
    report of the replace applied, no checkpoint holding it): the restarted
    engine has the replace in flight again and learns its outcome from the
    venue; the fills of the replaced order count once, and the delegate
    works the child under the replace's cl_ord_id."""
    with engine.running("hold-replace") as first:
        await _until(lambda: "ACKED" in engine.lines())
        venue.lose_reports(True)  # what the venue says of the replace never reaches this engine
        go(first)
        await _until(lambda: bool(engine.sent()))
        kill_9(first)
    venue.lose_reports(False)
    [replace] = engine.sent()
    await venue.server.fill(replace, Decimal(4))  # the replaced order fills while exo is dead
    with engine.running() as second:
        await engine.until(lambda: engine.cum() == 4)
        await venue.server.fill(replace, Decimal(6))
        await engine.finishes(second)
    lines = engine.actions()
    assert lines[-1].split()[1] == replace, lines  # REPLACED was applied: the child is the new order
    trades = engine.trades()
    n, qty = venue.venue_fills()
    assert len(trades) == n == 2, trades
    assert sum(Decimal(q) for _, q in trades) == qty == 10


async def test_kill_9_between_cancel_and_its_report_reconciles_the_canceled_child(
    venue: Venue, engine: Engine
) -> None:
    """The engine dies right after a cancel left, a fill of 3 not applied by
    the delegate yet and the venue's cancel report lost: the restarted engine has
    the cancel in flight again and learns from the venue that the child is
    CANCELED with cum 3, the fill counted once."""
    with engine.running("hold-cancel") as first:
        await _until(lambda: "ACKED" in engine.lines())
        [cl] = venue.cl_ord_ids()
        await venue.server.fill(cl, Decimal(3))  # on its way to the engine; the delegate waits
        venue.lose_reports(True)
        go(first)
        await _until(lambda: bool(engine.sent()))
        kill_9(first)
    venue.lose_reports(False)
    with engine.running() as second:
        await engine.finishes(second)
    last = engine.actions()[-1].split()
    assert (Decimal(last[0]), last[2]) == (3, "CANCELED"), last  # canceled with its fill, not FILLED
    trades = engine.trades()
    assert venue.venue_fills() == (1, Decimal(3)) and [q for _, q in trades] == ["3"]
    assert venue.order_count() == 1
