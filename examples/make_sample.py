"""Writes python/exo/example/data/coinbase-sample.ndjson (the sample that ships
inside the package and that ``exo example`` replays): a recorded-format sample of the
Coinbase Exchange ``ticker`` channel for BTC-USD and ETH-USD, built from the
documented message schema (not captured from the venue).

Each line is ``{"recv_ns": <receive time>, "frame": <ticker message>}``. Prices
follow a seeded random walk; about one ticker in three is a new print (new
``trade_id``), the rest move the book and repeat the last print, as the real
channel does. Heartbeats and the subscriptions ack are included.

    python examples/make_sample.py [--frames 4000] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

START = {"BTC-USD": Decimal("60000.00"), "ETH-USD": Decimal("3000.00")}
TICK = {"BTC-USD": Decimal("0.01"), "ETH-USD": Decimal("0.01")}
T0_NS = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z
SAMPLE = Path(__file__).parent.parent / "python" / "exo" / "example" / "data" / "coinbase-sample.ndjson"


def iso(ns: int) -> str:
    from datetime import datetime, timezone

    dt = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def size(rng: random.Random) -> str:
    return str(Decimal(rng.uniform(0.001, 0.6)).quantize(Decimal("0.00000001"), ROUND_HALF_UP))


def generate(frames: int, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    mid = dict(START)
    trade_id = {"BTC-USD": 700_000_000, "ETH-USD": 400_000_000}
    last = {s: (str(mid[s]), size(rng)) for s in mid}
    seq = {"BTC-USD": 90_000_000_000, "ETH-USD": 50_000_000_000}
    out: list[dict[str, object]] = []
    ns = T0_NS
    out.append(
        {
            "recv_ns": ns,
            "frame": {
                "type": "subscriptions",
                "channels": [
                    {"name": "ticker", "product_ids": list(mid)},
                    {"name": "heartbeat", "product_ids": list(mid)},
                ],
            },
        }
    )
    while len(out) < frames:
        ns += rng.randint(200_000, 2_000_000)  # 0.2-2 ms apart
        sym = "BTC-USD" if rng.random() < 0.6 else "ETH-USD"
        seq[sym] += 1
        if rng.random() < 0.01:
            out.append(
                {
                    "recv_ns": ns,
                    "frame": {
                        "type": "heartbeat",
                        "last_trade_id": trade_id[sym],
                        "product_id": sym,
                        "sequence": seq[sym],
                        "time": iso(ns),
                    },
                }
            )
            continue
        step = TICK[sym] * rng.randint(-40, 40)
        mid[sym] = max(TICK[sym], mid[sym] + step)
        half = TICK[sym] * rng.randint(1, 5)
        bid, ask = mid[sym] - half, mid[sym] + half
        side = rng.choice(["buy", "sell"])
        if rng.random() < 0.35:
            trade_id[sym] += 1
            last[sym] = (str(ask if side == "buy" else bid), size(rng))
        out.append(
            {
                "recv_ns": ns,
                "frame": {
                    "type": "ticker",
                    "sequence": seq[sym],
                    "product_id": sym,
                    "price": last[sym][0],
                    "open_24h": str(START[sym]),
                    "volume_24h": "12345.67890123",
                    "low_24h": str(START[sym] * Decimal("0.97")),
                    "high_24h": str(START[sym] * Decimal("1.03")),
                    "volume_30d": "456789.12345678",
                    "best_bid": str(bid),
                    "best_bid_size": size(rng),
                    "best_ask": str(ask),
                    "best_ask_size": size(rng),
                    "side": side,
                    "time": iso(ns),
                    "trade_id": trade_id[sym],
                    "last_size": last[sym][1],
                },
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=SAMPLE)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as f:
        for rec in generate(args.frames):
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    print(f"wrote {args.frames} frames to {args.out}")


if __name__ == "__main__":
    main()
