//! Binance spot `bookTicker` and `trade` streams on the combined endpoint
//! (`wss://stream.binance.com:9443/stream`), frames wrapped as
//! `{"stream": ..., "data": ...}`. Stream names use lowercase symbols; the
//! engine's symbols are Binance's uppercase ones (`BTCUSDT`).

use super::{decimal, need, FrameError, Parsed, TradeId, Venue};
use crate::market::{Quote, Symbol, Trade};
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
    // in trade events: read them raw.
    #[serde(borrow, rename = "b")]
    bid: Option<&'a RawValue>,
    #[serde(borrow, rename = "B")]
    bid_size: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "a")]
    ask: Option<&'a RawValue>,
    #[serde(borrow, rename = "A")]
    ask_size: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "p")]
    price: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "q")]
    qty: Option<Cow<'a, str>>,
    #[serde(rename = "t")]
    trade_id: Option<u64>,
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
        let env: Envelope<'_> =
            serde_json::from_str(frame).map_err(|e| FrameError::Malformed(e.to_string()))?;
        if let Some(err) = env.error {
            return Err(FrameError::Venue(err.get().to_string()));
        }
        if env.event.as_deref() == Some("serverShutdown") {
            out.renew = true;
            return Ok(());
        }
        let (Some(stream), Some(data)) = (env.stream, env.data) else {
            if env.id.is_some() {
                out.ack = true;
                return Ok(());
            }
            return Err(FrameError::Unknown(super::snippet(frame)));
        };
        let ev: Event<'_> =
            serde_json::from_str(data.get()).map_err(|e| FrameError::Malformed(e.to_string()))?;
        if ev.event.as_deref() == Some("serverShutdown") {
            out.renew = true;
            return Ok(());
        }
        let symbol: Symbol = out.symbol(&need("s", ev.symbol)?);
        if stream.ends_with("@bookTicker") {
            let ask = need("a", ev.ask)?;
            out.quotes.push(Quote {
                symbol,
                bid_px: decimal("b", need("b", ev.bid)?.get())?,
                bid_size: decimal("B", &need("B", ev.bid_size)?)?,
                ask_px: decimal("a", ask.get())?,
                ask_size: decimal("A", &need("A", ev.ask_size)?)?,
            });
            Ok(())
        } else if stream.ends_with("@trade") {
            let t = Trade::new(
                symbol,
                decimal("q", &need("q", ev.qty)?)?,
                decimal("p", &need("p", ev.price)?)?,
            );
            out.trades.push((t, ev.trade_id.map(TradeId::Seq)));
            Ok(())
        } else {
            Err(FrameError::Unknown(stream.to_string()))
        }
    }
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
        assert_eq!(&*p.quotes[0].symbol, "BNBUSDT");
        assert_eq!(p.quotes[0].ask_px, "25.3652".parse::<Decimal>().unwrap());
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
