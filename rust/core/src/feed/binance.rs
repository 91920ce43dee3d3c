//! Binance spot `bookTicker` and `trade` streams on the combined endpoint
//! (`wss://stream.binance.com:9443/stream`), frames wrapped as
//! `{"stream": ..., "data": ...}`. Stream names use lowercase symbols; the
//! engine's symbols are Binance's uppercase ones (`BTCUSDT`).
//!
//! What a frame delivers: a `bookTicker` gives a quote (a side with price 0
//! and size 0, Binance's empty side, or a missing/`null`/`""` field, is
//! empty: `None`), ordered by its update id `u` (an older one is dropped as
//! stale: two connections overlap during a renewal). A `trade` (id `t`) or
//! `aggTrade` (id `a`) gives a print when its quantity is above zero; a trade
//! without `p` or `q` is a bad frame. Prices and sizes are read exactly from
//! strings (documented) or numbers.

use super::flat::{self, Unsupported};
use super::{need, opt_decimal_text, print, FrameError, Parsed, Stamp, TradeId, Venue};
use crate::market::{Quote, Symbol};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The Binance spot protocol.
#[derive(Debug, Default, Clone)]
pub struct Binance;

/// Default public endpoint (combined streams).
pub const URL: &str = "wss://stream.binance.com:9443/stream";

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    // Replies to SUBSCRIBE/UNSUBSCRIBE: {"result": null, "id": 1}
    id: Option<serde_json::Value>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    // A raw (non-combined) event, e.g. serverShutdown.
    #[serde(borrow, rename = "e")]
    event: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, rename = "e")]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "s")]
    symbol: Option<Cow<'a, str>>,
    // "a" and "b" are prices (text) in bookTicker but order ids (numbers)
    // in trade events and the aggregate trade id in aggTrade: read them raw.
    #[serde(borrow, rename = "b")]
    bid: Option<&'a RawValue>,
    #[serde(borrow, rename = "B")]
    bid_size: Option<&'a RawValue>,
    #[serde(borrow, rename = "a")]
    ask: Option<&'a RawValue>,
    #[serde(borrow, rename = "A")]
    ask_size: Option<&'a RawValue>,
    #[serde(borrow, rename = "p")]
    price: Option<&'a RawValue>,
    #[serde(borrow, rename = "q")]
    qty: Option<&'a RawValue>,
    #[serde(rename = "t")]
    trade_id: Option<u64>,
    #[serde(rename = "u")]
    update_id: Option<u64>,
}

fn request(method: &str, symbols: &[Symbol], id: u64) -> Vec<String> {
    let params: Vec<String> = symbols
        .iter()
        .flat_map(|s| {
            let s = s.to_lowercase();
            [format!("{s}@bookTicker"), format!("{s}@trade")]
        })
        .collect();
    vec![serde_json::json!({"method": method, "params": params, "id": id}).to_string()]
}

impl Venue for Binance {
    fn name(&self) -> &'static str {
        "binance"
    }

    fn url(&self) -> &'static str {
        URL
    }

    fn subscribe(&self, symbols: &[Symbol], id: u64) -> Vec<String> {
        request("SUBSCRIBE", symbols, id)
    }

    fn unsubscribe(&self, symbols: &[Symbol], id: u64) -> Vec<String> {
        request("UNSUBSCRIBE", symbols, id)
    }

    fn max_messages_per_second(&self) -> Option<u32> {
        Some(5)
    }

    fn parse(&self, frame: &str, out: &mut Parsed) -> Result<(), FrameError> {
        read(frame, out, true)
    }
}

/// Parses a frame with the fast path first when `try_fast` (always, but in
/// the tests that compare it with serde_json alone).
pub(super) fn read(frame: &str, out: &mut Parsed, try_fast: bool) -> Result<(), FrameError> {
    let fast_read = if try_fast {
        fast_envelope(frame)
    } else {
        Err(Unsupported)
    };
    let env = match fast_read {
        Ok(env) => env,
        Err(Unsupported) => serde_json::from_str::<Envelope<'_>>(frame)
            .map_err(|e| FrameError::Malformed(e.to_string()))?
            .into(),
    };
    if let Some(err) = env.error {
        return Err(FrameError::Venue(err.to_string()));
    }
    if env.event.as_deref() == Some("serverShutdown") {
        out.renew = true;
        return Ok(());
    }
    let (Some(stream), Some(data)) = (env.stream, env.data) else {
        if env.id {
            out.ack = true;
            return Ok(());
        }
        return Err(FrameError::Unknown(super::snippet(frame)));
    };
    let event_read = if try_fast {
        fast_event(data)
    } else {
        Err(Unsupported)
    };
    let ev = match event_read {
        Ok(ev) => ev,
        Err(Unsupported) => serde_json::from_str::<Event<'_>>(data)
            .map_err(|e| FrameError::Malformed(e.to_string()))?
            .into(),
    };
    if ev.event.as_deref() == Some("serverShutdown") {
        out.renew = true;
        return Ok(());
    }
    let symbol: Symbol = out.symbol(&need("s", ev.symbol)?);
    if stream.ends_with("@bookTicker") {
        let quote = Quote::new(
            symbol,
            (
                opt_decimal_text("b", ev.bid)?,
                opt_decimal_text("B", ev.bid_size)?,
            ),
            (
                opt_decimal_text("a", ev.ask)?,
                opt_decimal_text("A", ev.ask_size)?,
            ),
        );
        out.quotes.push((quote, ev.update_id.map(Stamp::Seq)));
        Ok(())
    } else if stream.ends_with("@trade") || stream.ends_with("@aggTrade") {
        let px = need("p", opt_decimal_text("p", ev.price)?)?;
        let qty = need("q", opt_decimal_text("q", ev.qty)?)?;
        let id = if stream.ends_with("@trade") {
            ev.trade_id
        } else {
            // The aggregate trade id, a JSON number.
            ev.ask.and_then(|a| a.parse::<u64>().ok())
        };
        out.trades
            .extend(print(symbol, Some(px), Some(qty)).map(|t| (t, id.map(TradeId::Seq))));
        Ok(())
    } else {
        Err(FrameError::Unknown(stream.to_string()))
    }
}

/// The envelope's members as the parser uses them (raw texts for values it
/// passes on; `null` already `None`), from the fast path or from serde.
struct Env<'a> {
    stream: Option<Cow<'a, str>>,
    data: Option<&'a str>,
    id: bool,
    error: Option<&'a str>,
    event: Option<Cow<'a, str>>,
}

impl<'a> From<Envelope<'a>> for Env<'a> {
    fn from(e: Envelope<'a>) -> Self {
        Env {
            stream: e.stream,
            data: e.data.map(RawValue::get),
            id: e.id.is_some(),
            error: e.error.map(RawValue::get),
            event: e.event,
        }
    }
}

/// The fast path for the envelope (see [`flat`]): [`Envelope`]'s members read
/// as serde would, or [`Unsupported`].
fn fast_envelope(frame: &str) -> Result<Env<'_>, Unsupported> {
    let mut env = Env {
        stream: None,
        data: None,
        id: false,
        error: None,
        event: None,
    };
    let mut seen = 0u32;
    flat::object(frame, |key, raw| {
        match key {
            "stream" => {
                flat::once(&mut seen, 0)?;
                env.stream = flat::opt_str(raw)?.map(Cow::Borrowed);
            }
            "data" => {
                flat::once(&mut seen, 1)?;
                env.data = flat::opt_raw(raw);
            }
            "id" => {
                flat::once(&mut seen, 2)?;
                // serde reads it into a Value, which refuses a number beyond
                // f64: only null, a string or an integer here.
                env.id = match raw.as_bytes()[0] {
                    b'"' | b'n' => flat::opt_str(raw)?.is_some(),
                    _ => flat::opt_u64(raw)?.is_some(),
                };
            }
            "error" => {
                flat::once(&mut seen, 3)?;
                env.error = flat::opt_raw(raw);
            }
            "e" => {
                flat::once(&mut seen, 4)?;
                env.event = flat::opt_str(raw)?.map(Cow::Borrowed);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(env)
}

/// An event's members as the parser uses them (see [`Env`]).
#[derive(Default)]
struct Ev<'a> {
    event: Option<Cow<'a, str>>,
    symbol: Option<Cow<'a, str>>,
    bid: Option<&'a str>,
    bid_size: Option<&'a str>,
    ask: Option<&'a str>,
    ask_size: Option<&'a str>,
    price: Option<&'a str>,
    qty: Option<&'a str>,
    trade_id: Option<u64>,
    update_id: Option<u64>,
}

impl<'a> From<Event<'a>> for Ev<'a> {
    fn from(e: Event<'a>) -> Self {
        Ev {
            event: e.event,
            symbol: e.symbol,
            bid: e.bid.map(RawValue::get),
            bid_size: e.bid_size.map(RawValue::get),
            ask: e.ask.map(RawValue::get),
            ask_size: e.ask_size.map(RawValue::get),
            price: e.price.map(RawValue::get),
            qty: e.qty.map(RawValue::get),
            trade_id: e.trade_id,
            update_id: e.update_id,
        }
    }
}

/// The fast path for an event (see [`fast_envelope`]).
fn fast_event(data: &str) -> Result<Ev<'_>, Unsupported> {
    let mut ev = Ev::default();
    let mut seen = 0u32;
    flat::object(data, |key, raw| {
        let (bit, slot) = match key {
            "e" | "s" => {
                let (bit, slot) = if key == "e" {
                    (0, &mut ev.event)
                } else {
                    (1, &mut ev.symbol)
                };
                flat::once(&mut seen, bit)?;
                *slot = flat::opt_str(raw)?.map(Cow::Borrowed);
                return Ok(());
            }
            "t" | "u" => {
                let (bit, slot) = if key == "t" {
                    (2, &mut ev.trade_id)
                } else {
                    (3, &mut ev.update_id)
                };
                flat::once(&mut seen, bit)?;
                *slot = flat::opt_u64(raw)?;
                return Ok(());
            }
            "b" => (4, &mut ev.bid),
            "B" => (5, &mut ev.bid_size),
            "a" => (6, &mut ev.ask),
            "A" => (7, &mut ev.ask_size),
            "p" => (8, &mut ev.price),
            "q" => (9, &mut ev.qty),
            _ => return Ok(()),
        };
        flat::once(&mut seen, bit)?;
        *slot = flat::opt_raw(raw);
        Ok(())
    })?;
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    #[allow(unused_imports)]
    use std::sync::Arc;

    #[test]
    fn book_ticker_and_trade_frames_parse() {
        let mut p = Parsed::default();
        Binance
            .parse(r#"{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#, &mut p)
            .unwrap();
        assert_eq!(&*p.quotes[0].0.symbol, "BNBUSDT");
        assert_eq!(
            p.quotes[0].0.ask_px,
            Some("25.3652".parse::<Decimal>().unwrap())
        );
        assert_eq!(p.quotes[0].1, Some(Stamp::Seq(400900217)));
        Binance
            .parse(r#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}"#, &mut p)
            .unwrap();
        let (t, id) = &p.trades[0];
        assert_eq!(
            (t.last_qty, t.last_px),
            (Decimal::from(100), "0.001".parse().unwrap())
        );
        assert_eq!(id, &Some(TradeId::Seq(12345)));
    }

    #[test]
    fn an_empty_or_missing_side_is_none_and_the_rest_is_delivered() {
        let mut p = Parsed::default();
        // Binance's empty side: price and size zero.
        Binance
            .parse(r#"{"stream":"bnbusdt@bookTicker","data":{"u":1,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"0.00000000","A":"0.00000000"}}"#, &mut p)
            .unwrap();
        let q = &p.quotes[0].0;
        assert_eq!(q.bid_size, Some("31.21".parse().unwrap()));
        assert_eq!((q.ask_px, q.ask_size), (None, None));
        p.clear();
        // null, absent, and numbers for strings.
        Binance
            .parse(r#"{"stream":"bnbusdt@bookTicker","data":{"u":2,"s":"BNBUSDT","b":null,"B":null,"a":25.3652,"A":40}}"#, &mut p)
            .unwrap();
        let q = &p.quotes[0].0;
        assert_eq!((q.bid_px, q.bid_size), (None, None));
        assert_eq!(
            (q.ask_px, q.ask_size),
            (Some("25.3652".parse().unwrap()), Some(Decimal::from(40)))
        );
    }

    #[test]
    fn agg_trades_parse_with_their_aggregate_id() {
        let mut p = Parsed::default();
        Binance
            .parse(r#"{"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}}"#, &mut p)
            .unwrap();
        let (t, id) = &p.trades[0];
        assert_eq!(t.last_qty, Decimal::from(100));
        assert_eq!(id, &Some(TradeId::Seq(12345)));
        assert_eq!(
            Binance.parse(
                r#"{"stream":"bnbbtc@trade","data":{"e":"trade","s":"BNBBTC","t":1,"q":"1"}}"#,
                &mut p
            ),
            Err(FrameError::Missing("p"))
        );
    }

    #[test]
    fn replies_shutdown_and_errors() {
        let mut p = Parsed::default();
        Binance.parse(r#"{"result":null,"id":1}"#, &mut p).unwrap();
        assert!(p.ack);
        p.clear();
        Binance
            .parse(r#"{"e":"serverShutdown","E":1}"#, &mut p)
            .unwrap();
        assert!(p.renew);
        let e = Binance.parse(
            r#"{"error":{"code":2,"msg":"Invalid request"},"id":3}"#,
            &mut p,
        );
        assert!(matches!(e, Err(FrameError::Venue(m)) if m.contains("Invalid request")));
    }

    #[test]
    fn subscribe_uses_lowercase_stream_names_and_ids() {
        let msg = &Binance.subscribe(&[Arc::from("BTCUSDT")], 7)[0];
        let v: serde_json::Value = serde_json::from_str(msg).unwrap();
        assert_eq!(v["method"], "SUBSCRIBE");
        assert_eq!(v["params"][0], "btcusdt@bookTicker");
        assert_eq!(v["params"][1], "btcusdt@trade");
        assert_eq!(v["id"], 7);
    }
}
