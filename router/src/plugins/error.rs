//! [`PluginError`]: every way finding, loading or starting a plugin can fail, each naming
//! the file and saying what to do; and [`plugin_text`], which makes what a plugin wrote
//! back fit for a log line or an error.

use std::io;
use std::path::{Path, PathBuf};

use alert_router_plugin::ffi;

/// Why a plugin could not be found, loaded or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The name cannot be a plugin's: it would not map to a single `lib<name>.so` file.
    #[error(
        "`{name}` is not a valid plugin name: use ASCII letters, digits and `_` only (the plugin is the file lib<name>.so)"
    )]
    InvalidName { name: String },

    /// No `lib<name>.so` in any directory searched.
    #[error(
        "plugin `{name}` not found: looked for lib{name}.so in {}; put the file in one of these directories or add its directory to `plugins.dirs`",
        dir_list(.searched)
    )]
    NotFound {
        name: String,
        searched: Vec<PathBuf>,
    },

    /// The file exists but could not be read or copied.
    #[error("{}: cannot {action}: {error}", .path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        error: io::Error,
    },

    /// The file or its directory could have been written by others (`plugins.strict_modes`).
    #[error(
        "{}: not loaded: {reason} (or set `plugins.strict_modes: false` to load it anyway)",
        .path.display()
    )]
    Untrusted { path: PathBuf, reason: String },

    /// `dlopen` refused the file.
    #[error("{}: not a shared library this router can load: {reason}", .path.display())]
    NotALibrary { path: PathBuf, reason: String },

    /// A shared library, but not a plugin.
    #[error(
        "{}: does not export `alert_router_plugin_v1`: a plugin must export it, built against ABI {} (alert_router_plugin.h or the alert-router-plugin crate)",
        .path.display(),
        ffi::ABI_VERSION
    )]
    NoEntrySymbol { path: PathBuf },

    /// A plugin for another version of the ABI.
    #[error(
        "{}: built for ABI {found}, this router speaks ABI {}; rebuild the plugin against this router's alert_router_plugin.h",
        .path.display(),
        ffi::ABI_VERSION
    )]
    AbiMismatch { path: PathBuf, found: u32 },

    /// The descriptor returned by the entry symbol is unusable.
    #[error("{}: invalid plugin descriptor: {problem}", .path.display())]
    BadDescriptor { path: PathBuf, problem: String },

    /// The descriptor's manifest is not what the header describes.
    #[error("{}: invalid manifest: {problem}", .path.display())]
    BadManifest { path: PathBuf, problem: String },

    /// The plugin's `create` refused the sink's settings; `reason` is its own words.
    #[error(
        "sink `{sink}`: plugin `{plugin}` ({}) refused the settings: {reason}",
        .path.display()
    )]
    Refused {
        sink: String,
        plugin: String,
        path: PathBuf,
        reason: String,
    },
}

impl PluginError {
    /// The plugin file the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            PluginError::InvalidName { .. } | PluginError::NotFound { .. } => None,
            PluginError::Io { path, .. }
            | PluginError::Untrusted { path, .. }
            | PluginError::NotALibrary { path, .. }
            | PluginError::NoEntrySymbol { path }
            | PluginError::AbiMismatch { path, .. }
            | PluginError::BadDescriptor { path, .. }
            | PluginError::BadManifest { path, .. }
            | PluginError::Refused { path, .. } => Some(path),
        }
    }
}

fn dir_list(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no directories (none configured, and the executable's directory is unknown)"
            .to_owned();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most of a plugin's text (a refusal, a failure reason) that is kept. Reasons end up
/// in /v1/status and dead letters; a plugin dumping a whole response body must not bloat them.
const MAX_PLUGIN_TEXT: usize = 2000;

/// Makes text a plugin wrote back printable on one line: invalid UTF-8 replaced, every run
/// of whitespace (newlines included) turned into one space, cut at [`MAX_PLUGIN_TEXT`]
/// bytes on a character boundary.
pub(super) fn plugin_text(bytes: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(lossy.len().min(MAX_PLUGIN_TEXT));
    for word in lossy.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > MAX_PLUGIN_TEXT {
            let mut end = MAX_PLUGIN_TEXT;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_is_one_trimmed_line() {
        assert_eq!(
            plugin_text(b"  bad token\n\tline 2 \r\n"),
            "bad token line 2"
        );
        assert_eq!(plugin_text(b"caf\xc3"), "caf\u{fffd}");
        assert_eq!(plugin_text(b""), "");
    }

    #[test]
    fn plugin_text_is_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_PLUGIN_TEXT);
        let text = plugin_text(long.as_bytes());
        assert!(text.ends_with('…'));
        assert!(text.len() <= MAX_PLUGIN_TEXT + '…'.len_utf8());
    }

    #[test]
    fn not_found_lists_every_directory() {
        let err = PluginError::NotFound {
            name: "tg".into(),
            searched: vec!["/a".into(), "/b/c".into()],
        };
        assert_eq!(
            err.to_string(),
            "plugin `tg` not found: looked for libtg.so in /a, /b/c; put the file in one of \
             these directories or add its directory to `plugins.dirs`"
        );
    }
}
