//! Exact decimals across the boundary: Python `Decimal`, `str` or `int` in,
//! `decimal.Decimal` out. Floats are refused: they are not exact.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString, PyType};
use rust_decimal::Decimal;

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn decimal_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECIMAL.import(py, "decimal", "Decimal")
}

fn parse(text: &str, field: &str) -> PyResult<Decimal> {
    let t = text.trim();
    Decimal::from_str_exact(t)
        .or_else(|_| Decimal::from_scientific(t))
        .map_err(|_| {
            PyValueError::new_err(format!(
                "{field}: {text:?} is not a finite decimal number (expected e.g. '0.5')"
            ))
        })
}

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
    if let Ok(s) = obj.cast::<PyString>() {
        return parse(&s.to_cow()?, field);
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Decimal::from(i));
        }
        return parse(&obj.str()?.to_cow()?, field);
    }
    if obj.is_instance(decimal_type(obj.py())?)? {
        return parse(&obj.str()?.to_cow()?, field);
    }
    Err(PyTypeError::new_err(format!(
        "{field}: expected a Decimal, str or int, got {}",
        obj.get_type().name()?
    )))
}

/// Reads an optional exact decimal (`None` stays `None`).
pub fn to_opt_decimal(obj: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Option<Decimal>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => to_decimal(o, field).map(Some),
    }
}

/// Makes a `decimal.Decimal` (done lazily, when an attribute is read).
pub fn to_py(py: Python<'_>, d: Decimal) -> PyResult<Bound<'_, PyAny>> {
    decimal_type(py)?.call1((d.to_string(),))
}

/// Makes an optional `decimal.Decimal`.
pub fn opt_to_py(py: Python<'_>, d: Option<Decimal>) -> PyResult<Option<Bound<'_, PyAny>>> {
    d.map(|d| to_py(py, d)).transpose()
}

/// For messages: the decimal as text.
pub fn show(d: Decimal) -> String {
    d.normalize().to_string()
}
