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

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `parse_decimal(text) -> Decimal`: a positive price or quantity in exo's one
/// grammar (`exo_core::decimal`), exactly; `ValueError` says which rule it breaks.
#[pyfunction]
fn parse_decimal<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let d = exo_core::parse_decimal(text).map_err(|e| PyValueError::new_err(e.to_string()))?;
    decimal::to_py(py, d)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<market::Side>()?;
    m.add_class::<market::MsgType>()?;
    m.add_class::<market::OrdStatus>()?;
    m.add_class::<market::PyQuote>()?;
    m.add_class::<market::PyTrade>()?;
    m.add_class::<market::PyOrder>()?;
    m.add_class::<market::PyReport>()?;
    m.add_class::<update::PyUpdate>()?;
    m.add_class::<queue::PyConflatingQueue>()?;
    m.add_class::<engine::EngineCore>()?;
    m.add_class::<feeds::PyFeed>()?;
    m.add_function(wrap_pyfunction!(parse_decimal, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
