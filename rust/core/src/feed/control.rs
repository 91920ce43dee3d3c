//! Feed: one configured market-data feed (a venue, where its frames come
//! from, which symbols it carries), started on a runner's tokio runtime and
//! told which symbols to deliver.
//!
//! The invariant: a feed runs in at most one engine at a time, and only
//! symbols it carries are sent to it.

use super::connection::{self, WsConfig};
use super::replay::{self, ReplayConfig};
use super::{binance, bitmex, coinbase, ErrorSink, FeedStats, MarketSink, Venue};
use crate::market::Symbol;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Why a feed could not be made or started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// No such venue.
    #[error("unknown venue {0:?}: expected coinbase, binance or bitmex")]
    UnknownVenue(String),
    /// A setting out of range; the message names it and what was expected.
    #[error("{0}")]
    Invalid(String),
    /// The feed is already running (in another engine).
    #[error("this {0} feed is already running in another engine")]
    AlreadyRunning(&'static str),
}

/// The venue of that name (any case): `coinbase`, `binance` or `bitmex`.
pub fn venue(name: &str) -> Result<Arc<dyn Venue>, FeedError> {
    match name.to_ascii_lowercase().as_str() {
        "coinbase" => Ok(Arc::new(coinbase::Coinbase)),
        "binance" => Ok(Arc::new(binance::Binance)),
        "bitmex" => Ok(Arc::new(bitmex::BitMex)),
        _ => Err(FeedError::UnknownVenue(name.to_string())),
    }
}

/// A positive, finite number of seconds, or an error naming the setting.
pub fn seconds(name: &str, v: f64) -> Result<Duration, FeedError> {
    if v.is_finite() && v > 0.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(FeedError::Invalid(format!(
            "{name}: must be a positive number of seconds, got {v}"
        )))
    }
}

/// Where a feed's frames come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The venue's websocket.
    Websocket(WsConfig),
    /// A recording.
    Replay(ReplayConfig),
}

/// A running feed's command channel and task.
pub use super::FeedHandle;

/// One market-data feed. See the module docs.
pub struct Feed {
    venue: Arc<dyn Venue>,
    source: Source,
    symbols: Option<HashSet<String>>,
    stats: Arc<FeedStats>,
    running: Mutex<Option<FeedHandle>>,
}

impl Feed {
    /// A feed of `venue` from `source`, carrying only `symbols` if given.
    pub fn new(venue: Arc<dyn Venue>, source: Source, symbols: Option<Vec<String>>) -> Self {
        Feed {
            venue,
            source,
            symbols: symbols.map(|s| s.into_iter().collect()),
            stats: Arc::default(),
            running: Mutex::new(None),
        }
    }

    /// A websocket feed of the venue named `venue`, at `url` or the venue's
    /// public endpoint; `configure` adjusts the defaults, which are then checked.
    pub fn websocket(
        venue: &str,
        url: Option<String>,
        symbols: Option<Vec<String>>,
        configure: impl FnOnce(&mut WsConfig) -> Result<(), FeedError>,
    ) -> Result<Self, FeedError> {
        let v = self::venue(venue)?;
        let mut cfg = WsConfig::new(url.unwrap_or_else(|| v.url().to_string()));
        configure(&mut cfg)?;
        cfg.validate()?;
        Ok(Feed::new(v, Source::Websocket(cfg), symbols))
    }

    /// A replay of a recording of the venue named `venue`.
    pub fn replay(
        venue: &str,
        cfg: ReplayConfig,
        symbols: Option<Vec<String>>,
    ) -> Result<Self, FeedError> {
        cfg.validate()?;
        Ok(Feed::new(self::venue(venue)?, Source::Replay(cfg), symbols))
    }

    /// The venue's name.
    pub fn venue(&self) -> &'static str {
        self.venue.name()
    }

    /// Where the frames come from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The endpoint or file, as text.
    pub fn location(&self) -> String {
        match &self.source {
            Source::Websocket(c) => c.url.clone(),
            Source::Replay(c) => c.path.display().to_string(),
        }
    }

    /// The feed's counters.
    pub fn stats(&self) -> &FeedStats {
        &self.stats
    }

    /// True when this feed carries `symbol`.
    pub fn carries(&self, symbol: &str) -> bool {
        self.symbols.as_ref().is_none_or(|s| s.contains(symbol))
    }

    /// Starts the feed on the current tokio runtime.
    pub fn start(&self, sink: Arc<MarketSink>, errors: ErrorSink) -> Result<(), FeedError> {
        let mut running = self.running.lock();
        if running.is_some() {
            return Err(FeedError::AlreadyRunning(self.venue.name()));
        }
        let handle = match &self.source {
            Source::Websocket(cfg) => connection::spawn(
                self.venue.clone(),
                cfg.clone(),
                sink,
                errors,
                self.stats.clone(),
            ),
            Source::Replay(cfg) => replay::spawn(
                self.venue.clone(),
                cfg.clone(),
                sink,
                errors,
                self.stats.clone(),
            ),
        };
        *running = Some(handle);
        Ok(())
    }

    /// Starts delivering `symbol`, if this feed carries it and runs.
    pub fn subscribe(&self, symbol: &Symbol) {
        if self.carries(symbol) {
            if let Some(h) = &*self.running.lock() {
                h.subscribe(symbol.clone());
            }
        }
    }

    /// Stops delivering `symbol`, if this feed carries it and runs.
    pub fn unsubscribe(&self, symbol: &Symbol) {
        if self.carries(symbol) {
            if let Some(h) = &*self.running.lock() {
                h.unsubscribe(symbol.clone());
            }
        }
    }

    /// Stops the feed; it may be started again (in another engine).
    pub fn stop(&self) {
        if let Some(h) = self.running.lock().take() {
            h.stop();
        }
    }
}
