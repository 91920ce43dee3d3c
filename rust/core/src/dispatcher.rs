//! Dispatcher: owns every live order and routes instructions, reports, quotes
//! and trades to them.
//!
//! The invariant: an order is on the ready list at most once, and only while
//! it is Ready. Routing merges into the order's pending Update and, when the
//! order was Idle, queues it; a runner takes Ready orders off the list in
//! batches, calls their delegates, and reports back with [`Dispatcher::complete`].
//! Market data is merged once per symbol, on its [`Tape`], and only the
//! symbol's Idle orders are touched (queued) when it arrives: fanning a quote
//! or print out costs O(idle orders), not O(live orders), and the Ready and
//! Running ones read it off the tape at their next hand-over.
//!
//! The dispatcher does no I/O and takes no lock of its own: the caller wraps it
//! in one mutex and, when a method says `wake`, signals its runner once.

use crate::error::DispatchError;
use crate::market::{MsgType, OrderId, Quote, Side, Symbol, Trade};
use crate::process::{OrderProcess, State};
use crate::tape::Tape;
use crate::update::{Pending, Update};
use rustc_hash::FxHashMap as HashMap;
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

/// An Update on its way to a delegate.
pub struct HandOver<D, I, R> {
    /// The order's slot; give it back to [`Dispatcher::complete`].
    pub key: usize,
    /// The order.
    pub order_id: OrderId,
    /// The order's delegate, lent for this hand-over.
    pub delegate: D,
    /// Everything merged since the last hand-over.
    pub update: Update<I, R>,
}

/// An order lent out by [`Dispatcher::take_ready_into`]: its slot (give it
/// back to [`Dispatcher::complete`]), its order_id and its delegate.
pub type Lent<D> = (usize, OrderId, D);

/// What creating an order did.
#[derive(Debug)]
pub struct NewOrder {
    /// The order's slot.
    pub key: usize,
    /// The symbol to subscribe, when this is its first live order.
    pub subscribe: Option<Symbol>,
    /// True when the runner must be signalled.
    pub wake: bool,
}

/// An order that ended: its id, its delegate (None while lent to an async
/// action) and whatever arrived for it during its final action.
pub type Ended<D, I, R> = (OrderId, Option<D>, Update<I, R>);

/// What completing a hand-over did.
pub struct Completion<D, I, R> {
    /// True when the runner must be signalled.
    pub wake: bool,
    /// Set when the order ended: its delegate and whatever arrived for it
    /// during its final action (not delivered; the caller should say so).
    /// Boxed: a Completion is returned for every hand-over and an inline
    /// Update would make each return a ~300-byte copy.
    pub ended: Option<Box<Ended<D, I, R>>>,
    /// The symbol to unsubscribe, when the ended order was its last.
    pub unsubscribe: Option<Symbol>,
    /// The last of many orders ended and the dispatcher gave its memory back
    /// (a caller may now ask the allocator to return it to the OS).
    pub released: bool,
}

/// Below this many slots, an emptied dispatcher keeps its capacity.
const RELEASE_AT_CAPACITY: usize = 4096;

/// One symbol: how many live orders it has, which of them are Idle, and its
/// market data (kept once, not per order).
#[derive(Default)]
struct Book {
    live: usize,
    /// The symbol's Idle orders (each knows its place: `idle_slot`).
    idle: Vec<usize>,
    tape: Tape,
}

/// Owner of all live orders. See the module docs.
pub struct Dispatcher<D, I, R> {
    orders: Slab<OrderProcess<D, I, R>>,
    by_id: HashMap<OrderId, usize>,
    books: Slab<Book>,
    by_symbol: HashMap<Symbol, usize>,
    ready: VecDeque<usize>,
    /// True from the moment the runner is signalled until it finds the ready
    /// list empty: a burst of arrivals costs one signal.
    scheduled: bool,
    idle_interval: Duration,
    /// (deadline, serial, key): at most one entry per order.
    idle_heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    next_serial: u64,
    /// Prints merged into cohorts so far (see [`merges`](Self::merges)).
    merges: u64,
}

impl<D, I, R> Dispatcher<D, I, R> {
    /// A dispatcher whose orders get an idle Update after `idle_interval`
    /// without data.
    pub fn new(idle_interval: Duration) -> Self {
        Dispatcher {
            orders: Slab::new(),
            by_id: HashMap::default(),
            books: Slab::new(),
            by_symbol: HashMap::default(),
            ready: VecDeque::new(),
            scheduled: false,
            idle_interval,
            idle_heap: BinaryHeap::new(),
            next_serial: 0,
            merges: 0,
        }
    }

    /// The idle interval.
    pub fn idle_interval(&self) -> Duration {
        self.idle_interval
    }

    /// Number of live orders.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// True when no order is live.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// True when `order_id` is live.
    pub fn is_live(&self, order_id: &str) -> bool {
        self.by_id.contains_key(order_id)
    }

    /// Symbols with at least one live order.
    pub fn symbols(&self) -> impl Iterator<Item = &Symbol> {
        self.by_symbol.keys()
    }

    /// The live order in slot `key`.
    pub fn process(&self, key: usize) -> Option<&OrderProcess<D, I, R>> {
        self.orders.get(key)
    }

    /// The slot of a live order.
    pub fn key_of(&self, order_id: &str) -> Option<usize> {
        self.by_id.get(order_id).copied()
    }

    /// How many merges fanning prints out has cost so far: one per cohort
    /// of the symbol's orders (orders whose merged print started at the same
    /// place), so about one per print when orders are handed over promptly,
    /// and up to hundreds for 100,000 orders of one symbol.
    pub fn merges(&self) -> u64 {
        self.merges
    }

    /// Number of orders whose delegate is acting right now.
    pub fn running(&self) -> usize {
        self.orders
            .iter()
            .filter(|(_, p)| p.state == State::Running)
            .count()
    }

    #[inline]
    fn queue(ready: &mut VecDeque<usize>, scheduled: &mut bool, key: usize) -> bool {
        ready.push_back(key);
        !std::mem::replace(scheduled, true)
    }

    /// An Idle order `key` went Ready: off its symbol's idle list.
    fn not_idle(&mut self, key: usize) {
        let (book, slot) = {
            let p = &self.orders[key];
            (p.book, p.idle_slot)
        };
        let idle = &mut self.books[book].idle;
        idle.swap_remove(slot);
        if let Some(&moved) = idle.get(slot) {
            self.orders[moved].idle_slot = slot;
        }
    }

    /// An Idle order `key` became Ready: queue it. Returns `wake`.
    fn touched(&mut self, key: usize) -> bool {
        self.not_idle(key);
        Self::queue(&mut self.ready, &mut self.scheduled, key)
    }

    /// Market data reached `book`: every Idle order of it goes Ready and is
    /// queued (the others read the data off the tape when handed over).
    /// Returns `wake`.
    #[inline]
    fn wake_idle(&mut self, book: usize) -> bool {
        let idle = &mut self.books[book].idle;
        if idle.is_empty() {
            return false;
        }
        let mut wake = false;
        for key in idle.drain(..) {
            self.orders[key].state = State::Ready;
            wake |= Self::queue(&mut self.ready, &mut self.scheduled, key);
        }
        wake
    }

    /// Creates an order from a NEW instruction; `instruction` is its first
    /// pending item, so the delegate is called at once.
    pub fn create(
        &mut self,
        order_id: OrderId,
        side: Side,
        symbol: Symbol,
        delegate: D,
        instruction: I,
        now: Instant,
    ) -> Result<NewOrder, DispatchError> {
        let mut pending = Pending::default();
        pending.push_instruction(instruction, now);
        self.insert(order_id, side, symbol, delegate, pending, now)
    }

    /// Re-creates an order after a restart (or on another engine after a
    /// failover) with only what its delegate has not yet applied: the NEW is
    /// not delivered again. The order is handed over at once; with nothing
    /// pending, its first Update is an idle one.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        &mut self,
        order_id: OrderId,
        side: Side,
        symbol: Symbol,
        delegate: D,
        instructions: Vec<I>,
        reports: Vec<R>,
        now: Instant,
    ) -> Result<NewOrder, DispatchError> {
        let mut pending = Pending::default();
        for i in instructions {
            pending.push_instruction(i, now);
        }
        for r in reports {
            pending.push_report(r, now);
        }
        pending.idle = pending.is_empty();
        self.insert(order_id, side, symbol, delegate, pending, now)
    }

    fn insert(
        &mut self,
        order_id: OrderId,
        side: Side,
        symbol: Symbol,
        delegate: D,
        pending: Pending<I, R>,
        now: Instant,
    ) -> Result<NewOrder, DispatchError> {
        if self.by_id.contains_key(&order_id) {
            return Err(DispatchError::AlreadyLive(order_id));
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        let books = &mut self.books;
        let book = *self
            .by_symbol
            .entry(symbol.clone())
            .or_insert_with(|| books.insert(Book::default()));
        let b = &mut self.books[book];
        let subscribe = (b.live == 0).then(|| symbol.clone());
        b.live += 1;
        let marks = b.tape.join();
        let key = self.orders.insert(OrderProcess {
            order_id: order_id.clone(),
            side,
            symbol,
            delegate: Some(delegate),
            pending,
            state: State::Ready,
            serial,
            book,
            marks,
            idle_slot: 0,
            idle_since: now,
            idle_entry: false,
            handovers: 0,
        });
        self.by_id.insert(order_id, key);
        let wake = Self::queue(&mut self.ready, &mut self.scheduled, key);
        Ok(NewOrder {
            key,
            subscribe,
            wake,
        })
    }

    /// Checks that a CANCEL or REPLACE fits a live order: known, same side,
    /// same symbol. Returns the order's slot.
    pub fn check_instruction(
        &self,
        order_id: &OrderId,
        msg_type: MsgType,
        side: Side,
        symbol: &str,
    ) -> Result<usize, DispatchError> {
        if msg_type == MsgType::New {
            return Err(DispatchError::AlreadyLive(order_id.clone()));
        }
        let key = *self
            .by_id
            .get(order_id)
            .ok_or_else(|| DispatchError::UnknownOrder {
                order_id: order_id.clone(),
                msg_type,
            })?;
        let p = &self.orders[key];
        if p.side != side {
            return Err(DispatchError::SideChanged {
                order_id: order_id.clone(),
                msg_type,
                expected: p.side,
                got: side,
            });
        }
        if &*p.symbol != symbol {
            return Err(DispatchError::SymbolChanged {
                order_id: order_id.clone(),
                msg_type,
                expected: p.symbol.clone(),
                got: Symbol::from(symbol),
            });
        }
        Ok(key)
    }

    /// Delivers a CANCEL or REPLACE to a live order's delegate. Returns `wake`.
    pub fn instruct(
        &mut self,
        order_id: &OrderId,
        msg_type: MsgType,
        side: Side,
        symbol: &str,
        instruction: I,
        now: Instant,
    ) -> Result<bool, DispatchError> {
        let key = self.check_instruction(order_id, msg_type, side, symbol)?;
        Ok(self.orders[key].push_instruction(instruction, now) && self.touched(key))
    }

    /// Delivers an execution report to a live order. Returns `wake`.
    pub fn report(
        &mut self,
        order_id: &str,
        report: R,
        now: Instant,
    ) -> Result<bool, DispatchError> {
        let key = *self
            .by_id
            .get(order_id)
            .ok_or_else(|| DispatchError::UnknownReport(OrderId::from(order_id)))?;
        Ok(self.orders[key].push_report(report, now) && self.touched(key))
    }

    /// Fans a quote out to every order of its symbol. Returns how many orders
    /// it reached and `wake`.
    pub fn quote(&mut self, quote: &Quote, now: Instant) -> (usize, bool) {
        self.quote_n(quote, 1, now)
    }

    /// As [`quote`](Self::quote), for a quote that stands for `n` venue quotes
    /// conflated upstream, so Updates count what was really merged.
    pub fn quote_n(&mut self, quote: &Quote, n: u32, now: Instant) -> (usize, bool) {
        let Some(&book) = self.by_symbol.get(&quote.symbol) else {
            return (0, false);
        };
        let b = &mut self.books[book];
        // Kept once for the symbol; each order reads it at its hand-over.
        b.tape.quote(quote, n, now);
        let live = b.live;
        (live, self.wake_idle(book))
    }

    /// Fans a print out to every order of its symbol: each order's next
    /// Update merges every print since its last one (see [`Trade::merge`]).
    /// Returns how many orders it reached and `wake`.
    pub fn trade(&mut self, trade: &Trade, now: Instant) -> (usize, bool) {
        self.trade_n(trade, 1, now)
    }

    /// As [`trade`](Self::trade), for a trade that stands for `n` prints
    /// merged upstream.
    pub fn trade_n(&mut self, trade: &Trade, n: u32, now: Instant) -> (usize, bool) {
        let Some(&book) = self.by_symbol.get(&trade.symbol) else {
            return (0, false);
        };
        let b = &mut self.books[book];
        // Merged once per cohort of orders, not per order.
        self.merges += b.tape.trade(trade, n, now) as u64;
        let live = b.live;
        (live, self.wake_idle(book))
    }

    /// Takes up to `max` Ready orders for hand-over, lending each its
    /// delegate. Returns true when more are still ready (the runner stays
    /// scheduled and must come back); false when the list is empty, after
    /// which the next arrival signals the runner again.
    pub fn take_ready(&mut self, max: usize, out: &mut Vec<HandOver<D, I, R>>) -> bool {
        for _ in 0..max {
            let Some((key, delegate)) = self.pop_ready() else {
                break;
            };
            let p = &mut self.orders[key];
            // Pushed empty and filled in place: the Update is written once,
            // where the runner reads it (perf: building it first and moving
            // it in was a ~300-byte memcpy per hand-over, twice).
            out.push(HandOver {
                key,
                order_id: p.order_id.clone(),
                delegate,
                update: Update::default(),
            });
            if let Some(h) = out.last_mut() {
                p.take_into(&mut self.books[p.book].tape, &mut h.update);
            }
        }
        self.scheduled_after_take()
    }

    /// As [`take_ready`](Self::take_ready), for a runner that keeps its
    /// Updates in boxes it reuses: each order taken goes to `lent` (slot,
    /// order_id, delegate) and its Update is written into the box at the
    /// same index of `updates` (added when missing; every field is
    /// overwritten). A handler can then take an Update by swapping its box
    /// for an empty one: no ~300-byte Update moves anywhere.
    #[allow(clippy::vec_box)]
    pub fn take_ready_into(
        &mut self,
        max: usize,
        lent: &mut Vec<Lent<D>>,
        updates: &mut Vec<Box<Update<I, R>>>,
    ) -> bool {
        for _ in 0..max {
            let Some((key, delegate)) = self.pop_ready() else {
                break;
            };
            let p = &mut self.orders[key];
            let i = lent.len();
            if updates.len() <= i {
                updates.push(Box::default());
            }
            p.take_into(&mut self.books[p.book].tape, &mut updates[i]);
            lent.push((key, p.order_id.clone(), delegate));
        }
        self.scheduled_after_take()
    }

    /// The next Ready order and its delegate, lent for a hand-over; None
    /// when none is ready.
    #[inline]
    fn pop_ready(&mut self) -> Option<(usize, D)> {
        while let Some(key) = self.ready.pop_front() {
            match self.orders[key].delegate.take() {
                Some(delegate) => return Some((key, delegate)),
                // Cannot happen: a Ready order always holds its delegate.
                None => debug_assert!(false, "ready order without delegate"),
            }
        }
        None
    }

    /// After a take: true when more are still ready, else the runner is
    /// no longer scheduled.
    #[inline]
    fn scheduled_after_take(&mut self) -> bool {
        if self.ready.is_empty() {
            self.scheduled = false;
            false
        } else {
            true
        }
    }

    /// As [`take_ready`](Self::take_ready), giving each hand-over to `put`.
    pub fn take_ready_with(&mut self, max: usize, mut put: impl FnMut(HandOver<D, I, R>)) -> bool {
        for _ in 0..max {
            let Some((key, delegate)) = self.pop_ready() else {
                break;
            };
            let p = &mut self.orders[key];
            let update = p.take(&mut self.books[p.book].tape);
            put(HandOver {
                key,
                order_id: p.order_id.clone(),
                delegate,
                update,
            });
        }
        self.scheduled_after_take()
    }

    /// Merges into `update`, taken for the Running order `key` and not yet
    /// handed over, whatever arrived for that order since: the symbol's
    /// newest quote replaces the one taken, prints merge, instructions and
    /// reports append. So a batch's last hand-overs get data as fresh as its
    /// first. Returns true when something was merged.
    pub fn refresh(&mut self, key: usize, order_id: &str, update: &mut Update<I, R>) -> bool {
        let p = match self.orders.get_mut(key) {
            Some(p) if &*p.order_id == order_id && p.state == State::Running => p,
            _ => return false,
        };
        let market = self.books[p.book].tape.hand_over(&mut p.marks, update);
        p.pending.refresh(update) | market
    }

    /// Gives a delegate back while its action is still running (an async
    /// action awaiting I/O); the order stays Running until [`complete`](Self::complete).
    pub fn return_delegate(&mut self, key: usize, order_id: &str, delegate: D) -> Result<(), D> {
        match self.orders.get_mut(key) {
            Some(p) if &*p.order_id == order_id && p.delegate.is_none() => {
                p.delegate = Some(delegate);
                Ok(())
            }
            _ => Err(delegate),
        }
    }

    /// Ends a hand-over. `delegate` is the lent delegate (or `None` if it was
    /// returned already). When `done`, the order ends: it is removed and its
    /// symbol unsubscribed if it was the last. Otherwise it goes back to Ready
    /// if data merged meanwhile, or Idle.
    pub fn complete(
        &mut self,
        key: usize,
        order_id: &str,
        delegate: Option<D>,
        done: bool,
        now: Instant,
    ) -> Completion<D, I, R> {
        let mut c = Completion {
            wake: false,
            ended: None,
            unsubscribe: None,
            released: false,
        };
        let p = match self.orders.get_mut(key) {
            Some(p) if &*p.order_id == order_id && p.state == State::Running => p,
            _ => return c,
        };
        if let Some(d) = delegate {
            p.delegate = Some(d);
        }
        if done {
            let mut p = self.orders.remove(key);
            self.by_id.remove(&p.order_id);
            // Running, so not on the idle list.
            let b = &mut self.books[p.book];
            let mut leftover = p.pending.take_update();
            b.tape.hand_over(&mut p.marks, &mut leftover);
            leftover.quote = None;
            b.tape.leave(&p.marks);
            b.live -= 1;
            if b.live == 0 {
                self.books.remove(p.book);
                self.by_symbol.remove(&p.symbol);
                c.unsubscribe = Some(p.symbol.clone());
            }
            c.ended = Some(Box::new((p.order_id, p.delegate, leftover)));
            if self.orders.is_empty() && self.orders.capacity() >= RELEASE_AT_CAPACITY {
                // A wave of orders is over: keep no room sized for it (the
                // slab and indexes never shrink by themselves).
                self.orders = Slab::new();
                self.by_id = HashMap::default();
                self.books = Slab::new();
                self.by_symbol = HashMap::default();
                self.ready = VecDeque::new();
                self.idle_heap = BinaryHeap::new();
                c.released = true;
            }
        } else if p.finish(&self.books[p.book].tape, now) {
            c.wake = Self::queue(&mut self.ready, &mut self.scheduled, key);
        } else {
            let idle = &mut self.books[p.book].idle;
            p.idle_slot = idle.len();
            idle.push(key);
            if !p.idle_entry {
                p.idle_entry = true;
                self.idle_heap
                    .push(Reverse((now + self.idle_interval, p.serial, key)));
            }
        }
        c
    }

    /// Queues an idle Update for every order that has had nothing for the
    /// idle interval. Returns `wake` and when to call again.
    pub fn expire_idle(&mut self, now: Instant) -> (bool, Option<Instant>) {
        let mut wake = false;
        while let Some(&Reverse((deadline, serial, key))) = self.idle_heap.peek() {
            if deadline > now {
                return (wake, Some(deadline));
            }
            self.idle_heap.pop();
            let Some(p) = self.orders.get_mut(key) else {
                continue;
            };
            if p.serial != serial {
                continue; // the slot now holds another order
            }
            p.idle_entry = false;
            if p.state != State::Idle {
                continue; // busy: it re-arms when it next goes Idle
            }
            let due = p.idle_since + self.idle_interval;
            if due <= now {
                p.pending.idle = true;
                p.state = State::Ready;
                wake |= self.touched(key);
            } else {
                p.idle_entry = true;
                self.idle_heap.push(Reverse((due, serial, key)));
            }
        }
        (wake, None)
    }

    /// Removes every order (the engine is stopping), returning each order's
    /// id and delegate so the caller can clean up. Delegates still lent out
    /// come back as `None`.
    pub fn close(&mut self) -> Vec<(OrderId, Option<D>)> {
        self.by_id.clear();
        self.books.clear();
        self.by_symbol.clear();
        self.ready.clear();
        self.idle_heap.clear();
        self.scheduled = false;
        self.orders
            .drain()
            .map(|p| (p.order_id, p.delegate))
            .collect()
    }
}
