//! Coverage-guided fuzzing of the feed parsers: the first byte picks the
//! venue (Coinbase, Binance, BitMEX), the rest is the frame (read as UTF-8,
//! as a websocket text frame is). A frame must never panic; what a parser
//! accepts must obey the Quote/Trade rules and go through delivery
//! (de-duplication, staleness, conflation) without a panic either.
//!
//! Run: `make fuzz-feeds` or, in rust/core/fuzz,
//! `cargo +nightly fuzz run feeds corpus/feeds -- -dict=feeds.dict`.
#![no_main]

use exo_core::feed::{
    binance::Binance, bitmex::BitMex, coinbase::Coinbase, deliver, Dedup, FeedStats, MarketSink,
    Parsed, Venue,
};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use std::cell::RefCell;

struct State {
    parsed: Parsed,
    dedup: Dedup,
    sink: MarketSink,
    stats: FeedStats,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        parsed: Parsed::default(),
        dedup: Dedup::default(),
        sink: MarketSink::new(),
        stats: FeedStats::default(),
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let venue: &dyn Venue = match pick % 3 {
        0 => &Coinbase,
        1 => &Binance,
        _ => &BitMex,
    };
    let text = String::from_utf8_lossy(frame);
    STATE.with(|s| {
        let s = &mut *s.borrow_mut();
        s.parsed.clear();
        if venue.parse(&text, &mut s.parsed).is_err() {
            return;
        }
        for (q, _) in &s.parsed.quotes {
            for (px, size) in [(q.bid_px, q.bid_size), (q.ask_px, q.ask_size)] {
                assert!(px.is_some() || size.is_none(), "a size without its price: {q:?}");
                assert!(
                    !(px.is_some_and(|p| p.is_zero()) && size.is_none_or(|z| z.is_zero())),
                    "a price-0 empty side: {q:?}"
                );
            }
        }
        for (t, _) in &s.parsed.trades {
            assert!(t.last_qty > Decimal::ZERO, "a print of nothing: {t:?}");
        }
        deliver(&mut s.parsed, &|_| true, &mut s.dedup, &s.sink, &s.stats);
        // Keep the sink from growing without bound across runs.
        let mut drained = Vec::new();
        s.sink.quotes.pop_all(&mut drained);
        let mut trades = Vec::new();
        s.sink.trades.pop_all(&mut trades);
    });
});
