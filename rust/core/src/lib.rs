//! exo's engine core, in pure Rust (no Python here: `cargo test` and
//! `cargo bench` run on this crate alone).
//!
//! The map, one line per module:
//! - [`market`]: Side, MsgType, OrdStatus, ExecType, Quote, Trade (and how prints merge), Report.
//! - [`queue`]: ConflatingQueue, a keyed queue where a key keeps its place until popped.
//! - [`update`]: Update, the merged snapshot handed to a delegate, and the merge rules.
//! - [`dispatcher`]: Dispatcher, owner of every live order and of the ready list.
//! - [`process`]: OrderProcess, one live order's hand-over state (Idle, Ready, Running).
//! - [`engine`]: the Delegate trait and a tokio runner handing Updates to Rust delegates.
//! - [`feed`]: market-data feeds (Coinbase, Binance, BitMEX, replay) parsed in Rust.
//! - [`error`]: the errors the dispatcher reports.

pub mod dispatcher;
pub mod engine;
pub mod error;
pub mod feed;
pub mod market;
pub mod process;
pub mod queue;
pub mod update;

pub use dispatcher::{Completion, Dispatcher, HandOver, NewOrder};
pub use engine::{Delegate, Engine};
pub use error::DispatchError;
pub use market::{
    new_order_id, ExecType, MsgType, OrdStatus, OrderId, Quote, Report, Side, Symbol, Trade,
};
pub use process::{OrderProcess, State};
pub use queue::ConflatingQueue;
pub use update::Update;
