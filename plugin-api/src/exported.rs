//! [`Exported`]: what a plugin's descriptor says, read back as data, so a plugin's test
//! states only what is its own: its name, its markup, which settings it describes and
//! which of them are secret or required.

use std::ffi::{CStr, c_char};

use serde_json::Value;

use crate::ffi;

/// A plugin's descriptor as the router reads it: name, version, ABI version and the
/// manifest parsed as JSON. Get the one [`export_plugin!`](crate::export_plugin) made
/// with [`exported_plugin!`](crate::exported_plugin).
///
/// ```
/// use alert_router_plugin::{Host, Message, Outcome, Secret, Sink, export_plugin, exported_plugin};
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// #[serde(deny_unknown_fields)]
/// struct Settings {
///     /// The API token.
///     token: Secret,
/// }
///
/// struct Quiet;
///
/// impl Sink for Quiet {
///     type Settings = Settings;
///     fn create(_: Host, _: Self::Settings) -> Result<Self, String> { Ok(Quiet) }
///     fn deliver(&mut self, _: Message) -> Outcome { Outcome::Ok }
/// }
///
/// export_plugin!(Quiet, name = "quiet", markup = "none", description = "Says nothing");
///
/// # fn main() {
/// let plugin = exported_plugin!().expect("a readable descriptor");
/// assert_eq!(plugin.name, "quiet");
/// assert_eq!(plugin.markup(), Some("none"));
/// assert_eq!(plugin.settings(), ["token"]);
/// assert_eq!(plugin.secret_settings(), ["token"]);
/// assert_eq!(plugin.required_settings(), ["token"]);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub abi_version: u32,
    pub name: String,
    pub version: String,
    pub manifest: Value,
}

impl Exported {
    /// Reads the descriptor `entry` returns. An error says which part is not what the
    /// header asks for (a string that is not UTF-8, a manifest that is not a JSON
    /// object).
    ///
    /// # Safety
    /// `entry` must return a descriptor whose strings are NUL-terminated and live as
    /// long as the program, as every descriptor [`export_plugin!`](crate::export_plugin)
    /// generates does ([`exported_plugin!`](crate::exported_plugin) calls this with one).
    pub unsafe fn read(entry: extern "C" fn() -> *const ffi::Plugin) -> Result<Exported, String> {
        let descriptor = entry();
        if descriptor.is_null() {
            return Err("the entry symbol returned no descriptor".to_owned());
        }
        // SAFETY: the caller promises a valid descriptor with NUL-terminated strings.
        let descriptor = unsafe { &*descriptor };
        let text = |p| unsafe { text(p) };
        let manifest_text = text(descriptor.manifest).map_err(|e| format!("manifest: {e}"))?;
        let manifest: Value = serde_json::from_str(&manifest_text)
            .map_err(|e| format!("manifest: not JSON ({e}): {manifest_text}"))?;
        if !manifest.is_object() {
            return Err(format!("manifest: not a JSON object: {manifest_text}"));
        }
        Ok(Exported {
            abi_version: descriptor.abi_version,
            name: text(descriptor.name).map_err(|e| format!("name: {e}"))?,
            version: text(descriptor.version).map_err(|e| format!("version: {e}"))?,
            manifest,
        })
    }

    /// The manifest's `markup`, if it gives one.
    pub fn markup(&self) -> Option<&str> {
        self.manifest.get("markup").and_then(Value::as_str)
    }

    /// The names of the settings the manifest describes, sorted.
    pub fn settings(&self) -> Vec<&str> {
        self.settings_where(|_| true)
    }

    /// The settings marked `"secret": true`, sorted: what `/v1/status` shows as `***`.
    pub fn secret_settings(&self) -> Vec<&str> {
        self.settings_where(|setting| setting.get("secret") == Some(&Value::Bool(true)))
    }

    /// The settings marked `"required": true`, sorted.
    pub fn required_settings(&self) -> Vec<&str> {
        self.settings_where(|setting| setting.get("required") == Some(&Value::Bool(true)))
    }

    fn settings_where(&self, keep: impl Fn(&Value) -> bool) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .manifest
            .get("settings")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(_, setting)| keep(setting))
            .map(|(name, _)| name.as_str())
            .collect();
        names.sort_unstable();
        names
    }
}

/// A descriptor string as UTF-8.
///
/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn text(p: *const c_char) -> Result<String, String> {
    if p.is_null() {
        return Err("missing (a null pointer)".to_owned());
    }
    // SAFETY: the caller promises a NUL-terminated string.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map(str::to_owned)
        .map_err(|e| format!("not UTF-8 ({e})"))
}

/// The [`Exported`] descriptor of the plugin this crate exports with
/// [`export_plugin!`](crate::export_plugin): for the plugin's own tests.
///
/// ```ignore
/// #[test]
/// fn the_token_is_never_logged() {
///     let plugin = alert_router_plugin::exported_plugin!().expect("a readable descriptor");
///     assert_eq!(plugin.secret_settings(), ["token"]);
/// }
/// ```
// `crate` (not `$crate`) on purpose: the descriptor is the calling plugin's.
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! exported_plugin {
    () => {
        // SAFETY: `export_plugin!` generated this entry symbol: a descriptor of
        // NUL-terminated strings that lives as long as the program.
        unsafe {
            $crate::Exported::read(crate::__alert_router_plugin_export::alert_router_plugin_v1)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Host, Message, Outcome, Sink};

    struct Broken;

    impl Sink for Broken {
        type Settings = Value;
        fn create(_: Host, _: Value) -> Result<Self, String> {
            Ok(Broken)
        }
        fn deliver(&mut self, _: Message) -> Outcome {
            Outcome::Ok
        }
    }

    // Not at the crate root: `exported_plugin!` is for plugins, this reads it directly.
    crate::export_plugin!(Broken, name = "broken", manifest = r#"{"markup": "none""#);

    #[test]
    fn a_manifest_that_is_not_json_is_named() {
        // SAFETY: `export_plugin!` generated the entry symbol.
        let error = unsafe { Exported::read(__alert_router_plugin_export::alert_router_plugin_v1) }
            .unwrap_err();
        assert!(error.starts_with("manifest: not JSON"), "{error}");
        assert!(error.ends_with(r#"{"markup": "none""#), "{error}");
    }
}
