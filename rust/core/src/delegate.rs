//! Rust delegates: the [`Delegate`] trait and the two ways to drive a
//! [`Runner`] of them, [`Runner::run`] (a tokio task, with the idle timer
//! beside it) and [`Runner::run_ready`] (inline, on the caller's thread).
//!
//! The invariant: a panicking delegate is reported and its order stays live;
//! nothing else is affected.

use crate::error::DispatchError;
use crate::market::{MsgType, OrderId, Side, Symbol};
use crate::runner::{Handler, Identity, Runner, SubmitError, Submitted, Verdict};
use crate::update::Update;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// User code for one order, in Rust.
pub trait Delegate<I, R>: Send {
    /// Acts on everything merged since the last call. Returns true when the
    /// order is complete.
    fn action(&mut self, update: Update<I, R>) -> bool;
    /// The engine is stopping. This is not a cancel.
    fn clean_up(&mut self) {}
}

/// A boxed Rust delegate.
pub type BoxDelegate<I, R> = Box<dyn Delegate<I, R>>;

/// A runner of Rust delegates, driven by [`Runner::run`] or [`Runner::run_ready`].
pub type RustRunner<I, R> = Runner<BoxDelegate<I, R>, I, R>;

/// Calls Rust delegates, catching panics, for [`Runner::run`].
struct RustHandler<'a, I, R> {
    runner: &'a Runner<BoxDelegate<I, R>, I, R>,
}

impl<I, R> Handler<BoxDelegate<I, R>, I, R> for RustHandler<'_, I, R> {
    #[inline]
    fn hand_over(
        &mut self,
        _key: usize,
        _order_id: &OrderId,
        delegate: &mut BoxDelegate<I, R>,
        update: &mut Box<Update<I, R>>,
        _staleness: Option<Duration>,
    ) -> Verdict {
        let update = std::mem::take(&mut **update);
        match catch_unwind(AssertUnwindSafe(|| delegate.action(update))) {
            Ok(true) => Verdict::Done,
            Ok(false) => Verdict::Live,
            Err(_) => Verdict::Failed("delegate panicked in action; the order stays live".into()),
        }
    }

    fn error(&mut self, order_id: &str, message: &str) {
        match &self.runner.on_error {
            Some(f) => f(&OrderId::from(order_id), message),
            None => log::warn!(target: "exo.engine", "order {order_id}: {message}"),
        }
    }

    fn unsubscribed(&mut self, symbol: &Symbol) {
        if let Some(f) = &self.runner.on_unsubscribe {
            f(symbol);
        }
    }
}

impl<I: Send, R: Send> Runner<BoxDelegate<I, R>, I, R> {
    /// Creates an order from a NEW with a Rust delegate (see [`submit`](Self::submit)).
    pub fn create(
        &self,
        order_id: OrderId,
        side: Side,
        symbol: Symbol,
        delegate: BoxDelegate<I, R>,
        instruction: I,
    ) -> Result<Submitted, DispatchError> {
        let id = Identity {
            order_id: Some(order_id),
            msg_type: MsgType::New,
            side,
            symbol,
        };
        self.submit(id, instruction, |_| {
            Ok::<_, std::convert::Infallible>(delegate)
        })
        .map_err(|e| match e {
            SubmitError::Refused(e) => e,
            SubmitError::Factory(never) => match never {},
        })
    }

    /// Hands Updates to delegates until [`stop`](Self::stop), with the idle
    /// timer beside it on the same task, then calls every live delegate's
    /// `clean_up`. Waits without spinning when nothing is ready.
    pub async fn run(&self) {
        let serve = async {
            let mut handler = RustHandler { runner: self };
            while !self.is_stopping() {
                self.drive(&mut handler, usize::MAX);
                if self.is_stopping() {
                    break;
                }
                self.notify.notified().await;
            }
        };
        tokio::select! {
            biased;
            _ = serve => {}
            _ = self.idle_timer() => {}
        }
        for (_, delegate) in self.close() {
            if let Some(mut d) = delegate {
                d.clean_up();
            }
        }
    }

    /// Hands over every ready order on the calling thread, now, and returns
    /// how many Updates it handed over: the inline driver (no task switch or
    /// thread wake-up), as the Python engine drives its event loop.
    pub fn run_ready(&self) -> usize {
        self.drive(&mut RustHandler { runner: self }, usize::MAX).0
    }
}
