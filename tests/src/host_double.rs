//! A stand-in for the router's side of the plugin ABI: an `ar_host` table whose
//! callbacks answer `query` and `request` from canned JSON (or fail with the result code
//! of a canned [`HostError`]), render with a function the test gives, and record every
//! log line, query, request, render, emitted event and health report. For testing a
//! plugin through its Rust API (the rlib) without the router. A double can also play a
//! router from before `request` ([`HostDouble::before_request`]).
//!
//! ```ignore
//! let host = HostDouble::new();
//! host.answer("state/portfolio", json!({"total_value": 12500}));
//! let mut sink = host.create::<Telegram>(settings)?;   // a `Hosted<Telegram>`
//! sink.deliver(message);
//! assert!(host.logs().iter().any(|l| l.starts_with("WARN ")));
//! ```
//!
//! [`HostDouble::create`] returns the sink wrapped in [`Hosted`], which drops the sink
//! before the table it was given, as the router does.

use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use alert_router_plugin::{Host, HostError, Message, Outcome, Sink, ffi};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

/// What `render` does: template name and context in, payload or error out.
type Renderer = dyn Fn(&str, &Value) -> Result<Value, HostError> + Send + Sync;

/// The host's recordings and canned answers.
pub struct HostDouble {
    table: Box<ffi::Host>,
    inner: Box<Inner>,
}

struct Inner {
    answers: Mutex<HashMap<String, Result<Value, HostError>>>,
    /// Keyed by `METHOD path`.
    request_answers: Mutex<HashMap<String, Result<Value, HostError>>>,
    requests: Mutex<Vec<Request>>,
    renderer: Box<Renderer>,
    logs: Mutex<Vec<(i32, String)>>,
    queries: Mutex<Vec<String>>,
    renders: Mutex<Vec<(String, Value)>>,
    emits: Mutex<Vec<Value>>,
    health: Mutex<Vec<Result<(), String>>>,
}

// SAFETY: the table's `host_data` points into `inner`, which only holds `Sync` data
// behind mutexes; the function pointers are plain functions.
unsafe impl Send for HostDouble {}
unsafe impl Sync for HostDouble {}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One `request` a plugin made.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// `None` for an empty body.
    pub body: Option<Value>,
}

/// A log level as the router shows it.
fn level_name(level: i32) -> &'static str {
    match level {
        1 => "ERROR",
        2 => "WARN",
        3 => "INFO",
        4 => "DEBUG",
        _ => "TRACE",
    }
}

impl HostDouble {
    /// A host whose queries all fail (`AR_HOST_NOT_FOUND`) and whose `render` finds no
    /// template (`AR_HOST_NOT_FOUND`), until told otherwise.
    pub fn new() -> Arc<HostDouble> {
        HostDouble::hosting(Box::new(|name, _| {
            Err(HostError::not_found(format!(
                "no template {name} in this host double"
            )))
        }))
    }

    /// A host that renders with `renderer`; its errors are templates that do not render
    /// (`AR_HOST_FAILED`).
    pub fn with_renderer(
        renderer: impl Fn(&str, &Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Arc<HostDouble> {
        HostDouble::hosting(Box::new(move |name, context| {
            renderer(name, context).map_err(HostError::failed)
        }))
    }

    /// Like [`HostDouble::with_renderer`], as a router built before `request` was
    /// appended to the table: its `struct_size` ends after `set_health`.
    pub fn before_request(
        renderer: impl Fn(&str, &Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Arc<HostDouble> {
        HostDouble::hosting_table_of(
            Box::new(move |name, context| renderer(name, context).map_err(HostError::failed)),
            std::mem::offset_of!(ffi::Host, request),
        )
    }

    fn hosting(renderer: Box<Renderer>) -> Arc<HostDouble> {
        HostDouble::hosting_table_of(renderer, size_of::<ffi::Host>())
    }

    fn hosting_table_of(renderer: Box<Renderer>, struct_size: usize) -> Arc<HostDouble> {
        let inner = Box::new(Inner {
            answers: Mutex::new(HashMap::new()),
            request_answers: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            renderer,
            logs: Mutex::new(Vec::new()),
            queries: Mutex::new(Vec::new()),
            renders: Mutex::new(Vec::new()),
            emits: Mutex::new(Vec::new()),
            health: Mutex::new(Vec::new()),
        });
        let table = Box::new(ffi::Host {
            struct_size: struct_size as u32,
            host_data: &*inner as *const Inner as *mut c_void,
            log: host_log,
            query: host_query,
            emit: host_emit,
            render: host_render,
            set_health: Some(host_set_health),
            request: Some(host_request),
        });
        Arc::new(HostDouble { table, inner })
    }

    /// Answers `query(path)` with `value` from now on.
    pub fn answer(&self, path: &str, value: Value) {
        lock(&self.inner.answers).insert(path.to_owned(), Ok(value));
    }

    /// Fails `query(path)` with `error` (its kind's result code, its message) from now on.
    pub fn refuse(&self, path: &str, error: HostError) {
        lock(&self.inner.answers).insert(path.to_owned(), Err(error));
    }

    /// Answers `request(method, path, ..)` with `value` from now on.
    pub fn answer_request(&self, method: &str, path: &str, value: Value) {
        lock(&self.inner.request_answers).insert(format!("{method} {path}"), Ok(value));
    }

    /// Fails `request(method, path, ..)` with `error` from now on.
    pub fn refuse_request(&self, method: &str, path: &str, error: HostError) {
        lock(&self.inner.request_answers).insert(format!("{method} {path}"), Err(error));
    }

    /// Requests made so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.inner.requests).clone()
    }

    /// Creates sink `S` with this host, as the router's `create` would.
    pub fn create<S: Sink>(self: &Arc<Self>, settings: S::Settings) -> Result<Hosted<S>, String> {
        // SAFETY: the table lives as long as `self`, and `Hosted` keeps `self` alive
        // until after the sink is dropped.
        let host = unsafe { Host::from_raw(&*self.table) }.ok_or("no host table")?;
        // As the SDK's `create` entry does: settings `validate` refuses never reach `create`.
        S::validate(&settings)?;
        let sink = S::create(host, settings)?;
        Ok(Hosted {
            sink,
            _host: Arc::clone(self),
        })
    }

    /// Log lines so far, as `LEVEL text` (`WARN ignored /status from chat 5`).
    pub fn logs(&self) -> Vec<String> {
        lock(&self.inner.logs)
            .iter()
            .map(|(level, text)| format!("{} {text}", level_name(*level)))
            .collect()
    }

    /// Paths queried so far, in order.
    pub fn queries(&self) -> Vec<String> {
        lock(&self.inner.queries).clone()
    }

    /// Templates rendered so far, with their contexts.
    pub fn renders(&self) -> Vec<(String, Value)> {
        lock(&self.inner.renders).clone()
    }

    /// Events emitted so far.
    pub fn emits(&self) -> Vec<Value> {
        lock(&self.inner.emits).clone()
    }

    /// Health reports so far (`set_health`): `Ok` for healthy, `Err(reason)` for not.
    pub fn health(&self) -> Vec<Result<(), String>> {
        lock(&self.inner.health).clone()
    }

    /// Polls `check` until it gives a value or `timeout` passes (then `None`).
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&HostDouble) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = check(self) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A sink created by [`HostDouble::create`]: derefs to the sink, and drops it before
/// the host table it holds.
pub struct Hosted<S: Sink> {
    // Declared first, so dropped first.
    sink: S,
    _host: Arc<HostDouble>,
}

impl<S: Sink> Deref for Hosted<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.sink
    }
}

impl<S: Sink> DerefMut for Hosted<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.sink
    }
}

/// # Safety
/// `data` must be the `Inner` of a live `HostDouble`.
unsafe fn inner<'a>(data: *mut c_void) -> &'a Inner {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(data as *const Inner) }
}

fn text(ptr: *const c_char, len: usize) -> String {
    // SAFETY: the plugin passes a slice valid for the call.
    String::from_utf8_lossy(unsafe { ffi::bytes(ptr, len) }).into_owned()
}

fn write(reply: ffi::WriteFn, ctx: *mut c_void, text: &str) {
    // SAFETY: the plugin passed `reply` and `ctx` for this call.
    unsafe { reply(ctx, text.as_ptr() as *const c_char, text.len()) }
}

unsafe extern "C" fn host_log(data: *mut c_void, level: i32, msg: *const c_char, len: usize) {
    // SAFETY: the table's `host_data` is this double's `Inner`.
    let inner = unsafe { inner(data) };
    lock(&inner.logs).push((level, text(msg, len)));
}

unsafe extern "C" fn host_query(
    data: *mut c_void,
    path: *const c_char,
    path_len: usize,
    reply: ffi::WriteFn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: as in `host_log`.
    let inner = unsafe { inner(data) };
    let path = text(path, path_len);
    lock(&inner.queries).push(path.clone());
    let answer = lock(&inner.answers).get(&path).cloned().unwrap_or_else(|| {
        Err(HostError::not_found(format!(
            "{path}: not available in this host double"
        )))
    });
    result(reply, ctx, answer)
}

/// Writes a call's answer (or its error's message) and returns its result code.
fn result(reply: ffi::WriteFn, ctx: *mut c_void, answer: Result<Value, HostError>) -> i32 {
    match answer {
        Ok(value) => {
            write(reply, ctx, &value.to_string());
            ffi::AR_HOST_OK
        }
        Err(e) => {
            write(reply, ctx, e.message());
            e.kind().code()
        }
    }
}

unsafe extern "C" fn host_emit(
    data: *mut c_void,
    event: *const c_char,
    len: usize,
    reply: ffi::WriteFn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: as in `host_log`.
    let inner = unsafe { inner(data) };
    match serde_json::from_str::<Value>(&text(event, len)) {
        Ok(event) => {
            let mut emits = lock(&inner.emits);
            emits.push(event);
            let id = format!("emitted-{}", emits.len());
            result(reply, ctx, Ok(json!({"accepted": 1, "ids": [id]})))
        }
        Err(e) => result(
            reply,
            ctx,
            Err(HostError::bad_request(format!(
                "the event is not JSON: {e}"
            ))),
        ),
    }
}

unsafe extern "C" fn host_render(
    data: *mut c_void,
    name: *const c_char,
    name_len: usize,
    context: *const c_char,
    context_len: usize,
    reply: ffi::WriteFn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: as in `host_log`.
    let inner = unsafe { inner(data) };
    let name = text(name, name_len);
    let raw = text(context, context_len);
    let context = if raw.is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_str::<Value>(&raw)
    };
    let context = match context {
        Ok(context) => context,
        Err(e) => {
            let e = HostError::bad_request(format!("the context is not JSON: {e}"));
            return result(reply, ctx, Err(e));
        }
    };
    lock(&inner.renders).push((name.clone(), context.clone()));
    // A panicking renderer must not unwind into the plugin.
    let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (inner.renderer)(&name, &context)
    }))
    .unwrap_or_else(|_| {
        Err(HostError::failed(format!(
            "the test renderer panicked on {name}"
        )))
    });
    result(reply, ctx, rendered)
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn host_request(
    data: *mut c_void,
    method: *const c_char,
    method_len: usize,
    path: *const c_char,
    path_len: usize,
    body: *const c_char,
    body_len: usize,
    reply: ffi::WriteFn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: as in `host_log`.
    let inner = unsafe { inner(data) };
    let (method, path, raw) = (
        text(method, method_len),
        text(path, path_len),
        text(body, body_len),
    );
    let body = if raw.is_empty() {
        None
    } else {
        match serde_json::from_str::<Value>(&raw) {
            Ok(body) => Some(body),
            Err(e) => {
                let e = HostError::bad_request(format!("the body is not JSON: {e}"));
                return result(reply, ctx, Err(e));
            }
        }
    };
    let key = format!("{method} {path}");
    lock(&inner.requests).push(Request { method, path, body });
    let answer = lock(&inner.request_answers)
        .get(&key)
        .cloned()
        .unwrap_or_else(|| {
            Err(HostError::not_found(format!(
                "{key}: not available in this host double"
            )))
        });
    result(reply, ctx, answer)
}

unsafe extern "C" fn host_set_health(
    data: *mut c_void,
    healthy: i32,
    reason: *const c_char,
    len: usize,
) {
    // SAFETY: as in `host_log`.
    let inner = unsafe { inner(data) };
    let report = if healthy != 0 {
        Ok(())
    } else {
        Err(text(reason, len))
    };
    lock(&inner.health).push(report);
}

/// A runtime for a fake upstream, apart from the test thread, which calls the sink as
/// the router's sink thread would.
pub fn upstream_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the fake upstream")
}

/// Attempt `attempt` of message `id` to a sink named "test", with no event.
pub fn message(id: &str, attempt: u32, payload: &Value) -> Message {
    Message {
        id: id.to_owned(),
        sink: "test".to_owned(),
        attempt,
        payload: payload.clone(),
        event: json!({}),
    }
}

/// The reason an outcome gives ("" for `Ok`).
pub fn reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Ok => "",
        Outcome::Retry { reason, .. } | Outcome::Fail { reason } => reason,
    }
}

/// The reason of a failure; anything else fails the test.
pub fn reason_of_fail(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Fail { reason } => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Fails the test if any of `secrets` is in a reason or in a line the sink logged.
pub fn assert_secret_free(host: &HostDouble, reasons: &[String], secrets: &[&str]) {
    let logs = host.logs();
    for secret in secrets {
        for text in reasons.iter().chain(&logs) {
            assert!(!text.contains(secret), "{secret:?} leaked into {text:?}");
        }
    }
}
