//! The Runner driving Rust delegates: Updates handed over one at a time, idle
//! Updates, clean-up on stop, and every problem reported, never dropped.

use exo_core::{Delegate, Quote, RustRunner, Side, Symbol, Update};
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
        RustRunner::<u32, u32>::new(Duration::from_secs(5))
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
    assert_eq!(new.subscribed.as_deref(), Some("X"));
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
    let engine = Arc::new(RustRunner::<u32, u32>::new(Duration::from_secs(5)));
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
    let engine = Arc::new(RustRunner::<u32, u32>::new(Duration::from_millis(20)));
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
        RustRunner::<u32, u32>::new(Duration::from_secs(5))
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

/// Ends its order on its first Update, after a report for the order arrived
/// while it was acting.
struct EndsWithAReportWaiting {
    runner: std::sync::Weak<RustRunner<u32, u32>>,
}

impl Delegate<u32, u32> for EndsWithAReportWaiting {
    fn action(&mut self, _: Update<u32, u32>) -> bool {
        let runner = self.runner.upgrade().unwrap();
        runner.report("a", 7).unwrap();
        true
    }
}

#[test]
fn reports_left_waiting_when_an_order_completes_are_reported_not_dropped() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e2 = errors.clone();
    let runner = Arc::new(
        RustRunner::<u32, u32>::new(Duration::from_secs(5))
            .on_error(move |id, msg| e2.lock().unwrap().push(format!("{id}: {msg}"))),
    );
    runner
        .create(
            Arc::from("a"),
            Side::Buy,
            Arc::from("X"),
            Box::new(EndsWithAReportWaiting {
                runner: Arc::downgrade(&runner),
            }),
            0,
        )
        .unwrap();
    assert_eq!(runner.run_ready(), 1);
    assert_eq!(runner.live(), 0);
    assert_eq!(
        *errors.lock().unwrap(),
        vec!["a: order completed while 0 instruction(s) and 1 report(s) were waiting; they were not delivered".to_string()]
    );
    assert_eq!(runner.errors(), 1);
}

#[test]
fn a_new_for_a_live_order_is_refused_without_making_a_delegate() {
    let runner = RustRunner::<u32, u32>::new(Duration::from_secs(5));
    let id = exo_core::Identity {
        order_id: Some(Arc::from("a")),
        msg_type: exo_core::MsgType::New,
        side: Side::Buy,
        symbol: Arc::from("X"),
    };
    let make =
        |_: &exo_core::OrderId| Ok::<_, ()>(Box::new(Panicky) as Box<dyn Delegate<u32, u32>>);
    runner.submit(id.clone(), 0, make).unwrap();
    assert_eq!(
        runner.check(&id),
        Err(exo_core::DispatchError::AlreadyLive(Arc::from("a")))
    );
    let refused = runner.submit(id, 1, |_| -> Result<Box<dyn Delegate<u32, u32>>, ()> {
        panic!("the factory must not be called for a refused NEW")
    });
    assert!(matches!(
        refused,
        Err(exo_core::runner::SubmitError::Refused(
            exo_core::DispatchError::AlreadyLive(_)
        ))
    ));
    assert_eq!(runner.errors(), 1, "a rule violation is counted");
}

#[test]
fn a_new_without_an_order_id_gets_a_uuid_v7() {
    let runner = RustRunner::<u32, u32>::new(Duration::from_secs(5));
    let id = exo_core::Identity {
        order_id: None,
        msg_type: exo_core::MsgType::New,
        side: Side::Sell,
        symbol: Arc::from("X"),
    };
    let s = runner
        .submit(id, 0, |_| {
            Ok::<_, ()>(Box::new(Panicky) as Box<dyn Delegate<u32, u32>>)
        })
        .unwrap();
    assert_eq!(s.order_id.len(), 32);
    assert_eq!(&s.order_id[12..13], "7", "version nibble");
    assert!(runner.is_live(&s.order_id));
}

#[test]
fn malformed_instructions_are_invalid_not_rule_violations() {
    let runner = RustRunner::<u32, u32>::new(Duration::from_secs(5));
    let mut id = exo_core::Identity {
        order_id: None,
        msg_type: exo_core::MsgType::Cancel,
        side: Side::Sell,
        symbol: Arc::from("X"),
    };
    let e = runner.check(&id).unwrap_err();
    assert_eq!(e.kind(), exo_core::Kind::Invalid);
    assert_eq!(
        e.to_string(),
        "a CANCEL needs the order_id of a live order (order.order_id is None)"
    );
    id.symbol = Arc::from("");
    assert_eq!(runner.check(&id), Err(exo_core::DispatchError::EmptySymbol));
    runner.stop();
    assert_eq!(
        runner.check(&id).unwrap_err().kind(),
        exo_core::Kind::Stopping
    );
    assert_eq!(runner.errors(), 0, "only rule violations are counted");
}
