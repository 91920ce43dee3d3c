//! Errors the dispatcher reports. Each names the order and says what was
//! expected, so the message can go straight to a user's error callback.

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
}

impl DispatchError {
    /// The order_id the error is about.
    pub fn order_id(&self) -> &OrderId {
        match self {
            DispatchError::AlreadyLive(id) | DispatchError::UnknownReport(id) => id,
            DispatchError::UnknownOrder { order_id, .. }
            | DispatchError::SideChanged { order_id, .. }
            | DispatchError::SymbolChanged { order_id, .. } => order_id,
        }
    }
}
