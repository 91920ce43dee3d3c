"""Engine: the asyncio face of exo's Rust dispatcher.

One Engine owns a Dispatcher (in Rust) and one OrderProcess per live order.
Market data pushed with ``quote()``/``trade()`` is fanned out and merged in
Rust; ready orders are handed to their delegates in batches on the event loop.
A delegate is never called concurrently with itself: while its ``action`` runs
(or, for ``async def``, awaits), new data merges into its next Update.

    engine = exo.Engine(factory)
    async with engine:
        oid = await engine.submit(exo.Order("BUY", "BTC-USD", order_qty="2"))
        engine.quote(exo.Quote("BTC-USD", "100", "1", "101", "1"))
        await engine.wait_done(oid)

With ``store=exo.RedisStore(url)`` every instruction and report is journaled
before ``submit``/``report`` return and each order's progress is checkpointed
after its actions, so a restarted engine resumes every live order (see
``exo.journal`` and ``exo.store``). Which of the two intakes the engine uses
(``exo.intake``) is decided once, in ``start()``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from typing_extensions import Self

from exo._core import Feed, LoopRunner, Quote, Report, Trade, Update
from exo.actions import AsyncActions, describe_failure
from exo.intake import DirectIntake, Intake
from exo.journal import JournaledIntake
from exo.market import Order
from exo.store import Store

__all__ = ["DEFAULT_SPIN", "Delegate", "DelegateFactory", "Engine", "EngineStopped"]

log = logging.getLogger("exo.engine")

DEFAULT_SPIN = 0.002
"""The default ``Engine(spin=...)``: the event loop polls for at most 2 ms
after a wake-up from a feed's thread, adaptively (see ``Engine``)."""


class Delegate(Protocol):
    """User code for one order.

    ``action(update)`` returns True when the order is complete (``def`` or
    ``async def``); it is never called again for that order. Optional:

    - ``clean_up()`` (``def`` or ``async def``): the engine is stopping while
      the order is live; it is not a cancel.
    - ``state()``: the delegate's saved state (any value the store's codec
      encodes, e.g. bytes or a dict), taken between actions for a store's
      checkpoint. On recovery its factory gets it back as ``state=``.
    """

    def action(self, update: Update) -> bool | Awaitable[bool]: ...


OrderT = TypeVar("OrderT", bound=Order, contravariant=True)


class DelegateFactory(Protocol[OrderT]):
    """Makes the delegate of an order; a class whose ``__init__`` takes the
    order (and ``state=None``) is one. Generic in the order type, for factories
    of an ``exo.Order`` subclass: ``DelegateFactory[MyOrder]``.

    Two call shapes: ``factory(order)`` for a NEW, and, on recovery from a
    store, ``factory(order, state=state)`` with what the delegate's
    ``state()`` returned at its last checkpoint (only for delegates that
    define ``state()``; others are made with ``factory(order)`` again). A
    factory that never meets a store may take the order only.
    """

    def __call__(self, order: OrderT, /, *, state: Any = None) -> Delegate: ...


class EngineStopped(RuntimeError):
    """The engine stopped before the awaited order completed."""


def _log_error(order_id: str, message: str) -> None:
    log.warning("order %s: %s", order_id, message)


class Engine:
    """Dispatcher plus order processes. Use ``async with engine:``.

    - ``factory(order)`` makes the delegate for each NEW order.
    - ``idle_interval``: seconds without data after which a delegate is
      called with an empty, ``idle`` Update.
    - ``on_error(order_id, message)``: every rule violation and delegate
      failure (default: a ``logging`` warning on ``exo.engine``).
    - ``on_subscribe(symbol)`` / ``on_unsubscribe(symbol)``: the first order
      of a symbol arrived / the last one ended.
    - ``stop_timeout``: how long ``stop()`` waits for running async actions
      and clean-ups (and for the store's last writes) before giving up on them.
    - ``store``: None (the default) keeps everything in process and journals
      nothing: live orders end with the engine (``exo.intake.DirectIntake``).
      ``exo.MemoryStore()`` journals
      in memory, so a later Engine given the same store in the same process
      resumes its orders; ``exo.RedisStore(url)`` survives crashes. With a
      store, ``start()`` recovers every live order it holds
      (``exo.journal.JournaledIntake``).
    - ``feed``: one ``exo.feeds`` feed or a list of them; each symbol is
      subscribed on the feeds that carry it while it has live orders.
    - ``spin``: the idle strategy's cap, in seconds (0 to 1; default
      ``DEFAULT_SPIN`` = 0.002). Waking a sleeping event loop from a feed's
      thread takes 20-60 us on a VM (p99 over 100 us), so after such a
      wake-up the loop keeps polling for more, adaptively: about twice the
      recent gap between arrivals when that is at most ``spin`` (a feed
      at >= 1/``spin`` items a second keeps it awake), else 50 us; then it
      yields its core 10 times and sleeps (after Aeron's
      BackoffIdleStrategy). Cost: no CPU while no data comes; up to one busy
      core while a feed delivers at >= 500 Hz (with the default), each
      frame then reaching its delegate in 2-5 us p50 (p99 10-30 us) instead
      of 35-55 us (p99 60-110 us), measured on a 2-core VM.
      ``spin=0`` never polls (no CPU spent waiting, every wake-up pays the
      sleeping loop's latency). Only wake-ups from other threads (feeds,
      the idle timer, ``quote()`` from a thread) start polling;
      see README, "Latency and CPU: the idle strategy".
    """

    def __init__(
        self,
        factory: DelegateFactory[Any] | Callable[[Any], Delegate],
        idle_interval: float = 1.0,
        on_error: Callable[[str, str], None] | None = None,
        on_subscribe: Callable[[str], None] | None = None,
        on_unsubscribe: Callable[[str], None] | None = None,
        stop_timeout: float = 5.0,
        spin: float = DEFAULT_SPIN,
        feed: Feed | Sequence[Feed] | None = None,
        store: Store | None = None,
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
        # Checked here: stop() is no place to find out (it would fail half-way).
        if isinstance(stop_timeout, bool) or not (
            isinstance(stop_timeout, (int, float)) and 0 <= stop_timeout < float("inf")
        ):
            raise ValueError(f"stop_timeout must be a number of seconds, 0 or more, got {stop_timeout!r}")
        self._stop_timeout = float(stop_timeout)
        if isinstance(spin, bool) or not (isinstance(spin, (int, float)) and 0 <= spin <= 1):
            raise ValueError(f"spin must be a number of seconds between 0 and 1, got {spin!r}")
        self._spin = float(spin)
        feeds = [] if feed is None else [feed] if isinstance(feed, Feed) else list(feed)
        for f in feeds:
            if not isinstance(f, Feed):
                raise TypeError(f"feed must be an exo.feeds feed (or a list of them), got {f!r}")
        self.feeds: list[Feed] = feeds
        if store is not None and not isinstance(store, Store):
            raise TypeError(f"store must be an exo.Store (MemoryStore, RedisStore) or None, got {store!r}")
        self._store = store
        self._intake: Intake | None = None
        self._actions: AsyncActions | None = None
        self._core: LoopRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_fd: int | None = None
        self._done: dict[str, list[asyncio.Future[None]]] = {}

    # -- life cycle ---------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._core is not None

    @property
    def store(self) -> Store | None:
        """The store given to the engine, or None."""
        return self._store

    async def start(self) -> None:
        """Starts the engine on the running event loop. With a store, opens it
        (``StoreUnavailable`` says why it cannot) and recovers its live orders
        before returning."""
        if self._core is not None:
            raise RuntimeError("engine already started")
        loop = asyncio.get_running_loop()
        intake: Intake
        if self._store is None:
            log.info("no store: live orders are kept in process only and end with the engine")
            intake = DirectIntake(self._factory)
        else:
            intake = JournaledIntake(self._store, self._factory, self._report_error)
        await intake.open()
        actions = AsyncActions(loop, intake)
        core = LoopRunner(
            intake.factory,
            self._idle_interval,
            self._report_error,
            self._order_done,
            actions.spawn,
            loop.call_soon,
            self._on_subscribe,
            self._on_unsubscribe,
            intake.on_applied,
            self.feeds,
            self._spin,
        )
        actions.core = core
        fd = core.start()
        loop.add_reader(fd, core.on_wakeup)
        self._core, self._loop, self._wake_fd = core, loop, fd
        # While running, quote()/trade() are the core's own methods: no
        # Python frame per call (~60 ns, a quarter of a hand-over).
        self.quote = core.quote  # type: ignore[method-assign]
        self.trade = core.trade  # type: ignore[method-assign]
        self._intake, self._actions = intake, actions
        try:
            await intake.start(core)
        except BaseException:
            await self.stop()
            raise
        log.debug("engine started (idle_interval=%ss)", self._idle_interval)

    async def stop(self) -> None:
        """Stops: no more hand-overs, running async actions get ``stop_timeout``
        to finish (then are cancelled), and every live delegate's ``clean_up()``
        is called and awaited. Orders are not cancelled."""
        core, intake, actions = self._core, self._intake, self._actions
        if core is None or intake is None or actions is None:
            return
        # What was accepted reaches the engine before intake closes.
        await intake.close_intake(self._stop_timeout)
        core.begin_stop()
        await actions.settle(self._stop_timeout)
        # Last checkpoints while the delegates still exist, before clean_up().
        await intake.finish(self._stop_timeout)
        assert self._loop is not None and self._wake_fd is not None
        self._loop.remove_reader(self._wake_fd)
        core.shutdown()
        live = core.close()
        self._core = self._intake = self._actions = None
        self.__dict__.pop("quote", None)
        self.__dict__.pop("trade", None)
        await self._clean_up(live)
        for order_id, waiters in self._done.items():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(EngineStopped(f"engine stopped before order {order_id} completed"))
        self._done.clear()
        log.debug("engine stopped; %d live order(s) cleaned up", len(live))

    async def _clean_up(self, live: list[tuple[str, Any]]) -> None:
        pending: list[tuple[str, Awaitable[Any]]] = []
        for order_id, delegate in live:
            clean_up = getattr(delegate, "clean_up", None)
            if clean_up is None:
                continue
            try:
                result = clean_up()
            except Exception as exc:
                self._report_error(order_id, describe_failure("clean_up", exc))
                continue
            if inspect.isawaitable(result):
                pending.append((order_id, result))
        if not pending:
            return
        tasks = {asyncio.ensure_future(aw): oid for oid, aw in pending}
        done, not_done = await asyncio.wait(set(tasks), timeout=self._stop_timeout)
        for task in not_done:
            task.cancel()
            self._report_error(
                tasks[task], f"clean_up did not finish within {self._stop_timeout}s; cancelled"
            )
        for task in done:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                self._report_error(tasks[task], describe_failure("clean_up", failure))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- intake ---------------------------------------------------------------

    def _running_intake(self) -> Intake:
        if self._intake is None:
            raise RuntimeError("engine is not running: use 'async with engine:' or await engine.start()")
        return self._intake

    async def submit(self, order: Order) -> str | None:
        """Submits an instruction and returns its order_id.

        A NEW creates the order (exo assigns ``order.order_id``) and its
        delegate, which is called at once with the NEW as its first
        instruction. CANCEL and REPLACE are delivered to the live order's
        delegate, which decides what they mean. A rule violation (NEW for a
        live order, CANCEL/REPLACE for an unknown order or with another side or
        symbol) is reported to ``on_error`` and returns None.

        With a store, the instruction is journaled first; if the store cannot
        take it, ``StoreUnavailable`` is raised and nothing was delivered.
        """
        return await self._running_intake().submit(order)

    async def report(self, report: Report) -> bool:
        """Delivers an execution report to its order's delegate. A report for
        an unknown order is reported to ``on_error`` and returns False. With a
        store, journaled first, as ``submit``."""
        return await self._running_intake().report(report)

    async def journal_request(self, request: Any) -> bool:
        """Journals a child order's request (``exo.child.NewOrderSingle``,
        ``OrderCancelReplaceRequest`` or ``OrderCancelRequest``) for its
        parent ``request.order_id`` before a venue sends it, so that a restart
        after a crash knows its cl_ord_id (VENUES.md: the ClOrdID is journaled
        before the request is sent). Venues call it (``exo.venues.VenueBase.send``);
        a delegate need not.

        Returns True once durable; False without a store (nothing is kept) or
        when the parent is not live. Raises ``StoreUnavailable`` when the store
        cannot take it: the request must not be sent."""
        return await self._running_intake().request(request)

    @property
    def journals_requests(self) -> bool:
        """True when ``journal_request`` keeps requests (the engine has a store)."""
        return self._store is not None

    def quote(self, quote: Quote) -> int:
        """Pushes a quote to every live order of its symbol; returns how many
        (0 when the engine is not running or stopping). Safe from any thread;
        costs no Python object per order. While running, raises TypeError for
        anything but an ``exo.Quote``."""
        core = self._core
        return 0 if core is None else core.quote(quote)

    def trade(self, trade: Trade) -> int:
        """Pushes a print to every live order of its symbol; returns how many."""
        core = self._core
        return 0 if core is None else core.trade(trade)

    # -- queries --------------------------------------------------------------

    def is_live(self, order_id: str) -> bool:
        """True while the order's delegate has not returned True."""
        return self._core is not None and self._core.is_live(order_id)

    @property
    def live(self) -> int:
        """Number of live orders."""
        return 0 if self._core is None else self._core.live()

    def symbols(self) -> list[str]:
        """Symbols with at least one live order (the subscribed ones)."""
        return [] if self._core is None else self._core.symbols()

    def stats(self) -> dict[str, int]:
        """Counters: live orders, Updates handed over, errors reported; with a
        store also entries journaled, checkpoints written, store failures."""
        if self._core is None or self._intake is None:
            return {"live": 0, "handovers": 0, "errors": 0}
        stats = self._core.stats()
        stats.update(self._intake.stats())
        return stats

    async def wait_done(self, order_id: str) -> None:
        """Waits until the order's delegate returns True. Returns at once if
        the order is not live; raises EngineStopped if the engine stops first."""
        if not self.is_live(order_id):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done.setdefault(order_id, []).append(fut)
        await fut

    # -- callbacks from the core ----------------------------------------------

    def report_error(self, order_id: str, message: str) -> None:
        """Hands ``message`` to the engine's ``on_error`` (for parts around the
        engine, e.g. a venue with a report no child claims)."""
        self._report_error(order_id, message)

    def _report_error(self, order_id: str, message: str) -> None:
        try:
            self._on_error(order_id, message)
        except Exception:
            log.exception("on_error raised while reporting order %s: %s", order_id, message)

    def _order_done(self, order_id: str) -> None:
        for fut in self._done.pop(order_id, ()):
            if not fut.done():
                fut.set_result(None)
