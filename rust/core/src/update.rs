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

/// What has accumulated for one order since its last hand-over, besides
/// market data: quotes and prints are kept once per symbol, on its
/// [`Tape`](crate::tape::Tape), and read off it at hand-over.
#[derive(Debug)]
pub(crate) struct Pending<I, R> {
    pub(crate) instructions: Vec<I>,
    pub(crate) reports: Vec<R>,
    /// When the newest instruction or report arrived.
    pub(crate) arrived: Option<Instant>,
    pub(crate) idle: bool,
}

impl<I, R> Default for Pending<I, R> {
    fn default() -> Self {
        Pending {
            instructions: Vec::new(),
            reports: Vec::new(),
            arrived: None,
            idle: false,
        }
    }
}

impl<I, R> Pending<I, R> {
    /// True when no instruction or report has accumulated.
    pub(crate) fn is_empty(&self) -> bool {
        self.instructions.is_empty() && self.reports.is_empty()
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
    /// (see [`Dispatcher::refresh`](crate::Dispatcher::refresh)):
    /// instructions and reports append in arrival order. Returns false,
    /// changing nothing, when nothing accumulated.
    pub(crate) fn refresh(&mut self, update: &mut Update<I, R>) -> bool {
        if self.is_empty() {
            return false;
        }
        let p = std::mem::take(self);
        update.instructions.extend(p.instructions);
        update.reports.extend(p.reports);
        update.arrived = update.arrived.max(p.arrived);
        update.idle = false;
        true
    }

    /// Empties it into `update`, about to be handed over, in place: every
    /// field but `quote` is overwritten (prints are reset here and go in
    /// from the symbol's tape next; the quote is the tape's to set), so
    /// `update` may be a reused slot.
    #[inline]
    pub(crate) fn take_into(&mut self, update: &mut Update<I, R>) {
        update.trade = None;
        update.quotes_merged = 0;
        update.trades_merged = 0;
        update.instructions = std::mem::take(&mut self.instructions);
        update.reports = std::mem::take(&mut self.reports);
        update.arrived = self.arrived.take();
        update.idle = std::mem::replace(&mut self.idle, false);
    }

    /// Empties it into a new Update to hand over (market data goes in from
    /// the symbol's tape).
    pub(crate) fn take_update(&mut self) -> Update<I, R> {
        let p = std::mem::take(self);
        Update {
            quote: None,
            trade: None,
            instructions: p.instructions,
            reports: p.reports,
            quotes_merged: 0,
            trades_merged: 0,
            arrived: p.arrived,
            idle: p.idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_and_reports_keep_arrival_order() {
        let mut p: Pending<u32, &str> = Pending::default();
        let now = Instant::now();
        for i in 0..5 {
            p.push_instruction(i, now);
        }
        p.push_report("a", now);
        p.push_report("b", now);
        let u = p.take_update();
        assert_eq!(u.instructions, vec![0, 1, 2, 3, 4]);
        assert_eq!(u.reports, vec!["a", "b"]);
    }
}
