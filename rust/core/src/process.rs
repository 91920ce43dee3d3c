//! OrderProcess: the life of one order inside the engine, and its scheduling.
//!
//! The invariant: one hand-over at a time. An order is Idle (nothing pending),
//! Ready (something pending, queued for a hand-over) or Running (its delegate
//! holds an Update). While it is Running, new data keeps merging into its
//! pending Update, and the next hand-over gets the merged result. Market data
//! is merged once per symbol, on its [`Tape`]; the order keeps only its marks
//! on it, and only an Idle order is touched when data arrives.

use crate::market::{OrderId, Side, Symbol};
use crate::tape::{Marks, Tape};
use crate::update::{Pending, Update};
use std::time::Instant;

/// Where an order is in its hand-over cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing pending; waiting for data or the idle interval.
    Idle,
    /// Something pending and queued on the dispatcher's ready list.
    Ready,
    /// Its delegate is acting on an Update.
    Running,
}

/// One live order: its identity, its delegate and its pending Update.
pub struct OrderProcess<D, I, R> {
    /// Identity, fixed for the order's life.
    pub order_id: OrderId,
    /// Buy or sell, fixed.
    pub side: Side,
    /// Instrument, fixed.
    pub symbol: Symbol,
    /// The delegate; `None` while a runner holds it for a hand-over.
    pub(crate) delegate: Option<D>,
    pub(crate) pending: Pending<I, R>,
    pub(crate) state: State,
    /// Unique per order over the dispatcher's life (slab keys are reused).
    pub(crate) serial: u64,
    /// Its symbol's slot in the dispatcher (where the symbol's tape is).
    pub(crate) book: usize,
    /// How far along its symbol's tape the last hand-over went.
    pub(crate) marks: Marks,
    /// While Idle: its position in the symbol's list of idle orders, for
    /// O(1) removal.
    pub(crate) idle_slot: usize,
    /// When the order last went Idle.
    pub(crate) idle_since: Instant,
    /// Whether the dispatcher's idle heap holds an entry for this order.
    pub(crate) idle_entry: bool,
    /// How many Updates have been handed over.
    pub(crate) handovers: u64,
}

impl<D, I, R> OrderProcess<D, I, R> {
    /// Current hand-over state.
    pub fn state(&self) -> State {
        self.state
    }

    /// How many Updates this order's delegate has been handed.
    pub fn handovers(&self) -> u64 {
        self.handovers
    }

    /// Idle -> Ready on new data. Returns true when the order was Idle: it
    /// must be queued, and taken off its symbol's idle list.
    #[inline]
    fn touched(&mut self) -> bool {
        if self.state == State::Idle {
            self.state = State::Ready;
            true
        } else {
            false
        }
    }

    pub(crate) fn push_instruction(&mut self, instruction: I, now: Instant) -> bool {
        self.pending.push_instruction(instruction, now);
        self.touched()
    }

    pub(crate) fn push_report(&mut self, report: R, now: Instant) -> bool {
        self.pending.push_report(report, now);
        self.touched()
    }

    /// Ready -> Running: hands out the pending Update with what came on its
    /// symbol's `tape` since the last hand-over, leaving nothing pending.
    #[inline]
    pub(crate) fn take(&mut self, tape: &mut Tape) -> Update<I, R> {
        let mut update = Update::default();
        self.take_into(tape, &mut update);
        update
    }

    /// As [`take`](Self::take), into `update` in place (a reused slot of the
    /// runner's batch buffer; every field is overwritten): no ~300-byte
    /// Update is built elsewhere and moved in.
    #[inline]
    pub(crate) fn take_into(&mut self, tape: &mut Tape, update: &mut Update<I, R>) {
        self.state = State::Running;
        self.handovers += 1;
        self.pending.take_into(update);
        // A reused slot's quote stays when a newer one is due: the tape
        // overwrites it in place (no reference count touched when it is of
        // the same symbol).
        if !tape.has_quote(&self.marks) {
            update.quote = None;
        }
        tape.hand_over(&mut self.marks, update);
    }

    /// Running -> Ready if data arrived meanwhile (on `tape` too), otherwise
    /// Idle. Returns true when the order must be queued again.
    pub(crate) fn finish(&mut self, tape: &Tape, now: Instant) -> bool {
        if self.pending.is_empty() && !self.pending.idle && !tape.has_news(&self.marks) {
            self.state = State::Idle;
            self.idle_since = now;
            false
        } else {
            self.state = State::Ready;
            true
        }
    }
}
