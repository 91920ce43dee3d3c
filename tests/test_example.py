"""The example application as a user runs it: ``python -m exo example`` in a
subprocess on a free loopback port with the replay feed, driven over HTTP
with real sockets, its fill lines read from its stdout."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.redis_server import free_port

ROOT = Path(__file__).parent.parent
FILL = re.compile(r"^(?P<id>[0-9a-f]{32}) fill (?P<qty>\d+(?:\.\d+)?) @ (?P<px>\d+(?:\.\d+)?)$")


class Stream:
    """Lines of one pipe, collected by a thread; waiters are woken per line."""

    def __init__(self, pipe: Any) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: Any) -> None:
        for raw in pipe:
            with self._cond:
                self.lines.append(raw.rstrip("\n"))
                self._cond.notify_all()
        pipe.close()

    def wait(self, predicate: Callable[[list[str]], bool], timeout: float = 10.0) -> list[str]:
        """Until ``predicate(lines)`` holds; the timeout is a guard."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.lines), timeout):
                tail = "\n".join(self.lines[-20:])
                raise AssertionError(f"timed out after {timeout}s; last lines:\n{tail}")
            return list(self.lines)

    def join(self) -> None:
        self._thread.join(5)

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


class Example:
    """One ``python -m exo example`` process."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exo", "example", "--http", f"127.0.0.1:{self.port}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        self.out = Stream(self.proc.stdout)
        self.err = Stream(self.proc.stderr)
        self.http = httpx.Client(base_url=self.url, timeout=5.0)

    def wait_ready(self, timeout: float = 20.0) -> Example:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.err.join()
                raise AssertionError(f"example exited with {self.proc.returncode}:\n{self.err.text()}")
            try:
                if self.http.get("/healthz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"example not ready within {timeout}s:\n{self.err.text()}")
            time.sleep(0.05)

    def submit(self, side: str, symbol: str, qty: str, **kw: Any) -> str:
        r = self.http.post("/v1/orders", json={"side": side, "symbol": symbol, "orderQty": qty}, **kw)
        assert r.status_code == 202, r.text
        order_id: str = r.json()["orderID"]
        return order_id

    def submit_body(self, body: dict[str, str]) -> str:
        r = self.http.post("/v1/orders", json=body)
        assert r.status_code == 202, r.text
        order_id: str = r.json()["orderID"]
        return order_id

    def fills(self, order_id: str) -> list[tuple[Decimal, Decimal]]:
        found = []
        for line in self.out.wait(lambda _: True, 0):
            m = FILL.match(line)
            if m and m["id"] == order_id:
                found.append((Decimal(m["qty"]), Decimal(m["px"])))
        return found

    def wait_line(self, line: str, timeout: float = 10.0) -> None:
        self.out.wait(lambda lines: line in lines, timeout)

    def wait_fills(self, order_id: str, n: int, timeout: float = 10.0) -> None:
        prefix = f"{order_id} fill "
        self.out.wait(lambda lines: sum(x.startswith(prefix) for x in lines) >= n, timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Sends ``sig``; returns the exit code and how long the exit took."""
        self.http.close()
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"example did not exit within {timeout}s of {sig!r}") from None
        elapsed = time.monotonic() - t0
        self.out.join()
        self.err.join()
        return rc, elapsed


@pytest.fixture
def start() -> Iterator[Callable[..., Example]]:
    started: list[Example] = []

    def _start(*args: str, env: dict[str, str] | None = None) -> Example:
        ex = Example(*args, env=env)
        started.append(ex)
        return ex.wait_ready()

    yield _start
    for ex in started:
        ex.http.close()
        if ex.proc.poll() is None:
            ex.proc.kill()
            ex.proc.wait()


@pytest.fixture(scope="module")
def example() -> Iterator[Example]:
    """One example on the bundled replay and the in-process store, shared by
    the tests that do not stop it."""
    ex = Example("--summary", "0.5").wait_ready()
    yield ex
    ex.stop()


def test_fills_print_one_line_each_and_sum_to_order_qty(example: Example) -> None:
    order_id = example.submit("buy", "BTC-USD", "0.5")  # side is case-insensitive

    example.wait_line(f"{order_id} done")
    fills = example.fills(order_id)
    assert fills and sum(q for q, _ in fills) == Decimal("0.5")
    assert all(q > 0 and px > 0 for q, px in fills)
    lines = example.out.wait(lambda _: True, 0)
    assert lines.index(f"{order_id} done") > max(
        i for i, line in enumerate(lines) if line.startswith(f"{order_id} fill ")
    )

    got = example.http.get(f"/v1/orders/{order_id}")
    assert got.status_code == 200
    body = got.json()
    notional = sum(q * px for q, px in fills)
    assert body["orderID"] == order_id
    assert (body["side"], body["symbol"], body["ordStatus"]) == ("BUY", "BTC-USD", "FILLED")
    assert Decimal(body["orderQty"]) == Decimal(body["cumQty"]) == Decimal("0.5")
    assert Decimal(body["leavesQty"]) == 0
    assert Decimal(body["avgPx"]) == (notional / Decimal("0.5")).quantize(Decimal("0.00000001"))
    assert body["fills"] == len(fills)


def _ticker_replay(path: Path, frames: int = 20) -> Path:
    """A Coinbase ticker recording whose every frame shows BTC-USD 100 bid for
    0.3, 101 offered for 0.4."""
    lines = []
    for i in range(frames):
        frame = {
            "type": "ticker",
            "sequence": 1000 + i,
            "product_id": "BTC-USD",
            "price": "100.5",
            "best_bid": "100",
            "best_bid_size": "0.3",
            "best_ask": "101",
            "best_ask_size": "0.4",
            "side": "buy",
            "time": "2025-11-24T16:00:00.000000Z",
            "trade_id": 1,
            "last_size": "0.01",
        }
        lines.append(json.dumps({"recv_ns": 1_000_000 * i, "frame": frame}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_paper_fills_take_the_far_side_up_to_its_size(start: Callable[..., Example], tmp_path: Path) -> None:
    ex = start("--feed", f"replay:{_ticker_replay(tmp_path / 'book.ndjson')}")
    buy = ex.submit("BUY", "BTC-USD", "1")
    ex.wait_line(f"{buy} done")
    sell = ex.submit("SELL", "BTC-USD", "1")
    ex.wait_line(f"{sell} done")

    # A buy takes the ask (101, 0.4 shown), a sell hits the bid (100, 0.3 shown),
    # each fill min(size shown, quantity left).
    assert ex.fills(buy) == [(Decimal("0.4"), Decimal(101))] * 2 + [(Decimal("0.2"), Decimal(101))]
    assert ex.fills(sell) == [(Decimal("0.3"), Decimal(100))] * 3 + [(Decimal("0.1"), Decimal(100))]
    assert ex.http.get(f"/v1/orders/{buy}").json()["avgPx"] == "101.00000000"


def test_delete_sends_a_cancel_that_ends_the_order(example: Example) -> None:
    order_id = example.submit("BUY", "BTC-USD", "1000000")
    example.wait_fills(order_id, 1)

    r = example.http.delete(f"/v1/orders/{order_id}")
    assert r.status_code == 202, r.text
    example.wait_line(f"{order_id} canceled")
    lines = example.out.wait(lambda _: True, 0)
    after = lines[lines.index(f"{order_id} canceled") :]
    assert not any(line.startswith(f"{order_id} ") for line in after[1:])
    body = example.http.get(f"/v1/orders/{order_id}").json()
    assert body["ordStatus"] == "CANCELED"
    assert Decimal(body["cumQty"]) == sum(q for q, _ in example.fills(order_id))
    assert Decimal(body["cumQty"]) < Decimal(1000000)

    again = example.http.delete(f"/v1/orders/{order_id}")
    assert again.status_code == 409 and "already CANCELED" in again.json()["detail"]


def test_unknown_order_is_404(example: Example) -> None:
    for method in ("GET", "DELETE"):
        r = example.http.request(method, "/v1/orders/0123456789abcdef0123456789abcdef")
        assert r.status_code == 404
        assert r.json()["detail"] == 'no order "0123456789abcdef0123456789abcdef"'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '{"side": "HOLD", "symbol": "BTC-USD", "orderQty": "1"}',
            'side must be BUY or SELL (ASCII, any case), got "HO',
        ),
        ('{"side": "BUY", "symbol": "", "orderQty": "1"}', "symbol must not be empty"),
        ('{"side": "BUY", "symbol": "  ", "orderQty": "1"}', "symbol must be 1-32 characters of A-Z 0-9"),
        ('{"side": "BUY", "orderQty": "1"}', "symbol is required"),
        ('{"side": "BUY", "symbol": "BTC-USD"}', "orderQty is required"),
        (
            '{"side": "BUY", "symbol": "BTC-USD", "orderQty": "0"}',
            "orderQty must be positive, not zero",
        ),
        ('{"side": "BUY", "symbol": "BTC-USD", "orderQty": "-0.5"}', 'got "-0.5"'),
        ('{"side": "BUY", "symbol": "BTC-USD", "orderQty": "half"}', 'got "half"'),
        ('{"side": "BUY", "symbol": "BTC-USD", "orderQty": "Infinity"}', 'got "Infinity"'),
        ('{"side": "BUY", "symbol": "BTC-USD", "orderQty": null}', "got null"),
        ('{"side": "BUY", "symbol": "BTC-USD", "orderQty": true}', "got true"),
        ('{"side": "BUY", "symbol": "BTC-USD", "orderQty": [1]}', "got [1]"),
        ('{"side": "BUY", "symbol": "BTC-USD", "orderQty": "1",', "malformed JSON body"),
        ("side=BUY&symbol=BTC-USD", "malformed JSON body"),
        ("[1, 2]", "body must be a JSON object with side, symbol and orderQty"),
        ("", "empty body"),
        ('{"side": 1, "symbol": 2, "orderQty": "1"}', "got 1; symbol must be a string"),
        ('{"side": "BUY", "symbol": "BTC-USD", "orderQty": "1e999999999"}', "no sign, exponent, spaces"),
        ('{"side": "BUY", "symbol": "BTC-USD", "orderQty": "1000000000000000"}', "at most 15 digits before"),
        ('{"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.00000000000001"}', "at most 13 decimal places"),
    ],
)
def test_bad_body_is_400_saying_what_is_wrong(example: Example, body: str, message: str) -> None:
    r = example.http.post("/v1/orders", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert message in r.json()["detail"]


def test_bad_bytes_and_methods_are_4xx_never_5xx(example: Example) -> None:
    for method, path, content in [
        ("POST", "/v1/orders", b"\xff\xfe\x00"),
        ("POST", "/v1/orders", b'{"side": "BUY", "symbol": "BTC-USD", "orderQty": "1e999999999"}'),
        ("PUT", "/v1/orders", b"{}"),
        ("POST", "/v1/orders/x", b"{}"),
        ("GET", "/v2/orders", b""),
    ]:
        r = example.http.request(method, path, content=content)
        assert 400 <= r.status_code < 500, (method, path, content, r.status_code, r.text)


def test_summary_lines_and_metrics_show_the_calm(example: Example) -> None:
    order_id = example.submit("SELL", "BTC-USD", "1000000")
    example.err.wait(lambda lines: any(f"{order_id} SELL 1000000 BTC-USD: " in x for x in lines))
    line = next(x for x in example.err.text().splitlines() if f"{order_id} SELL 1000000 BTC-USD: " in x)
    assert re.search(r"\d+ quotes merged, staleness [\d.]+ [um]s, filled [\d.]+ of 1000000", line), line

    text = example.http.get("/metrics").text
    for name in (
        "exo_updates_delivered_total",
        "exo_quotes_merged_total",
        "exo_trades_merged_total",
        "exo_delegate_action_seconds_bucket",
        "exo_update_staleness_seconds_bucket",
        "exo_live_orders",
        "exo_feed_frames_total",
        "exo_store_failures_total",
    ):
        assert re.search(rf"^{name}(\{{.*\}})? ", text, re.M), name
    delivered = re.search(r"^exo_updates_delivered_total (\S+)", text, re.M)
    assert delivered and float(delivered[1]) > 0
    assert example.http.delete(f"/v1/orders/{order_id}").status_code == 202


def test_openapi_docs_are_served(example: Example) -> None:
    spec = example.http.get("/openapi.json").json()
    assert {"/v1/orders", "/v1/orders/{order_id}", "/metrics"} <= set(spec["paths"])
    assert example.http.get("/docs").status_code == 200


def test_bearer_token_protects_the_api(start: Callable[..., Example]) -> None:
    ex = start(env={"EXO_TOKEN": "s3cret"})
    body = {"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.1"}
    missing = ex.http.post("/v1/orders", json=body)
    assert missing.status_code == 401 and "missing bearer token" in missing.json()["detail"]
    wrong = ex.http.post("/v1/orders", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong bearer token"
    assert ex.http.get("/v1/orders/x").status_code == 401
    order_id = ex.submit("BUY", "BTC-USD", "0.1", headers={"Authorization": "Bearer s3cret"})
    ex.wait_line(f"{order_id} done")


def test_sigterm_stops_within_seconds_without_canceling(start: Callable[..., Example]) -> None:
    ex = start()
    order_id = ex.submit("BUY", "BTC-USD", "1000000")
    ex.wait_fills(order_id, 1)

    rc, elapsed = ex.stop(signal.SIGTERM)

    assert rc == 0, ex.err.text()
    assert elapsed < 5.0
    log = ex.err.text()
    assert "SIGTERM: stopping" in log
    assert "stopped: 1 live order(s) cleaned up, not canceled" in log
    assert f"{order_id} canceled" not in ex.out.text()


def test_restart_with_redis_resumes_a_half_filled_order(
    start: Callable[..., Example], redis_url: str
) -> None:
    first = start("--redis", redis_url, "--speed", "1")
    order_id = first.submit("BUY", "BTC-USD", "1000")  # ~5 s of the replay at its recorded pace
    first.wait_fills(order_id, 10)
    rc, elapsed = first.stop(signal.SIGTERM)
    assert rc == 0 and elapsed < 5.0, first.err.text()
    before = sum(q for q, _ in first.fills(order_id))
    assert 0 < before < 1000
    assert f"{order_id} done" not in first.out.text()

    second = start("--redis", redis_url, "--speed", "max")
    resumed = second.http.get(f"/v1/orders/{order_id}")
    assert resumed.status_code == 200, second.err.text()
    # Picked up exactly where the first run stopped (it may have filled more since).
    assert Decimal(resumed.json()["fills"]) >= len(first.fills(order_id))
    assert f"order {order_id} resumed: BUY 1000 BTC-USD, {before} filled" in second.err.text()
    # A guard, not a speed test: each fill is now a child order round trip
    # (IOC to the paper venue, reports journaled in Redis), ~3,000 of them.
    second.wait_line(f"{order_id} done", timeout=90)

    after = sum(q for q, _ in second.fills(order_id))
    assert before + after == Decimal(1000)
    body = second.http.get(f"/v1/orders/{order_id}").json()
    assert (body["ordStatus"], Decimal(body["cumQty"])) == ("FILLED", Decimal(1000))
    assert body["fills"] == len(first.fills(order_id)) + len(second.fills(order_id))


def test_bad_flag_exits_with_a_message(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "exo", "example", "--feed", f"replay:{tmp_path / 'missing.ndjson'}"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "replay file not found" in done.stderr


# -- child orders through the paper venue ------------------------------------------


def test_get_shows_the_child_orders_whose_reports_made_the_fills(example: Example) -> None:
    order_id = example.submit("BUY", "ETH-USD", "0.5")
    example.wait_line(f"{order_id} done")
    body = example.http.get(f"/v1/orders/{order_id}").json()
    children = body["childOrders"]
    assert children and all(c["ordType"] == "LIMIT" and c["timeInForce"] == "IOC" for c in children)
    filled = [c for c in children if Decimal(c["cumQty"]) > 0]
    # A done order lists its last children; the fills of older ones are counted apart.
    assert len(children) <= 3
    shown = sum(Decimal(c["cumQty"]) for c in filled)
    assert shown + Decimal(body["childOrdersDroppedCumQty"]) == Decimal("0.5")
    if body["childOrdersDropped"] == 0:
        assert shown == Decimal("0.5")
    assert all(c["clOrdID"] and c["secondaryOrderID"] for c in filled)
    assert {c["ordStatus"] for c in children} <= {"FILLED", "CANCELED"}


def test_unknown_symbol_is_400_naming_it(example: Example) -> None:
    r = example.http.post("/v1/orders", json={"side": "BUY", "symbol": "DOGE-USD", "orderQty": "1"})
    assert r.status_code == 400
    assert r.json()["detail"] == "unknown symbol 'DOGE-USD': venue paper lists BTC-USD, ETH-USD"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"price": "100.001"}, "price 100.001 is not a positive multiple of the tick size 0.01"),
        ({"ordType": "LIMIT"}, "needs a price for ordType LIMIT"),
        ({"ordType": "MARKET", "price": "100"}, "which a MARKET order must not have"),
        ({"timeInForce": "IOC"}, "applies to a LIMIT order only"),
        ({"price": "100", "timeInForce": "DAY"}, "timeInForce"),
        ({"price": "-1"}, "price must be a positive decimal of ASCII digits"),
    ],
)
def test_bad_limit_fields_are_400(example: Example, extra: dict[str, str], message: str) -> None:
    r = example.http.post("/v1/orders", json={"side": "BUY", "symbol": "BTC-USD", "orderQty": "1", **extra})
    assert r.status_code == 400, r.text
    assert message in r.json()["detail"]


def test_limit_order_rests_then_fills_when_the_market_reaches_it(
    start: Callable[..., Example], tmp_path: Path
) -> None:
    ex = start("--feed", f"replay:{_ticker_replay(tmp_path / 'book.ndjson')}")
    resting = ex.submit_body({"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.5", "price": "100.5"})
    crossing = ex.submit_body({"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.5", "price": "101"})
    ex.wait_line(f"{crossing} done")
    body = ex.http.get(f"/v1/orders/{resting}").json()
    (child,) = body["childOrders"]
    assert (body["ordStatus"], child["ordStatus"], child["price"]) == ("NEW", "NEW", "100.5")
    assert ex.fills(resting) == []
    assert sum(q for q, _ in ex.fills(crossing)) == Decimal("0.5")
    assert {px for _, px in ex.fills(crossing)} == {Decimal(101)}


def test_post_only_that_would_cross_ends_canceled(start: Callable[..., Example], tmp_path: Path) -> None:
    ex = start("--feed", f"replay:{_ticker_replay(tmp_path / 'book.ndjson')}")
    order_id = ex.submit_body(
        {"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.5", "price": "101", "timeInForce": "post_only"}
    )
    ex.wait_line(f"{order_id} canceled")
    (child,) = ex.http.get(f"/v1/orders/{order_id}").json()["childOrders"]
    assert child["ordStatus"] == "REJECTED" and child["text"].startswith("POST_ONLY_WOULD_CROSS")


def test_delete_cancels_a_resting_limit_child(start: Callable[..., Example], tmp_path: Path) -> None:
    ex = start("--feed", f"replay:{_ticker_replay(tmp_path / 'book.ndjson')}")
    order_id = ex.submit_body({"side": "SELL", "symbol": "BTC-USD", "orderQty": "2", "price": "105"})
    until_child = time.monotonic() + 10
    while not ex.http.get(f"/v1/orders/{order_id}").json()["childOrders"]:
        assert time.monotonic() < until_child
        time.sleep(0.02)
    assert ex.http.delete(f"/v1/orders/{order_id}").status_code == 202
    ex.wait_line(f"{order_id} canceled")
    body = ex.http.get(f"/v1/orders/{order_id}").json()
    assert body["ordStatus"] == "CANCELED" and body["childOrders"][0]["ordStatus"] == "CANCELED"


def test_kill_9_then_restart_fills_exactly_order_qty_from_reports(
    start: Callable[..., Example], redis_url: str
) -> None:
    first = start("--redis", redis_url, "--speed", "1")
    order_id = first.submit("BUY", "BTC-USD", "200")
    first.wait_fills(order_id, 10)
    rc, _ = first.stop(signal.SIGKILL)
    assert rc == -signal.SIGKILL

    second = start("--redis", redis_url, "--speed", "max")
    resumed = re.search(rf"order {order_id} resumed: BUY 200 BTC-USD, (\S+) filled", second.err.text())
    assert resumed, second.err.text()
    checkpointed = Decimal(resumed[1])
    second.wait_line(f"{order_id} done", timeout=30)
    # Reports journaled after the last checkpoint are applied (and printed) again
    # on the restart, once: the checkpoint plus the second run's fills is the order.
    assert checkpointed + sum(q for q, _ in second.fills(order_id)) == Decimal(200)
    body = second.http.get(f"/v1/orders/{order_id}").json()
    assert (body["ordStatus"], Decimal(body["cumQty"])) == ("FILLED", Decimal(200))


def test_get_all_live_orders_shows_their_child_orders(start: Callable[..., Example], tmp_path: Path) -> None:
    ex = start("--feed", f"replay:{_ticker_replay(tmp_path / 'book.ndjson')}")
    order_id = ex.submit_body({"side": "BUY", "symbol": "BTC-USD", "orderQty": "0.5", "price": "99"})
    deadline = time.monotonic() + 10
    while True:
        (order,) = [o for o in ex.http.get("/v1/orders").json()["orders"] if o["orderID"] == order_id]
        if order["childOrders"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (order["ordType"], order["price"], order["timeInForce"]) == ("LIMIT", "99", "GTC")
    assert order["childOrders"][0]["ordStatus"] in ("PENDING_NEW", "NEW")
