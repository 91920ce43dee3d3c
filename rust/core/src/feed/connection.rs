//! Websocket connections for a venue, managed so data keeps flowing.
//!
//! The invariant: while at least one symbol is subscribed there is one live
//! connection carrying all of them, or one being opened. Around that:
//! - connects are spaced to at most `connects_per_second`;
//! - a connection is renewed after `lifetime` (or when the venue announces a
//!   shutdown): the new one is opened and subscribed first, the old one closed
//!   only once the new one is live, so no gap appears (prints seen on both are
//!   de-duplicated);
//! - after an error or a close, reconnect with exponential backoff;
//! - a watchdog reconnects a connection silent for `silence`;
//! - bad frames are counted and reported, never fatal.

use super::{
    deliver, snippet, Command, Dedup, ErrorSink, FeedHandle, FeedStats, MarketSink, Parsed, Venue,
};
use crate::market::Symbol;
use futures_util::{SinkExt, StreamExt};
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
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
}

impl State {
    fn report(&self, message: String) {
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
        subscribed: RwLock::new(HashSet::new()),
        dedup: Mutex::new(Dedup::default()),
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
    let spacing = Duration::from_secs_f64(1.0 / cfg.connects_per_second.max(1e-6));
    let mut last_connect: Option<Instant> = None;
    let mut failures = 0u32;
    let mut reconnect_at: Option<Instant> = None;
    let mut renew_at: Option<Instant> = None;
    let far = || Instant::now() + Duration::from_secs(86400 * 365);

    let mut open = |symbols: &BTreeSet<Symbol>, last_connect: &mut Option<Instant>| -> Conn {
        next_id += 1;
        *last_connect = Some(Instant::now());
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
    // The earliest a new connection may be opened: rate limit and backoff.
    let slot = |last_connect: Option<Instant>, delay: Duration| -> Instant {
        let now = Instant::now();
        let by_rate = last_connect.map_or(now, |t| t + spacing);
        by_rate.max(now + delay)
    };

    loop {
        if !symbols.is_empty() && active.is_none() && renewing.is_none() && reconnect_at.is_none() {
            reconnect_at = Some(slot(last_connect, Duration::ZERO));
        }
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None | Some(Command::Stop) => break,
                Some(Command::Subscribe(s)) => {
                    if symbols.insert(s.clone()) {
                        state.subscribed.write().unwrap_or_else(|e| e.into_inner()).insert(s.clone());
                        for c in active.iter().chain(renewing.iter()) {
                            let _ = c.tx.send(ConnCmd::Subscribe(s.clone()));
                        }
                    }
                }
                Some(Command::Unsubscribe(s)) => {
                    if symbols.remove(&s) {
                        state.subscribed.write().unwrap_or_else(|e| e.into_inner()).remove(&s);
                        state.dedup.lock().unwrap_or_else(|e| e.into_inner()).forget(&s);
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
                        renew_at = Some(Instant::now() + cfg.lifetime);
                        failures = 0;
                    } else if active.as_ref().is_some_and(|c| c.id == id) {
                        // Keep an earlier renewal (the venue may announce a
                        // shutdown before our subscription is acknowledged).
                        let end_of_life = Instant::now() + cfg.lifetime;
                        renew_at = Some(renew_at.map_or(end_of_life, |t| t.min(end_of_life)));
                        failures = 0;
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
                            failures += 1;
                            let delay = backoff(&cfg, failures);
                            state.report(format!("{reason}; reconnecting in {:.1}s", delay.as_secs_f64()));
                            if active.is_none() {
                                reconnect_at = Some(slot(last_connect, delay));
                            }
                        }
                    } else if renewing.as_ref().is_some_and(|c| c.id == id) {
                        renewing = None;
                        failures += 1;
                        let delay = backoff(&cfg, failures);
                        state.report(format!("renewal failed: {reason}; retrying in {:.1}s", delay.as_secs_f64()));
                        renew_at = Some(Instant::now() + delay);
                    }
                }
            },
            _ = sleep_until(reconnect_at.unwrap_or_else(far)), if reconnect_at.is_some() => {
                reconnect_at = None;
                if !symbols.is_empty() && active.is_none() {
                    active = Some(open(&symbols, &mut last_connect));
                }
            }
            _ = sleep_until(renew_at.unwrap_or_else(far)), if renew_at.is_some() && renewing.is_none() => {
                renew_at = None;
                if active.is_some() && !symbols.is_empty() {
                    let at = slot(last_connect, Duration::ZERO);
                    if at > Instant::now() {
                        renew_at = Some(at);
                    } else {
                        renewing = Some(open(&symbols, &mut last_connect));
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

fn backoff(cfg: &WsConfig, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    cfg.backoff_initial
        .saturating_mul(factor)
        .min(cfg.backoff_max)
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
    sent: VecDeque<Instant>,
    per_second: Option<u32>,
    request_id: u64,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.unsubscribe.is_empty() && self.replies.is_empty()
    }

    /// When the next message may go out.
    fn gate(&mut self) -> Instant {
        let now = Instant::now();
        let Some(limit) = self.per_second else {
            return now;
        };
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.sent.pop_front();
        }
        if self.sent.len() < limit as usize {
            now
        } else {
            self.sent[0] + Duration::from_secs(1)
        }
    }

    /// The next message to send, if the rate limit allows one now.
    fn next(&mut self, venue: &dyn Venue) -> Option<String> {
        if self.gate() > Instant::now() {
            return None;
        }
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
        if self.per_second.is_some() {
            self.sent.push_back(Instant::now());
        }
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
    let (mut write, mut read) = ws.split();
    let mut outbox = Outbox {
        subscribe: symbols.into_iter().collect(),
        unsubscribe: BTreeSet::new(),
        replies: VecDeque::new(),
        sent: VecDeque::new(),
        per_second: venue.max_messages_per_second(),
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
                    outbox.per_second = None;
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
        state.report(format!(
            "frame of {} bytes exceeds the limit of {} bytes; skipped: {}",
            text.len(),
            cfg.max_frame_bytes,
            snippet(text)
        ));
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
        let subscribed = state.subscribed.read().unwrap_or_else(|e| e.into_inner());
        let mut dedup = state.dedup.lock().unwrap_or_else(|e| e.into_inner());
        deliver(
            parsed,
            &|s| subscribed.contains(s),
            &mut dedup,
            &state.sink,
            &state.stats,
        );
    }
}
