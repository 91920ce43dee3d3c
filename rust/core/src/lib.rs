//! exo's engine core, in pure Rust (no Python here: `cargo test` and
//! `cargo bench` run on this crate alone).
//!
//! The map, one line per module:
//! - [`market`]: Side, MsgType, OrdStatus, ExecType, Quote, Trade (and how prints merge), Report.
//! - [`queue`]: ConflatingQueue, a keyed queue where a key keeps its place until popped.
//! - [`decimal`]: the one strict grammar for prices and quantities users send.
//! - [`update`]: Update, everything merged for one order since its last hand-over, and the merge rules.
//! - `tape`: one symbol's market data, conflated once for all of its orders (each keeps its marks).
//! - [`dispatcher`]: Dispatcher, owner of every live order and of the ready list.
//! - [`process`]: OrderProcess, one live order's hand-over state (Idle, Ready, Running).
//! - [`delegate`]: the Delegate trait for Rust code and the task that drives it.
//! - [`runner`]: Runner, the hand-over loop (batches, idle timer, feeds, the rules on
//!   what an action came to), driven by a tokio task for Rust delegates or by the bindings.
//! - [`feed`]: market-data feeds (Coinbase, Binance, BitMEX, replay) parsed in Rust.
//! - [`error`]: the errors the dispatcher and the runner report.
//! - [`backoff`]: exponential backoff with jitter for retries.
//! - [`idle`]: the idle strategy of a polling driver (spin, yield, park), adapted to how fast work arrives.

pub mod backoff;
pub mod decimal;
pub mod delegate;
pub mod dispatcher;
pub mod error;
pub mod feed;
pub mod idle;
pub mod market;
pub mod process;
pub mod queue;
pub mod runner;
mod tape;
pub mod update;

pub use decimal::{parse_decimal, DecimalError};
pub use delegate::{BoxDelegate, Delegate, RustRunner};
pub use dispatcher::{Completion, Dispatcher, HandOver, Lent, NewOrder};
pub use error::{DispatchError, Kind};
pub use idle::{Idle, IdleStrategy};
pub use market::{
    new_order_id, ExecType, MsgType, OrdStatus, OrderId, Quote, Report, Side, Symbol, Trade,
};
pub use process::{OrderProcess, State};
pub use queue::ConflatingQueue;
pub use runner::{Handler, Identity, Runner, Verdict};
pub use update::Update;
