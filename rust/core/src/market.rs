//! Market vocabulary: sides, message types, order statuses, quotes, trades and
//! execution reports. Prices and quantities are exact decimals.
//!
//! The one invariant that matters here: merging trades never loses volume.
//! A merged [`Trade`] carries the total volume and its VWAP over every print
//! merged into it, with the VWAP rounded to 8 places.

use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A venue's instrument name, e.g. `BTC-USD`. Shared, so fan-out clones are cheap.
pub type Symbol = Arc<str>;
/// An order's identity, assigned by exo when the order is created.
pub type OrderId = Arc<str>;

/// Decimal places of a merged trade's average price.
pub const AVG_PX_PLACES: u32 = 8;

/// Buy or sell. Never changes for the life of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buy: takes the ask, rests on the bid.
    Buy,
    /// Sell: hits the bid, rests on the ask.
    Sell,
}

/// What an instruction does to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgType {
    /// Create an order.
    New,
    /// Ask the delegate to cancel the order.
    Cancel,
    /// Ask the delegate to change the order (not its side or symbol).
    Replace,
}

/// The state of an order as a counterparty reports it (FIX OrdStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum OrdStatus {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    PendingCancel,
    Rejected,
    PendingNew,
    Expired,
    PendingReplace,
}

/// What one execution report says happened (FIX ExecType, tag 150, 4.4 values).
/// A fill is `Trade`; FIX 4.4 dropped 4.2's PartialFill/Fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ExecType {
    New,
    DoneForDay,
    Canceled,
    Replaced,
    PendingCancel,
    Stopped,
    Rejected,
    Suspended,
    PendingNew,
    Calculated,
    Expired,
    Restated,
    PendingReplace,
    Trade,
    TradeCorrect,
    TradeCancel,
    OrderStatus,
}

macro_rules! names {
    ($ty:ty, $what:literal, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];
            /// The upper-case name used on the wire and in Python (`BUY`, `NEW`, ...).
            pub fn name(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            /// Parses a name case-insensitively.
            fn from_str(s: &str) -> Result<Self, String> {
                $(if s.eq_ignore_ascii_case($name) { return Ok(<$ty>::$variant); })+
                Err(format!(
                    concat!("unknown ", $what, " {:?}: expected one of {}"),
                    s,
                    [$($name),+].join(", ")
                ))
            }
        }
    };
}

names!(Side, "side", Buy => "BUY", Sell => "SELL");
names!(MsgType, "msg_type", New => "NEW", Cancel => "CANCEL", Replace => "REPLACE");
names!(OrdStatus, "ord_status",
    New => "NEW", PartiallyFilled => "PARTIALLY_FILLED", Filled => "FILLED",
    Canceled => "CANCELED", PendingCancel => "PENDING_CANCEL", Rejected => "REJECTED",
    PendingNew => "PENDING_NEW", Expired => "EXPIRED", PendingReplace => "PENDING_REPLACE");
names!(ExecType, "exec_type",
    New => "NEW", DoneForDay => "DONE_FOR_DAY", Canceled => "CANCELED", Replaced => "REPLACED",
    PendingCancel => "PENDING_CANCEL", Stopped => "STOPPED", Rejected => "REJECTED",
    Suspended => "SUSPENDED", PendingNew => "PENDING_NEW", Calculated => "CALCULATED",
    Expired => "EXPIRED", Restated => "RESTATED", PendingReplace => "PENDING_REPLACE",
    Trade => "TRADE", TradeCorrect => "TRADE_CORRECT", TradeCancel => "TRADE_CANCEL",
    OrderStatus => "ORDER_STATUS");

macro_rules! fix_values {
    ($ty:ty, $tag:literal, $($variant:ident => $c:literal),+ $(,)?) => {
        impl $ty {
            /// The value on the FIX wire (a one-character enumeration).
            pub fn fix(self) -> char {
                match self { $(<$ty>::$variant => $c),+ }
            }
            /// The value for a FIX wire character, e.g. `'0'`.
            pub fn from_fix(c: char) -> Result<Self, String> {
                match c {
                    $($c => Ok(<$ty>::$variant),)+
                    other => Err(format!(concat!("unknown FIX ", $tag, " value {:?}"), other)),
                }
            }
        }
    };
}

fix_values!(Side, "Side(54)", Buy => '1', Sell => '2');
fix_values!(MsgType, "MsgType(35)", New => 'D', Cancel => 'F', Replace => 'G');
fix_values!(OrdStatus, "OrdStatus(39)",
    New => '0', PartiallyFilled => '1', Filled => '2', Canceled => '4', PendingCancel => '6',
    Rejected => '8', PendingNew => 'A', Expired => 'C', PendingReplace => 'E');
fix_values!(ExecType, "ExecType(150)",
    New => '0', DoneForDay => '3', Canceled => '4', Replaced => '5', PendingCancel => '6',
    Stopped => '7', Rejected => '8', Suspended => '9', PendingNew => 'A', Calculated => 'B',
    Expired => 'C', Restated => 'D', PendingReplace => 'E', Trade => 'F', TradeCorrect => 'G',
    TradeCancel => 'H', OrderStatus => 'I');

/// Best bid and offer for a symbol.
///
/// A side of the book the venue did not fill in is `None`, never 0: a thin
/// product may have bids but no asks (Coinbase sends `"best_ask": null`), and
/// an idle product's first ticker has no book at all. The feeds normalise a
/// side so that a size is only ever present with its price: a side with no
/// price, or with price 0 and no (or zero) size, is empty (both `None`); a
/// price without a size keeps the price and has `None` size.
#[derive(Debug, PartialEq, Eq)]
pub struct Quote {
    /// The instrument.
    pub symbol: Symbol,
    /// Best bid price; `None` when the bid side is empty.
    pub bid_px: Option<Decimal>,
    /// Size at the best bid; `None` when empty or not sent.
    pub bid_size: Option<Decimal>,
    /// Best ask (offer) price; `None` when the ask side is empty.
    pub ask_px: Option<Decimal>,
    /// Size at the best ask; `None` when empty or not sent.
    pub ask_size: Option<Decimal>,
}

impl Clone for Quote {
    fn clone(&self) -> Self {
        Quote {
            symbol: self.symbol.clone(),
            ..*self
        }
    }

    /// Keeps the symbol when it is already the same one (no reference count
    /// touched): a symbol's newest quote is overwritten this way at every tick.
    fn clone_from(&mut self, source: &Self) {
        let Quote {
            symbol,
            bid_px,
            bid_size,
            ask_px,
            ask_size,
        } = source;
        if !Arc::ptr_eq(&self.symbol, symbol) {
            self.symbol.clone_from(symbol);
        }
        (self.bid_px, self.bid_size) = (*bid_px, *bid_size);
        (self.ask_px, self.ask_size) = (*ask_px, *ask_size);
    }
}

/// One side of the book as the feeds deliver it: `(price, size)`, normalised
/// as [`Quote`] documents (empty: `(None, None)`).
pub fn book_side(px: Option<Decimal>, size: Option<Decimal>) -> (Option<Decimal>, Option<Decimal>) {
    match (px, size) {
        (None, _) => (None, None),
        (Some(p), s) if p.is_zero() && s.is_none_or(|s| s.is_zero()) => (None, None),
        (p, s) => (p, s),
    }
}

impl Quote {
    /// A quote with both sides given as `(price, size)`, each normalised by
    /// [`book_side`].
    pub fn new(
        symbol: Symbol,
        bid: (Option<Decimal>, Option<Decimal>),
        ask: (Option<Decimal>, Option<Decimal>),
    ) -> Self {
        let (bid_px, bid_size) = book_side(bid.0, bid.1);
        let (ask_px, ask_size) = book_side(ask.0, ask.1);
        Quote {
            symbol,
            bid_px,
            bid_size,
            ask_px,
            ask_size,
        }
    }

    /// The price and size on the order's own side of the book (bid for a buy).
    pub fn near(&self, side: Side) -> (Option<Decimal>, Option<Decimal>) {
        match side {
            Side::Buy => (self.bid_px, self.bid_size),
            Side::Sell => (self.ask_px, self.ask_size),
        }
    }

    /// The price and size the order would trade against (ask for a buy).
    pub fn far(&self, side: Side) -> (Option<Decimal>, Option<Decimal>) {
        match side {
            Side::Buy => (self.ask_px, self.ask_size),
            Side::Sell => (self.bid_px, self.bid_size),
        }
    }

    /// Ask minus bid; `None` when a side is empty.
    pub fn spread(&self) -> Option<Decimal> {
        Some(self.ask_px? - self.bid_px?)
    }

    /// Midway between bid and ask; `None` when a side is empty.
    pub fn mid_price(&self) -> Option<Decimal> {
        Some((self.bid_px? + self.ask_px?) / Decimal::TWO)
    }
}

/// A print, or several prints of one symbol merged into one.
///
/// `trade_volume` and `avg_px` are `None` for a single print and hold the total
/// volume and VWAP once prints have been merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    /// The instrument.
    pub symbol: Symbol,
    /// Quantity of the newest print.
    pub last_qty: Decimal,
    /// Price of the newest print.
    pub last_px: Decimal,
    /// Total quantity over every merged print.
    pub trade_volume: Option<Decimal>,
    /// Volume-weighted average price over every merged print, 8 places.
    pub avg_px: Option<Decimal>,
}

impl Trade {
    /// A single print.
    pub fn new(symbol: Symbol, last_qty: Decimal, last_px: Decimal) -> Self {
        Trade {
            symbol,
            last_qty,
            last_px,
            trade_volume: None,
            avg_px: None,
        }
    }

    /// The volume and average price this trade stands for: its aggregate when
    /// it has one, otherwise its own print.
    fn aggregate(&self) -> (Decimal, Decimal) {
        match (self.trade_volume, self.avg_px) {
            (Some(v), Some(p)) => (v, p),
            _ => (self.last_qty, self.last_px),
        }
    }

    /// Merges a newer print (or merged trade) `b` into `self`, the rule exo
    /// fixes for conflated prints: volumes add (each side counts its
    /// `trade_volume` if it carries one, else its `last_qty`), the average is
    /// the VWAP rounded half away from zero to 8 places, and last_qty/last_px
    /// become `b`'s.
    ///
    /// Returns `false` and changes nothing when `b` is for another symbol:
    /// prints of different symbols are never merged.
    pub fn merge(&mut self, b: &Trade) -> bool {
        if !Arc::ptr_eq(&self.symbol, &b.symbol) && self.symbol != b.symbol {
            return false;
        }
        let (q1, p1) = self.aggregate();
        let (q2, p2) = b.aggregate();
        let cum = q1 + q2;
        let avg = if cum.is_zero() {
            b.last_px
        } else {
            // Checked: a notional beyond ~7.9e28 cannot be represented; the newest
            // price is then the most honest average left (never happens with real sizes).
            q1.checked_mul(p1)
                .and_then(|n1| q2.checked_mul(p2).and_then(|n2| n1.checked_add(n2)))
                .and_then(|n| n.checked_div(cum))
                .unwrap_or(b.last_px)
        };
        self.trade_volume = Some(cum);
        self.avg_px =
            Some(avg.round_dp_with_strategy(AVG_PX_PLACES, RoundingStrategy::MidpointAwayFromZero));
        self.last_qty = b.last_qty;
        self.last_px = b.last_px;
        true
    }
}

/// An execution report from the counterparty for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The order it is about.
    pub order_id: OrderId,
    /// The order's status after this execution.
    pub ord_status: OrdStatus,
    /// Quantity filled by this execution, if any.
    pub last_qty: Option<Decimal>,
    /// Price of this execution, if any.
    pub last_px: Option<Decimal>,
    /// The instrument, if the counterparty echoes it.
    pub symbol: Option<Symbol>,
    /// The side, if the counterparty echoes it.
    pub side: Option<Side>,
    /// The counterparty's own id for the order.
    pub secondary_order_id: Option<String>,
    /// The client order id sent to the counterparty.
    pub cl_ord_id: Option<String>,
    /// The counterparty's id for this execution.
    pub exec_id: Option<String>,
    /// When the execution happened, as the counterparty wrote it.
    pub transact_time: Option<String>,
    /// Execution instructions echoed by the counterparty.
    pub exec_inst: Option<String>,
    /// Quantity still open.
    pub leaves_qty: Option<Decimal>,
    /// Quantity filled so far.
    pub cum_qty: Option<Decimal>,
    /// Average fill price so far.
    pub avg_px: Option<Decimal>,
    /// Free text, e.g. a reject reason.
    pub text: Option<String>,
    /// What this report says happened (FIX ExecType, 150).
    pub exec_type: Option<ExecType>,
    /// The client order id this request replaced or canceled (FIX OrigClOrdID, 41).
    pub orig_cl_ord_id: Option<String>,
    /// The order's quantity as the counterparty holds it (FIX OrderQty, 38).
    pub order_qty: Option<Decimal>,
    /// The order's limit price as the counterparty holds it (FIX Price, 44).
    pub price: Option<Decimal>,
    /// Set when this report is an OrderCancelReject (35=9): which request was
    /// rejected, `Cancel` or `Replace` (FIX CxlRejResponseTo, 434).
    pub cxl_rej_response_to: Option<MsgType>,
}

impl Report {
    /// A report with only its order and status set.
    pub fn new(order_id: OrderId, ord_status: OrdStatus) -> Self {
        Report {
            order_id,
            ord_status,
            last_qty: None,
            last_px: None,
            symbol: None,
            side: None,
            secondary_order_id: None,
            cl_ord_id: None,
            exec_id: None,
            transact_time: None,
            exec_inst: None,
            leaves_qty: None,
            cum_qty: None,
            avg_px: None,
            text: None,
            exec_type: None,
            orig_cl_ord_id: None,
            order_qty: None,
            price: None,
            cxl_rej_response_to: None,
        }
    }
}

/// Makes a new, unique order_id: a UUIDv7, so ids sort by creation time and
/// stay unique across engines and restarts.
pub fn new_order_id() -> OrderId {
    let mut buf = uuid::Uuid::encode_buffer();
    Arc::from(&*uuid::Uuid::now_v7().simple().encode_lower(&mut buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn print(sym: &str, q: &str, p: &str) -> Trade {
        Trade::new(Arc::from(sym), d(q), d(p))
    }

    #[test]
    fn merging_two_prints_gives_volume_and_vwap() {
        let mut a = print("BTC-USD", "1", "100");
        assert!(a.merge(&print("BTC-USD", "3", "200")));
        assert_eq!(a.trade_volume, Some(d("4")));
        assert_eq!(a.avg_px, Some(d("175")));
        assert_eq!((a.last_qty, a.last_px), (d("3"), d("200")));
    }

    #[test]
    fn merging_into_an_aggregate_uses_its_volume_and_average() {
        let mut a = print("X", "1", "100");
        a.merge(&print("X", "1", "200")); // 2 @ 150
        a.merge(&print("X", "2", "300")); // (2*150 + 2*300)/4 = 225
        assert_eq!(a.trade_volume, Some(d("4")));
        assert_eq!(a.avg_px, Some(d("225")));
    }

    #[test]
    fn merging_two_aggregates_weights_both() {
        let mut a = print("X", "1", "100");
        a.merge(&print("X", "1", "200")); // 2 @ 150
        let mut b = print("X", "1", "10");
        b.merge(&print("X", "3", "30")); // 4 @ 25
        a.merge(&b); // (300 + 100) / 6
        assert_eq!(a.trade_volume, Some(d("6")));
        assert_eq!(a.avg_px, Some(d("66.66666667")));
        assert_eq!((a.last_qty, a.last_px), (d("3"), d("30")));
    }

    #[test]
    fn vwap_rounds_half_away_from_zero_to_eight_places() {
        let mut a = print("X", "1", "0.00000001");
        a.merge(&print("X", "1", "0.00000002")); // 0.000000015 -> 0.00000002
        assert_eq!(a.avg_px, Some(d("0.00000002")));
        let mut a = print("X", "2", "1");
        a.merge(&print("X", "1", "2")); // 4/3
        assert_eq!(a.avg_px, Some(d("1.33333333")));
    }

    #[test]
    fn prints_of_another_symbol_are_not_merged() {
        let mut a = print("X", "1", "100");
        assert!(!a.merge(&print("Y", "1", "200")));
        assert_eq!(a, print("X", "1", "100"));
    }

    #[test]
    fn quote_sides_spread_and_mid() {
        let q = Quote::new(
            Arc::from("X"),
            (Some(d("99")), Some(d("1"))),
            (Some(d("101")), Some(d("2"))),
        );
        assert_eq!(q.far(Side::Buy), (Some(d("101")), Some(d("2"))));
        assert_eq!(q.near(Side::Buy), (Some(d("99")), Some(d("1"))));
        assert_eq!(q.far(Side::Sell), (Some(d("99")), Some(d("1"))));
        assert_eq!(q.spread(), Some(d("2")));
        assert_eq!(q.mid_price(), Some(d("100")));
    }

    #[test]
    fn an_empty_side_is_none_and_has_no_spread_or_mid() {
        let q = Quote::new(
            Arc::from("X"),
            (Some(d("0.0214")), Some(d("10"))),
            (None, None),
        );
        assert_eq!((q.ask_px, q.ask_size), (None, None));
        assert_eq!(q.far(Side::Buy), (None, None));
        assert_eq!(q.spread(), None);
        assert_eq!(q.mid_price(), None);
        // Price 0 with no or zero size is an empty side; a size without a price is dropped.
        assert_eq!(book_side(Some(d("0")), None), (None, None));
        assert_eq!(book_side(Some(d("0")), Some(d("0"))), (None, None));
        assert_eq!(book_side(None, Some(d("5"))), (None, None));
        assert_eq!(book_side(Some(d("7")), None), (Some(d("7")), None));
    }

    #[test]
    fn names_parse_case_insensitively() {
        assert_eq!("buy".parse::<Side>(), Ok(Side::Buy));
        assert_eq!(
            "partially_filled".parse::<OrdStatus>(),
            Ok(OrdStatus::PartiallyFilled)
        );
        assert!("hold".parse::<Side>().unwrap_err().contains("BUY, SELL"));
    }

    #[test]
    fn fix_values_round_trip() {
        for &e in ExecType::ALL {
            assert_eq!(ExecType::from_fix(e.fix()), Ok(e));
        }
        for &s in OrdStatus::ALL {
            assert_eq!(OrdStatus::from_fix(s.fix()), Ok(s));
        }
        assert_eq!(ExecType::Trade.fix(), 'F');
        assert_eq!(OrdStatus::PendingNew.fix(), 'A');
        assert!(ExecType::from_fix('Z')
            .unwrap_err()
            .contains("ExecType(150)"));
    }

    #[test]
    fn order_ids_are_unique() {
        let a = new_order_id();
        let b = new_order_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }
}
