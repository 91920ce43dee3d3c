//! The Python Update: a frozen wrapper around the core Update, converting
//! fields to Python objects only when they are read (most delegates read few).

use crate::market::{PyQuote, PyTrade};
use exo_core::{OrderId, Update};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::cell::{RefCell, UnsafeCell};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// What the core hands over for Python delegates: instructions and reports
/// are the user's own Python objects.
pub type PyCoreUpdate = Update<Py<PyAny>, Py<PyAny>>;

/// Emptied Update boxes kept for reuse, at most this many per thread.
const POOL: usize = 1024;

thread_local! {
    /// Emptied boxes of dropped Python Updates, for the next hand-overs
    /// (boxes: a hand-over swaps one for the batch's, pointers only).
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<PyCoreUpdate>>> = const { RefCell::new(Vec::new()) };
}

/// A core Update in a box of its own that goes back to a per-thread pool
/// when dropped: the hand-over swaps the batch's box for an empty one (no
/// ~300-byte copy into the Python object, no malloc per hand-over), and the
/// Python object holds just the pointer.
pub struct Boxed(Option<Box<PyCoreUpdate>>);

impl Boxed {
    /// Takes the boxed `update` out of the batch's buffer, leaving an empty
    /// box there (pointers swap; the Update does not move).
    #[inline]
    pub fn take(update: &mut Box<PyCoreUpdate>) -> Boxed {
        let mut b = SPARE
            .try_with(|s| s.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        std::mem::swap(&mut b, update);
        Boxed(Some(b))
    }
}

impl Boxed {
    /// Swaps the Updates' boxes.
    #[inline]
    fn swap(&mut self, other: &mut Box<PyCoreUpdate>) {
        if let Some(b) = self.0.as_mut() {
            std::mem::swap(b, other);
        }
    }
}

impl Deref for Boxed {
    type Target = PyCoreUpdate;
    #[inline]
    fn deref(&self) -> &PyCoreUpdate {
        // Some from take() until drop.
        self.0.as_deref().expect("a live Update")
    }
}

impl Drop for Boxed {
    fn drop(&mut self) {
        if let Some(mut b) = self.0.take() {
            // Emptied of the user's objects before the pool is touched
            // (dropping them may run their __del__). Market data stays: the
            // next take overwrites it in place.
            b.instructions.clear();
            b.reports.clear();
            let _ = SPARE.try_with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < POOL {
                    s.push(b);
                }
            });
        }
    }
}

/// What a delegate is handed: everything merged for its order since the
/// last hand-over. Freed Updates are kept for reuse (a freelist): most are
/// dropped as soon as the action returns, and the next hand-over takes one
/// back without a trip through the allocator. Better still, the hand-over
/// refills the one it made last when nothing else holds it any more
/// ([`PyUpdate::refill`]).
#[pyclass(frozen, freelist = 1024, module = "exo._core", name = "Update")]
pub struct PyUpdate {
    fields: UnsafeCell<Fields>,
}

struct Fields {
    order_id: OrderId,
    inner: Boxed,
    staleness: Option<Duration>,
}

// SAFETY: the fields are written only by `refill`, with the GIL held and
// when the caller's reference is the object's only one (no other thread
// and no Python code can reach the object then); otherwise they are only
// read, as a frozen pyclass's are.
#[allow(unsafe_code)]
unsafe impl Sync for PyUpdate {}

impl PyUpdate {
    /// Wraps a core Update; `staleness` is how old its newest item was at hand-over.
    pub fn new(order_id: OrderId, inner: Boxed, staleness: Option<Duration>) -> Self {
        PyUpdate {
            fields: UnsafeCell::new(Fields {
                order_id,
                inner,
                staleness,
            }),
        }
    }

    #[inline]
    #[allow(unsafe_code)]
    fn f(&self) -> &Fields {
        // SAFETY: see `unsafe impl Sync`: no write while anyone can read.
        unsafe { &*self.fields.get() }
    }

    /// Makes `obj` the next hand-over's Update when the caller holds the
    /// only reference to it (the delegate kept none, no async action or
    /// store holds it): it gets the boxed `update` and the batch's slot gets
    /// the box it held, emptied of the user's objects. Nobody can tell it
    /// from a new object, and the hand-over costs no allocation and no
    /// deallocation. False, changing nothing, when others hold it.
    #[inline]
    #[allow(unsafe_code)]
    pub fn refill(
        obj: &Py<PyUpdate>,
        py: Python<'_>,
        order_id: &OrderId,
        update: &mut Box<PyCoreUpdate>,
        staleness: Option<Duration>,
    ) -> bool {
        let _ = py;
        // SAFETY: attached; reading a live object's reference count.
        if unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) } != 1 {
            return false;
        }
        {
            // SAFETY: attached, and ours is the only reference: nothing
            // reads the fields meanwhile (see `unsafe impl Sync`).
            let f = unsafe { &mut *obj.get().fields.get() };
            f.inner.swap(update);
            if !Arc::ptr_eq(&f.order_id, order_id) {
                f.order_id = order_id.clone();
            }
            f.staleness = staleness;
        }
        // After the writes: dropping them may run their __del__.
        update.instructions.clear();
        update.reports.clear();
        true
    }
}

#[pymethods]
impl PyUpdate {
    /// The order this Update is for.
    #[getter]
    fn order_id(&self) -> &str {
        &self.f().order_id
    }
    /// The newest quote, or None.
    #[getter]
    fn quote(&self) -> Option<PyQuote> {
        self.f().inner.quote.clone().map(|inner| PyQuote { inner })
    }
    /// Every print since the last hand-over merged into one (volume, VWAP), or None.
    #[getter]
    fn trade(&self) -> Option<PyTrade> {
        self.f().inner.trade.clone().map(|inner| PyTrade { inner })
    }
    /// Instructions (the Order objects submitted) in arrival order.
    #[getter]
    fn instructions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.f().inner.instructions.iter().map(|i| i.clone_ref(py)),
        )
    }
    /// Execution reports in arrival order.
    #[getter]
    fn reports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.f().inner.reports.iter().map(|r| r.clone_ref(py)))
    }
    /// How many quotes were conflated into `quote` (0 when there is none).
    #[getter]
    fn quotes_merged(&self) -> u32 {
        self.f().inner.quotes_merged
    }
    /// How many prints were merged into `trade` (0 when there is none).
    #[getter]
    fn trades_merged(&self) -> u32 {
        self.f().inner.trades_merged
    }
    /// True when nothing arrived: the order was idle for the engine's idle interval.
    #[getter]
    fn idle(&self) -> bool {
        self.f().inner.idle
    }
    /// When the newest item arrived, on the `time.monotonic_ns()` clock (None if idle).
    #[getter]
    fn arrived_ns(&self, py: Python<'_>) -> PyResult<Option<i64>> {
        let Some(arrived) = self.f().inner.arrived else {
            return Ok(None);
        };
        let now: i64 = py.import("time")?.call_method0("monotonic_ns")?.extract()?;
        Ok(Some(now - arrived.elapsed().as_nanos() as i64))
    }
    /// How old the newest item was just before `action` was called with this
    /// Update, in nanoseconds (None if idle). Bounded by how long data waits
    /// in the feed's queue, by `REFRESH_AFTER` (20 us) within a batch of
    /// hand-overs, and by the loop's own delay (README, "What bounds staleness").
    #[getter]
    fn staleness_ns(&self) -> Option<u64> {
        self.f().staleness.map(|d| d.as_nanos() as u64)
    }
    /// `staleness_ns` in seconds.
    #[getter]
    fn staleness(&self) -> Option<f64> {
        self.f().staleness.map(|d| d.as_secs_f64())
    }
    fn __repr__(&self) -> String {
        let f = self.f();
        let u = &f.inner;
        format!(
            "Update(order_id='{}', quotes_merged={}, trades_merged={}, instructions={}, reports={}, idle={})",
            &*f.order_id,
            u.quotes_merged,
            u.trades_merged,
            u.instructions.len(),
            u.reports.len(),
            if u.idle { "True" } else { "False" }
        )
    }
}
