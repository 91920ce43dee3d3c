//! Runner: the hand-over loop. It owns the [`Dispatcher`] (behind one lock),
//! the idle timer, the feeds of the engine and every rule about what a
//! delegate's action came to; whoever calls the delegates plugs in through
//! [`Handler`]. Two drivers use it: [`Runner::run`] (a tokio task calling
//! Rust [`Delegate`](crate::delegate::Delegate)s, in [`crate::delegate`]) and the Python bindings (the asyncio loop calling
//! Python delegates in batches under the GIL).
//!
//! The invariant: one hand-over at a time per order, and the dispatcher lock
//! is never held while a delegate runs (a delegate may call back into the
//! runner). Batches are taken under one lock and completed under one lock.

use crate::dispatcher::{Completion, Dispatcher, Lent, NewOrder};
use crate::error::DispatchError;
use crate::feed::{Feed, MarketSink};
use crate::market::{new_order_id, MsgType, OrderId, Quote, Side, Symbol, Trade};
use crate::update::Update;
use parking_lot::{Mutex, MutexGuard};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What one call of a delegate's action came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The order goes on.
    Live,
    /// The order is complete: it ends.
    Done,
    /// The action is still running (an `async def` awaiting I/O); finish it
    /// with [`Runner::complete_in_flight`].
    InFlight,
    /// The action failed; the message says how. The order stays live.
    Failed(String),
    /// The action returned something that is not a bool (named here): it
    /// counts as "not complete" and is reported.
    NotBool(String),
}

impl Verdict {
    /// Whether the order ends, and the problem to report, if any.
    #[inline]
    fn judge(self) -> (bool, Option<String>) {
        match self {
            Verdict::Live => (false, None),
            Verdict::Done => (true, None),
            Verdict::InFlight => (
                false,
                Some("async action returned an awaitable; expected bool. Treated as False".into()),
            ),
            Verdict::Failed(message) => (false, Some(message)),
            Verdict::NotBool(type_name) => (
                false,
                Some(format!(
                    "action returned {type_name}, expected bool (True when the order is complete); treated as False"
                )),
            ),
        }
    }
}

/// Whoever calls the delegates: the runner gives it each hand-over and tells
/// it what followed. Every method is called without the dispatcher lock.
pub trait Handler<D, I, R> {
    /// Calls `delegate` with `update`. `staleness` is how old the newest item
    /// in the Update is now, just before the call. The Update is lent in its
    /// box of the batch's buffer: take it (`std::mem::take`), or swap the
    /// box for an empty one of your own (then no Update is copied at all);
    /// the buffer overwrites whatever is left there at the next batch.
    fn hand_over(
        &mut self,
        key: usize,
        order_id: &OrderId,
        delegate: &mut D,
        update: &mut Box<Update<I, R>>,
        staleness: Option<Duration>,
    ) -> Verdict;
    /// Every hand-over of a batch has been recorded; called before any order
    /// of the batch is announced as ended (persistence goes first).
    fn batch_completed(&mut self) {}
    /// A problem with one order (or `feed:<venue>`), for the user.
    fn error(&mut self, order_id: &str, message: &str);
    /// An order ended: its delegate returned done.
    fn ended(&mut self, _order_id: &OrderId, _delegate: Option<D>) {}
    /// The last order of `symbol` ended (the feeds were unsubscribed already).
    fn unsubscribed(&mut self, _symbol: &Symbol) {}
}

/// What an instruction says about its order: all the core reads of it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// None on a NEW that asks exo to assign one.
    pub order_id: Option<OrderId>,
    /// NEW, CANCEL or REPLACE.
    pub msg_type: MsgType,
    /// Buy or sell; never changes for an order.
    pub side: Side,
    /// The instrument; never changes for an order.
    pub symbol: Symbol,
}

/// An instruction accepted by [`Runner::submit`].
#[derive(Debug)]
pub struct Submitted {
    /// The order it is for (assigned by the runner on a NEW without one).
    pub order_id: OrderId,
    /// The symbol that got its first live order (subscribed on the feeds).
    pub subscribed: Option<Symbol>,
}

/// Why [`Runner::submit`] refused an instruction.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError<E> {
    /// A rule said no (see [`DispatchError::kind`]).
    #[error(transparent)]
    Refused(#[from] DispatchError),
    /// The delegate factory failed; nothing was created.
    #[error("delegate factory failed")]
    Factory(E),
}

/// Hand-overs taken per lock acquisition. (64, whose ~300-byte HandOvers
/// fit the L1 cache, measured the same: 257 against 256 ns of thread CPU per
/// Update to 1,000 trivial delegates, 5 alternated runs.)
pub const BATCH: usize = 256;
/// Staleness bound within a batch: once a batch has run this long since its
/// Updates were taken, each order's Update gets whatever arrived for it
/// meanwhile just before its delegate is called (one lock, and at most one
/// merge, per such hand-over; skipped when nothing arrived since the take).
/// It waits for the lock while the pump fans a burst out: measured with a
/// saturated feed, 100 orders, that costs ~20-30 % of Updates/s for staleness
/// p99 0.54 -> 0.13 ms (a `try_lock` that skips instead kept p99 at 0.43 ms).
/// So a delegate late in a batch gets data about as fresh as the first one.
/// Costs nothing while delegates finish a batch sooner.
pub const REFRESH_AFTER: Duration = Duration::from_micros(20);
/// See [`Runner::drive`]: before how many hand-overs the clock is read
/// while they are fast.
const CLOCK_STRIDE: u32 = 8;
/// Hand-overs slower than this on average get a clock read each (a read
/// costs ~25-50 ns on a VM: 15 % of Updates/s when read before each of
/// 3.8 M trivial hand-overs a second).
const CLOCK_EVERY_AFTER: Duration = Duration::from_micros(1);
/// Feed problems kept for the user until delivered; beyond this many, new
/// ones are only counted (and logged).
const MAX_PENDING_FEED_ERRORS: usize = 10_000;

type ErrorHook = Box<dyn Fn(&OrderId, &str) + Send + Sync>;
type SymbolHook = Box<dyn Fn(&Symbol) + Send + Sync>;
type Waker = Box<dyn Fn() + Send + Sync>;

/// A problem with one order's action, to report: (order_id, message).
type Problem = Option<(OrderId, String)>;

/// The batch buffers; their mutex is the runner lock (one batch at a time).
struct Batch<D, I, R> {
    /// The orders taken for this batch.
    taken: Vec<Lent<D>>,
    /// Their Updates, at the same index: boxes kept across batches and
    /// overwritten by each take (a handler may swap one for an empty box,
    /// which is why they are boxed).
    #[allow(clippy::vec_box)]
    updates: Vec<Box<Update<I, R>>>,
    /// What each of `taken` came to, in the same order.
    verdicts: Vec<Verdict>,
    /// Completions with something to announce, and the problem to report.
    effects: Vec<(Problem, Completion<D, I, R>)>,
}

/// The hand-over loop and everything it owns. See the module docs.
pub struct Runner<D, I, R> {
    dispatcher: Mutex<Dispatcher<D, I, R>>,
    batch: Mutex<Batch<D, I, R>>,
    idle_interval: Duration,
    pub(crate) notify: Notify,
    waker: Option<Waker>,
    stopping: AtomicBool,
    feeds: Vec<Arc<Feed>>,
    sink: Arc<MarketSink>,
    feed_errors: Mutex<VecDeque<(String, String)>>,
    handovers: AtomicU64,
    /// Bumped on every arrival of market data, instructions or reports (under
    /// the dispatcher lock): a batch refreshes its Updates only if it moved.
    arrivals: AtomicU64,
    errors: AtomicU64,
    pub(crate) on_error: Option<ErrorHook>,
    pub(crate) on_unsubscribe: Option<SymbolHook>,
}

impl<D, I, R> Runner<D, I, R> {
    /// A runner whose idle orders get an idle Update after `idle_interval`.
    pub fn new(idle_interval: Duration) -> Self {
        Runner {
            dispatcher: Mutex::new(Dispatcher::new(idle_interval)),
            batch: Mutex::new(Batch {
                taken: Vec::new(),
                updates: Vec::new(),
                verdicts: Vec::with_capacity(BATCH),
                effects: Vec::new(),
            }),
            idle_interval,
            notify: Notify::new(),
            waker: None,
            stopping: AtomicBool::new(false),
            feeds: Vec::new(),
            sink: Arc::new(MarketSink::new()),
            feed_errors: Mutex::new(VecDeque::new()),
            handovers: AtomicU64::new(0),
            arrivals: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            on_error: None,
            on_unsubscribe: None,
        }
    }

    /// How the runner's driver is woken when an order becomes ready
    /// (default: the [`run`](Self::run) task's notification). Called from
    /// whatever thread made the order ready, once per burst.
    pub fn waker(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.waker = Some(Box::new(f));
        self
    }

    /// The feeds this runner subscribes symbols on while they have live orders.
    pub fn feeds(mut self, feeds: Vec<Arc<Feed>>) -> Self {
        self.feeds = feeds;
        self
    }

    /// Where [`run`](Self::run) reports problems (default: a `log` warning).
    pub fn on_error(mut self, f: impl Fn(&OrderId, &str) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Box::new(f));
        self
    }

    /// Called by [`run`](Self::run) after the last order of a symbol ends.
    pub fn on_unsubscribe(mut self, f: impl Fn(&Symbol) + Send + Sync + 'static) -> Self {
        self.on_unsubscribe = Some(Box::new(f));
        self
    }

    fn lock(&self) -> MutexGuard<'_, Dispatcher<D, I, R>> {
        self.dispatcher.lock()
    }

    /// Wakes the driver, when `wake` says an order became ready.
    #[inline]
    fn signal(&self, wake: bool) {
        if wake {
            match &self.waker {
                Some(f) => f(),
                None => self.notify.notify_one(),
            }
        }
    }

    /// Something arrived for live orders: a running batch may refresh.
    /// Only called with the dispatcher lock held (`_held`), so a plain load
    /// and store suffice (no locked read-modify-write on the hot path).
    #[inline]
    fn arrived(&self, _held: &MutexGuard<'_, Dispatcher<D, I, R>>) {
        let n = self.arrivals.load(Ordering::Relaxed);
        self.arrivals.store(n.wrapping_add(1), Ordering::Relaxed);
    }

    /// The idle interval.
    pub fn idle_interval(&self) -> Duration {
        self.idle_interval
    }

    /// True from [`stop`](Self::stop) on.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Stops hand-overs and intake: market data is ignored from now on,
    /// instructions and reports are refused. In-flight async actions may
    /// still complete. [`run`](Self::run) cleans up and returns.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    // -- intake ---------------------------------------------------------------

    /// Checks an instruction against every rule without delivering it: Ok
    /// when [`submit`](Self::submit) would accept it now.
    pub fn check(&self, id: &Identity) -> Result<(), DispatchError> {
        self.check_shape(id)?;
        match (&id.order_id, id.msg_type) {
            (None, _) => Ok(()),
            (Some(order_id), MsgType::New) => {
                if self.lock().is_live(order_id) {
                    Err(DispatchError::AlreadyLive(order_id.clone()))
                } else {
                    Ok(())
                }
            }
            (Some(order_id), msg_type) => self
                .lock()
                .check_instruction(order_id, msg_type, id.side, &id.symbol)
                .map(|_| ()),
        }
    }

    /// The checks that need no live order: the runner is open, the symbol is
    /// set, a CANCEL/REPLACE names its order.
    fn check_shape(&self, id: &Identity) -> Result<(), DispatchError> {
        if self.is_stopping() {
            return Err(DispatchError::Stopping("instructions"));
        }
        if id.symbol.is_empty() {
            return Err(DispatchError::EmptySymbol);
        }
        if id.order_id.is_none() && id.msg_type != MsgType::New {
            return Err(DispatchError::NoOrderId(id.msg_type));
        }
        Ok(())
    }

    /// Counts a rule violation on its way to the user.
    fn refused(&self, e: DispatchError) -> DispatchError {
        if e.kind() == crate::error::Kind::Rule {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        e
    }

    /// Submits an instruction. A NEW gets an order_id ([`new_order_id`]) if
    /// it has none, is checked, and only then `factory(order_id)` makes its
    /// delegate (outside the lock: it may call back in); the new order is
    /// handed over at once with the NEW as its first instruction, and its
    /// symbol is subscribed on the feeds when it is the first of it.
    /// CANCEL/REPLACE go to the live order's delegate.
    pub fn submit<E>(
        &self,
        id: Identity,
        instruction: I,
        factory: impl FnOnce(&OrderId) -> Result<D, E>,
    ) -> Result<Submitted, SubmitError<E>> {
        self.check_shape(&id).map_err(|e| self.refused(e))?;
        let Identity {
            order_id,
            msg_type,
            side,
            symbol,
        } = id;
        if msg_type != MsgType::New {
            let order_id = order_id.ok_or(DispatchError::NoOrderId(msg_type))?;
            let mut d = self.lock();
            let wake = d
                .instruct(
                    &order_id,
                    msg_type,
                    side,
                    &symbol,
                    instruction,
                    Instant::now(),
                )
                .map_err(|e| self.refused(e))?;
            self.arrived(&d);
            drop(d);
            self.signal(wake);
            return Ok(Submitted {
                order_id,
                subscribed: None,
            });
        }
        let order_id = order_id.unwrap_or_else(new_order_id);
        // Checked before the factory runs, so a refused NEW makes no delegate;
        // create() checks again under the lock it inserts with.
        if self.lock().is_live(&order_id) {
            return Err(self.refused(DispatchError::AlreadyLive(order_id)).into());
        }
        let delegate = factory(&order_id).map_err(SubmitError::Factory)?;
        let new = self
            .lock()
            .create(
                order_id.clone(),
                side,
                symbol,
                delegate,
                instruction,
                Instant::now(),
            )
            .map_err(|e| self.refused(e))?;
        Ok(self.created(order_id, new))
    }

    /// Re-creates an order after a restart (or a failover) with only what its
    /// delegate has not applied yet; see [`Dispatcher::restore`].
    pub fn restore(
        &self,
        order_id: OrderId,
        side: Side,
        symbol: Symbol,
        delegate: D,
        instructions: Vec<I>,
        reports: Vec<R>,
    ) -> Result<Submitted, DispatchError> {
        let new = self.lock().restore(
            order_id.clone(),
            side,
            symbol,
            delegate,
            instructions,
            reports,
            Instant::now(),
        )?;
        Ok(self.created(order_id, new))
    }

    fn created(&self, order_id: OrderId, new: NewOrder) -> Submitted {
        if let Some(symbol) = &new.subscribe {
            for f in &self.feeds {
                f.subscribe(symbol);
            }
        }
        self.signal(new.wake);
        Submitted {
            order_id,
            subscribed: new.subscribe,
        }
    }

    /// Delivers an execution report to a live order.
    pub fn report(&self, order_id: &str, report: R) -> Result<(), DispatchError> {
        if self.is_stopping() {
            return Err(DispatchError::Stopping("reports"));
        }
        let mut d = self.lock();
        let wake = d
            .report(order_id, report, Instant::now())
            .map_err(|e| self.refused(e))?;
        self.arrived(&d);
        drop(d);
        self.signal(wake);
        Ok(())
    }

    /// Fans a quote out to its symbol's orders; returns how many it reached
    /// (0 once stopping).
    #[inline]
    pub fn quote(&self, quote: &Quote) -> usize {
        if self.stopping.load(Ordering::Relaxed) {
            return 0;
        }
        let mut d = self.lock();
        let (n, wake) = d.quote(quote, Instant::now());
        if n > 0 {
            self.arrived(&d);
        }
        drop(d);
        self.signal(wake);
        n
    }

    /// Fans a print out to its symbol's orders; returns how many it reached
    /// (0 once stopping).
    pub fn trade(&self, trade: &Trade) -> usize {
        if self.stopping.load(Ordering::Relaxed) {
            return 0;
        }
        let mut d = self.lock();
        let (n, wake) = d.trade(trade, Instant::now());
        if n > 0 {
            self.arrived(&d);
        }
        drop(d);
        self.signal(wake);
        n
    }

    // -- queries --------------------------------------------------------------

    /// Number of live orders.
    pub fn live(&self) -> usize {
        self.lock().len()
    }

    /// True when `order_id` is live.
    pub fn is_live(&self, order_id: &str) -> bool {
        self.lock().is_live(order_id)
    }

    /// Symbols with at least one live order.
    pub fn symbols(&self) -> Vec<Symbol> {
        self.lock().symbols().cloned().collect()
    }

    /// Updates handed over so far.
    pub fn handovers(&self) -> u64 {
        self.handovers.load(Ordering::Relaxed)
    }

    /// Problems reported so far (rule violations, failed actions, feed errors).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    // -- the hand-over loop ---------------------------------------------------

    fn report_to(&self, handler: &mut impl Handler<D, I, R>, order_id: &str, message: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        handler.error(order_id, message);
    }

    /// Hands ready orders over to `handler` in batches until none is ready,
    /// the runner stops, or `budget` hand-overs were made. Returns how many
    /// were made and whether orders are still ready (only when the budget ran
    /// out: call again later). Never runs concurrently with itself.
    pub fn drive(&self, handler: &mut impl Handler<D, I, R>, budget: usize) -> (usize, bool) {
        let mut guard = self.batch.lock();
        let b = &mut *guard;
        let mut total = 0;
        loop {
            if self.stopping.load(Ordering::Acquire) {
                return (total, false);
            }
            let mut d = self.lock();
            let more = d.take_ready_into(BATCH.min(budget - total), &mut b.taken, &mut b.updates);
            // Read under the lock the take held: anything newer is not in
            // the taken Updates.
            let taken_epoch = self.arrivals.load(Ordering::Relaxed);
            drop(d);
            let n = b.taken.len();
            if n == 0 {
                return (total, false);
            }
            total += n;
            // Only the driver writes it, and drives one at a time (the batch
            // lock): no locked read-modify-write needed.
            let handed = self.handovers.load(Ordering::Relaxed);
            self.handovers.store(handed + n as u64, Ordering::Relaxed);
            // The batch's start serves as the completion time too: an order
            // goes idle from when it was last handed over.
            let start = Instant::now();
            // The clock is read before every hand-over once they average
            // CLOCK_EVERY_AFTER or more (then a read costs < 5 %), else before
            // every CLOCK_STRIDE-th: staleness is then low by at most that
            // many fast hand-overs (< ~8 us), and a refresh comes at most
            // that many hand-overs late.
            let (mut now, mut stride) = (start, CLOCK_STRIDE);
            // Each Update is handed over in the box the take wrote it into
            // (the handler takes it from there; a refresh merges into it in
            // place): no ~300-byte Update moves through the batch.
            let mut i = 0u32;
            // A counter: u32, and no (index, item) tuple per hand-over.
            #[allow(clippy::explicit_counter_loop)]
            for ((key, order_id, delegate), update) in b.taken.iter_mut().zip(&mut b.updates) {
                // Read before the second hand-over too: one slow action
                // switches to a read each.
                if i == 1 || (i > 0 && i.is_multiple_of(stride)) {
                    now = Instant::now();
                    if stride > 1 && now.saturating_duration_since(start) >= CLOCK_EVERY_AFTER * i {
                        stride = 1;
                    }
                }
                // Late in a long batch, and something arrived since the take:
                // this order's Update gets what arrived for it meanwhile (one
                // lock and at most one merge, only for this hand-over).
                if now.saturating_duration_since(start) >= REFRESH_AFTER
                    && self.arrivals.load(Ordering::Relaxed) != taken_epoch
                {
                    self.lock().refresh(*key, order_id, update);
                }
                let staleness = update.arrived.map(|a| now.saturating_duration_since(a));
                let verdict = handler.hand_over(*key, order_id, delegate, update, staleness);
                b.verdicts.push(verdict);
                i += 1;
            }
            let now = start;
            let mut again = more;
            {
                let mut d = self.lock();
                for ((key, order_id, delegate), verdict) in
                    b.taken.drain(..).zip(b.verdicts.drain(..))
                {
                    if matches!(verdict, Verdict::InFlight) {
                        // Still running: the order stays Running until
                        // complete_in_flight.
                        let _ = d.return_delegate(key, &order_id, delegate);
                        continue;
                    }
                    let (done, problem) = verdict.judge();
                    let c = d.complete(key, &order_id, Some(delegate), done, now);
                    again |= c.wake;
                    if problem.is_some() || c.ended.is_some() || c.unsubscribe.is_some() {
                        b.effects.push((problem.map(|p| (order_id, p)), c));
                    }
                }
            }
            handler.batch_completed();
            for (problem, c) in b.effects.drain(..) {
                if let Some((order_id, p)) = problem {
                    self.report_to(handler, &order_id, &p);
                }
                self.settle(handler, c);
            }
            if !again {
                return (total, false);
            }
            if total >= budget {
                return (total, true);
            }
        }
    }

    /// Ends an action that was [`Verdict::InFlight`]: `verdict` is what it
    /// finally came to (InFlight again means it returned another awaitable,
    /// which is reported).
    pub fn complete_in_flight(
        &self,
        handler: &mut impl Handler<D, I, R>,
        key: usize,
        order_id: &str,
        verdict: Verdict,
    ) {
        let (done, problem) = verdict.judge();
        if let Some(p) = &problem {
            self.report_to(handler, order_id, p);
        }
        let c = self
            .lock()
            .complete(key, order_id, None, done, Instant::now());
        let wake = c.wake;
        self.settle(handler, c);
        if !self.is_stopping() {
            self.signal(wake);
        }
    }

    /// Announces what a completion did, outside the lock: the
    /// unsubscription (feeds first), undelivered leftovers, the end.
    fn settle(&self, handler: &mut impl Handler<D, I, R>, c: Completion<D, I, R>) {
        if c.released {
            release_to_os();
        }
        if let Some(symbol) = &c.unsubscribe {
            for f in &self.feeds {
                f.unsubscribe(symbol);
            }
            handler.unsubscribed(symbol);
        }
        if let Some(ended) = c.ended {
            let (order_id, delegate, leftover) = *ended;
            if !leftover.instructions.is_empty() || !leftover.reports.is_empty() {
                self.report_to(
                    handler,
                    &order_id,
                    &format!(
                        "order completed while {} instruction(s) and {} report(s) were waiting; they were not delivered",
                        leftover.instructions.len(),
                        leftover.reports.len()
                    ),
                );
            }
            handler.ended(&order_id, delegate);
        }
    }

    /// Marks the orders idle for the idle interval ready (and wakes the
    /// driver); returns when to look again.
    fn expire_idle(&self) -> Instant {
        let now = Instant::now();
        let (wake, next) = self.lock().expire_idle(now);
        self.signal(wake);
        // With no deadline known, nothing can go idle before some hand-over
        // completes, which is at least an interval from now.
        next.unwrap_or(now + self.idle_interval)
    }

    /// The idle timer: gives every order that has had nothing for the idle
    /// interval an idle Update. Runs until dropped; never touches Python.
    pub async fn idle_timer(&self) {
        let mut next = Instant::now() + self.idle_interval;
        loop {
            tokio::time::sleep_until(next.into()).await;
            next = self.expire_idle();
        }
    }

    /// Feed problems waiting for the user, delivered to `handler` as order
    /// `feed:<venue>`.
    pub fn report_feed_errors(&self, handler: &mut impl Handler<D, I, R>) {
        let errors: Vec<(String, String)> = self.feed_errors.lock().drain(..).collect();
        for (venue, message) in errors {
            self.report_to(handler, &format!("feed:{venue}"), &message);
        }
    }

    /// Removes every order (the engine is stopping), returning each order's
    /// id and delegate for clean-up (`None` while lent to an async action).
    pub fn close(&self) -> Vec<(OrderId, Option<D>)> {
        self.stopping.store(true, Ordering::Release);
        self.lock().close()
    }
}

impl<D: Send + 'static, I: Send + 'static, R: Send + 'static> Runner<D, I, R> {
    /// Starts the feeds and the pump that fans their data out, on the current
    /// tokio runtime. Feed problems are logged (under `exo.feeds.<venue>`)
    /// and kept for [`report_feed_errors`](Self::report_feed_errors).
    pub fn start_feeds(self: &Arc<Self>) -> Result<(), crate::feed::FeedError> {
        if self.feeds.is_empty() {
            return Ok(());
        }
        tokio::spawn(pump(Arc::downgrade(self), self.sink.clone()));
        let me = Arc::downgrade(self);
        let errors: crate::feed::ErrorSink = Arc::new(move |venue: &str, message: String| {
            if let Some(r) = me.upgrade() {
                let mut q = r.feed_errors.lock();
                if q.len() < MAX_PENDING_FEED_ERRORS {
                    q.push_back((venue.to_string(), message));
                }
                drop(q);
                r.signal(true);
            }
        });
        for f in &self.feeds {
            f.start(self.sink.clone(), errors.clone())?;
        }
        Ok(())
    }

    /// Stops the feeds (their tasks end with the runtime).
    pub fn stop_feeds(&self) {
        for f in &self.feeds {
            f.stop();
        }
    }
}

/// When prints cost the pump more than [`PRINT_MERGES`] merges each on
/// average (a merge per cohort of their symbol's orders, see the tape's
/// docs: one for orders handed over promptly, hundreds for 100,000 orders of
/// one symbol), they are fanned out for at most about 1/PRINT_SHARE of the
/// pump's time: after a fan-out of prints that took `w`, the next waits in
/// the feed's queue (where a symbol's prints merge into one) for
/// `w * PRINT_SHARE` from its start, at most [`PRINT_WAIT_MAX`]. Quotes never wait.
/// Otherwise those merges hold the dispatcher lock most of the time (the
/// hand-overs wait for it) and take the feeds' thread (frames wait).
const PRINT_SHARE: u32 = 10;
/// See [`PRINT_SHARE`].
const PRINT_MERGES: u64 = 4;
/// The longest prints wait in the feed's queue for [`PRINT_SHARE`].
const PRINT_WAIT_MAX: Duration = Duration::from_millis(1);

/// Drains the feeds' sink into the dispatcher until the runner is gone:
/// every pending quote and trade is fanned out under one lock, then the
/// driver is woken once if some order became ready. Never touches Python.
async fn pump<D, I, R>(runner: std::sync::Weak<Runner<D, I, R>>, sink: Arc<MarketSink>) {
    let (mut quotes, mut trades) = (Vec::new(), Vec::new());
    let mut prints_due = Instant::now();
    loop {
        if Instant::now() >= prints_due {
            sink.ready().await;
        } else {
            // Prints wait their turn; a quote does not (and a yield lets
            // the feeds run meanwhile).
            tokio::select! {
                biased;
                _ = sink.quotes.ready() => {}
                _ = tokio::task::yield_now() => {}
            }
        }
        // Each queue's burst is taken under one lock, then fanned out under
        // the dispatcher's.
        sink.quotes.pop_all(&mut quotes);
        let now = Instant::now();
        if now >= prints_due {
            sink.trades.pop_all(&mut trades);
        }
        if quotes.is_empty() && trades.is_empty() {
            continue; // only prints, waiting their turn
        }
        let Some(r) = runner.upgrade() else {
            return;
        };
        let mut wake = false;
        {
            let mut d = r.lock();
            for (_, (q, n)) in quotes.drain(..) {
                wake |= d.quote_n(&q, n, now).1;
            }
            if !trades.is_empty() {
                let (prints, merges) = (trades.len() as u64, d.merges());
                for (_, (t, n)) in trades.drain(..) {
                    wake |= d.trade_n(&t, n, now).1;
                }
                if d.merges() - merges > PRINT_MERGES * prints {
                    let w = now.elapsed();
                    prints_due = now + (w * PRINT_SHARE).min(PRINT_WAIT_MAX);
                }
            }
            r.arrived(&d);
        }
        r.signal(wake);
    }
}

/// After a wave of orders ends, glibc keeps the freed heap; hand it back so
/// the process's RSS returns to where it was (rare: only when the last of
/// thousands of orders ends).
fn release_to_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes no pointers and only returns free heap pages
    // to the OS; glibc makes it safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
