//! Python face of the feeds: configuration objects that an Engine starts on
//! its tokio runtime. Frames are parsed and conflated in Rust; only counters
//! and error messages cross into Python.

use exo_core::feed::connection::{self, WsConfig};
use exo_core::feed::replay::{self, ReplayConfig};
use exo_core::feed::{
    binance, bitmex, coinbase, ErrorSink, FeedHandle, FeedStats, MarketSink, Venue,
};
use exo_core::Symbol;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
enum Spec {
    Ws(WsConfig),
    Replay(ReplayConfig),
}

/// A market-data feed: pass it to `exo.Engine(feed=...)`. Make one with
/// `exo.feeds.Coinbase(...)`, `Binance(...)`, `BitMEX(...)` or `Replay(...)`.
#[pyclass(frozen, module = "exo._core", name = "Feed")]
pub struct PyFeed {
    venue: Arc<dyn Venue>,
    spec: Spec,
    symbols: Option<HashSet<String>>,
    stats: Arc<FeedStats>,
    running: Mutex<Option<FeedHandle>>,
}

fn venue_named(name: &str) -> PyResult<Arc<dyn Venue>> {
    match name.to_ascii_lowercase().as_str() {
        "coinbase" => Ok(Arc::new(coinbase::Coinbase)),
        "binance" => Ok(Arc::new(binance::Binance)),
        "bitmex" => Ok(Arc::new(bitmex::BitMex)),
        other => Err(PyValueError::new_err(format!(
            "unknown venue {other:?}: expected coinbase, binance or bitmex"
        ))),
    }
}

fn secs(name: &str, v: f64) -> PyResult<Duration> {
    if v.is_finite() && v > 0.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(PyValueError::new_err(format!(
            "{name}: must be a positive number of seconds, got {v}"
        )))
    }
}

impl PyFeed {
    fn new(venue: Arc<dyn Venue>, spec: Spec, symbols: Option<Vec<String>>) -> Self {
        PyFeed {
            venue,
            spec,
            symbols: symbols.map(|s| s.into_iter().collect()),
            stats: Arc::default(),
            running: Mutex::new(None),
        }
    }

    /// True when this feed carries `symbol`.
    pub fn accepts(&self, symbol: &str) -> bool {
        self.symbols.as_ref().is_none_or(|s| s.contains(symbol))
    }

    /// Starts the feed on the current tokio runtime (call inside its context).
    pub fn start(&self, sink: Arc<MarketSink>, errors: ErrorSink) -> PyResult<()> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.is_some() {
            return Err(PyRuntimeError::new_err(format!(
                "this {} feed is already running in another engine",
                self.venue.name()
            )));
        }
        let handle = match &self.spec {
            Spec::Ws(cfg) => connection::spawn(
                self.venue.clone(),
                cfg.clone(),
                sink,
                errors,
                self.stats.clone(),
            ),
            Spec::Replay(cfg) => replay::spawn(
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

    /// Forwards a subscription if this feed carries the symbol.
    pub fn subscribe(&self, symbol: &Symbol) {
        if self.accepts(symbol) {
            if let Some(h) = &*self.running.lock().unwrap_or_else(|e| e.into_inner()) {
                h.subscribe(symbol.clone());
            }
        }
    }

    /// Forwards an unsubscription if this feed carries the symbol.
    pub fn unsubscribe(&self, symbol: &Symbol) {
        if self.accepts(symbol) {
            if let Some(h) = &*self.running.lock().unwrap_or_else(|e| e.into_inner()) {
                h.unsubscribe(symbol.clone());
            }
        }
    }

    /// Stops the feed (its task ends with the runtime).
    pub fn stop(&self) {
        if let Some(h) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            h.stop();
        }
    }
}

#[pymethods]
impl PyFeed {
    /// A websocket feed for `venue` (`coinbase`, `binance` or `bitmex`).
    #[staticmethod]
    #[pyo3(signature = (venue, url=None, *, symbols=None, connects_per_second=2.0, lifetime=82800.0,
        silence=30.0, backoff_initial=0.5, backoff_max=30.0, max_frame_bytes=1048576, connect_timeout=10.0))]
    #[allow(clippy::too_many_arguments)]
    fn websocket(
        venue: &str,
        url: Option<String>,
        symbols: Option<Vec<String>>,
        connects_per_second: f64,
        lifetime: f64,
        silence: f64,
        backoff_initial: f64,
        backoff_max: f64,
        max_frame_bytes: usize,
        connect_timeout: f64,
    ) -> PyResult<Self> {
        let v = venue_named(venue)?;
        let default_url = match v.name() {
            "coinbase" => coinbase::URL,
            "binance" => binance::URL,
            _ => bitmex::URL,
        };
        if !(connects_per_second.is_finite() && connects_per_second > 0.0) {
            return Err(PyValueError::new_err(
                "connects_per_second: must be positive",
            ));
        }
        if max_frame_bytes == 0 {
            return Err(PyValueError::new_err("max_frame_bytes: must be positive"));
        }
        let mut cfg = WsConfig::new(url.unwrap_or_else(|| default_url.to_string()));
        cfg.connects_per_second = connects_per_second;
        cfg.lifetime = secs("lifetime", lifetime)?;
        cfg.silence = secs("silence", silence)?;
        cfg.backoff_initial = secs("backoff_initial", backoff_initial)?;
        cfg.backoff_max = secs("backoff_max", backoff_max)?;
        cfg.max_frame_bytes = max_frame_bytes;
        cfg.connect_timeout = secs("connect_timeout", connect_timeout)?;
        Ok(PyFeed::new(v, Spec::Ws(cfg), symbols))
    }

    /// Recorded frames of `venue` played from an NDJSON file.
    #[staticmethod]
    #[pyo3(signature = (path, venue="coinbase", *, speed=None, repeat=false, symbols=None))]
    fn replay(
        path: PathBuf,
        venue: &str,
        speed: Option<f64>,
        repeat: bool,
        symbols: Option<Vec<String>>,
    ) -> PyResult<Self> {
        if let Some(s) = speed {
            if !(s.is_finite() && s > 0.0) {
                return Err(PyValueError::new_err(format!(
                    "speed: must be positive (or None for as fast as possible), got {s}"
                )));
            }
        }
        if !path.is_file() {
            return Err(PyValueError::new_err(format!(
                "replay file not found: {}",
                path.display()
            )));
        }
        Ok(PyFeed::new(
            venue_named(venue)?,
            Spec::Replay(ReplayConfig {
                path,
                speed,
                repeat,
            }),
            symbols,
        ))
    }

    /// The venue's name.
    #[getter]
    fn venue(&self) -> &'static str {
        self.venue.name()
    }

    /// The endpoint or file this feed reads.
    #[getter]
    fn source(&self) -> String {
        match &self.spec {
            Spec::Ws(c) => c.url.clone(),
            Spec::Replay(c) => c.path.display().to_string(),
        }
    }

    /// Counters: frames, quotes, trades, duplicates, stale, errors, connects, reconnects, renewals.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.stats.snapshot() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let kind = match &self.spec {
            Spec::Ws(_) => "websocket",
            Spec::Replay(_) => "replay",
        };
        format!("Feed({kind} {}, {:?})", self.venue.name(), self.source())
    }
}
