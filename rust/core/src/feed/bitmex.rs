//! BitMEX `quote` and `trade` tables (`wss://ws.bitmex.com/realtime`):
//! a `partial` (the current state) then `insert` batches; prices and sizes are
//! JSON numbers, read from their raw text so they stay exact.

use super::{decimal, need, FrameError, Parsed, TradeId, Venue};
use crate::market::{Quote, Symbol, Trade};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The BitMEX realtime protocol.
#[derive(Debug, Default, Clone)]
pub struct BitMex;

/// Default public endpoint.
pub const URL: &str = "wss://ws.bitmex.com/realtime";

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow)]
    table: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<Vec<Row<'a>>>,
    success: Option<bool>,
    #[serde(borrow)]
    info: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    #[serde(borrow)]
    symbol: Option<Cow<'a, str>>,
    #[serde(borrow)]
    bid_price: Option<&'a RawValue>,
    #[serde(borrow)]
    bid_size: Option<&'a RawValue>,
    #[serde(borrow)]
    ask_price: Option<&'a RawValue>,
    #[serde(borrow)]
    ask_size: Option<&'a RawValue>,
    #[serde(borrow)]
    price: Option<&'a RawValue>,
    #[serde(borrow)]
    size: Option<&'a RawValue>,
    #[serde(borrow, rename = "trdMatchID")]
    trd_match_id: Option<Cow<'a, str>>,
}

fn request(op: &str, symbols: &[Symbol]) -> Vec<String> {
    let args: Vec<String> = symbols
        .iter()
        .flat_map(|s| [format!("quote:{s}"), format!("trade:{s}")])
        .collect();
    vec![serde_json::json!({"op": op, "args": args}).to_string()]
}

fn num(field: &'static str, v: Option<&RawValue>) -> Result<rust_decimal::Decimal, FrameError> {
    decimal(field, need(field, v)?.get())
}

impl Venue for BitMex {
    fn name(&self) -> &'static str {
        "bitmex"
    }

    fn url(&self) -> &'static str {
        URL
    }

    fn subscribe(&self, symbols: &[Symbol], _id: u64) -> Vec<String> {
        request("subscribe", symbols)
    }

    fn unsubscribe(&self, symbols: &[Symbol], _id: u64) -> Vec<String> {
        request("unsubscribe", symbols)
    }

    fn parse(&self, frame: &str, out: &mut Parsed) -> Result<(), FrameError> {
        if frame == "pong" {
            return Ok(());
        }
        let m: Msg<'_> =
            serde_json::from_str(frame).map_err(|e| FrameError::Malformed(e.to_string()))?;
        if let Some(e) = m.error {
            return Err(FrameError::Venue(e.into_owned()));
        }
        if m.success.is_some() {
            out.ack = true;
            return Ok(());
        }
        if m.info.is_some() {
            return Ok(()); // the welcome message
        }
        let table = need("table", m.table)?;
        let action = need("action", m.action)?;
        let rows = m.data.unwrap_or_default();
        match (&*table, &*action) {
            ("quote", "partial" | "insert") => {
                for r in rows {
                    let symbol = out.symbol(&need("symbol", r.symbol)?);
                    out.quotes.push(Quote {
                        symbol,
                        bid_px: num("bidPrice", r.bid_price)?,
                        bid_size: num("bidSize", r.bid_size)?,
                        ask_px: num("askPrice", r.ask_price)?,
                        ask_size: num("askSize", r.ask_size)?,
                    });
                }
                Ok(())
            }
            // A trade partial is history, not new prints.
            ("trade", "partial") => Ok(()),
            ("trade", "insert") => {
                for r in rows {
                    let t = Trade::new(
                        out.symbol(&need("symbol", r.symbol)?),
                        num("size", r.size)?,
                        num("price", r.price)?,
                    );
                    out.trades
                        .push((t, r.trd_match_id.map(|id| TradeId::Text(id.into_owned()))));
                }
                Ok(())
            }
            (_, "update" | "delete") => Ok(()),
            (t, a) => Err(FrameError::Unknown(format!("{t}/{a}"))),
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
    fn quote_and_trade_inserts_parse_exactly() {
        let mut p = Parsed::default();
        BitMex
            .parse(r#"{"table":"quote","action":"insert","data":[{"timestamp":"2026-01-01T00:00:00.000Z","symbol":"XBTUSD","bidSize":100,"bidPrice":50000.5,"askPrice":50001,"askSize":2.5e2}]}"#, &mut p)
            .unwrap();
        let q = &p.quotes[0];
        assert_eq!(&*q.symbol, "XBTUSD");
        assert_eq!(q.bid_px, "50000.5".parse::<Decimal>().unwrap());
        assert_eq!(q.ask_size, Decimal::from(250));
        BitMex
            .parse(r#"{"table":"trade","action":"insert","data":[{"timestamp":"t","symbol":"XBTUSD","side":"Buy","size":30,"price":50001.5,"tickDirection":"PlusTick","trdMatchID":"00000000-006d-1000-0000-000a0ba1f5a0","grossValue":1,"homeNotional":0.1,"foreignNotional":30}]}"#, &mut p)
            .unwrap();
        let (t, id) = &p.trades[0];
        assert_eq!(
            (t.last_qty, t.last_px),
            (Decimal::from(30), "50001.5".parse().unwrap())
        );
        assert_eq!(
            id,
            &Some(TradeId::Text("00000000-006d-1000-0000-000a0ba1f5a0".into()))
        );
    }

    #[test]
    fn trade_partial_is_history_and_acks_are_understood() {
        let mut p = Parsed::default();
        BitMex
            .parse(r#"{"table":"trade","action":"partial","keys":[],"data":[{"symbol":"XBTUSD","size":1,"price":1,"trdMatchID":"a"}]}"#, &mut p)
            .unwrap();
        assert!(!p.has_data());
        BitMex.parse(r#"{"success":true,"subscribe":"quote:XBTUSD","request":{"op":"subscribe","args":["quote:XBTUSD"]}}"#, &mut p).unwrap();
        assert!(p.ack);
        assert!(BitMex
            .parse(
                r#"{"info":"Welcome to the BitMEX Realtime API.","version":"1"}"#,
                &mut p
            )
            .is_ok());
        assert!(matches!(
            BitMex.parse(r#"{"error":"Unknown table: foo"}"#, &mut p),
            Err(FrameError::Venue(_))
        ));
        assert!(matches!(
            BitMex.parse(r#"{"table":"quote","action":"insert","data":[{"symbol":"XBTUSD","bidSize":1,"bidPrice":"x","askPrice":1,"askSize":1}]}"#, &mut p),
            Err(FrameError::BadNumber { field: "bidPrice", .. })
        ));
    }
}
