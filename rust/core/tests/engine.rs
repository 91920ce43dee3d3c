//! The pure-Rust engine: a runner hands Updates to Rust delegates, one at a time.

use exo_core::{Delegate, Engine, Quote, Side, Symbol, Update};
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Recorder {
    seen: Arc<Mutex<Vec<(u32, bool)>>>,
    finish_after: usize,
    cleaned: Arc<AtomicUsize>,
}

impl Delegate<u32, u32> for Recorder {
    fn action(&mut self, update: Update<u32, u32>) -> bool {
        let mut seen = self.seen.lock().unwrap();
        seen.push((update.quotes_merged, update.idle));
        seen.len() >= self.finish_after
    }
    fn clean_up(&mut self) {
        self.cleaned.fetch_add(1, Ordering::SeqCst);
    }
}

fn quote(s: &Symbol) -> Quote {
    Quote {
        symbol: s.clone(),
        bid_px: Some(Decimal::ONE),
        bid_size: Some(Decimal::ONE),
        ask_px: Some(Decimal::TWO),
        ask_size: Some(Decimal::ONE),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_hands_over_until_done_then_unsubscribes() {
    let unsubscribed = Arc::new(Mutex::new(Vec::new()));
    let u2 = unsubscribed.clone();
    let engine = Arc::new(
        Engine::<u32, u32>::new(Duration::from_secs(5))
            .on_unsubscribe(move |s| u2.lock().unwrap().push(s.to_string())),
    );
    let runner = tokio::spawn({
        let e = engine.clone();
        async move { e.run().await }
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let cleaned = Arc::new(AtomicUsize::new(0));
    let s: Symbol = Arc::from("X");
    let new = engine
        .create(
            Arc::from("a"),
            Side::Buy,
            s.clone(),
            Box::new(Recorder {
                seen: seen.clone(),
                finish_after: 3,
                cleaned: cleaned.clone(),
            }),
            0,
        )
        .unwrap();
    assert_eq!(new.subscribe.as_deref(), Some("X"));
    while engine.live() > 0 {
        engine.quote(&quote(&s));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(*unsubscribed.lock().unwrap(), vec!["X".to_string()]);
    engine.stop();
    runner.await.unwrap();
    assert_eq!(
        cleaned.load(Ordering::SeqCst),
        0,
        "done orders are not cleaned up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cleans_up_every_live_delegate() {
    let engine = Arc::new(Engine::<u32, u32>::new(Duration::from_secs(5)));
    let runner = tokio::spawn({
        let e = engine.clone();
        async move { e.run().await }
    });
    let cleaned = Arc::new(AtomicUsize::new(0));
    for i in 0..10 {
        engine
            .create(
                Arc::from(format!("o{i}")),
                Side::Sell,
                Arc::from("X"),
                Box::new(Recorder {
                    seen: Arc::default(),
                    finish_after: usize::MAX,
                    cleaned: cleaned.clone(),
                }),
                i,
            )
            .unwrap();
    }
    engine.stop();
    runner.await.unwrap();
    assert_eq!(cleaned.load(Ordering::SeqCst), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_order_is_called_with_an_idle_update() {
    let engine = Arc::new(Engine::<u32, u32>::new(Duration::from_millis(20)));
    let runner = tokio::spawn({
        let e = engine.clone();
        async move { e.run().await }
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    engine
        .create(
            Arc::from("a"),
            Side::Buy,
            Arc::from("X"),
            Box::new(Recorder {
                seen: seen.clone(),
                finish_after: 3,
                cleaned: Arc::default(),
            }),
            0,
        )
        .unwrap();
    while engine.live() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![(0, false), (0, true), (0, true)]);
    engine.stop();
    runner.await.unwrap();
}

struct Panicky;
impl Delegate<u32, u32> for Panicky {
    fn action(&mut self, _: Update<u32, u32>) -> bool {
        panic!("boom")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_delegate_is_reported_and_others_carry_on() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e2 = errors.clone();
    let engine = Arc::new(
        Engine::<u32, u32>::new(Duration::from_secs(5))
            .on_error(move |id, msg| e2.lock().unwrap().push(format!("{id}: {msg}"))),
    );
    let runner = tokio::spawn({
        let e = engine.clone();
        async move { e.run().await }
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    engine
        .create(
            Arc::from("bad"),
            Side::Buy,
            Arc::from("X"),
            Box::new(Panicky),
            0,
        )
        .unwrap();
    engine
        .create(
            Arc::from("good"),
            Side::Buy,
            Arc::from("X"),
            Box::new(Recorder {
                seen: seen.clone(),
                finish_after: 1,
                cleaned: Arc::default(),
            }),
            0,
        )
        .unwrap();
    while engine.live() > 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(errors.lock().unwrap()[0].starts_with("bad: delegate panicked"));
    engine.stop();
    runner.await.unwrap();
}
