//! Websocket connections for a venue, managed so data keeps flowing.
//!
//! The invariant: while at least one symbol is subscribed there is one live
//! connection carrying all of them, or one being opened. Around that:
//! - connects are spaced to at most `connects_per_second` (a GCRA limiter);
//! - a connection is renewed after `lifetime` (or when the venue announces a
//!   shutdown): the new one is opened and subscribed first, the old one closed
//!   only once the new one is live, so no gap appears (prints seen on both are
//!   de-duplicated);
//! - after an error or a close, reconnect with exponential backoff and
//!   jitter ([`Backoff`]);
//! - a watchdog reconnects a connection silent for `silence`;
//! - bad frames are counted and reported, never fatal.
//!
//! Connects, renewals, reconnects and bad frames are logged under
//! `exo.feeds.<venue>` (the `log` target), besides the error sink.

use super::{
    deliver, snippet, Command, Dedup, ErrorSink, FeedError, FeedHandle, FeedStats, FrameError,
    MarketSink, Parsed, Venue,
};
use crate::backoff::Backoff;
use crate::market::Symbol;
use futures_util::{SinkExt, StreamExt};
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::{Mutex, RwLock};
// `subscribed` is looked up for every quote and print: FxHash, not SipHash.
use rustc_hash::FxHashSet as HashSet;
use std::collections::{BTreeSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// How a venue's connections are managed.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// The endpoint (`wss://...`, or `ws://127.0.0.1:...` in tests).
    pub url: String,
    /// Most connection attempts per second.
    pub connects_per_second: f64,
    /// Renew a connection after this long.
    pub lifetime: Duration,
    /// Reconnect a connection that received nothing for this long.
    pub silence: Duration,
    /// First reconnect delay; doubles per failure up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Frames larger than this are counted, reported and skipped.
    pub max_frame_bytes: usize,
    /// Give up on a connection attempt after this long.
    pub connect_timeout: Duration,
}

impl WsConfig {
    /// Defaults for `url`: 2 connects/s, 23 h lifetime, 30 s watchdog,
    /// backoff 0.5 s to 30 s, 1 MiB frames, 10 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        WsConfig {
            url: url.into(),
            connects_per_second: 2.0,
            lifetime: Duration::from_secs(23 * 3600),
            silence: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_frame_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Checks the settings that have no natural bound in their type.
    pub fn validate(&self) -> Result<(), FeedError> {
        if !(self.connects_per_second.is_finite() && self.connects_per_second > 0.0) {
            return Err(FeedError::Invalid(
                "connects_per_second: must be positive".into(),
            ));
        }
        if self.max_frame_bytes == 0 {
            return Err(FeedError::Invalid(
                "max_frame_bytes: must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// At most one event per `period`, no bursts.
fn spaced(period: Duration) -> DefaultDirectRateLimiter {
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(NonZeroU32::MIN);
    RateLimiter::direct(quota)
}

/// Ok when the limiter allows one event now (and counts it), else when to
/// try again.
fn admit(limiter: &DefaultDirectRateLimiter) -> Result<(), Instant> {
    limiter
        .check()
        .map_err(|not_until| Instant::now() + not_until.wait_time_from(limiter.clock().now()))
}

/// Shared by the manager and its connections.
struct State {
    venue: Arc<dyn Venue>,
    cfg: WsConfig,
    sink: Arc<MarketSink>,
    stats: Arc<FeedStats>,
    errors: ErrorSink,
    subscribed: RwLock<HashSet<Symbol>>,
    dedup: Mutex<Dedup>,
    /// `exo.feeds.<venue>`: where this feed logs.
    target: String,
}

impl State {
    /// Counts, logs and reports a problem (never fatal).
    fn report(&self, message: String) {
        log::warn!(target: &self.target, "{message}");
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        (self.errors)(self.venue.name(), message);
    }
}

enum ConnCmd {
    Subscribe(Symbol),
    Unsubscribe(Symbol),
    Close,
}

enum ConnEvent {
    /// Subscribed and receiving: the connection can carry the feed.
    Live,
    /// The venue asked for a new connection.
    Renew,
    /// The connection ended; the reason is empty when we closed it.
    Ended(String),
}

struct Conn {
    id: u64,
    tx: UnboundedSender<ConnCmd>,
}

impl Conn {
    fn close(self) {
        let _ = self.tx.send(ConnCmd::Close);
    }
}

/// Starts a websocket feed for `venue` on the current tokio runtime.
pub fn spawn(
    venue: Arc<dyn Venue>,
    cfg: WsConfig,
    sink: Arc<MarketSink>,
    errors: ErrorSink,
    stats: Arc<FeedStats>,
) -> FeedHandle {
    // rustls needs a process-wide crypto provider; a second install is a no-op error.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (tx, rx) = unbounded_channel();
    let name = venue.name();
    let state = Arc::new(State {
        venue,
        cfg,
        sink,
        stats: stats.clone(),
        errors,
        subscribed: RwLock::new(HashSet::default()),
        dedup: Mutex::new(Dedup::default()),
        target: format!("exo.feeds.{name}"),
    });
    let task = tokio::spawn(manage(state, rx));
    FeedHandle::new(name, stats, tx, task)
}

async fn manage(state: Arc<State>, mut cmds: UnboundedReceiver<Command>) {
    let cfg = state.cfg.clone();
    let (ev_tx, mut events) = unbounded_channel::<(u64, ConnEvent)>();
    let mut symbols: BTreeSet<Symbol> = BTreeSet::new();
    let mut active: Option<Conn> = None;
    let mut renewing: Option<Conn> = None;
    let mut next_id = 0u64;
    let connects = spaced(Duration::from_secs_f64(1.0 / cfg.connects_per_second));
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max);
    let mut reconnect_at: Option<Instant> = None;
    let mut renew_at: Option<Instant> = None;
    let far = || Instant::now() + Duration::from_secs(86400 * 365);

    let mut open = |symbols: &BTreeSet<Symbol>| -> Conn {
        next_id += 1;
        let (tx, rx) = unbounded_channel();
        let id = next_id;
        tokio::spawn(connection(
            id,
            state.clone(),
            symbols.iter().cloned().collect(),
            rx,
            ev_tx.clone(),
        ));
        Conn { id, tx }
    };
    loop {
        if !symbols.is_empty() && active.is_none() && renewing.is_none() && reconnect_at.is_none() {
            reconnect_at = Some(Instant::now());
        }
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None | Some(Command::Stop) => break,
                Some(Command::Subscribe(s)) => {
                    if symbols.insert(s.clone()) {
                        state.subscribed.write().insert(s.clone());
                        for c in active.iter().chain(renewing.iter()) {
                            let _ = c.tx.send(ConnCmd::Subscribe(s.clone()));
                        }
                    }
                }
                Some(Command::Unsubscribe(s)) => {
                    if symbols.remove(&s) {
                        state.subscribed.write().remove(&s);
                        state.dedup.lock().forget(&s);
                        for c in active.iter().chain(renewing.iter()) {
                            let _ = c.tx.send(ConnCmd::Unsubscribe(s.clone()));
                        }
                        if symbols.is_empty() {
                            // Nothing to carry: no connection.
                            if let Some(c) = active.take() {
            c.close();
        }
                            if let Some(c) = renewing.take() {
            c.close();
        }
                            reconnect_at = None;
                            renew_at = None;
                        }
                    }
                }
            },
            Some((id, ev)) = events.recv() => match ev {
                ConnEvent::Live => {
                    if renewing.as_ref().is_some_and(|c| c.id == id) {
                        if let Some(c) = active.take() {
            c.close();
        }
                        active = renewing.take();
                        state.stats.renewals.fetch_add(1, Ordering::Relaxed);
                        log::info!(target: &state.target, "connection renewed: the new one is live, the old one closed");
                        renew_at = Some(Instant::now() + cfg.lifetime);
                        backoff.reset();
                    } else if active.as_ref().is_some_and(|c| c.id == id) {
                        // Keep an earlier renewal (the venue may announce a
                        // shutdown before our subscription is acknowledged).
                        let end_of_life = Instant::now() + cfg.lifetime;
                        renew_at = Some(renew_at.map_or(end_of_life, |t| t.min(end_of_life)));
                        backoff.reset();
                    }
                }
                ConnEvent::Renew => {
                    if active.as_ref().is_some_and(|c| c.id == id) && renewing.is_none() {
                        renew_at = Some(Instant::now());
                    }
                }
                ConnEvent::Ended(reason) => {
                    if active.as_ref().is_some_and(|c| c.id == id) {
                        active = renewing.take(); // a renewal in flight takes over
                        renew_at = active.as_ref().map(|_| Instant::now() + cfg.lifetime);
                        if !symbols.is_empty() {
                            state.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                            let delay = backoff.next_delay();
                            state.report(format!("{reason}; reconnecting in {:.1}s", delay.as_secs_f64()));
                            if active.is_none() {
                                reconnect_at = Some(Instant::now() + delay);
                            }
                        }
                    } else if renewing.as_ref().is_some_and(|c| c.id == id) {
                        renewing = None;
                        let delay = backoff.next_delay();
                        state.report(format!("renewal failed: {reason}; retrying in {:.1}s", delay.as_secs_f64()));
                        renew_at = Some(Instant::now() + delay);
                    }
                }
            },
            _ = sleep_until(reconnect_at.unwrap_or_else(far)), if reconnect_at.is_some() => {
                reconnect_at = None;
                if !symbols.is_empty() && active.is_none() {
                    match admit(&connects) {
                        Ok(()) => active = Some(open(&symbols)),
                        Err(at) => reconnect_at = Some(at),
                    }
                }
            }
            _ = sleep_until(renew_at.unwrap_or_else(far)), if renew_at.is_some() && renewing.is_none() => {
                renew_at = None;
                if active.is_some() && !symbols.is_empty() {
                    match admit(&connects) {
                        Ok(()) => {
                            log::info!(target: &state.target, "renewing the connection");
                            renewing = Some(open(&symbols));
                        }
                        Err(at) => renew_at = Some(at),
                    }
                }
            }
        }
    }
    if let Some(c) = active.take() {
        c.close();
    }
    if let Some(c) = renewing.take() {
        c.close();
    }
}

async fn connection(
    id: u64,
    state: Arc<State>,
    symbols: Vec<Symbol>,
    cmds: UnboundedReceiver<ConnCmd>,
    events: UnboundedSender<(u64, ConnEvent)>,
) {
    let reason = run_connection(id, &state, symbols, cmds, &events).await;
    let _ = events.send((id, ConnEvent::Ended(reason)));
}

/// Outgoing control messages, coalesced and sent within the venue's rate limit.
struct Outbox {
    subscribe: BTreeSet<Symbol>,
    unsubscribe: BTreeSet<Symbol>,
    replies: VecDeque<String>,
    /// The venue's limit on client messages (None: unlimited).
    limiter: Option<DefaultDirectRateLimiter>,
    /// When the limiter next allows a message, after it refused one.
    not_before: Option<Instant>,
    request_id: u64,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.unsubscribe.is_empty() && self.replies.is_empty()
    }

    /// When the next message may go out.
    fn gate(&self) -> Instant {
        self.not_before.unwrap_or_else(Instant::now)
    }

    /// The next message to send, if the rate limit allows one now.
    fn next(&mut self, venue: &dyn Venue) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        if let Some(limiter) = &self.limiter {
            if let Err(at) = admit(limiter) {
                self.not_before = Some(at);
                return None;
            }
        }
        self.not_before = None;
        let msg = if let Some(r) = self.replies.pop_front() {
            r
        } else if !self.unsubscribe.is_empty() {
            let syms: Vec<Symbol> = std::mem::take(&mut self.unsubscribe).into_iter().collect();
            self.request_id += 1;
            venue.unsubscribe(&syms, self.request_id).join("\n")
        } else if !self.subscribe.is_empty() {
            let syms: Vec<Symbol> = std::mem::take(&mut self.subscribe).into_iter().collect();
            self.request_id += 1;
            venue.subscribe(&syms, self.request_id).join("\n")
        } else {
            return None;
        };
        Some(msg)
    }
}

async fn run_connection(
    id: u64,
    state: &State,
    symbols: Vec<Symbol>,
    mut cmds: UnboundedReceiver<ConnCmd>,
    events: &UnboundedSender<(u64, ConnEvent)>,
) -> String {
    let cfg = &state.cfg;
    let venue = state.venue.as_ref();
    // Let oversized frames through the websocket layer (up to a hard cap) so
    // the feed can count and report them itself and keep the connection.
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_frame_bytes.saturating_mul(4).max(1 << 20)))
        .max_frame_size(Some(cfg.max_frame_bytes.saturating_mul(4).max(1 << 20)));
    let connect = tokio_tungstenite::connect_async_with_config(&cfg.url, Some(ws_cfg), true);
    let ws = match tokio::time::timeout(cfg.connect_timeout, connect).await {
        Err(_) => {
            return format!(
                "connect to {} timed out after {:?}",
                cfg.url, cfg.connect_timeout
            )
        }
        Ok(Err(e)) => return format!("connect to {} failed: {e}", cfg.url),
        Ok(Ok((ws, _))) => ws,
    };
    state.stats.connects.fetch_add(1, Ordering::Relaxed);
    log::info!(target: &state.target, "connected to {}", cfg.url);
    let (mut write, mut read) = ws.split();
    let mut outbox = Outbox {
        subscribe: symbols.into_iter().collect(),
        unsubscribe: BTreeSet::new(),
        replies: VecDeque::new(),
        limiter: venue
            .max_messages_per_second()
            .map(|n| spaced(Duration::from_secs(1) / n.max(1))),
        not_before: None,
        request_id: id * 1_000_000,
    };
    let mut parsed = Parsed::default();
    let mut live = false;
    let mut last_frame = Instant::now();
    let mut watchdog = tokio::time::interval((cfg.silence / 4).max(Duration::from_millis(10)));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let far = Instant::now() + Duration::from_secs(86400 * 365);

    loop {
        let gate = if outbox.is_empty() {
            far
        } else {
            outbox.gate()
        };
        tokio::select! {
            // Frames first: a close request must not overtake data already here.
            biased;
            msg = read.next() => {
                let text = match msg {
                    None => return "connection closed by the venue".into(),
                    Some(Err(e)) => return format!("connection lost: {e}"),
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                        Ok(t) => t,
                        Err(_) => {
                            state.report(format!("binary frame of {} bytes is not UTF-8 text; skipped", b.len()));
                            continue;
                        }
                    },
                    Some(Ok(Message::Ping(p))) => {
                        last_frame = Instant::now();
                        if let Err(e) = write.send(Message::Pong(p)).await {
                            return format!("could not answer a ping: {e}");
                        }
                        continue;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return match frame {
                            Some(f) => format!("closed by the venue: {} {}", u16::from(f.code), f.reason),
                            None => "closed by the venue".into(),
                        };
                    }
                    Some(Ok(_)) => continue,
                };
                last_frame = Instant::now();
                on_text(id, state, &text, &mut parsed, &mut live, events, &mut outbox);
            }
            cmd = cmds.recv() => match cmd {
                Some(ConnCmd::Subscribe(s)) => {
                    outbox.unsubscribe.remove(&s);
                    outbox.subscribe.insert(s);
                }
                Some(ConnCmd::Unsubscribe(s)) => {
                    outbox.subscribe.remove(&s);
                    outbox.unsubscribe.insert(s);
                }
                None | Some(ConnCmd::Close) => {
                    // Deliver what this connection already received: during a
                    // renewal the new connection may not carry it.
                    while let Ok(Some(Ok(Message::Text(t)))) =
                        tokio::time::timeout(Duration::from_millis(20), read.next()).await
                    {
                        on_text(id, state, &t, &mut parsed, &mut live, events, &mut outbox);
                    }
                    // Tell the venue what we no longer want before leaving.
                    outbox.subscribe.clear();
                    outbox.limiter = None;
                    while let Some(msg) = outbox.next(venue) {
                        for line in msg.split('\n') {
                            let _ = write.send(Message::text(line.to_string())).await;
                        }
                    }
                    let _ = write.send(Message::Close(None)).await;
                    return String::new();
                }
            },
            _ = sleep_until(gate), if !outbox.is_empty() => {
                while let Some(msg) = outbox.next(venue) {
                    for line in msg.split('\n') {
                        if let Err(e) = write.send(Message::text(line.to_string())).await {
                            return format!("send failed: {e}");
                        }
                    }
                }
            }
            _ = watchdog.tick() => {
                if last_frame.elapsed() >= cfg.silence {
                    return format!("no data for {:.1}s; the watchdog reconnects", cfg.silence.as_secs_f64());
                }
            }
        }
    }
}

/// One text frame: size check, parse, liveness, renewal, delivery.
fn on_text(
    id: u64,
    state: &State,
    text: &str,
    parsed: &mut Parsed,
    live: &mut bool,
    events: &UnboundedSender<(u64, ConnEvent)>,
    outbox: &mut Outbox,
) {
    let cfg = &state.cfg;
    state.stats.frames.fetch_add(1, Ordering::Relaxed);
    if text.len() > cfg.max_frame_bytes {
        let e = FrameError::Oversized(text.len(), cfg.max_frame_bytes);
        state.report(format!("{e}; skipped: {}", snippet(text)));
        return;
    }
    parsed.clear();
    if let Err(e) = state.venue.parse(text, parsed) {
        state.report(format!("{e}; frame: {}", snippet(text)));
        return;
    }
    if !*live && (parsed.ack || parsed.has_data()) {
        *live = true;
        let _ = events.send((id, ConnEvent::Live));
    }
    if parsed.renew {
        let _ = events.send((id, ConnEvent::Renew));
    }
    if let Some(r) = parsed.reply.take() {
        outbox.replies.push_back(r);
    }
    if parsed.has_data() {
        let subscribed = state.subscribed.read();
        let mut dedup = state.dedup.lock();
        deliver(
            parsed,
            &|s| subscribed.contains(s),
            &mut dedup,
            &state.sink,
            &state.stats,
        );
    }
}
