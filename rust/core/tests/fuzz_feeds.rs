//! Property-based fuzzing of the feed parsers (issue 11, item 9).
//!
//! For each venue (Coinbase ticker, Binance bookTicker/trade, BitMEX
//! quote/trade), frames are generated from random values, then mutated
//! (bytes flipped, inserted, deleted, duplicated, truncated, JSON tokens
//! spliced in) or replaced by random bytes:
//!
//! - no frame makes a parser panic, and whatever a parser accepts obeys the
//!   Quote/Trade rules (a size only with its price, no price-0 empty side,
//!   prints above zero);
//! - played through the real replay feed, good and bad frames interleaved:
//!   every bad frame is counted in `errors` and reported to the error sink
//!   with its line, and every good frame around them is delivered intact
//!   (the values it was generated from, not what a parser says).
//!
//! CI size by default (proptest's 256 cases per property); `PROPTEST_CASES`
//! sets more (`make fuzz-feeds`). Each property prints how many frames it
//! fuzzed (`cargo test --test fuzz_feeds -- --nocapture`).

use exo_core::feed::{
    binance::Binance, bitmex::BitMex, coinbase::Coinbase, replay, FeedStats, MarketSink, Parsed,
    Venue,
};
use exo_core::{Quote, Symbol};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Coinbase,
    Binance,
    BitMex,
}

impl Kind {
    fn venue(self) -> Arc<dyn Venue> {
        match self {
            Kind::Coinbase => Arc::new(Coinbase),
            Kind::Binance => Arc::new(Binance),
            Kind::BitMex => Arc::new(BitMex),
        }
    }
}

type Side = Option<(Decimal, Decimal)>;

/// What a generated frame is, independently of any parser.
#[derive(Debug, Clone)]
struct Good {
    text: String,
    symbol: String,
    /// Expected quote sides, if the frame carries a quote.
    quote: Option<(Side, Side)>,
    /// Expected print `(qty, px)`, if the frame carries one.
    trade: Option<(Decimal, Decimal)>,
}

/// A positive decimal with up to 8 places.
fn dec() -> impl Strategy<Value = Decimal> {
    (1i64..10_000_000_000, 0u32..9).prop_map(|(m, s)| Decimal::new(m, s))
}

/// A book side: present (price, size) or empty.
fn side() -> impl Strategy<Value = Side> {
    prop_oneof![4 => (dec(), dec()).prop_map(Some), 1 => Just(None)]
}

/// A decimal as the venue may send it: a JSON string or a JSON number.
fn num(d: Decimal, as_string: bool) -> String {
    if as_string {
        format!("\"{d}\"")
    } else {
        d.to_string()
    }
}

/// An empty side in each venue's styles (`style` picks one).
fn coinbase_side(name: &str, s: Side, style: u8, as_string: bool) -> String {
    match (s, style % 3) {
        (Some((p, q)), _) => format!(
            r#""{name}":{},"{name}_size":{},"#,
            num(p, as_string),
            num(q, as_string)
        ),
        (None, 0) => format!(r#""{name}":null,"{name}_size":null,"#),
        (None, 1) => format!(r#""{name}":"","{name}_size":"","#),
        (None, _) => String::new(),
    }
}

fn good(kind: Kind, i: usize) -> impl Strategy<Value = Good> {
    (side(), side(), proptest::option::of((dec(), dec())), any::<u8>(), any::<bool>()).prop_map(
        move |(bid, ask, print, style, as_string)| match kind {
            Kind::Coinbase => {
                let symbol = format!("P{i}-USD");
                let trade = print
                    .map(|(q, p)| {
                        format!(
                            r#""trade_id":{},"price":{},"last_size":{},"#,
                            i + 1,
                            num(p, as_string),
                            num(q, as_string)
                        )
                    })
                    .unwrap_or_default();
                let text = format!(
                    r#"{{"type":"ticker","sequence":{},"product_id":"{symbol}",{}{}{trade}"side":"buy","time":"2026-01-02T03:04:05.123456Z"}}"#,
                    i + 1,
                    coinbase_side("best_bid", bid, style, as_string),
                    coinbase_side("best_ask", ask, style / 3, as_string),
                );
                Good {
                    text,
                    symbol,
                    quote: Some((bid, ask)),
                    trade: print,
                }
            }
            Kind::Binance => {
                let symbol = format!("S{i}USDT");
                let stream = symbol.to_lowercase();
                let text_side = |s: Side, px: &str, sz: &str| match (s, style % 2) {
                    (Some((p, q)), _) => {
                        format!(r#""{px}":{},"{sz}":{}"#, num(p, as_string), num(q, as_string))
                    }
                    (None, 0) => format!(r#""{px}":"0.00000000","{sz}":"0.00000000""#),
                    (None, _) => format!(r#""{px}":null,"{sz}":null"#),
                };
                match print {
                    Some((q, p)) if style % 4 == 0 => Good {
                        text: format!(
                            r#"{{"stream":"{stream}@trade","data":{{"e":"trade","E":1,"s":"{symbol}","t":{},"p":{},"q":{},"b":88,"a":50,"T":1,"m":true,"M":true}}}}"#,
                            i + 1,
                            num(p, as_string),
                            num(q, as_string)
                        ),
                        symbol,
                        quote: None,
                        trade: Some((q, p)),
                    },
                    _ => Good {
                        text: format!(
                            r#"{{"stream":"{stream}@bookTicker","data":{{"u":{},"s":"{symbol}",{},{}}}}}"#,
                            i + 1,
                            text_side(bid, "b", "B"),
                            text_side(ask, "a", "A")
                        ),
                        symbol,
                        quote: Some((bid, ask)),
                        trade: None,
                    },
                }
            }
            Kind::BitMex => {
                let symbol = format!("X{i}USD");
                let text_side = |s: Side, px: &str, sz: &str| match s {
                    Some((p, q)) => format!(r#""{px}":{p},"{sz}":{q}"#),
                    None => format!(r#""{px}":null,"{sz}":null"#),
                };
                match print {
                    Some((q, p)) if style % 4 == 0 => Good {
                        text: format!(
                            r#"{{"table":"trade","action":"insert","data":[{{"timestamp":"2026-01-02T03:04:05.123Z","symbol":"{symbol}","side":"Buy","size":{q},"price":{p},"tickDirection":"PlusTick","trdMatchID":"m-{i}","grossValue":1}}]}}"#
                        ),
                        symbol,
                        quote: None,
                        trade: Some((q, p)),
                    },
                    _ => Good {
                        text: format!(
                            r#"{{"table":"quote","action":"insert","data":[{{"timestamp":"2026-01-02T03:04:05.{:03}Z","symbol":"{symbol}",{},{}}}]}}"#,
                            i % 1000,
                            text_side(bid, "bidPrice", "bidSize"),
                            text_side(ask, "askPrice", "askSize")
                        ),
                        symbol,
                        quote: Some((bid, ask)),
                        trade: None,
                    },
                }
            }
        },
    )
}

/// JSON fragments that parsers find hard.
const TOKENS: &[&str] = &[
    "null",
    "\"\"",
    "\"abc\"",
    "1e999",
    "-",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\"1_000\"",
    "true",
    "99999999999999999999999999999999999",
    "\\u0000",
    "\"\\ud800\"",
    "\u{1F600}",
    "\"+1\"",
    "NaN",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
];

#[derive(Debug, Clone)]
enum Op {
    Flip(Index, u8),
    Insert(Index, u8),
    Delete(Index, usize),
    Truncate(Index),
    Duplicate(Index, usize),
    Token(Index, Index),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Op::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Op::Insert(i, b)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Op::Delete(i, n)),
        any::<Index>().prop_map(Op::Truncate),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Op::Duplicate(i, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Op::Token(i, t)),
    ]
}

/// Applies the mutations; a websocket text frame is UTF-8, so the bytes are
/// read back as UTF-8 (invalid sequences become U+FFFD).
fn mutate(text: &str, ops: &[Op]) -> String {
    let mut b = text.as_bytes().to_vec();
    for o in ops {
        let at = |i: &Index, len: usize| i.index(len + 1);
        match o {
            Op::Flip(i, x) if !b.is_empty() => {
                let k = i.index(b.len());
                b[k] ^= x | 1;
            }
            Op::Insert(i, x) => {
                let k = at(i, b.len());
                b.insert(k, *x);
            }
            Op::Delete(i, n) => {
                let k = at(i, b.len());
                b.drain(k..(k + n).min(b.len()));
            }
            Op::Truncate(i) => b.truncate(i.index(b.len().max(1))),
            Op::Duplicate(i, n) => {
                let k = at(i, b.len());
                let piece = b[k..(k + n).min(b.len())].to_vec();
                b.splice(k..k, piece);
            }
            Op::Token(i, t) => {
                let k = at(i, b.len());
                b.splice(k..k, TOKENS[t.index(TOKENS.len())].bytes());
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Coinbase),
        Just(Kind::Binance),
        Just(Kind::BitMex)
    ]
}

/// A frame to throw at a parser: a mutated good frame or random bytes.
fn hostile(kind: Kind) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (good(kind, 7), proptest::collection::vec(op(), 1..6))
            .prop_map(|(g, ops)| mutate(&g.text, &ops)),
        1 => proptest::collection::vec(any::<u8>(), 0..256)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// The rules every delivered quote and print obey.
fn check_invariants(p: &Parsed) -> Result<(), TestCaseError> {
    for (q, _) in &p.quotes {
        for (px, size) in [(q.bid_px, q.bid_size), (q.ask_px, q.ask_size)] {
            prop_assert!(
                px.is_some() || size.is_none(),
                "a size without its price: {q:?}"
            );
            prop_assert!(
                !(px == Some(Decimal::ZERO) && size.is_none_or(|s| s.is_zero())),
                "a price-0 empty side: {q:?}"
            );
        }
    }
    for (t, _) in &p.trades {
        prop_assert!(t.last_qty > Decimal::ZERO, "a print of nothing: {t:?}");
    }
    Ok(())
}

fn config() -> Config {
    // PROPTEST_CASES (read by Config::default) sets the size.
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

#[test]
fn parsers_never_panic_on_mutated_or_random_frames_and_what_they_accept_is_well_formed() {
    let frames = AtomicU64::new(0);
    let mut runner = TestRunner::new(config());
    let strategy =
        kind().prop_flat_map(|k| (Just(k), proptest::collection::vec(hostile(k), 1..16)));
    runner
        .run(&strategy, |(k, batch)| {
            let venue = k.venue();
            let mut p = Parsed::default();
            for f in &batch {
                p.clear();
                frames.fetch_add(1, Ordering::Relaxed);
                if venue.parse(f, &mut p).is_ok() {
                    check_invariants(&p)?;
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz_feeds: {} mutated or random frames parsed without a panic",
        frames.load(Ordering::Relaxed)
    );
}

/// Plays `lines` through the replay feed with every symbol subscribed;
/// returns the sink, the counters and the error messages.
fn play(
    kind: Kind,
    frames: &[String],
    symbols: &[String],
) -> (MarketSink, Arc<FeedStats>, Vec<String>) {
    static FILES: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "exo-fuzz-{}-{}.ndjson",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    // Each frame as a JSON string, so any text (newlines included) is one line.
    let text: String = frames
        .iter()
        .enumerate()
        .map(|(n, f)| {
            format!(
                "{{\"recv_ns\":{n},\"frame\":{}}}\n",
                serde_json::to_string(f).unwrap()
            )
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sink = Arc::new(MarketSink::new());
    let stats = Arc::new(FeedStats::default());
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e2 = errors.clone();
    rt.block_on(async {
        let handle = replay::spawn(
            kind.venue(),
            replay::ReplayConfig {
                path: path.clone(),
                speed: None,
                repeat: false,
            },
            sink.clone(),
            Arc::new(move |_venue: &str, m: String| e2.lock().unwrap().push(m)),
            stats.clone(),
        );
        for s in symbols {
            handle.subscribe(Symbol::from(s.as_str()));
        }
        let n = frames.len() as u64;
        let guard = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while stats.frames.load(Ordering::Relaxed) < n {
            assert!(tokio::time::Instant::now() < guard, "the replay hung");
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        handle.stop();
        handle.join().await;
    });
    let _ = std::fs::remove_file(&path);
    let sink = Arc::try_unwrap(sink).unwrap_or_else(|_| panic!("sink still shared"));
    let errors = errors.lock().unwrap().clone();
    (sink, stats, errors)
}

/// A frame the venue's parser refuses: a truncated good frame (always bad),
/// a mutated one or random bytes (kept when refused).
fn bad(kind: Kind) -> impl Strategy<Value = String> {
    let venue = kind.venue();
    prop_oneof![
        (good(kind, 9), any::<Index>()).prop_map(|(g, i)| {
            let b = g.text.as_bytes();
            String::from_utf8_lossy(&b[..i.index(b.len() - 1)]).into_owned()
        }),
        hostile(kind),
    ]
    .prop_filter("the parser must refuse it", move |f| {
        venue.parse(f, &mut Parsed::default()).is_err()
    })
}

#[test]
fn bad_frames_are_counted_and_reported_and_the_good_frames_around_them_arrive_intact() {
    let frames = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: config().cases.div_ceil(4).max(16),
        ..config()
    });
    let strategy = kind().prop_flat_map(|k| {
        let goods: Vec<_> = (0..12).map(|i| good(k, i)).collect();
        (
            Just(k),
            goods,
            proptest::collection::vec(proptest::option::of(bad(k)), 12),
        )
    });
    runner
        .run(&strategy, |(k, goods, bads)| {
            // good, [bad], good, [bad], ...
            let mut lines = Vec::new();
            let mut bad_lines = Vec::new();
            for (g, b) in goods.iter().zip(&bads) {
                lines.push(g.text.clone());
                if let Some(b) = b {
                    lines.push(b.clone());
                    bad_lines.push(lines.len());
                }
            }
            frames.fetch_add(lines.len() as u64, Ordering::Relaxed);
            let symbols: Vec<String> = goods.iter().map(|g| g.symbol.clone()).collect();
            let (sink, stats, errors) = play(k, &lines, &symbols);

            prop_assert_eq!(stats.errors.load(Ordering::Relaxed), bad_lines.len() as u64);
            prop_assert_eq!(errors.len(), bad_lines.len());
            for (msg, line) in errors.iter().zip(&bad_lines) {
                prop_assert!(
                    msg.contains(&format!("line {line}:")),
                    "{} (line {})",
                    msg,
                    line
                );
            }

            let mut quotes = Vec::new();
            sink.quotes.pop_all(&mut quotes);
            let quotes: HashMap<String, Quote> = quotes
                .into_iter()
                .map(|(s, (q, _))| (s.to_string(), q))
                .collect();
            let mut trades = Vec::new();
            sink.trades.pop_all(&mut trades);
            let trades: HashMap<String, (Decimal, Decimal, u32)> = trades
                .into_iter()
                .map(|(s, (t, n))| (s.to_string(), (t.last_qty, t.last_px, n)))
                .collect();
            let want_quotes = goods.iter().filter(|g| g.quote.is_some()).count();
            let want_trades = goods.iter().filter(|g| g.trade.is_some()).count();
            prop_assert_eq!(quotes.len(), want_quotes);
            prop_assert_eq!(trades.len(), want_trades);
            for g in &goods {
                if let Some((bid, ask)) = g.quote {
                    let q = &quotes[&g.symbol];
                    prop_assert_eq!((q.bid_px, q.bid_size), (bid.map(|s| s.0), bid.map(|s| s.1)));
                    prop_assert_eq!((q.ask_px, q.ask_size), (ask.map(|s| s.0), ask.map(|s| s.1)));
                }
                if let Some((qty, px)) = g.trade {
                    prop_assert_eq!(trades[&g.symbol], (qty, px, 1));
                }
            }
            prop_assert_eq!(stats.quotes.load(Ordering::Relaxed), want_quotes as u64);
            prop_assert_eq!(stats.trades.load(Ordering::Relaxed), want_trades as u64);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz_feeds: {} frames (good and bad interleaved) played through the replay feed",
        frames.load(Ordering::Relaxed)
    );
}
