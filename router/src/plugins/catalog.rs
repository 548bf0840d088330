//! [`Catalog`]: where plugins are looked for, and the libraries already loaded from there.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::library::{self, FileIdentity};
use super::{Plugin, PluginError, trust};

/// The plugin directories, searched in order, and a cache of what was loaded from them.
///
/// Loading the same unchanged file again returns the same `Arc<Plugin>`; a file that
/// changed on disk (replaced, rewritten) is loaded anew from a fresh copy, and instances
/// created after that run the new code while older instances keep running the old.
/// Share it behind an `Arc`: loads from several threads are serialised.
pub struct Catalog {
    dirs: Vec<PathBuf>,
    /// Where private copies are made before `dlopen`.
    copies: PathBuf,
    /// Refuse files that others could have written (`plugins.strict_modes`).
    strict: bool,
    /// Canonical path → the version of the file last loaded from it. Shared by the
    /// catalogs a reload makes, so unchanged files are not loaded again.
    loaded: Arc<Mutex<HashMap<PathBuf, Loaded>>>,
}

struct Loaded {
    identity: FileIdentity,
    plugin: Arc<Plugin>,
}

impl Catalog {
    /// A catalog over `dirs` (searched in order) followed by the directory of the running
    /// executable, which is always searched (unless it is already in `dirs`).
    pub fn new(dirs: Vec<PathBuf>) -> Catalog {
        Catalog::sharing(dirs, Arc::new(Mutex::new(HashMap::new())))
    }

    /// A catalog over other directories that shares this one's loaded libraries (and
    /// where it copies them): what a reload uses when `plugins.dirs` may have changed.
    pub fn with_dirs(&self, dirs: Vec<PathBuf>) -> Catalog {
        Catalog {
            copies: self.copies.clone(),
            strict: self.strict,
            ..Catalog::sharing(dirs, self.loaded.clone())
        }
    }

    /// Makes the private copies under `dir` instead of the temp directory. A running
    /// router uses `<storage.path>/plugin-copies`: it holds that directory's lock, so what
    /// an earlier process left there (a crash between the copy and its removal) is
    /// removed now, and nothing accumulates in a TMPDIR other programs share.
    pub fn copying_in(mut self, dir: PathBuf) -> std::io::Result<Catalog> {
        library::clear_copies(&dir)?;
        self.copies = dir;
        Ok(self)
    }

    /// Makes the private copies under `dir`, which another process (the router this one
    /// serves, `plugin-host`) owns and clears: copies are named by process id, so the
    /// two never meet.
    pub fn copying_beside(mut self, dir: PathBuf) -> Catalog {
        self.copies = dir;
        self
    }

    fn sharing(mut dirs: Vec<PathBuf>, loaded: Arc<Mutex<HashMap<PathBuf, Loaded>>>) -> Catalog {
        match std::env::current_exe() {
            Ok(exe) => {
                if let Some(exe_dir) = exe.parent()
                    && !dirs.iter().any(|d| same_dir(d, exe_dir))
                {
                    dirs.push(exe_dir.to_path_buf());
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell where the executable is; its directory is not searched for plugins");
            }
        }
        Catalog {
            dirs,
            copies: std::env::temp_dir(),
            strict: true,
            loaded,
        }
    }

    /// With `false` (`plugins.strict_modes: false`), loads plugin files that others could
    /// have written, with a warning at every load, instead of refusing them.
    pub fn strict_modes(mut self, strict: bool) -> Catalog {
        self.strict = strict;
        self
    }

    /// Where the private copies are made.
    pub fn copies(&self) -> &Path {
        &self.copies
    }

    /// Whether files others could have written are refused.
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// The directories searched, in order, the executable's last.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Finds `lib<name>.so` in the first directory that has it, and loads it (or returns
    /// the cached plugin if that file has not changed since it was last loaded).
    ///
    /// Blocking (file copies, `dlopen`): call it off the async runtime.
    pub fn load(&self, name: &str) -> Result<Arc<Plugin>, PluginError> {
        if !valid_name(name) {
            return Err(PluginError::InvalidName {
                name: name.to_owned(),
            });
        }
        let file_name = format!("lib{name}.so");
        for dir in &self.dirs {
            let path = dir.join(&file_name);
            match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => return self.load_file(&path, name),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(PluginError::Io {
                        path,
                        action: "read the plugin file's metadata",
                        error: e,
                    });
                }
            }
        }
        Err(PluginError::NotFound {
            name: name.to_owned(),
            searched: self.dirs.clone(),
        })
    }

    /// Loads every `lib*.so` in the directories, for `alert-router plugins`. A name found
    /// in several directories is loaded from the first, as [`Catalog::load`] would. Files
    /// within a directory come in name order; a directory that does not exist is skipped,
    /// one that cannot be read is an error in the list.
    ///
    /// Blocking, like [`Catalog::load`].
    pub fn discover(&self) -> Vec<Result<Arc<Plugin>, PluginError>> {
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        for dir in &self.dirs {
            let entries = match fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    found.push(Err(PluginError::Io {
                        path: dir.clone(),
                        action: "list the plugin directory",
                        error: e,
                    }));
                    continue;
                }
            };
            let mut names: Vec<String> = entries
                .filter_map(|entry| entry.ok())
                .filter(|entry| entry.path().is_file())
                .filter_map(|entry| {
                    let file_name = entry.file_name().into_string().ok()?;
                    let name = file_name.strip_prefix("lib")?.strip_suffix(".so")?;
                    Some(name.to_owned())
                })
                .collect();
            names.sort();
            for name in names {
                if !seen.insert(name.clone()) {
                    continue;
                }
                if !valid_name(&name) {
                    found.push(Err(PluginError::InvalidName { name }));
                    continue;
                }
                found.push(self.load_file(&dir.join(format!("lib{name}.so")), &name));
            }
        }
        found
    }

    fn load_file(&self, path: &Path, name: &str) -> Result<Arc<Plugin>, PluginError> {
        let canonical = fs::canonicalize(path).map_err(|e| PluginError::Io {
            path: path.to_path_buf(),
            action: "resolve the plugin file's path",
            error: e,
        })?;
        // Beside the executable, a plugin is as trusted as the router itself: whoever can
        // write there can replace the router too.
        let beside_the_router = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(same_dir(exe.parent()?, canonical.parent()?)))
            .unwrap_or(false);
        if let Some(why) = (!beside_the_router)
            .then(|| trust::distrust(&canonical))
            .flatten()
        {
            if self.strict {
                return Err(PluginError::Untrusted {
                    path: path.to_path_buf(),
                    reason: why,
                });
            }
            tracing::warn!(file = %path.display(), reason = %why, "loading a plugin file others could have written, as plugins.strict_modes is off");
        }
        let (file, identity) = library::open(&canonical)?;
        // Held across the load, so two threads asking for the same new file load it once.
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = loaded.get(&canonical)
            && cached.identity == identity
        {
            return Ok(Arc::clone(&cached.plugin));
        }
        let (lib, identity) = library::load_copy(path, file, identity, &self.copies)?;
        let plugin = Arc::new(Plugin::from_library(lib, path, name)?);
        // Replacing the entry drops the catalog's hold on the older version: unloaded if it
        // never ran `validate` or had an instance, kept for life (library::retain) if it did.
        loaded.insert(
            canonical,
            Loaded {
                identity,
                plugin: Arc::clone(&plugin),
            },
        );
        Ok(plugin)
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("dirs", &self.dirs)
            .finish_non_exhaustive()
    }
}

/// Plugin names become file names and template directories: ASCII letters, digits and `_`,
/// as a cargo library name would be.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (fs::canonicalize(a), fs::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_identifiers() {
        for good in ["console", "telegram", "my_sink2", "X"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "../etc/x", "a/b", "serde_derive-5ca0", "a.b", "tg\0"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_executables_directory_is_searched_last_and_once() {
        let exe_dir = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let catalog = Catalog::new(vec!["/nonexistent/plugins".into()]);
        assert_eq!(
            catalog.dirs(),
            [PathBuf::from("/nonexistent/plugins"), exe_dir.clone()]
        );
        let catalog = Catalog::new(vec![exe_dir.clone()]);
        assert_eq!(catalog.dirs(), [exe_dir]);
    }

    #[test]
    fn an_invalid_name_is_refused_before_any_search() {
        let catalog = Catalog::new(vec![]);
        let err = catalog.load("../../tmp/evil").unwrap_err();
        assert!(matches!(err, PluginError::InvalidName { .. }), "{err}");
    }

    #[test]
    fn a_missing_plugin_lists_every_directory() {
        let catalog = Catalog::new(vec!["/nonexistent/a".into(), "/nonexistent/b".into()]);
        let err = catalog.load("no_such_plugin").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PluginError::NotFound { .. }), "{text}");
        for dir in catalog.dirs() {
            assert!(text.contains(&dir.display().to_string()), "{text}");
        }
    }
}
