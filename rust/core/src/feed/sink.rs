//! MarketSink: the engine's per-symbol queues between feeds and dispatcher.
//!
//! The invariant: one pending quote and one pending (merged) trade per
//! symbol. Feeds push from tokio tasks at any rate; the dispatcher drains
//! whatever is there when it gets to it, so a burst costs one fan-out.

use crate::market::{Quote, Symbol, Trade};
use crate::queue::ConflatingQueue;

/// Per-symbol conflating queues for quotes (newest wins) and trades (merged).
pub struct MarketSink {
    /// Newest quote per symbol.
    pub quotes: ConflatingQueue<Symbol, Quote>,
    /// Merged prints per symbol.
    pub trades: ConflatingQueue<Symbol, Trade>,
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
            quotes: ConflatingQueue::new(),
            trades: ConflatingQueue::with_merge(|mut held: Trade, new: Trade| {
                // Same key means same symbol, so this always merges.
                held.merge(&new);
                held
            }),
        }
    }

    /// Queues a quote (replacing the symbol's pending one).
    pub fn quote(&self, q: Quote) {
        self.quotes.push(q.symbol.clone(), q);
    }

    /// Queues a print (merging into the symbol's pending trade).
    pub fn trade(&self, t: Trade) {
        self.trades.push(t.symbol.clone(), t);
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
        let (_, t) = sink.trades.pop().unwrap();
        assert_eq!(t.trade_volume, Some(Decimal::from(4)));
        assert_eq!(t.avg_px, Some(Decimal::from(175)));
    }
}

/// Drains the sink into a dispatcher until the task is dropped: every pending
/// quote and trade is fanned out under one lock, then `signal` is called once
/// if some order became ready. Never touches Python.
pub async fn pump<D, I, R>(
    sink: std::sync::Arc<MarketSink>,
    dispatcher: std::sync::Arc<std::sync::Mutex<crate::Dispatcher<D, I, R>>>,
    signal: impl Fn(),
) {
    loop {
        sink.ready().await;
        let now = std::time::Instant::now();
        let mut wake = false;
        {
            let mut d = dispatcher.lock().unwrap_or_else(|e| e.into_inner());
            while let Some((_, q)) = sink.quotes.pop() {
                wake |= d.quote(&q, now).1;
            }
            while let Some((_, t)) = sink.trades.pop() {
                wake |= d.trade(&t, now).1;
            }
        }
        if wake {
            signal();
        }
    }
}
