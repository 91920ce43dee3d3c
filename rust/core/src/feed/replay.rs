//! Replay: recorded venue frames played back as if live, the embedded default
//! for demos, tests and benchmarks without a network.
//!
//! The file is NDJSON, one frame per line: either the venue's raw frame, or
//! `{"recv_ns": <receive time in ns>, "frame": <the raw frame>}`. Frames play
//! as fast as possible, or at recorded speed times `speed` when the lines
//! carry `recv_ns`. Like a venue, it delivers only subscribed symbols and
//! starts when the first symbol is subscribed.

use super::{
    deliver, snippet, Command, Dedup, ErrorSink, FeedHandle, FeedStats, MarketSink, Parsed, Venue,
};
use crate::market::Symbol;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
// Looked up for every quote and print: FxHash, not SipHash (symbols are not
// attacker-chosen keys here; the dispatcher subscribes them).
use rustc_hash::FxHashSet as HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::Instant;

/// At full speed (no `speed`), the replay yields to the engine's other tasks
/// (the pump that fans parsed data out to orders) at least this often, so
/// parsed data waits in the sink about this long at most: a bound on
/// staleness. Cost: one clock read per 8 frames and a task switch per yield
/// (about 1-3 % of full-speed frames/s at 20 us).
pub const YIELD_AFTER: Duration = Duration::from_micros(100);

/// How a recording is played.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The NDJSON file.
    pub path: PathBuf,
    /// None: as fast as possible. Some(x): recorded pace times x (needs `recv_ns`).
    pub speed: Option<f64>,
    /// Start again at the end (for demos that run until stopped).
    pub repeat: bool,
}

impl ReplayConfig {
    /// Checks that the file exists and the speed is positive.
    pub fn validate(&self) -> Result<(), super::FeedError> {
        if let Some(s) = self.speed {
            if !(s.is_finite() && s > 0.0) {
                return Err(super::FeedError::Invalid(format!(
                    "speed: must be positive (or None for as fast as possible), got {s}"
                )));
            }
        }
        if !self.path.is_file() {
            return Err(super::FeedError::Invalid(format!(
                "replay file not found: {}",
                self.path.display()
            )));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Recorded<'a> {
    recv_ns: Option<u64>,
    #[serde(borrow)]
    frame: Option<&'a RawValue>,
}

/// One line: its receive time, if recorded, and the frame text (borrowed
/// from the line unless the frame was stored as a JSON string).
fn split_line(line: &str) -> (Option<u64>, Cow<'_, str>) {
    if line.starts_with("{\"recv_ns\"") {
        if let Ok(r) = serde_json::from_str::<Recorded<'_>>(line) {
            if let Some(f) = r.frame {
                let text = match serde_json::from_str::<String>(f.get()) {
                    Ok(s) => Cow::Owned(s), // the frame was stored as a JSON string
                    Err(_) => Cow::Borrowed(f.get()),
                };
                return (r.recv_ns, text);
            }
        }
    }
    (None, Cow::Borrowed(line))
}

/// Starts a replay feed on the current tokio runtime.
pub fn spawn(
    venue: Arc<dyn Venue>,
    cfg: ReplayConfig,
    sink: Arc<MarketSink>,
    errors: ErrorSink,
    stats: Arc<FeedStats>,
) -> FeedHandle {
    let (tx, rx) = unbounded_channel();
    let name = venue.name();
    let task = tokio::spawn(play(venue, cfg, sink, errors, stats.clone(), rx));
    FeedHandle::new(name, stats, tx, task)
}

/// Applies a command; returns false on Stop.
fn apply(cmd: Option<Command>, symbols: &mut HashSet<Symbol>, dedup: &mut Dedup) -> bool {
    match cmd {
        None | Some(Command::Stop) => false,
        Some(Command::Subscribe(s)) => {
            symbols.insert(s);
            true
        }
        Some(Command::Unsubscribe(s)) => {
            dedup.forget(&s);
            symbols.remove(&s);
            true
        }
    }
}

async fn play(
    venue: Arc<dyn Venue>,
    cfg: ReplayConfig,
    sink: Arc<MarketSink>,
    errors: ErrorSink,
    stats: Arc<FeedStats>,
    mut cmds: UnboundedReceiver<Command>,
) {
    let name = venue.name();
    let target = format!("exo.feeds.{name}");
    let report = |msg: String| {
        log::warn!(target: &target, "{msg}");
        stats.errors.fetch_add(1, Ordering::Relaxed);
        errors(name, msg);
    };
    let text = match tokio::fs::read_to_string(&cfg.path).await {
        Ok(t) => t,
        Err(e) => {
            report(format!(
                "cannot read replay file {}: {e}",
                cfg.path.display()
            ));
            while apply(
                cmds.recv().await,
                &mut HashSet::default(),
                &mut Dedup::default(),
            ) {}
            return;
        }
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut symbols: HashSet<Symbol> = HashSet::default();
    let mut dedup = Dedup::default();
    let mut parsed = Parsed::default();
    let mut last_yield = Instant::now();
    'outer: loop {
        let mut clock: Option<(Instant, u64)> = None;
        for (n, line) in lines.iter().enumerate() {
            // Commands first, without waiting; wait only while nothing is subscribed.
            while let Ok(cmd) = cmds.try_recv() {
                if !apply(Some(cmd), &mut symbols, &mut dedup) {
                    return;
                }
            }
            if symbols.is_empty() {
                while symbols.is_empty() {
                    if !apply(cmds.recv().await, &mut symbols, &mut dedup) {
                        return;
                    }
                }
                // Paused while nothing was subscribed: resume at the recorded
                // pace from here, not with a burst to catch up.
                clock = None;
            }
            let (recv_ns, frame) = split_line(line);
            if let (Some(speed), Some(ns)) = (cfg.speed, recv_ns) {
                let (t0, ns0) = *clock.get_or_insert((Instant::now(), ns));
                let due = t0
                    + Duration::from_secs_f64(
                        ns.saturating_sub(ns0) as f64 / 1e9 / speed.max(1e-9),
                    );
                tokio::time::sleep_until(due).await;
            } else if n % 8 == 7 {
                let now = Instant::now();
                if now.saturating_duration_since(last_yield) >= YIELD_AFTER {
                    // Let the pump fan what was parsed out: parsed data waits
                    // in the sink at most about this long.
                    tokio::task::yield_now().await;
                    last_yield = now;
                }
            }
            stats.frames.fetch_add(1, Ordering::Relaxed);
            parsed.clear();
            match venue.parse(&frame, &mut parsed) {
                Ok(()) => deliver(
                    &mut parsed,
                    &|s| symbols.contains(s),
                    &mut dedup,
                    &sink,
                    &stats,
                ),
                Err(e) => report(format!("{e}; line {}: {}", n + 1, snippet(&frame))),
            }
        }
        if !cfg.repeat {
            break 'outer;
        }
        dedup = Dedup::default(); // the recording's trade ids come round again
    }
    // Finished: keep answering commands until stopped.
    while apply(cmds.recv().await, &mut symbols, &mut dedup) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_may_be_raw_or_wrapped_with_a_receive_time() {
        let (ns, f) = split_line(r#"{"type":"heartbeat"}"#);
        assert_eq!((ns, &*f), (None, r#"{"type":"heartbeat"}"#));
        let (ns, f) = split_line(r#"{"recv_ns": 12, "frame": {"type":"ticker"}}"#);
        assert_eq!((ns, &*f), (Some(12), r#"{"type":"ticker"}"#));
        let (ns, f) = split_line(r#"{"recv_ns": 13, "frame": "{\"type\":\"ticker\"}"}"#);
        assert_eq!((ns, &*f), (Some(13), r#"{"type":"ticker"}"#));
    }
}
