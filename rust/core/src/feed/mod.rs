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
//! - [`sink`]: where parsed data goes: per-symbol conflating queues (newest
//!   quote wins, prints aggregate) that the dispatcher drains.

pub mod binance;
pub mod bitmex;
pub mod coinbase;
pub mod connection;
pub mod replay;
pub mod sink;

use crate::market::{Quote, Symbol, Trade};
use rust_decimal::Decimal;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    /// The frame is larger than the configured limit.
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
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
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

/// Remembers which prints were delivered, per symbol, so each is delivered once.
///
/// Two connections overlap while one is renewed, and the old one may lag:
/// prints can arrive out of order, so sequential ids are remembered in a
/// window rather than as a high-water mark (which would drop a late,
/// never-seen print).
#[derive(Default)]
pub struct Dedup {
    seq: HashMap<Symbol, SeqWindow>,
    recent_text: HashMap<Symbol, (HashSet<String>, VecDeque<String>)>,
}

/// How many trade ids are remembered per symbol.
const WINDOW: u64 = 4096;
const WORDS: usize = (WINDOW / 64) as usize;

/// The last [`WINDOW`] sequential ids as a ring of bits: O(1) per print.
struct SeqWindow {
    max: u64,
    bits: [u64; WORDS],
}

impl SeqWindow {
    fn new(first: u64) -> Self {
        let mut w = SeqWindow {
            max: first,
            bits: [0; WORDS],
        };
        w.set(first);
        w
    }

    fn slot(n: u64) -> (usize, u64) {
        let i = n % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn set(&mut self, n: u64) {
        let (w, b) = Self::slot(n);
        self.bits[w] |= b;
    }

    fn first_time(&mut self, n: u64) -> bool {
        if n > self.max {
            // Ids between the old and the new max enter the window unseen.
            if n - self.max >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for m in self.max + 1..n {
                    let (w, b) = Self::slot(m);
                    self.bits[w] &= !b;
                }
                let (w, b) = Self::slot(n);
                self.bits[w] &= !b;
            }
            self.max = n;
            self.set(n);
            return true;
        }
        if n + WINDOW <= self.max {
            return false; // older than the window: long since delivered
        }
        let (w, b) = Self::slot(n);
        if self.bits[w] & b != 0 {
            return false;
        }
        self.bits[w] |= b;
        true
    }
}

impl Dedup {
    /// True the first time a print is seen.
    pub fn first_time(&mut self, symbol: &Symbol, id: &TradeId) -> bool {
        match id {
            TradeId::Seq(n) => match self.seq.get_mut(symbol) {
                Some(w) => w.first_time(*n),
                None => {
                    self.seq.insert(symbol.clone(), SeqWindow::new(*n));
                    true
                }
            },
            TradeId::Text(t) => {
                let (set, order) = self.recent_text.entry(symbol.clone()).or_default();
                if !set.insert(t.clone()) {
                    return false;
                }
                order.push_back(t.clone());
                if order.len() > WINDOW as usize {
                    if let Some(old) = order.pop_front() {
                        set.remove(&old);
                    }
                }
                true
            }
        }
    }

    /// Forgets a symbol (it was unsubscribed).
    pub fn forget(&mut self, symbol: &Symbol) {
        self.seq.remove(symbol);
        self.recent_text.remove(symbol);
    }
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
    fn sequential_trade_ids_are_delivered_once() {
        let mut d = Dedup::default();
        let s: Symbol = Arc::from("X");
        assert!(d.first_time(&s, &TradeId::Seq(5)));
        assert!(!d.first_time(&s, &TradeId::Seq(5)));
        assert!(d.first_time(&s, &TradeId::Seq(6)));
        assert!(d.first_time(&s, &TradeId::Seq(9)));
        assert!(!d.first_time(&s, &TradeId::Seq(9)));
        assert!(
            d.first_time(&s, &TradeId::Seq(7)),
            "skipped ids stay unseen"
        );
        // A late print from a lagging connection is still new...
        assert!(d.first_time(&s, &TradeId::Seq(4)));
        // ...once.
        assert!(!d.first_time(&s, &TradeId::Seq(4)));
        assert!(d.first_time(&s, &TradeId::Seq(10_000)));
        assert!(!d.first_time(&s, &TradeId::Seq(3)), "older than the window");
        let t: Symbol = Arc::from("Y");
        assert!(d.first_time(&t, &TradeId::Seq(1)), "per symbol");
    }

    #[test]
    fn text_trade_ids_are_delivered_once() {
        let mut d = Dedup::default();
        let s: Symbol = Arc::from("X");
        assert!(d.first_time(&s, &TradeId::Text("a".into())));
        assert!(d.first_time(&s, &TradeId::Text("b".into())));
        assert!(!d.first_time(&s, &TradeId::Text("a".into())));
    }

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
