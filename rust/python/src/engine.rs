//! LoopRunner: the core [`Runner`] driven from the asyncio loop. This is
//! where the GIL is taken to hand Updates to Python delegates; every rule
//! lives in the core, this module calls Python and converts.
//!
//! The invariant: Python is entered only to hand over a batch of ready
//! orders (`run_ready`, on the loop), never per tick, and the dispatcher's
//! lock is never held while Python code runs (a delegate may call back into
//! the engine).
//!
//! Signals: when an arrival makes the ready list non-empty, the runner is
//! signalled once. On the loop's own thread that is `loop.call_soon(run_ready)`;
//! from any other thread (the idle timer and the feeds on tokio, a Python
//! feed thread) it is one byte into a socket pair the loop watches with
//! `add_reader` — unless the loop is polling: after such a wake-up the loop
//! keeps calling `poll` (one `call_soon` per loop iteration, so its other
//! callbacks and I/O still run) for as long as the core's
//! [`IdleStrategy`] says, and a signal meanwhile only sets a flag that the
//! next poll sees (no syscall on either side, no parked thread to wake).

use crate::feeds::PyFeed;
use crate::market::{PyOrder, PyQuote, PyTrade};
use crate::update::{Boxed, PyUpdate};
use exo_core::error::Kind;
use exo_core::idle::{Idle, IdleStrategy};
use exo_core::runner::{Handler, Identity, Runner, SubmitError, Verdict};
use exo_core::{DispatchError, OrderId, Symbol, Update};
use parking_lot::{Mutex, RwLock};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// A delegate as the engine keeps it: the object and how to call its
/// `action`, looked up once at creation rather than per hand-over.
pub struct PyDelegate {
    obj: Py<PyAny>,
    action: Action,
}

/// How a delegate's action is called.
enum Action {
    /// A plain function defined on the delegate's class, shared by every
    /// delegate of that class and called as `func(delegate, update)`: no bound
    /// method is kept per order (that would cost each live order ~64 bytes).
    OfClass(Py<PyAny>),
    /// Anything else (an instance attribute, a callable object ...): its
    /// bound form, kept per order.
    Bound(Py<PyAny>),
}

impl PyDelegate {
    /// Looks up `action` on a new delegate; None when it has none.
    fn new(obj: Py<PyAny>, py: Python<'_>) -> Option<PyDelegate> {
        let bound = obj.bind(py);
        let name = intern!(py, "action");
        let shadowed = bound
            .getattr(intern!(py, "__dict__"))
            .and_then(|d| d.contains(name))
            .unwrap_or(false);
        if !shadowed {
            if let Ok(f) = bound.get_type().getattr(name) {
                let plain = f
                    .get_type()
                    .name()
                    .map(|n| n == "function")
                    .unwrap_or(false);
                if plain {
                    return Some(PyDelegate {
                        obj,
                        action: Action::OfClass(f.unbind()),
                    });
                }
            }
        }
        let action = bound.getattr(name).ok()?.unbind();
        Some(PyDelegate {
            obj,
            action: Action::Bound(action),
        })
    }

    /// Calls `action(update)`.
    fn act<'py>(&self, py: Python<'py>, update: &Py<PyUpdate>) -> PyResult<Bound<'py, PyAny>> {
        match &self.action {
            Action::OfClass(f) => call(py, f, &[self.obj.as_ptr(), update.as_ptr()]),
            Action::Bound(f) => call(py, f, &[update.as_ptr()]),
        }
    }
}

/// `f(*args)` for one or two arguments, without building a tuple: CPython's
/// `PyObject_CallFunctionObjArgs` passes them on by vectorcall from a small
/// stack array. (The abi3 build cannot name `PyObject_Vectorcall`, which joined
/// the stable ABI in 3.12; `call1` would allocate and free a tuple per call,
/// ~30 ns of a ~250 ns hand-over.)
#[allow(unsafe_code)]
fn call<'py>(
    py: Python<'py>,
    f: &Py<PyAny>,
    args: &[*mut ffi::PyObject],
) -> PyResult<Bound<'py, PyAny>> {
    let end = std::ptr::null_mut::<ffi::PyObject>();
    // SAFETY: attached (`py`); `f` and every argument are live references
    // held by the caller for the whole call (borrowed, as the C API takes
    // them); the argument list ends with NULL as the C API requires; the
    // result is a new reference, or NULL with the exception set, which
    // `from_owned_ptr_or_err` turns into the PyErr.
    unsafe {
        let result = match *args {
            [a] => ffi::PyObject_CallFunctionObjArgs(f.as_ptr(), a, end),
            [a, b] => ffi::PyObject_CallFunctionObjArgs(f.as_ptr(), a, b, end),
            _ => unreachable!("call() takes one or two arguments"),
        };
        Bound::from_owned_ptr_or_err(py, result)
    }
}

type PyRunner = Runner<PyDelegate, Py<PyAny>, Py<PyAny>>;

/// Hand-overs per `run_ready` call before yielding to the loop, so one busy
/// engine cannot starve the loop's other callbacks.
const BUDGET: usize = 4096;

thread_local! {
    static THREAD: ThreadId = std::thread::current().id();
}

/// The wake-up socket pair: written from any thread, read by the loop.
struct Pipe {
    ends: RwLock<Option<(UnixStream, UnixStream)>>,
}

impl Pipe {
    fn new() -> std::io::Result<Pipe> {
        let (r, w) = UnixStream::pair()?;
        r.set_nonblocking(true)?;
        w.set_nonblocking(true)?;
        Ok(Pipe {
            ends: RwLock::new(Some((r, w))),
        })
    }

    fn read_fd(&self) -> Option<RawFd> {
        self.ends.read().as_ref().map(|(r, _)| r.as_raw_fd())
    }

    /// One byte; if the buffer is full a wake-up is pending anyway.
    fn signal(&self) {
        if let Some((_, mut w)) = self.ends.read().as_ref().map(|(r, w)| (r, w)) {
            let _ = w.write(&[1]);
        }
    }

    fn drain(&self) {
        if let Some((mut r, _)) = self.ends.read().as_ref().map(|(r, w)| (r, w)) {
            let mut buf = [0u8; 256];
            loop {
                match r.read(&mut buf) {
                    Ok(n) if n > 0 => continue,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    _ => break,
                }
            }
        }
    }

    fn close(&self) {
        self.ends.write().take();
    }
}

/// The loop's callables the runner schedules, from `start()` to `close()`.
struct Schedule {
    /// `loop.call_soon`.
    call_soon: Py<PyAny>,
    /// `self.run_ready`.
    run_ready: Py<PyAny>,
    /// `self.poll`.
    poll: Py<PyAny>,
    /// On asyncio's own loop: `loop._ready.append` and one `asyncio.Handle`
    /// of `run_ready`, made at `start()` and appended each time (see
    /// [`fast_schedule`]).
    ready: Option<(Py<PyAny>, Py<PyAny>)>,
}

/// On the standard asyncio loop (not in debug mode), `run_ready` is
/// scheduled from the loop's own thread by appending one `asyncio.Handle`,
/// made once, to the loop's ready queue (`loop._ready`, a deque, where
/// `call_soon` puts the Handle it makes): `call_soon` is Python code that
/// builds a Handle and copies the context each time, about 0.4 us of a
/// ~5 us hand-over round trip. The Handle runs `run_ready` in the context
/// of `start()`. Other loops (uvloop's `call_soon` is C), subclasses that
/// override `call_soon`, and debug mode keep `call_soon`. None when not
/// applicable.
fn fast_schedule(
    py: Python<'_>,
    call_soon: &Py<PyAny>,
    run_ready: &Py<PyAny>,
) -> PyResult<Option<(Py<PyAny>, Py<PyAny>)>> {
    let event_loop = call_soon.bind(py).getattr(intern!(py, "__self__"))?;
    let base = py.import("asyncio.base_events")?.getattr("BaseEventLoop")?;
    // A subclass that overrides call_soon keeps it (it may do more).
    let own = event_loop
        .get_type()
        .getattr("call_soon")?
        .is(&base.getattr("call_soon")?);
    if !event_loop.is_instance(&base)?
        || !own
        || event_loop.call_method0("get_debug")?.is_truthy()?
    {
        return Ok(None);
    }
    let ready = event_loop.getattr("_ready")?;
    let deque = py.import("collections")?.getattr("deque")?;
    if !ready.is_instance(&deque)? {
        return Ok(None);
    }
    let handle = py.import("asyncio")?.getattr("Handle")?.call1((
        run_ready,
        pyo3::types::PyTuple::empty(py),
        &event_loop,
    ))?;
    Ok(Some((ready.getattr("append")?.unbind(), handle.unbind())))
}

/// How the runner is signalled from wherever an order became ready.
struct Wake {
    pipe: Pipe,
    loop_thread: ThreadId,
    schedule: Mutex<Option<Schedule>>,
    /// The loop is polling (a `poll` is scheduled): signals from other
    /// threads set `pending` only. Cleared before the loop parks.
    polling: AtomicBool,
    /// A signal from another thread not yet acted on.
    pending: AtomicBool,
    /// When the loop polls and for how long; touched on the loop's thread only.
    idle: Mutex<IdleStrategy>,
}

impl Wake {
    fn signal(&self) {
        if THREAD.with(|t| *t == self.loop_thread) {
            // On the loop's thread we are inside a call from Python, so
            // attaching is free: schedule run_ready directly.
            Python::attach(|py| self.schedule_run_ready(py));
        } else {
            // Dekker-style with the loop parking (`backoff` clears `polling`,
            // then `poll` looks at `pending` again): either this load sees
            // the loop still polling (and its next poll sees `pending`), or
            // the parking loop sees `pending`, or both (a spurious wake-up).
            self.pending.store(true, Ordering::SeqCst);
            if !self.polling.load(Ordering::SeqCst) {
                self.pipe.signal();
            }
        }
    }

    /// `loop.call_soon(which(schedule))`, unless closed.
    fn call_soon(&self, py: Python<'_>, which: impl Fn(&Schedule) -> &Py<PyAny>) {
        let scheduled = self
            .schedule
            .lock()
            .as_ref()
            .map(|s| (s.call_soon.clone_ref(py), which(s).clone_ref(py)));
        if let Some((call_soon, f)) = scheduled {
            if let Err(e) = call(py, &call_soon, &[f.as_ptr()]) {
                e.write_unraisable(py, Some(call_soon.bind(py)));
            }
        }
    }

    /// Schedules `run_ready` on the loop, from the loop's thread: its Handle
    /// onto the ready queue where that is known to work, else `call_soon`.
    fn schedule_run_ready(&self, py: Python<'_>) {
        let fast = self.schedule.lock().as_ref().and_then(|s| {
            s.ready
                .as_ref()
                .map(|(append, handle)| (append.clone_ref(py), handle.clone_ref(py)))
        });
        match fast {
            Some((append, handle)) => {
                if let Err(e) = call(py, &append, &[handle.as_ptr()]) {
                    e.write_unraisable(py, Some(append.bind(py)));
                }
            }
            None => self.call_soon(py, |s| &s.run_ready),
        }
    }

    /// Takes a signal from another thread, if one came.
    fn take_pending(&self) -> bool {
        self.pending.swap(false, Ordering::SeqCst)
    }

    /// Work came from another thread: (re)start polling if the strategy polls.
    fn worked(&self, py: Python<'_>) {
        let mut idle = self.idle.lock();
        if !idle.polls() {
            return;
        }
        idle.work(Instant::now());
        drop(idle);
        if !self.polling.swap(true, Ordering::SeqCst) {
            self.call_soon(py, |s| &s.poll);
        }
    }

    /// A poll found nothing from other threads: what next. Yields with the
    /// GIL released. True when the loop keeps polling.
    fn backoff(&self, py: Python<'_>) -> bool {
        let next = self.idle.lock().idle(Instant::now());
        match next {
            Idle::Spin => true,
            Idle::Yield => {
                py.detach(std::thread::yield_now);
                true
            }
            Idle::Park => {
                self.polling.store(false, Ordering::SeqCst);
                false
            }
        }
    }
}

/// Python callables the engine calls, set at construction and dropped by
/// `close()` (so no reference cycle outlives the engine).
struct Hooks {
    factory: Py<PyAny>,
    on_error: Py<PyAny>,
    on_subscribe: Option<Py<PyAny>>,
    on_unsubscribe: Option<Py<PyAny>>,
    on_done: Py<PyAny>,
    spawn: Py<PyAny>,
    /// Persistence: `on_applied([(order_id, delegate, update, done), ...])`
    /// after each batch of sync actions. None (the default) costs nothing.
    on_applied: Option<Py<PyAny>>,
}

impl Hooks {
    fn call<'py>(py: Python<'py>, hook: &Py<PyAny>, args: impl pyo3::call::PyCallArgs<'py>) {
        if let Err(e) = hook.call1(py, args) {
            e.write_unraisable(py, Some(hook.bind(py)));
        }
    }

    /// Reports a problem with one order to `on_error(order_id, message)`.
    fn error(&self, py: Python<'_>, order_id: &str, message: &str) {
        Self::call(py, &self.on_error, (order_id, message));
    }

    fn subscribed(&self, py: Python<'_>, symbol: Option<&Symbol>) {
        if let (Some(f), Some(s)) = (&self.on_subscribe, symbol) {
            Self::call(py, f, (&**s,));
        }
    }
}

/// Calls Python delegates for the core runner, attached to the interpreter.
struct LoopHandler<'a, 'py> {
    py: Python<'py>,
    hooks: &'a Hooks,
    applied: Vec<(OrderId, Py<PyAny>, Py<PyUpdate>, bool)>,
    /// The last hand-over's Update, refilled for the next one when nothing
    /// else holds it (see [`PyUpdate::refill`]).
    spare: Option<Py<PyUpdate>>,
}

impl LoopHandler<'_, '_> {
    /// What `action` returned: a bool, an awaitable (async def), or a mistake.
    fn judge(py: Python<'_>, result: &Bound<'_, PyAny>) -> Verdict {
        if let Ok(b) = result.cast::<PyBool>() {
            return if b.is_true() {
                Verdict::Done
            } else {
                Verdict::Live
            };
        }
        if result.hasattr(intern!(py, "__await__")).unwrap_or(false) {
            return Verdict::InFlight;
        }
        Verdict::NotBool(
            result
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into()),
        )
    }
}

fn describe(py: Python<'_>, what: &str, err: &PyErr) -> String {
    let tb = py
        .import("traceback")
        .and_then(|tb| {
            tb.call_method1(
                "format_exception",
                (err.get_type(py), err.value(py), err.traceback(py)),
            )
        })
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat())
        .unwrap_or_else(|_| err.to_string());
    format!("{what} raised {err}; the order stays live\n{tb}")
}

impl Handler<PyDelegate, Py<PyAny>, Py<PyAny>> for LoopHandler<'_, '_> {
    // Inlined into the runner's batch loop. The Update (a few hundred bytes)
    // stays in its box: the batch's slot gets an empty one from the pool in
    // exchange, and the Python object holds the pointer.
    #[inline(always)]
    fn hand_over(
        &mut self,
        key: usize,
        order_id: &OrderId,
        delegate: &mut PyDelegate,
        update: &mut Box<Update<Py<PyAny>, Py<PyAny>>>,
        staleness: Option<Duration>,
    ) -> Verdict {
        let py = self.py;
        let update = match self.spare.take() {
            Some(u) if PyUpdate::refill(&u, py, order_id, update, staleness) => u,
            _ => {
                let u = PyUpdate::new(order_id.clone(), Boxed::take(update), staleness);
                match Py::new(py, u) {
                    Ok(u) => u,
                    Err(e) => return Verdict::Failed(describe(py, "making the Update", &e)),
                }
            }
        };
        let verdict = match delegate.act(py, &update) {
            Ok(result) => {
                let verdict = Self::judge(py, &result);
                if verdict == Verdict::InFlight {
                    let args = (key, &**order_id, result, update.clone_ref(py));
                    if let Err(e) = self.hooks.spawn.call1(py, args) {
                        return Verdict::Failed(describe(py, "spawning the async action", &e));
                    }
                }
                verdict
            }
            Err(e) => Verdict::Failed(describe(py, "action", &e)),
        };
        if self.hooks.on_applied.is_some() && verdict != Verdict::InFlight {
            let done = verdict == Verdict::Done;
            self.applied.push((
                order_id.clone(),
                delegate.obj.clone_ref(py),
                update.clone_ref(py),
                done,
            ));
        }
        // Refilled for the next hand-over if nobody else keeps it.
        self.spare = Some(update);
        verdict
    }

    fn batch_completed(&mut self) {
        if let Some(f) = &self.hooks.on_applied {
            if !self.applied.is_empty() {
                let py = self.py;
                let items = self
                    .applied
                    .drain(..)
                    .map(|(id, d, u, done)| (id.to_string(), d, u, done));
                match PyList::new(py, items) {
                    Ok(items) => Hooks::call(py, f, (items,)),
                    Err(e) => e.write_unraisable(py, Some(f.bind(py))),
                }
            }
        }
    }

    fn error(&mut self, order_id: &str, message: &str) {
        self.hooks.error(self.py, order_id, message);
    }

    fn ended(&mut self, order_id: &OrderId, _delegate: Option<PyDelegate>) {
        Hooks::call(self.py, &self.hooks.on_done, (&**order_id,));
    }

    fn unsubscribed(&mut self, symbol: &Symbol) {
        if let Some(f) = &self.hooks.on_unsubscribe {
            Hooks::call(self.py, f, (&**symbol,));
        }
    }
}

/// exo.Engine's Rust half: a core Runner driven from the asyncio loop,
/// with its tokio runtime (idle timer, feeds) and its wake-up socket.
#[pyclass(frozen, module = "exo._core", name = "LoopRunner")]
pub struct LoopRunner {
    runner: Arc<PyRunner>,
    wake: Arc<Wake>,
    hooks: Mutex<Option<Arc<Hooks>>>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl LoopRunner {
    fn hooks(&self) -> PyResult<Arc<Hooks>> {
        self.hooks
            .lock()
            .clone()
            .ok_or_else(|| PyRuntimeError::new_err("engine core closed"))
    }

    /// A refusal: a rule violation goes to on_error (returns Ok), a malformed
    /// instruction raises ValueError, a stopping engine RuntimeError.
    fn refuse(&self, py: Python<'_>, e: DispatchError) -> PyResult<()> {
        match e.kind() {
            Kind::Rule => {
                if let Ok(h) = self.hooks() {
                    h.error(py, e.order_id().map_or("", |id| &**id), &e.to_string());
                }
                Ok(())
            }
            Kind::Invalid => Err(PyValueError::new_err(e.to_string())),
            Kind::Stopping => Err(PyRuntimeError::new_err(e.to_string())),
        }
    }

    fn identity(order: &Bound<'_, PyAny>, what: &str) -> PyResult<Identity> {
        let o = order.cast::<PyOrder>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{what}() takes an exo.Order, got {}",
                order
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let o = o.borrow();
        Ok(Identity {
            order_id: o.order_id.clone(),
            msg_type: o.msg_type,
            side: o.side,
            symbol: o.symbol.clone(),
        })
    }

    /// Another thread signalled: its feed errors, its hand-overs, and the
    /// idle strategy learns that work came.
    fn woken(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        this.report_feed_errors(slf.py());
        let result = Self::run_ready(slf);
        if !this.runner.is_stopping() {
            this.wake.worked(slf.py());
        }
        result
    }

    fn report_feed_errors(&self, py: Python<'_>) {
        if let Ok(hooks) = self.hooks() {
            self.runner.report_feed_errors(&mut LoopHandler {
                py,
                hooks: &hooks,
                applied: Vec::new(),
                spare: None,
            });
        }
    }
}

#[pymethods]
impl LoopRunner {
    #[new]
    #[pyo3(signature = (factory, idle_interval, on_error, on_done, spawn, call_soon, on_subscribe=None, on_unsubscribe=None, on_applied=None, feeds=Vec::new(), max_spin=0.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        factory: Py<PyAny>,
        idle_interval: f64,
        on_error: Py<PyAny>,
        on_done: Py<PyAny>,
        spawn: Py<PyAny>,
        call_soon: Py<PyAny>,
        on_subscribe: Option<Py<PyAny>>,
        on_unsubscribe: Option<Py<PyAny>>,
        on_applied: Option<Py<PyAny>>,
        feeds: Vec<Py<PyFeed>>,
        max_spin: f64,
    ) -> PyResult<Self> {
        let interval = exo_core::feed::seconds("idle_interval", idle_interval)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        if !(0.0..=1.0).contains(&max_spin) {
            return Err(PyValueError::new_err(format!(
                "max_spin must be a number of seconds between 0 and 1, got {max_spin}"
            )));
        }
        let wake = Arc::new(Wake {
            pipe: Pipe::new()?,
            loop_thread: THREAD.with(|t| *t),
            schedule: Mutex::new(None),
            polling: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            idle: Mutex::new(IdleStrategy::new(Duration::from_secs_f64(max_spin))),
        });
        let w = wake.clone();
        let runner = Runner::new(interval)
            .waker(move || w.signal())
            .feeds(feeds.iter().map(|f| f.get().feed.clone()).collect());
        // Kept until start(): call_soon is only needed once the loop runs us.
        *wake.schedule.lock() = Some(Schedule {
            call_soon,
            run_ready: py.None(),
            poll: py.None(),
            ready: None,
        });
        Ok(LoopRunner {
            runner: Arc::new(runner),
            wake,
            hooks: Mutex::new(Some(Arc::new(Hooks {
                factory,
                on_error,
                on_subscribe,
                on_unsubscribe,
                on_done,
                spawn,
                on_applied,
            }))),
            runtime: Mutex::new(None),
        })
    }

    /// Starts the idle timer and the feeds on a tokio thread; returns the fd
    /// the loop must watch (`loop.add_reader(fd, on_wakeup)`).
    fn start(slf: &Bound<'_, Self>) -> PyResult<RawFd> {
        let this = slf.get();
        let run_ready = slf.getattr("run_ready")?.unbind();
        let poll = slf.getattr("poll")?.unbind();
        let py = slf.py();
        let call_soon = this
            .wake
            .schedule
            .lock()
            .as_ref()
            .map(|s| s.call_soon.clone_ref(py));
        let ready = match &call_soon {
            // Anything unexpected about the loop: call_soon, as everywhere.
            Some(c) => fast_schedule(py, c, &run_ready).ok().flatten(),
            None => None,
        };
        if let Some(s) = this.wake.schedule.lock().as_mut() {
            s.run_ready = run_ready;
            s.poll = poll;
            s.ready = ready;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("exo-runtime")
            .enable_all()
            .build()?;
        let runner = this.runner.clone();
        rt.spawn(async move { runner.idle_timer().await });
        {
            let _guard = rt.enter();
            this.runner
                .start_feeds()
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        }
        *this.runtime.lock() = Some(rt);
        this.wake
            .pipe
            .read_fd()
            .ok_or_else(|| PyRuntimeError::new_err("engine core already closed"))
    }

    /// Called by the loop when the wake-up socket is readable.
    fn on_wakeup(slf: &Bound<'_, Self>) -> PyResult<()> {
        let wake = &slf.get().wake;
        wake.pipe.drain();
        // Cleared before the work: a signal during it sets it again.
        wake.take_pending();
        Self::woken(slf)
    }

    /// One poll of the loop (scheduled with `call_soon` while the idle
    /// strategy spins or yields): hands over whatever other threads signalled
    /// since the last, else backs off; reschedules itself until it parks.
    fn poll(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let py = slf.py();
        let wake = &this.wake;
        if this.runner.is_stopping() || this.hooks.lock().is_none() {
            wake.polling.store(false, Ordering::SeqCst);
            return Ok(());
        }
        if wake.take_pending() {
            let result = Self::woken(slf);
            // Still polling (woken() schedules a poll only when not): go on.
            if wake.polling.load(Ordering::SeqCst) {
                wake.call_soon(py, |s| &s.poll);
            }
            return result;
        }
        if wake.backoff(py) {
            wake.call_soon(py, |s| &s.poll);
        } else if wake.take_pending() {
            // Signalled while parking (see Wake::signal): not missed.
            return Self::woken(slf);
        }
        Ok(())
    }

    /// Seconds the loop keeps polling at most after a wake-up from another
    /// thread (0: never).
    #[getter]
    fn max_spin(&self) -> f64 {
        self.wake.idle.lock().max_spin().as_secs_f64()
    }

    /// True while the loop polls (the idle strategy spins or yields) rather
    /// than sleeping until the wake-up socket is written.
    #[getter]
    fn polling(&self) -> bool {
        self.wake.polling.load(Ordering::SeqCst)
    }

    /// Checks an instruction against the dispatcher's rules without
    /// delivering it: None when `submit` would accept it now, else the
    /// message `submit` would report to on_error. Raises as `submit` does
    /// for a malformed instruction or a stopping engine.
    fn check(&self, py: Python<'_>, order: Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let id = Self::identity(&order, "check")?;
        match self.runner.check(&id) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == Kind::Rule => Ok(Some(e.to_string())),
            Err(e) => self.refuse(py, e).map(|()| None),
        }
    }

    /// Submits an instruction. A NEW (order_id None or new) creates the order
    /// through the factory and returns its order_id; CANCEL/REPLACE go to the
    /// live order's delegate. A rule violation goes to on_error and returns None.
    fn submit(&self, py: Python<'_>, order: Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let id = Self::identity(&order, "submit")?;
        let assign = id.order_id.is_none();
        let hooks = self.hooks()?;
        let factory = |order_id: &OrderId| -> PyResult<PyDelegate> {
            if assign {
                order.cast::<PyOrder>()?.borrow_mut().order_id = Some(order_id.clone());
            }
            let obj = hooks.factory.call1(py, (&order,))?;
            let type_name = obj
                .bind(py)
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            PyDelegate::new(obj, py).ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "factory(order) returned {type_name}, which has no action(update) method"
                ))
            })
        };
        match self.runner.submit(id, order.clone().unbind(), factory) {
            Ok(s) => {
                hooks.subscribed(py, s.subscribed.as_ref());
                Ok(Some(s.order_id.to_string()))
            }
            Err(SubmitError::Factory(e)) => Err(e),
            Err(SubmitError::Refused(e)) => self.refuse(py, e).map(|()| None),
        }
    }

    /// Re-creates a live order recovered from a store: `delegate` was made
    /// by the factory (with restored state), `instructions` and `reports` are
    /// those journaled after its checkpoint. The NEW is not delivered again.
    fn restore(
        &self,
        py: Python<'_>,
        order: Bound<'_, PyAny>,
        delegate: Py<PyAny>,
        instructions: Vec<Py<PyAny>>,
        reports: Vec<Py<PyAny>>,
    ) -> PyResult<String> {
        let id = Self::identity(&order, "restore")?;
        let order_id = id
            .order_id
            .ok_or_else(|| PyValueError::new_err("restore() needs an order with its order_id"))?;
        let delegate = PyDelegate::new(delegate, py).ok_or_else(|| {
            PyTypeError::new_err("the restored delegate has no action(update) method")
        })?;
        let s = self
            .runner
            .restore(
                order_id,
                id.side,
                id.symbol,
                delegate,
                instructions,
                reports,
            )
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        self.hooks()?.subscribed(py, s.subscribed.as_ref());
        Ok(s.order_id.to_string())
    }

    /// Delivers an execution report (any object with an `order_id`, usually an
    /// exo.Report). Unknown orders go to on_error and return False.
    fn report(&self, py: Python<'_>, report: Bound<'_, PyAny>) -> PyResult<bool> {
        let order_id: String = report
            .getattr(intern!(py, "order_id"))
            .and_then(|v| v.extract())
            .map_err(|_| {
                PyTypeError::new_err("report() takes an exo.Report (an object with a str order_id)")
            })?;
        match self.runner.report(&order_id, report.unbind()) {
            Ok(()) => Ok(true),
            Err(e) => self.refuse(py, e).map(|()| false),
        }
    }

    /// Fans a quote out to every order of its symbol (in Rust, no Python
    /// object per order). Returns how many orders it reached.
    fn quote(&self, quote: &Bound<'_, PyQuote>) -> usize {
        self.runner.quote(&quote.get().inner)
    }

    /// Fans a print out to every order of its symbol. Returns how many it reached.
    fn trade(&self, trade: &Bound<'_, PyTrade>) -> usize {
        self.runner.trade(&trade.get().inner)
    }

    /// Hands Updates to the delegates of ready orders, in batches. Runs on the
    /// loop, attached: this is where the GIL is used, once per batch.
    fn run_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let py = slf.py();
        let Ok(hooks) = this.hooks() else {
            return Ok(());
        };
        let mut handler = LoopHandler {
            py,
            hooks: &hooks,
            applied: Vec::new(),
            spare: None,
        };
        let (_, more) = this.runner.drive(&mut handler, BUDGET);
        if more {
            // Still scheduled: come back after the loop's other callbacks.
            this.wake.signal();
        }
        Ok(())
    }

    /// Ends an async action: `result` is what the coroutine returned, or
    /// `error` describes how it failed.
    #[pyo3(signature = (key, order_id, result, error=None))]
    fn complete_async(
        &self,
        py: Python<'_>,
        key: usize,
        order_id: &str,
        result: Bound<'_, PyAny>,
        error: Option<String>,
    ) -> PyResult<()> {
        let verdict = match error {
            Some(message) => Verdict::Failed(message),
            None => LoopHandler::judge(py, &result),
        };
        // After close() the order is gone with the rest: nothing to complete.
        let Ok(hooks) = self.hooks() else {
            return Ok(());
        };
        let mut handler = LoopHandler {
            py,
            hooks: &hooks,
            applied: Vec::new(),
            spare: None,
        };
        self.runner
            .complete_in_flight(&mut handler, key, order_id, verdict);
        Ok(())
    }

    /// True when `order_id` is live.
    fn is_live(&self, order_id: &str) -> bool {
        self.runner.is_live(order_id)
    }

    /// Number of live orders.
    fn live(&self) -> usize {
        self.runner.live()
    }

    /// Symbols with at least one live order.
    fn symbols(&self) -> Vec<String> {
        self.runner
            .symbols()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Counters: live orders, Updates handed over, errors reported.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("live", self.runner.live())?;
        d.set_item("handovers", self.runner.handovers())?;
        d.set_item("errors", self.runner.errors())?;
        Ok(d)
    }

    /// Stops hand-overs and intake: market data is ignored from now on,
    /// submit/report raise. In-flight async actions may still complete.
    fn begin_stop(&self) {
        self.runner.stop();
    }

    /// Stops the feeds and the tokio thread and closes the wake-up socket.
    /// The GIL is released meanwhile: a tokio worker must never wait on it.
    fn shutdown(&self, py: Python<'_>) {
        self.runner.stop_feeds();
        let rt = self.runtime.lock().take();
        if let Some(rt) = rt {
            py.detach(|| rt.shutdown_timeout(Duration::from_secs(2)));
        }
        self.wake.pipe.close();
        self.report_feed_errors(py);
    }

    /// Removes every order and returns `[(order_id, delegate)]` for clean-up;
    /// drops the Python hooks so no reference cycle outlives the engine.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let orders = self.runner.close();
        drop(self.hooks.lock().take());
        drop(self.wake.schedule.lock().take());
        let items: Vec<(String, Option<Py<PyAny>>)> = orders
            .into_iter()
            .map(|(id, d)| (id.to_string(), d.map(|d| d.obj)))
            .collect();
        PyList::new(py, items)
    }
}

/// A new order_id: a UUIDv7 in simple form (32 lowercase hex digits,
/// time-ordered), as the engine assigns to a NEW without one.
#[pyfunction]
pub fn new_order_id() -> String {
    exo_core::new_order_id().to_string()
}
