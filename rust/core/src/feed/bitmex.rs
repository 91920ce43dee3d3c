//! BitMEX `quote` and `trade` tables (`wss://ws.bitmex.com/realtime`):
//! a `partial` (the current state) then `insert` batches; prices and sizes are
//! JSON numbers, read from their raw text so they stay exact.
//!
//! What a frame delivers: each `quote` row gives a quote (a side whose price
//! is `null` or absent, as BitMEX sends for an empty book side, is `None`),
//! ordered by the row's `timestamp` (milliseconds, set by the matching
//! engine, the same on every connection): a quote earlier than the newest
//! delivered is dropped as stale; equal times are kept (several quotes share
//! a millisecond). Each `trade` insert row gives a print when its size is
//! above zero; a trade row without `price` or `size` makes the frame bad.

use super::{
    iso_millis, need, opt_decimal, print, req_decimal, FrameError, Parsed, Stamp, TradeId, Venue,
};
use crate::market::{Quote, Symbol};
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
    timestamp: Option<Cow<'a, str>>,
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
                    let quote = Quote::new(
                        symbol,
                        (
                            opt_decimal("bidPrice", r.bid_price)?,
                            opt_decimal("bidSize", r.bid_size)?,
                        ),
                        (
                            opt_decimal("askPrice", r.ask_price)?,
                            opt_decimal("askSize", r.ask_size)?,
                        ),
                    );
                    let stamp = r
                        .timestamp
                        .as_deref()
                        .and_then(iso_millis)
                        .map(Stamp::Millis);
                    out.quotes.push((quote, stamp));
                }
                Ok(())
            }
            // A trade partial is history, not new prints.
            ("trade", "partial") => Ok(()),
            ("trade", "insert") => {
                for r in rows {
                    let symbol: Symbol = out.symbol(&need("symbol", r.symbol)?);
                    let size = req_decimal("size", r.size)?;
                    let px = req_decimal("price", r.price)?;
                    if let Some(t) = print(symbol, Some(px), Some(size)) {
                        out.trades
                            .push((t, r.trd_match_id.map(|id| TradeId::Text(id.into_owned()))));
                    }
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
        let (q, stamp) = &p.quotes[0];
        assert_eq!(&*q.symbol, "XBTUSD");
        assert_eq!(q.bid_px, Some("50000.5".parse::<Decimal>().unwrap()));
        assert_eq!(q.ask_size, Some(Decimal::from(250)));
        assert_eq!(
            stamp,
            &iso_millis("2026-01-01T00:00:00.000Z").map(Stamp::Millis)
        );
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
    fn a_null_side_is_empty_and_the_other_rows_are_delivered() {
        let mut p = Parsed::default();
        BitMex
            .parse(r#"{"table":"quote","action":"partial","data":[{"timestamp":"2026-01-01T00:00:00.000Z","symbol":"THIN","bidSize":null,"bidPrice":null,"askPrice":3.5,"askSize":7},{"timestamp":"2026-01-01T00:00:00.000Z","symbol":"XBTUSD","bidSize":1,"bidPrice":2,"askPrice":3,"askSize":4}]}"#, &mut p)
            .unwrap();
        assert_eq!(p.quotes.len(), 2);
        let q = &p.quotes[0].0;
        assert_eq!((q.bid_px, q.bid_size), (None, None));
        assert_eq!(q.ask_px, Some("3.5".parse().unwrap()));
        assert_eq!(p.quotes[1].0.bid_px, Some(Decimal::TWO));
    }

    #[test]
    fn timestamps_order_as_times() {
        let a = iso_millis("2026-01-01T23:59:59.999Z").unwrap();
        let b = iso_millis("2026-01-02T00:00:00.000Z").unwrap();
        assert!(a < b);
        assert_eq!(b - a, 1);
        assert_eq!(iso_millis("2026-01-02T00:00:00Z"), None);
        assert_eq!(iso_millis("2026-01-02T00:00:00.0x0Z"), None);
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
