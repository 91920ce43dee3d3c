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

use super::flat::{self, Event, Unsupported};
use super::{iso_millis, need, opt_decimal_text, print, FrameError, Parsed, Stamp, TradeId, Venue};
use crate::market::{Quote, Symbol};
use serde::Deserialize;
use serde_json::value::RawValue;
use smallvec::SmallVec;
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
        read(frame, out, true)
    }
}

/// Parses a frame with the fast path first when `try_fast` (always, but in
/// the tests that compare it with serde_json alone).
pub(super) fn read(frame: &str, out: &mut Parsed, try_fast: bool) -> Result<(), FrameError> {
    if frame == "pong" {
        return Ok(());
    }
    let fast_read = if try_fast {
        fast(frame)
    } else {
        Err(Unsupported)
    };
    let m = match fast_read {
        Ok(m) => m,
        Err(Unsupported) => serde_json::from_str::<Msg<'_>>(frame)
            .map_err(|e| FrameError::Malformed(e.to_string()))?
            .into(),
    };
    if let Some(e) = m.error {
        return Err(FrameError::Venue(e.into_owned()));
    }
    if m.success {
        out.ack = true;
        return Ok(());
    }
    if m.info {
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
                        opt_decimal_text("bidPrice", r.bid_price)?,
                        opt_decimal_text("bidSize", r.bid_size)?,
                    ),
                    (
                        opt_decimal_text("askPrice", r.ask_price)?,
                        opt_decimal_text("askSize", r.ask_size)?,
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
                let size = need("size", opt_decimal_text("size", r.size)?)?;
                let px = need("price", opt_decimal_text("price", r.price)?)?;
                if let Some(t) = print(symbol, Some(px), Some(size)) {
                    out.trades
                        .push((t, r.trd_match_id.as_deref().map(TradeId::text)));
                }
            }
            Ok(())
        }
        (_, "update" | "delete") => Ok(()),
        (t, a) => Err(FrameError::Unknown(format!("{t}/{a}"))),
    }
}

/// A frame's members as the parser uses them (raw texts for prices and
/// sizes, `null` already `None`), from the fast path or from serde.
struct Frame<'a> {
    table: Option<Cow<'a, str>>,
    action: Option<Cow<'a, str>>,
    data: Option<Rows<'a>>,
    success: bool,
    info: bool,
    error: Option<Cow<'a, str>>,
}

/// A frame's rows: BitMEX sends one per frame when streaming, kept inline
/// (no allocation per frame).
type Rows<'a> = SmallVec<[Fields<'a>; 2]>;

/// One row's members (see [`Frame`]).
#[derive(Default)]
struct Fields<'a> {
    symbol: Option<Cow<'a, str>>,
    timestamp: Option<Cow<'a, str>>,
    bid_price: Option<&'a str>,
    bid_size: Option<&'a str>,
    ask_price: Option<&'a str>,
    ask_size: Option<&'a str>,
    price: Option<&'a str>,
    size: Option<&'a str>,
    trd_match_id: Option<Cow<'a, str>>,
}

impl<'a> From<Msg<'a>> for Frame<'a> {
    fn from(m: Msg<'a>) -> Self {
        Frame {
            table: m.table,
            action: m.action,
            data: m
                .data
                .map(|rows| rows.into_iter().map(Fields::from).collect()),
            success: m.success.is_some(),
            info: m.info.is_some(),
            error: m.error,
        }
    }
}

impl<'a> From<Row<'a>> for Fields<'a> {
    fn from(r: Row<'a>) -> Self {
        Fields {
            symbol: r.symbol,
            timestamp: r.timestamp,
            bid_price: r.bid_price.map(RawValue::get),
            bid_size: r.bid_size.map(RawValue::get),
            ask_price: r.ask_price.map(RawValue::get),
            ask_size: r.ask_size.map(RawValue::get),
            price: r.price.map(RawValue::get),
            size: r.size.map(RawValue::get),
            trd_match_id: r.trd_match_id,
        }
    }
}

/// The fast path (see [`flat`]): [`Msg`]'s members read as serde would, or
/// [`Unsupported`].
fn fast(frame: &str) -> Result<Frame<'_>, Unsupported> {
    let mut m = Frame {
        table: None,
        action: None,
        data: None,
        success: false,
        info: false,
        error: None,
    };
    let mut seen = 0u32;
    let mut rows: Rows<'_> = Rows::new();
    let mut row_seen = 0u32;
    flat::object_rows(frame, "data", |event| {
        let (key, raw) = match event {
            Event::Member(key, raw) => (key, raw),
            Event::Row => {
                rows.push(Fields::default());
                row_seen = 0;
                return Ok(());
            }
            Event::RowMember(key, raw) => {
                let r = rows.last_mut().ok_or(Unsupported)?;
                return row_member(r, &mut row_seen, key, raw);
            }
        };
        let (bit, slot) = match key {
            "table" => (0, &mut m.table),
            "action" => (1, &mut m.action),
            "info" => {
                flat::once(&mut seen, 2)?;
                m.info = flat::opt_str(raw)?.is_some();
                return Ok(());
            }
            "error" => (3, &mut m.error),
            "success" => {
                flat::once(&mut seen, 4)?;
                m.success = match raw {
                    "true" | "false" => true,
                    "null" => false,
                    _ => return Err(Unsupported),
                };
                return Ok(());
            }
            "data" => {
                flat::once(&mut seen, 5)?;
                match raw.as_bytes().first() {
                    // Its rows were handed out before it.
                    Some(b'[') => m.data = Some(std::mem::take(&mut rows)),
                    Some(b'n') => {}
                    _ => return Err(Unsupported),
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        flat::once(&mut seen, bit)?;
        *slot = flat::opt_str(raw)?.map(Cow::Borrowed);
        Ok(())
    })?;
    Ok(m)
}

/// One member of a row (see [`fast`]).
fn row_member<'a>(
    r: &mut Fields<'a>,
    seen: &mut u32,
    key: &str,
    raw: &'a str,
) -> Result<(), Unsupported> {
    let (bit, slot) = match key {
        "symbol" | "timestamp" | "trdMatchID" => {
            let (bit, slot) = match key {
                "symbol" => (0, &mut r.symbol),
                "timestamp" => (1, &mut r.timestamp),
                _ => (2, &mut r.trd_match_id),
            };
            flat::once(seen, bit)?;
            *slot = flat::opt_str(raw)?.map(Cow::Borrowed);
            return Ok(());
        }
        "bidPrice" => (3, &mut r.bid_price),
        "bidSize" => (4, &mut r.bid_size),
        "askPrice" => (5, &mut r.ask_price),
        "askSize" => (6, &mut r.ask_size),
        "price" => (7, &mut r.price),
        "size" => (8, &mut r.size),
        _ => return Ok(()),
    };
    flat::once(seen, bit)?;
    *slot = flat::opt_raw(raw);
    Ok(())
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
            &Some(TradeId::text("00000000-006d-1000-0000-000a0ba1f5a0"))
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
