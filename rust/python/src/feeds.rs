//! Python face of the feeds: a core [`Feed`] (venue, source, symbols it
//! carries) that an Engine starts on its tokio runtime. Frames are parsed
//! and conflated in Rust; only counters and error messages cross into Python.

use exo_core::feed::connection::WsConfig;
use exo_core::feed::replay::ReplayConfig;
use exo_core::feed::{seconds, Feed, FeedError, Source};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::Arc;

/// A market-data feed: pass it to `exo.Engine(feed=...)`. Make one with
/// `exo.feeds.Coinbase(...)`, `Binance(...)`, `BitMEX(...)` or `Replay(...)`.
#[pyclass(frozen, module = "exo._core", name = "Feed")]
pub struct PyFeed {
    /// The core feed the engine's runner starts and subscribes.
    pub feed: Arc<Feed>,
}

/// A feed error as the Python exception a user can act on.
pub fn to_py_err(e: FeedError) -> PyErr {
    match e {
        FeedError::AlreadyRunning(_) => PyRuntimeError::new_err(e.to_string()),
        FeedError::UnknownVenue(_) | FeedError::Invalid(_) => PyValueError::new_err(e.to_string()),
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
        let configure = |cfg: &mut WsConfig| -> Result<(), FeedError> {
            cfg.connects_per_second = connects_per_second;
            cfg.lifetime = seconds("lifetime", lifetime)?;
            cfg.silence = seconds("silence", silence)?;
            cfg.backoff_initial = seconds("backoff_initial", backoff_initial)?;
            cfg.backoff_max = seconds("backoff_max", backoff_max)?;
            cfg.max_frame_bytes = max_frame_bytes;
            cfg.connect_timeout = seconds("connect_timeout", connect_timeout)?;
            Ok(())
        };
        let feed = Feed::websocket(venue, url, symbols, configure).map_err(to_py_err)?;
        Ok(PyFeed {
            feed: Arc::new(feed),
        })
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
        let cfg = ReplayConfig {
            path,
            speed,
            repeat,
        };
        let feed = Feed::replay(venue, cfg, symbols).map_err(to_py_err)?;
        Ok(PyFeed {
            feed: Arc::new(feed),
        })
    }

    /// The venue's name.
    #[getter]
    fn venue(&self) -> &'static str {
        self.feed.venue()
    }

    /// The endpoint or file this feed reads.
    #[getter]
    fn source(&self) -> String {
        self.feed.location()
    }

    /// Counters: frames, quotes, trades, duplicates, stale, errors, connects, reconnects, renewals.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.feed.stats().counters() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let kind = match self.feed.source() {
            Source::Websocket(_) => "websocket",
            Source::Replay(_) => "replay",
        };
        format!("Feed({kind} {}, {:?})", self.feed.venue(), self.source())
    }
}
