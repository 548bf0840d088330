//! The C entry points [`export_plugin!`](crate::export_plugin) generates for a
//! [`Sink`]. Every one runs its body under `catch_unwind`: a panic becomes a refusal
//! (`validate`, `create`) or a failed delivery (`deliver`), never an abort of the router.

use std::any::Any;
use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use crate::{Host, Message, Outcome, Sink, ffi};

/// Turns a panic payload into the message it was raised with.
pub fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    };
    format!("plugin panicked: {text}")
}

fn write(f: ffi::WriteFn, ctx: *mut c_void, text: &str) {
    // SAFETY: the host passed `f` and `ctx` for this call; `text` outlives it.
    unsafe { f(ctx, text.as_ptr() as *const c_char, text.len()) }
}

/// `settings_json` read as `S::Settings` and passed by [`Sink::validate`]: the one path
/// both `validate` and `create` take, so the two never disagree. Empty reads as `{}`.
fn checked_settings<S: Sink>(raw: &[u8]) -> Result<S::Settings, String> {
    let raw = if raw.is_empty() {
        b"{}".as_slice()
    } else {
        raw
    };
    let settings: S::Settings =
        serde_json::from_slice(raw).map_err(|e| format!("settings: {e}"))?;
    S::validate(&settings)?;
    Ok(settings)
}

/// `validate` for sink type `S`: the settings deserialized and [`Sink::validate`]d,
/// nothing created.
///
/// # Safety
/// Called by the host as the header documents.
pub unsafe extern "C" fn validate<S: Sink>(
    settings_json: *const c_char,
    settings_len: usize,
    error: ffi::WriteFn,
    error_ctx: *mut c_void,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host keeps the settings valid for the call.
        let raw = unsafe { ffi::bytes(settings_json, settings_len) };
        checked_settings::<S>(raw).map(drop)
    }));
    let reason = match result {
        Ok(Ok(())) => return ffi::AR_OK,
        Ok(Err(reason)) => reason,
        Err(panic) => panic_message(panic),
    };
    write(error, error_ctx, &reason);
    ffi::AR_FAIL
}

/// `create` for sink type `S`.
///
/// # Safety
/// Called by the host as the header documents.
pub unsafe extern "C" fn create<S: Sink>(
    host: *const ffi::Host,
    settings_json: *const c_char,
    settings_len: usize,
    error: ffi::WriteFn,
    error_ctx: *mut c_void,
) -> *mut c_void {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host keeps `host` valid for the process's life (calls after `destroy`
        // fail cleanly), and the settings for the call.
        let host = unsafe { Host::from_raw(host) }.ok_or("the host passed no service table")?;
        let raw = unsafe { ffi::bytes(settings_json, settings_len) };
        S::create(host, checked_settings::<S>(raw)?)
    }));
    match result {
        Ok(Ok(sink)) => Box::into_raw(Box::new(Mutex::new(sink))) as *mut c_void,
        Ok(Err(reason)) => {
            write(error, error_ctx, &reason);
            std::ptr::null_mut()
        }
        Err(panic) => {
            write(error, error_ctx, &panic_message(panic));
            std::ptr::null_mut()
        }
    }
}

/// `deliver` for sink type `S`.
///
/// # Safety
/// Called by the host as the header documents, with an instance `create::<S>` returned.
pub unsafe extern "C" fn deliver<S: Sink>(
    instance: *mut c_void,
    message_json: *const c_char,
    message_len: usize,
    retry_after_ms: *mut u64,
    reason: ffi::WriteFn,
    reason_ctx: *mut c_void,
) -> i32 {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `instance` came from `create::<S>` and is not yet destroyed.
        let sink = unsafe { &*(instance as *const Mutex<S>) };
        let raw = unsafe { ffi::bytes(message_json, message_len) };
        match serde_json::from_slice::<Message>(raw) {
            // A panic in an earlier delivery poisons the lock; the sink's state is still
            // the best there is, and refusing every later message would be worse.
            Ok(message) => sink
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .deliver(message),
            Err(e) => Outcome::fail(format!("the router sent a malformed message: {e}")),
        }
    }))
    .unwrap_or_else(|panic| Outcome::fail(panic_message(panic)));
    match outcome {
        Outcome::Ok => ffi::AR_OK,
        Outcome::Retry {
            after,
            reason: text,
        } => {
            if let (Some(after), false) = (after, retry_after_ms.is_null()) {
                // SAFETY: the host passes a valid out-pointer.
                unsafe { *retry_after_ms = after.as_millis().try_into().unwrap_or(u64::MAX) };
            }
            write(reason, reason_ctx, &text);
            ffi::AR_RETRY
        }
        Outcome::Fail { reason: text } => {
            write(reason, reason_ctx, &text);
            ffi::AR_FAIL
        }
    }
}

/// `destroy` for sink type `S`: drops the sink, which joins its threads.
///
/// # Safety
/// Called once by the host with an instance `create::<S>` returned.
pub unsafe extern "C" fn destroy<S: Sink>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // A panic in Drop must not unwind into the host; the instance is gone either way.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `instance` came from `create::<S>` and is destroyed exactly once.
        drop(unsafe { Box::from_raw(instance as *mut Mutex<S>) });
    }));
}

/// The descriptor of a plugin whose manifest is generated at run time, with the manifest
/// text it points to. [`export_plugin!`](crate::export_plugin) builds one on the first
/// call of the entry symbol and keeps it in a static for the life of the process.
#[doc(hidden)]
pub struct Descriptor {
    plugin: ffi::Plugin,
    // Never read: owns the heap text `plugin.manifest` points to (a move keeps it put).
    _manifest: CString,
}

// SAFETY: the descriptor is never changed after it is built; its pointers are to static
// string literals and to the manifest text it owns, and its functions are plain `fn`s.
unsafe impl Send for Descriptor {}
// SAFETY: as above: shared reads of immutable data only.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    /// A descriptor for sink type `S` whose manifest's `settings` come from
    /// `S::Settings`. `name` and `version` end with a NUL (the macro's `concat!`).
    pub fn generated<S: Sink>(
        name: &'static str,
        version: &'static str,
        markup: &str,
        description: &str,
    ) -> Descriptor
    where
        S::Settings: schemars::JsonSchema,
    {
        debug_assert!(name.ends_with('\0') && version.ends_with('\0'));
        let text = crate::schema::manifest::<S::Settings>(markup, description);
        // JSON escapes every control character, so the text holds no NUL; were it to, an
        // empty manifest makes the router name the plugin and say what is missing.
        let manifest = CString::new(text).unwrap_or_default();
        Descriptor {
            plugin: ffi::Plugin {
                abi_version: ffi::ABI_VERSION,
                struct_size: std::mem::size_of::<ffi::Plugin>() as u32,
                name: name.as_ptr() as *const c_char,
                version: version.as_ptr() as *const c_char,
                manifest: manifest.as_ptr(),
                create: create::<S>,
                deliver: deliver::<S>,
                destroy: destroy::<S>,
                validate: Some(validate::<S>),
            },
            _manifest: manifest,
        }
    }

    /// What the entry symbol returns.
    pub fn as_ptr(&self) -> *const ffi::Plugin {
        &self.plugin
    }
}

/// Exports a [`Sink`] as a plugin: generates the `alert_router_plugin_v1` entry symbol
/// and its descriptor.
///
/// ```ignore
/// export_plugin!(
///     MySink,
///     name = "mysink",
///     markup = "none",
///     description = "Does one thing well",
/// );
/// // optionally: version = "1.2.3" after the name (defaults to the crate's version)
/// ```
///
/// `name` is what sinks write as `plugin:` in router.yaml; build the crate as a
/// `cdylib` named after it (`[lib] name = "mysink"`, giving `libmysink.so`). `markup`
/// and `description` are the manifest's (see the header); its `settings` are generated
/// from the sink's `Settings` type, which derives [`schemars::JsonSchema`] beside
/// `Deserialize` (see [`schema`](crate::schema) for how each field is described).
///
/// A plugin whose settings type has no schema may still give the whole manifest JSON
/// the header describes instead: `manifest = r#"{"markup": "none", ...}"#`.
#[macro_export]
macro_rules! export_plugin {
    ($sink:ty, name = $name:literal, markup = $markup:expr, description = $description:expr $(,)?) => {
        $crate::export_plugin!(
            $sink,
            name = $name,
            version = env!("CARGO_PKG_VERSION"),
            markup = $markup,
            description = $description
        );
    };
    ($sink:ty, name = $name:literal, version = $version:expr, markup = $markup:expr, description = $description:expr $(,)?) => {
        #[doc(hidden)]
        pub mod __alert_router_plugin_export {
            use super::*;

            static DESCRIPTOR: ::std::sync::OnceLock<$crate::export::Descriptor> =
                ::std::sync::OnceLock::new();

            /// The plugin's entry symbol (ABI version 1).
            #[unsafe(no_mangle)]
            pub extern "C" fn alert_router_plugin_v1() -> *const $crate::ffi::Plugin {
                DESCRIPTOR
                    .get_or_init(|| {
                        $crate::export::Descriptor::generated::<$sink>(
                            concat!($name, "\0"),
                            concat!($version, "\0"),
                            $markup,
                            $description,
                        )
                    })
                    .as_ptr()
            }
        }
    };
    ($sink:ty, name = $name:literal, manifest = $manifest:expr $(,)?) => {
        $crate::export_plugin!(
            $sink,
            name = $name,
            version = env!("CARGO_PKG_VERSION"),
            manifest = $manifest
        );
    };
    ($sink:ty, name = $name:literal, version = $version:expr, manifest = $manifest:expr $(,)?) => {
        #[doc(hidden)]
        pub mod __alert_router_plugin_export {
            use super::*;

            static DESCRIPTOR: $crate::ffi::Plugin = $crate::ffi::Plugin {
                abi_version: $crate::ffi::ABI_VERSION,
                struct_size: ::std::mem::size_of::<$crate::ffi::Plugin>() as u32,
                name: concat!($name, "\0").as_ptr() as *const ::std::ffi::c_char,
                version: concat!($version, "\0").as_ptr() as *const ::std::ffi::c_char,
                manifest: concat!($manifest, "\0").as_ptr() as *const ::std::ffi::c_char,
                create: $crate::export::create::<$sink>,
                deliver: $crate::export::deliver::<$sink>,
                destroy: $crate::export::destroy::<$sink>,
                validate: ::std::option::Option::Some($crate::export::validate::<$sink>),
            };

            /// The plugin's entry symbol (ABI version 1).
            #[unsafe(no_mangle)]
            pub extern "C" fn alert_router_plugin_v1() -> *const $crate::ffi::Plugin {
                &DESCRIPTOR
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::ffi::{c_char, c_void};

    use super::*;

    /// A sink whose `validate` refuses a URL that is not https, and panics on request.
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        /// Where to send.
        url: String,
        /// Makes `validate` panic.
        #[serde(default)]
        panic: bool,
    }

    struct Checked;

    impl Sink for Checked {
        type Settings = Settings;
        fn validate(settings: &Settings) -> Result<(), String> {
            assert!(!settings.panic, "validate blew up");
            if settings.url.starts_with("https://") {
                Ok(())
            } else {
                Err(format!(
                    "settings.url: {:?} is not an https URL",
                    settings.url
                ))
            }
        }
        fn create(_: Host, _: Settings) -> Result<Self, String> {
            Ok(Checked)
        }
        fn deliver(&mut self, _: Message) -> Outcome {
            Outcome::Ok
        }
    }

    /// A sink that keeps the default `validate`.
    struct Lenient;

    impl Sink for Lenient {
        type Settings = serde_json::Value;
        fn create(_: Host, _: serde_json::Value) -> Result<Self, String> {
            Ok(Lenient)
        }
        fn deliver(&mut self, _: Message) -> Outcome {
            Outcome::Ok
        }
    }

    unsafe extern "C" fn log(_: *mut c_void, _: i32, _: *const c_char, _: usize) {}
    unsafe extern "C" fn call(
        _: *mut c_void,
        _: *const c_char,
        _: usize,
        _: ffi::WriteFn,
        _: *mut c_void,
    ) -> i32 {
        ffi::AR_HOST_UNAVAILABLE
    }
    unsafe extern "C" fn render(
        _: *mut c_void,
        _: *const c_char,
        _: usize,
        _: *const c_char,
        _: usize,
        _: ffi::WriteFn,
        _: *mut c_void,
    ) -> i32 {
        ffi::AR_HOST_UNAVAILABLE
    }

    fn descriptor<S: Sink>() -> Descriptor
    where
        S::Settings: schemars::JsonSchema,
    {
        Descriptor::generated::<S>("test\0", "0.0.0\0", "none", "a test")
    }

    /// The descriptor's `validate` on `settings`: its code and what it wrote.
    fn validate_with(descriptor: &Descriptor, settings: &str) -> (i32, String) {
        let plugin = &descriptor.plugin;
        assert!(ffi::plugin_has_validate(plugin.struct_size));
        let validate = plugin.validate.expect("a generated validate");
        let mut error = Vec::<u8>::new();
        // SAFETY: as the header documents: the settings and `error` outlive the call.
        let code = unsafe {
            validate(
                settings.as_ptr().cast(),
                settings.len(),
                ffi::write_to_vec,
                (&raw mut error).cast(),
            )
        };
        (code, String::from_utf8_lossy(&error).into_owned())
    }

    /// The descriptor's `create` on `settings`: `Ok` (the instance destroyed) or the
    /// refusal.
    fn create_with(descriptor: &Descriptor, settings: &str) -> Result<(), String> {
        let plugin = &descriptor.plugin;
        let host = ffi::Host {
            struct_size: size_of::<ffi::Host>() as u32,
            host_data: std::ptr::null_mut(),
            log,
            query: call,
            emit: call,
            render,
            set_health: None,
            request: None,
        };
        let mut error = Vec::<u8>::new();
        // SAFETY: as the header documents; the table outlives the instance.
        let instance = unsafe {
            (plugin.create)(
                &host,
                settings.as_ptr().cast(),
                settings.len(),
                ffi::write_to_vec,
                (&raw mut error).cast(),
            )
        };
        if instance.is_null() {
            return Err(String::from_utf8_lossy(&error).into_owned());
        }
        // SAFETY: `create` made it; destroyed once.
        unsafe { (plugin.destroy)(instance) };
        Ok(())
    }

    #[test]
    fn validate_and_create_refuse_the_same_settings_with_the_same_words() {
        let descriptor = descriptor::<Checked>();
        assert_eq!(
            validate_with(&descriptor, r#"{"url": "https://example.com"}"#),
            (ffi::AR_OK, String::new())
        );
        assert_eq!(
            create_with(&descriptor, r#"{"url": "https://example.com"}"#),
            Ok(())
        );
        for (settings, reason) in [
            (
                r#"{"url": "http://example.com"}"#,
                r#"settings.url: "http://example.com" is not an https URL"#,
            ),
            // serde's words, as `create` has always said them.
            (
                r#"{"ur": "https://example.com"}"#,
                "settings: unknown field `ur`, expected `url` or `panic` at line 1 column 5",
            ),
            ("", "settings: missing field `url` at line 1 column 2"),
            (
                r#"{"url": "https://example.com", "panic": true}"#,
                "plugin panicked: validate blew up",
            ),
        ] {
            assert_eq!(
                validate_with(&descriptor, settings),
                (ffi::AR_FAIL, reason.to_owned()),
                "{settings}"
            );
            assert_eq!(
                create_with(&descriptor, settings),
                Err(reason.to_owned()),
                "{settings}"
            );
        }
    }

    #[test]
    fn the_default_validate_passes_what_serde_accepts() {
        let descriptor = Descriptor {
            plugin: ffi::Plugin {
                abi_version: ffi::ABI_VERSION,
                struct_size: size_of::<ffi::Plugin>() as u32,
                name: c"lenient".as_ptr(),
                version: c"0.0.0".as_ptr(),
                manifest: c"{}".as_ptr(),
                create: create::<Lenient>,
                deliver: deliver::<Lenient>,
                destroy: destroy::<Lenient>,
                validate: Some(validate::<Lenient>),
            },
            _manifest: CString::default(),
        };
        assert_eq!(
            validate_with(&descriptor, r#"{"anything": [1, 2]}"#),
            (ffi::AR_OK, String::new())
        );
        let (code, reason) = validate_with(&descriptor, "{not json");
        assert_eq!(code, ffi::AR_FAIL);
        assert!(reason.starts_with("settings: "), "{reason}");
    }

    #[test]
    fn validate_is_read_only_from_a_descriptor_that_covers_it() {
        assert!(!ffi::plugin_has_validate(ffi::PLUGIN_ABI1_SIZE as u32));
        assert!(ffi::plugin_has_validate(size_of::<ffi::Plugin>() as u32));
        // The ABI 1 descriptor as first released: two sizes and six pointers.
        assert_eq!(ffi::PLUGIN_ABI1_SIZE, 8 + 6 * size_of::<usize>());
    }
}
