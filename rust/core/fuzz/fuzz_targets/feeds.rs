//! Coverage-guided fuzzing of the feed parsers: the first byte picks the
//! venue (Coinbase, Binance, BitMEX), the rest is one or more frames
//! separated by `\n` (read as UTF-8, as websocket text frames are), played
//! in order through one feed's state. A frame must never panic; what a
//! parser accepts must obey the Quote/Trade rules and go through delivery
//! (de-duplication, staleness, conflation) without a panic either. Each input
//! starts from fresh state, so a crash reproduces from its input alone.
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

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frames)) = data.split_first() else {
        return;
    };
    let venue: &dyn Venue = match pick % 3 {
        0 => &Coinbase,
        1 => &Binance,
        _ => &BitMex,
    };
    let (mut parsed, mut dedup) = (Parsed::default(), Dedup::default());
    SINK.with(|(sink, stats)| run(venue, frames, &mut parsed, &mut dedup, sink, stats));
});

thread_local! {
    /// Drained after each input, so it starts empty like a new one (and is
    /// not rebuilt per input: its queues cost more than the parsing).
    static SINK: (MarketSink, FeedStats) = (MarketSink::new(), FeedStats::default());
}

fn run(
    venue: &dyn Venue,
    frames: &[u8],
    parsed: &mut Parsed,
    dedup: &mut Dedup,
    sink: &MarketSink,
    stats: &FeedStats,
) {
    for frame in String::from_utf8_lossy(frames).split('\n') {
        parsed.clear();
        if venue.parse(frame, parsed).is_err() {
            continue;
        }
        for (q, _) in &parsed.quotes {
            for (px, size) in [(q.bid_px, q.bid_size), (q.ask_px, q.ask_size)] {
                assert!(
                    px.is_some() || size.is_none(),
                    "a size without its price: {q:?}"
                );
                assert!(
                    !(px.is_some_and(|p| p.is_zero()) && size.is_none_or(|z| z.is_zero())),
                    "a price-0 empty side: {q:?}"
                );
            }
        }
        for (t, _) in &parsed.trades {
            assert!(t.last_qty > Decimal::ZERO, "a print of nothing: {t:?}");
        }
        deliver(parsed, &|_| true, dedup, sink, stats);
    }
    let (mut quotes, mut trades) = (Vec::new(), Vec::new());
    sink.quotes.pop_all(&mut quotes);
    sink.trades.pop_all(&mut trades);
}
