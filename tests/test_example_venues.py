"""``exo example --venue binance|bitmex|fix``: the example as a user runs it, its
child orders sent to a loopback venue (tests/venue_servers) that checks every
signature (the FIX acceptor: every session rule), keys and endpoints given
only through environment variables."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.test_example import ROOT, Example
from tests.venue_servers.binance import BinanceServer
from tests.venue_servers.bitmex import BitMEXServer
from tests.venue_servers.fix import FixAcceptor, need_quickfix

SECRET = "example-secret-never-printed-0123"
KEY = "example-key"
# A book that any buy limit crosses: the venue fills child orders at once.
MARKET = {"BTC-USD": (Decimal("1"), Decimal("100"))}


class ServerThread:
    """A loopback venue on an event loop of its own thread (the example and
    this test talk to it over sockets only)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(server.start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def binance() -> Iterator[ServerThread]:
    t = ServerThread(BinanceServer(KEY, secret=SECRET, market=dict(MARKET)))
    yield t
    t.stop()


@pytest.fixture
def bitmex() -> Iterator[ServerThread]:
    # Lots of 0.0001 so that the example's child quantities (sized on the replayed quotes) fit.
    t = ServerThread(BitMEXServer(KEY, SECRET, market=dict(MARKET), tick_size=0.01, lot_size=0.0001))
    yield t
    t.stop()


@pytest.fixture
def fix() -> Iterator[ServerThread]:
    need_quickfix()  # quickfix-py ships wheels for CPython 3.11/3.12 only: skipped elsewhere
    t = ServerThread(FixAcceptor(market=dict(MARKET)))
    yield t
    t.stop()


@pytest.fixture
def start() -> Iterator[Callable[..., Example]]:
    started: list[Example] = []

    def _start(*args: str, env: dict[str, str]) -> Example:
        ex = Example(*args, env=env)
        started.append(ex)
        return ex.wait_ready()

    yield _start
    for ex in started:
        if ex.proc.poll() is None:
            ex.proc.kill()
            ex.proc.wait()


def one_order(
    start: Callable[..., Example], venue: str, env: dict[str, str]
) -> list[tuple[Decimal, Decimal]]:
    """The example on ``venue`` (keys and endpoints in ``env``) works one BUY
    0.5 BTC-USD order until done, then stops with exit code 0, having printed
    no secret; the order's fills (qty, px) as it printed them."""
    ex = start("--venue", venue, "--summary", "0", env=env)
    order_id = ex.submit("BUY", "BTC-USD", "0.5")
    ex.wait_line(f"{order_id} done", timeout=20)
    fills = ex.fills(order_id)
    rc, _ = ex.stop()
    assert rc == 0
    assert SECRET not in ex.out.text() + ex.err.text()
    return fills


def test_venue_binance_fills_from_the_venue_reports(
    binance: ServerThread, start: Callable[..., Example]
) -> None:
    env = {
        "EXO_BINANCE_API_KEY": KEY,
        "EXO_BINANCE_API_SECRET": SECRET,
        "EXO_BINANCE_URL": binance.server.url,
    }
    fills = one_order(start, "binance", env)
    assert sum(q for q, _ in fills) == Decimal("0.5") == binance.server.filled_qty()
    assert all(px == Decimal("100") for _, px in fills)  # the venue's price, from its reports
    assert any(r["method"] == "order.place" for r in binance.server.requests)


def test_venue_bitmex_fills_from_the_venue_reports(
    bitmex: ServerThread, start: Callable[..., Example]
) -> None:
    env = {
        "EXO_BITMEX_API_KEY": KEY,
        "EXO_BITMEX_API_SECRET": SECRET,
        "EXO_BITMEX_REST_URL": bitmex.server.rest_url,
        "EXO_BITMEX_WS_URL": bitmex.server.ws_url,
    }
    fills = one_order(start, "bitmex", env)
    assert sum(q for q, _ in fills) == Decimal("0.5") == bitmex.server.filled_qty()
    assert (
        bitmex.server.dead_man_calls >= 1 and bitmex.server.dead_man_timeout_ms == 0
    )  # armed, then disarmed


def test_venue_fix_fills_from_the_acceptors_execution_reports(
    fix: ServerThread, start: Callable[..., Example], tmp_path: Path
) -> None:
    instruments = tmp_path / "instruments.json"
    instruments.write_text(json.dumps([{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.0001"}]))
    env = {
        "EXO_FIX_HOST": "127.0.0.1",
        "EXO_FIX_PORT": str(fix.server.port),
        "EXO_FIX_SENDER_COMP_ID": "EXO",
        "EXO_FIX_TARGET_COMP_ID": "VENUE",
        "EXO_FIX_INSTRUMENTS": str(instruments),
        "EXO_FIX_STORE": str(tmp_path / "fix-store"),
    }
    fills = one_order(start, "fix", env)
    # Each fill line came from an ExecutionReport (35=8) of the acceptor, at its price.
    assert sum(q for q, _ in fills) == Decimal("0.5") == fix.server.filled_qty()
    assert len(fills) == len(fix.server.fills) and all(px == Decimal("100") for _, px in fills)
    orders = [m for m in fix.server.received if m.get(35) == "D"]
    assert orders and all(
        m.get(49) == "EXO" and m.get(56) == "VENUE" and m.get(55) == "BTC-USD" for m in orders
    )
    assert any(m.get(35) == "5" for m in fix.server.received)  # logged out cleanly on stop


def test_wrong_key_exits_1_naming_the_venue_and_not_the_secret(binance: ServerThread) -> None:
    env = {**os.environ, "EXO_BINANCE_API_KEY": KEY, "EXO_BINANCE_API_SECRET": "wrong-" + SECRET,
           "EXO_BINANCE_URL": binance.server.url}  # fmt: skip
    p = subprocess.run(
        [sys.executable, "-m", "exo", "example", "--venue", "binance", "--http", "127.0.0.1:0"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )  # fmt: skip
    assert p.returncode == 1
    assert "venue binance: Binance error -1022: Signature for this request is not valid." in p.stderr
    assert SECRET not in p.stdout + p.stderr


def test_missing_credentials_exit_2_naming_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXO_")}
    p = subprocess.run(
        [sys.executable, "-m", "exo", "example", "--venue", "bitmex"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2
    assert "EXO_BITMEX_API_KEY is not set" in p.stderr


def test_help_shows_the_venue_choices_and_no_secret() -> None:
    env = {**os.environ, "EXO_BINANCE_API_SECRET": SECRET, "EXO_VENUE": "binance"}
    p = subprocess.run(
        [sys.executable, "-m", "exo", "example", "--help"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert p.returncode == 0
    assert "paper,binance,bitmex,fix" in p.stdout.replace(" ", "") and "--testnet" in p.stdout
    assert SECRET not in p.stdout
