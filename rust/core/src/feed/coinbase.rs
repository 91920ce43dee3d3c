//! Coinbase Exchange `ticker` channel (`wss://ws-feed.exchange.coinbase.com`).
//!
//! A ticker message carries the best bid/ask and the last print; the print is
//! repeated by later tickers until the next one, so it carries `trade_id` and
//! is de-duplicated downstream.
//!
//! What a ticker delivers:
//! - always a quote; a side sent as `null`, `""`, absent, or price `"0"`
//!   with no (or zero) size is empty (`None`). Thin products send
//!   `"best_ask": null`; an idle product's first ticker has zero prices and
//!   no sizes, so both sides are empty. The quote is ordered by the
//!   product's `sequence` (an older one is dropped as stale).
//! - a print when it has `trade_id`, `price` and `last_size` > 0: without a
//!   trade id a repeated print could not be told from a new one, and an idle
//!   product's first ticker has none.
//!
//! Prices and sizes may be JSON strings (documented) or numbers; both are
//! read exactly.
//!
//! A frame is read by the [`flat`](super::flat) fast path, or by serde_json
//! when it is outside that path's subset; both give the same [`Ticker`]
//! members to one function that decides what the frame delivers.

use super::flat::{self, Unsupported};
use super::{need, opt_decimal_text, print, FrameError, Parsed, Stamp, TradeId, Venue};
use crate::market::{Quote, Symbol};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The Coinbase Exchange ticker protocol.
#[derive(Debug, Default, Clone)]
pub struct Coinbase;

/// Default public endpoint.
pub const URL: &str = "wss://ws-feed.exchange.coinbase.com";

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    product_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    best_bid: Option<&'a RawValue>,
    #[serde(borrow)]
    best_bid_size: Option<&'a RawValue>,
    #[serde(borrow)]
    best_ask: Option<&'a RawValue>,
    #[serde(borrow)]
    best_ask_size: Option<&'a RawValue>,
    #[serde(borrow)]
    price: Option<&'a RawValue>,
    #[serde(borrow)]
    last_size: Option<&'a RawValue>,
    trade_id: Option<u64>,
    sequence: Option<u64>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
}

fn request(kind: &str, symbols: &[Symbol]) -> String {
    let ids: Vec<&str> = symbols.iter().map(|s| &**s).collect();
    serde_json::json!({"type": kind, "product_ids": ids, "channels": ["ticker", "heartbeat"]})
        .to_string()
}

impl Venue for Coinbase {
    fn name(&self) -> &'static str {
        "coinbase"
    }

    fn url(&self) -> &'static str {
        URL
    }

    fn subscribe(&self, symbols: &[Symbol], _id: u64) -> Vec<String> {
        vec![request("subscribe", symbols)]
    }

    fn unsubscribe(&self, symbols: &[Symbol], _id: u64) -> Vec<String> {
        vec![request("unsubscribe", symbols)]
    }

    fn parse(&self, frame: &str, out: &mut Parsed) -> Result<(), FrameError> {
        read(frame, out, true)
    }
}

/// Parses a frame with the fast path first when `try_fast` (always, but in
/// the tests that compare it with serde_json alone).
pub(super) fn read(frame: &str, out: &mut Parsed, try_fast: bool) -> Result<(), FrameError> {
    let fast_read = if try_fast {
        fast(frame)
    } else {
        Err(Unsupported)
    };
    match fast_read {
        Ok(m) => deliver(m, out),
        Err(Unsupported) => {
            let m: Msg<'_> =
                serde_json::from_str(frame).map_err(|e| FrameError::Malformed(e.to_string()))?;
            deliver(m.into(), out)
        }
    }
}

/// The members a frame is read for: strings decoded, prices and sizes as
/// their raw JSON text (`null` already `None`).
struct Ticker<'a> {
    kind: Cow<'a, str>,
    product_id: Option<Cow<'a, str>>,
    best_bid: Option<&'a str>,
    best_bid_size: Option<&'a str>,
    best_ask: Option<&'a str>,
    best_ask_size: Option<&'a str>,
    price: Option<&'a str>,
    last_size: Option<&'a str>,
    trade_id: Option<u64>,
    sequence: Option<u64>,
    message: Option<Cow<'a, str>>,
    reason: Option<Cow<'a, str>>,
}

impl<'a> From<Msg<'a>> for Ticker<'a> {
    fn from(m: Msg<'a>) -> Self {
        Ticker {
            kind: m.kind,
            product_id: m.product_id,
            best_bid: m.best_bid.map(RawValue::get),
            best_bid_size: m.best_bid_size.map(RawValue::get),
            best_ask: m.best_ask.map(RawValue::get),
            best_ask_size: m.best_ask_size.map(RawValue::get),
            price: m.price.map(RawValue::get),
            last_size: m.last_size.map(RawValue::get),
            trade_id: m.trade_id,
            sequence: m.sequence,
            message: m.message,
            reason: m.reason,
        }
    }
}

/// The fast path: the members [`Msg`] declares, read as serde would, or
/// [`Unsupported`] when serde_json must decide.
fn fast(frame: &str) -> Result<Ticker<'_>, Unsupported> {
    let mut kind = None;
    let mut m = Ticker {
        kind: Cow::Borrowed(""),
        product_id: None,
        best_bid: None,
        best_bid_size: None,
        best_ask: None,
        best_ask_size: None,
        price: None,
        last_size: None,
        trade_id: None,
        sequence: None,
        message: None,
        reason: None,
    };
    let mut seen = 0u32;
    flat::object(frame, |key, raw| {
        let (field, slot) = match key {
            "type" => {
                flat::once(&mut seen, 0)?;
                kind = Some(flat::opt_str(raw)?.ok_or(Unsupported)?);
                return Ok(());
            }
            "product_id" => {
                flat::once(&mut seen, 1)?;
                m.product_id = flat::opt_str(raw)?.map(Cow::Borrowed);
                return Ok(());
            }
            "best_bid" => (2, &mut m.best_bid),
            "best_bid_size" => (3, &mut m.best_bid_size),
            "best_ask" => (4, &mut m.best_ask),
            "best_ask_size" => (5, &mut m.best_ask_size),
            "price" => (6, &mut m.price),
            "last_size" => (7, &mut m.last_size),
            "trade_id" => {
                flat::once(&mut seen, 8)?;
                m.trade_id = flat::opt_u64(raw)?;
                return Ok(());
            }
            "sequence" => {
                flat::once(&mut seen, 9)?;
                m.sequence = flat::opt_u64(raw)?;
                return Ok(());
            }
            "message" | "reason" => {
                let (bit, slot) = if key == "message" {
                    (10, &mut m.message)
                } else {
                    (11, &mut m.reason)
                };
                flat::once(&mut seen, bit)?;
                *slot = flat::opt_str(raw)?.map(Cow::Borrowed);
                return Ok(());
            }
            _ => return Ok(()),
        };
        flat::once(&mut seen, field)?;
        *slot = flat::opt_raw(raw);
        Ok(())
    })?;
    m.kind = Cow::Borrowed(kind.ok_or(Unsupported)?);
    Ok(m)
}

/// What a ticker (or another message) delivers; see the module docs.
fn deliver(m: Ticker<'_>, out: &mut Parsed) -> Result<(), FrameError> {
    match &*m.kind {
        "ticker" => {
            let symbol: Symbol = out.symbol(&need("product_id", m.product_id)?);
            let quote = Quote::new(
                symbol.clone(),
                (
                    opt_decimal_text("best_bid", m.best_bid)?,
                    opt_decimal_text("best_bid_size", m.best_bid_size)?,
                ),
                (
                    opt_decimal_text("best_ask", m.best_ask)?,
                    opt_decimal_text("best_ask_size", m.best_ask_size)?,
                ),
            );
            let px = opt_decimal_text("price", m.price)?;
            let qty = opt_decimal_text("last_size", m.last_size)?;
            if let Some(id) = m.trade_id {
                out.trades
                    .extend(print(symbol, px, qty).map(|t| (t, Some(TradeId::Seq(id)))));
            }
            out.quotes.push((quote, m.sequence.map(Stamp::Seq)));
            Ok(())
        }
        "subscriptions" => {
            out.ack = true;
            Ok(())
        }
        "heartbeat" => Ok(()),
        "error" => Err(FrameError::Venue(format!(
            "{}{}",
            m.message.as_deref().unwrap_or("error"),
            m.reason.map(|r| format!(" ({r})")).unwrap_or_default()
        ))),
        other => Err(FrameError::Unknown(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    #[allow(unused_imports)]
    use std::sync::Arc;

    const TICKER: &str = r#"{"type":"ticker","sequence":37475248783,"product_id":"ETH-USD","price":"1285.22","open_24h":"1310.79","volume_24h":"245532.79269678","low_24h":"1280.52","high_24h":"1313.8","volume_30d":"9788783.60117027","best_bid":"1285.04","best_bid_size":"0.46688654","best_ask":"1285.27","best_ask_size":"1.56637040","side":"buy","time":"2022-10-19T23:28:22.061769Z","trade_id":370843401,"last_size":"11.4396987"}"#;

    /// A thin product with no asks (public bug reports of feed handlers).
    const NO_ASK: &str = r#"{"type":"ticker","sequence":6,"product_id":"ZIL-USDC","price":"0.0215","best_bid":"0.0214","best_bid_size":"10","best_ask":null,"best_ask_size":null,"side":"buy","time":"2019-02-05T12:00:00.000000Z","trade_id":7,"last_size":"100"}"#;

    fn d(s: &str) -> Option<Decimal> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_ticker_gives_a_quote_and_a_print() {
        let mut p = Parsed::default();
        Coinbase.parse(TICKER, &mut p).unwrap();
        let (q, stamp) = &p.quotes[0];
        assert_eq!(&*q.symbol, "ETH-USD");
        assert_eq!(q.bid_px, d("1285.04"));
        assert_eq!(q.ask_size, d("1.56637040"));
        assert_eq!(stamp, &Some(Stamp::Seq(37475248783)));
        let (t, id) = &p.trades[0];
        assert_eq!(Some(t.last_px), d("1285.22"));
        assert_eq!(Some(t.last_qty), d("11.4396987"));
        assert_eq!(id, &Some(TradeId::Seq(370843401)));
    }

    #[test]
    fn a_ticker_with_a_null_ask_delivers_its_print_and_an_empty_ask() {
        let mut p = Parsed::default();
        Coinbase.parse(NO_ASK, &mut p).unwrap();
        let (q, _) = &p.quotes[0];
        assert_eq!((q.bid_px, q.bid_size), (d("0.0214"), d("10")));
        assert_eq!((q.ask_px, q.ask_size), (None, None));
        let (t, id) = &p.trades[0];
        assert_eq!((Some(t.last_px), Some(t.last_qty)), (d("0.0215"), d("100")));
        assert_eq!(id, &Some(TradeId::Seq(7)));
    }

    #[test]
    fn an_empty_string_or_absent_side_is_empty_and_numbers_are_read_exactly() {
        let mut p = Parsed::default();
        let empty = NO_ASK.replace(
            r#""best_ask":null,"best_ask_size":null"#,
            r#""best_ask":"","best_ask_size":"""#,
        );
        Coinbase.parse(&empty, &mut p).unwrap();
        assert_eq!((p.quotes[0].0.ask_px, p.trades.len()), (None, 1));
        p.clear();
        let absent = NO_ASK.replace(r#""best_ask":null,"best_ask_size":null,"#, "");
        Coinbase.parse(&absent, &mut p).unwrap();
        assert_eq!((p.quotes[0].0.ask_px, p.trades.len()), (None, 1));
        p.clear();
        // Numbers where strings are documented: exact, never through an f64.
        let numbers = NO_ASK
            .replace(
                r#""best_bid":"0.0214""#,
                r#""best_bid":0.1000000000000000055511"#,
            )
            .replace(r#""best_ask":null"#, r#""best_ask":12345678.123456789"#)
            .replace(r#""best_ask_size":null"#, r#""best_ask_size":2.5e2"#)
            .replace(r#""last_size":"100""#, r#""last_size":100"#);
        Coinbase.parse(&numbers, &mut p).unwrap();
        let (q, _) = &p.quotes[0];
        assert_eq!(q.bid_px, d("0.1000000000000000055511"));
        assert_eq!((q.ask_px, q.ask_size), (d("12345678.123456789"), d("250")));
        assert_eq!(Some(p.trades[0].0.last_qty), d("100"));
    }

    #[test]
    fn an_idle_products_first_ticker_is_an_empty_quote_and_no_print() {
        // No time, trade_id or sizes; zero prices.
        let idle = r#"{"type":"ticker","sequence":0,"product_id":"ZIL-USDC","price":"0","open_24h":"0","volume_24h":"0","low_24h":"0","high_24h":"0","volume_30d":"0","best_bid":"0","best_ask":"0","side":""}"#;
        let mut p = Parsed::default();
        Coinbase.parse(idle, &mut p).unwrap();
        let (q, _) = &p.quotes[0];
        assert_eq!(
            (q.bid_px, q.bid_size, q.ask_px, q.ask_size),
            (None, None, None, None)
        );
        assert!(p.trades.is_empty());
        // A zero-size print with an id is no print either.
        p.clear();
        Coinbase
            .parse(
                &NO_ASK.replace(r#""last_size":"100""#, r#""last_size":"0""#),
                &mut p,
            )
            .unwrap();
        assert!(p.trades.is_empty());
    }

    #[test]
    fn a_print_without_a_trade_id_is_not_delivered() {
        let mut p = Parsed::default();
        Coinbase
            .parse(&NO_ASK.replace(r#""trade_id":7,"#, ""), &mut p)
            .unwrap();
        assert_eq!((p.quotes.len(), p.trades.len()), (1, 0));
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let mut p = Parsed::default();
        assert!(matches!(
            Coinbase.parse("{not json", &mut p),
            Err(FrameError::Malformed(_))
        ));
        assert_eq!(
            Coinbase.parse(&TICKER.replace(r#""product_id":"ETH-USD","#, ""), &mut p),
            Err(FrameError::Missing("product_id"))
        );
        for bad in [
            r#""abc""#,
            r#""1_000""#,
            "true",
            r#"" 1""#,
            r#""+1""#,
            r#""1e""#,
            "[1]",
        ] {
            let frame = TICKER.replace(r#""best_ask":"1285.27""#, &format!(r#""best_ask":{bad}"#));
            assert!(
                matches!(
                    Coinbase.parse(&frame, &mut p),
                    Err(FrameError::BadNumber {
                        field: "best_ask",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            Coinbase.parse(r#"{"type":"level2"}"#, &mut p),
            Err(FrameError::Unknown("level2".into()))
        );
        let err = Coinbase.parse(r#"{"type":"error","message":"Failed to subscribe","reason":"ZZZ-USD is not a valid product"}"#, &mut p);
        assert_eq!(
            err,
            Err(FrameError::Venue(
                "Failed to subscribe (ZZZ-USD is not a valid product)".into()
            ))
        );
    }

    #[test]
    fn acks_and_heartbeats_are_understood() {
        let mut p = Parsed::default();
        Coinbase
            .parse(r#"{"type":"subscriptions","channels":[{"name":"ticker","product_ids":["ETH-USD"]}]}"#, &mut p)
            .unwrap();
        assert!(p.ack);
        p.clear();
        Coinbase
            .parse(r#"{"type":"heartbeat","last_trade_id":1,"product_id":"ETH-USD","sequence":2,"time":"t"}"#, &mut p)
            .unwrap();
        assert!(!p.has_data());
    }

    #[test]
    fn subscribe_names_products_and_the_ticker_channel() {
        let msg = &Coinbase.subscribe(&[Arc::from("BTC-USD")], 1)[0];
        let v: serde_json::Value = serde_json::from_str(msg).unwrap();
        assert_eq!(v["type"], "subscribe");
        assert_eq!(v["product_ids"][0], "BTC-USD");
        assert_eq!(v["channels"][0], "ticker");
    }
}
