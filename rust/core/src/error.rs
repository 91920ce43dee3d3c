//! Errors the dispatcher and the runner report. Each says what was wrong and
//! what was expected, so the message can go straight to the user; its
//! [`Kind`] says whether it is a rule violation (for the error callback) or a
//! malformed or untimely instruction (for the caller, as an exception).

use crate::market::{MsgType, OrderId, Side, Symbol};

/// A violation of the dispatcher's rules. None of these stops the engine: the
/// offending message is refused and every other order carries on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// A NEW arrived for an order_id that is already live.
    #[error("order {0} is already live: NEW must create a new order; send CANCEL or REPLACE to change it")]
    AlreadyLive(OrderId),
    /// A CANCEL or REPLACE arrived for an order_id that is not live.
    #[error("unknown order {order_id}: {msg_type} is only accepted for a live order; an unknown order_id must arrive as NEW")]
    UnknownOrder {
        /// The order_id that was not found.
        order_id: OrderId,
        /// What arrived for it.
        msg_type: MsgType,
    },
    /// A CANCEL or REPLACE tried to change the side of a live order.
    #[error("{msg_type} for order {order_id} has side {got}, but the order is {expected}: side never changes")]
    SideChanged {
        /// The order concerned.
        order_id: OrderId,
        /// What arrived.
        msg_type: MsgType,
        /// The side the order was created with.
        expected: Side,
        /// The side in the instruction.
        got: Side,
    },
    /// A CANCEL or REPLACE tried to change the symbol of a live order.
    #[error("{msg_type} for order {order_id} has symbol {got}, but the order is for {expected}: symbol never changes")]
    SymbolChanged {
        /// The order concerned.
        order_id: OrderId,
        /// What arrived.
        msg_type: MsgType,
        /// The symbol the order was created with.
        expected: Symbol,
        /// The symbol in the instruction.
        got: Symbol,
    },
    /// An execution report arrived for an order_id that is not live.
    #[error("report for unknown order {0}: reports are only accepted for live orders")]
    UnknownReport(OrderId),
    /// An instruction without a symbol.
    #[error("order.symbol is empty: set it, e.g. 'BTC-USD'")]
    EmptySymbol,
    /// A CANCEL or REPLACE that does not say which order it is for.
    #[error("a {0} needs the order_id of a live order (order.order_id is None)")]
    NoOrderId(MsgType),
    /// The engine is stopping: it takes no more of these (instructions, reports).
    #[error("the engine is stopping: no more {0}")]
    Stopping(&'static str),
}

/// What kind of refusal a [`DispatchError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A dispatcher rule said no: reported to the error callback; nothing
    /// else is affected.
    Rule,
    /// The instruction itself is malformed: the caller's mistake.
    Invalid,
    /// The engine is stopping.
    Stopping,
}

impl DispatchError {
    /// The order_id the error is about (every rule violation names one).
    pub fn order_id(&self) -> Option<&OrderId> {
        match self {
            DispatchError::AlreadyLive(id) | DispatchError::UnknownReport(id) => Some(id),
            DispatchError::UnknownOrder { order_id, .. }
            | DispatchError::SideChanged { order_id, .. }
            | DispatchError::SymbolChanged { order_id, .. } => Some(order_id),
            DispatchError::EmptySymbol
            | DispatchError::NoOrderId(_)
            | DispatchError::Stopping(_) => None,
        }
    }

    /// Whether this is a rule violation, a malformed instruction or a
    /// refusal because the engine is stopping.
    pub fn kind(&self) -> Kind {
        match self {
            DispatchError::EmptySymbol | DispatchError::NoOrderId(_) => Kind::Invalid,
            DispatchError::Stopping(_) => Kind::Stopping,
            _ => Kind::Rule,
        }
    }
}
