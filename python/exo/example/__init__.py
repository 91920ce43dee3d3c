"""The example application: orders over HTTP, filled on paper against live or
replayed quotes.

``exo example`` (see ``exo.cli``) wires it together:

- ``paper.py``: the paper delegate (fills at the far side of each quote) and
  the ``Book`` of every order's progress, which HTTP reads;
- ``app.py``: the FastAPI app (``/v1/orders``, ``/metrics``, OpenAPI docs);
- ``metrics.py``: Prometheus metrics from the delegates, the engine, the feed
  and the store;
- ``runner.py``: engine + feed + store + uvicorn + signals, and the
  once-a-second summary line per live order.

The embedded defaults need no network and no Redis: the replay feed plays
``SAMPLE`` (recorded-format Coinbase ticker frames for BTC-USD and ETH-USD)
in a loop, and the store is in process. FastAPI, uvicorn and prometheus-client
come with ``pip install 'exo-execution[example]'``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLE"]

SAMPLE = Path(__file__).parent / "data" / "coinbase-sample.ndjson"
"""The bundled replay: 4,000 Coinbase ``ticker`` frames, 0.2-2 ms apart."""
