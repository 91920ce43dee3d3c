"""A pure-asyncio engine with exo's public API: what a strong Python engineer
would write instead of installing exo, and the baseline exo is measured against.

The shape, chosen for speed within pure Python:

- one scheduler: a ready deque of order processes, drained by one
  ``loop.call_soon`` callback per burst (a flag makes a burst cost one
  ``call_soon``); ready orders are handed over in one batch per callback;
- no task per order and none per tick: a sync ``action`` is called straight
  from the scheduler; only an ``async def`` action gets a task, for as long as
  it runs;
- a per-symbol list of processes (swap-remove, O(1)); quotes and trades merge
  into each process's pending fields, and an ``Update`` is built only at the
  hand-over;
- one hand-over at a time per order (a process is Idle, Ready or Running);
- idle wake-ups through one ``loop.call_at`` timer over a heap holding at most
  one entry per order.

Market data must be pushed on the loop's thread (``quote``/``trade``); from
another thread use ``quote_threadsafe``, which goes through
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .market import MsgType, Order, Quote, Report, Trade, Update, merged_volume_and_vwap, new_order_id

__all__ = ["Engine", "EngineStopped"]

log = logging.getLogger("baseline.engine")

IDLE, READY, RUNNING, ENDED = 0, 1, 2, 3

BUDGET = 4096
"""Hand-overs per scheduler callback before yielding to the loop's other callbacks."""


class EngineStopped(RuntimeError):
    """The engine stopped before the awaited order completed."""


class _Process:
    """One live order: identity, delegate, state and its pending Update's fields."""

    __slots__ = (
        "action",
        "arrived_ns",
        "delegate",
        "idle",
        "idle_entry",
        "idle_since",
        "instructions",
        "order_id",
        "quote",
        "quotes_merged",
        "reports",
        "serial",
        "side",
        "state",
        "symbol",
        "symbol_slot",
        "trade",
        "trades_merged",
    )

    def __init__(self, order_id: str, order: Order, delegate: Any, action: Any, serial: int) -> None:
        self.order_id = order_id
        self.side = order.side
        self.symbol = order.symbol
        self.delegate = delegate
        self.action = action
        self.serial = serial
        self.state = READY
        self.symbol_slot = 0
        self.idle_since = 0.0
        self.idle_entry = False
        self.quote: Quote | None = None
        self.trade: Trade | None = None
        self.instructions: list[Any] | None = [order]
        self.reports: list[Any] | None = None
        self.quotes_merged = 0
        self.trades_merged = 0
        self.idle = False
        self.arrived_ns: int | None = time.monotonic_ns()


def _log_error(order_id: str, message: str) -> None:
    log.warning("order %s: %s", order_id, message)


def _describe(what: str, exc: BaseException) -> str:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{what} raised {type(exc).__name__}: {exc}; the order stays live\n{tb}"


class Engine:
    """Dispatcher plus order processes, on the running asyncio loop.

    Same constructor and methods as ``exo.Engine``; see the module docs for
    how it is built.
    """

    def __init__(
        self,
        factory: Callable[[Order], Any],
        idle_interval: float = 1.0,
        on_error: Callable[[str, str], None] | None = None,
        on_subscribe: Callable[[str], None] | None = None,
        on_unsubscribe: Callable[[str], None] | None = None,
        stop_timeout: float = 5.0,
    ) -> None:
        if not callable(factory):
            raise TypeError(f"factory must be callable (order -> delegate), got {factory!r}")
        if not (isinstance(idle_interval, (int, float)) and idle_interval > 0):
            raise ValueError(f"idle_interval must be a positive number of seconds, got {idle_interval!r}")
        self._factory = factory
        self._idle_interval = float(idle_interval)
        self._on_error = _log_error if on_error is None else on_error
        self._on_subscribe = on_subscribe
        self._on_unsubscribe = on_unsubscribe
        self._stop_timeout = stop_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._stopping = False
        self._by_id: dict[str, _Process] = {}
        self._by_symbol: dict[str, list[_Process]] = {}
        self._ready: deque[_Process] = deque()
        self._scheduled = False
        self._idle_heap: list[tuple[float, int, _Process]] = []
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_dead = 0
        self._serial = 0
        self._actions: set[asyncio.Task[None]] = set()
        self._done: dict[str, list[asyncio.Future[None]]] = {}
        self._handovers = 0
        self._errors = 0

    # -- life cycle -----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        if self._running:
            raise RuntimeError("engine already started")
        self._loop = asyncio.get_running_loop()
        self._running = True
        self._stopping = False

    async def stop(self) -> None:
        """No more hand-overs; running async actions get ``stop_timeout`` (then
        are cancelled); every live delegate's ``clean_up()`` is called and awaited."""
        if not self._running:
            return
        self._stopping = True
        if self._actions:
            _, pending = await asyncio.wait(set(self._actions), timeout=self._stop_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        live = [(p.order_id, p.delegate) for p in self._by_id.values()]
        self._by_id.clear()
        self._by_symbol.clear()
        self._ready.clear()
        self._idle_heap.clear()
        self._idle_dead = 0
        self._running = False
        await self._clean_up(live)
        for order_id, waiters in self._done.items():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(EngineStopped(f"engine stopped before order {order_id} completed"))
        self._done.clear()

    async def _clean_up(self, live: list[tuple[str, Any]]) -> None:
        pending: dict[asyncio.Future[Any], str] = {}
        for order_id, delegate in live:
            clean_up = getattr(delegate, "clean_up", None)
            if clean_up is None:
                continue
            try:
                result = clean_up()
            except Exception as exc:
                self._error(order_id, _describe("clean_up", exc))
                continue
            if hasattr(result, "__await__"):
                pending[asyncio.ensure_future(result)] = order_id
        if not pending:
            return
        done, not_done = await asyncio.wait(set(pending), timeout=self._stop_timeout)
        for task in not_done:
            task.cancel()
            self._error(pending[task], f"clean_up did not finish within {self._stop_timeout}s; cancelled")
        for task in done:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                self._error(pending[task], _describe("clean_up", failure))

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- intake -----------------------------------------------------------------

    def _check_running(self, what: str) -> None:
        if not self._running:
            raise RuntimeError("engine is not running: use 'async with engine:' or await engine.start()")
        if self._stopping:
            raise RuntimeError(f"the engine is stopping: no more {what}")

    async def submit(self, order: Order) -> str | None:
        """A NEW creates the order and its delegate (called at once with the NEW);
        CANCEL/REPLACE go to the live order's delegate. Rule violations go to
        ``on_error`` and return None."""
        self._check_running("instructions")
        if not isinstance(order, Order):
            raise TypeError(f"submit() takes an exo.Order, got {type(order).__name__}")
        symbol = order.symbol
        if not symbol:
            raise ValueError("order.symbol is empty: set it, e.g. 'BTC-USD'")
        msg_type = order.msg_type
        order_id = order.order_id
        if msg_type is MsgType.NEW:
            if order_id is None:
                order_id = order.order_id = new_order_id()
            elif order_id in self._by_id:
                self._error(
                    order_id,
                    f"order {order_id} is already live: NEW must create a new order;"
                    " send CANCEL or REPLACE to change it",
                )
                return None
            delegate = self._factory(order)
            action = getattr(delegate, "action", None)
            if action is None:
                raise TypeError(
                    f"factory(order) returned {type(delegate).__name__}, which has no action(update) method"
                )
            p = _Process(order_id, order, delegate, action, self._serial)
            self._serial += 1
            self._by_id[order_id] = p
            peers = self._by_symbol.get(symbol)
            if peers is None:
                peers = self._by_symbol[symbol] = []
                if self._on_subscribe is not None:
                    self._call_hook(self._on_subscribe, symbol)
            p.symbol_slot = len(peers)
            peers.append(p)
            self._queue(p)
            return order_id
        if order_id is None:
            raise ValueError(f"a {msg_type.name} needs the order_id of a live order (order.order_id is None)")
        p = self._by_id.get(order_id)  # type: ignore[assignment]
        if p is None:
            self._error(
                order_id,
                f"unknown order {order_id}: {msg_type.name} is only accepted for a live order;"
                " an unknown order_id must arrive as NEW",
            )
            return None
        if order.side is not p.side:
            self._error(
                order_id,
                f"{msg_type.name} for order {order_id} has side {order.side.name}, but the order is"
                f" {p.side.name}: side never changes",
            )
            return None
        if symbol != p.symbol:
            self._error(
                order_id,
                f"{msg_type.name} for order {order_id} has symbol {symbol}, but the order is for"
                f" {p.symbol}: symbol never changes",
            )
            return None
        if p.instructions is None:
            p.instructions = [order]
        else:
            p.instructions.append(order)
        p.arrived_ns = time.monotonic_ns()
        if p.state == IDLE:
            self._queue(p)
        return order_id

    async def report(self, report: Report) -> bool:
        """Delivers an execution report; unknown orders go to ``on_error``."""
        self._check_running("reports")
        order_id = getattr(report, "order_id", None)
        if not isinstance(order_id, str):
            raise TypeError("report() takes an exo.Report (an object with a str order_id)")
        p = self._by_id.get(order_id)
        if p is None:
            self._error(
                order_id, f"report for unknown order {order_id}: reports are only accepted for live orders"
            )
            return False
        if p.reports is None:
            p.reports = [report]
        else:
            p.reports.append(report)
        p.arrived_ns = time.monotonic_ns()
        if p.state == IDLE:
            self._queue(p)
        return True

    def quote(self, quote: Quote) -> int:
        """Pushes a quote to every live order of its symbol (on the loop's
        thread); returns how many."""
        procs = self._by_symbol.get(quote.symbol)
        if not procs or self._stopping:
            return 0
        now = time.monotonic_ns()
        ready = self._ready
        queued = False
        for p in procs:
            p.quote = quote
            p.quotes_merged += 1
            p.arrived_ns = now
            if p.state == IDLE:
                p.state = READY
                ready.append(p)
                queued = True
        if queued and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run_ready)  # type: ignore[union-attr]
        return len(procs)

    def trade(self, trade: Trade) -> int:
        """Pushes a print to every live order of its symbol; returns how many."""
        procs = self._by_symbol.get(trade.symbol)
        if not procs or self._stopping:
            return 0
        now = time.monotonic_ns()
        ready = self._ready
        queued = False
        for p in procs:
            held = p.trade
            if held is None:
                p.trade = trade
                p.trades_merged = 1
            else:
                merged = Trade.__new__(Trade)
                merged.symbol = held.symbol
                merged.trade_volume, merged.avg_px = merged_volume_and_vwap(held, trade)
                merged.last_qty, merged.last_px = trade.last_qty, trade.last_px
                p.trade = merged
                p.trades_merged += 1
            p.arrived_ns = now
            if p.state == IDLE:
                p.state = READY
                ready.append(p)
                queued = True
        if queued and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run_ready)  # type: ignore[union-attr]
        return len(procs)

    def quote_threadsafe(self, quote: Quote) -> None:
        """``quote`` from any thread: hops to the loop with ``call_soon_threadsafe``."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self.quote, quote)

    def trade_threadsafe(self, trade: Trade) -> None:
        """``trade`` from any thread."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self.trade, trade)

    # -- queries ----------------------------------------------------------------

    def is_live(self, order_id: str) -> bool:
        return order_id in self._by_id

    @property
    def live(self) -> int:
        return len(self._by_id)

    def symbols(self) -> list[str]:
        return list(self._by_symbol)

    def stats(self) -> dict[str, int]:
        return {"live": len(self._by_id), "handovers": self._handovers, "errors": self._errors}

    async def wait_done(self, order_id: str) -> None:
        if order_id not in self._by_id:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done.setdefault(order_id, []).append(fut)
        await fut

    # -- the scheduler ------------------------------------------------------------

    def _queue(self, p: _Process) -> None:
        p.state = READY
        self._ready.append(p)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run_ready)  # type: ignore[union-attr]

    def _run_ready(self) -> None:
        """Hands an Update to every ready order, in one batch (up to BUDGET)."""
        ready = self._ready
        if self._stopping:
            self._scheduled = False
            return
        new_update = Update.__new__
        popleft = ready.popleft
        now_ns = time.monotonic_ns()
        n = min(len(ready), BUDGET)
        self._handovers += n
        finished: list[tuple[_Process, Any]] = []
        for _ in range(n):
            p = popleft()
            u = new_update(Update)
            u.order_id = p.order_id
            u.quote = p.quote
            u.trade = p.trade
            u.instructions = p.instructions or []
            u.reports = p.reports or []
            u.quotes_merged = p.quotes_merged
            u.trades_merged = p.trades_merged
            arrived = u.arrived_ns = p.arrived_ns
            u.idle = p.idle and arrived is None  # data that arrived after the timer wins
            u.staleness_ns = None if arrived is None else now_ns - arrived
            p.quote = p.trade = p.instructions = p.reports = p.arrived_ns = None
            p.quotes_merged = p.trades_merged = 0
            p.idle = False
            p.state = RUNNING
            try:
                result = p.action(u)
            except Exception as exc:
                self._error(p.order_id, _describe("action", exc))
                result = False
            if result is False:
                # The common case, inlined: back to Ready if data merged meanwhile.
                if p.arrived_ns is None:
                    finished.append((p, False))
                else:
                    p.state = READY
                    ready.append(p)
            elif result is True:
                finished.append((p, True))
            elif hasattr(result, "__await__"):
                task = self._loop.create_task(self._run_action(p, result))  # type: ignore[union-attr]
                self._actions.add(task)
                task.add_done_callback(self._actions.discard)
            else:
                self._error(
                    p.order_id,
                    f"action returned {type(result).__name__}, expected bool"
                    " (True when the order is complete); treated as False",
                )
                finished.append((p, False))
        if finished:
            now = self._loop.time()  # type: ignore[union-attr]
            for p, done in finished:
                self._complete(p, done, now)
        if ready:
            self._loop.call_soon(self._run_ready)  # type: ignore[union-attr]
        else:
            self._scheduled = False

    async def _run_action(self, p: _Process, awaitable: Awaitable[Any]) -> None:
        try:
            result = await awaitable
        except asyncio.CancelledError:
            self._error(p.order_id, "action cancelled: the engine is stopping")
            raise
        except Exception as exc:
            self._error(p.order_id, _describe("action", exc))
            result = False
        if result is not True and result is not False:
            self._error(
                p.order_id,
                f"action returned {type(result).__name__}, expected bool"
                " (True when the order is complete); treated as False",
            )
            result = False
        if self._stopping or self._by_id.get(p.order_id) is not p:
            return
        self._complete(p, result, self._loop.time())  # type: ignore[union-attr]

    def _complete(self, p: _Process, done: bool, now: float) -> None:
        """Ends a hand-over: removes a finished order; otherwise back to Ready if
        data merged meanwhile, else Idle with an idle deadline."""
        if done:
            self._remove(p)
        elif p.arrived_ns is not None:
            self._queue(p)
        else:
            p.state = IDLE
            p.idle_since = now
            if not p.idle_entry:
                p.idle_entry = True
                deadline = now + self._idle_interval
                heapq.heappush(self._idle_heap, (deadline, p.serial, p))
                if self._idle_timer is None:
                    self._idle_timer = self._loop.call_at(deadline, self._expire_idle)  # type: ignore[union-attr]

    def _expire_idle(self) -> None:
        """The one idle timer: queues an idle Update for each order idle long enough."""
        self._idle_timer = None
        if self._stopping:
            return
        loop = self._loop
        assert loop is not None
        now = loop.time()
        heap = self._idle_heap
        interval = self._idle_interval
        # Timers may fire a little early; treat anything due within 1 ms as due.
        slack = now + 0.001
        while heap:
            deadline, serial, p = heap[0]
            if deadline > slack:
                self._idle_timer = loop.call_at(deadline, self._expire_idle)
                return
            heapq.heappop(heap)
            if p.state == ENDED:
                self._idle_dead -= 1
                continue
            p.idle_entry = False
            if p.state != IDLE:
                continue  # busy or gone: it re-arms when it next goes Idle
            due = p.idle_since + interval
            if due <= slack:
                p.idle = True
                self._queue(p)
            else:
                p.idle_entry = True
                heapq.heappush(heap, (due, serial, p))

    def _remove(self, p: _Process) -> None:
        order_id = p.order_id
        del self._by_id[order_id]
        peers = self._by_symbol[p.symbol]
        last = peers.pop()
        if last is not p:
            peers[p.symbol_slot] = last
            last.symbol_slot = p.symbol_slot
        p.state = ENDED
        if p.idle_entry:
            self._drop_idle_entry()
        if p.instructions or p.reports:
            self._error(
                order_id,
                f"order completed while {len(p.instructions or ())} instruction(s) and"
                f" {len(p.reports or ())} report(s) were waiting; they were not delivered",
            )
        if not peers:
            del self._by_symbol[p.symbol]
            if self._on_unsubscribe is not None:
                self._call_hook(self._on_unsubscribe, p.symbol)
        for fut in self._done.pop(order_id, ()):
            if not fut.done():
                fut.set_result(None)

    def _drop_idle_entry(self) -> None:
        """An ended order's idle entry stays in the heap until it expires; once
        ended orders hold most of the heap, rebuild it so they are freed now."""
        self._idle_dead += 1
        heap = self._idle_heap
        if self._idle_dead > 64 and self._idle_dead * 2 > len(heap):
            heap[:] = [e for e in heap if e[2].state != ENDED]
            heapq.heapify(heap)
            self._idle_dead = 0

    # -- errors -------------------------------------------------------------------

    def _error(self, order_id: str, message: str) -> None:
        self._errors += 1
        try:
            self._on_error(order_id, message)
        except Exception:
            log.exception("on_error raised while reporting order %s: %s", order_id, message)

    def _call_hook(self, hook: Callable[[str], None], symbol: str) -> None:
        try:
            hook(symbol)
        except Exception:
            log.exception("hook %r raised for symbol %s", hook, symbol)
