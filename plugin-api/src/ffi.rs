//! `#[repr(C)]` mirrors of `include/alert_router_plugin.h`. The header is the source of
//! truth; a C plugin compiled against it is loaded by the router's tests, which keeps
//! the two in step.

use std::ffi::{c_char, c_void};

/// The ABI version these types describe (`AR_ABI_VERSION`).
pub const ABI_VERSION: u32 = 1;
/// The symbol every plugin exports (`AR_ENTRY_SYMBOL`), NUL-terminated.
pub const ENTRY_SYMBOL: &[u8] = b"alert_router_plugin_v1\0";

/// `AR_OK`: delivered.
pub const AR_OK: i32 = 0;
/// `AR_RETRY`: not delivered, worth another attempt.
pub const AR_RETRY: i32 = 1;
/// `AR_FAIL`: not delivered, never will be.
pub const AR_FAIL: i32 = 2;

/// `AR_HOST_OK`: a host call (`query`, `emit`, `render`, `request`) did what it was asked.
pub const AR_HOST_OK: i32 = 0;
/// `AR_HOST_FAILED`: a host call failed for another reason, which its message gives. A
/// host from before the other codes returns it for every failure.
pub const AR_HOST_FAILED: i32 = 1;
/// `AR_HOST_BAD_REQUEST`: the call is wrong and fails the same way every time.
pub const AR_HOST_BAD_REQUEST: i32 = 2;
/// `AR_HOST_NOT_FOUND`: what the call names (a resource, a template) does not exist.
pub const AR_HOST_NOT_FOUND: i32 = 3;
/// `AR_HOST_UNAVAILABLE`: the router cannot do it now; the same call may succeed later.
pub const AR_HOST_UNAVAILABLE: i32 = 4;

/// `ar_write_fn`: receives bytes handed back across the boundary, borrowed for the call.
pub type WriteFn = unsafe extern "C" fn(ctx: *mut c_void, bytes: *const c_char, len: usize);

/// `ar_host`: the host's services, valid from `create` for the life of the process (calls
/// after `destroy` fail with `AR_HOST_UNAVAILABLE`).
#[repr(C)]
pub struct Host {
    pub struct_size: u32,
    pub host_data: *mut c_void,
    pub log:
        unsafe extern "C" fn(host_data: *mut c_void, level: i32, msg: *const c_char, len: usize),
    pub query: unsafe extern "C" fn(
        host_data: *mut c_void,
        path: *const c_char,
        path_len: usize,
        reply: WriteFn,
        reply_ctx: *mut c_void,
    ) -> i32,
    pub emit: unsafe extern "C" fn(
        host_data: *mut c_void,
        event_json: *const c_char,
        len: usize,
        reply: WriteFn,
        reply_ctx: *mut c_void,
    ) -> i32,
    pub render: unsafe extern "C" fn(
        host_data: *mut c_void,
        name: *const c_char,
        name_len: usize,
        context_json: *const c_char,
        context_len: usize,
        reply: WriteFn,
        reply_ctx: *mut c_void,
    ) -> i32,
    /// Added to ABI 1 later: a host's table has it only when its `struct_size` covers
    /// it ([`host_has_set_health`]). NULL reads as `None`.
    pub set_health: Option<SetHealthFn>,
    /// Added to ABI 1 later, after `set_health`: a host's table has it only when its
    /// `struct_size` covers it ([`host_has_request`]). NULL reads as `None`.
    pub request: Option<RequestFn>,
}

/// `ar_host.set_health`: how the sink is doing outside a delivery (1 healthy, 0 not,
/// with a one-line reason).
pub type SetHealthFn = unsafe extern "C" fn(
    host_data: *mut c_void,
    healthy: i32,
    reason: *const c_char,
    reason_len: usize,
);

/// Whether a host table that says it is `struct_size` bytes long has `set_health`
/// (`AR_HOST_HAS(host, set_health)`).
pub fn host_has_set_health(struct_size: u32) -> bool {
    struct_size as usize
        >= std::mem::offset_of!(Host, set_health) + size_of::<Option<SetHealthFn>>()
}

/// `ar_host.request`: a write to the router's data below `/v1` (`"POST"` `"silences"`,
/// `"DELETE"` `"silences/<id>"`), answered with JSON or an `AR_HOST_*` code and a line.
pub type RequestFn = unsafe extern "C" fn(
    host_data: *mut c_void,
    method: *const c_char,
    method_len: usize,
    path: *const c_char,
    path_len: usize,
    body: *const c_char,
    body_len: usize,
    reply: WriteFn,
    reply_ctx: *mut c_void,
) -> i32;

/// Whether a host table that says it is `struct_size` bytes long has `request`
/// (`AR_HOST_HAS(host, request)`).
pub fn host_has_request(struct_size: u32) -> bool {
    struct_size as usize >= std::mem::offset_of!(Host, request) + size_of::<Option<RequestFn>>()
}

/// `ar_plugin`: the descriptor returned by the entry symbol.
#[repr(C)]
pub struct Plugin {
    pub abi_version: u32,
    pub struct_size: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub manifest: *const c_char,
    pub create: unsafe extern "C" fn(
        host: *const Host,
        settings_json: *const c_char,
        settings_len: usize,
        error: WriteFn,
        error_ctx: *mut c_void,
    ) -> *mut c_void,
    pub deliver: unsafe extern "C" fn(
        instance: *mut c_void,
        message_json: *const c_char,
        message_len: usize,
        retry_after_ms: *mut u64,
        reason: WriteFn,
        reason_ctx: *mut c_void,
    ) -> i32,
    pub destroy: unsafe extern "C" fn(instance: *mut c_void),
    /// Added to ABI 1 later: a descriptor has it only when its `struct_size` covers it
    /// ([`plugin_has_validate`]). NULL reads as `None`.
    pub validate: Option<ValidateFn>,
}

/// `ar_plugin.validate`: judges a sink's settings without side effects; `AR_OK`, or
/// `AR_FAIL` with a one-line reason written to `error`.
pub type ValidateFn = unsafe extern "C" fn(
    settings_json: *const c_char,
    settings_len: usize,
    error: WriteFn,
    error_ctx: *mut c_void,
) -> i32;

/// The size of an ABI 1 descriptor as first released (up to `destroy`): the least a host
/// accepts.
pub const PLUGIN_ABI1_SIZE: usize = std::mem::offset_of!(Plugin, validate);

/// Whether a descriptor that says it is `struct_size` bytes long has `validate`
/// (`AR_PLUGIN_HAS(plugin, validate)`).
pub fn plugin_has_validate(struct_size: u32) -> bool {
    struct_size as usize >= std::mem::offset_of!(Plugin, validate) + size_of::<Option<ValidateFn>>()
}

// SAFETY: a descriptor is immutable static data: string literals and function pointers.
unsafe impl Sync for Plugin {}

/// `ar_plugin_entry`: the type of the entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const Plugin;

/// An [`WriteFn`] that appends to the `Vec<u8>` that `ctx` points to. Both sides of the
/// ABI use it to collect what the other side writes back.
///
/// # Safety
/// `ctx` must point to a live `Vec<u8>`, and `bytes` to `len` readable bytes.
pub unsafe extern "C" fn write_to_vec(ctx: *mut c_void, bytes: *const c_char, len: usize) {
    if ctx.is_null() || bytes.is_null() || len == 0 {
        return;
    }
    // SAFETY: guaranteed by the caller, as documented above.
    unsafe {
        let out = &mut *(ctx as *mut Vec<u8>);
        out.extend_from_slice(std::slice::from_raw_parts(bytes as *const u8, len));
    }
}

/// Borrows a (pointer, length) pair from the other side as bytes; NULL reads as empty.
///
/// # Safety
/// `ptr` must be NULL or point to `len` bytes that stay valid for `'a`.
pub unsafe fn bytes<'a>(ptr: *const c_char, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }
    }
}
