//! PyO3 glue for exo: conversions, classes and the GIL hand-over. Logic lives
//! in the `exo-core` crate; this crate converts and delegates.
//!
//! - [`decimal`]: exact decimals in and out (floats and bools refused).
//! - [`market`]: Side, MsgType, OrdStatus, Quote, Trade, Order, Report.
//! - [`update`]: the Update handed to delegates, converted lazily.
//! - [`queue`]: ConflatingQueue over Python keys and values.
//! - [`engine`]: LoopRunner, the core Runner driven from the asyncio loop
//!   (the GIL hand-over), and `new_order_id`.
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
fn parse_decimal(text: &str) -> PyResult<rust_decimal::Decimal> {
    exo_core::parse_decimal(text).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Turns Rust logging off (registered with `atexit`).
#[pyfunction]
fn quiet_rust_logging() {
    log::set_max_level(log::LevelFilter::Off);
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Rust `log` records go to Python's logging, under their target's name
    // (feeds log as `exo.feeds.<venue>`). Loggers are cached, levels are
    // not, so logging configured later still applies. A process that has
    // another Rust logger installed keeps it.
    let _ = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Loggers)?.install();
    // A tokio thread that logs attaches to the interpreter; once Python is
    // exiting it must not (an engine left running could be caught mid-way
    // by finalization), so logging from Rust ends at exit.
    let quiet = wrap_pyfunction!(quiet_rust_logging, m)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (quiet,))?;
    m.add_class::<market::Side>()?;
    m.add_class::<market::MsgType>()?;
    m.add_class::<market::OrdStatus>()?;
    m.add_class::<market::PyQuote>()?;
    m.add_class::<market::PyTrade>()?;
    m.add_class::<market::PyOrder>()?;
    m.add_class::<market::PyReport>()?;
    m.add_class::<update::PyUpdate>()?;
    m.add_class::<queue::PyConflatingQueue>()?;
    m.add_class::<engine::LoopRunner>()?;
    // The name exo.engine and exo.journal knew it by, until they switch.
    m.add("EngineCore", m.getattr("LoopRunner")?)?;
    m.add_function(wrap_pyfunction!(engine::new_order_id, m)?)?;
    m.add_class::<feeds::PyFeed>()?;
    m.add_function(wrap_pyfunction!(parse_decimal, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
