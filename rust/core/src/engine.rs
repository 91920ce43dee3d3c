//! Engine: a dispatcher plus a tokio runner that hands Updates to Rust
//! delegates. This is the pure-Rust engine (used by Rust users, tests and the
//! hand-over benchmark); the Python bindings drive the same [`Dispatcher`]
//! from the asyncio loop instead.
//!
//! The invariant: one runner per engine, so a delegate is never called
//! concurrently with itself; the dispatcher lock is never held while a
//! delegate runs.

use crate::dispatcher::{Dispatcher, HandOver, NewOrder};
use crate::error::DispatchError;
use crate::market::{MsgType, OrderId, Quote, Side, Symbol, Trade};
use crate::update::Update;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// User code for one order.
pub trait Delegate<I, R>: Send {
    /// Acts on everything merged since the last call. Returns true when the
    /// order is complete.
    fn action(&mut self, update: Update<I, R>) -> bool;
    /// The engine is stopping. This is not a cancel.
    fn clean_up(&mut self) {}
}

/// A boxed delegate, as the engine stores it.
pub type BoxDelegate<I, R> = Box<dyn Delegate<I, R>>;
type ErrorHook = Box<dyn Fn(&OrderId, &str) + Send + Sync>;
type SymbolHook = Box<dyn Fn(&Symbol) + Send + Sync>;

/// How many hand-overs the runner takes per lock acquisition.
const BATCH: usize = 256;

/// A dispatcher and its runner. Share it in an `Arc`; either call
/// [`Engine::run`] on one task, or drive it inline with [`Engine::run_ready`]
/// after pushing data.
pub struct Engine<I, R> {
    dispatcher: Mutex<Dispatcher<BoxDelegate<I, R>, I, R>>,
    scratch: Mutex<Scratch<I, R>>,
    wake: Notify,
    stopping: AtomicBool,
    on_error: Option<ErrorHook>,
    on_unsubscribe: Option<SymbolHook>,
}

impl<I: Send, R: Send> Engine<I, R> {
    /// An engine whose idle orders are called after `idle_interval`.
    pub fn new(idle_interval: Duration) -> Self {
        Engine {
            dispatcher: Mutex::new(Dispatcher::new(idle_interval)),
            scratch: Mutex::new(Scratch {
                batch: Vec::with_capacity(BATCH),
                results: Vec::with_capacity(BATCH),
                next_idle: None,
            }),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            on_error: None,
            on_unsubscribe: None,
        }
    }

    /// Where delegate panics are reported (default: stderr).
    pub fn on_error(mut self, f: impl Fn(&OrderId, &str) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Box::new(f));
        self
    }

    /// Called after the last order of a symbol ends.
    pub fn on_unsubscribe(mut self, f: impl Fn(&Symbol) + Send + Sync + 'static) -> Self {
        self.on_unsubscribe = Some(Box::new(f));
        self
    }

    fn lock(&self) -> MutexGuard<'_, Dispatcher<BoxDelegate<I, R>, I, R>> {
        self.dispatcher.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[inline]
    fn signal(&self, wake: bool) {
        if wake {
            self.wake.notify_one();
        }
    }

    /// Creates an order; `subscribe` in the result names its symbol when it is
    /// the first live order of it.
    pub fn create(
        &self,
        order_id: OrderId,
        side: Side,
        symbol: Symbol,
        delegate: BoxDelegate<I, R>,
        instruction: I,
    ) -> Result<NewOrder, DispatchError> {
        let new = self.lock().create(
            order_id,
            side,
            symbol,
            delegate,
            instruction,
            Instant::now(),
        )?;
        self.signal(new.wake);
        Ok(new)
    }

    /// Delivers a CANCEL or REPLACE to a live order.
    pub fn instruct(
        &self,
        order_id: &OrderId,
        msg_type: MsgType,
        side: Side,
        symbol: &str,
        instruction: I,
    ) -> Result<(), DispatchError> {
        let wake = self.lock().instruct(
            order_id,
            msg_type,
            side,
            symbol,
            instruction,
            Instant::now(),
        )?;
        self.signal(wake);
        Ok(())
    }

    /// Delivers an execution report to a live order.
    pub fn report(&self, order_id: &str, report: R) -> Result<(), DispatchError> {
        let wake = self.lock().report(order_id, report, Instant::now())?;
        self.signal(wake);
        Ok(())
    }

    /// Fans a quote out to its symbol's orders; returns how many it reached.
    #[inline]
    pub fn quote(&self, quote: &Quote) -> usize {
        let (n, wake) = self.lock().quote(quote, Instant::now());
        self.signal(wake);
        n
    }

    /// Fans a print out to its symbol's orders; returns how many it reached.
    pub fn trade(&self, trade: &Trade) -> usize {
        let (n, wake) = self.lock().trade(trade, Instant::now());
        self.signal(wake);
        n
    }

    /// Number of live orders.
    pub fn live(&self) -> usize {
        self.lock().len()
    }

    /// Asks [`run`](Self::run) to clean up and return.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn report_error(&self, order_id: &OrderId, message: &str) {
        match &self.on_error {
            Some(f) => f(order_id, message),
            None => eprintln!("exo: order {order_id}: {message}"),
        }
    }

    /// Hands Updates to delegates until [`stop`](Self::stop), then calls
    /// every live delegate's `clean_up`. Waits without spinning when nothing
    /// is ready.
    pub async fn run(&self) {
        // One timer, re-armed only when the idle deadline moves: registering a
        // fresh timer per wait would cost more than the hand-over itself.
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
            let (_, again, next_idle) = {
                let mut s = self.scratch();
                let (n, again) = self.step(&mut s);
                (n, again, s.next_idle)
            };
            if again {
                continue;
            }
            match next_idle {
                // Nothing can go idle before some hand-over completes, so with
                // no deadline there is nothing to time.
                None => self.wake.notified().await,
                Some(t) => {
                    if armed != Some(t) {
                        sleep.as_mut().reset(t.into());
                        armed = Some(t);
                    }
                    tokio::select! {
                        biased;
                        _ = self.wake.notified() => {}
                        _ = sleep.as_mut() => { armed = None; }
                    }
                }
            }
        }
        let orders = self.lock().close();
        for (_, delegate) in orders {
            if let Some(mut d) = delegate {
                d.clean_up();
            }
        }
    }

    /// Hands over every ready order on the calling thread, now, and returns
    /// how many Updates it handed over. This is the inline runner: a caller
    /// that pushes data and then calls this needs no task switch or thread
    /// wake-up (the Python engine drives its loop the same way). It never runs
    /// concurrently with [`run`](Self::run) or itself: they share one runner lock.
    pub fn run_ready(&self) -> usize {
        let mut s = self.scratch();
        let mut total = 0;
        loop {
            let (n, again) = self.step(&mut s);
            total += n;
            if !again {
                return total;
            }
        }
    }

    fn scratch(&self) -> MutexGuard<'_, Scratch<I, R>> {
        self.scratch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One batch: take ready orders, call their delegates (no lock held),
    /// complete them. Returns how many were handed over and whether to go on.
    fn step(&self, s: &mut Scratch<I, R>) -> (usize, bool) {
        let now = Instant::now();
        let more = {
            let mut d = self.lock();
            if s.next_idle.is_some_and(|t| t <= now) {
                s.next_idle = d.expire_idle(now).1;
            }
            d.take_ready(BATCH, &mut s.batch)
        };
        let handed = s.batch.len();
        if handed == 0 {
            return (0, false);
        }
        for h in s.batch.drain(..) {
            let mut delegate = h.delegate;
            let done = match catch_unwind(AssertUnwindSafe(|| delegate.action(h.update))) {
                Ok(done) => done,
                Err(_) => {
                    self.report_error(
                        &h.order_id,
                        "delegate panicked in action; the order stays live",
                    );
                    false
                }
            };
            s.results.push((h.key, h.order_id, delegate, done));
        }
        // The batch's start time serves as the completion time: an order goes
        // idle from when it was last handed over.
        let mut again = more;
        let mut ended = Vec::new();
        {
            let mut d = self.lock();
            for (key, order_id, delegate, done) in s.results.drain(..) {
                let c = d.complete(key, &order_id, Some(delegate), done, now);
                again |= c.wake;
                if c.ended.is_some() || c.unsubscribe.is_some() {
                    ended.push(c);
                }
            }
            if s.next_idle.is_none() {
                s.next_idle = d.expire_idle(now).1;
            }
        }
        // Dropped and announced outside the lock.
        for c in ended {
            if let (Some(sym), Some(f)) = (&c.unsubscribe, &self.on_unsubscribe) {
                f(sym);
            }
        }
        (handed, again)
    }
}

/// The runner's buffers and idle deadline; its mutex is the runner lock.
struct Scratch<I, R> {
    batch: Vec<HandOver<BoxDelegate<I, R>, I, R>>,
    results: Vec<(usize, OrderId, BoxDelegate<I, R>, bool)>,
    next_idle: Option<Instant>,
}
