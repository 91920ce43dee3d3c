"""Feeds against real websocket servers on 127.0.0.1 speaking each venue's
protocol, and the replay feed end to end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

import exo
from exo import feeds
from tests.feedserver import VenueServer, coinbase_ticker
from tests.helpers import Errors, Recorder, factory, until

SAMPLE = Path(__file__).parent.parent / "python" / "exo" / "example" / "data" / "coinbase-sample.ndjson"
FAST = dict(backoff_initial=0.05, backoff_max=0.2, connects_per_second=50.0)


@contextlib.asynccontextmanager
async def one_order(
    feed: exo.Feed, order: exo.Order, on_error: Errors | None = None
) -> AsyncIterator[Recorder]:
    """An engine on ``feed`` with ``order`` submitted: yields the order's delegate."""
    async with exo.Engine(factory(), feed=feed, on_error=on_error) as engine:
        await engine.submit(order)
        (d,) = Recorder.instances
        yield d


async def _first_update_with(d: Recorder, what: str) -> exo.Update:
    await until(lambda: any(getattr(u, what) is not None for u in d.updates))
    return next(u for u in d.updates if getattr(u, what) is not None)


async def test_coinbase_subscribes_on_first_order_and_unsubscribes_after_last() -> None:
    async with VenueServer("coinbase") as server:
        feed = feeds.Coinbase(server.url, **FAST)
        async with exo.Engine(factory(finish_after=2), feed=feed) as engine:
            await engine.submit(exo.Order("BUY", "BTC-USD"))
            await engine.submit(exo.Order("SELL", "BTC-USD"))
            await server.subscribed()
            ((_, sub),) = server.subscriptions()
            assert sub["product_ids"] == ["BTC-USD"] and sub["channels"][0] == "ticker"
            await server.send(coinbase_ticker("BTC-USD", "100.5", "101", "100.75", "0.1", 1))
            # each delegate: NEW, then the ticker -> done after 2 updates
            await until(lambda: engine.live == 0)
            await server.wait_for(lambda: server.requests("type", "unsubscribe"))
            ((_, unsub),) = server.requests("type", "unsubscribe")
            assert unsub["product_ids"] == ["BTC-USD"]
            d = Recorder.instances[0]
            u = d.updates[-1]
            assert u.quote == exo.Quote("BTC-USD", "100.5", "1.5", "101", "2.5")
            assert u.trade == exo.Trade("BTC-USD", "0.1", "100.75")
        assert feed.stats()["quotes"] == 1 and feed.stats()["trades"] == 1


async def test_coinbase_print_is_delivered_once_per_trade_id() -> None:
    async with VenueServer("coinbase") as server:
        feed = feeds.Coinbase(server.url, **FAST)
        async with one_order(feed, exo.Order("BUY", "ETH-USD")) as d:
            await server.subscribed()
            # The ticker repeats the last print until the next one.
            for bid, tid in [("10", 5), ("11", 5), ("12", 5), ("13", 6)]:
                await server.send(coinbase_ticker("ETH-USD", bid, "20", "15", "2", tid))
            await until(lambda: feed.stats()["frames"] >= 5)
            await until(lambda: sum(u.trades_merged for u in d.updates) == 2)
            volume = sum((u.trade.trade_volume or u.trade.last_qty) for u in d.updates if u.trade)
            assert volume == Decimal(4)  # two distinct prints of 2
            assert feed.stats()["duplicates"] == 2
            assert d.updates[-1].quote is not None and d.updates[-1].quote.bid_px == Decimal(13)


# A thin product's ticker, from public bug reports of feed handlers: no asks.
ZIL_NO_ASK = (
    '{"type":"ticker","sequence":6,"product_id":"ZIL-USDC","price":"0.0215","best_bid":"0.0214",'
    '"best_bid_size":"10","best_ask":null,"best_ask_size":null,"side":"buy",'
    '"time":"2019-02-05T12:00:00.000000Z","trade_id":7,"last_size":"100"}'
)


async def test_coinbase_ticker_with_a_null_ask_delivers_its_print_and_an_empty_ask() -> None:
    errors = Errors()
    async with VenueServer("coinbase") as server:
        feed = feeds.Coinbase(server.url, **FAST)
        async with one_order(feed, exo.Order("BUY", "ZIL-USDC"), errors) as d:
            await server.subscribed()
            await server.send(ZIL_NO_ASK)
            u = await _first_update_with(d, "trade")
            assert u.trade == exo.Trade("ZIL-USDC", "100", "0.0215")
            q = await _first_update_with(d, "quote")
            assert q.quote == exo.Quote("ZIL-USDC", "0.0214", "10", None, None)
            assert q.quote is not None and q.quote.far("BUY") is None and q.quote.spread is None
        assert feed.stats()["errors"] == 0 and not errors


async def test_an_idle_products_first_ticker_is_an_empty_quote_not_an_error() -> None:
    errors = Errors()
    idle = {
        "type": "ticker",
        "sequence": 1,
        "product_id": "ZIL-USDC",
        "price": "0",
        "open_24h": "0",
        "volume_24h": "0",
        "low_24h": "0",
        "high_24h": "0",
        "volume_30d": "0",
        "best_bid": "0",
        "best_ask": "0",
        "side": "",
    }
    async with VenueServer("coinbase") as server:
        feed = feeds.Coinbase(server.url, **FAST)
        async with one_order(feed, exo.Order("BUY", "ZIL-USDC"), errors) as d:
            await server.subscribed()
            await server.send(idle)
            q = await _first_update_with(d, "quote")
            assert q.quote == exo.Quote("ZIL-USDC", None, None, None, None)
        assert feed.stats()["trades"] == 0 and feed.stats()["errors"] == 0 and not errors


def _book_ticker(u: int, bid: str) -> dict[str, object]:
    return {
        "stream": "bnbusdt@bookTicker",
        "data": {"u": u, "s": "BNBUSDT", "b": bid, "B": "31.21", "a": "99", "A": "40.66"},
    }


async def test_binance_older_book_ticker_from_the_new_connection_of_a_renewal_is_dropped_as_stale() -> None:
    async with VenueServer("binance") as server:
        feed = feeds.Binance(server.url, **FAST)
        async with one_order(feed, exo.Order("BUY", "BNBUSDT")) as d:
            await server.subscribed()
            await server.send(_book_ticker(400900301, "25.30"), conn=0)
            await until(lambda: feed.stats()["quotes"] == 1)
            # Renewal: the new connection is live once it delivers; both are open
            # until then, and the new one starts with an older update.
            server.ack = False
            await server.send({"e": "serverShutdown", "E": 1}, conn=0)
            await server.wait_for(lambda: any(i == 1 for i, _ in server.subscriptions()))
            await server.send(_book_ticker(400900299, "25.10"), conn=1)
            await server.send(_book_ticker(400900302, "25.40"), conn=1)
            await until(lambda: feed.stats()["quotes"] == 2)

            def bids() -> set[Decimal | None]:
                return {u.quote.bid_px for u in d.updates if u.quote is not None}

            await until(lambda: Decimal("25.40") in bids())
            assert Decimal("25.10") not in bids()
            stats = feed.stats()
            assert stats["stale"] == 1 and stats["renewals"] == 1 and stats["errors"] == 0


async def test_binance_streams_batched_subscribe_and_ping_answered() -> None:
    async with VenueServer("binance") as server:
        feed = feeds.Binance(server.url, **FAST)
        async with exo.Engine(factory(), feed=feed) as engine:
            for sym in ["BTCUSDT", "ETHUSDT", "BNBUSDT"]:
                await engine.submit(exo.Order("BUY", sym))
            await server.subscribed()
            await asyncio.sleep(0.05)
            params = [p for _, m in server.subscriptions() for p in m["params"]]
            assert sorted(params) == sorted(
                f"{s}@{k}" for s in ["btcusdt", "ethusdt", "bnbusdt"] for k in ["bookTicker", "trade"]
            )
            assert len(server.subscriptions()) <= 5  # within 5 messages/s
            await server.send(
                {
                    "stream": "btcusdt@bookTicker",
                    "data": {"u": 1, "s": "BTCUSDT", "b": "25.35", "B": "31.21", "a": "25.36", "A": "40.66"},
                }
            )
            await server.send(
                {
                    "stream": "btcusdt@trade",
                    "data": {
                        "e": "trade",
                        "E": 1,
                        "s": "BTCUSDT",
                        "t": 12345,
                        "p": "25.355",
                        "q": "0.5",
                        "b": 88,
                        "a": 50,
                        "T": 1,
                        "m": True,
                        "M": True,
                    },
                }
            )
            pong = await server.connections[0].ping()
            await asyncio.wait_for(pong, 5)  # answered
            d = Recorder.instances[0]
            u = await _first_update_with(d, "trade")
            assert u.trade == exo.Trade("BTCUSDT", "0.5", "25.355")
            q = await _first_update_with(d, "quote")
            assert q.quote == exo.Quote("BTCUSDT", "25.35", "31.21", "25.36", "40.66")


async def test_binance_server_shutdown_renews_the_connection() -> None:
    async with VenueServer("binance") as server:
        errors = Errors()
        feed = feeds.Binance(server.url, **FAST)
        async with exo.Engine(factory(), feed=feed, on_error=errors):
            pass
        async with exo.Engine(factory(), feed=feed, on_error=errors) as engine:
            await engine.submit(exo.Order("BUY", "BTCUSDT"))
            await server.wait_for(lambda: len(server.open()) == 1)
            await server.send({"e": "serverShutdown", "E": 1})
            await server.wait_for(lambda: len(server.connections) == 2 and server.closed == {0})
            assert feed.stats()["renewals"] == 1
            assert any(m["method"] == "SUBSCRIBE" for i, m in server.received if i == 1)


async def test_bitmex_quote_and_trade_tables() -> None:
    async with VenueServer("bitmex") as server:
        feed = feeds.BitMEX(server.url, **FAST)
        async with exo.Engine(factory(), feed=feed) as engine:
            await engine.submit(exo.Order("SELL", "XBTUSD"))
            await server.subscribed()
            ((_, sub),) = server.subscriptions()
            assert sub["args"] == ["quote:XBTUSD", "trade:XBTUSD"]
            await server.send(
                {
                    "table": "trade",
                    "action": "partial",
                    "keys": [],
                    "data": [{"symbol": "XBTUSD", "size": 999, "price": 1, "trdMatchID": "old"}],
                }
            )
            await server.send(
                '{"table":"quote","action":"insert","data":[{"timestamp":"t","symbol":"XBTUSD",'
                '"bidSize":100,"bidPrice":50000.5,"askPrice":50001,"askSize":250}]}'
            )
            await server.send(
                {
                    "table": "trade",
                    "action": "insert",
                    "data": [
                        {"symbol": "XBTUSD", "side": "Buy", "size": 30, "price": 50001.5, "trdMatchID": "m1"},
                        {"symbol": "XBTUSD", "side": "Buy", "size": 10, "price": 50002.5, "trdMatchID": "m2"},
                    ],
                }
            )
            d = Recorder.instances[0]
            u = await _first_update_with(d, "trade")
            assert u.trade is not None and u.trade.trade_volume == Decimal(40)  # the partial was not a print
            assert u.trade.avg_px == Decimal("50001.75")
            q = await _first_update_with(d, "quote")
            assert q.quote == exo.Quote("XBTUSD", "50000.5", "100", "50001", "250")


async def test_reconnects_after_the_server_drops_and_reports_it() -> None:
    errors = Errors()
    async with VenueServer("coinbase") as server:
        feed = feeds.Coinbase(server.url, **FAST)
        async with one_order(feed, exo.Order("BUY", "BTC-USD"), errors) as d:
            await server.subscribed()
            await server.connections[0].close()
            await server.wait_for(lambda: len([1 for i, _ in server.subscriptions() if i == 1]) == 1)
            await server.send(coinbase_ticker("BTC-USD", "1", "2", "1.5", "1", 1), conn=1)
            await _first_update_with(d, "quote")
            await errors.wait(1)
            assert errors[0][0] == "feed:coinbase" and "reconnecting" in errors[0][1]
            assert feed.stats()["reconnects"] == 1


async def test_watchdog_reconnects_a_silent_connection() -> None:
    errors = Errors()
    async with VenueServer("coinbase", ack=False) as server:
        feed = feeds.Coinbase(server.url, silence=0.2, **FAST)
        async with exo.Engine(factory(), feed=feed, on_error=errors) as engine:
            await engine.submit(exo.Order("BUY", "BTC-USD"))
            await server.wait_for(lambda: len(server.connections) >= 2)
            await errors.wait(1)
            assert "no data for 0.2s; the watchdog reconnects" in errors[0][1]


async def test_lifetime_renewal_opens_the_new_connection_before_closing_the_old() -> None:
    async with VenueServer("coinbase") as server:
        feed = feeds.Coinbase(server.url, lifetime=0.3, **FAST)
        async with one_order(feed, exo.Order("BUY", "BTC-USD")) as d:
            await server.subscribed()
            tid = sent = 0
            # Keep printing to every open connection, as the venue would, while
            # the connection is renewed twice.
            while feed.stats()["renewals"] < 2:
                tid += 1
                reached = await server.broadcast(coinbase_ticker("BTC-USD", "1", "2", "1.5", "1", tid))
                assert reached >= 1, "a connection is open at all times"
                sent += 1
                await asyncio.sleep(0.005)
            last = sent
            # Every print once: none lost in the hand-over, none doubled by the overlap.
            await until(lambda: sum(u.trades_merged for u in d.updates) == last)
            await asyncio.sleep(0.05)
            assert sum(u.trades_merged for u in d.updates) == last
            assert feed.stats()["duplicates"] > 0


async def test_connects_are_rate_limited() -> None:
    async def refuse(ws: object) -> None:
        await ws.close()  # type: ignore[attr-defined]

    errors = Errors()
    async with VenueServer("coinbase") as server:
        server.on_connect = refuse
        feed = feeds.Coinbase(server.url, connects_per_second=5.0, backoff_initial=0.001, backoff_max=0.001)
        start = time.monotonic()
        async with exo.Engine(factory(), feed=feed, on_error=errors) as engine:
            await engine.submit(exo.Order("BUY", "BTC-USD"))
            await server.wait_for(lambda: len(server.connect_times) >= 4)
        # 5 per second: the k-th connect is opened no earlier than k * 0.2 s
        # after the start. The server notes a connect when its handler runs,
        # which load can only delay, so each time is a bound that holds on a
        # busy machine (spacing between two handler runs is not: a late one
        # followed by a prompt one looks closer than the connects were).
        since_start = [t - start for t in server.connect_times[:4]]
        for k, elapsed in enumerate(since_start):
            assert elapsed >= k * 0.2 * 0.95, since_start


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("{not json", "malformed frame"),
        (json.dumps({"type": "ticker", "best_bid": "1", "best_ask": "2"}), 'missing field "product_id"'),
        (
            json.dumps(coinbase_ticker("BTC-USD", "one", "2", "1", "1", 9)),
            'field "best_bid" is not a decimal number',
        ),
        (
            json.dumps(coinbase_ticker("BTC-USD", "1_000", "2", "1", "1", 9)),
            'field "best_bid" is not a decimal number: "1_000"',
        ),
        (json.dumps({"type": "level3"}), 'unknown message type "level3"'),
        (
            json.dumps({"type": "error", "message": "Failed to subscribe", "reason": "bad product"}),
            "venue error: Failed to subscribe (bad product)",
        ),
        ("x" * 5000, "exceeds the limit of 4096 bytes"),
    ],
)
async def test_bad_frames_are_counted_reported_and_the_feed_keeps_running(frame: str, message: str) -> None:
    errors = Errors()
    async with VenueServer("coinbase") as server:
        feed = feeds.Coinbase(server.url, max_frame_bytes=4096, **FAST)
        async with exo.Engine(factory(), feed=feed, on_error=errors) as engine:
            await engine.submit(exo.Order("BUY", "BTC-USD"))
            await engine.submit(exo.Order("BUY", "ETH-USD"))
            await server.subscribed()
            await server.send(frame)
            await errors.wait(1)
            assert errors[0][0] == "feed:coinbase"
            assert message in errors[0][1]
            assert frame[:20] in errors[0][1]  # with a snippet of the frame
            await server.send(coinbase_ticker("ETH-USD", "1", "2", "1.5", "1", 1))
            await server.send(coinbase_ticker("BTC-USD", "3", "4", "3.5", "1", 1))
            for d in Recorder.instances:
                await _first_update_with(d, "quote")
            assert feed.stats()["errors"] == 1 and len(server.connections) == 1


async def test_feed_connects_and_bad_frames_are_logged_under_exo_feeds_venue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="exo.feeds")
    async with VenueServer("coinbase") as server:
        feed = feeds.Coinbase(server.url, **FAST)
        async with exo.Engine(factory(), feed=feed, on_error=lambda *_: None) as engine:
            await engine.submit(exo.Order("SELL", "ETH-USD"))
            await server.subscribed()
            await server.send("{not json")
            await until(lambda: feed.stats()["errors"] == 1)
    records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("exo.feeds")]
    assert ("exo.feeds.coinbase", logging.INFO, f"connected to {server.url}") in records, records
    bad = [r for r in records if r[1] == logging.WARNING]
    assert bad and bad[0][0] == "exo.feeds.coinbase" and "malformed frame" in bad[0][2], records


async def test_a_peer_closing_mid_frame_is_reported_and_reconnected() -> None:
    errors = Errors()
    async with VenueServer("coinbase") as server:
        feed = feeds.Coinbase(server.url, **FAST)
        async with exo.Engine(factory(), feed=feed, on_error=errors) as engine:
            await engine.submit(exo.Order("BUY", "BTC-USD"))
            await server.subscribed()
            transport = server.connections[0].transport
            transport.write(b"\x81\x7e\x01\x00" + b'{"type":"ticker"')  # header says 256 bytes; 16 follow
            transport.abort()
            await errors.wait(1)
            assert errors[0][0] == "feed:coinbase" and "reconnecting" in errors[0][1]
            await server.wait_for(lambda: len(server.connections) == 2)
            await server.send(coinbase_ticker("BTC-USD", "1", "2", "1.5", "1", 1), conn=1)
            await _first_update_with(Recorder.instances[0], "quote")


async def test_replay_feeds_the_engine_the_recorded_quotes_and_every_print_once() -> None:
    expected_last: dict[str, exo.Quote] = {}
    prints: dict[str, dict[int, Decimal]] = {"BTC-USD": {}, "ETH-USD": {}}
    tickers = 0
    for line in SAMPLE.read_text().splitlines():
        f = json.loads(line)["frame"]
        if f.get("type") == "ticker":
            tickers += 1
            s = f["product_id"]
            expected_last[s] = exo.Quote(
                s, f["best_bid"], f["best_bid_size"], f["best_ask"], f["best_ask_size"]
            )
            prints[s].setdefault(f["trade_id"], Decimal(f["last_size"]))

    feed = feeds.Replay(SAMPLE)
    async with exo.Engine(factory(), feed=feed) as engine:
        await engine.submit(exo.Order("BUY", "BTC-USD"))
        await engine.submit(exo.Order("SELL", "ETH-USD"))
        await until(lambda: feed.stats()["frames"] == 4000, timeout=20)
        btc, eth = Recorder.instances
        for d, sym in [(btc, "BTC-USD"), (eth, "ETH-USD")]:
            await until(lambda d=d, sym=sym: d.updates[-1].quote == expected_last[sym], timeout=20)
            volume = sum((u.trade.trade_volume or u.trade.last_qty) for u in d.updates if u.trade)
            assert volume == sum(prints[sym].values())
            assert sum(u.trades_merged for u in d.updates) == len(prints[sym])
            assert all(u.quote is None or u.quote.symbol == sym for u in d.updates)
        stats = feed.stats()
        assert stats["errors"] == 0 and stats["quotes"] == tickers
        assert stats["trades"] == len(prints["BTC-USD"]) + len(prints["ETH-USD"])


async def test_replay_of_a_missing_file_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="replay file not found"):
        feeds.Replay("/nonexistent/frames.ndjson")


async def test_feed_errors_in_other_feeds_do_not_affect_each_other() -> None:
    errors = Errors()
    async with VenueServer("coinbase") as a, VenueServer("binance") as b:
        fa = feeds.Coinbase(a.url, symbols=["BTC-USD"], **FAST)
        fb = feeds.Binance(b.url, symbols=["BTCUSDT"], **FAST)
        async with exo.Engine(factory(), feed=[fa, fb], on_error=errors) as engine:
            await engine.submit(exo.Order("BUY", "BTC-USD"))
            await engine.submit(exo.Order("BUY", "BTCUSDT"))
            await a.subscribed()
            await b.subscribed()
            assert not b.requests("type", "subscribe") and not a.requests("method", "SUBSCRIBE")
            await a.send("garbage")
            await b.send(
                {
                    "stream": "btcusdt@bookTicker",
                    "data": {"u": 1, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"},
                }
            )
            await _first_update_with(Recorder.instances[1], "quote")
            await errors.wait(1)
            assert errors[0][0] == "feed:coinbase"
            assert fb.stats()["errors"] == 0


async def test_spin_keeps_delivering_and_stops_cleanly() -> None:
    async with VenueServer("coinbase") as server:
        feed = feeds.Coinbase(server.url, **FAST)
        async with exo.Engine(factory(), feed=feed, spin=0.002) as engine:
            await engine.submit(exo.Order("BUY", "BTC-USD"))
            await server.subscribed()
            for tid in range(1, 21):
                await server.send(coinbase_ticker("BTC-USD", str(tid), "100", "50", "1", tid))
                await asyncio.sleep(0.001)
            (d,) = Recorder.instances
            await until(lambda: sum(u.trades_merged for u in d.updates) == 20)
            assert d.updates[-1].quote is not None and d.updates[-1].quote.bid_px == Decimal(20)
        assert not engine.running


def test_spin_must_be_a_small_number_of_seconds() -> None:
    with pytest.raises(ValueError, match="spin must be a number of seconds between 0 and 1"):
        exo.Engine(factory(), spin=5)
