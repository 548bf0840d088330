//! [`Host`]: the router's services as a plugin sees them (log, query, emit, render,
//! request, and health reports), and [`HostError`], why a call to them failed.

use std::ffi::{c_char, c_void};
use std::ptr::NonNull;

use crate::ffi;

/// Log levels for [`Host::log`], as `AR_LOG_*` in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// Why the router did not do what a [`Host`] call asked: a [kind](HostErrorKind) to
/// decide by, and the router's one-line message to show or log. It displays as the
/// message alone.
///
/// ```
/// use alert_router_plugin::{HostError, HostErrorKind};
///
/// let e = HostError::new(HostErrorKind::Unavailable, "the router is starting or stopping");
/// match e.kind() {
///     HostErrorKind::Unavailable => { /* ask again later */ }
///     _ => { /* show e: it says what is wrong */ }
/// }
/// assert_eq!(e.to_string(), "the router is starting or stopping");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    kind: HostErrorKind,
    message: String,
}

/// What kind of failure a [`HostError`] is: the `AR_HOST_*` result code the router
/// returned (see the header for which call returns which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostErrorKind {
    /// `AR_HOST_FAILED`: failed for a reason the message gives (a template that does not
    /// render, a disk error). Also every failure from a router older than these codes,
    /// and any code this SDK does not know.
    Failed,
    /// `AR_HOST_BAD_REQUEST`: the call is wrong (an unknown parameter, a bad value, an
    /// event that is not valid); it fails the same way every time.
    BadRequest,
    /// `AR_HOST_NOT_FOUND`: what the call names does not exist (a resource, a template).
    NotFound,
    /// `AR_HOST_UNAVAILABLE`: the router cannot do it now (starting, stopping, its outbox
    /// full); the same call may succeed later. Also every call made through a [`Host`]
    /// after its sink was dropped (by a thread that outlived it), which never succeeds.
    Unavailable,
}

impl HostErrorKind {
    /// The kind a non-zero result code stands for; codes this SDK does not know (a
    /// newer router's) are [`Failed`](HostErrorKind::Failed), as the header says.
    pub fn from_code(code: i32) -> HostErrorKind {
        match code {
            ffi::AR_HOST_BAD_REQUEST => HostErrorKind::BadRequest,
            ffi::AR_HOST_NOT_FOUND => HostErrorKind::NotFound,
            ffi::AR_HOST_UNAVAILABLE => HostErrorKind::Unavailable,
            _ => HostErrorKind::Failed,
        }
    }

    /// The result code (`AR_HOST_*`) a host returns for this kind.
    pub fn code(self) -> i32 {
        match self {
            HostErrorKind::Failed => ffi::AR_HOST_FAILED,
            HostErrorKind::BadRequest => ffi::AR_HOST_BAD_REQUEST,
            HostErrorKind::NotFound => ffi::AR_HOST_NOT_FOUND,
            HostErrorKind::Unavailable => ffi::AR_HOST_UNAVAILABLE,
        }
    }
}

impl HostError {
    /// An error of `kind` saying `message` (one line: what went wrong, what to do).
    pub fn new(kind: HostErrorKind, message: impl Into<String>) -> HostError {
        HostError {
            kind,
            message: message.into(),
        }
    }

    /// [`HostErrorKind::Failed`] with `message`.
    pub fn failed(message: impl Into<String>) -> HostError {
        HostError::new(HostErrorKind::Failed, message)
    }

    /// [`HostErrorKind::BadRequest`] with `message`.
    pub fn bad_request(message: impl Into<String>) -> HostError {
        HostError::new(HostErrorKind::BadRequest, message)
    }

    /// [`HostErrorKind::NotFound`] with `message`.
    pub fn not_found(message: impl Into<String>) -> HostError {
        HostError::new(HostErrorKind::NotFound, message)
    }

    /// [`HostErrorKind::Unavailable`] with `message`.
    pub fn unavailable(message: impl Into<String>) -> HostError {
        HostError::new(HostErrorKind::Unavailable, message)
    }

    pub fn kind(&self) -> HostErrorKind {
        self.kind
    }

    /// The router's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HostError {}

/// A handle to the router's services. Cheap to copy and usable from any thread,
/// including threads the sink starts itself.
///
/// It may be kept by a thread that outlives the sink (one `Drop` failed to stop): the
/// router keeps the table it points to for the life of the process. Once the sink is
/// dropped, [`query`](Host::query), [`emit`](Host::emit), [`render`](Host::render) and
/// [`request`](Host::request) return [`HostErrorKind::Unavailable`] with a message
/// saying the instance was destroyed, health reports are ignored, and
/// [`log`](Host::log) still logs, marked as late. Still, stop and join the sink's threads in `Drop`: routers built before this
/// promise freed the table.
#[derive(Clone, Copy)]
pub struct Host {
    raw: NonNull<ffi::Host>,
}

// SAFETY: the header promises every host function is thread-safe and the table valid for
// the life of the process (calls after `destroy` fail cleanly).
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}

impl Host {
    /// Wraps the table the router passed to `create`.
    ///
    /// # Safety
    /// `raw` must be the `ar_host` pointer given to `create` by a host that keeps it valid
    /// for the life of the process, as the header promises (a `Host` from an older host
    /// must not be used after `destroy` returns).
    pub unsafe fn from_raw(raw: *const ffi::Host) -> Option<Host> {
        NonNull::new(raw as *mut ffi::Host).map(|raw| Host { raw })
    }

    fn table(&self) -> &ffi::Host {
        // SAFETY: valid for the life of the process (see `from_raw`).
        unsafe { self.raw.as_ref() }
    }

    /// Writes a line to the router's log, tagged with the sink's name. Never log secrets.
    pub fn log(&self, level: Level, message: &str) {
        let t = self.table();
        // SAFETY: the slice is valid for the call; the host copies it.
        unsafe {
            (t.log)(
                t.host_data,
                level as i32,
                message.as_ptr() as *const c_char,
                message.len(),
            )
        }
    }

    pub fn error(&self, message: &str) {
        self.log(Level::Error, message)
    }

    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message)
    }

    pub fn info(&self, message: &str) {
        self.log(Level::Info, message)
    }

    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message)
    }

    /// Reads router data: `path` names a resource of the HTTP API below `/v1`, such as
    /// `"status"`, `"state/portfolio"` or `"state/trades?limit=10"`, or
    /// `"delivered?limit=N"`: this sink's latest delivered messages the outbox still
    /// keeps, oldest first, as [`Message`](crate::Message) objects.
    ///
    /// Fails with [`NotFound`](HostErrorKind::NotFound) for a resource the router does
    /// not have, [`BadRequest`](HostErrorKind::BadRequest) for a parameter it does not
    /// take or a bad value, [`Unavailable`](HostErrorKind::Unavailable) while it starts
    /// or stops.
    pub fn query(&self, path: &str) -> Result<serde_json::Value, HostError> {
        let t = self.table();
        let mut reply = Vec::new();
        // SAFETY: `path` is valid for the call; `reply` outlives it.
        let rc = unsafe {
            (t.query)(
                t.host_data,
                path.as_ptr() as *const c_char,
                path.len(),
                ffi::write_to_vec,
                &mut reply as *mut Vec<u8> as *mut c_void,
            )
        };
        answer(rc, reply)
    }

    /// Posts an event into the router, as `POST /v1/events` would. Returns the router's
    /// answer, `{"accepted": 1, "ids": [...]}`.
    ///
    /// Fails with [`BadRequest`](HostErrorKind::BadRequest) for an event the router
    /// refuses (the message names the field), [`Unavailable`](HostErrorKind::Unavailable)
    /// when it cannot take one now (nothing was accepted: emit it again later).
    pub fn emit(&self, event: &serde_json::Value) -> Result<serde_json::Value, HostError> {
        let t = self.table();
        let body = event.to_string();
        let mut reply = Vec::new();
        // SAFETY: `body` is valid for the call; `reply` outlives it.
        let rc = unsafe {
            (t.emit)(
                t.host_data,
                body.as_ptr() as *const c_char,
                body.len(),
                ffi::write_to_vec,
                &mut reply as *mut Vec<u8> as *mut c_void,
            )
        };
        answer(rc, reply)
    }
}

impl Host {
    /// Renders this sink's template `name` (`templates/<sink>/<name>.yaml`, then
    /// `templates/<plugin>/<name>.yaml`) with `context`'s keys as template variables, and
    /// returns the rendered payload. Use it for what a plugin says on its own initiative,
    /// such as a bot's answer to a command, so operators can reword it.
    ///
    /// Fails with [`NotFound`](HostErrorKind::NotFound) when there is no such template,
    /// [`Failed`](HostErrorKind::Failed) when it does not render (the message gives its
    /// `file:line:col`), [`BadRequest`](HostErrorKind::BadRequest) when `context` is not
    /// an object, [`Unavailable`](HostErrorKind::Unavailable) while the sink is not
    /// running.
    pub fn render(
        &self,
        name: &str,
        context: &serde_json::Value,
    ) -> Result<serde_json::Value, HostError> {
        let t = self.table();
        let context = context.to_string();
        let mut reply = Vec::new();
        // SAFETY: both slices are valid for the call; `reply` outlives it.
        let rc = unsafe {
            (t.render)(
                t.host_data,
                name.as_ptr() as *const c_char,
                name.len(),
                context.as_ptr() as *const c_char,
                context.len(),
                ffi::write_to_vec,
                &mut reply as *mut Vec<u8> as *mut c_void,
            )
        };
        answer(rc, reply)
    }
}

impl Host {
    /// Tells the router the sink is fine, outside any delivery: a check of the upstream
    /// the sink made by itself (a login, Telegram's `getMe`) passed. `/v1/status` shows
    /// the sink healthy until a delivery or a later report says otherwise. Returns
    /// false when the router is older than this call and cannot take it.
    pub fn report_healthy(&self) -> bool {
        self.set_health(true, "")
    }

    /// Tells the router the sink is in trouble, outside any delivery: a check of the
    /// upstream the sink made by itself failed. `reason` (one line, no secrets) shows as
    /// the sink's `last_error` in `/v1/status`, and the sink as unhealthy until a
    /// delivery succeeds or a later report says it is fine. Returns false when the
    /// router is older than this call and cannot take it.
    pub fn report_unhealthy(&self, reason: &str) -> bool {
        self.set_health(false, reason)
    }

    fn set_health(&self, healthy: bool, reason: &str) -> bool {
        let t = self.table();
        if !ffi::host_has_set_health(t.struct_size) {
            return false;
        }
        let Some(set_health) = t.set_health else {
            return false;
        };
        // SAFETY: the table has the field (checked above); `reason` is valid for the call.
        unsafe {
            set_health(
                t.host_data,
                i32::from(healthy),
                reason.as_ptr() as *const c_char,
                reason.len(),
            )
        };
        true
    }
}

impl Host {
    /// Whether the router takes [`request`](Host::request): routers built before it do
    /// not, and a plugin should tell its user the router is too old for what they asked.
    pub fn can_request(&self) -> bool {
        let t = self.table();
        ffi::host_has_request(t.struct_size) && t.request.is_some()
    }

    /// Changes router data, as a write to the HTTP API below `/v1` would: `"POST"`
    /// `"silences"` with the body of `POST /v1/silences` sets a silence, `"DELETE"`
    /// `"silences/<id>"` (no body) expires one; either answers with the silence. Let
    /// only the users who may (a bot's admins) reach it, and say who in the body
    /// (`created_by`).
    ///
    /// Fails with [`NotFound`](HostErrorKind::NotFound) for a resource or id the router
    /// does not have, and when the router is older than this call (see
    /// [`can_request`](Host::can_request)); [`BadRequest`](HostErrorKind::BadRequest)
    /// for a body it refuses (the message names the field: show it to the user) or a
    /// method the resource does not take; [`Unavailable`](HostErrorKind::Unavailable)
    /// while it starts or stops; [`Failed`](HostErrorKind::Failed) when storing failed.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, HostError> {
        let t = self.table();
        let request = match t.request {
            Some(request) if ffi::host_has_request(t.struct_size) => request,
            _ => {
                return Err(HostError::not_found(format!(
                    "{method} {path}: this router is older than ar_host.request and takes no changes from plugins; upgrade the router"
                )));
            }
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut reply = Vec::new();
        // SAFETY: the table has the field (checked above); the slices are valid for the
        // call; `reply` outlives it.
        let rc = unsafe {
            request(
                t.host_data,
                method.as_ptr() as *const c_char,
                method.len(),
                path.as_ptr() as *const c_char,
                path.len(),
                body.as_ptr() as *const c_char,
                body.len(),
                ffi::write_to_vec,
                &mut reply as *mut Vec<u8> as *mut c_void,
            )
        };
        answer(rc, reply)
    }
}

/// A host call's result code and reply as the SDK's result.
fn answer(rc: i32, reply: Vec<u8>) -> Result<serde_json::Value, HostError> {
    let text = String::from_utf8_lossy(&reply);
    if rc != ffi::AR_HOST_OK {
        return Err(HostError::new(
            HostErrorKind::from_code(rc),
            text.into_owned(),
        ));
    }
    serde_json::from_str(&text)
        .map_err(|e| HostError::failed(format!("the router answered with invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use std::ffi::{c_char, c_void};
    use std::sync::Mutex;

    use super::*;

    unsafe extern "C" fn log(_: *mut c_void, _: i32, _: *const c_char, _: usize) {}

    /// Answers a call whose text (path, event, template name) is `"<code> <reply>"`:
    /// writes `<reply>` and returns `<code>`, as a host would.
    ///
    /// # Safety
    /// `text` is `len` readable bytes; `reply` and `ctx` go together.
    unsafe fn scripted(
        text: *const c_char,
        len: usize,
        reply: ffi::WriteFn,
        ctx: *mut c_void,
    ) -> i32 {
        // SAFETY: guaranteed by the caller.
        let text = String::from_utf8_lossy(unsafe { ffi::bytes(text, len) }).into_owned();
        // An emitted event arrives as JSON: a string event keeps its quotes.
        let (code, answer) = text.trim_matches('"').split_once(' ').unwrap();
        // SAFETY: guaranteed by the caller.
        unsafe { reply(ctx, answer.as_ptr().cast(), answer.len()) };
        code.parse().unwrap()
    }

    unsafe extern "C" fn scripted_call(
        _: *mut c_void,
        text: *const c_char,
        len: usize,
        reply: ffi::WriteFn,
        ctx: *mut c_void,
    ) -> i32 {
        // SAFETY: the SDK passes a valid slice and its own reply callback.
        unsafe { scripted(text, len, reply, ctx) }
    }

    unsafe extern "C" fn scripted_render(
        _: *mut c_void,
        name: *const c_char,
        name_len: usize,
        _: *const c_char,
        _: usize,
        reply: ffi::WriteFn,
        ctx: *mut c_void,
    ) -> i32 {
        // SAFETY: as in `scripted_call`.
        unsafe { scripted(name, name_len, reply, ctx) }
    }

    /// Records `(healthy, reason)` in the `Mutex<Vec<_>>` that `host_data` points to.
    unsafe extern "C" fn record(
        data: *mut c_void,
        healthy: i32,
        reason: *const c_char,
        len: usize,
    ) {
        // SAFETY: the test's table points `host_data` at its recorder; `reason` is valid.
        let (seen, reason) = unsafe {
            (
                &*(data as *const Mutex<Vec<(i32, String)>>),
                String::from_utf8_lossy(ffi::bytes(reason, len)).into_owned(),
            )
        };
        seen.lock().unwrap().push((healthy, reason));
    }

    /// Answers a request whose path is `"<code> <reply>"`, as [`scripted`] does, after
    /// recording `METHOD path body` in the recorder `host_data` points to.
    unsafe extern "C" fn scripted_request(
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
        // SAFETY: the test's table points `host_data` at its recorder; the SDK passes
        // valid slices and its own reply callback.
        unsafe {
            let seen = &*(data as *const Mutex<Vec<(i32, String)>>);
            let text = |p, n| String::from_utf8_lossy(ffi::bytes(p, n)).into_owned();
            let call = format!(
                "{} {} {}",
                text(method, method_len),
                text(path, path_len),
                text(body, body_len)
            );
            seen.lock().unwrap().push((-1, call));
            scripted(path, path_len, reply, ctx)
        }
    }

    fn table(seen: &Mutex<Vec<(i32, String)>>, struct_size: usize) -> ffi::Host {
        ffi::Host {
            struct_size: struct_size as u32,
            host_data: seen as *const _ as *mut c_void,
            log,
            query: scripted_call,
            emit: scripted_call,
            render: scripted_render,
            set_health: Some(record),
            request: Some(scripted_request),
        }
    }

    #[test]
    fn requests_reach_a_host_that_has_request_and_fail_as_too_old_without() {
        let seen = Mutex::new(Vec::new());
        let raw = table(&seen, size_of::<ffi::Host>());
        // SAFETY: the table outlives the handle.
        let host = unsafe { Host::from_raw(&raw) }.unwrap();
        assert!(host.can_request());
        let body = serde_json::json!({"matchers": "type=error", "duration": "2h"});
        assert_eq!(
            host.request("POST", r#"0 {"id":"s1"}"#, Some(&body)),
            Ok(serde_json::json!({"id": "s1"}))
        );
        assert_eq!(
            host.request("DELETE", "3 no silence has the id", None),
            Err(HostError::not_found("no silence has the id"))
        );
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (-1, format!(r#"POST 0 {{"id":"s1"}} {body}"#)),
                (-1, "DELETE 3 no silence has the id ".to_owned())
            ]
        );

        // A host built before request: its table ends after `set_health`.
        let seen = Mutex::new(Vec::new());
        let raw = table(&seen, std::mem::offset_of!(ffi::Host, request));
        // SAFETY: the table outlives the handle.
        let host = unsafe { Host::from_raw(&raw) }.unwrap();
        assert!(!host.can_request());
        let e = host.request("POST", "0 {}", Some(&body)).unwrap_err();
        assert_eq!(e.kind(), HostErrorKind::NotFound);
        assert!(e.message().contains("older than ar_host.request"), "{e}");
        assert!(
            seen.lock().unwrap().is_empty(),
            "nothing past struct_size was called"
        );
    }

    #[test]
    fn health_reports_reach_a_host_that_has_set_health() {
        let seen = Mutex::new(Vec::new());
        let raw = table(&seen, size_of::<ffi::Host>());
        // SAFETY: the table outlives the handle.
        let host = unsafe { Host::from_raw(&raw) }.unwrap();
        assert!(host.report_unhealthy("getMe: Unauthorized"));
        assert!(host.report_healthy());
        assert_eq!(
            *seen.lock().unwrap(),
            [(0, "getMe: Unauthorized".to_owned()), (1, String::new())]
        );
    }

    #[test]
    fn an_older_host_without_set_health_is_left_alone() {
        let seen = Mutex::new(Vec::new());
        // A host built before set_health: its table ends after `render`.
        let raw = table(&seen, std::mem::offset_of!(ffi::Host, set_health));
        // SAFETY: the table outlives the handle.
        let host = unsafe { Host::from_raw(&raw) }.unwrap();
        assert!(!host.report_unhealthy("getMe: Unauthorized"));
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn each_result_code_is_a_kind_with_the_routers_message() {
        let seen = Mutex::new(Vec::new());
        let raw = table(&seen, size_of::<ffi::Host>());
        // SAFETY: the table outlives the handle.
        let host = unsafe { Host::from_raw(&raw) }.unwrap();
        assert_eq!(
            host.query(r#"0 {"total_value":12500}"#),
            Ok(serde_json::json!({"total_value": 12500}))
        );
        for (code, kind) in [
            (ffi::AR_HOST_FAILED, HostErrorKind::Failed),
            (ffi::AR_HOST_BAD_REQUEST, HostErrorKind::BadRequest),
            (ffi::AR_HOST_NOT_FOUND, HostErrorKind::NotFound),
            (ffi::AR_HOST_UNAVAILABLE, HostErrorKind::Unavailable),
            // A code from a newer router, or a made-up one, reads as Failed.
            (99, HostErrorKind::Failed),
            (-1, HostErrorKind::Failed),
        ] {
            let expected = Err(HostError::new(kind, format!("said with {code}")));
            let call = format!("{code} said with {code}");
            assert_eq!(host.query(&call), expected, "query: {code}");
            assert_eq!(host.emit(&call.as_str().into()), expected, "emit: {code}");
            assert_eq!(
                host.render(&call, &serde_json::json!({})),
                expected,
                "render: {code}"
            );
        }
        let e = host.query("0 not json").unwrap_err();
        assert_eq!(e.kind(), HostErrorKind::Failed);
        assert!(
            e.message()
                .starts_with("the router answered with invalid JSON"),
            "{e}"
        );
    }

    #[test]
    fn kinds_and_codes_map_both_ways() {
        for kind in [
            HostErrorKind::Failed,
            HostErrorKind::BadRequest,
            HostErrorKind::NotFound,
            HostErrorKind::Unavailable,
        ] {
            assert_ne!(kind.code(), ffi::AR_HOST_OK);
            assert_eq!(HostErrorKind::from_code(kind.code()), kind);
        }
        let e = HostError::unavailable("the router is starting or stopping");
        assert_eq!(e.to_string(), "the router is starting or stopping");
    }

    #[test]
    fn an_older_hosts_failures_are_failed_with_its_message() {
        let seen = Mutex::new(Vec::new());
        // A host from before the result codes: its table ends after `render`, and it
        // returns 1 for every failure, whatever kind it was.
        let raw = table(&seen, std::mem::offset_of!(ffi::Host, set_health));
        // SAFETY: the table outlives the handle.
        let host = unsafe { Host::from_raw(&raw) }.unwrap();
        assert_eq!(
            host.query("1 the router is starting or stopping"),
            Err(HostError::failed("the router is starting or stopping"))
        );
        assert_eq!(
            host.query(r#"0 {"ok":true}"#),
            Ok(serde_json::json!({"ok": true}))
        );
    }
}
