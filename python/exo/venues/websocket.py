"""The connection a websocket venue keeps for its execution reports (Binance's
WebSocket API, BitMEX's ``/realtime``): connect, open the session, reconcile,
then read until the connection drops or its lifetime ends, and again.

The invariant: the venue is ready (``send`` goes out, ``start`` returns) only
between a reconciliation and the loss of that connection, so no report the
stream missed while it was down is left unasked for (VENUES.md: "reconnect
and at start, query open orders and fills since the last one seen").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from exo.instrument import Instrument
from exo.venues.tracking import Tracker, TrackingVenue

__all__ = ["WebSocketVenue", "stop_task"]

log = logging.getLogger(__name__)


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancels ``task`` (None: nothing) and waits for it to end; what it
    raised on the way out is dropped (it is stopping)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class WebSocketVenue(TrackingVenue):
    """A venue whose reports come on a websocket kept open (module doc).

    A venue implements ``_read(ws)`` (returns when the venue asks to
    reconnect), and may implement ``_open_session(ws)`` (before the reader
    runs: it may read the socket itself), ``_session_start()`` (once the
    reader runs: requests answered on the socket), ``_connection_lost(exc)``
    (log it, or raise to stop reconnecting) and ``_disconnected()``.

    ``reconnect_delay`` (s) between a lost connection and the next attempt;
    ``connection_lifetime`` (s, None: no limit) after which the connection is
    renewed. ``request_timeout`` also bounds the websocket's opening handshake.
    """

    _reconnect_on: tuple[type[BaseException], ...] = (OSError, websockets.WebSocketException)
    """What a lost connection raises: logged (``_connection_lost``), then reconnected."""

    def __init__(
        self,
        name: str,
        instruments: Iterable[Instrument],
        *,
        reconnect_delay: float,
        connection_lifetime: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name, instruments, **options)
        self.tracker = Tracker()
        self._reconnect_delay = reconnect_delay
        self._lifetime = connection_lifetime
        self._ws: ClientConnection | None = None
        self._connection: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self.connects = 0
        """How many times a connection was established (1 + reconnects)."""

    async def _connect(self, url: str, **connect_options: Any) -> None:
        """Starts keeping the connection to ``url``; returns once the first one
        is reconciled, or raises what ended the attempts (a refused key)."""
        self._stopping = False
        connection = self._connection = asyncio.create_task(
            self._keep_connected(url, connect_options), name=f"exo-{self.name}-ws"
        )
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({ready, connection}, return_when=asyncio.FIRST_COMPLETED)
        if connection in done:
            ready.cancel()
            connection.result()

    async def stop(self) -> None:
        """Closes the connection and stops reconnecting. Orders are left at the venue."""
        self._stopping = True
        await super().stop()
        await stop_task(self._connection)
        if self._ws is not None:
            await self._ws.close()

    async def _keep_connected(self, url: str, connect_options: dict[str, Any]) -> None:
        while not self._stopping:
            try:
                async with connect(url, open_timeout=self._request_timeout, **connect_options) as ws:
                    self._ws = ws
                    self.connects += 1
                    await self._open_session(ws)
                    reader = asyncio.create_task(self._read(ws))
                    try:
                        await self._session_start()
                        await self.reconcile()
                        self._ready.set()
                        if self._lifetime is None:
                            await reader
                        else:
                            await asyncio.wait_for(asyncio.shield(reader), self._lifetime)
                    except asyncio.TimeoutError:
                        if self._lifetime is None:
                            raise
                        log.info("%s: renewing the connection after %.0f s", self.name, self._lifetime)
                    finally:
                        self._ready.clear()
                        await stop_task(reader)
            except self._reconnect_on as exc:
                self._connection_lost(exc)
            finally:
                self._ws = None
                self._disconnected()
            if not self._stopping:
                await asyncio.sleep(self._reconnect_delay)

    # -- what a websocket venue implements ---------------------------------------

    async def _open_session(self, ws: ClientConnection) -> None:
        """Before the reader runs (authenticate and subscribe by reading the socket)."""

    async def _session_start(self) -> None:
        """Once the reader runs, before reconciliation (requests answered on the socket)."""

    async def _read(self, ws: ClientConnection) -> None:
        """Handles the socket's messages; returns when the venue asks to reconnect."""
        raise NotImplementedError

    def _connection_lost(self, exc: BaseException) -> None:
        """Logs a lost connection (one of ``_reconnect_on``); raise to stop reconnecting."""
        log.warning("%s: connection lost (%s); reconnecting", self.name, type(exc).__name__)

    def _disconnected(self) -> None:
        """After each connection ends (e.g. fail the requests awaiting a response)."""
