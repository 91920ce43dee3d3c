"""A venue's websocket server on 127.0.0.1 for feed tests: records what
clients send, acknowledges subscriptions the way the venue does, and lets a
test push frames, drop connections or stay silent."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


class VenueServer:
    def __init__(self, venue: str, ack: bool = True) -> None:
        self.venue = venue
        self.ack = ack
        self.connections: list[ServerConnection] = []
        self.connect_times: list[float] = []
        self.closed: set[int] = set()
        self.received: list[tuple[int, Any]] = []
        self.on_connect: Callable[[ServerConnection], Awaitable[None]] | None = None
        self._server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> VenueServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=None, ping_interval=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        idx = len(self.connections)
        self.connections.append(ws)
        self.connect_times.append(time.monotonic())
        try:
            if self.on_connect is not None:
                await self.on_connect(ws)
            async for raw in ws:
                msg = json.loads(raw)
                self.received.append((idx, msg))
                if self.ack:
                    await self._acknowledge(ws, msg)
        except ConnectionClosed:
            pass
        finally:
            self.closed.add(idx)

    async def _acknowledge(self, ws: ServerConnection, msg: dict[str, Any]) -> None:
        if self.venue == "coinbase" and msg.get("type") == "subscribe":
            await ws.send(
                json.dumps(
                    {
                        "type": "subscriptions",
                        "channels": [{"name": "ticker", "product_ids": msg["product_ids"]}],
                    }
                )
            )
        elif self.venue == "binance":
            await ws.send(json.dumps({"result": None, "id": msg["id"]}))
        elif self.venue == "bitmex" and msg.get("op") == "subscribe":
            await ws.send(json.dumps({"success": True, "subscribe": msg["args"][0], "request": msg}))

    def open(self) -> list[int]:
        return [i for i in range(len(self.connections)) if i not in self.closed]

    def requests(self, key: str, value: str) -> list[tuple[int, Any]]:
        return [(i, m) for i, m in self.received if isinstance(m, dict) and m.get(key) == value]

    async def send(self, frame: dict[str, Any] | str, conn: int = -1) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.connections[conn].send(text)

    async def broadcast(self, frame: dict[str, Any] | str) -> int:
        """Sends to every open connection; returns to how many."""
        sent = 0
        for i in self.open():
            try:
                await self.send(frame, i)
                sent += 1
            except ConnectionClosed:
                pass
        return sent

    def subscriptions(self) -> list[tuple[int, Any]]:
        """(connection index, message) of each subscribe request, in this
        venue's form: Coinbase ``type: subscribe``, Binance ``method:
        SUBSCRIBE``, BitMEX ``op: subscribe``."""
        key, value = {"coinbase": ("type", "subscribe"), "binance": ("method", "SUBSCRIBE")}.get(
            self.venue, ("op", "subscribe")
        )
        return self.requests(key, value)

    async def subscribed(self) -> None:
        """Waits for the first subscribe request."""
        await self.wait_for(lambda: self.subscriptions())

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> None:
        async def _wait() -> None:
            while not predicate():
                await asyncio.sleep(0.002)

        await asyncio.wait_for(_wait(), timeout)


# Coinbase numbers every message of a product; each ticker made here is newer.
_sequence = itertools.count(1)


def coinbase_ticker(product: str, bid: str, ask: str, price: str, size: str, trade_id: int) -> dict[str, Any]:
    return {
        "type": "ticker",
        "sequence": next(_sequence),
        "product_id": product,
        "price": price,
        "open_24h": "1",
        "volume_24h": "1",
        "low_24h": "1",
        "high_24h": "1",
        "volume_30d": "1",
        "best_bid": bid,
        "best_bid_size": "1.5",
        "best_ask": ask,
        "best_ask_size": "2.5",
        "side": "buy",
        "time": "2026-01-01T00:00:00.000000Z",
        "trade_id": trade_id,
        "last_size": size,
    }
