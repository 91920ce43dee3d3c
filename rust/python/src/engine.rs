//! EngineCore: the core Dispatcher driven from the asyncio loop. This is
//! where the GIL is taken to hand Updates to Python delegates.
//!
//! The invariant: Python is entered only to hand over a batch of ready
//! orders (`run_ready`, on the loop), never per tick, and the dispatcher's
//! lock is never held while Python code runs (a delegate may call back into
//! the engine).
//!
//! Signals: when an arrival makes the ready list non-empty, the runner is
//! signalled once. On the loop's own thread that is `loop.call_soon(run_ready)`;
//! from any other thread (the idle timer on tokio, a Python feed thread) it is
//! one byte into a non-blocking pipe the loop watches with `add_reader`.

use crate::feeds::PyFeed;
use crate::market::{PyOrder, PyQuote, PyTrade};
use crate::update::PyUpdate;
use exo_core::feed::{sink::pump, ErrorSink, MarketSink};
use exo_core::{market::new_order_id, Completion, Dispatcher, HandOver, MsgType, OrderId};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList};
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// After a wave of orders ends, glibc keeps the freed heap; hand it back so
/// the process's RSS returns to where it was (rare: only when the last of
/// thousands of orders ends).
fn release_to_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

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
    fn act(&self, py: Python<'_>, update: &Py<PyUpdate>) -> PyResult<Py<PyAny>> {
        match &self.action {
            Action::OfClass(f) => f.call1(py, (self.obj.clone_ref(py), update.clone_ref(py))),
            Action::Bound(f) => f.call1(py, (update.clone_ref(py),)),
        }
    }
}

type PyDispatcher = Dispatcher<PyDelegate, Py<PyAny>, Py<PyAny>>;

/// Hand-overs taken per lock acquisition.
const BATCH: usize = 256;
/// Hand-overs per `run_ready` call before yielding to the loop, so one busy
/// engine cannot starve the loop's other callbacks.
const BUDGET: usize = 4096;

thread_local! {
    static THREAD: ThreadId = std::thread::current().id();
}

/// The wake-up pipe: written from any thread, read by the loop.
struct Pipe {
    fds: RwLock<Option<(RawFd, RawFd)>>,
}

impl Pipe {
    fn new() -> PyResult<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe writes two fds into the array we own.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        for fd in fds {
            // SAFETY: fd was just created by pipe().
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(Pipe {
            fds: RwLock::new(Some((fds[0], fds[1]))),
        })
    }

    fn read_fd(&self) -> Option<RawFd> {
        self.fds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .map(|f| f.0)
    }

    /// One byte; if the pipe is full a wake-up is pending anyway.
    fn signal(&self) {
        if let Some((_, w)) = *self.fds.read().unwrap_or_else(|e| e.into_inner()) {
            // SAFETY: w is open while the read lock is held.
            unsafe { libc::write(w, [1u8].as_ptr().cast(), 1) };
        }
    }

    fn drain(&self) {
        if let Some((r, _)) = *self.fds.read().unwrap_or_else(|e| e.into_inner()) {
            let mut buf = [0u8; 256];
            // SAFETY: r is open while the read lock is held; non-blocking.
            while unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        }
    }

    fn close(&self) {
        if let Some((r, w)) = self.fds.write().unwrap_or_else(|e| e.into_inner()).take() {
            // SAFETY: both fds are ours and nobody holds the lock.
            unsafe {
                libc::close(r);
                libc::close(w);
            }
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.close();
    }
}

/// Feed errors waiting for the loop; beyond this many, new ones are counted only.
const MAX_PENDING_FEED_ERRORS: usize = 10_000;

/// State shared with the tokio tasks (idle timer, feeds, pump).
struct Shared {
    dispatcher: Arc<Mutex<PyDispatcher>>,
    pipe: Pipe,
    stop_timer: Notify,
    /// Feeds push parsed market data here; the pump fans it out.
    sink: Arc<MarketSink>,
    /// (venue, message) from feed tasks, delivered to on_error on the loop.
    feed_errors: Mutex<VecDeque<(String, String)>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, PyDispatcher> {
        self.dispatcher.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Python callables the engine calls. Only touched while attached, and never
/// locked across a call into Python.
struct Hooks {
    factory: Py<PyAny>,
    on_error: Py<PyAny>,
    on_subscribe: Option<Py<PyAny>>,
    on_unsubscribe: Option<Py<PyAny>>,
    on_done: Py<PyAny>,
    spawn: Py<PyAny>,
    call_soon: Py<PyAny>,
    run_ready: Option<Py<PyAny>>,
    /// Persistence: `on_applied([(order_id, delegate, update, done), ...])`
    /// after each batch of sync actions. None (the default) costs nothing.
    on_applied: Option<Py<PyAny>>,
}

/// The engine's Rust half; `exo.Engine` (engine.py) owns one per start.
#[pyclass(frozen, module = "exo._core", name = "EngineCore")]
pub struct EngineCore {
    shared: Arc<Shared>,
    feeds: Vec<Py<PyFeed>>,
    hooks: Mutex<Option<Hooks>>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    loop_thread: ThreadId,
    stopping: AtomicBool,
    handovers: AtomicU64,
    errors: AtomicU64,
}

struct Outcome {
    key: usize,
    order_id: OrderId,
    delegate: PyDelegate,
    /// None: an async action is still running.
    done: Option<bool>,
}

impl EngineCore {
    fn hook(
        &self,
        f: impl FnOnce(&Hooks) -> Option<&Py<PyAny>>,
        py: Python<'_>,
    ) -> Option<Py<PyAny>> {
        let hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
        hooks.as_ref().and_then(f).map(|h| h.clone_ref(py))
    }

    /// Reports a problem with one order to `on_error(order_id, message)`.
    fn error(&self, py: Python<'_>, order_id: &str, message: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = self.hook(|h| Some(&h.on_error), py) {
            if let Err(e) = f.call1(py, (order_id, message)) {
                e.write_unraisable(py, Some(f.bind(py)));
            }
        }
    }

    fn call_hook(&self, py: Python<'_>, hook: Option<Py<PyAny>>, arg: &str) {
        if let Some(f) = hook {
            if let Err(e) = f.call1(py, (arg,)) {
                e.write_unraisable(py, Some(f.bind(py)));
            }
        }
    }

    /// Signals the runner once, the cheapest way from where we are.
    fn signal(&self, py: Python<'_>, wake: bool) -> PyResult<()> {
        if !wake {
            return Ok(());
        }
        if THREAD.with(|t| *t == self.loop_thread) {
            let (call_soon, run_ready) = {
                let hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
                match hooks.as_ref() {
                    Some(Hooks {
                        call_soon,
                        run_ready: Some(run_ready),
                        ..
                    }) => (call_soon.clone_ref(py), run_ready.clone_ref(py)),
                    _ => return Ok(()),
                }
            };
            call_soon.call1(py, (run_ready,))?;
        } else {
            self.shared.pipe.signal();
        }
        Ok(())
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

    /// Interprets what `action` returned: a bool, an awaitable (async def),
    /// or a mistake that is reported.
    fn judge(&self, py: Python<'_>, order_id: &str, result: &Bound<'_, PyAny>) -> Option<bool> {
        if let Ok(b) = result.cast::<PyBool>() {
            return Some(b.is_true());
        }
        if result.hasattr(intern!(py, "__await__")).unwrap_or(false) {
            return None;
        }
        let type_name = result
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        self.error(
            py,
            order_id,
            &format!("action returned {type_name}, expected bool (True when the order is complete); treated as False"),
        );
        Some(false)
    }

    /// Applies completions' side effects outside the lock.
    fn after(&self, py: Python<'_>, c: Completion<PyDelegate, Py<PyAny>, Py<PyAny>>) {
        if c.released {
            release_to_os();
        }
        if let Some(sym) = &c.unsubscribe {
            self.unsubscribe_feeds(sym);
            self.call_hook(py, self.hook(|h| h.on_unsubscribe.as_ref(), py), sym);
        }
        if let Some((order_id, _delegate, leftover)) = c.ended {
            if !leftover.instructions.is_empty() || !leftover.reports.is_empty() {
                self.error(
                    py,
                    &order_id,
                    &format!(
                        "order completed while {} instruction(s) and {} report(s) were waiting; they were not delivered",
                        leftover.instructions.len(),
                        leftover.reports.len()
                    ),
                );
            }
            self.call_hook(py, self.hook(|h| Some(&h.on_done), py), &order_id);
        }
    }

    fn runtime_spawn_timer(&self) -> PyResult<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("exo-runtime")
            .enable_all()
            .build()?;
        let shared = self.shared.clone();
        let interval = shared.lock().idle_interval();
        let timer_shared = shared.clone();
        rt.spawn(async move {
            let shared = timer_shared;
            let mut next: Option<Instant> = None;
            loop {
                let until = next.unwrap_or_else(|| Instant::now() + interval);
                tokio::select! {
                    _ = shared.stop_timer.notified() => break,
                    _ = tokio::time::sleep_until(until.into()) => {}
                }
                // Never attaches to Python: marks idle orders ready, then one
                // byte wakes the loop.
                let (wake, n) = shared.lock().expire_idle(Instant::now());
                next = n;
                if wake {
                    shared.pipe.signal();
                }
            }
        });
        if !self.feeds.is_empty() {
            let _guard = rt.enter();
            let s = shared.clone();
            rt.spawn(pump(s.sink.clone(), s.dispatcher.clone(), move || {
                s.pipe.signal()
            }));
            let s = Arc::downgrade(&self.shared);
            let errors: ErrorSink = Arc::new(move |venue: &str, message: String| {
                if let Some(s) = s.upgrade() {
                    let mut q = s.feed_errors.lock().unwrap_or_else(|e| e.into_inner());
                    if q.len() < MAX_PENDING_FEED_ERRORS {
                        q.push_back((venue.to_string(), message));
                    }
                    drop(q);
                    s.pipe.signal();
                }
            });
            for f in &self.feeds {
                f.get().start(self.shared.sink.clone(), errors.clone())?;
            }
        }
        *self.runtime.lock().unwrap_or_else(|e| e.into_inner()) = Some(rt);
        Ok(())
    }

    fn subscribe_feeds(&self, symbol: &exo_core::Symbol) {
        for f in &self.feeds {
            f.get().subscribe(symbol);
        }
    }

    fn unsubscribe_feeds(&self, symbol: &exo_core::Symbol) {
        for f in &self.feeds {
            f.get().unsubscribe(symbol);
        }
    }

    /// Feed errors reach on_error as order_id `feed:<venue>`.
    fn report_feed_errors(&self, py: Python<'_>) {
        let errors: Vec<(String, String)> = self
            .shared
            .feed_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for (venue, message) in errors {
            self.error(py, &format!("feed:{venue}"), &message);
        }
    }
}

#[pymethods]
impl EngineCore {
    #[new]
    #[pyo3(signature = (factory, idle_interval, on_error, on_done, spawn, call_soon, on_subscribe=None, on_unsubscribe=None, on_applied=None, feeds=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
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
    ) -> PyResult<Self> {
        if !(idle_interval.is_finite() && idle_interval > 0.0) {
            return Err(PyValueError::new_err(format!(
                "idle_interval: must be a positive number of seconds, got {idle_interval}"
            )));
        }
        let core = EngineCore {
            shared: Arc::new(Shared {
                dispatcher: Arc::new(Mutex::new(Dispatcher::new(Duration::from_secs_f64(
                    idle_interval,
                )))),
                pipe: Pipe::new()?,
                stop_timer: Notify::new(),
                sink: Arc::new(MarketSink::new()),
                feed_errors: Mutex::new(VecDeque::new()),
            }),
            feeds,
            hooks: Mutex::new(Some(Hooks {
                factory,
                on_error,
                on_subscribe,
                on_unsubscribe,
                on_done,
                spawn,
                call_soon,
                run_ready: None,
                on_applied,
            })),
            runtime: Mutex::new(None),
            loop_thread: THREAD.with(|t| *t),
            stopping: AtomicBool::new(false),
            handovers: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        };
        Ok(core)
    }

    /// Starts the idle timer; returns the fd the loop must watch
    /// (`loop.add_reader(fd, on_wakeup)`).
    fn start(slf: &Bound<'_, Self>) -> PyResult<RawFd> {
        let this = slf.get();
        let run_ready = slf.getattr("run_ready")?.unbind();
        if let Some(h) = this
            .hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            h.run_ready = Some(run_ready);
        }
        this.runtime_spawn_timer()?;
        this.shared
            .pipe
            .read_fd()
            .ok_or_else(|| PyRuntimeError::new_err("engine core already closed"))
    }

    /// Called by the loop when the wake-up pipe is readable.
    fn on_wakeup(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.get().shared.pipe.drain();
        slf.get().report_feed_errors(slf.py());
        Self::run_ready(slf)
    }

    /// Submits an instruction. A NEW (order_id None or new) creates the order
    /// through the factory and returns its order_id; CANCEL/REPLACE go to the
    /// live order's delegate. A rule violation goes to on_error and returns None.
    fn submit(&self, py: Python<'_>, order: Bound<'_, PyAny>) -> PyResult<Option<String>> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(PyRuntimeError::new_err(
                "the engine is stopping: no more instructions",
            ));
        }
        let o = order.cast::<PyOrder>().map_err(|_| {
            PyTypeError::new_err(format!(
                "submit() takes an exo.Order, got {}",
                order
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let (order_id, msg_type, side, symbol) = {
            let o = o.borrow();
            (o.order_id.clone(), o.msg_type, o.side, o.symbol.clone())
        };
        if symbol.is_empty() {
            return Err(PyValueError::new_err(
                "order.symbol is empty: set it, e.g. 'BTC-USD'",
            ));
        }
        match msg_type {
            MsgType::New => {
                let order_id = match order_id {
                    Some(id) => id,
                    None => {
                        let id = new_order_id();
                        o.borrow_mut().order_id = Some(id.clone());
                        id
                    }
                };
                if self.shared.lock().is_live(&order_id) {
                    let e = exo_core::DispatchError::AlreadyLive(order_id.clone());
                    self.error(py, &order_id, &e.to_string());
                    return Ok(None);
                }
                let factory = self
                    .hook(|h| Some(&h.factory), py)
                    .ok_or_else(|| PyRuntimeError::new_err("engine core closed"))?;
                let obj = factory.call1(py, (order.clone(),))?;
                let type_name = obj
                    .bind(py)
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                let delegate = PyDelegate::new(obj, py).ok_or_else(|| {
                    PyTypeError::new_err(format!(
                        "factory(order) returned {type_name}, which has no action(update) method"
                    ))
                })?;
                let created = self.shared.lock().create(
                    order_id.clone(),
                    side,
                    symbol,
                    delegate,
                    order.unbind(),
                    Instant::now(),
                );
                match created {
                    Ok(new) => {
                        if let Some(sym) = &new.subscribe {
                            self.subscribe_feeds(sym);
                            self.call_hook(py, self.hook(|h| h.on_subscribe.as_ref(), py), sym);
                        }
                        self.signal(py, new.wake)?;
                        Ok(Some(order_id.to_string()))
                    }
                    Err(e) => {
                        self.error(py, &order_id, &e.to_string());
                        Ok(None)
                    }
                }
            }
            MsgType::Cancel | MsgType::Replace => {
                let Some(order_id) = order_id else {
                    return Err(PyValueError::new_err(format!(
                        "a {msg_type} needs the order_id of a live order (order.order_id is None)"
                    )));
                };
                let r = self.shared.lock().instruct(
                    &order_id,
                    msg_type,
                    side,
                    &symbol,
                    order.unbind(),
                    Instant::now(),
                );
                match r {
                    Ok(wake) => {
                        self.signal(py, wake)?;
                        Ok(Some(order_id.to_string()))
                    }
                    Err(e) => {
                        self.error(py, &order_id, &e.to_string());
                        Ok(None)
                    }
                }
            }
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
        let o = order
            .cast::<PyOrder>()
            .map_err(|_| PyTypeError::new_err("restore() takes an exo.Order"))?;
        let (order_id, side, symbol) = {
            let o = o.borrow();
            (o.order_id.clone(), o.side, o.symbol.clone())
        };
        let order_id = order_id
            .ok_or_else(|| PyValueError::new_err("restore() needs an order with its order_id"))?;
        let delegate = PyDelegate::new(delegate, py).ok_or_else(|| {
            PyTypeError::new_err("the restored delegate has no action(update) method")
        })?;
        let created = self.shared.lock().restore(
            order_id.clone(),
            side,
            symbol,
            delegate,
            instructions,
            reports,
            Instant::now(),
        );
        match created {
            Ok(new) => {
                if let Some(sym) = &new.subscribe {
                    self.subscribe_feeds(sym);
                    self.call_hook(py, self.hook(|h| h.on_subscribe.as_ref(), py), sym);
                }
                self.signal(py, new.wake)?;
                Ok(order_id.to_string())
            }
            Err(e) => Err(PyValueError::new_err(e.to_string())),
        }
    }

    /// Delivers an execution report (any object with an `order_id`, usually an
    /// exo.Report). Unknown orders go to on_error and return False.
    fn report(&self, py: Python<'_>, report: Bound<'_, PyAny>) -> PyResult<bool> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(PyRuntimeError::new_err(
                "the engine is stopping: no more reports",
            ));
        }
        let order_id: String = report
            .getattr(intern!(py, "order_id"))
            .and_then(|v| v.extract())
            .map_err(|_| {
                PyTypeError::new_err("report() takes an exo.Report (an object with a str order_id)")
            })?;
        let r = self
            .shared
            .lock()
            .report(&order_id, report.unbind(), Instant::now());
        match r {
            Ok(wake) => {
                self.signal(py, wake)?;
                Ok(true)
            }
            Err(e) => {
                self.error(py, &order_id, &e.to_string());
                Ok(false)
            }
        }
    }

    /// Fans a quote out to every order of its symbol (in Rust, no Python
    /// object per order). Returns how many orders it reached.
    fn quote(&self, py: Python<'_>, quote: &Bound<'_, PyQuote>) -> PyResult<usize> {
        if self.stopping.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let (n, wake) = self.shared.lock().quote(&quote.get().inner, Instant::now());
        self.signal(py, wake)?;
        Ok(n)
    }

    /// Fans a print out to every order of its symbol. Returns how many it reached.
    fn trade(&self, py: Python<'_>, trade: &Bound<'_, PyTrade>) -> PyResult<usize> {
        if self.stopping.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let (n, wake) = self.shared.lock().trade(&trade.get().inner, Instant::now());
        self.signal(py, wake)?;
        Ok(n)
    }

    /// Hands Updates to the delegates of ready orders, in batches. Runs on the
    /// loop, attached: this is where the GIL is used, once per batch.
    fn run_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        let py = slf.py();
        let mut batch: Vec<HandOver<PyDelegate, Py<PyAny>, Py<PyAny>>> = Vec::with_capacity(BATCH);
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(BATCH);
        let mut applied: Vec<(String, Py<PyAny>, Py<PyUpdate>, bool)> = Vec::new();
        let mut budget = BUDGET;
        let on_applied = this.hook(|h| h.on_applied.as_ref(), py);
        loop {
            if this.stopping.load(Ordering::Acquire) {
                return Ok(());
            }
            let more = this.shared.lock().take_ready(BATCH.min(budget), &mut batch);
            if batch.is_empty() {
                return Ok(());
            }
            budget -= batch.len();
            this.handovers
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let now = Instant::now();
            for h in batch.drain(..) {
                let staleness = h.update.arrived.map(|a| now.saturating_duration_since(a));
                let update = Py::new(py, PyUpdate::new(h.order_id.clone(), h.update, staleness))?;
                let done = match h.delegate.act(py, &update) {
                    Ok(result) => {
                        let result = result.into_bound(py);
                        let verdict = this.judge(py, &h.order_id, &result);
                        if verdict.is_none() {
                            let spawn = this.hook(|hk| Some(&hk.spawn), py);
                            if let Some(spawn) = spawn {
                                spawn.call1(
                                    py,
                                    (h.key, &*h.order_id, result, update.clone_ref(py)),
                                )?;
                            }
                        }
                        verdict
                    }
                    Err(e) => {
                        this.error(py, &h.order_id, &Self::describe(py, "action", &e));
                        Some(false)
                    }
                };
                if let (Some(done), Some(_)) = (done, &on_applied) {
                    applied.push((
                        h.order_id.to_string(),
                        h.delegate.obj.clone_ref(py),
                        update,
                        done,
                    ));
                }
                outcomes.push(Outcome {
                    key: h.key,
                    order_id: h.order_id,
                    delegate: h.delegate,
                    done,
                });
            }
            let now = Instant::now();
            let mut effects = Vec::new();
            let mut again = more;
            {
                let mut d = this.shared.lock();
                for o in outcomes.drain(..) {
                    match o.done {
                        Some(done) => {
                            let c = d.complete(o.key, &o.order_id, Some(o.delegate), done, now);
                            again |= c.wake;
                            if c.ended.is_some() || c.unsubscribe.is_some() {
                                effects.push(c);
                            }
                        }
                        None => {
                            // Async action in flight: the order stays Running
                            // until complete_async.
                            let _ = d.return_delegate(o.key, &o.order_id, o.delegate);
                        }
                    }
                }
            }
            // Persistence first: an order's checkpoint is queued before its
            // completion is announced.
            if let Some(f) = &on_applied {
                if !applied.is_empty() {
                    let items = PyList::new(py, applied.drain(..))?;
                    if let Err(e) = f.call1(py, (items,)) {
                        e.write_unraisable(py, Some(f.bind(py)));
                    }
                }
            }
            for c in effects {
                this.after(py, c);
            }
            if !again {
                return Ok(());
            }
            if budget == 0 {
                // Still scheduled: come back after the loop's other callbacks.
                let call_soon = this.hook(|h| Some(&h.call_soon), py);
                if let Some(call_soon) = call_soon {
                    call_soon.call1(py, (slf.getattr("run_ready")?,))?;
                }
                return Ok(());
            }
        }
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
        let done = match error {
            Some(msg) => {
                self.error(py, order_id, &msg);
                false
            }
            None => self.judge(py, order_id, &result).unwrap_or_else(|| {
                self.error(
                    py,
                    order_id,
                    "async action returned an awaitable; expected bool. Treated as False",
                );
                false
            }),
        };
        let c = self
            .shared
            .lock()
            .complete(key, order_id, None, done, Instant::now());
        let wake = c.wake;
        self.after(py, c);
        if !self.stopping.load(Ordering::Acquire) {
            self.signal(py, wake)?;
        }
        Ok(())
    }

    /// True when `order_id` is live.
    fn is_live(&self, order_id: &str) -> bool {
        self.shared.lock().is_live(order_id)
    }

    /// Number of live orders.
    fn live(&self) -> usize {
        self.shared.lock().len()
    }

    /// Symbols with at least one live order.
    fn symbols(&self) -> Vec<String> {
        self.shared
            .lock()
            .symbols()
            .map(|s| s.to_string())
            .collect()
    }

    /// Counters: live orders, Updates handed over, errors reported.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("live", self.live())?;
        d.set_item("handovers", self.handovers.load(Ordering::Relaxed))?;
        d.set_item("errors", self.errors.load(Ordering::Relaxed))?;
        Ok(d)
    }

    /// Stops hand-overs and intake: market data is ignored from now on,
    /// submit/report raise. In-flight async actions may still complete.
    fn begin_stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Stops the idle timer thread and closes the wake-up pipe. The GIL is
    /// released meanwhile: a tokio worker must never wait on it.
    fn shutdown(&self, py: Python<'_>) {
        for f in &self.feeds {
            f.get().stop();
        }
        self.shared.stop_timer.notify_one();
        let rt = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(rt) = rt {
            py.detach(|| rt.shutdown_timeout(Duration::from_secs(2)));
        }
        self.shared.pipe.close();
        self.report_feed_errors(py);
    }

    /// Removes every order and returns `[(order_id, delegate)]` for clean-up;
    /// drops the Python hooks so no reference cycle outlives the engine.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let orders = self.shared.lock().close();
        let hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(hooks);
        let items: Vec<(String, Option<Py<PyAny>>)> = orders
            .into_iter()
            .map(|(id, d)| (id.to_string(), d.map(|d| d.obj)))
            .collect();
        PyList::new(py, items)
    }
}
