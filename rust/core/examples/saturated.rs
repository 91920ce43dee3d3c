//! Profiling aid for the feed-saturated rows, without Python (not a judged
//! bench): the Replay feed plays Coinbase ticker frames as fast as it can on
//! a one-worker tokio runtime (as the bindings run it) and its pump fans them
//! out, while the main thread drives hand-overs to ORDERS orders over
//! SYMBOLS symbols whose delegates spin WORK_NS each. Prints Updates/s,
//! staleness p99 and the feed's frames/s over SECONDS.
//!
//!     cargo run --release -p exo-core --example saturated -- ORDERS SYMBOLS WORK_NS SECONDS
//!     cargo run --release -p exo-core --example saturated -- 100000 1 500 1
//!
//! The machine's load moves these figures a lot; `chrt -f 10` in front takes
//! most of it out.

use exo_core::runner::{Handler, Verdict};
use exo_core::{OrderId, Runner, Side, Symbol, Update};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct H {
    work: Duration,
    stale: Vec<u64>,
}

impl Handler<(), (), ()> for H {
    fn hand_over(
        &mut self,
        _key: usize,
        _order_id: &OrderId,
        _delegate: &mut (),
        update: &mut Box<Update<(), ()>>,
        staleness: Option<Duration>,
    ) -> Verdict {
        std::hint::black_box(&**update);
        if let Some(s) = staleness {
            self.stale.push(s.as_nanos() as u64);
        }
        let t = Instant::now();
        while t.elapsed() < self.work {}
        Verdict::Live
    }
    fn error(&mut self, _: &str, _: &str) {}
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let orders: usize = args.get(1).map_or(100_000, |a| a.parse().unwrap());
    let symbols: usize = args.get(2).map_or(1, |a| a.parse().unwrap());
    let work = Duration::from_nanos(args.get(3).map_or(500, |a| a.parse().unwrap()));
    let secs: f64 = args.get(4).map_or(0.5, |a| a.parse().unwrap());
    let names: Vec<Symbol> = (0..symbols)
        .map(|i| {
            if symbols == 1 {
                Arc::from("BTC-USD")
            } else {
                Arc::from(format!("S{i:04}-USD"))
            }
        })
        .collect();
    let path = std::env::temp_dir().join(format!("exo-saturated-{}.ndjson", std::process::id()));
    write_frames(&path, &names);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let feed = Arc::new(
        exo_core::feed::Feed::replay(
            "coinbase",
            exo_core::feed::replay::ReplayConfig {
                path: path.clone(),
                speed: None,
                repeat: true,
            },
            None,
        )
        .unwrap(),
    );
    let runner =
        Arc::new(Runner::<(), (), ()>::new(Duration::from_secs(3600)).feeds(vec![feed.clone()]));
    {
        let _g = rt.enter();
        runner.start_feeds().unwrap();
    }
    for i in 0..orders {
        let id = exo_core::runner::Identity {
            order_id: Some(Arc::from(format!("o{i}"))),
            msg_type: exo_core::MsgType::New,
            side: Side::Buy,
            symbol: names[i % symbols].clone(),
        };
        runner.submit(id, (), |_| Ok::<_, ()>(())).unwrap();
    }
    let mut h = H {
        work,
        stale: Vec::new(),
    };
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        runner.drive(&mut h, 4096);
    }
    h.stale.clear();
    let f0 = feed
        .stats()
        .frames
        .load(std::sync::atomic::Ordering::Relaxed);
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed().as_secs_f64() < secs {
        n += runner.drive(&mut h, 4096).0;
    }
    let el = t.elapsed().as_secs_f64();
    let frames = feed
        .stats()
        .frames
        .load(std::sync::atomic::Ordering::Relaxed)
        - f0;
    runner.stop_feeds();
    h.stale.sort_unstable();
    let p99 = h.stale.get(h.stale.len() * 99 / 100).copied().unwrap_or(0);
    println!(
        "{orders} orders x {symbols} symbols, work {work:?}: {:.3} M Updates/s, staleness p99 {:.3} ms, feed {:.0} k frames/s",
        n as f64 / el / 1e6,
        p99 as f64 / 1e6,
        frames as f64 / el / 1e3
    );
    drop(rt);
    let _ = std::fs::remove_file(&path);
}

/// About 5,000 ticker frames (at least 5 per symbol), the symbols taking
/// turns, each frame a different quote and print (as benches/baseline/feed.py).
fn write_frames(path: &std::path::Path, names: &[Symbol]) {
    use std::fmt::Write;
    let per_symbol = (5_000 / names.len()).max(5);
    let mut out = String::new();
    for i in 0..per_symbol {
        for s in names {
            let px = 60_000.0 + (i % 1000) as f64 * 0.01;
            let _ = writeln!(
                out,
                r#"{{"type":"ticker","sequence":{},"product_id":"{s}","price":"{:.3}","best_bid":"{:.2}","best_bid_size":"0.{:08}","best_ask":"{:.2}","best_ask_size":"1.{:08}","side":"buy","time":"2026-01-02T03:04:05.123456Z","trade_id":{},"last_size":"0.{:08}"}}"#,
                1_000_000 + i,
                px + 0.005,
                px,
                i % 997 + 1,
                px + 0.01,
                i % 991,
                5_000_000 + i,
                i % 983 + 1
            );
        }
    }
    std::fs::write(path, out).expect("writing the frames");
}
