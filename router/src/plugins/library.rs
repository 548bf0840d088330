//! Loading a plugin file: its identity on disk, `dlopen` of a fresh private copy, and the
//! registry that keeps every library that has had an instance mapped until the process exits.
//!
//! Why a copy: `dlopen` maps the file. Overwriting a mapped file in place (`cp new.so
//! libx.so`) changes the code under the running router and crashes it; and glibc hands back
//! the already-loaded image when the same path is opened again, so a new build would never be
//! seen. Loading a copy under a unique name, then removing the copy (the mapping survives),
//! leaves the original free to be replaced and makes every changed file a new library.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use libloading::Library;
use libloading::os::unix::{RTLD_LOCAL, RTLD_NOW};

use super::PluginError;

/// Which version of a file this is. Replacing the file (new inode), rewriting it (size,
/// mtime) or even `cp -p` of a same-sized build (ctime, which nobody can set) changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    fn of(meta: &fs::Metadata) -> FileIdentity {
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// Opens `path` and says which version of the file the open handle reads.
pub(super) fn open(path: &Path) -> Result<(File, FileIdentity), PluginError> {
    let file = File::open(path).map_err(|e| io_error(path, "open the plugin file", e))?;
    let identity = identity(&file, path)?;
    Ok((file, identity))
}

fn identity(file: &File, path: &Path) -> Result<FileIdentity, PluginError> {
    let meta = file
        .metadata()
        .map_err(|e| io_error(path, "read the plugin file's metadata", e))?;
    Ok(FileIdentity::of(&meta))
}

/// How often a copy is retried when the file changes while it is being copied.
const COPY_ATTEMPTS: u32 = 3;

/// Loads the library `file` (opened from `path`, at version `identity`) from a private copy
/// made in a fresh directory under `copies` (the temp directory in production). Returns the
/// library and the version actually loaded, which differs from `identity` when the file was
/// rewritten during the copy. Nothing is left under `copies` afterwards.
pub(super) fn load_copy(
    path: &Path,
    mut file: File,
    mut identity: FileIdentity,
    copies: &Path,
) -> Result<(Library, FileIdentity), PluginError> {
    let dir = PrivateDir::create(copies).map_err(|e| {
        io_error(
            path,
            "create a private directory for its copy (the router copies under storage.path, the other commands under TMPDIR: make that directory writable)",
            e,
        )
    })?;
    let file_name = path
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("plugin.so"));
    let copy = dir.path.join(file_name);
    for attempt in 1..=COPY_ATTEMPTS {
        copy_file(&mut file, &copy).map_err(|e| io_error(path, "copy the plugin file", e))?;
        let after = self::identity(&file, path)?;
        if after == identity {
            break;
        }
        // Rewritten in place while we read it: the copy may be torn. Copy what is there now.
        identity = after;
        if attempt == COPY_ATTEMPTS {
            return Err(io_error(
                path,
                "copy the plugin file",
                io::Error::other("it kept changing while being read; try again once it is written"),
            ));
        }
    }
    // The copy is ours and cannot change now: a whole copy cannot be cut under the mapping.
    let whole = File::open(&copy)
        .and_then(|mut c| super::elf::check_whole(&mut c))
        .map_err(|e| io_error(path, "read the plugin file's headers", e))?;
    if let Err(reason) = whole {
        return Err(PluginError::NotALibrary {
            path: path.to_path_buf(),
            reason,
        });
    }
    // RTLD_NOW: an undefined symbol is an error here, not an abort at its first call.
    // RTLD_LOCAL: plugins' symbols never resolve each other's (every plugin exports the
    // same entry symbol).
    // SAFETY: loading runs the library's initialisers; running the code of the plugins an
    // operator installed is the point of this module.
    let loaded = unsafe { libloading::os::unix::Library::open(Some(&copy), RTLD_NOW | RTLD_LOCAL) };
    // The mapping survives the file's removal; `dir`'s Drop removes the copy and the directory.
    drop(dir);
    match loaded {
        Ok(library) => Ok((Library::from(library), identity)),
        Err(e) => Err(PluginError::NotALibrary {
            path: path.to_path_buf(),
            reason: dlopen_reason(&e, &copy, path),
        }),
    }
}

fn copy_file(from: &mut File, to: &Path) -> io::Result<()> {
    from.seek(SeekFrom::Start(0))?;
    // A copy from an earlier attempt is replaced whole.
    match fs::remove_file(to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // create_new: never write through a file or symlink someone else put there.
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(to)?;
    io::copy(from, &mut out)?;
    Ok(())
}

/// dlerror's text, naming the operator's file instead of our short-lived copy.
fn dlopen_reason(err: &libloading::Error, copy: &Path, original: &Path) -> String {
    let text = match std::error::Error::source(err) {
        Some(source) => source.to_string(),
        None => err.to_string(),
    };
    // glibc starts with "<file>: "; the error names the file already.
    let copy_name = copy.display().to_string();
    let text = text
        .strip_prefix(&format!("{copy_name}: "))
        .unwrap_or(&text);
    let mut text = text.replace(&copy_name, &original.display().to_string());
    if text.contains("failed to map segment") {
        text.push_str(&format!(
            " (loaded from a copy in {}; if that is mounted noexec, point storage.path (the router) or TMPDIR (the other commands) at a directory that allows executable mappings)",
            copy.parent().and_then(Path::parent).unwrap_or(copy).display()
        ));
    }
    text
}

fn io_error(path: &Path, action: &'static str, error: io::Error) -> PluginError {
    PluginError::Io {
        path: path.to_path_buf(),
        action,
        error,
    }
}

/// The name every private directory starts with.
const PRIVATE_PREFIX: &str = "alert-router-plugin-";

/// Creates `dir` (owner only) for private copies, or removes the private directories an
/// earlier process left in it. Call it only where no other process makes copies.
pub(super) fn clear_copies(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(PRIVATE_PREFIX)
        {
            tracing::info!(dir = %entry.path().display(), "removing a plugin copy an earlier run left");
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// A directory only this process can write, removed with what is in it on drop. A fresh
/// one per load, so no other user of the temp directory can swap the copy before `dlopen`.
struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    fn create(base: &Path) -> io::Result<PrivateDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let mut last = None;
        for _ in 0..16 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("{PRIVATE_PREFIX}{pid}-{n}"));
            // `create` (not create_all) fails when the name is taken: a stale directory
            // from an earlier process with our pid, or someone else's; then try the next name.
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free directory name")))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!(dir = %self.path.display(), error = %e, "could not remove the temporary plugin copy");
        }
    }
}

/// Every library that has had an instance or run `validate`. Never dropped, so never
/// unloaded, because unloading code that has run is unsafe: Rust std and tokio register
/// thread-local destructors in the library that run when threads exit, a plugin thread
/// that outlived `destroy` would jump into unmapped code, and static data the plugin
/// handed out would dangle. (glibc itself refuses to unload a library with live TLS
/// destructors.)
static RETAINED: Mutex<Vec<Arc<Library>>> = Mutex::new(Vec::new());

/// Keeps `library` loaded until the process exits.
pub(super) fn retain(library: &Arc<Library>) {
    RETAINED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Arc::clone(library));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory for one test, removed afterwards.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("ar-library-test-{}-{test}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("copies")).unwrap();
            Scratch(dir)
        }
        fn copies(&self) -> PathBuf {
            self.0.join("copies")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn junk_is_refused_naming_the_original_file_and_no_copy_is_left() {
        let scratch = Scratch::new("junk");
        let path = scratch.0.join("libjunk.so");
        fs::write(&path, "not an ELF file\n").unwrap();
        let (file, identity) = open(&path).unwrap();
        let err = load_copy(&path, file, identity, &scratch.copies()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PluginError::NotALibrary { .. }), "{text}");
        let prefix = format!(
            "{}: not a shared library this router can load: ",
            path.display()
        );
        let reason = text
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{text}"));
        // dlerror names the file it opened; the operator must see theirs, once, not our copy.
        assert!(
            !reason.is_empty() && !reason.contains("libjunk.so"),
            "{text}"
        );
        assert!(!text.contains("alert-router-plugin-"), "{text}");
        assert_eq!(fs::read_dir(scratch.copies()).unwrap().count(), 0);
    }

    #[test]
    fn identity_changes_when_the_file_is_rewritten() {
        let scratch = Scratch::new("identity");
        let path = scratch.0.join("libx.so");
        fs::write(&path, "one").unwrap();
        let (_, first) = open(&path).unwrap();
        assert_eq!(open(&path).unwrap().1, first);
        fs::write(&path, "two!").unwrap();
        assert_ne!(open(&path).unwrap().1, first);
    }

    #[test]
    fn private_dirs_are_fresh_and_removed() {
        let scratch = Scratch::new("private");
        let a = PrivateDir::create(&scratch.copies()).unwrap();
        let b = PrivateDir::create(&scratch.copies()).unwrap();
        assert_ne!(a.path, b.path);
        let a_path = a.path.clone();
        fs::write(a_path.join("libx.so"), "x").unwrap();
        drop(a);
        assert!(!a_path.exists());
        assert!(b.path.is_dir());
    }
}
