//! [`Host`]: the router's services as a plugin sees them (log, query, emit, render, and
//! health reports).

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

/// A handle to the router's services. Cheap to copy and usable from any thread,
/// including threads the sink starts itself, until the sink is dropped.
#[derive(Clone, Copy)]
pub struct Host {
    raw: NonNull<ffi::Host>,
}

// SAFETY: the header promises every host function is thread-safe and the table stays
// valid until `destroy` returns; the SDK drops the sink inside `destroy`.
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
    /// `raw` must be the `ar_host` pointer given to `create`, and the `Host` must not be
    /// used after `destroy` returns.
    pub unsafe fn from_raw(raw: *const ffi::Host) -> Option<Host> {
        NonNull::new(raw as *mut ffi::Host).map(|raw| Host { raw })
    }

    fn table(&self) -> &ffi::Host {
        // SAFETY: valid for the sink's lifetime (see `from_raw`).
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
    pub fn query(&self, path: &str) -> Result<serde_json::Value, String> {
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
    pub fn emit(&self, event: &serde_json::Value) -> Result<serde_json::Value, String> {
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
    pub fn render(
        &self,
        name: &str,
        context: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
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

fn answer(rc: i32, reply: Vec<u8>) -> Result<serde_json::Value, String> {
    let text = String::from_utf8_lossy(&reply);
    if rc != 0 {
        return Err(text.into_owned());
    }
    serde_json::from_str(&text).map_err(|e| format!("the router answered with invalid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use std::ffi::{c_char, c_void};
    use std::sync::Mutex;

    use super::*;

    unsafe extern "C" fn log(_: *mut c_void, _: i32, _: *const c_char, _: usize) {}

    unsafe extern "C" fn refuse(
        _: *mut c_void,
        _: *const c_char,
        _: usize,
        _: ffi::WriteFn,
        _: *mut c_void,
    ) -> i32 {
        1
    }

    unsafe extern "C" fn refuse_render(
        _: *mut c_void,
        _: *const c_char,
        _: usize,
        _: *const c_char,
        _: usize,
        _: ffi::WriteFn,
        _: *mut c_void,
    ) -> i32 {
        1
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

    fn table(seen: &Mutex<Vec<(i32, String)>>, struct_size: usize) -> ffi::Host {
        ffi::Host {
            struct_size: struct_size as u32,
            host_data: seen as *const _ as *mut c_void,
            log,
            query: refuse,
            emit: refuse,
            render: refuse_render,
            set_health: Some(record),
        }
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
}
