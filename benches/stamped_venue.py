"""A Coinbase-style ``ticker`` venue on 127.0.0.1 for the one-way latency bench
(run by bench_one_way.py in a process of its own, so that it shares neither the
GIL nor the event loop with the engine it feeds; not a benchmark on its own):

    python benches/stamped_venue.py FRAMES INTERVAL_S

prints its port, then for every connection that subscribes: acknowledges the
subscription and sends FRAMES ticker frames, one every INTERVAL_S seconds. Each
frame's ``best_bid`` is ``time.monotonic_ns()`` taken just before the send
(CLOCK_MONOTONIC is one clock for every process on the machine), so the
receiver can tell how long the frame took to reach its delegate.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

TEMPLATE = (
    '{{"type":"ticker","sequence":{seq},"product_id":"{symbol}","price":"60000.5","open_24h":"1",'
    '"volume_24h":"1","low_24h":"1","high_24h":"1","volume_30d":"1","best_bid":"{sent_ns}",'
    '"best_bid_size":"1.5","best_ask":"{ask}","best_ask_size":"2.5","side":"buy",'
    '"time":"2026-01-01T00:00:00.000000Z","trade_id":{seq},"last_size":"0.01"}}'
)


async def stream(ws: ServerConnection, symbol: str, frames: int, interval_s: float) -> None:
    clock = time.monotonic_ns
    for seq in range(1, frames + 1):
        sent_ns = clock()
        await ws.send(TEMPLATE.format(seq=seq, symbol=symbol, sent_ns=sent_ns, ask=sent_ns + 1))
        await asyncio.sleep(interval_s)


async def main(frames: int, interval_s: float) -> None:
    streams: set[asyncio.Task[None]] = set()

    async def handle(ws: ServerConnection) -> None:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "subscribe":
                    products = msg["product_ids"]
                    ack = {"type": "subscriptions", "channels": [{"name": "ticker", "product_ids": products}]}
                    await ws.send(json.dumps(ack))
                    task = asyncio.create_task(stream(ws, products[0], frames, interval_s))
                    streams.add(task)
                    task.add_done_callback(streams.discard)
        except ConnectionClosed:
            pass

    async with serve(handle, "127.0.0.1", 0, ping_interval=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
