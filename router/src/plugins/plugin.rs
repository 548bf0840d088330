//! [`Plugin`]: a loaded library whose descriptor passed every check, and
//! [`Plugin::create`], which starts an instance of it for one sink.

use std::ffi::{CStr, c_char, c_void};
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Once};

use alert_router_plugin::ffi;
use libloading::Library;

use super::error::plugin_text;
use super::host::{Ended, HostServices, HostTable};
use super::process::{ProcessInstance, ProcessOptions};
use super::{Instance, Manifest, PluginError, library};

pub(super) type CreateFn = unsafe extern "C" fn(
    *const ffi::Host,
    *const c_char,
    usize,
    ffi::WriteFn,
    *mut c_void,
) -> *mut c_void;
pub(super) type DeliverFn = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    usize,
    *mut u64,
    ffi::WriteFn,
    *mut c_void,
) -> i32;
pub(super) type DestroyFn = unsafe extern "C" fn(*mut c_void);

/// A plugin library, loaded and checked. Shared as `Arc<Plugin>` by the catalog and every
/// instance made from it.
pub struct Plugin {
    name: String,
    version: String,
    abi_version: u32,
    path: PathBuf,
    manifest: Manifest,
    pub(super) create_fn: CreateFn,
    pub(super) deliver_fn: DeliverFn,
    pub(super) destroy_fn: DestroyFn,
    /// `None` when the plugin has none, or was built before it (its `struct_size` ends
    /// before the field).
    validate_fn: Option<ffi::ValidateFn>,
    /// Keeps the functions above mapped; see `library::retain` for why it is never unloaded
    /// once an instance was made.
    library: Arc<Library>,
    retained: Once,
}

impl Plugin {
    /// Checks the descriptor of a freshly loaded `library` (from `path`, whose file name
    /// says the plugin is called `file_name`).
    pub(super) fn from_library(
        library: Library,
        path: &Path,
        file_name: &str,
    ) -> Result<Plugin, PluginError> {
        let bad = |problem: String| PluginError::BadDescriptor {
            path: path.to_path_buf(),
            problem,
        };
        // SAFETY: the header fixes the entry symbol's type. Read as Option: a symbol whose
        // address is NULL is reported, not called.
        let entry = unsafe { library.get::<Option<ffi::EntryFn>>(ffi::ENTRY_SYMBOL) }
            .ok()
            .and_then(|symbol| *symbol)
            .ok_or_else(|| PluginError::NoEntrySymbol {
                path: path.to_path_buf(),
            })?;
        // SAFETY: calling the entry symbol is how the ABI starts.
        let descriptor = unsafe { entry() };
        if descriptor.is_null() {
            return Err(bad("alert_router_plugin_v1() returned NULL".to_owned()));
        }
        // Only raw place reads below: no reference to the descriptor is made, because a
        // broken plugin may leave function pointers NULL, which a `&ffi::Plugin` may not hold.
        // SAFETY: every ABI version starts with abi_version and struct_size.
        let (abi_version, struct_size) =
            unsafe { ((*descriptor).abi_version, (*descriptor).struct_size) };
        if abi_version != ffi::ABI_VERSION {
            return Err(PluginError::AbiMismatch {
                path: path.to_path_buf(),
                found: abi_version,
            });
        }
        // A descriptor from before `validate` was appended is a whole ABI 1 descriptor.
        let needed = ffi::PLUGIN_ABI1_SIZE;
        if (struct_size as usize) < needed {
            return Err(bad(format!(
                "struct_size is {struct_size} bytes, smaller than the {needed} bytes of an ABI {} descriptor",
                ffi::ABI_VERSION
            )));
        }
        // SAFETY: struct_size says every ABI 1 field is present. The strings are read as
        // the header defines them: NUL-terminated and static.
        let (name, version, manifest, create_fn, deliver_fn, destroy_fn) = unsafe {
            (
                c_string((*descriptor).name),
                c_string((*descriptor).version),
                c_string((*descriptor).manifest),
                (&raw const (*descriptor).create)
                    .cast::<Option<CreateFn>>()
                    .read(),
                (&raw const (*descriptor).deliver)
                    .cast::<Option<DeliverFn>>()
                    .read(),
                (&raw const (*descriptor).destroy)
                    .cast::<Option<DestroyFn>>()
                    .read(),
            )
        };
        let validate_fn = if ffi::plugin_has_validate(struct_size) {
            // SAFETY: struct_size says the field is there; NULL reads as None.
            unsafe { (*descriptor).validate }
        } else {
            None
        };
        let name = name.map_err(|what| bad(format!("`name` {what}")))?;
        if name.is_empty() {
            return Err(bad("`name` is empty".to_owned()));
        }
        let version = version.map_err(|what| bad(format!("`version` {what}")))?;
        let manifest = manifest.map_err(|what| PluginError::BadManifest {
            path: path.to_path_buf(),
            problem: format!("the manifest {what}"),
        })?;
        let manifest = Manifest::parse(&manifest).map_err(|problem| PluginError::BadManifest {
            path: path.to_path_buf(),
            problem,
        })?;
        let missing = |field: &str| bad(format!("`{field}` is NULL; every function is required"));
        let create_fn = create_fn.ok_or_else(|| missing("create"))?;
        let deliver_fn = deliver_fn.ok_or_else(|| missing("deliver"))?;
        let destroy_fn = destroy_fn.ok_or_else(|| missing("destroy"))?;
        if name != file_name {
            // Legal, but sinks say `plugin: <file name>` while templates/<plugin>/ and the
            // logs use the descriptor's name; the mismatch is worth a word.
            tracing::warn!(
                file = %path.display(),
                plugin = %name,
                "plugin file lib{file_name}.so declares the name `{name}`; rename one so they match"
            );
        }
        Ok(Plugin {
            name,
            version,
            abi_version,
            path: path.to_path_buf(),
            manifest,
            create_fn,
            deliver_fn,
            destroy_fn,
            validate_fn,
            library: Arc::new(library),
            retained: Once::new(),
        })
    }

    /// The name the plugin declares.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version the plugin declares.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The ABI version the plugin was built for (always the router's own, or it would not
    /// have loaded).
    pub fn abi_version(&self) -> u32 {
        self.abi_version
    }

    /// The file it was loaded from (the operator's file, not the private copy).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Asks the plugin's `validate` whether it takes `settings` for sink `sink` (`null` is
    /// sent as `{}`), without starting anything. A plugin without `validate` takes every
    /// settings value here; its `create` still judges them. A refusal is
    /// [`PluginError::Refused`], its reason cleaned as [`Plugin::create`]'s is.
    ///
    /// Call [`Manifest::check_settings`] first. The plugin's code runs, but the header
    /// forbids it side effects, so this may run on any thread and as often as needed
    /// (`check`, startup, every reload).
    pub fn validate(&self, sink: &str, settings: &serde_json::Value) -> Result<(), PluginError> {
        let Some(validate_fn) = self.validate_fn else {
            return Ok(());
        };
        // Code that has run may have registered thread-local destructors (a caught panic
        // does), so the library stays mapped, as after `create`.
        self.retained.call_once(|| library::retain(&self.library));
        let settings_json = settings_json(settings);
        let mut error = Vec::<u8>::new();
        // SAFETY: the arguments are as the header documents; `settings_json` and `error`
        // outlive the call.
        let code = unsafe {
            validate_fn(
                settings_json.as_ptr().cast::<c_char>(),
                settings_json.len(),
                ffi::write_to_vec,
                (&raw mut error).cast::<c_void>(),
            )
        };
        // Only AR_OK passes: any other code is a refusal, as for `deliver`'s unknown codes.
        if code == ffi::AR_OK {
            Ok(())
        } else {
            Err(self.refusal(sink, settings, &error))
        }
    }

    /// Starts an instance of the plugin for sink `sink`, handing it `settings` as JSON
    /// (`null` is sent as `{}`). `services` answer the instance's `query`, `emit` and
    /// `render` calls until the instance is dropped.
    ///
    /// Does not check the settings against the manifest: call
    /// [`Manifest::check_settings`] first for the router's own messages, then
    /// [`Plugin::validate`] (the pipeline's `check` does both). If the plugin
    /// refuses, the error carries its reason, with any secret setting it echoed replaced by
    /// `***`, and without the place in the settings JSON a serde error ends with
    /// (`at line 1 column 6`): the operator wrote YAML, whose place the caller knows.
    ///
    /// Blocking: the plugin validates, may connect or start threads. Call it from a
    /// dedicated thread or `spawn_blocking`, never on the async runtime.
    pub fn create(
        self: &Arc<Self>,
        sink: &str,
        settings: &serde_json::Value,
        services: Arc<dyn HostServices>,
    ) -> Result<Instance, PluginError> {
        // From here on plugin code runs and may start threads or register TLS destructors.
        self.retained.call_once(|| library::retain(&self.library));
        let host = HostTable::new(sink, &self.name, services);
        let settings_json = settings_json(settings);
        let mut error = Vec::<u8>::new();
        // SAFETY: the arguments are as the header documents; the table `host` hands out is
        // never freed (it is only ended: after `destroy`, or below after a refusal);
        // `error` outlives the call.
        let handle = unsafe {
            (self.create_fn)(
                host.as_ptr(),
                settings_json.as_ptr().cast::<c_char>(),
                settings_json.len(),
                ffi::write_to_vec,
                (&raw mut error).cast::<c_void>(),
            )
        };
        match NonNull::new(handle) {
            Some(handle) => Ok(Instance::new(Arc::clone(self), sink, handle, host)),
            None => {
                // A refusal returns nothing to destroy: end the table now, so a thread
                // `create` started before refusing gets Unavailable, not the services.
                host.end(Ended::Refused);
                Err(self.refusal(sink, settings, &error))
            }
        }
    }

    /// Like [`Plugin::create`], with the instance in a child process of `options.program`
    /// (`isolation: process`): a crash in the plugin ends that process, not the router.
    /// Blocking: it starts the process and waits for the plugin's `create`.
    pub fn create_isolated(
        self: &Arc<Self>,
        sink: &str,
        settings: &serde_json::Value,
        services: Arc<dyn HostServices>,
        options: ProcessOptions,
    ) -> Result<Instance, PluginError> {
        match ProcessInstance::create(self, sink, settings_json(settings), services, options) {
            Ok(process) => Ok(Instance::in_process_of_its_own(
                Arc::clone(self),
                sink,
                process,
            )),
            Err(PluginError::Refused { reason, .. }) => {
                Err(self.refusal(sink, settings, reason.as_bytes()))
            }
            Err(e) => Err(e),
        }
    }

    /// Like [`Plugin::validate`], asked in a child process of `options.program` started
    /// for the question (`isolation: process`): a crash in the plugin's `validate` is a
    /// refusal that says so, not the end of the router (or of `check`).
    pub fn validate_isolated(
        self: &Arc<Self>,
        sink: &str,
        settings: &serde_json::Value,
        options: ProcessOptions,
    ) -> Result<(), PluginError> {
        if self.validate_fn.is_none() {
            return Ok(());
        }
        match ProcessInstance::validate(self, sink, settings_json(settings), options) {
            Ok(()) => Ok(()),
            Err(PluginError::Refused { reason, .. }) => {
                Err(self.refusal(sink, settings, reason.as_bytes()))
            }
            Err(e) => Err(e),
        }
    }

    /// What `validate` or `create` wrote when refusing `settings`, as the operator sees
    /// it: without serde's place in the JSON, with any secret setting it echoed as `***`.
    fn refusal(&self, sink: &str, settings: &serde_json::Value, written: &[u8]) -> PluginError {
        let mut reason = without_json_place(&plugin_text(written)).to_owned();
        for secret in self.manifest.secret_values(settings) {
            // Short values would mangle ordinary words and cannot be much of a secret.
            if secret.len() >= 4 {
                reason = reason.replace(&secret, "***");
            }
        }
        if reason.is_empty() {
            reason = "(the plugin gave no reason)".to_owned();
        }
        PluginError::Refused {
            sink: sink.to_owned(),
            plugin: self.name.clone(),
            path: self.path.clone(),
            reason,
        }
    }
}

/// The settings as the plugin gets them: always a JSON object, `{}` for none.
fn settings_json(settings: &serde_json::Value) -> String {
    if settings.is_null() {
        "{}".to_owned()
    } else {
        settings.to_string()
    }
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("path", &self.path)
            .field("markup", &self.manifest.markup)
            .finish_non_exhaustive()
    }
}

/// `reason` without the ` at line L column C` serde_json ends its errors with: a place in
/// the settings as the router handed them over (one line of JSON), not as written.
fn without_json_place(reason: &str) -> &str {
    let Some(at) = reason.rfind(" at line ") else {
        return reason;
    };
    let place = &reason[at + " at line ".len()..];
    let is_place = place.split_once(" column ").is_some_and(|(line, col)| {
        [line, col]
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if is_place { &reason[..at] } else { reason }
}

/// Reads a descriptor string, or says what is wrong with it.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string.
unsafe fn c_string(ptr: *const c_char) -> Result<String, &'static str> {
    if ptr.is_null() {
        return Err("is NULL");
    }
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map(str::to_owned)
        .map_err(|_| "is not valid UTF-8")
}

#[cfg(test)]
mod tests {
    use super::without_json_place;

    #[test]
    fn a_serde_place_in_the_settings_json_is_left_out() {
        assert_eq!(
            without_json_place("settings: unknown field `pth`, expected `path` at line 1 column 6"),
            "settings: unknown field `pth`, expected `path`"
        );
        for kept in [
            "settings.path: cannot open /x",
            "bad value at line 3 of the file",
            "at line 1 column x",
        ] {
            assert_eq!(without_json_place(kept), kept);
        }
    }
}
