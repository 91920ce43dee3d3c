//! PyO3 glue for exo: conversions, classes and the GIL hand-over. Logic lives
//! in the `exo-core` crate; this crate converts and delegates.
//!
//! - [`decimal`]: exact decimals in and out (floats refused).
//! - [`market`]: Side, MsgType, OrdStatus, Quote, Trade, Order, Report.
//! - [`update`]: the Update handed to delegates, converted lazily.
//! - [`queue`]: ConflatingQueue over Python keys and values.
//! - [`engine`]: EngineCore, the dispatcher driven from the asyncio loop.
//! - [`feeds`]: feed configurations the engine starts on its runtime.

mod decimal;
mod engine;
mod feeds;
mod market;
mod queue;
mod update;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<market::Side>()?;
    m.add_class::<market::MsgType>()?;
    m.add_class::<market::OrdStatus>()?;
    m.add_class::<market::ExecType>()?;
    m.add_class::<market::PyQuote>()?;
    m.add_class::<market::PyTrade>()?;
    m.add_class::<market::PyOrder>()?;
    m.add_class::<market::PyReport>()?;
    m.add_class::<update::PyUpdate>()?;
    m.add_class::<queue::PyConflatingQueue>()?;
    m.add_class::<engine::EngineCore>()?;
    m.add_class::<feeds::PyFeed>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
