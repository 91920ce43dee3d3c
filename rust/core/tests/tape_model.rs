//! Market data is kept once per symbol (on its tape) and read off it at each
//! hand-over; this checks, on random sequences of arrivals, hand-overs,
//! refreshes and completions, that every order is handed exactly what it
//! would hold had each quote and print been merged into it as it arrived
//! (the newest quote and its count; prints merged one by one with
//! `Trade::merge`, counted; reports in arrival order).

use exo_core::{Dispatcher, HandOver, Quote, Side, Symbol, Trade, Update};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

type D = Dispatcher<(), u32, u32>;
type U = Update<u32, u32>;

#[derive(Debug, Clone)]
enum Op {
    Create(u8),
    Quote(u8, i64),
    Trade(u8, i64, i64),
    Report(u8),
    Take(u8),
    Refresh(u8),
    Complete(u8, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..3u8).prop_map(Op::Create),
        4 => (0..3u8, 1..50i64).prop_map(|(s, b)| Op::Quote(s, b)),
        4 => (0..3u8, 1..9i64, 1..999i64).prop_map(|(s, q, p)| Op::Trade(s, q, p)),
        1 => any::<u8>().prop_map(Op::Report),
        2 => (1..5u8).prop_map(Op::Take),
        2 => any::<u8>().prop_map(Op::Refresh),
        2 => (any::<u8>(), prop::bool::weighted(0.15)).prop_map(|(i, d)| Op::Complete(i, d)),
    ]
}

fn sym(i: u8) -> Symbol {
    Arc::from(format!("S{i}"))
}

/// The old way: everything merged into each order as it arrives.
#[derive(Default, Clone)]
struct Held {
    quote: Option<Quote>,
    quotes: u32,
    trade: Option<Trade>,
    trades: u32,
    reports: Vec<u32>,
}

impl Held {
    fn merge(&mut self, later: Held) {
        if later.quotes > 0 {
            self.quote = later.quote;
            self.quotes += later.quotes;
        }
        if let Some(t) = later.trade {
            match &mut self.trade {
                Some(h) => assert!(h.merge(&t)),
                None => self.trade = Some(t),
            }
            self.trades += later.trades;
        }
        self.reports.extend(later.reports);
    }

    fn check(&self, u: &U) {
        assert_eq!(u.quote, self.quote);
        assert_eq!(u.quotes_merged, self.quotes);
        assert_eq!(u.trade, self.trade);
        assert_eq!(u.trades_merged, self.trades);
        assert_eq!(u.reports, self.reports);
    }
}

struct Model {
    symbol: HashMap<String, Symbol>,
    pending: HashMap<String, Held>,
    running: Vec<(HandOver<(), u32, u32>, Held)>,
    next: u32,
}

#[allow(clippy::unit_arg)] // the delegates are ()
fn run(ops: Vec<Op>) {
    let mut d = D::new(Duration::from_secs(3600));
    let now = Instant::now();
    let mut m = Model {
        symbol: HashMap::new(),
        pending: HashMap::new(),
        running: Vec::new(),
        next: 0,
    };
    for op in ops {
        match op {
            Op::Create(s) => {
                let id = format!("o{}", m.next);
                m.next += 1;
                d.create(Arc::from(id.as_str()), Side::Buy, sym(s), (), 0, now)
                    .unwrap();
                m.symbol.insert(id.clone(), sym(s));
                m.pending.insert(id, Held::default());
            }
            Op::Quote(s, bid) => {
                let q = Quote::new(
                    sym(s),
                    (Some(Decimal::from(bid)), Some(Decimal::ONE)),
                    (Some(Decimal::from(bid + 1)), Some(Decimal::TWO)),
                );
                d.quote(&q, now);
                for (id, h) in m.pending.iter_mut() {
                    if m.symbol[id] == sym(s) {
                        h.quote = Some(q.clone());
                        h.quotes += 1;
                    }
                }
            }
            Op::Trade(s, q, px) => {
                let t = Trade::new(sym(s), Decimal::new(q, 3), Decimal::new(px * 7, 2));
                d.trade(&t, now);
                for (id, h) in m.pending.iter_mut() {
                    if m.symbol[id] == sym(s) {
                        match &mut h.trade {
                            Some(held) => assert!(held.merge(&t)),
                            None => h.trade = Some(t.clone()),
                        }
                        h.trades += 1;
                    }
                }
            }
            Op::Report(i) => {
                if m.pending.is_empty() {
                    continue;
                }
                let mut ids: Vec<&String> = m.pending.keys().collect();
                ids.sort();
                let id = ids[i as usize % ids.len()].clone();
                d.report(&id, u32::from(i), now).unwrap();
                m.pending.get_mut(&id).unwrap().reports.push(u32::from(i));
            }
            Op::Take(n) => {
                let mut out = Vec::new();
                d.take_ready(usize::from(n), &mut out);
                for h in out {
                    let held = std::mem::take(m.pending.get_mut(&*h.order_id).unwrap());
                    // The NEW's instruction is not modelled; everything else is.
                    held.check(&h.update);
                    m.running.push((h, held));
                }
            }
            Op::Refresh(i) => {
                if m.running.is_empty() {
                    continue;
                }
                let k = i as usize % m.running.len();
                let (h, held) = &mut m.running[k];
                let later = std::mem::take(m.pending.get_mut(&*h.order_id).unwrap());
                d.refresh(h.key, &h.order_id, &mut h.update);
                held.merge(later);
                held.check(&h.update);
            }
            Op::Complete(i, done) => {
                if m.running.is_empty() {
                    continue;
                }
                let k = i as usize % m.running.len();
                let (h, _) = m.running.swap_remove(k);
                let c = d.complete(h.key, &h.order_id, Some(h.delegate), done, now);
                if done {
                    let left = m.pending.remove(&*h.order_id).unwrap();
                    m.symbol.remove(&*h.order_id);
                    let (_, _, u) = *c.ended.unwrap();
                    assert_eq!(u.quotes_merged, left.quotes);
                    assert_eq!((u.trade, u.trades_merged), (left.trade, left.trades));
                    assert_eq!(u.reports, left.reports);
                }
            }
        }
    }
    // Whatever is still pending is handed over intact.
    for (h, _) in std::mem::take(&mut m.running) {
        d.complete(h.key, &h.order_id, Some(h.delegate), false, now);
    }
    let mut out = Vec::new();
    d.take_ready(usize::MAX, &mut out);
    for h in out {
        m.pending[&*h.order_id].check(&h.update);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn each_order_gets_what_merging_every_arrival_into_it_would_give(ops in prop::collection::vec(op(), 1..200)) {
        run(ops);
    }
}
