//! Python classes for the market vocabulary: Side, MsgType, OrdStatus, Quote,
//! Trade, Order and Report. Decimal fields are held as rust_decimal and turned
//! into `decimal.Decimal` only when read.

use crate::decimal::{show, to_decimal, to_opt_decimal};
use exo_core::market as m;
use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::sync::Arc;

macro_rules! py_enum {
    ($py:ident, $core:ty, $label:literal, $($v:ident => $cv:ident),+ $(,)?) => {
        #[doc = concat!("Python face of ", $label, ".")]
        #[pyclass(eq, eq_int, frozen, hash, module = "exo._core")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        pub enum $py { $($v),+ }

        impl From<$py> for $core {
            fn from(v: $py) -> $core { match v { $($py::$v => <$core>::$cv),+ } }
        }
        impl From<$core> for $py {
            fn from(v: $core) -> $py { match v { $(<$core>::$cv => $py::$v),+ } }
        }

        #[pymethods]
        impl $py {
            /// The upper-case name, e.g. `BUY`.
            #[getter]
            fn name(&self) -> &'static str { <$core>::from(*self).name() }
            fn __str__(&self) -> &'static str { self.name() }
            fn __repr__(&self) -> String { format!(concat!(stringify!($py), ".{}"), self.name()) }
            /// Pickles by name.
            fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyAny>, &'static str))> {
                let py = slf.py();
                Ok((py.import("builtins")?.getattr("getattr")?, (slf.as_any().get_type().into_any(), slf.get().name())))
            }
            /// Parses a name case-insensitively (`Side.parse("buy")`).
            #[staticmethod]
            fn parse(text: &str) -> PyResult<Self> {
                text.parse::<$core>().map(Self::from).map_err(PyValueError::new_err)
            }
        }

        impl $py {
            /// Accepts the enum itself or its name as a string (any case).
            pub fn arg(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<$core> {
                if let Ok(v) = obj.cast::<$py>() {
                    return Ok((*v.get()).into());
                }
                if let Ok(s) = obj.cast::<PyString>() {
                    return s.to_cow()?.parse::<$core>()
                        .map_err(|e| PyValueError::new_err(format!("{field}: {e}")));
                }
                Err(PyTypeError::new_err(format!(
                    concat!("{}: expected ", stringify!($py), " or str, got {}"),
                    field, obj.get_type().name()?
                )))
            }
        }
    };
}

py_enum!(Side, m::Side, "Side", BUY => Buy, SELL => Sell);
py_enum!(MsgType, m::MsgType, "MsgType", NEW => New, CANCEL => Cancel, REPLACE => Replace);
py_enum!(OrdStatus, m::OrdStatus, "OrdStatus",
    NEW => New, PARTIALLY_FILLED => PartiallyFilled, FILLED => Filled, CANCELED => Canceled,
    PENDING_CANCEL => PendingCancel, REJECTED => Rejected, PENDING_NEW => PendingNew,
    EXPIRED => Expired, PENDING_REPLACE => PendingReplace);

fn symbol_arg(symbol: &str) -> PyResult<m::Symbol> {
    if symbol.trim().is_empty() {
        return Err(PyValueError::new_err(
            "symbol: must be a non-empty string, e.g. 'BTC-USD'",
        ));
    }
    Ok(Arc::from(symbol))
}

/// Best bid and offer for a symbol: `Quote(symbol, bid_px, bid_size, ask_px, ask_size)`.
///
/// Prices and sizes are `decimal.Decimal` (pass a Decimal, str or int; a
/// float is refused as inexact). A side of the book that is empty is `None`,
/// never 0: a thin product may have bids and no asks, and an idle product's
/// first ticker has neither. The feeds deliver an empty side as `None` price
/// and `None` size (a venue's `null`, `""`, missing field, or price 0 with no
/// size); a price sent without its size keeps the price with a `None` size.
/// `near`/`far` and their sizes are then `None` for that side, and `spread`
/// and `mid_price` are `None` unless both prices are there.
#[pyclass(frozen, eq, module = "exo._core", name = "Quote")]
#[derive(Clone, PartialEq)]
pub struct PyQuote {
    pub inner: m::Quote,
}

#[pymethods]
impl PyQuote {
    #[new]
    fn new(
        symbol: &str,
        bid_px: &Bound<'_, PyAny>,
        bid_size: &Bound<'_, PyAny>,
        ask_px: &Bound<'_, PyAny>,
        ask_size: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        Ok(PyQuote {
            inner: m::Quote {
                symbol: symbol_arg(symbol)?,
                bid_px: to_opt_decimal(Some(bid_px), "bid_px")?,
                bid_size: to_opt_decimal(Some(bid_size), "bid_size")?,
                ask_px: to_opt_decimal(Some(ask_px), "ask_px")?,
                ask_size: to_opt_decimal(Some(ask_size), "ask_size")?,
            },
        })
    }

    #[getter]
    fn symbol(&self) -> &str {
        &self.inner.symbol
    }
    /// Best bid price, or None when the bid side is empty.
    #[getter]
    fn bid_px<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.bid_px.map(|d| d.into_pyobject(py)).transpose()
    }
    /// Size at the best bid, or None.
    #[getter]
    fn bid_size<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.bid_size.map(|d| d.into_pyobject(py)).transpose()
    }
    /// Best ask price, or None when the ask side is empty.
    #[getter]
    fn ask_px<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.ask_px.map(|d| d.into_pyobject(py)).transpose()
    }
    /// Size at the best ask, or None.
    #[getter]
    fn ask_size<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.ask_size.map(|d| d.into_pyobject(py)).transpose()
    }
    /// Price on the order's own side (the bid for a buy), or None if empty.
    fn near<'py>(
        &self,
        py: Python<'py>,
        side: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .near(Side::arg(side, "side")?)
            .0
            .map(|d| d.into_pyobject(py))
            .transpose()
    }
    /// Size on the order's own side, or None.
    fn near_size<'py>(
        &self,
        py: Python<'py>,
        side: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .near(Side::arg(side, "side")?)
            .1
            .map(|d| d.into_pyobject(py))
            .transpose()
    }
    /// Price the order would trade against (the ask for a buy), or None if empty.
    fn far<'py>(
        &self,
        py: Python<'py>,
        side: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .far(Side::arg(side, "side")?)
            .0
            .map(|d| d.into_pyobject(py))
            .transpose()
    }
    /// Size the order would trade against, or None.
    fn far_size<'py>(
        &self,
        py: Python<'py>,
        side: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .far(Side::arg(side, "side")?)
            .1
            .map(|d| d.into_pyobject(py))
            .transpose()
    }
    /// Ask minus bid, or None when a side is empty.
    #[getter]
    fn spread<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.spread().map(|d| d.into_pyobject(py)).transpose()
    }
    /// Midway between bid and ask, or None when a side is empty.
    #[getter]
    fn mid_price<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .mid_price()
            .map(|d| d.into_pyobject(py))
            .transpose()
    }
    /// Pickles exactly, decimals as text (None stays None).
    #[allow(clippy::type_complexity)]
    fn __getnewargs__(
        &self,
    ) -> (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        let q = &self.inner;
        let t = |d: Option<rust_decimal::Decimal>| d.map(|d| d.to_string());
        (
            q.symbol.to_string(),
            t(q.bid_px),
            t(q.bid_size),
            t(q.ask_px),
            t(q.ask_size),
        )
    }
    fn __repr__(&self) -> String {
        let q = &self.inner;
        let r = |d: Option<rust_decimal::Decimal>| match d {
            Some(d) => format!("'{}'", show(d)),
            None => "None".to_string(),
        };
        format!(
            "Quote(symbol='{}', bid_px={}, bid_size={}, ask_px={}, ask_size={})",
            &*q.symbol,
            r(q.bid_px),
            r(q.bid_size),
            r(q.ask_px),
            r(q.ask_size)
        )
    }
}

/// A print, or several prints of one symbol merged (volume and VWAP).
#[pyclass(frozen, eq, module = "exo._core", name = "Trade")]
#[derive(Clone, PartialEq)]
pub struct PyTrade {
    pub inner: m::Trade,
}

#[pymethods]
impl PyTrade {
    #[new]
    #[pyo3(signature = (symbol, last_qty, last_px, trade_volume=None, avg_px=None))]
    fn new(
        symbol: &str,
        last_qty: &Bound<'_, PyAny>,
        last_px: &Bound<'_, PyAny>,
        trade_volume: Option<&Bound<'_, PyAny>>,
        avg_px: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let trade_volume = to_opt_decimal(trade_volume, "trade_volume")?;
        let avg_px = to_opt_decimal(avg_px, "avg_px")?;
        if trade_volume.is_some() != avg_px.is_some() {
            return Err(PyValueError::new_err(
                "trade_volume and avg_px go together: give both (a merged trade) or neither (one print)",
            ));
        }
        Ok(PyTrade {
            inner: m::Trade {
                symbol: symbol_arg(symbol)?,
                last_qty: to_decimal(last_qty, "last_qty")?,
                last_px: to_decimal(last_px, "last_px")?,
                trade_volume,
                avg_px,
            },
        })
    }

    #[getter]
    fn symbol(&self) -> &str {
        &self.inner.symbol
    }
    #[getter]
    fn last_qty<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.inner.last_qty.into_pyobject(py)
    }
    #[getter]
    fn last_px<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.inner.last_px.into_pyobject(py)
    }
    /// Total quantity over the merged prints (None for a single print).
    #[getter]
    fn trade_volume<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .trade_volume
            .map(|d| d.into_pyobject(py))
            .transpose()
    }
    /// VWAP over the merged prints, 8 places (None for a single print).
    #[getter]
    fn avg_px<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.avg_px.map(|d| d.into_pyobject(py)).transpose()
    }
    /// This trade with a newer one merged in, as the engine merges prints.
    fn merge(&self, newer: &PyTrade) -> PyResult<PyTrade> {
        let mut merged = self.inner.clone();
        if !merged.merge(&newer.inner) {
            return Err(PyValueError::new_err(format!(
                "cannot merge a {} print into a {} trade: prints of different symbols are never merged",
                newer.inner.symbol, self.inner.symbol
            )));
        }
        Ok(PyTrade { inner: merged })
    }
    /// Pickles exactly, decimals as text.
    fn __getnewargs__(&self) -> (String, String, String, Option<String>, Option<String>) {
        let t = &self.inner;
        (
            t.symbol.to_string(),
            t.last_qty.to_string(),
            t.last_px.to_string(),
            t.trade_volume.map(|d| d.to_string()),
            t.avg_px.map(|d| d.to_string()),
        )
    }
    fn __repr__(&self) -> String {
        let t = &self.inner;
        let agg = match (t.trade_volume, t.avg_px) {
            (Some(v), Some(p)) => format!(", trade_volume='{}', avg_px='{}'", show(v), show(p)),
            _ => String::new(),
        };
        format!(
            "Trade(symbol='{}', last_qty='{}', last_px='{}'{agg})",
            &*t.symbol,
            show(t.last_qty),
            show(t.last_px)
        )
    }
}

/// The identity of an order instruction. `exo.Order` (Python) subclasses this
/// and carries the user's own fields; the engine reads only the identity and
/// hands the very same object to the delegate.
#[pyclass(subclass, module = "exo._core", name = "Order")]
pub struct PyOrder {
    pub order_id: Option<m::OrderId>,
    pub msg_type: m::MsgType,
    pub side: m::Side,
    pub symbol: m::Symbol,
}

#[pymethods]
impl PyOrder {
    /// Identity is set by `exo.Order.__init__`; accepting any arguments here
    /// lets subclasses choose their own constructor signature.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyAny>, _kwargs: Option<&Bound<'_, PyAny>>) -> Self {
        PyOrder {
            order_id: None,
            msg_type: m::MsgType::New,
            side: m::Side::Buy,
            symbol: Arc::from(""),
        }
    }

    /// Assigned by the engine when a NEW is submitted.
    #[getter]
    fn order_id(&self) -> Option<&str> {
        self.order_id.as_deref()
    }
    #[setter]
    fn set_order_id(&mut self, value: Option<&str>) -> PyResult<()> {
        self.order_id = match value {
            Some(v) if v.trim().is_empty() => {
                return Err(PyValueError::new_err(
                    "order_id: must be a non-empty string or None",
                ))
            }
            v => v.map(Arc::from),
        };
        Ok(())
    }
    /// NEW, CANCEL or REPLACE.
    #[getter]
    fn msg_type(&self) -> MsgType {
        self.msg_type.into()
    }
    #[setter]
    fn set_msg_type(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.msg_type = MsgType::arg(value, "msg_type")?;
        Ok(())
    }
    /// BUY or SELL; never changes for the life of an order.
    #[getter]
    fn side(&self) -> Side {
        self.side.into()
    }
    #[setter]
    fn set_side(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.side = Side::arg(value, "side")?;
        Ok(())
    }
    /// The instrument; never changes for the life of an order.
    #[getter]
    fn symbol(&self) -> &str {
        &self.symbol
    }
    #[setter]
    fn set_symbol(&mut self, value: &str) -> PyResult<()> {
        self.symbol = symbol_arg(value)?;
        Ok(())
    }
}

/// An execution report from the counterparty for one order. Extra keyword
/// arguments are kept and readable as attributes.
#[pyclass(frozen, subclass, module = "exo._core", name = "Report")]
pub struct PyReport {
    pub inner: m::Report,
    extra: Option<Py<PyDict>>,
}

#[pymethods]
impl PyReport {
    #[new]
    #[pyo3(signature = (order_id, ord_status, last_qty=None, last_px=None, *, symbol=None, side=None,
        secondary_order_id=None, cl_ord_id=None, exec_id=None, transact_time=None, exec_inst=None,
        leaves_qty=None, cum_qty=None, avg_px=None, text=None, **extra))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        order_id: &str,
        ord_status: &Bound<'_, PyAny>,
        last_qty: Option<&Bound<'_, PyAny>>,
        last_px: Option<&Bound<'_, PyAny>>,
        symbol: Option<&str>,
        side: Option<&Bound<'_, PyAny>>,
        secondary_order_id: Option<String>,
        cl_ord_id: Option<String>,
        exec_id: Option<String>,
        transact_time: Option<&Bound<'_, PyAny>>,
        exec_inst: Option<String>,
        leaves_qty: Option<&Bound<'_, PyAny>>,
        cum_qty: Option<&Bound<'_, PyAny>>,
        avg_px: Option<&Bound<'_, PyAny>>,
        text: Option<String>,
        extra: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        if order_id.trim().is_empty() {
            return Err(PyValueError::new_err(
                "order_id: a report must name the order it is for",
            ));
        }
        let transact_time = match transact_time {
            None => None,
            Some(t) if t.is_none() => None,
            Some(t) if t.is_instance_of::<PyString>() => Some(t.extract::<String>()?),
            // datetime and friends: kept as ISO-8601 text.
            Some(t) if t.hasattr("isoformat")? => Some(t.call_method0("isoformat")?.extract()?),
            Some(t) => {
                return Err(PyTypeError::new_err(format!(
                    "transact_time: expected str or datetime, got {}",
                    t.get_type().name()?
                )))
            }
        };
        Ok(PyReport {
            inner: m::Report {
                order_id: Arc::from(order_id),
                ord_status: OrdStatus::arg(ord_status, "ord_status")?,
                last_qty: to_opt_decimal(last_qty, "last_qty")?,
                last_px: to_opt_decimal(last_px, "last_px")?,
                symbol: symbol.map(symbol_arg).transpose()?,
                side: side
                    .filter(|s| !s.is_none())
                    .map(|s| Side::arg(s, "side"))
                    .transpose()?,
                secondary_order_id,
                cl_ord_id,
                exec_id,
                transact_time,
                exec_inst,
                leaves_qty: to_opt_decimal(leaves_qty, "leaves_qty")?,
                cum_qty: to_opt_decimal(cum_qty, "cum_qty")?,
                avg_px: to_opt_decimal(avg_px, "avg_px")?,
                text,
            },
            extra: extra.filter(|d| !d.is_empty()).map(Bound::unbind),
        })
    }

    #[getter]
    fn order_id(&self) -> &str {
        &self.inner.order_id
    }
    #[getter]
    fn ord_status(&self) -> OrdStatus {
        self.inner.ord_status.into()
    }
    #[getter]
    fn last_qty<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.last_qty.map(|d| d.into_pyobject(py)).transpose()
    }
    #[getter]
    fn last_px<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.last_px.map(|d| d.into_pyobject(py)).transpose()
    }
    #[getter]
    fn symbol(&self) -> Option<&str> {
        self.inner.symbol.as_deref()
    }
    #[getter]
    fn side(&self) -> Option<Side> {
        self.inner.side.map(Side::from)
    }
    #[getter]
    fn secondary_order_id(&self) -> Option<&str> {
        self.inner.secondary_order_id.as_deref()
    }
    #[getter]
    fn cl_ord_id(&self) -> Option<&str> {
        self.inner.cl_ord_id.as_deref()
    }
    #[getter]
    fn exec_id(&self) -> Option<&str> {
        self.inner.exec_id.as_deref()
    }
    /// ISO-8601 text (a datetime given here is stored as its isoformat()).
    #[getter]
    fn transact_time(&self) -> Option<&str> {
        self.inner.transact_time.as_deref()
    }
    #[getter]
    fn exec_inst(&self) -> Option<&str> {
        self.inner.exec_inst.as_deref()
    }
    #[getter]
    fn leaves_qty<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .leaves_qty
            .map(|d| d.into_pyobject(py))
            .transpose()
    }
    #[getter]
    fn cum_qty<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.cum_qty.map(|d| d.into_pyobject(py)).transpose()
    }
    #[getter]
    fn avg_px<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.avg_px.map(|d| d.into_pyobject(py)).transpose()
    }
    #[getter]
    fn text(&self) -> Option<&str> {
        self.inner.text.as_deref()
    }
    /// The extra keyword arguments given at construction.
    #[getter]
    fn extra<'py>(&self, py: Python<'py>) -> Bound<'py, PyDict> {
        match &self.extra {
            Some(d) => d.bind(py).copy().unwrap_or_else(|_| PyDict::new(py)),
            None => PyDict::new(py),
        }
    }
    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        if let Some(d) = &self.extra {
            if let Some(v) = d.bind(py).get_item(name)? {
                return Ok(v);
            }
        }
        Err(PyAttributeError::new_err(format!(
            "'Report' object has no attribute '{name}'"
        )))
    }
    /// Pickles exactly: positional and keyword arguments for `__new__`.
    fn __getnewargs_ex__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
        let r = &self.inner;
        let dec = |d: Option<rust_decimal::Decimal>| d.map(|d| d.to_string());
        let args = (
            r.order_id.to_string(),
            r.ord_status.name(),
            dec(r.last_qty),
            dec(r.last_px),
        )
            .into_pyobject(py)?
            .into_any();
        let kw = match &self.extra {
            Some(d) => d.bind(py).copy()?,
            None => PyDict::new(py),
        };
        kw.set_item("symbol", r.symbol.as_deref())?;
        kw.set_item("side", r.side.map(|s| s.name()))?;
        kw.set_item("secondary_order_id", &r.secondary_order_id)?;
        kw.set_item("cl_ord_id", &r.cl_ord_id)?;
        kw.set_item("exec_id", &r.exec_id)?;
        kw.set_item("transact_time", &r.transact_time)?;
        kw.set_item("exec_inst", &r.exec_inst)?;
        kw.set_item("leaves_qty", dec(r.leaves_qty))?;
        kw.set_item("cum_qty", dec(r.cum_qty))?;
        kw.set_item("avg_px", dec(r.avg_px))?;
        kw.set_item("text", &r.text)?;
        Ok((args, kw))
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<PyReport>() else {
            return Ok(false);
        };
        let py = other.py();
        let other = other.get();
        if self.inner != other.inner {
            return Ok(false);
        }
        let a = self.extra(py);
        let b = other.extra(py);
        a.eq(b)
    }
    fn __repr__(&self) -> String {
        let r = &self.inner;
        let mut s = format!(
            "Report(order_id='{}', ord_status={}",
            &*r.order_id, r.ord_status
        );
        if let (Some(q), Some(p)) = (r.last_qty, r.last_px) {
            s.push_str(&format!(", last_qty='{}', last_px='{}'", show(q), show(p)));
        }
        s.push(')');
        s
    }
}
