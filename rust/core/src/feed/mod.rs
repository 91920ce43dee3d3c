//! Market-data feeds: venue frames in, Quotes and Trades out, never touching
//! Python.
//!
//! The invariant: a feed delivers only symbols the dispatcher subscribed, and
//! each print once (trades are de-duplicated by the venue's trade id, so the
//! overlap of a renewed connection or a repeated ticker never double counts),
//! and never an older quote after a newer one (quotes are ordered by the
//! venue's ordering key where it has one, see [`Stamp`]; older ones are
//! dropped and counted as `stale`).
//!
//! What a frame carries is delivered: a missing side of the book (`null`,
//! `""`, absent, or price 0 with no size) is an empty side (`None`, see
//! [`Quote`]), never a reason to drop the frame; prices and sizes are read
//! exactly from JSON strings or JSON numbers (their text, never an f64).
//! A value that is there but is not a decimal number (`"abc"`, `true`,
//! `"1_000"`) makes the frame bad: it is counted as an error and reported,
//! and nothing in it is delivered.
//!
//! - [`Venue`]: a venue's protocol: subscribe messages and frame parsing
//!   ([`coinbase`], [`binance`], [`bitmex`]).
//! - [`connection`]: websocket connections with rate-limited connects,
//!   renewal after a lifetime (new one open before the old closes),
//!   reconnect with exponential backoff, and a silence watchdog.
//! - [`replay`]: recorded frames played back, the embedded default.
//! - [`control`]: Feed, one configured feed an engine starts, subscribes and stops.
//! - [`dedup`]: each print delivered once, by the venue's trade id.
//! - [`flat`]: the fast path that reads a frame's members from its text,
//!   leaving anything unusual to serde_json.
//! - [`sink`]: where parsed data goes: per-symbol conflating queues (newest
//!   quote wins, prints aggregate) that the dispatcher drains.

pub mod binance;
pub mod bitmex;
pub mod coinbase;
pub mod connection;
pub mod control;
pub mod dedup;
pub mod flat;
pub mod replay;
pub mod sink;

use crate::market::{Quote, Symbol, Trade};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap as HashMap;
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use control::{seconds, venue, Feed, FeedError, Source};
pub use dedup::Dedup;
pub use sink::MarketSink;

/// A venue's identifier for a print, used to deliver each print once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TradeId {
    /// Increasing per symbol (Coinbase, Binance).
    Seq(u64),
    /// Unique but unordered, in the canonical lowercase UUID form
    /// (BitMEX's trdMatchID), held as its 128 bits: no allocation per print.
    Uuid(u128),
    /// Unique but unordered, any other text.
    Text(String),
}

impl TradeId {
    /// An unordered id from its text: [`TradeId::Uuid`] when it is a UUID
    /// written `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hex (one
    /// text per value, so two ids are equal exactly when their texts are),
    /// [`TradeId::Text`] for anything else.
    pub fn text(t: &str) -> TradeId {
        uuid_bits(t).map_or_else(|| TradeId::Text(t.to_string()), TradeId::Uuid)
    }
}

/// The 128 bits of a canonical lowercase UUID text, or `None`.
fn uuid_bits(t: &str) -> Option<u128> {
    let b = t.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut n: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        n = (n << 4) | u128::from(v);
    }
    Some(n)
}

/// A venue's ordering key for a quote: an older stamp never replaces a newer
/// one of the same symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// An update id or sequence number, increasing per symbol (Binance
    /// bookTicker `u`, Coinbase ticker `sequence`): a quote is stale unless
    /// its id is greater than the newest delivered one.
    Seq(u64),
    /// A venue time in milliseconds (BitMEX quote `timestamp`): several
    /// quotes may share one, so a quote is stale only when its time is
    /// earlier than the newest delivered one's.
    Millis(u64),
}

/// Milliseconds since 0000-01-01 from an ISO 8601 UTC time
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (BitMEX's only format); `None` for any other
/// text, so such a quote is delivered without ordering. Only the order of
/// the values matters (months are counted as 31 days).
pub fn iso_millis(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() != 24 || &b[4..5] != b"-" || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<u64> {
        b[r].iter().try_fold(0u64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
        })
    };
    let days = (n(0..4)? * 12 + n(5..7)?) * 31 + n(8..10)?;
    let secs = ((days * 24 + n(11..13)?) * 60 + n(14..16)?) * 60 + n(17..19)?;
    Some(secs * 1000 + n(20..23)?)
}

/// What one frame held.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Quotes with their ordering key, if the venue sent one, in frame order.
    pub quotes: Vec<(Quote, Option<Stamp>)>,
    /// Prints with their ids, in frame order.
    pub trades: Vec<(Trade, Option<TradeId>)>,
    /// The frame was a subscription acknowledgement.
    pub ack: bool,
    /// The venue announced it will close this connection soon (renew now).
    pub renew: bool,
    /// A text reply the connection must send (e.g. an application-level pong).
    pub reply: Option<String>,
    /// Symbols seen on this feed, so each frame reuses one shared name
    /// instead of allocating it.
    symbols: HashMap<Box<str>, Symbol>,
    /// The last symbol handed out: a feed's frames mostly repeat it, and
    /// comparing with it is cheaper than hashing.
    last: Option<Symbol>,
}

impl Parsed {
    /// Empties it for the next frame, keeping capacity.
    pub fn clear(&mut self) {
        self.quotes.clear();
        self.trades.clear();
        self.ack = false;
        self.renew = false;
        self.reply = None;
    }

    /// The shared name for `text` (allocated the first time only).
    pub fn symbol(&mut self, text: &str) -> Symbol {
        if let Some(s) = &self.last {
            if **s == *text {
                return s.clone();
            }
        }
        if let Some(s) = self.symbols.get(text) {
            self.last = Some(s.clone());
            return s.clone();
        }
        let s: Symbol = std::sync::Arc::from(text);
        if self.symbols.len() < 100_000 {
            self.symbols.insert(Box::from(text), s.clone());
        }
        s
    }

    /// True when the frame carried market data.
    pub fn has_data(&self) -> bool {
        !self.quotes.is_empty() || !self.trades.is_empty()
    }
}

/// Why a frame was not understood. Counted and reported; never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON, or not the JSON the venue documents.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A field the message type requires is missing.
    #[error("missing field {0:?}")]
    Missing(&'static str),
    /// A price or quantity that is not a decimal number.
    #[error("field {field:?} is not a decimal number: {value:?}")]
    BadNumber {
        /// The field.
        field: &'static str,
        /// Its text.
        value: String,
    },
    /// A message type the feed does not know.
    #[error("unknown message type {0:?}")]
    Unknown(String),
    /// The venue reported an error (e.g. an unknown product).
    #[error("venue error: {0}")]
    Venue(String),
    /// The frame is larger than the configured limit (`max_frame_bytes`).
    #[error("frame of {0} bytes exceeds the limit of {1} bytes")]
    Oversized(usize, usize),
}

/// Checks the JSON number grammar: `-?digits(.digits)?([eE][+-]?digits)?`
/// (leading zeros allowed). Nothing else is a price or a size: no `_`, no
/// `+`, no spaces, no `inf`/`nan`.
///
/// Returns `None` when it is not a number, else whether it has an exponent.
fn number_shape(t: &[u8]) -> Option<bool> {
    let mut i = usize::from(t.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < t.len() && t[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if t.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    let exponent = matches!(t.get(i), Some(b'e' | b'E'));
    if exponent {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    (i == t.len()).then_some(exponent)
}

/// The most significant digits a mantissa may have so that it is always
/// held exactly (a Decimal's 96-bit integer holds any 28 digits).
const MAX_DIGITS: usize = 28;

/// The common case read directly: `digits(.digits)?` with at most 19 digits
/// in all (the mantissa fits a u64, so nothing can round). `None` for
/// anything else (a sign, an exponent, more digits, not a number), which
/// [`decimal`] then reads the general way. Same value and scale as
/// `Decimal::from_str_exact`.
fn plain_decimal(t: &[u8]) -> Option<Decimal> {
    // 19 digits and a dot at most; more is left to the general reading.
    if t.is_empty() || t.len() > 20 {
        return None;
    }
    let (mut mantissa, mut dot) = (0u64, usize::MAX);
    for (i, &c) in t.iter().enumerate() {
        let d = c.wrapping_sub(b'0');
        if d < 10 {
            // Wraps only with 20 digits, refused below.
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
        } else if c == b'.' && dot == usize::MAX && i > 0 {
            dot = i;
        } else {
            return None;
        }
    }
    let places = match dot {
        usize::MAX if t.len() == 20 => return None, // 20 digits
        usize::MAX => 0,
        d if d == t.len() - 1 => return None, // nothing after the dot
        d => t.len() - 1 - d,
    };
    // < 10^19 fits 64 bits: the 96-bit mantissa's high word is zero.
    Some(Decimal::from_parts(
        mantissa as u32,
        (mantissa >> 32) as u32,
        0,
        false,
        places as u32,
    ))
}

/// Parses a decimal field sent as text or as a JSON number's raw text
/// (quotes around it are removed). Exact: the digits are read as written,
/// and a number a Decimal cannot hold exactly (more than 28 significant
/// digits or places, or beyond ±7.9e28) is refused, never rounded.
pub fn decimal(field: &'static str, text: &str) -> Result<Decimal, FrameError> {
    let t = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if let Some(d) = plain_decimal(t.as_bytes()) {
        return Ok(d);
    }
    let bad = || FrameError::BadNumber {
        field,
        value: t.chars().take(40).collect(),
    };
    let Some(exponent) = number_shape(t.as_bytes()) else {
        return Err(bad());
    };
    if exponent {
        let e = t.find(['e', 'E']).unwrap_or(t.len());
        // from_scientific rounds a long mantissa: refuse one that is too long.
        let mantissa = t[..e].trim_start_matches('-');
        let mantissa = match mantissa.find('.') {
            Some(_) => mantissa.trim_end_matches('0'),
            None => mantissa,
        };
        let digits = mantissa.bytes().filter(u8::is_ascii_digit);
        if digits.skip_while(|&c| c == b'0').count() > MAX_DIGITS {
            return Err(bad());
        }
        return Decimal::from_scientific(t).map_err(|_| bad());
    }
    match Decimal::from_str_exact(t) {
        Ok(d) => Ok(d),
        // Trailing zeros past 28 places lose nothing: drop them and retry.
        Err(_) if t.contains('.') && t.ends_with('0') => {
            Decimal::from_str_exact(t.trim_end_matches('0').trim_end_matches('.'))
                .map_err(|_| bad())
        }
        Err(_) => Err(bad()),
    }
}

/// Reads an optional price or size given raw: absent, `null` and `""` are
/// `None`; a JSON string or number holding a decimal is its exact value;
/// anything else is [`FrameError::BadNumber`].
pub fn opt_decimal(
    field: &'static str,
    raw: Option<&RawValue>,
) -> Result<Option<Decimal>, FrameError> {
    opt_decimal_text(field, raw.map(RawValue::get))
}

/// [`opt_decimal`] for a value's raw JSON text (as [`flat`] hands it out).
pub fn opt_decimal_text(
    field: &'static str,
    raw: Option<&str>,
) -> Result<Option<Decimal>, FrameError> {
    let Some(text) = raw else { return Ok(None) };
    match text.as_bytes().first() {
        Some(b'"') if text.len() == 2 => Ok(None),
        Some(b'n') if text == "null" => Ok(None),
        _ => match decimal(field, text) {
            Ok(d) => Ok(Some(d)),
            // Escapes in a number are odd but valid JSON: decode, then read
            // (off the hot path: only a string that did not read as is).
            Err(e) if text.starts_with('"') && text.contains('\\') => {
                let s: String = serde_json::from_str(text).map_err(|_| e)?;
                if s.is_empty() {
                    Ok(None)
                } else {
                    decimal(field, &s).map(Some)
                }
            }
            Err(e) => Err(e),
        },
    }
}

/// A required price or size, given raw (see [`opt_decimal`]).
pub fn req_decimal(field: &'static str, raw: Option<&RawValue>) -> Result<Decimal, FrameError> {
    need(field, opt_decimal(field, raw)?)
}

/// A print when the frame carries one: a price and a quantity above zero (a
/// print of nothing, as an idle product's first ticker sends, is no print).
pub fn print(symbol: Symbol, px: Option<Decimal>, qty: Option<Decimal>) -> Option<Trade> {
    match (px, qty) {
        (Some(px), Some(qty)) if qty > Decimal::ZERO => Some(Trade::new(symbol, qty, px)),
        _ => None,
    }
}

/// Unwraps a required field.
pub fn need<T>(field: &'static str, v: Option<T>) -> Result<T, FrameError> {
    v.ok_or(FrameError::Missing(field))
}

/// A venue's protocol. Implementations are stateless parsers; connection
/// handling and de-duplication are shared.
pub trait Venue: Send + Sync + 'static {
    /// Short name used in errors and counters (`coinbase`, ...).
    fn name(&self) -> &'static str;
    /// The venue's public market-data endpoint.
    fn url(&self) -> &'static str;
    /// Messages that subscribe `symbols` (quotes and trades).
    fn subscribe(&self, symbols: &[Symbol], request_id: u64) -> Vec<String>;
    /// Messages that unsubscribe `symbols`.
    fn unsubscribe(&self, symbols: &[Symbol], request_id: u64) -> Vec<String>;
    /// Parses one text frame into `out` (cleared by the caller).
    fn parse(&self, frame: &str, out: &mut Parsed) -> Result<(), FrameError>;
    /// Most client messages per second one connection may send (None: no limit).
    fn max_messages_per_second(&self) -> Option<u32> {
        None
    }
}

/// Per-feed counters, shared with Python.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Frames received.
    pub frames: AtomicU64,
    /// Quotes delivered to the engine.
    pub quotes: AtomicU64,
    /// Prints delivered to the engine (after de-duplication).
    pub trades: AtomicU64,
    /// Prints dropped as duplicates.
    pub duplicates: AtomicU64,
    /// Quotes dropped because a newer one of the symbol was already delivered
    /// (e.g. from the lagging connection during a renewal).
    pub stale: AtomicU64,
    /// Frames or connections that went wrong.
    pub errors: AtomicU64,
    /// Connections opened.
    pub connects: AtomicU64,
    /// Connections replaced after an error, a close or silence.
    pub reconnects: AtomicU64,
    /// Connections replaced because their lifetime ended (or the venue asked).
    pub renewals: AtomicU64,
}

impl FeedStats {
    /// The counters by name.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("frames", l(&self.frames)),
            ("quotes", l(&self.quotes)),
            ("trades", l(&self.trades)),
            ("duplicates", l(&self.duplicates)),
            ("stale", l(&self.stale)),
            ("errors", l(&self.errors)),
            ("connects", l(&self.connects)),
            ("reconnects", l(&self.reconnects)),
            ("renewals", l(&self.renewals)),
        ]
    }
}

/// Where a feed reports problems: `(venue, message)`.
pub type ErrorSink = Arc<dyn Fn(&str, String) + Send + Sync>;

/// A short, printable excerpt of a bad frame for error messages.
pub fn snippet(frame: &str) -> String {
    const MAX: usize = 120;
    let mut s: String = frame.chars().take(MAX).collect();
    if frame.chars().count() > MAX {
        s.push('…');
    }
    s
}

/// Delivers a parsed frame: quotes not older than the symbol's newest, and
/// first-seen prints, of subscribed symbols.
pub fn deliver(
    parsed: &mut Parsed,
    subscribed: &impl Fn(&Symbol) -> bool,
    dedup: &mut Dedup,
    sink: &MarketSink,
    stats: &FeedStats,
) {
    for (q, stamp) in parsed.quotes.drain(..) {
        if !subscribed(&q.symbol) {
            continue;
        }
        if let Some(stamp) = stamp {
            if !dedup.fresh(&q.symbol, stamp) {
                stats.stale.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        }
        stats.quotes.fetch_add(1, Ordering::Relaxed);
        sink.quote(q);
    }
    for (t, id) in parsed.trades.drain(..) {
        if !subscribed(&t.symbol) {
            continue;
        }
        if let Some(id) = &id {
            if !dedup.first_time(&t.symbol, id) {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        }
        stats.trades.fetch_add(1, Ordering::Relaxed);
        sink.trade(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bnb(u: u64, bid: &str) -> String {
        format!(
            r#"{{"stream":"bnbusdt@bookTicker","data":{{"u":{u},"s":"BNBUSDT","b":"{bid}","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}}}"#
        )
    }

    /// Parses and delivers each frame; returns the sink's pending quote's bid.
    fn run(venue: &dyn Venue, frames: &[String]) -> (MarketSink, FeedStats) {
        let (sink, stats, mut dedup, mut p) = (
            MarketSink::new(),
            FeedStats::default(),
            Dedup::default(),
            Parsed::default(),
        );
        for f in frames {
            p.clear();
            venue.parse(f, &mut p).unwrap();
            deliver(&mut p, &|_| true, &mut dedup, &sink, &stats);
        }
        (sink, stats)
    }

    #[test]
    fn an_older_binance_book_ticker_never_replaces_a_newer_one() {
        let (sink, stats) = run(
            &binance::Binance,
            &[
                bnb(400900301, "25.30"),
                bnb(400900299, "25.10"),
                bnb(400900301, "25.20"),
            ],
        );
        let (_, (q, n)) = sink.quotes.pop().unwrap();
        assert_eq!(q.bid_px, Some(Decimal::new(2530, 2)));
        assert_eq!(n, 1);
        assert_eq!(stats.stale.load(Ordering::Relaxed), 2);
        assert_eq!(stats.quotes.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn coinbase_orders_quotes_by_sequence_per_product() {
        let t = |seq: u64, product: &str, bid: &str| {
            format!(
                r#"{{"type":"ticker","sequence":{seq},"product_id":"{product}","best_bid":"{bid}","best_bid_size":"1","best_ask":"200","best_ask_size":"1"}}"#
            )
        };
        let (sink, stats) = run(
            &coinbase::Coinbase,
            &[t(10, "A", "101"), t(9, "A", "100"), t(5, "B", "50")],
        );
        let mut got = Vec::new();
        sink.quotes.pop_all(&mut got);
        let bids: Vec<_> = got
            .iter()
            .map(|(_, (q, _))| (q.symbol.to_string(), q.bid_px))
            .collect();
        assert!(bids.contains(&("A".into(), Some(Decimal::from(101)))));
        assert!(
            bids.contains(&("B".into(), Some(Decimal::from(50)))),
            "per product"
        );
        assert_eq!(stats.stale.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn bitmex_orders_quotes_by_timestamp_and_keeps_equal_times() {
        let q = |ts: &str, bid: u32| {
            format!(
                r#"{{"table":"quote","action":"insert","data":[{{"timestamp":"{ts}","symbol":"XBTUSD","bidSize":1,"bidPrice":{bid},"askPrice":99999,"askSize":1}}]}}"#
            )
        };
        let (sink, stats) = run(
            &bitmex::BitMex,
            &[
                q("2026-01-01T00:00:00.002Z", 10),
                q("2026-01-01T00:00:00.002Z", 11),
                q("2026-01-01T00:00:00.001Z", 9),
            ],
        );
        let (_, (quote, n)) = sink.quotes.pop().unwrap();
        assert_eq!((quote.bid_px, n), (Some(Decimal::from(11)), 2));
        assert_eq!(stats.stale.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_sequence_far_below_the_newest_is_a_venue_restart() {
        let mut d = Dedup::default();
        let s: Symbol = Arc::from("X");
        assert!(d.fresh(&s, Stamp::Seq(5_000_000)));
        assert!(!d.fresh(&s, Stamp::Seq(4_000_000)));
        assert!(d.fresh(&s, Stamp::Seq(3)), "restarted numbering");
        assert!(d.fresh(&s, Stamp::Seq(4)));
        d.forget(&s);
        assert!(d.fresh(&s, Stamp::Seq(1)), "forgotten on unsubscribe");
    }

    #[test]
    fn canonical_lowercase_uuids_are_held_as_bits_and_other_ids_as_text() {
        let id = "00000000-006d-1000-0000-000a0ba1f5a0";
        assert_eq!(
            TradeId::text(id),
            TradeId::Uuid(0x006d_1000_0000_000a_0ba1_f5a0)
        );
        assert_eq!(
            TradeId::text("ffffffff-ffff-ffff-ffff-ffffffffffff"),
            TradeId::Uuid(u128::MAX)
        );
        // Not one text per value, or not a UUID: kept as the text itself.
        for t in [
            "00000000-006D-1000-0000-000A0BA1F5A0",
            "00000000006d10000000000a0ba1f5a0",
            "00000000-006d-1000-0000-000a0ba1f5a",
            "00000000-006d-1000-0000-000a0ba1f5a00",
            "00000000+006d-1000-0000-000a0ba1f5a0",
            "0000000g-006d-1000-0000-000a0ba1f5a0",
            "",
            "abc",
        ] {
            assert_eq!(TradeId::text(t), TradeId::Text(t.to_string()), "{t}");
        }
    }

    #[test]
    fn plain_decimals_read_directly_equal_the_general_reading() {
        for t in [
            "0",
            "7",
            "007",
            "0.50",
            "60000.005",
            "0.00000000",
            "1.5637040",
            "9999999999999999999",
            "999999999.9999999999",
            "0.000000000000000001",
        ] {
            let d = plain_decimal(t.as_bytes()).expect(t);
            let general = Decimal::from_str_exact(t).unwrap();
            assert_eq!((d, d.scale()), (general, general.scale()), "{t}");
        }
        // Left to the general reading (which refuses some of them).
        for t in [
            "10000000000000000000",
            "0.0000000000000000001",
            "1.",
            ".5",
            "1.2.3",
            "-1",
            "1e3",
            "",
            "1_0",
            " 1",
        ] {
            assert_eq!(plain_decimal(t.as_bytes()), None, "{t}");
        }
    }

    /// The reading before it was made faster, kept as the reference.
    fn plain_decimal_reference(t: &[u8]) -> Option<Decimal> {
        let (mut mantissa, mut digits, mut places, mut dot) = (0u64, 0u32, 0u32, false);
        for &c in t {
            match c {
                b'0'..=b'9' => {
                    if digits == 19 {
                        return None;
                    }
                    mantissa = mantissa * 10 + u64::from(c - b'0');
                    digits += 1;
                    places += u32::from(dot);
                }
                b'.' if !dot && digits > 0 => dot = true,
                _ => return None,
            }
        }
        if digits == 0 || (dot && places == 0) {
            return None;
        }
        Some(Decimal::from_i128_with_scale(i128::from(mantissa), places))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5000))]
        /// The fast plain reading agrees with the reference on texts made of
        /// digits and dots (and a stray byte), lengths 0 to 22.
        #[test]
        fn plain_decimal_agrees_with_its_reference(t in "[0-9.]{0,22}|[0-9.]{0,10}[-e x][0-9.]{0,10}") {
            let got = plain_decimal(t.as_bytes());
            let want = plain_decimal_reference(t.as_bytes());
            proptest::prop_assert_eq!(got.map(|d| (d, d.scale())), want.map(|d| (d, d.scale())), "{}", t);
        }
    }

    #[test]
    fn decimals_parse_from_text_and_raw_numbers() {
        assert_eq!(decimal("p", "\"1.5\"").unwrap(), Decimal::new(15, 1));
        assert_eq!(decimal("p", "2e3").unwrap(), Decimal::from(2000));
        assert_eq!(decimal("p", "-0.5").unwrap(), Decimal::new(-5, 1));
        assert_eq!(decimal("p", "1E-2").unwrap(), Decimal::new(1, 2));
        for bad in [
            "abc", "1_000", "+1", " 1", "1.", ".5", "1e", "", "-", "NaN", "1e99999",
        ] {
            assert!(
                matches!(decimal("p", bad), Err(FrameError::BadNumber { .. })),
                "{bad:?}"
            );
        }
    }
}

/// What the engine tells a running feed.
#[derive(Debug)]
pub enum Command {
    /// Start delivering a symbol (its first order arrived).
    Subscribe(Symbol),
    /// Stop delivering a symbol (its last order ended).
    Unsubscribe(Symbol),
    /// Close everything and end the task.
    Stop,
}

/// A running feed: send it subscriptions, read its counters.
pub struct FeedHandle {
    /// The venue's name.
    pub venue: &'static str,
    /// Counters, shared with the feed task.
    pub stats: Arc<FeedStats>,
    tx: tokio::sync::mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl FeedHandle {
    pub(crate) fn new(
        venue: &'static str,
        stats: Arc<FeedStats>,
        tx: tokio::sync::mpsc::UnboundedSender<Command>,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        FeedHandle {
            venue,
            stats,
            tx,
            task,
        }
    }

    /// Starts delivering `symbol`.
    pub fn subscribe(&self, symbol: Symbol) {
        let _ = self.tx.send(Command::Subscribe(symbol));
    }

    /// Stops delivering `symbol`.
    pub fn unsubscribe(&self, symbol: Symbol) {
        let _ = self.tx.send(Command::Unsubscribe(symbol));
    }

    /// Asks the feed to close its connections and end.
    pub fn stop(&self) {
        let _ = self.tx.send(Command::Stop);
    }

    /// True once the feed task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the feed task to end (after [`stop`](Self::stop)).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}
