"""A scripted FIX 4.4 acceptor for tests, on simplefix (a codec only) and
asyncio: the session rules of the QuickFIX family written out here (Logon,
Heartbeat/TestRequest, ResendRequest answered with PossDup resends and
SequenceReset-GapFill for admin messages, its own ResendRequest on a gap,
Logout), and an order book for LIMIT GTC/IOC orders. It shares no code with
exo.venues.fix (which runs QuickFIX), so a session bug in one is not
mirrored in the other.

Outgoing messages are numbered and kept (``outbox``) whether or not a
client is connected: a fill while the initiator is away is sent when it asks
for a resend after its next Logon, as a real acceptor does.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import simplefix
from cryptography.exceptions import InvalidSignature

SOH = b"\x01"


def need_quickfix() -> None:
    """Skip when QuickFIX (quickfix-py: CPython 3.11/3.12 wheels only) is not
    installed; under CI=true fail instead, so CI never silently skips FIX."""
    import os

    import pytest

    if os.environ.get("CI", "").lower() == "true":
        import quickfix  # noqa: F401
    else:
        pytest.importorskip("quickfix", reason="QuickFIX (quickfix-py) has wheels for CPython 3.11/3.12 only")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def _fields(msg: simplefix.FixMessage) -> dict[int, str]:
    out: dict[int, str] = {}
    for tag, value in msg.pairs:
        out.setdefault(int(tag), value.decode())
    return out


@dataclass
class Order:
    cl_ord_id: str
    order_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    tif: str
    cum: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    status: str = "0"
    ids: list[str] = field(default_factory=list)

    @property
    def leaves(self) -> Decimal:
        return Decimal(0) if self.status in ("2", "4", "8", "C") else self.qty - self.cum

    @property
    def avg(self) -> Decimal:
        return self.notional / self.cum if self.cum else Decimal(0)


@dataclass
class FixAcceptor:
    sender: str = "VENUE"
    target: str = "EXO"
    market: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    username: str | None = None
    """If set, a Logon must carry Username (553) equal to it."""
    password: str | None = None
    """If set, a Logon must carry Password (554) equal to it."""
    rawdata_key: Any = None
    """An Ed25519 public key: if set, a Logon's RawData (96) must be its
    signature of MsgType, SenderCompID, TargetCompID, MsgSeqNum, SendingTime
    joined by SOH (Binance spot FIX)."""
    port: int = 0
    next_out: int = 1
    expected_in: int = 1
    outbox: dict[int, tuple[str, list[tuple[int, str]]]] = field(default_factory=dict)
    """seq -> (MsgType, body fields) of everything sent, for resends."""
    received: list[dict[int, str]] = field(default_factory=list)
    """Every message received (parsed), admin included."""
    logons: list[dict[int, str]] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)  # any ClOrdID of the order -> order
    fills: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    lose_next: int = 0
    """Number the next N application messages but do not send them (a gap)."""
    possdup_copy_next: bool = False
    """Send the next execution report twice: the second with a new MsgSeqNum and PossResend (97=Y)."""
    drop_after_order: bool = False
    """Close the connection right after acknowledging the next NewOrderSingle."""
    connections: int = 0
    _writer: asyncio.StreamWriter | None = None
    _server: asyncio.AbstractServer | None = None
    _logged_on: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.disconnect()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def disconnect(self) -> None:
        """Drop the TCP connection without Logout (as a network failure would)."""
        w, self._writer = self._writer, None
        self._logged_on.clear()
        if w is not None:
            w.close()
            with _suppress():
                await w.wait_closed()

    async def wait_logon(self, n: int = 1, timeout: float = 15.0) -> None:
        async def _wait() -> None:
            while len(self.logons) < n or not self._logged_on.is_set():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(_wait(), timeout)

    # ---- wire ------------------------------------------------------------------

    def _encode(
        self,
        msg_type: str,
        seq: int,
        body: list[tuple[int, str]],
        *,
        poss_dup: bool = False,
        orig_time: str | None = None,
    ) -> bytes:
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4", header=True)
        m.append_pair(35, msg_type, header=True)
        m.append_pair(49, self.sender, header=True)
        m.append_pair(56, self.target, header=True)
        m.append_pair(34, seq, header=True)
        if poss_dup:
            m.append_pair(43, "Y", header=True)
        m.append_pair(52, _now(), header=True)
        if orig_time:
            m.append_pair(122, orig_time, header=True)
        for tag, value in body:
            m.append_pair(tag, value)
        return bytes(m.encode())

    async def send(self, msg_type: str, body: list[tuple[int, str]], *, write: bool = True) -> int:
        seq = self.next_out
        self.next_out += 1
        self.outbox[seq] = (msg_type, body)
        if write and self._writer is not None and self._logged_on.is_set():
            try:
                self._writer.write(self._encode(msg_type, seq, body))
                await self._writer.drain()
            except (ConnectionError, OSError):
                # The peer is gone: the message stays numbered in the outbox for its resend.
                self._writer = None
                self._logged_on.clear()
        return seq

    async def _send_app(self, msg_type: str, body: list[tuple[int, str]]) -> None:
        if self.lose_next > 0:
            self.lose_next -= 1
            await self.send(msg_type, body, write=False)
            return
        await self.send(msg_type, body)
        if self.possdup_copy_next and msg_type == "8":
            self.possdup_copy_next = False
            await self.send(msg_type, [*body, (97, "Y")])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:  # one session at a time
            writer.close()
            return
        self._writer = writer
        self.connections += 1
        parser = simplefix.FixParser()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                parser.append_buffer(data)
                while (msg := parser.get_message()) is not None:
                    await self._on_message(_fields(msg))
                    if self._writer is not writer:
                        return
        except (ConnectionError, OSError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
                self._logged_on.clear()
            writer.close()

    async def _on_message(self, f: dict[int, str]) -> None:
        self.received.append(f)
        msg_type, seq = f.get(35), int(f.get(34, "0"))
        if msg_type == "A":
            await self._logon(f, seq)
            return
        if not self._logged_on.is_set():
            return
        if seq < self.expected_in:
            if f.get(43) != "Y":
                await self._logout(f"MsgSeqNum too low, expecting {self.expected_in} but received {seq}")
            return  # a PossDup resend already processed
        if seq > self.expected_in and msg_type != "4":
            await self.send("2", [(7, str(self.expected_in)), (16, "0")])
        self.expected_in = seq + 1
        if msg_type == "0":
            return
        if msg_type == "1":
            await self.send("0", [(112, f.get(112, ""))])
        elif msg_type == "2":
            await self._resend(int(f[7]), int(f[16]))
        elif msg_type == "4":
            self.expected_in = int(f[36])
        elif msg_type == "5":
            await self.send("5", [])
            await self.disconnect()
        elif msg_type == "D":
            await self._new_order(f)
        elif msg_type == "F":
            await self._cancel(f)
        elif msg_type == "G":
            await self._replace(f)
        elif msg_type == "H":
            await self._status(f)
        else:
            await self._send_app(
                "j",
                [
                    (45, str(seq)),
                    (372, msg_type or ""),
                    (380, "3"),
                    (58, f"Unsupported Message Type {msg_type}"),
                ],
            )

    async def _logon(self, f: dict[int, str], seq: int) -> None:
        self.logons.append(f)
        if self.username is not None and f.get(553) != self.username:
            await self._logout("Invalid Username")
            return
        if self.password is not None and f.get(554) != self.password:
            await self._logout("Invalid Password")
            return
        if self.rawdata_key is not None:
            payload = "\x01".join(["A", f.get(49, ""), f.get(56, ""), f.get(34, ""), f.get(52, "")])
            try:
                self.rawdata_key.verify(base64.b64decode(f.get(96, "")), payload.encode())
            except (InvalidSignature, ValueError):
                await self._logout("Signature is invalid")
                return
            if f.get(95) != str(len(f.get(96, ""))):
                await self._logout("RawDataLength does not match RawData")
                return
        if f.get(141) == "Y":
            self.next_out, self.expected_in = 1, 1
            self.outbox.clear()
        elif seq < self.expected_in:
            await self._logout(f"MsgSeqNum too low, expecting {self.expected_in} but received {seq}")
            return
        gap = seq > self.expected_in
        expected = self.expected_in
        self.expected_in = seq + 1
        self._logged_on.set()
        body = [(98, "0"), (108, f.get(108, "30"))] + ([(141, "Y")] if f.get(141) == "Y" else [])
        await self.send("A", body)
        if gap:
            await self.send("2", [(7, str(expected)), (16, "0")])

    async def _logout(self, text: str) -> None:
        if self._writer is not None:
            self._writer.write(self._encode("5", self.next_out, [(58, text)]))
            self.next_out += 1
        await self.disconnect()

    async def _resend(self, begin: int, end: int) -> None:
        """Application messages again with PossDupFlag (43=Y) and
        OrigSendingTime (122); admin messages as SequenceReset-GapFill."""
        last = self.next_out - 1 if end == 0 else min(end, self.next_out - 1)
        assert self._writer is not None
        gap_start: int | None = None
        for seq in range(begin, last + 1):
            msg_type, body = self.outbox.get(seq, ("0", []))
            if msg_type in ("0", "1", "2", "4", "5", "A"):
                gap_start = seq if gap_start is None else gap_start
                continue
            if gap_start is not None:
                self._writer.write(self._encode("4", gap_start, [(123, "Y"), (36, str(seq))], poss_dup=True))
                gap_start = None
            self._writer.write(self._encode(msg_type, seq, body, poss_dup=True, orig_time=_now()))
        if gap_start is not None:
            self._writer.write(self._encode("4", gap_start, [(123, "Y"), (36, str(last + 1))], poss_dup=True))
        await self._writer.drain()

    # ---- orders ----------------------------------------------------------------

    def _report(
        self,
        o: Order,
        exec_type: str,
        cl_ord_id: str,
        *,
        orig: str | None = None,
        last: tuple[Decimal, Decimal] | None = None,
    ) -> list[tuple[int, str]]:
        body = [(37, o.order_id), (11, cl_ord_id)]
        if orig:
            body.append((41, orig))
        body += [
            (17, f"E{next(self._ids)}"),
            (150, exec_type),
            (39, o.status),
            (55, o.symbol),
            (54, o.side),
            (38, str(o.qty)),
            (44, str(o.price)),
            (59, o.tif),
            (151, str(o.leaves)),
            (14, str(o.cum)),
            (6, str(o.avg)),
            (60, _now()),
        ]
        if last:
            body += [(32, str(last[0])), (31, str(last[1]))]
        return body

    async def _new_order(self, f: dict[int, str]) -> None:
        cl = f[11]
        if cl in self.orders:
            await self._send_app(
                "8", self._no_order_report(f, f"E{next(self._ids)}", "8", "Duplicate ClOrdID")
            )
            return
        o = Order(cl, f"O{next(self._ids)}", f[55], f[54], Decimal(f[38]), Decimal(f[44]), f.get(59, "0"))
        o.ids.append(cl)
        self.orders[cl] = o
        await self._send_app("8", self._report(o, "0", cl))
        if self.drop_after_order:
            self.drop_after_order = False
            await self.disconnect()
        bid, ask = self.market.get(o.symbol, (None, None))
        touch = ask if o.side == "1" else bid
        if touch is not None and (o.price >= touch if o.side == "1" else o.price <= touch):
            await self.fill(cl, o.qty, touch)
        elif o.tif == "3":  # IOC: the rest is canceled
            o.status = "4"
            await self._send_app("8", self._report(o, "4", cl))

    async def wait_order(self, cl_ord_id: str, timeout: float = 5.0) -> Order:
        """The order once its NewOrderSingle has been received."""

        async def _wait() -> Order:
            while cl_ord_id not in self.orders:
                await asyncio.sleep(0.005)
            return self.orders[cl_ord_id]

        return await asyncio.wait_for(_wait(), timeout)

    async def fill(self, cl_ord_id: str, qty: Decimal, px: Decimal | None = None) -> None:
        """The order trades (sent now, or kept for the resend if nobody is connected)."""
        o = self.orders[cl_ord_id]
        qty = min(qty, o.qty - o.cum)
        px = px if px is not None else o.price
        o.cum += qty
        o.notional += qty * px
        o.status = "2" if o.cum == o.qty else "1"
        self.fills.append((o.ids[0], qty, px))
        await self._send_app("8", self._report(o, "F", o.ids[-1], last=(qty, px)))

    def filled_qty(self) -> Decimal:
        return sum((q for _, q, _ in self.fills), Decimal(0))

    async def _amendable(self, f: dict[int, str]) -> Order | None:
        """The live order a cancel (35=F) or replace (35=G) ``f`` names by
        OrigClOrdID (41); None after answering an OrderCancelReject (35=9):
        CxlRejReason (102) 0 "too late" for a closed order, 1 for an unknown one."""
        o = self.orders.get(f.get(41, ""))
        if o is not None and o.status not in ("2", "4", "8", "C"):
            return o
        replace = f[35] == "G"
        await self._send_app(
            "9",
            [
                (37, o.order_id if o else "NONE"),
                (11, f[11]),
                (41, f.get(41, "")),
                (39, o.status if o else "8"),
                (434, "2" if replace else "1"),
                (102, "0" if o else "1"),
                (58, ("Too late to replace" if replace else "Too late to cancel") if o else "Unknown order"),
            ],
        )
        return None

    @staticmethod
    def _no_order_report(f: dict[int, str], exec_id: str, exec_type: str, text: str) -> list[tuple[int, str]]:
        """ExecutionReport (35=8) body answering request ``f`` with no order
        behind it: OrdStatus REJECTED (39=8), OrderID NONE, nothing filled."""
        return [
            (37, "NONE"),
            (11, f.get(11, "")),
            (17, exec_id),
            (150, exec_type),
            (39, "8"),
            (55, f.get(55, "")),
            (54, f.get(54, "")),
            (151, "0"),
            (14, "0"),
            (6, "0"),
            (58, text),
        ]

    async def _cancel(self, f: dict[int, str]) -> None:
        o = await self._amendable(f)
        if o is None:
            return
        o.status = "4"
        o.ids.append(f[11])
        self.orders[f[11]] = o
        await self._send_app("8", self._report(o, "4", f[11], orig=f[41]))

    async def _replace(self, f: dict[int, str]) -> None:
        o = await self._amendable(f)
        if o is None:
            return
        o.qty, o.price = Decimal(f[38]), Decimal(f[44])
        o.ids.append(f[11])
        self.orders[f[11]] = o
        await self._send_app("8", self._report(o, "5", f[11], orig=f[41]))

    async def _status(self, f: dict[int, str]) -> None:
        o = self.orders.get(f.get(11, ""))
        if o is None:
            await self._send_app("8", self._no_order_report(f, "0", "I", "Unknown order"))
            return
        # ExecID 0 on a status answer (FIX 4.4: no execution happened).
        body = [(t, "0") if t == 17 else (t, v) for t, v in self._report(o, "I", o.ids[-1])]
        await self._send_app("8", [*body, (790, f.get(790, ""))])


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], (ConnectionError, OSError))  # type: ignore[arg-type]
