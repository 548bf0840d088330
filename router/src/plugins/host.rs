//! The `ar_host` table a plugin instance calls back into: [`HostServices`] (what the rest
//! of the router provides), the instance's [`Health`] reports, the C callbacks that reach
//! them, and [`HostTable`], the allocation that holds the table: never freed, ended when
//! the instance is destroyed.

use std::any::Any;
use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use alert_router_plugin::{HostError, Level, ffi};

use super::error::plugin_text;

/// What the router offers plugins through `ar_host`. Implemented by the part of the router
/// that owns the state store, ingest and templates; called from any thread, including
/// threads a plugin started, possibly several at once. `sink` is the name of the sink whose
/// instance is calling. A failure's kind becomes the `AR_HOST_*` code the plugin gets, its
/// message the line written to the plugin's `reply` (the header says which kind each
/// failure of each call is).
pub trait HostServices: Send + Sync + 'static {
    /// Answer a `query` (path below /v1, e.g. "status", "state/trades?limit=5"): JSON text or why not.
    fn query(&self, sink: &str, path: &str) -> Result<String, HostError>;
    /// Ingest one event posted by a plugin (JSON text): the answer JSON or why it was refused.
    fn emit(&self, sink: &str, event_json: &[u8]) -> Result<String, HostError>;
    /// Render this sink's template `name` with the JSON object `context_json`: payload JSON or why not.
    fn render(&self, sink: &str, name: &str, context_json: &[u8]) -> Result<String, HostError>;
    /// Make a `request`, a write below /v1 (`"POST"` `"silences"` with a JSON body,
    /// `"DELETE"` `"silences/<id>"` with none): the answer JSON or why not.
    fn request(
        &self,
        sink: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<String, HostError>;
}

/// How a plugin says its sink is doing outside any delivery (`ar_host.set_health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// With the plugin's reason, made one line.
    Unhealthy(String),
}

/// Where an instance's health reports go (its sink's status).
pub type HealthListener = Arc<dyn Fn(Health) + Send + Sync>;

/// One instance's health reports. The latest is held until the router connects the
/// instance to its sink (a report made during `create` comes before there is a sink to
/// show it), then each is passed on as it comes, until the instance ends.
#[derive(Default)]
pub(super) struct HealthReports(Mutex<Reports>);

enum Reports {
    Held(Option<Health>),
    PassedOn(HealthListener),
    /// The instance is gone: reports from threads that outlived it are dropped, and the
    /// listener (which holds the sink's state) is released.
    Ended,
}

impl Default for Reports {
    fn default() -> Self {
        Reports::Held(None)
    }
}

impl HealthReports {
    fn lock(&self) -> std::sync::MutexGuard<'_, Reports> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn report(&self, health: Health) {
        let mut reports = self.lock();
        match &*reports {
            Reports::Held(_) => *reports = Reports::Held(Some(health)),
            // Under the lock, so two threads' reports arrive in the order they were made.
            Reports::PassedOn(listener) => listener(health),
            Reports::Ended => {}
        }
    }

    /// Passes the held report, and every later one, to `listener`.
    pub(super) fn pass_on_to(&self, listener: HealthListener) {
        let mut reports = self.lock();
        match &*reports {
            Reports::Held(held) => {
                if let Some(held) = held {
                    listener(held.clone());
                }
                *reports = Reports::PassedOn(listener);
            }
            Reports::PassedOn(_) => *reports = Reports::PassedOn(listener),
            Reports::Ended => {}
        }
    }

    /// Drops every later report and releases the listener.
    fn end(&self) {
        let released = std::mem::replace(&mut *self.lock(), Reports::Ended);
        // Outside the lock: the listener's captures are dropped with it.
        drop(released);
    }
}

/// What `host_data` points to. Never freed: a plugin thread may outlive its instance.
struct HostData {
    sink: Box<str>,
    plugin: Box<str>,
    /// Read on every call: a per-instance lock, taken only to clone the Arc out, so calls
    /// never wait on each other and `end` never waits for a call in progress.
    state: RwLock<State>,
    health: HealthReports,
}

enum State {
    Live(Arc<dyn HostServices>),
    /// The services were released: what is left is the names and the table.
    Ended(Ended),
}

/// Why an instance's table no longer reaches the router's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// The plugin's `destroy` returned.
    Destroyed,
    /// The plugin's `create` refused: there never was an instance.
    Refused,
}

impl HostData {
    /// The services, or why the instance can no longer use them.
    fn services(&self) -> Result<Arc<dyn HostServices>, HostError> {
        match &*self.state.read().unwrap_or_else(PoisonError::into_inner) {
            State::Live(services) => Ok(Arc::clone(services)),
            State::Ended(why) => Err(HostError::unavailable(self.ended_message(*why))),
        }
    }

    fn ended(&self) -> Option<Ended> {
        match &*self.state.read().unwrap_or_else(PoisonError::into_inner) {
            State::Live(_) => None,
            State::Ended(why) => Some(*why),
        }
    }

    fn ended_message(&self, why: Ended) -> String {
        let sink = &self.sink;
        match why {
            Ended::Destroyed => format!(
                "sink `{sink}`'s instance was destroyed; this call came from a thread that outlived it (destroy must stop and join the instance's threads)"
            ),
            Ended::Refused => format!(
                "sink `{sink}`'s create refused its settings, so there is no instance; this call came from a thread that outlived the refusal (stop the threads create started before refusing)"
            ),
        }
    }

    /// Releases the services and the health listener; later calls fail. The first reason
    /// given stays.
    fn end(&self, why: Ended) {
        let released = {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            match &*state {
                State::Live(_) => std::mem::replace(&mut *state, State::Ended(why)),
                State::Ended(_) => return,
            }
        };
        // Outside the lock: the last reference to the services may be dropped here.
        drop(released);
        self.health.end();
    }
}

/// The table and the data it points to, in one allocation that never moves.
struct HostBlock {
    table: ffi::Host,
    data: HostData,
}

/// One instance's `ar_host` table. The allocation is leaked on purpose: the header
/// promises the plugin the pointer for the life of the process, because a thread the
/// plugin failed to stop may still hold it (the SDK's `Host` is `Copy + Send`). Dropping
/// this ends the table instead (see [`HostData::end`]), which the instance does after
/// `destroy` returns: a few hundred bytes stay per instance ever created, none of the
/// router's state. A refused `create` ends it too, never frees it, for the same reason.
pub(super) struct HostTable(&'static HostBlock);

// SAFETY: the block holds only Send + Sync data (strings, locks, an Arc<dyn
// HostServices>) besides the table, whose `host_data` pointer points into the block
// itself and is only read.
unsafe impl Send for HostTable {}

impl HostTable {
    pub(super) fn new(sink: &str, plugin: &str, services: Arc<dyn HostServices>) -> HostTable {
        let block = Box::into_raw(Box::new(HostBlock {
            table: ffi::Host {
                struct_size: size_of::<ffi::Host>() as u32,
                host_data: std::ptr::null_mut(),
                log: host_log,
                // SAFETY (all four): the callbacks differ from the table's types only in
                // taking the reply callback as `Option<WriteFn>`, which the language
                // guarantees ABI-compatible with `WriteFn` (an option-like enum over a
                // non-null function pointer). Taking it as Option lets a NULL from C be
                // checked instead of being undefined behaviour on arrival.
                query: unsafe { std::mem::transmute::<QueryImpl, QueryFn>(host_query) },
                emit: unsafe { std::mem::transmute::<EmitImpl, EmitFn>(host_emit) },
                render: unsafe { std::mem::transmute::<RenderImpl, RenderFn>(host_render) },
                set_health: Some(host_set_health),
                // SAFETY: as for the three above.
                request: Some(unsafe {
                    std::mem::transmute::<RequestImpl, ffi::RequestFn>(host_request)
                }),
            },
            data: HostData {
                sink: sink.into(),
                plugin: plugin.into(),
                state: RwLock::new(State::Live(services)),
                health: HealthReports::default(),
            },
        }));
        // SAFETY: `block` is a live allocation no one else sees yet; `host_data` points
        // into it, and it is never freed, so both stay valid for the process's life.
        unsafe {
            (*block).table.host_data = (&raw mut (*block).data).cast::<c_void>();
            HostTable(&*block)
        }
    }

    /// The `ar_host *` to hand to `create`.
    pub(super) fn as_ptr(&self) -> *const ffi::Host {
        &self.0.table
    }

    /// What the instance reports about its health.
    pub(super) fn health(&self) -> &HealthReports {
        &self.0.data.health
    }

    /// Ends the table for `why` now (dropping it ends it as [`Ended::Destroyed`]).
    pub(super) fn end(self, why: Ended) {
        self.0.data.end(why);
    }
}

impl Drop for HostTable {
    /// Ends the table, never frees it: the instance calls `destroy` first.
    fn drop(&mut self) {
        self.0.data.end(Ended::Destroyed);
    }
}

type QueryFn =
    unsafe extern "C" fn(*mut c_void, *const c_char, usize, ffi::WriteFn, *mut c_void) -> i32;
type QueryImpl = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    usize,
    Option<ffi::WriteFn>,
    *mut c_void,
) -> i32;
type EmitFn = QueryFn;
type EmitImpl = QueryImpl;
type RenderFn = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    usize,
    *const c_char,
    usize,
    ffi::WriteFn,
    *mut c_void,
) -> i32;
type RenderImpl = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    usize,
    *const c_char,
    usize,
    Option<ffi::WriteFn>,
    *mut c_void,
) -> i32;

type RequestImpl = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    usize,
    *const c_char,
    usize,
    *const c_char,
    usize,
    Option<ffi::WriteFn>,
    *mut c_void,
) -> i32;

/// # Safety
/// `host_data` is NULL or the pointer a [`HostTable`] put in its table (valid forever).
unsafe fn host_data<'a>(host_data: *mut c_void) -> Option<&'a HostData> {
    // SAFETY: guaranteed by the caller.
    unsafe { (host_data as *const HostData).as_ref() }
}

const ERROR: i32 = Level::Error as i32;
const WARN: i32 = Level::Warn as i32;
const DEBUG: i32 = Level::Debug as i32;
const TRACE: i32 = Level::Trace as i32;

/// `ar_host.log`: a tracing event with the sink and plugin as fields. Unknown levels log
/// at info, so a message is never lost to a plugin's mistake.
unsafe extern "C" fn host_log(host_data: *mut c_void, level: i32, msg: *const c_char, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as the header documents, host_data is ours and msg is `len` bytes (or NULL).
        let Some(data) = (unsafe { self::host_data(host_data) }) else {
            return;
        };
        let mut text = String::from_utf8_lossy(unsafe { ffi::bytes(msg, len) });
        // Kept, not dropped: a line from a thread that outlived its instance is the
        // operator's clue to the plugin's bug, and must not pass for a new instance's.
        match data.ended() {
            None => {}
            Some(Ended::Destroyed) => text.to_mut().push_str(
                " (logged after the instance was destroyed, by a thread that outlived it)",
            ),
            Some(Ended::Refused) => text
                .to_mut()
                .push_str(" (logged after create refused, by a thread that outlived the refusal)"),
        }
        let (sink, plugin) = (&*data.sink, &*data.plugin);
        match level {
            ERROR => tracing::error!(sink, plugin, "{text}"),
            WARN => tracing::warn!(sink, plugin, "{text}"),
            DEBUG => tracing::debug!(sink, plugin, "{text}"),
            TRACE => tracing::trace!(sink, plugin, "{text}"),
            // AR_LOG_INFO, and any level a plugin made up.
            _ => tracing::info!(sink, plugin, "{text}"),
        }
    }));
}

/// `ar_host.query`.
unsafe extern "C" fn host_query(
    host_data: *mut c_void,
    path: *const c_char,
    path_len: usize,
    reply: Option<ffi::WriteFn>,
    reply_ctx: *mut c_void,
) -> i32 {
    answer(reply, reply_ctx, || {
        // SAFETY: as the header documents; NULL reads as absent or empty.
        let data = unsafe { self::host_data(host_data) }.ok_or_else(no_host_data)?;
        let path = std::str::from_utf8(unsafe { ffi::bytes(path, path_len) })
            .map_err(|_| HostError::bad_request("the query path is not UTF-8"))?;
        data.services()?.query(&data.sink, path)
    })
}

/// `ar_host.emit`.
unsafe extern "C" fn host_emit(
    host_data: *mut c_void,
    event_json: *const c_char,
    len: usize,
    reply: Option<ffi::WriteFn>,
    reply_ctx: *mut c_void,
) -> i32 {
    answer(reply, reply_ctx, || {
        // SAFETY: as the header documents; NULL reads as absent or empty.
        let data = unsafe { self::host_data(host_data) }.ok_or_else(no_host_data)?;
        let event = unsafe { ffi::bytes(event_json, len) };
        data.services()?.emit(&data.sink, event)
    })
}

/// `ar_host.render`. An empty context is taken as `{}`.
unsafe extern "C" fn host_render(
    host_data: *mut c_void,
    name: *const c_char,
    name_len: usize,
    context_json: *const c_char,
    context_len: usize,
    reply: Option<ffi::WriteFn>,
    reply_ctx: *mut c_void,
) -> i32 {
    answer(reply, reply_ctx, || {
        // SAFETY: as the header documents; NULL reads as absent or empty.
        let data = unsafe { self::host_data(host_data) }.ok_or_else(no_host_data)?;
        let name = std::str::from_utf8(unsafe { ffi::bytes(name, name_len) })
            .map_err(|_| HostError::bad_request("the template name is not UTF-8"))?;
        let context = match unsafe { ffi::bytes(context_json, context_len) } {
            [] => b"{}".as_slice(),
            context => context,
        };
        data.services()?.render(&data.sink, name, context)
    })
}

/// `ar_host.request`. The body may be empty (a method that takes none).
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn host_request(
    host_data: *mut c_void,
    method: *const c_char,
    method_len: usize,
    path: *const c_char,
    path_len: usize,
    body: *const c_char,
    body_len: usize,
    reply: Option<ffi::WriteFn>,
    reply_ctx: *mut c_void,
) -> i32 {
    answer(reply, reply_ctx, || {
        // SAFETY: as the header documents; NULL reads as absent or empty.
        let data = unsafe { self::host_data(host_data) }.ok_or_else(no_host_data)?;
        let method = std::str::from_utf8(unsafe { ffi::bytes(method, method_len) })
            .map_err(|_| HostError::bad_request("the request method is not UTF-8"))?;
        let path = std::str::from_utf8(unsafe { ffi::bytes(path, path_len) })
            .map_err(|_| HostError::bad_request("the request path is not UTF-8"))?;
        let body = unsafe { ffi::bytes(body, body_len) };
        data.services()?.request(&data.sink, method, path, body)
    })
}

/// `ar_host.set_health`: 0 is unhealthy with `reason`, anything else healthy.
unsafe extern "C" fn host_set_health(
    host_data: *mut c_void,
    healthy: i32,
    reason: *const c_char,
    reason_len: usize,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as the header documents; NULL reads as absent or empty.
        let Some(data) = (unsafe { self::host_data(host_data) }) else {
            return;
        };
        let health = if healthy != 0 {
            Health::Healthy
        } else {
            let reason = plugin_text(unsafe { ffi::bytes(reason, reason_len) });
            Health::Unhealthy(if reason.is_empty() {
                "the plugin reported the sink unhealthy without giving a reason".to_owned()
            } else {
                reason
            })
        };
        data.health.report(health);
    }));
}

fn no_host_data() -> HostError {
    HostError::bad_request(
        "host_data is NULL: pass the `host_data` of the ar_host table given to create",
    )
}

/// Runs a service call and writes its answer (or its error line) to `reply`: `AR_HOST_OK`
/// on success, else the code of the failure's kind. A panic in the router becomes an
/// `AR_HOST_FAILED` error line: it must never unwind into C.
fn answer(
    reply: Option<ffi::WriteFn>,
    reply_ctx: *mut c_void,
    call: impl FnOnce() -> Result<String, HostError>,
) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        let (rc, text) = match catch_unwind(AssertUnwindSafe(call)) {
            Ok(Ok(text)) => (ffi::AR_HOST_OK, text),
            Ok(Err(e)) => (e.kind().code(), e.message().to_owned()),
            Err(panic) => (
                ffi::AR_HOST_FAILED,
                format!("the router failed while answering: {}", panic_text(&*panic)),
            ),
        };
        if let Some(reply) = reply {
            // SAFETY: the plugin passed `reply` and `reply_ctx` together for this call.
            unsafe { reply(reply_ctx, text.as_ptr().cast::<c_char>(), text.len()) };
        }
        rc
    }))
    .unwrap_or(ffi::AR_HOST_FAILED)
}

fn panic_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;

    const INFO: i32 = Level::Info as i32;

    struct Services;

    impl HostServices for Services {
        fn query(&self, sink: &str, path: &str) -> Result<String, HostError> {
            match path {
                "status" => Ok(format!(r#"{{"sink":"{sink}"}}"#)),
                "boom" => panic!("state store exploded"),
                "state/trades?limit=ten" => Err(HostError::bad_request("limit: give a number")),
                "later" => Err(HostError::unavailable("the router is starting or stopping")),
                "broken" => Err(HostError::failed("the disk said no")),
                other => Err(HostError::not_found(format!("no such resource: {other}"))),
            }
        }
        fn emit(&self, sink: &str, event_json: &[u8]) -> Result<String, HostError> {
            Ok(format!(
                "{sink} got {}",
                String::from_utf8_lossy(event_json)
            ))
        }
        fn render(&self, sink: &str, name: &str, context_json: &[u8]) -> Result<String, HostError> {
            Ok(format!(
                "{sink}/{name} with {}",
                String::from_utf8_lossy(context_json)
            ))
        }
        fn request(
            &self,
            sink: &str,
            method: &str,
            path: &str,
            body: &[u8],
        ) -> Result<String, HostError> {
            match (method, path) {
                ("POST", "silences") => Ok(format!("{sink} set {}", String::from_utf8_lossy(body))),
                ("DELETE", "silences/nope") => Err(HostError::not_found("no silence nope")),
                _ => Err(HostError::bad_request(format!("{method} {path}: no"))),
            }
        }
    }

    /// Calls `request` through a table pointer as a plugin would.
    fn request_at(table: *const ffi::Host, method: &str, path: &str, body: &[u8]) -> (i32, String) {
        // SAFETY: a table HostTable made (never freed); `out` outlives the call.
        unsafe {
            let t = &*table;
            assert!(ffi::host_has_request(t.struct_size));
            let request = t.request.expect("the router's table has request");
            let mut out = Vec::<u8>::new();
            let rc = request(
                t.host_data,
                method.as_ptr().cast(),
                method.len(),
                path.as_ptr().cast(),
                path.len(),
                body.as_ptr().cast(),
                body.len(),
                ffi::write_to_vec,
                (&raw mut out).cast(),
            );
            (rc, String::from_utf8(out).unwrap())
        }
    }

    #[test]
    fn request_reaches_the_services_with_method_path_and_body() {
        let table = table();
        let raw = table.as_ptr();
        assert_eq!(
            request_at(raw, "POST", "silences", br#"{"matchers":"type=x"}"#),
            (0, r#"tg-ops set {"matchers":"type=x"}"#.to_owned())
        );
        assert_eq!(
            request_at(raw, "DELETE", "silences/nope", b""),
            (ffi::AR_HOST_NOT_FOUND, "no silence nope".to_owned())
        );
        assert_eq!(
            request_at(raw, "POST", "status", b"{}"),
            (ffi::AR_HOST_BAD_REQUEST, "POST status: no".to_owned())
        );
        drop(table);
        let (rc, message) = request_at(raw, "POST", "silences", b"{}");
        assert_eq!(rc, ffi::AR_HOST_UNAVAILABLE);
        assert!(message.contains("instance was destroyed"), "{message}");
    }

    fn table() -> HostTable {
        HostTable::new("tg-ops", "telegram", Arc::new(Services))
    }

    /// Calls `query` through the table as a plugin would.
    fn query(table: &HostTable, path: &str) -> (i32, String) {
        query_at(table.as_ptr(), path)
    }

    /// Calls `query` through a table pointer kept past its HostTable, as a plugin thread
    /// that outlived its instance would.
    fn query_at(table: *const ffi::Host, path: &str) -> (i32, String) {
        // SAFETY: a table HostTable made (never freed); `out` outlives the call.
        unsafe {
            let t = &*table;
            let mut out = Vec::<u8>::new();
            let rc = (t.query)(
                t.host_data,
                path.as_ptr().cast(),
                path.len(),
                ffi::write_to_vec,
                (&raw mut out).cast(),
            );
            (rc, String::from_utf8(out).unwrap())
        }
    }

    #[test]
    fn query_emit_and_render_reach_the_services_with_the_sink_name() {
        let table = table();
        assert_eq!(
            query(&table, "status"),
            (0, r#"{"sink":"tg-ops"}"#.to_owned())
        );
        // SAFETY: a live table; `out` outlives each call.
        unsafe {
            let t = &*table.as_ptr();
            let mut out = Vec::<u8>::new();
            let event = br#"{"type":"x"}"#;
            let rc = (t.emit)(
                t.host_data,
                event.as_ptr().cast(),
                event.len(),
                ffi::write_to_vec,
                (&raw mut out).cast(),
            );
            assert_eq!(
                (rc, out.as_slice()),
                (0, br#"tg-ops got {"type":"x"}"#.as_slice())
            );
            let mut out = Vec::<u8>::new();
            let rc = (t.render)(
                t.host_data,
                "status".as_ptr().cast(),
                6,
                std::ptr::null(),
                0,
                ffi::write_to_vec,
                (&raw mut out).cast(),
            );
            assert_eq!(
                (rc, out.as_slice()),
                (0, b"tg-ops/status with {}".as_slice())
            );
        }
    }

    #[test]
    fn each_failure_reaches_the_plugin_as_the_code_of_its_kind_with_its_message() {
        let table = table();
        for (path, code, message) in [
            ("nope", ffi::AR_HOST_NOT_FOUND, "no such resource: nope"),
            (
                "state/trades?limit=ten",
                ffi::AR_HOST_BAD_REQUEST,
                "limit: give a number",
            ),
            (
                "later",
                ffi::AR_HOST_UNAVAILABLE,
                "the router is starting or stopping",
            ),
            ("broken", ffi::AR_HOST_FAILED, "the disk said no"),
        ] {
            assert_eq!(query(&table, path), (code, message.to_owned()), "{path}");
        }
    }

    #[test]
    fn a_panic_in_the_router_is_an_error_line_not_an_unwind() {
        assert_eq!(
            query(&table(), "boom"),
            (
                ffi::AR_HOST_FAILED,
                "the router failed while answering: state store exploded".to_owned()
            )
        );
    }

    #[test]
    fn null_pointers_are_tolerated() {
        let mut out = Vec::<u8>::new();
        // SAFETY: every pointer is NULL or valid; that NULLs are handled is what is tested.
        unsafe {
            let rc = host_query(
                std::ptr::null_mut(),
                std::ptr::null(),
                5,
                Some(ffi::write_to_vec),
                (&raw mut out).cast(),
            );
            assert_eq!(rc, ffi::AR_HOST_BAD_REQUEST);
            assert!(String::from_utf8_lossy(&out).contains("host_data is NULL"));

            let table = table();
            let host_data = (*table.as_ptr()).host_data;
            // No reply callback: the answer is dropped, the return code still tells.
            assert_eq!(
                host_query(
                    host_data,
                    "status".as_ptr().cast(),
                    6,
                    None,
                    std::ptr::null_mut()
                ),
                0
            );
            assert_eq!(
                host_emit(host_data, std::ptr::null(), 3, None, std::ptr::null_mut()),
                0
            );
            assert_eq!(
                host_render(
                    host_data,
                    std::ptr::null(),
                    0,
                    std::ptr::null(),
                    0,
                    None,
                    std::ptr::null_mut()
                ),
                0
            );
            assert_eq!(
                host_request(
                    host_data,
                    std::ptr::null(),
                    4,
                    std::ptr::null(),
                    8,
                    std::ptr::null(),
                    2,
                    None,
                    std::ptr::null_mut()
                ),
                ffi::AR_HOST_BAD_REQUEST,
                "an empty method and path are a request no resource takes"
            );
            host_log(std::ptr::null_mut(), INFO, "x".as_ptr().cast(), 1);
            host_log(host_data, INFO, std::ptr::null(), 10);
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_maps_levels_and_tags_sink_and_plugin() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        let table = table();
        tracing::subscriber::with_default(subscriber, || {
            // SAFETY: a live table; each message is valid for its call.
            unsafe {
                let t = &*table.as_ptr();
                for (level, msg) in [
                    (ERROR, "e-msg"),
                    (WARN, "w-msg"),
                    (INFO, "i-msg"),
                    (DEBUG, "d-msg"),
                    (TRACE, "t-msg"),
                    (42, "unknown-level"),
                ] {
                    (t.log)(t.host_data, level, msg.as_ptr().cast(), msg.len());
                }
                (t.log)(t.host_data, WARN, b"bad \xff utf8".as_ptr().cast(), 10);
            }
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let expected = [
            ("ERROR", "e-msg"),
            ("WARN", "w-msg"),
            ("INFO", "i-msg"),
            ("DEBUG", "d-msg"),
            ("TRACE", "t-msg"),
            ("INFO", "unknown-level"),
            ("WARN", "bad \u{fffd} utf8"),
        ];
        assert_eq!(lines.len(), expected.len(), "{text}");
        for (line, (level, msg)) in lines.iter().zip(expected) {
            assert!(line.trim_start().starts_with(level), "{line}");
            assert!(line.contains(msg), "{line}");
            assert!(
                line.contains("sink=\"tg-ops\"") || line.contains("sink=tg-ops"),
                "{line}"
            );
            assert!(
                line.contains("plugin=\"telegram\"") || line.contains("plugin=telegram"),
                "{line}"
            );
        }
    }

    /// Calls `set_health` through the table as a plugin would.
    fn set_health(table: &HostTable, healthy: i32, reason: &[u8]) {
        set_health_at(table.as_ptr(), healthy, reason);
    }

    fn set_health_at(table: *const ffi::Host, healthy: i32, reason: &[u8]) {
        // SAFETY: a table HostTable made (never freed); `reason` outlives the call.
        unsafe {
            let t = &*table;
            assert!(ffi::host_has_set_health(t.struct_size));
            (t.set_health.expect("the router's table has set_health"))(
                t.host_data,
                healthy,
                reason.as_ptr().cast(),
                reason.len(),
            );
        }
    }

    #[test]
    fn health_reports_are_held_until_the_sink_runs_then_passed_on() {
        let table = table();
        // Made during `create`: only the latest counts.
        set_health(&table, 0, b"getMe: cannot reach\nthe Bot API");
        set_health(&table, 0, b"getMe: Unauthorized");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener: HealthListener = {
            let seen = seen.clone();
            Arc::new(move |h| seen.lock().unwrap().push(h))
        };
        table.health().pass_on_to(listener);
        set_health(&table, 1, b"ignored for healthy");
        set_health(&table, 0, b"");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                Health::Unhealthy("getMe: Unauthorized".into()),
                Health::Healthy,
                Health::Unhealthy(
                    "the plugin reported the sink unhealthy without giving a reason".into()
                ),
            ]
        );
        // A NULL host_data is tolerated.
        // SAFETY: NULLs are what is tested.
        unsafe { host_set_health(std::ptr::null_mut(), 0, std::ptr::null(), 3) };
    }

    #[test]
    fn after_destroy_calls_fail_as_unavailable_and_nothing_of_the_router_is_kept() {
        let services = Arc::new(Services);
        let released = Arc::downgrade(&services);
        let table = HostTable::new("tg-ops", "telegram", services);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener: HealthListener = {
            let seen = seen.clone();
            Arc::new(move |h| seen.lock().unwrap().push(h))
        };
        let listener_released = Arc::downgrade(&listener);
        table.health().pass_on_to(listener);
        // What a plugin thread keeps.
        let raw = table.as_ptr();
        assert_eq!(
            query_at(raw, "status"),
            (0, r#"{"sink":"tg-ops"}"#.to_owned())
        );
        set_health_at(raw, 1, b"");

        drop(table); // what the instance does after `destroy` returns
        assert!(released.upgrade().is_none(), "the services are released");
        assert!(
            listener_released.upgrade().is_none(),
            "the health listener is released"
        );

        let destroyed = "sink `tg-ops`'s instance was destroyed; this call came from a thread that outlived it (destroy must stop and join the instance's threads)";
        assert_eq!(
            query_at(raw, "status"),
            (ffi::AR_HOST_UNAVAILABLE, destroyed.to_owned())
        );
        // SAFETY: the table is never freed; `out` outlives each call.
        unsafe {
            let t = &*raw;
            let mut out = Vec::<u8>::new();
            let rc = (t.emit)(
                t.host_data,
                "{}".as_ptr().cast(),
                2,
                ffi::write_to_vec,
                (&raw mut out).cast(),
            );
            assert_eq!(
                (rc, out.as_slice()),
                (ffi::AR_HOST_UNAVAILABLE, destroyed.as_bytes())
            );
            let mut out = Vec::<u8>::new();
            let rc = (t.render)(
                t.host_data,
                "status".as_ptr().cast(),
                6,
                std::ptr::null(),
                0,
                ffi::write_to_vec,
                (&raw mut out).cast(),
            );
            assert_eq!(
                (rc, out.as_slice()),
                (ffi::AR_HOST_UNAVAILABLE, destroyed.as_bytes())
            );
        }
        // Ignored: the sink's status is no longer this instance's to set.
        set_health_at(raw, 0, b"late");
        assert_eq!(*seen.lock().unwrap(), [Health::Healthy]);

        // Still logged, with the sink's name, and marked as late.
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // SAFETY: the table is never freed; the message is valid for the call.
            unsafe { ((*raw).log)((*raw).host_data, WARN, "late".as_ptr().cast(), 4) };
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("late (logged after the instance was destroyed"),
            "{text}"
        );
        assert!(text.contains("tg-ops"), "{text}");
    }

    #[test]
    fn a_refused_create_ends_the_table_with_its_own_message() {
        let table = table();
        let raw = table.as_ptr();
        table.end(Ended::Refused);
        let (rc, message) = query_at(raw, "status");
        assert_eq!(rc, ffi::AR_HOST_UNAVAILABLE);
        assert!(
            message.starts_with("sink `tg-ops`'s create refused its settings"),
            "{message}"
        );
    }
}
