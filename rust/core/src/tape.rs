//! Tape: one symbol's market data, conflated once for all of its live
//! orders, so that a faster feed costs more merging per symbol, not per order.
//!
//! Each order keeps only its [`Marks`]: how far along the tape its last
//! hand-over went. What it has not been handed yet is read off the tape at
//! its next hand-over: the newest quote and how many quotes came since its
//! mark, and every print since its mark merged by [`Trade::merge`].
//!
//! The invariant: an order is handed exactly what it would have merged had
//! every quote and print been merged into it as it arrived. Quotes need
//! nothing per order (the newest wins; only the count differs). Prints do:
//! their merge rounds the VWAP at every step, so the aggregate depends on
//! where it started. Orders whose marks are equal started at the same print
//! and share one aggregate (a [`Cohort`]); a print is merged once into each
//! cohort, and there are at most as many cohorts as hand-overs took place
//! between two prints (a batch takes its orders at one mark), not one per
//! order. With 100,000 orders of one symbol under a saturated feed that
//! took each print from 100,000 merges to a few hundred.

use crate::market::{Quote, Trade};
use crate::update::Update;
use std::collections::VecDeque;
use std::time::Instant;

/// Where one order stands on its symbol's [`Tape`]: the counts of quotes and
/// prints it has been handed (or that were on the tape when it was created).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marks {
    quotes: u64,
    trades: u64,
}

/// The prints since one mark, merged, shared by every order at that mark.
#[derive(Debug)]
struct Cohort {
    /// The tape's print count when its orders were last handed over.
    mark: u64,
    /// Orders at this mark; at 0 the cohort is dropped (at the next print,
    /// or at once when it is first or last).
    orders: u32,
    /// How many prints were merged into `trade`.
    merged: u32,
    /// Every print since `mark`, merged; `None` until one arrives.
    trade: Option<Trade>,
}

/// One symbol's market data. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Tape {
    /// The newest quote.
    quote: Option<Quote>,
    /// Quotes so far, each counted as the venue quotes it stands for.
    quotes: u64,
    /// When the newest quote arrived.
    quote_at: Option<Instant>,
    /// Print arrivals so far (one per fan-out, whatever it stands for).
    trades: u64,
    /// When the newest print arrived.
    trade_at: Option<Instant>,
    /// By mark, ascending; one per mark some live order is at.
    cohorts: VecDeque<Cohort>,
}

impl Tape {
    /// A newer quote standing for `n` venue quotes.
    #[inline]
    pub(crate) fn quote(&mut self, quote: &Quote, n: u32, now: Instant) {
        match &mut self.quote {
            Some(held) => held.clone_from(quote),
            slot => *slot = Some(quote.clone()),
        }
        self.quotes += u64::from(n);
        self.quote_at = Some(now);
    }

    /// A newer print standing for `n` prints: merged into each cohort (see
    /// [`Trade::merge`]), and cohorts no order is at any more are dropped.
    /// Returns how many cohorts it was merged into.
    pub(crate) fn trade(&mut self, trade: &Trade, n: u32, now: Instant) -> usize {
        self.trades += 1;
        self.trade_at = Some(now);
        self.cohorts.retain_mut(|c| {
            if c.orders == 0 {
                return false;
            }
            let merged = match &mut c.trade {
                Some(held) => held.merge(trade),
                None => false,
            };
            if merged {
                c.merged = c.merged.saturating_add(n);
            } else {
                c.trade = Some(trade.clone());
                c.merged = n;
            }
            true
        });
        self.cohorts.len()
    }

    /// An order joins at the tape's end: it is owed nothing that came before.
    pub(crate) fn join(&mut self) -> Marks {
        self.enter(self.trades);
        Marks {
            quotes: self.quotes,
            trades: self.trades,
        }
    }

    /// An order at `marks` leaves (it ended).
    pub(crate) fn leave(&mut self, marks: &Marks) {
        self.exit(marks.trades);
    }

    /// True when something came since `marks`.
    #[inline]
    pub(crate) fn has_news(&self, marks: &Marks) -> bool {
        self.quotes != marks.quotes || self.trades != marks.trades
    }

    /// True when a quote came since `marks` (the next hand-over sets it).
    #[inline]
    pub(crate) fn has_quote(&self, marks: &Marks) -> bool {
        self.quotes != marks.quotes && self.quote.is_some()
    }

    /// Hands an order at `marks` what came since into `update` (taken now,
    /// or taken earlier and not yet handed over) and moves it to the tape's
    /// end: the newest quote replaces the update's, prints merge after its
    /// print, counts add, `arrived` becomes the newest arrival and `idle`
    /// false. Returns false, changing nothing, when nothing came.
    #[inline]
    pub(crate) fn hand_over<I, R>(&mut self, marks: &mut Marks, update: &mut Update<I, R>) -> bool {
        if !self.has_news(marks) {
            return false;
        }
        let mut newest = None;
        if self.quotes != marks.quotes {
            if let Some(q) = &self.quote {
                match &mut update.quote {
                    Some(held) => held.clone_from(q),
                    slot => *slot = Some(q.clone()),
                }
            }
            let n = u32::try_from(self.quotes - marks.quotes).unwrap_or(u32::MAX);
            update.quotes_merged = update.quotes_merged.saturating_add(n);
            marks.quotes = self.quotes;
            newest = self.quote_at;
        }
        if self.trades != marks.trades {
            if let Some(Cohort {
                trade: Some(t),
                merged: n,
                ..
            }) = self.cohort(marks.trades)
            {
                // Same symbol: this always merges.
                let merged = match &mut update.trade {
                    Some(held) => held.merge(t),
                    None => false,
                };
                if merged {
                    update.trades_merged = update.trades_merged.saturating_add(*n);
                } else {
                    update.trade = Some(t.clone());
                    update.trades_merged = *n;
                }
            }
            self.exit(marks.trades);
            self.enter(self.trades);
            marks.trades = self.trades;
            newest = newest.max(self.trade_at);
        }
        update.arrived = update.arrived.max(newest);
        update.idle = false;
        true
    }

    fn cohort(&self, mark: u64) -> Option<&Cohort> {
        let i = self.cohorts.binary_search_by_key(&mark, |c| c.mark).ok()?;
        self.cohorts.get(i)
    }

    /// One more order at `mark`, which is the tape's end (the greatest).
    fn enter(&mut self, mark: u64) {
        match self.cohorts.back_mut() {
            Some(c) if c.mark == mark => c.orders += 1,
            _ => self.cohorts.push_back(Cohort {
                mark,
                orders: 1,
                merged: 0,
                trade: None,
            }),
        }
    }

    /// One order fewer at `mark`.
    fn exit(&mut self, mark: u64) {
        let Ok(i) = self.cohorts.binary_search_by_key(&mark, |c| c.mark) else {
            debug_assert!(false, "no cohort at an order's mark");
            return;
        };
        let c = &mut self.cohorts[i];
        c.orders -= 1;
        if c.orders == 0 {
            if i == 0 {
                self.cohorts.pop_front();
            } else if i + 1 == self.cohorts.len() {
                self.cohorts.pop_back();
            }
            // Otherwise the next print drops it.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::sync::Arc;

    fn print(q: i64, px: i64) -> Trade {
        Trade::new(Arc::from("X"), Decimal::from(q), Decimal::from(px))
    }

    /// What an order merging every print as it arrived would hold.
    fn folded(prints: &[Trade]) -> Trade {
        let mut held = prints[0].clone();
        for p in &prints[1..] {
            assert!(held.merge(p));
        }
        held
    }

    #[test]
    fn orders_at_different_marks_get_the_prints_since_their_own_mark() {
        let mut tape = Tape::default();
        let now = Instant::now();
        let prints: Vec<Trade> = (1..=6).map(|i| print(i, 100 + 7 * i)).collect();
        let mut a = tape.join();
        tape.trade(&prints[0], 1, now);
        tape.trade(&prints[1], 1, now);
        let mut b = tape.join();
        let mut first: Update<(), ()> = Update::default();
        assert!(tape.hand_over(&mut a, &mut first));
        assert_eq!(first.trade.as_ref(), Some(&folded(&prints[..2])));
        for p in &prints[2..] {
            tape.trade(p, 2, now);
        }
        let mut ua: Update<(), ()> = Update::default();
        let mut ub: Update<(), ()> = Update::default();
        assert!(tape.hand_over(&mut a, &mut ua));
        assert!(tape.hand_over(&mut b, &mut ub));
        assert_eq!(ua.trade.as_ref(), Some(&folded(&prints[2..])));
        assert_eq!(ub.trade.as_ref(), Some(&folded(&prints[2..])));
        assert_eq!((ua.trades_merged, ub.trades_merged), (8, 8));
        assert!(!tape.hand_over(&mut a, &mut ua), "nothing new");
        assert_eq!(tape.cohorts.len(), 1, "both at the end now");
    }

    #[test]
    fn counts_quotes_since_the_mark_and_keeps_the_newest() {
        let mut tape = Tape::default();
        let t0 = Instant::now();
        let q = |bid: i64| {
            Quote::new(
                Arc::from("X"),
                (Some(Decimal::from(bid)), Some(Decimal::ONE)),
                (Some(Decimal::from(bid + 1)), Some(Decimal::ONE)),
            )
        };
        tape.quote(&q(1), 1, t0);
        let mut m = tape.join();
        assert!(!tape.has_news(&m));
        tape.quote(&q(2), 3, t0);
        let t1 = t0 + std::time::Duration::from_millis(1);
        tape.quote(&q(3), 1, t1);
        let mut u: Update<(), ()> = Update::default();
        assert!(tape.hand_over(&mut m, &mut u));
        assert_eq!(
            (u.quote, u.quotes_merged, u.arrived),
            (Some(q(3)), 4, Some(t1))
        );
    }

    #[test]
    fn trades_aggregate_and_count() {
        let mut tape = Tape::default();
        let now = Instant::now();
        let mut m = tape.join();
        tape.trade(&print(1, 10), 1, now);
        tape.trade(&print(1, 20), 1, now);
        tape.trade(&print(2, 30), 1, now);
        let mut u: Update<(), ()> = Update::default();
        assert!(tape.hand_over(&mut m, &mut u));
        let held = u.trade.unwrap();
        assert_eq!(held.trade_volume, Some(Decimal::from(4)));
        assert_eq!(held.avg_px, Some(Decimal::from(90) / Decimal::from(4)));
        assert_eq!(u.trades_merged, 3);
    }

    #[test]
    fn cohorts_nobody_is_at_are_dropped() {
        let mut tape = Tape::default();
        let now = Instant::now();
        let marks: Vec<Marks> = (0..3)
            .map(|i| {
                tape.trade(&print(1, i), 1, now);
                tape.join()
            })
            .collect();
        assert_eq!(tape.cohorts.len(), 3);
        tape.leave(&marks[1]);
        tape.trade(&print(1, 9), 1, now);
        assert_eq!(
            tape.cohorts.len(),
            2,
            "the middle one went at the next print"
        );
        tape.leave(&marks[0]);
        tape.leave(&marks[2]);
        assert!(tape.cohorts.is_empty());
    }
}
