//! Coinbase Exchange `ticker` channel (`wss://ws-feed.exchange.coinbase.com`).
//!
//! A ticker message carries the best bid/ask and the last print; the print is
//! repeated by later tickers until the next one, so it carries `trade_id` and
//! is de-duplicated downstream.

use super::{decimal, need, FrameError, Parsed, TradeId, Venue};
use crate::market::{Quote, Symbol, Trade};
use serde::Deserialize;
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
    best_bid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    best_bid_size: Option<Cow<'a, str>>,
    #[serde(borrow)]
    best_ask: Option<Cow<'a, str>>,
    #[serde(borrow)]
    best_ask_size: Option<Cow<'a, str>>,
    #[serde(borrow)]
    price: Option<Cow<'a, str>>,
    #[serde(borrow)]
    last_size: Option<Cow<'a, str>>,
    trade_id: Option<u64>,
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
        let m: Msg<'_> =
            serde_json::from_str(frame).map_err(|e| FrameError::Malformed(e.to_string()))?;
        match &*m.kind {
            "ticker" => {
                let symbol: Symbol = out.symbol(&need("product_id", m.product_id)?);
                let quote = Quote {
                    symbol: symbol.clone(),
                    bid_px: decimal("best_bid", &need("best_bid", m.best_bid)?)?,
                    bid_size: decimal("best_bid_size", &need("best_bid_size", m.best_bid_size)?)?,
                    ask_px: decimal("best_ask", &need("best_ask", m.best_ask)?)?,
                    ask_size: decimal("best_ask_size", &need("best_ask_size", m.best_ask_size)?)?,
                };
                // A ticker without a print (e.g. right after subscribing) is a quote only.
                let trade = match (m.price, m.last_size) {
                    (Some(px), Some(qty)) => Some((
                        Trade::new(symbol, decimal("last_size", &qty)?, decimal("price", &px)?),
                        m.trade_id.map(TradeId::Seq),
                    )),
                    _ => None,
                };
                out.quotes.push(quote);
                out.trades.extend(trade);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    #[allow(unused_imports)]
    use std::sync::Arc;

    const TICKER: &str = r#"{"type":"ticker","sequence":37475248783,"product_id":"ETH-USD","price":"1285.22","open_24h":"1310.79","volume_24h":"245532.79269678","low_24h":"1280.52","high_24h":"1313.8","volume_30d":"9788783.60117027","best_bid":"1285.04","best_bid_size":"0.46688654","best_ask":"1285.27","best_ask_size":"1.56637040","side":"buy","time":"2022-10-19T23:28:22.061769Z","trade_id":370843401,"last_size":"11.4396987"}"#;

    #[test]
    fn a_ticker_gives_a_quote_and_a_print() {
        let mut p = Parsed::default();
        Coinbase.parse(TICKER, &mut p).unwrap();
        let q = &p.quotes[0];
        assert_eq!(&*q.symbol, "ETH-USD");
        assert_eq!(q.bid_px, "1285.04".parse::<Decimal>().unwrap());
        assert_eq!(q.ask_size, "1.56637040".parse::<Decimal>().unwrap());
        let (t, id) = &p.trades[0];
        assert_eq!(t.last_px, "1285.22".parse::<Decimal>().unwrap());
        assert_eq!(t.last_qty, "11.4396987".parse::<Decimal>().unwrap());
        assert_eq!(id, &Some(TradeId::Seq(370843401)));
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let mut p = Parsed::default();
        assert!(matches!(
            Coinbase.parse("{not json", &mut p),
            Err(FrameError::Malformed(_))
        ));
        let missing = TICKER.replace(r#""best_bid":"1285.04","#, "");
        assert_eq!(
            Coinbase.parse(&missing, &mut p),
            Err(FrameError::Missing("best_bid"))
        );
        let bad = TICKER.replace(r#""best_ask":"1285.27""#, r#""best_ask":"abc""#);
        assert!(matches!(
            Coinbase.parse(&bad, &mut p),
            Err(FrameError::BadNumber {
                field: "best_ask",
                ..
            })
        ));
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
