//! The Python ConflatingQueue: the core queue over Python keys and values.
//!
//! Keys are converted to a Rust value (str, int, bytes, or tuples of them) so
//! hashing and comparing never run Python code under the queue's lock. A
//! Python merge function runs outside the lock: read the queued item, merge,
//! swap it in if it is unchanged, otherwise retry.

use exo_core::ConflatingQueue;
use parking_lot::Mutex;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyString, PyTuple};
use std::sync::Arc;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Str(Arc<str>),
    Int(i64),
    BigInt(Arc<str>),
    Bytes(Arc<[u8]>),
    Tuple(Arc<[Key]>),
}

impl Key {
    fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Key> {
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Key::Str(Arc::from(&*s.to_cow()?)));
        }
        if obj.is_instance_of::<PyInt>() {
            return Ok(match obj.extract::<i64>() {
                Ok(i) => Key::Int(i),
                Err(_) => Key::BigInt(Arc::from(&*obj.str()?.to_cow()?)),
            });
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Key::Bytes(Arc::from(b.as_bytes())));
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            let keys: PyResult<Vec<Key>> = t.iter().map(|k| Key::from_py(&k)).collect();
            return Ok(Key::Tuple(Arc::from(keys?)));
        }
        Err(PyTypeError::new_err(format!(
            "ConflatingQueue key: expected str, int, bytes or a tuple of them, got {}",
            obj.get_type().name()?
        )))
    }
}

struct Item {
    key: Py<PyAny>,
    value: Py<PyAny>,
}

/// A keyed queue that conflates by key; see `exo.ConflatingQueue`.
#[pyclass(frozen, subclass, module = "exo._core", name = "ConflatingQueue")]
pub struct PyConflatingQueue {
    queue: ConflatingQueue<Key, Item>,
    merge: Option<Py<PyAny>>,
    /// (loop, future) pairs of `await get()` callers waiting for an item.
    waiters: Mutex<Vec<(Py<PyAny>, Py<PyAny>)>>,
}

impl PyConflatingQueue {
    fn wake_waiters(&self, py: Python<'_>) -> PyResult<()> {
        let waiters = std::mem::take(&mut *self.waiters.lock());
        for (event_loop, fut) in waiters {
            // Thread-safe: push may come from any thread; the future belongs
            // to its loop.
            event_loop.call_method1(py, "call_soon_threadsafe", (resolve_fn(py)?, fut))?;
        }
        Ok(())
    }
}

fn resolve_fn(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("exo._wake")?.getattr("resolve")
}

#[pymethods]
impl PyConflatingQueue {
    #[new]
    #[pyo3(signature = (merge=None))]
    fn new(merge: Option<Py<PyAny>>) -> Self {
        PyConflatingQueue {
            queue: ConflatingQueue::new(),
            merge,
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// Queues `value` under `key`: appended if the key is new; otherwise it
    /// replaces (or, with a merge function, merges into) the queued item,
    /// which keeps its place.
    fn push(&self, py: Python<'_>, key: Bound<'_, PyAny>, value: Py<PyAny>) -> PyResult<()> {
        let k = Key::from_py(&key)?;
        let key = key.unbind();
        match &self.merge {
            None => {
                let replaced = self.queue.push(k, Item { key, value });
                drop(replaced); // outside the lock: a __del__ may run
            }
            Some(merge) => {
                let mut item = Item { key, value };
                loop {
                    let held = self
                        .queue
                        .peek_with(&k, |v| v.map(|it| it.value.clone_ref(py)));
                    match held {
                        None => match self.queue.push_if_absent(k.clone(), item) {
                            Ok(()) => break,
                            Err(back) => item = back,
                        },
                        Some(held) => {
                            let merged =
                                merge.call1(py, (held.clone_ref(py), item.value.clone_ref(py)))?;
                            let new = Item {
                                key: item.key.clone_ref(py),
                                value: merged,
                            };
                            match self.queue.replace_if(&k, |it| it.value.is(&held), new) {
                                Ok(old) => {
                                    drop(old);
                                    break;
                                }
                                // Another thread changed it meanwhile: merge again.
                                Err(_) => continue,
                            }
                        }
                    }
                }
            }
        }
        self.wake_waiters(py)
    }

    /// Removes and returns the oldest `(key, value)`, or None when empty.
    fn pop(&self, py: Python<'_>) -> Option<(Py<PyAny>, Py<PyAny>)> {
        let _ = py;
        self.queue.pop().map(|(_, it)| (it.key, it.value))
    }

    fn __len__(&self) -> usize {
        self.queue.len()
    }

    /// How many keys are queued.
    fn len(&self) -> usize {
        self.queue.len()
    }

    /// Registers an asyncio future to be resolved when the queue is non-empty
    /// (at once if it already is). Used by `get()`.
    fn _wait(&self, py: Python<'_>, event_loop: Py<PyAny>, fut: Py<PyAny>) -> PyResult<()> {
        self.waiters.lock().push((event_loop, fut));
        // Checked after registering, so a push in between is never missed.
        if !self.queue.is_empty() {
            self.wake_waiters(py)?;
        }
        Ok(())
    }
}
