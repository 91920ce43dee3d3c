//! cargo bench -p exo-core --bench feeds
//!
//! Venue frames parsed and conflated per core, for each venue's format:
//! parse the frame, de-duplicate its print, push into the engine's
//! per-symbol queues (newest quote wins, prints merge). exo's performance
//! target: >= 1.5 M frames/s per core, >= 10x Python's json + Decimal.

use exo_core::feed::{
    binance::Binance, bitmex::BitMex, coinbase::Coinbase, deliver, Dedup, FeedStats, MarketSink,
    Parsed, Venue,
};
use std::time::Instant;

const N: usize = 20_000;

fn main() {
    divan::main();
    summary();
}

fn coinbase_frames() -> Vec<String> {
    (0..N)
        .map(|i| {
            let px = 60_000.0 + (i % 1000) as f64 * 0.01;
            format!(
                r#"{{"type":"ticker","sequence":{},"product_id":"BTC-USD","price":"{:.3}","open_24h":"59000.00","volume_24h":"12345.67890123","low_24h":"58000.00","high_24h":"61000.00","volume_30d":"456789.12345678","best_bid":"{:.2}","best_bid_size":"0.{:08}","best_ask":"{:.2}","best_ask_size":"1.{:08}","side":"buy","time":"2026-01-02T03:04:05.123456Z","trade_id":{},"last_size":"0.{:08}"}}"#,
                1_000_000 + i,
                px + 0.005,
                px,
                i % 997 + 1,
                px + 0.01,
                i % 991,
                5_000_000 + i,
                i % 983 + 1
            )
        })
        .collect()
}

fn binance_frames() -> Vec<String> {
    (0..N)
        .map(|i| {
            let px = 60_000.0 + (i % 1000) as f64 * 0.01;
            if i % 2 == 0 {
                format!(
                    r#"{{"stream":"btcusdt@bookTicker","data":{{"u":{},"s":"BTCUSDT","b":"{:.2}","B":"0.{:08}","a":"{:.2}","A":"1.{:08}"}}}}"#,
                    400_000_000 + i,
                    px,
                    i % 997 + 1,
                    px + 0.01,
                    i % 991
                )
            } else {
                format!(
                    r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":{},"p":"{:.2}","q":"0.{:08}","b":88,"a":50,"T":1672515782136,"m":true,"M":true}}}}"#,
                    5_000_000 + i,
                    px,
                    i % 983 + 1
                )
            }
        })
        .collect()
}

fn bitmex_frames() -> Vec<String> {
    (0..N)
        .map(|i| {
            let px = 60_000.0 + (i % 1000) as f64 * 0.5;
            if i % 2 == 0 {
                format!(
                    r#"{{"table":"quote","action":"insert","data":[{{"timestamp":"2026-01-02T03:04:05.123Z","symbol":"XBTUSD","bidSize":{},"bidPrice":{:.1},"askPrice":{:.1},"askSize":{}}}]}}"#,
                    100 + i % 997,
                    px,
                    px + 0.5,
                    200 + i % 991
                )
            } else {
                format!(
                    r#"{{"table":"trade","action":"insert","data":[{{"timestamp":"2026-01-02T03:04:05.123Z","symbol":"XBTUSD","side":"Buy","size":{},"price":{:.1},"tickDirection":"PlusTick","trdMatchID":"00000000-006d-1000-0000-{:012x}","grossValue":1,"homeNotional":0.1,"foreignNotional":30}}]}}"#,
                    1 + i % 983,
                    px,
                    i
                )
            }
        })
        .collect()
}

/// Parses and conflates every frame; returns ns per frame.
fn run(venue: &dyn Venue, frames: &[String]) -> f64 {
    let sink = MarketSink::new();
    let stats = FeedStats::default();
    let mut dedup = Dedup::default();
    let mut parsed = Parsed::default();
    let all = |_: &exo_core::Symbol| true;
    let t = Instant::now();
    for f in frames {
        parsed.clear();
        venue.parse(f, &mut parsed).expect("valid frame");
        deliver(&mut parsed, &all, &mut dedup, &sink, &stats);
    }
    t.elapsed().as_nanos() as f64 / frames.len() as f64
}

#[divan::bench(args = ["coinbase", "binance", "bitmex"], sample_count = 20)]
fn parse_and_conflate(bencher: divan::Bencher, venue: &str) {
    let (v, frames): (Box<dyn Venue>, Vec<String>) = match venue {
        "coinbase" => (Box::new(Coinbase), coinbase_frames()),
        "binance" => (Box::new(Binance), binance_frames()),
        _ => (Box::new(BitMex), bitmex_frames()),
    };
    bencher
        .counter(divan::counter::ItemsCount::new(N))
        .bench_local(|| run(v.as_ref(), &frames));
}

fn summary() {
    println!();
    println!(
        "| venue frames parsed and conflated, per core (median of 15 runs) | frames/s | target |"
    );
    println!("|---|---|---|");
    for (name, v, frames) in [
        (
            "coinbase ticker",
            Box::new(Coinbase) as Box<dyn Venue>,
            coinbase_frames(),
        ),
        (
            "binance bookTicker/trade",
            Box::new(Binance),
            binance_frames(),
        ),
        ("bitmex quote/trade", Box::new(BitMex), bitmex_frames()),
    ] {
        // EXO_FEEDS_ONLY=bitmex: one venue alone (to profile it).
        if std::env::var("EXO_FEEDS_ONLY").is_ok_and(|only| !name.starts_with(&only)) {
            continue;
        }
        let mut ns: Vec<f64> = (0..15).map(|_| run(v.as_ref(), &frames)).collect();
        ns.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let med = ns[ns.len() / 2];
        println!(
            "| {name} | {:.2} M frames/s ({med:.0} ns/frame) | >= 1.5 M frames/s |",
            1e3 / med
        );
    }
}
