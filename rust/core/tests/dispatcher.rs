//! Every Dispatcher rule (NEW creates, known ids take CANCEL/REPLACE with the
//! same side and symbol, reports need a live order, data fans out by symbol,
//! the last order of a symbol unsubscribes it, idle orders get idle Updates),
//! checked on the pure-Rust dispatcher.

use exo_core::{DispatchError, Dispatcher, HandOver, MsgType, Quote, Side, Symbol, Trade};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::{Duration, Instant};

type D = Dispatcher<&'static str, u32, u32>;

fn sym(s: &str) -> Symbol {
    Arc::from(s)
}

fn quote(s: &str, bid: i64) -> Quote {
    Quote {
        symbol: sym(s),
        bid_px: Some(Decimal::from(bid)),
        bid_size: Some(Decimal::ONE),
        ask_px: Some(Decimal::from(bid + 1)),
        ask_size: Some(Decimal::ONE),
    }
}

fn take_all(d: &mut D) -> Vec<HandOver<&'static str, u32, u32>> {
    let mut out = Vec::new();
    d.take_ready(usize::MAX, &mut out);
    out
}

fn finish_all(d: &mut D, hs: Vec<HandOver<&'static str, u32, u32>>, done: bool) {
    for h in hs {
        d.complete(h.key, &h.order_id, Some(h.delegate), done, Instant::now());
    }
}

#[test]
fn a_new_order_is_created_indexed_and_subscribes_its_first_symbol() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    let a = d
        .create(sym("a"), Side::Buy, sym("BTC-USD"), "da", 1, now)
        .unwrap();
    assert_eq!(a.subscribe.as_deref(), Some("BTC-USD"));
    assert!(a.wake, "first ready order signals the runner");
    let b = d
        .create(sym("b"), Side::Sell, sym("BTC-USD"), "db", 2, now)
        .unwrap();
    assert_eq!(
        b.subscribe, None,
        "second order of a symbol does not subscribe again"
    );
    assert!(!b.wake, "runner already signalled: one signal per burst");
    let hs = take_all(&mut d);
    assert_eq!(hs.len(), 2);
    assert_eq!(
        hs[0].update.instructions,
        vec![1],
        "the NEW is the first instruction"
    );
}

#[test]
fn a_known_order_id_arriving_as_new_is_an_error() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    d.create(sym("a"), Side::Buy, sym("X"), "da", 1, now)
        .unwrap();
    let err = d
        .create(sym("a"), Side::Buy, sym("X"), "da2", 2, now)
        .unwrap_err();
    assert_eq!(err, DispatchError::AlreadyLive(sym("a")));
    assert!(err.to_string().contains("already live"));
    assert_eq!(d.len(), 1);
}

#[test]
fn cancel_or_replace_for_unknown_order_is_an_error() {
    let mut d = D::new(Duration::from_secs(1));
    let err = d
        .instruct(
            &sym("zz"),
            MsgType::Cancel,
            Side::Buy,
            "X",
            1,
            Instant::now(),
        )
        .unwrap_err();
    assert!(matches!(err, DispatchError::UnknownOrder { .. }));
    assert!(err.to_string().contains("must arrive as NEW"), "{err}");
}

#[test]
fn cancel_or_replace_changing_side_or_symbol_is_an_error() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    d.create(sym("a"), Side::Buy, sym("X"), "da", 1, now)
        .unwrap();
    let err = d
        .instruct(&sym("a"), MsgType::Replace, Side::Sell, "X", 2, now)
        .unwrap_err();
    assert!(matches!(err, DispatchError::SideChanged { .. }), "{err}");
    let err = d
        .instruct(&sym("a"), MsgType::Cancel, Side::Buy, "Y", 3, now)
        .unwrap_err();
    assert!(matches!(err, DispatchError::SymbolChanged { .. }), "{err}");
    assert!(err.to_string().contains("symbol never changes"));
}

#[test]
fn cancel_and_replace_reach_the_delegate_in_order_with_reports() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    d.create(sym("a"), Side::Buy, sym("X"), "da", 1, now)
        .unwrap();
    d.instruct(&sym("a"), MsgType::Replace, Side::Buy, "X", 2, now)
        .unwrap();
    d.report("a", 10, now).unwrap();
    d.instruct(&sym("a"), MsgType::Cancel, Side::Buy, "X", 3, now)
        .unwrap();
    d.report("a", 11, now).unwrap();
    let hs = take_all(&mut d);
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].update.instructions, vec![1, 2, 3]);
    assert_eq!(hs[0].update.reports, vec![10, 11]);
}

#[test]
fn report_for_unknown_order_is_an_error() {
    let mut d = D::new(Duration::from_secs(1));
    let err = d.report("nope", 1, Instant::now()).unwrap_err();
    assert_eq!(err, DispatchError::UnknownReport(sym("nope")));
}

#[test]
fn quotes_and_trades_reach_every_order_of_their_symbol_only() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    for (id, s) in [("a", "X"), ("b", "X"), ("c", "Y")] {
        d.create(sym(id), Side::Buy, sym(s), "d", 0, now).unwrap();
    }
    let hs = take_all(&mut d);
    finish_all(&mut d, hs, false);
    assert_eq!(d.quote(&quote("X", 5), now).0, 2);
    assert_eq!(d.quote(&quote("Z", 5), now).0, 0);
    let t = Trade::new(sym("Y"), Decimal::ONE, Decimal::TEN);
    assert_eq!(d.trade(&t, now).0, 1);
    let mut hs = take_all(&mut d);
    hs.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    let ids: Vec<_> = hs.iter().map(|h| &*h.order_id).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(hs[0].update.quote, Some(quote("X", 5)));
    assert!(hs[0].update.trade.is_none());
    assert_eq!(hs[2].update.trade, Some(t));
    assert!(hs[2].update.quote.is_none());
}

#[test]
fn data_arriving_while_running_merges_into_the_next_hand_over() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    d.create(sym("a"), Side::Buy, sym("X"), "da", 1, now)
        .unwrap();
    let first = take_all(&mut d);
    assert_eq!(first.len(), 1);
    // Running: quotes merge, the order is not handed over again.
    for bid in 1..=5 {
        let (_, wake) = d.quote(&quote("X", bid), now);
        assert!(!wake);
    }
    d.report("a", 7, now).unwrap();
    assert!(take_all(&mut d).is_empty(), "never two hand-overs at once");
    let h = first.into_iter().next().unwrap();
    let c = d.complete(h.key, &h.order_id, Some(h.delegate), false, now);
    assert!(c.wake);
    let next = take_all(&mut d);
    assert_eq!(next[0].update.quote, Some(quote("X", 5)));
    assert_eq!(next[0].update.quotes_merged, 5);
    assert_eq!(next[0].update.reports, vec![7]);
}

#[test]
fn refresh_merges_what_arrived_since_the_take_into_an_update_not_yet_handed_over() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    d.create(sym("a"), Side::Buy, sym("X"), "da", 1, now)
        .unwrap();
    let first = take_all(&mut d);
    finish_all(&mut d, first, false);
    d.quote(&quote("X", 1), now);
    d.trade(&Trade::new(sym("X"), Decimal::ONE, Decimal::from(100)), now);
    let mut h = take_all(&mut d).into_iter().next().unwrap();
    assert!(
        !d.refresh(h.key, &h.order_id, &mut h.update),
        "nothing arrived since the take"
    );
    // Taken, not yet handed over: newer data arrives.
    d.quote(&quote("X", 2), now);
    d.quote(&quote("X", 3), now);
    d.trade(
        &Trade::new(sym("X"), Decimal::from(3), Decimal::from(200)),
        now,
    );
    d.instruct(&sym("a"), MsgType::Cancel, Side::Buy, "X", 2, now)
        .unwrap();
    d.report("a", 7, now).unwrap();
    assert!(d.refresh(h.key, &h.order_id, &mut h.update));
    let u = &h.update;
    assert_eq!(
        u.quote,
        Some(quote("X", 3)),
        "the newest quote replaces the taken one"
    );
    assert_eq!(u.quotes_merged, 3);
    let t = u.trade.as_ref().unwrap();
    assert_eq!(u.trades_merged, 2);
    assert_eq!(t.trade_volume, Some(Decimal::from(4)));
    assert_eq!(t.avg_px, Some(Decimal::from(175)));
    assert_eq!(u.instructions, vec![2]);
    assert_eq!(u.reports, vec![7]);
    // Refreshed items are handed over once: nothing is left pending.
    let c = d.complete(h.key, &h.order_id, Some(h.delegate), false, now);
    assert!(!c.wake, "everything went into the refreshed Update");
    assert!(take_all(&mut d).is_empty());
}

#[test]
fn refresh_ignores_an_order_that_is_not_running_under_that_id() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    let a = d
        .create(sym("a"), Side::Buy, sym("X"), "da", 1, now)
        .unwrap();
    let mut u = exo_core::Update::default();
    assert!(!d.refresh(a.key, "a", &mut u), "ready, not running");
    let h = take_all(&mut d).into_iter().next().unwrap();
    d.report("a", 7, now).unwrap();
    assert!(!d.refresh(h.key, "someone-else", &mut u));
    assert!(u.is_empty());
}

#[test]
fn a_done_order_is_removed_and_the_last_of_a_symbol_unsubscribes() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    d.create(sym("a"), Side::Buy, sym("X"), "da", 1, now)
        .unwrap();
    d.create(sym("b"), Side::Buy, sym("X"), "db", 1, now)
        .unwrap();
    let mut hs = take_all(&mut d).into_iter();
    let a = hs.next().unwrap();
    let b = hs.next().unwrap();
    let c = d.complete(a.key, &a.order_id, Some(a.delegate), true, now);
    assert!(c.ended.is_some());
    assert_eq!(c.unsubscribe, None, "b still lives on X");
    assert!(!d.is_live("a"));
    assert_eq!(d.quote(&quote("X", 1), now).0, 1);
    let c = d.complete(b.key, &b.order_id, Some(b.delegate), true, now);
    assert_eq!(c.unsubscribe.as_deref(), Some("X"));
    assert_eq!(
        c.ended.unwrap().2.quotes_merged,
        1,
        "undelivered data is handed back"
    );
    assert!(d.is_empty());
    assert_eq!(d.symbols().count(), 0);
}

#[test]
fn removal_keeps_the_symbol_index_consistent() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    let ids: Vec<Symbol> = (0..50).map(|i| sym(&format!("o{i}"))).collect();
    for id in &ids {
        d.create(id.clone(), Side::Buy, sym("X"), "d", 0, now)
            .unwrap();
    }
    let hs = take_all(&mut d);
    for (i, h) in hs.into_iter().enumerate() {
        d.complete(h.key, &h.order_id, Some(h.delegate), i % 3 == 0, now);
    }
    assert_eq!(d.len(), 33);
    assert_eq!(d.quote(&quote("X", 1), now).0, 33);
    assert_eq!(take_all(&mut d).len(), 33);
}

#[test]
fn an_idle_order_gets_an_empty_idle_update_after_the_interval() {
    let interval = Duration::from_millis(100);
    let mut d = D::new(interval);
    let t0 = Instant::now();
    d.create(sym("a"), Side::Buy, sym("X"), "da", 1, t0)
        .unwrap();
    let h = take_all(&mut d).pop().unwrap();
    d.complete(h.key, &h.order_id, Some(h.delegate), false, t0);
    let (wake, next) = d.expire_idle(t0 + interval / 2);
    assert!(!wake);
    assert_eq!(next, Some(t0 + interval));
    let (wake, _) = d.expire_idle(t0 + interval);
    assert!(wake);
    let h = take_all(&mut d).pop().unwrap();
    assert!(h.update.idle && h.update.is_empty());
}

#[test]
fn activity_postpones_the_idle_update() {
    let interval = Duration::from_millis(100);
    let mut d = D::new(interval);
    let t0 = Instant::now();
    d.create(sym("a"), Side::Buy, sym("X"), "da", 1, t0)
        .unwrap();
    let h = take_all(&mut d).pop().unwrap();
    d.complete(h.key, &h.order_id, Some(h.delegate), false, t0);
    // Data at t0+60ms; handed over and finished then.
    let t1 = t0 + Duration::from_millis(60);
    d.quote(&quote("X", 1), t1);
    let h = take_all(&mut d).pop().unwrap();
    d.complete(h.key, &h.order_id, Some(h.delegate), false, t1);
    let (wake, next) = d.expire_idle(t0 + interval);
    assert!(!wake, "not idle for a full interval yet");
    assert_eq!(next, Some(t1 + interval));
    assert!(d.expire_idle(t1 + interval).0);
}

#[test]
fn close_returns_every_delegate_for_clean_up() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    d.create(sym("a"), Side::Buy, sym("X"), "da", 1, now)
        .unwrap();
    d.create(sym("b"), Side::Buy, sym("Y"), "db", 1, now)
        .unwrap();
    let mut closed: Vec<_> = d.close().into_iter().map(|(_, dl)| dl.unwrap()).collect();
    closed.sort();
    assert_eq!(closed, ["da", "db"]);
    assert!(d.is_empty());
}

#[test]
fn an_emptied_dispatcher_gives_its_memory_back_and_still_works() {
    let mut d = D::new(Duration::from_secs(1));
    let now = Instant::now();
    for i in 0..5000 {
        d.create(sym(&format!("o{i}")), Side::Buy, sym("X"), "d", 0, now)
            .unwrap();
    }
    let hs = take_all(&mut d);
    let mut released = 0;
    for h in hs {
        released += d
            .complete(h.key, &h.order_id, Some(h.delegate), true, now)
            .released as usize;
    }
    assert_eq!(released, 1, "once, when the last order ended");
    assert!(d.is_empty() && d.symbols().count() == 0);
    let again = d
        .create(sym("n"), Side::Buy, sym("X"), "d", 1, now)
        .unwrap();
    assert_eq!(again.subscribe.as_deref(), Some("X"));
    assert_eq!(take_all(&mut d).len(), 1);
}
