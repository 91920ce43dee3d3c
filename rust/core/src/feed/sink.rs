//! MarketSink: the engine's per-symbol queues between feeds and dispatcher.
//!
//! The invariant: one pending quote and one pending (merged) trade per
//! symbol. Feeds push from tokio tasks at any rate; the dispatcher drains
//! whatever is there when it gets to it, so a burst costs one fan-out.

use crate::market::{Quote, Symbol, Trade};
use crate::queue::ConflatingQueue;

/// Per-symbol conflating queues for quotes (newest wins) and trades (merged),
/// each with how many venue quotes or prints it stands for.
pub struct MarketSink {
    /// Newest quote per symbol, and how many quotes it replaced.
    pub quotes: ConflatingQueue<Symbol, (Quote, u32)>,
    /// Merged prints per symbol, and how many prints.
    pub trades: ConflatingQueue<Symbol, (Trade, u32)>,
}

impl Default for MarketSink {
    fn default() -> Self {
        Self::new()
    }
}

impl MarketSink {
    /// Empty queues.
    pub fn new() -> Self {
        MarketSink {
            quotes: ConflatingQueue::with_merge(|(_, a): (Quote, u32), (q, b): (Quote, u32)| {
                (q, a + b)
            }),
            trades: ConflatingQueue::with_merge(
                |(mut held, a): (Trade, u32), (new, b): (Trade, u32)| {
                    // Same key means same symbol, so this always merges.
                    held.merge(&new);
                    (held, a + b)
                },
            ),
        }
    }

    /// Queues a quote (replacing the symbol's pending one).
    pub fn quote(&self, q: Quote) {
        self.quotes.push(q.symbol.clone(), (q, 1));
    }

    /// Queues a print (merging into the symbol's pending trade).
    pub fn trade(&self, t: Trade) {
        self.trades.push(t.symbol.clone(), (t, 1));
    }

    /// Completes when a quote or trade is pending.
    pub async fn ready(&self) {
        tokio::select! {
            _ = self.quotes.ready() => {}
            _ = self.trades.ready() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::sync::Arc;

    #[test]
    fn trades_of_a_symbol_merge_while_pending() {
        let sink = MarketSink::new();
        let s: Symbol = Arc::from("X");
        sink.trade(Trade::new(s.clone(), Decimal::ONE, Decimal::from(100)));
        sink.trade(Trade::new(s.clone(), Decimal::from(3), Decimal::from(200)));
        let (_, (t, n)) = sink.trades.pop().unwrap();
        assert_eq!(n, 2);
        assert_eq!(t.trade_volume, Some(Decimal::from(4)));
        assert_eq!(t.avg_px, Some(Decimal::from(175)));
    }
}
