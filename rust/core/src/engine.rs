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

/// A dispatcher and its runner. Share it in an `Arc`; call [`Engine::run`]
/// on one task.
pub struct Engine<I, R> {
    dispatcher: Mutex<Dispatcher<BoxDelegate<I, R>, I, R>>,
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
    /// every live delegate's `clean_up`.
    pub async fn run(&self) {
        let mut batch: Vec<HandOver<BoxDelegate<I, R>, I, R>> = Vec::with_capacity(BATCH);
        let mut results = Vec::with_capacity(BATCH);
        let mut next_idle: Option<Instant> = None;
        // One timer, re-armed only when the idle deadline moves: registering a
        // fresh timer per wait would cost more than the hand-over itself.
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
            {
                let mut d = self.lock();
                if next_idle.is_some_and(|t| t <= Instant::now()) {
                    next_idle = d.expire_idle(Instant::now()).1;
                }
                d.take_ready(BATCH, &mut batch);
            }
            if batch.is_empty() {
                match next_idle {
                    // Nothing can go idle before some hand-over completes here,
                    // so with no deadline there is nothing to time.
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
                continue;
            }
            for h in batch.drain(..) {
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
                results.push((h.key, h.order_id, delegate, done));
            }
            let now = Instant::now();
            let mut ended = Vec::new();
            {
                let mut d = self.lock();
                for (key, order_id, delegate, done) in results.drain(..) {
                    let c = d.complete(key, &order_id, Some(delegate), done, now);
                    if c.ended.is_some() || c.unsubscribe.is_some() {
                        ended.push(c);
                    }
                }
                if next_idle.is_none() {
                    next_idle = d.expire_idle(now).1;
                }
            }
            // Dropped and announced outside the lock.
            for c in ended {
                if let (Some(sym), Some(f)) = (&c.unsubscribe, &self.on_unsubscribe) {
                    f(sym);
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
}
