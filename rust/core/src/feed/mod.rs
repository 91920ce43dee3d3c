//! Market-data feeds: venue frames in, Quotes and Trades out, never touching
//! Python.
//!
//! The invariant: a feed delivers only symbols the dispatcher subscribed, and
//! each print once (trades are de-duplicated by the venue's trade id, so the
//! overlap of a renewed connection or a repeated ticker never double counts).
//!
//! - [`Venue`]: a venue's protocol: subscribe messages and frame parsing
//!   ([`coinbase`], [`binance`], [`bitmex`]).
//! - [`connection`]: websocket connections with rate-limited connects,
//!   renewal after a lifetime (new one open before the old closes),
//!   reconnect with exponential backoff, and a silence watchdog.
//! - [`replay`]: recorded frames played back, the embedded default.
//! - [`control`]: Feed, one configured feed an engine starts, subscribes and stops.
//! - [`dedup`]: each print delivered once, by the venue's trade id.
//! - [`sink`]: where parsed data goes: per-symbol conflating queues (newest
//!   quote wins, prints aggregate) that the dispatcher drains.

pub mod binance;
pub mod bitmex;
pub mod coinbase;
pub mod connection;
pub mod control;
pub mod dedup;
pub mod replay;
pub mod sink;

use crate::market::{Quote, Symbol, Trade};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap as HashMap;
use std::str::FromStr;
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
    /// Unique but unordered (BitMEX's trdMatchID).
    Text(String),
}

/// What one frame held.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Quotes, in frame order.
    pub quotes: Vec<Quote>,
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
        if let Some(s) = self.symbols.get(text) {
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

/// Parses a decimal field sent as text or as a JSON number's raw text.
pub fn decimal(field: &'static str, text: &str) -> Result<Decimal, FrameError> {
    let t = text.trim_matches('"');
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .map_err(|_| FrameError::BadNumber {
            field,
            value: t.chars().take(40).collect(),
        })
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

/// Delivers a parsed frame: quotes and first-seen prints of subscribed symbols.
pub fn deliver(
    parsed: &mut Parsed,
    subscribed: &impl Fn(&Symbol) -> bool,
    dedup: &mut Dedup,
    sink: &MarketSink,
    stats: &FeedStats,
) {
    for q in parsed.quotes.drain(..) {
        if subscribed(&q.symbol) {
            stats.quotes.fetch_add(1, Ordering::Relaxed);
            sink.quote(q);
        }
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

    #[test]
    fn decimals_parse_from_text_and_raw_numbers() {
        assert_eq!(decimal("p", "\"1.5\"").unwrap(), Decimal::new(15, 1));
        assert_eq!(decimal("p", "2e3").unwrap(), Decimal::from(2000));
        assert!(matches!(
            decimal("p", "abc"),
            Err(FrameError::BadNumber { .. })
        ));
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
