//! Exact decimals across the boundary: Python `Decimal`, `str` or `int` in,
//! `decimal.Decimal` out, through PyO3's `rust_decimal` conversion. What exo
//! adds is the refusal of floats and bools (not exact, not numbers) and
//! errors that name the field.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString, PyType};
use rust_decimal::Decimal;

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Reads an exact decimal from a Python `Decimal`, `str` or `int`.
pub fn to_decimal(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Decimal> {
    if obj.is_instance_of::<PyFloat>() {
        return Err(PyTypeError::new_err(format!(
            "{field}: float {} is not exact; pass a Decimal, str or int (e.g. Decimal('{}') or '{}')",
            obj.repr()?,
            obj.str()?,
            obj.str()?
        )));
    }
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{field}: bool is not a number; pass a Decimal, str or int"
        )));
    }
    let exact = obj.is_instance_of::<PyString>()
        || obj.is_instance_of::<PyInt>()
        || obj.is_instance(DECIMAL.import(obj.py(), "decimal", "Decimal")?)?;
    if !exact {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a Decimal, str or int, got {}",
            obj.get_type().name()?
        )));
    }
    obj.extract::<Decimal>().map_err(|_| {
        PyValueError::new_err(format!(
            "{field}: {} is not a finite decimal number (expected e.g. '0.5')",
            obj.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })
}

/// Reads an optional exact decimal (`None` stays `None`).
pub fn to_opt_decimal(obj: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Option<Decimal>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => to_decimal(o, field).map(Some),
    }
}

/// For messages: the decimal as text.
pub fn show(d: Decimal) -> String {
    d.normalize().to_string()
}
