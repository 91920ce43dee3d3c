//! Dedup: remembers which prints were delivered, per symbol, so each is
//! delivered once.
//!
//! The invariant: a print (by its venue trade id) passes at most once while
//! it is within the last [`WINDOW`] ids of its symbol. Two connections overlap
//! while one is renewed, and the old one may lag: prints can arrive out of
//! order, so sequential ids are remembered in a window rather than as a
//! high-water mark (which would drop a late, never-seen print).
//!
//! It also keeps each symbol's newest quote [`Stamp`], so an older quote is
//! never delivered after a newer one (see [`Dedup::fresh`]).

use super::{Stamp, TradeId};
use crate::market::Symbol;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::VecDeque;
use std::sync::Arc;

/// Which prints were delivered, per symbol. See the module docs.
#[derive(Default)]
pub struct Dedup {
    seq: HashMap<Symbol, SeqWindow>,
    recent: HashMap<Symbol, Recent>,
    newest: HashMap<Symbol, Stamp>,
}

/// An unordered id as remembered: UUIDs as their bits, other texts shared
/// between the set and the order (one allocation per print, none for UUIDs).
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Uuid(u128),
    Text(Arc<str>),
}

/// The last [`WINDOW`] unordered ids of a symbol: a set to look them up and
/// their arrival order to forget the oldest.
#[derive(Default)]
struct Recent {
    set: HashSet<Key>,
    order: VecDeque<Key>,
}

/// A sequence number this far below the newest is taken as the venue having
/// restarted its numbering (accepted), not as a late frame: a lagging
/// connection is seconds behind, a few thousand updates at most.
pub const SEQ_RESET_GAP: u64 = 1_000_000;

/// How many trade ids are remembered per symbol.
pub const WINDOW: u64 = 4096;
const WORDS: usize = (WINDOW / 64) as usize;

/// The last [`WINDOW`] sequential ids as a ring of bits: O(1) per print.
struct SeqWindow {
    max: u64,
    bits: [u64; WORDS],
}

impl SeqWindow {
    fn new(first: u64) -> Self {
        let mut w = SeqWindow {
            max: first,
            bits: [0; WORDS],
        };
        w.set(first);
        w
    }

    fn slot(n: u64) -> (usize, u64) {
        let i = n % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn set(&mut self, n: u64) {
        let (w, b) = Self::slot(n);
        self.bits[w] |= b;
    }

    fn first_time(&mut self, n: u64) -> bool {
        if n > self.max {
            // Ids between the old and the new max enter the window unseen.
            if n - self.max >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for m in self.max + 1..n {
                    let (w, b) = Self::slot(m);
                    self.bits[w] &= !b;
                }
                let (w, b) = Self::slot(n);
                self.bits[w] &= !b;
            }
            self.max = n;
            self.set(n);
            return true;
        }
        if n + WINDOW <= self.max {
            return false; // older than the window: long since delivered
        }
        let (w, b) = Self::slot(n);
        if self.bits[w] & b != 0 {
            return false;
        }
        self.bits[w] |= b;
        true
    }
}

impl Dedup {
    /// True the first time a print is seen.
    pub fn first_time(&mut self, symbol: &Symbol, id: &TradeId) -> bool {
        match id {
            TradeId::Seq(n) => match self.seq.get_mut(symbol) {
                Some(w) => w.first_time(*n),
                None => {
                    self.seq.insert(symbol.clone(), SeqWindow::new(*n));
                    true
                }
            },
            TradeId::Uuid(n) => self.first_unordered(symbol, Key::Uuid(*n)),
            TradeId::Text(t) => self.first_unordered(symbol, Key::Text(Arc::from(t.as_str()))),
        }
    }

    /// [`first_time`](Self::first_time) for an id without an order.
    fn first_unordered(&mut self, symbol: &Symbol, key: Key) -> bool {
        let recent = match self.recent.get_mut(symbol) {
            Some(r) => r,
            None => self.recent.entry(symbol.clone()).or_default(),
        };
        if !recent.set.insert(key.clone()) {
            return false;
        }
        recent.order.push_back(key);
        if recent.order.len() > WINDOW as usize {
            if let Some(old) = recent.order.pop_front() {
                recent.set.remove(&old);
            }
        }
        true
    }

    /// True when a quote stamped `stamp` is not older than the newest one
    /// delivered for `symbol` (and remembers it as the newest).
    pub fn fresh(&mut self, symbol: &Symbol, stamp: Stamp) -> bool {
        let Some(last) = self.newest.get_mut(symbol) else {
            self.newest.insert(symbol.clone(), stamp);
            return true;
        };
        let fresh = match (*last, stamp) {
            (Stamp::Seq(a), Stamp::Seq(b)) => b > a || a - b > SEQ_RESET_GAP,
            (Stamp::Millis(a), Stamp::Millis(b)) => b >= a,
            _ => true, // a venue that changed its key: start again
        };
        if fresh {
            *last = stamp;
        }
        fresh
    }

    /// Forgets a symbol (it was unsubscribed).
    pub fn forget(&mut self, symbol: &Symbol) {
        self.seq.remove(symbol);
        self.recent.remove(symbol);
        self.newest.remove(symbol);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sequential_trade_ids_are_delivered_once() {
        let mut d = Dedup::default();
        let s: Symbol = Arc::from("X");
        assert!(d.first_time(&s, &TradeId::Seq(5)));
        assert!(!d.first_time(&s, &TradeId::Seq(5)));
        assert!(d.first_time(&s, &TradeId::Seq(6)));
        assert!(d.first_time(&s, &TradeId::Seq(9)));
        assert!(!d.first_time(&s, &TradeId::Seq(9)));
        assert!(
            d.first_time(&s, &TradeId::Seq(7)),
            "skipped ids stay unseen"
        );
        // A late print from a lagging connection is still new...
        assert!(d.first_time(&s, &TradeId::Seq(4)));
        // ...once.
        assert!(!d.first_time(&s, &TradeId::Seq(4)));
        assert!(d.first_time(&s, &TradeId::Seq(10_000)));
        assert!(!d.first_time(&s, &TradeId::Seq(3)), "older than the window");
        let t: Symbol = Arc::from("Y");
        assert!(d.first_time(&t, &TradeId::Seq(1)), "per symbol");
    }

    #[test]
    fn text_trade_ids_are_delivered_once() {
        let mut d = Dedup::default();
        let s: Symbol = Arc::from("X");
        assert!(d.first_time(&s, &TradeId::Text("a".into())));
        assert!(d.first_time(&s, &TradeId::Text("b".into())));
        assert!(!d.first_time(&s, &TradeId::Text("a".into())));
    }

    #[test]
    fn uuid_trade_ids_are_delivered_once_within_the_window() {
        let mut d = Dedup::default();
        let s: Symbol = Arc::from("X");
        let id = |n: u64| TradeId::text(&format!("00000000-0000-0000-0000-{n:012x}"));
        assert_eq!(id(1), TradeId::Uuid(1));
        assert!(d.first_time(&s, &id(1)));
        assert!(!d.first_time(&s, &id(1)));
        assert!(d.first_time(&Arc::from("Y"), &id(1)), "per symbol");
        assert!(d.first_time(&s, &TradeId::Text("a".into())));
        for n in 2..=WINDOW {
            assert!(d.first_time(&s, &id(n)));
        }
        // Window full (1, "a", 2..=WINDOW-1 remain... the oldest, 1, left).
        assert!(d.first_time(&s, &id(1)), "forgotten past the window");
        assert!(!d.first_time(&s, &id(WINDOW)), "still remembered");
        d.forget(&s);
        assert!(d.first_time(&s, &id(WINDOW)), "forgotten on unsubscribe");
    }
}
