"""FIX 4.4 order entry: an initiator on QuickFIX (the reference C++ session
engine, through the ``quickfix-py`` wheels).

QuickFIX does the session layer: Logon (35=A), Heartbeat/TestRequest,
ResendRequest and SequenceReset-GapFill, PossDup handling, Logout, and
sequence numbers persisted in a file store (``store_path``), so a restart
carries on where the last run stopped and the acceptor resends what was
missed. This module does the application layer:

- out: NewOrderSingle (D), OrderCancelReplaceRequest (G), OrderCancelRequest
  (F), and OrderStatusRequest (H) to reconcile every live child after each
  logon (exec_type ORDER_STATUS answers);
- in: ExecutionReport (8) -> Report (ExecType 150, OrdStatus 39, ExecID 17
  the de-duplication key, so a PossDup (43) or PossResend (97) copy is handed
  on once); OrderCancelReject (9) -> Report with cxl_rej_response_to
  (CxlRejResponseTo 434) and the reason (CxlRejReason 102, Text 58);
  BusinessMessageReject (j) -> REJECTED for the request it names
  (BusinessRejectRefID 379 = our ClOrdID).

The Logon can carry venue fields: ``Username`` (553) = the credentials' key,
``Password`` (554) = its secret when ``password=True``, and
``logon_fields(fields) -> {tag: value}`` for anything else (e.g. a RawData
(96) signature computed from the Logon's own SendingTime and MsgSeqNum).
``reset_on_logon`` sends ResetSeqNumFlag (141=Y) (venues that support no
ResendRequest, e.g. Binance FIX). No QuickFIX message log is kept: a Logon
can hold a secret.

QuickFIX runs its own threads; callbacks hand their work to the event loop,
where all state lives. An incoming application message is acknowledged to
QuickFIX (which then advances and persists the expected MsgSeqNum) only once
the report reached ``engine.report()``: a kill -9 in between means a resend
after the next Logon (a duplicate, dropped by ExecID), never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

try:
    import quickfix as qf  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the platform
    raise ImportError(
        "exo.venues.FIX needs QuickFIX: pip install quickfix-py (wheels for CPython 3.11 and 3.12 on "
        f"Linux) or build the quickfix package from source ({exc})"
    ) from exc

from exo.child import NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest, Request
from exo.instrument import Instrument
from exo.venues.credentials import Credentials
from exo.venues.tracking import Tracked, Tracker, TrackingVenue

__all__ = ["FIX", "binance_logon", "execution_report", "parse"]

log = logging.getLogger(__name__)

SOH = "\x01"

_EXEC_TYPE = {
    "0": "NEW", "3": "DONE_FOR_DAY", "4": "CANCELED", "5": "REPLACED", "6": "PENDING_CANCEL", "7": "STOPPED",
    "8": "REJECTED", "9": "SUSPENDED", "A": "PENDING_NEW", "B": "CALCULATED", "C": "EXPIRED", "D": "RESTATED",
    "E": "PENDING_REPLACE", "F": "TRADE", "G": "TRADE_CORRECT", "H": "TRADE_CANCEL", "I": "ORDER_STATUS",
    "1": "TRADE", "2": "TRADE",  # FIX 4.2 partial fill / fill, still sent by some 4.4 venues
}  # fmt: skip
_ORD_STATUS = {
    "0": "NEW", "1": "PARTIALLY_FILLED", "2": "FILLED", "3": "DONE_FOR_DAY", "4": "CANCELED",
    "6": "PENDING_CANCEL", "8": "REJECTED", "A": "PENDING_NEW", "C": "EXPIRED", "E": "PENDING_REPLACE",
}  # fmt: skip
_SIDE = {"BUY": "1", "SELL": "2"}
_TIF = {"GTC": "1", "IOC": "3", "FOK": "4", "POST_ONLY": "1"}


class NotLoggedOn(ConnectionError):
    """No FIX session is logged on: the request's fate is unknown until the
    session is back (QuickFIX keeps it in its store)."""


def parse(raw: str) -> dict[int, str]:
    """A FIX message's fields by tag (the first of a repeated tag wins:
    execution reports need no repeating groups here)."""
    out: dict[int, str] = {}
    for part in raw.split(SOH):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit():
            out.setdefault(int(tag), value)
    return out


def _dec(v: str | None) -> Decimal | None:
    return Decimal(v) if v not in (None, "") else None


def execution_report(f: dict[int, str]) -> tuple[str, dict[str, Any]]:
    """ExecutionReport (35=8) fields -> (ord_status, Report fields)."""
    exec_type = _EXEC_TYPE.get(f.get(150, ""), None)
    fields: dict[str, Any] = {
        "symbol": f.get(55),
        "side": {"1": "BUY", "2": "SELL"}.get(f.get(54, "")),
        "secondary_order_id": f.get(37) if f.get(37) not in (None, "NONE") else None,
        "cl_ord_id": f.get(11),
        "orig_cl_ord_id": f.get(41),
        "exec_id": f.get(17) if exec_type != "ORDER_STATUS" else None,
        "exec_type": exec_type,
        "transact_time": f.get(60),
        "cum_qty": _dec(f.get(14)),
        "leaves_qty": _dec(f.get(151)),
        "avg_px": _dec(f.get(6)) if _dec(f.get(14)) else None,
        "order_qty": _dec(f.get(38)),
        "price": _dec(f.get(44)),
        "text": f.get(58),
    }
    if exec_type == "TRADE":
        fields.update(last_qty=_dec(f.get(32)), last_px=_dec(f.get(31)))
    return _ORD_STATUS.get(f.get(39, ""), "NEW"), fields


def binance_logon(
    credentials: Credentials, message_handling: str = "2"
) -> Callable[[dict[int, str]], dict[int, str]]:
    """``logon_fields`` for Binance spot FIX (Binance "FIX API" docs, Logon):
    RawData (96) = base64 Ed25519 signature of MsgType, SenderCompID,
    TargetCompID, MsgSeqNum and SendingTime joined by SOH, RawDataLength
    (95), Username (553) = the API key, MessageHandling (25035): 1 unordered,
    2 sequential. Use with ``reset_on_logon=True`` (Binance requires
    ResetSeqNumFlag=Y and supports no ResendRequest)."""

    def fields(header: dict[int, str]) -> dict[int, str]:
        payload = SOH.join(["A", header[49], header[56], header[34], header[52]])
        signature = credentials.sign_ed25519(payload)
        return {95: str(len(signature)), 96: signature, 553: credentials.api_key, 25035: message_handling}

    return fields


class _App(qf.Application):  # type: ignore[misc]
    """QuickFIX callbacks (on QuickFIX's threads): hand everything to the loop."""

    def __init__(self, venue: FIX, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.venue, self.loop = venue, loop
        self.session_id: Any = None

    def onCreate(self, session_id: Any) -> None:
        self.session_id = session_id

    def _to_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the process is stopping
            pass

    def onLogon(self, session_id: Any) -> None:
        self._to_loop(self.venue._logged_on, True)

    def onLogout(self, session_id: Any) -> None:
        self._to_loop(self.venue._logged_on, False)

    def toAdmin(self, message: Any, session_id: Any) -> None:
        # An exception must not cross into QuickFIX's C++ thread (it aborts).
        try:
            if message.getHeader().getField(35) == "A":
                self.venue._edit_logon(message)
        except Exception:
            log.exception("%s: editing the Logon failed", self.venue.name)

    def fromAdmin(self, message: Any, session_id: Any) -> None:
        # logging is thread-safe: no need to go through the loop.
        if message.getHeader().getField(35) == "5" and message.isSetField(58):
            log.warning("%s: logout from the venue: %s", self.venue.name, message.getField(58))

    def toApp(self, message: Any, session_id: Any) -> None:
        pass

    def fromApp(self, message: Any, session_id: Any) -> None:
        # QuickFIX counts the message as received (and persists the next
        # expected MsgSeqNum) only when this returns: wait until the report
        # has reached engine.report() (journaled, with a store), so a crash
        # before that gets it resent after the next Logon, never lost.
        raw = message.toString()
        try:
            asyncio.run_coroutine_threadsafe(self.venue._handle(parse(raw)), self.loop).result()
        except Exception:
            log.exception("%s: an incoming message could not be handled", self.venue.name)


class FIX(TrackingVenue):
    """A FIX 4.4 initiator for child orders (module doc).

    ``FIX(instruments, host=..., port=..., sender_comp_id=..., target_comp_id=...,
    store_path=...)``; ``attach(engine)``, ``await start()`` returns once
    logged on (and reconciled), ``await send(request)`` returns once the
    message is handed to the session, ``await stop()`` logs out.

    ``credentials``: Username (553) from its key; ``password=True`` also
    sends its secret as Password (554). ``heartbeat`` (s): HeartBtInt (108).
    ``reconnect_interval`` (s): QuickFIX's ReconnectInterval.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        host: str,
        port: int,
        sender_comp_id: str,
        target_comp_id: str,
        store_path: str | os.PathLike[str],
        credentials: Credentials | None = None,
        password: bool = False,
        logon_fields: Callable[[dict[int, str]], dict[int, str]] | None = None,
        reset_on_logon: bool = False,
        heartbeat: int = 30,
        reconnect_interval: int = 5,
        name: str = "fix",
        **options: Any,
    ) -> None:
        super().__init__(name, instruments, **options)
        for what, value in (("sender_comp_id", sender_comp_id), ("target_comp_id", target_comp_id)):
            if not value or SOH in value or "=" in value:
                raise ValueError(f"{what}: a non-empty FIX string without SOH or '=', got {value!r}")
        self.host, self.port = host, port
        self.sender_comp_id, self.target_comp_id = sender_comp_id, target_comp_id
        self.store_path = Path(store_path)
        self._creds = credentials
        self._password = password
        self._logon_fields = logon_fields
        self._reset_on_logon = reset_on_logon
        self._heartbeat = heartbeat
        self._reconnect_interval = reconnect_interval
        self.tracker = Tracker()
        self._initiator: Any = None
        self._app: _App | None = None
        self._qf_settings: Any = None
        self._store_factory: Any = None
        self._logged_on_event = asyncio.Event()
        self._logged_off = asyncio.Event()
        self._status_ids = itertools.count(1)
        self.logons = 0
        self._lock = threading.Lock()

    # ---- session ---------------------------------------------------------------

    def _settings(self) -> Any:
        self.store_path.mkdir(parents=True, exist_ok=True)
        text = "\n".join(
            [
                "[DEFAULT]",
                "ConnectionType=initiator",
                f"ReconnectInterval={self._reconnect_interval}",
                f"FileStorePath={self.store_path}",
                "StartTime=00:00:00",
                "EndTime=00:00:00",
                "UseDataDictionary=N",
                f"ResetOnLogon={'Y' if self._reset_on_logon else 'N'}",
                "ResetOnLogout=N",
                "ResetOnDisconnect=N",
                "PersistMessages=Y",
                "[SESSION]",
                "BeginString=FIX.4.4",
                f"SenderCompID={self.sender_comp_id}",
                f"TargetCompID={self.target_comp_id}",
                f"SocketConnectHost={self.host}",
                f"SocketConnectPort={self.port}",
                f"HeartBtInt={self._heartbeat}",
                "",
            ]
        )
        settings = qf.SessionSettings()
        settings.setFromString(text)
        return settings

    async def start(self) -> None:
        """Start the session and wait for the Logon (bounded by request_timeout
        x 3; raises TimeoutError naming host and port)."""
        loop = asyncio.get_running_loop()
        # QuickFIX keeps C++ references to the application, the settings and
        # the store factory: they must outlive its threads, so they stay here
        # (SWIG would free a temporary while a session still uses it).
        self._app = _App(self, loop)
        self._qf_settings = self._settings()
        self._store_factory = qf.FileStoreFactory(self._qf_settings)
        self._initiator = qf.SocketInitiator(self._app, self._store_factory, self._qf_settings)
        await asyncio.to_thread(self._initiator.start)
        try:
            await asyncio.wait_for(self._logged_on_event.wait(), self._request_timeout * 3)
        except asyncio.TimeoutError:
            await self.stop()
            raise TimeoutError(
                f"{self.name}: no FIX Logon from {self.host}:{self.port} "
                f"({self.sender_comp_id}->{self.target_comp_id})"
            ) from None
        await self.reconcile()

    async def stop(self) -> None:
        """Log out and stop the session (orders stay at the venue)."""
        await super().stop()
        if self._initiator is None:
            return
        initiator, self._initiator = self._initiator, None
        if self.logged_on:
            # Log out here and wait for the answer: QuickFIX's own stop()
            # polls for it once a second.
            self._logged_off.clear()
            qf.Session.lookupSession(self._session_id()).logout("exo stopping")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._logged_off.wait(), self._request_timeout)
        await asyncio.to_thread(initiator.stop, True)
        # Its threads are joined: free it now, before the factory and settings
        # it points to (QuickFIX keeps one session per SessionID process-wide,
        # so a stopped initiator left alive would keep the next one from logging on).
        del initiator

    def _logged_on(self, on: bool) -> None:
        if on:
            self.logons += 1
            self._logged_on_event.set()
            if self.logons > 1:  # a reconnect: ask about every live child
                self._spawn(self.reconcile())
        else:
            self._logged_on_event.clear()
            self._logged_off.set()

    @property
    def logged_on(self) -> bool:
        return self._logged_on_event.is_set()

    def next_sender_seq_num(self) -> int:
        """The MsgSeqNum (34) the next outgoing message gets (persisted)."""
        session = qf.Session.lookupSession(self._session_id())
        return int(session.getExpectedSenderNum())

    def next_target_seq_num(self) -> int:
        """The MsgSeqNum (34) expected next from the acceptor (persisted)."""
        session = qf.Session.lookupSession(self._session_id())
        return int(session.getExpectedTargetNum())

    def _session_id(self) -> Any:
        return qf.SessionID("FIX.4.4", self.sender_comp_id, self.target_comp_id)

    def _edit_logon(self, message: Any) -> None:
        """On QuickFIX's thread, before the Logon leaves: venue fields."""
        if self._reset_on_logon:
            message.setField(141, "Y")
        if self._creds is not None:
            message.setField(553, self._creds.api_key)
            if self._password:
                message.setField(554, self._creds.password())
        if self._logon_fields is not None:
            header = parse(message.toString())
            for tag, value in self._logon_fields(header).items():
                message.setField(tag, value)

    # ---- requests --------------------------------------------------------------

    def _send(self, fields: list[tuple[int, str]], msg_type: str) -> None:
        if not self.logged_on:
            raise NotLoggedOn(f"{self.name}: not logged on")
        m = qf.Message()
        m.getHeader().setField(35, msg_type)
        for tag, value in fields:
            m.setField(tag, value)
        if not qf.Session.sendToTarget(m, self._session_id()):
            raise NotLoggedOn(f"{self.name}: the session refused the message")

    async def _transmit(self, request: Request) -> None:
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
        side = _SIDE[request.side.name]
        if isinstance(request, NewOrderSingle):
            self.tracker.get(request.cl_ord_id) or self.tracker.add(Tracked.of(request))
            fields = [(11, request.cl_ord_id), (55, request.symbol), (54, side), (60, now),
                      (38, _text(request.order_qty)), (40, request.ord_type.fix),
                      (59, _TIF[request.time_in_force.value])]  # fmt: skip
            if request.price is not None:
                fields.append((44, _text(request.price)))
            if request.time_in_force.value == "POST_ONLY":
                fields.append((18, "6"))
            self._send(fields, "D")
        elif isinstance(request, (OrderCancelRequest, OrderCancelReplaceRequest)):
            # A cancel or replace of an order this adapter does not know goes
            # out all the same: the acceptor answers it (OrderCancelReject).
            child = self.tracker.amends(request)
            msg_type = "F"
            fields = [(41, request.orig_cl_ord_id), (11, request.cl_ord_id), (55, request.symbol), (54, side),
                      (60, now), (38, _text(request.order_qty))]  # fmt: skip
            if isinstance(request, OrderCancelReplaceRequest):
                msg_type = "G"
                fields += [(40, request.ord_type.fix), (59, _TIF[request.time_in_force.value])]
                if request.price is not None:
                    fields.append((44, _text(request.price)))
            if child is not None and child.secondary_order_id:
                fields.append((37, child.secondary_order_id))
            self._send(fields, msg_type)
        else:
            raise TypeError(f"unsupported request {type(request).__name__}")

    # ---- reports ---------------------------------------------------------------

    async def _handle(self, f: dict[int, str]) -> None:
        msg_type = f.get(35)
        if msg_type == "8":
            status, fields = execution_report(f)
            child = self.tracker.get(fields["cl_ord_id"]) or self.tracker.get(fields.get("orig_cl_ord_id"))
            # A PossDup / PossResend copy, or a replay, is dropped by its ExecID.
            await self._emit(status, {k: v for k, v in fields.items() if v is not None}, child)
        elif msg_type == "9":
            to = {"1": "CANCEL", "2": "REPLACE"}.get(f.get(434, ""), "CANCEL")
            reason = {"0": "too late to cancel", "1": "unknown order", "2": "broker option",
                      "3": "already pending cancel or replace"}.get(f.get(102, ""), f.get(102))  # fmt: skip
            text = f.get(58) or reason
            await self.deliver(
                _ORD_STATUS.get(f.get(39, ""), "REJECTED"),
                cl_ord_id=f.get(11),
                orig_cl_ord_id=f.get(41),
                secondary_order_id=f.get(37) if f.get(37) not in (None, "NONE") else None,
                cxl_rej_response_to=to,
                text=text,
            )
        elif msg_type == "j":
            ref = f.get(379)
            child = self.tracker.get(ref)
            if child is None:
                log.warning("%s: BusinessMessageReject for %s: %s", self.name, ref, f.get(58))
                return
            text = f"BusinessMessageReject {f.get(380)}: {f.get(58, '')}".strip()
            if ref == child.aliases[0] and child.ord_status is None:
                status, fields = child.report("REJECTED", "REJECTED", f"{ref}-BMR", text=text)
                await self.deliver(status, **fields)
            else:  # a rejected cancel/replace: the order is as before
                await self.deliver(
                    child.ord_status.name if child.ord_status else "NEW",
                    cl_ord_id=ref,
                    orig_cl_ord_id=child.cl_ord_id,
                    cxl_rej_response_to="REPLACE" if f.get(372) == "G" else "CANCEL",
                    text=text,
                )

    def _keep_in_step(self, child: Tracked, fields: dict[str, Any]) -> None:
        """The venue's OrderID (37); after a replace the child is its ClOrdID (11)."""
        if fields.get("secondary_order_id"):
            child.secondary_order_id = fields["secondary_order_id"]
        if fields.get("exec_type") == "REPLACED" and fields.get("cl_ord_id"):
            child.cl_ord_id = fields["cl_ord_id"]

    # ---- reconciliation (VenueBase hooks) --------------------------------------

    async def _open_orders_and_fills(self) -> list[tuple[Any, dict[str, Any]]]:
        """The session's resend brings what was missed while disconnected;
        live children the delegates do not hold are asked about here (those
        they hold, VenueBase asks about)."""
        for child in self.tracker.live():
            if not self.held_by_delegates(child):
                await self._query_status(child.cl_ord_id, child.order_id)
        return []

    async def _query_status(self, cl_ord_id: str, order_id: str) -> int:
        """OrderStatusRequest (35=H); the answer comes as an ExecutionReport
        (150=I). Returns 0: nothing is delivered synchronously."""
        child = self.tracker.get(cl_ord_id)
        if child is None or not self.logged_on:
            return 0
        fields = [(11, child.cl_ord_id), (790, f"{self.name}-{next(self._status_ids)}"), (55, child.symbol),
                  (54, _SIDE[child.side])]  # fmt: skip
        if child.secondary_order_id:
            fields.append((37, child.secondary_order_id))
        with contextlib.suppress(NotLoggedOn):
            self._send(fields, "H")
        return 0


def _text(d: Decimal) -> str:
    return format(d.normalize(), "f")
