//! Update: everything that happened to one order since its delegate was last
//! called, merged into one hand-over.
//!
//! The invariant: market data conflates (newest quote wins, trades aggregate),
//! instructions and reports never do: they are appended in arrival order and
//! handed over exactly once.

use crate::market::{Quote, Trade};
use std::time::Instant;

/// What a delegate is handed: everything merged for its order since the
/// last hand-over.
///
/// `I` is the instruction type (the user's order object) and `R` the report
/// type; the core carries both opaquely.
#[derive(Debug, Clone)]
pub struct Update<I, R> {
    /// The newest quote, if one arrived.
    pub quote: Option<Quote>,
    /// Every print that arrived, merged (volume and VWAP), if any arrived.
    pub trade: Option<Trade>,
    /// Instructions (NEW, CANCEL, REPLACE) in arrival order.
    pub instructions: Vec<I>,
    /// Execution reports in arrival order.
    pub reports: Vec<R>,
    /// How many quotes were conflated into `quote` (0 when there is none).
    pub quotes_merged: u32,
    /// How many prints were merged into `trade` (0 when there is none).
    pub trades_merged: u32,
    /// When the newest item in this Update arrived.
    pub arrived: Option<Instant>,
    /// True when nothing arrived and the delegate is called because the order
    /// has been idle for the engine's idle interval.
    pub idle: bool,
}

impl<I, R> Default for Update<I, R> {
    fn default() -> Self {
        Update {
            quote: None,
            trade: None,
            instructions: Vec::new(),
            reports: Vec::new(),
            quotes_merged: 0,
            trades_merged: 0,
            arrived: None,
            idle: false,
        }
    }
}

impl<I, R> Update<I, R> {
    /// True when nothing has been merged in (an idle Update).
    pub fn is_empty(&self) -> bool {
        self.quotes_merged == 0
            && self.trades_merged == 0
            && self.instructions.is_empty()
            && self.reports.is_empty()
    }
}

/// What has accumulated for one order since its last hand-over, kept
/// compact: quotes are only counted here, because the newest quote of a
/// symbol is the same for every order of it and is kept once, by the
/// dispatcher, and read at hand-over. Prints are merged per order (each
/// order's aggregate starts at its own last hand-over).
#[derive(Debug)]
pub(crate) struct Pending<I, R> {
    pub(crate) quotes_merged: u32,
    pub(crate) trades_merged: u32,
    /// Boxed: most orders hold no print between hand-overs, and an inline
    /// Trade would cost every live order its 88 bytes.
    pub(crate) trade: Option<Box<Trade>>,
    pub(crate) instructions: Vec<I>,
    pub(crate) reports: Vec<R>,
    pub(crate) arrived: Option<Instant>,
    pub(crate) idle: bool,
}

impl<I, R> Default for Pending<I, R> {
    fn default() -> Self {
        Pending {
            quotes_merged: 0,
            trades_merged: 0,
            trade: None,
            instructions: Vec::new(),
            reports: Vec::new(),
            arrived: None,
            idle: false,
        }
    }
}

impl<I, R> Pending<I, R> {
    /// True when nothing has accumulated.
    pub(crate) fn is_empty(&self) -> bool {
        self.quotes_merged == 0
            && self.trades_merged == 0
            && self.instructions.is_empty()
            && self.reports.is_empty()
    }

    /// `n` newer quotes of the order's symbol arrived.
    #[inline]
    pub(crate) fn count_quotes(&mut self, n: u32, now: Instant) {
        self.quotes_merged += n;
        self.arrived = Some(now);
        self.idle = false;
    }

    /// A trade standing for `n` prints merges in (see [`Update::merge_trade_n`]).
    pub(crate) fn merge_trade_n(&mut self, trade: &Trade, n: u32, now: Instant) {
        let merged = match &mut self.trade {
            Some(held) => held.merge(trade),
            None => false,
        };
        if merged {
            self.trades_merged += n;
        } else {
            self.trade = Some(Box::new(trade.clone()));
            self.trades_merged = n;
        }
        self.arrived = Some(now);
        self.idle = false;
    }

    pub(crate) fn push_instruction(&mut self, instruction: I, now: Instant) {
        self.instructions.push(instruction);
        self.arrived = Some(now);
        self.idle = false;
    }

    pub(crate) fn push_report(&mut self, report: R, now: Instant) {
        self.reports.push(report);
        self.arrived = Some(now);
        self.idle = false;
    }

    /// Empties it into `update`, taken earlier and not yet handed over
    /// (see [`Dispatcher::refresh`](crate::Dispatcher::refresh)): `newest_quote` (the symbol's,
    /// used when quotes arrived) replaces the quote, prints merge (newer
    /// after older), instructions and reports append in arrival order.
    /// Returns false, changing nothing, when nothing accumulated.
    pub(crate) fn refresh(
        &mut self,
        update: &mut Update<I, R>,
        newest_quote: Option<&Quote>,
    ) -> bool {
        if self.is_empty() {
            return false;
        }
        let p = std::mem::take(self);
        if p.quotes_merged > 0 {
            if let Some(q) = newest_quote {
                match &mut update.quote {
                    Some(held) => held.clone_from(q),
                    slot => *slot = Some(q.clone()),
                }
            }
            update.quotes_merged += p.quotes_merged;
        }
        if let Some(t) = p.trade {
            // Same order, same symbol: this always merges.
            let merged = match &mut update.trade {
                Some(held) => held.merge(&t),
                None => false,
            };
            if merged {
                update.trades_merged += p.trades_merged;
            } else {
                update.trade = Some(*t);
                update.trades_merged = p.trades_merged;
            }
        }
        update.instructions.extend(p.instructions);
        update.reports.extend(p.reports);
        update.arrived = p.arrived.or(update.arrived);
        update.idle = false;
        true
    }

    /// Empties it into the Update to hand over; `newest_quote` is the
    /// symbol's newest quote, used when quotes arrived.
    pub(crate) fn take_update(&mut self, newest_quote: Option<&Quote>) -> Update<I, R> {
        let p = std::mem::take(self);
        Update {
            quote: if p.quotes_merged > 0 {
                newest_quote.cloned()
            } else {
                None
            },
            trade: p.trade.map(|t| *t),
            instructions: p.instructions,
            reports: p.reports,
            quotes_merged: p.quotes_merged,
            trades_merged: p.trades_merged,
            arrived: p.arrived,
            idle: p.idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::sync::Arc;

    fn quote(bid: i64) -> Quote {
        Quote::new(
            Arc::from("X"),
            (Some(Decimal::from(bid)), Some(Decimal::ONE)),
            (Some(Decimal::from(bid + 1)), Some(Decimal::ONE)),
        )
    }

    #[test]
    fn newest_quote_wins_and_is_counted() {
        let mut p: Pending<(), ()> = Pending::default();
        let now = Instant::now();
        assert!(p.is_empty());
        p.count_quotes(1, now);
        p.count_quotes(1, now);
        let newest = quote(2); // the symbol's newest, kept by the dispatcher
        let u = p.take_update(Some(&newest));
        assert_eq!(u.quote, Some(quote(2)));
        assert_eq!(u.quotes_merged, 2);
        assert!(!u.is_empty());
    }

    #[test]
    fn trades_aggregate_and_count() {
        let mut p: Pending<(), ()> = Pending::default();
        let now = Instant::now();
        let t = |q: i64, px: i64| Trade::new(Arc::from("X"), Decimal::from(q), Decimal::from(px));
        p.merge_trade_n(&t(1, 10), 1, now);
        p.merge_trade_n(&t(1, 20), 1, now);
        p.merge_trade_n(&t(2, 30), 1, now);
        let u = p.take_update(None);
        let held = u.trade.unwrap();
        assert_eq!(held.trade_volume, Some(Decimal::from(4)));
        assert_eq!(held.avg_px, Some(Decimal::from(90) / Decimal::from(4)));
        assert_eq!(u.trades_merged, 3);
    }

    #[test]
    fn instructions_and_reports_keep_arrival_order() {
        let mut p: Pending<u32, &str> = Pending::default();
        let now = Instant::now();
        for i in 0..5 {
            p.push_instruction(i, now);
        }
        p.push_report("a", now);
        p.push_report("b", now);
        let u = p.take_update(None);
        assert_eq!(u.instructions, vec![0, 1, 2, 3, 4]);
        assert_eq!(u.reports, vec!["a", "b"]);
    }
}
