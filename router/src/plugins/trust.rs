//! Whether a plugin file may be loaded, the way sshd's `StrictModes` judges a key file:
//! loading a library runs its code as the router's user (often root), so the file and the
//! directory holding it must be writable by nobody but their owner, and owned by root or
//! by the router's own user. Otherwise anyone who can write there can run code as the
//! router. `plugins.strict_modes: false` loads such files anyway, with a warning each time.
//! The executable's own directory is not judged (see `Catalog::load_file`): whoever can
//! write there can replace the router itself.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Why `file` (a canonical path) or its directory is not to be trusted, with the fix;
/// `None` when both are safe.
pub(super) fn distrust(file: &Path) -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let places = std::iter::once(file).chain(file.parent());
    for place in places {
        let meta = match fs::metadata(place) {
            Ok(meta) => meta,
            Err(e) => return Some(format!("cannot check {}: {e}", place.display())),
        };
        let what = if meta.is_dir() { "directory" } else { "file" };
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Some(format!(
                "the {what} {} is writable by {} (mode {mode:04o}), so others could put code there that the router would run: `chmod go-w {}`",
                place.display(),
                if mode & 0o002 != 0 {
                    "anyone"
                } else {
                    "its group"
                },
                place.display()
            ));
        }
        if meta.uid() != 0 && meta.uid() != me {
            return Some(format!(
                "the {what} {} is owned by uid {}, neither root nor the router's user (uid {me}): `chown {me} {}`, or install it as root",
                place.display(),
                meta.uid(),
                place.display()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_file_or_directory_others_can_write_is_distrusted_with_the_fix() {
        let dir = TempDir::new("trust");
        dir.write("libp.so", "x");
        let file = dir.0.join("libp.so");
        chmod(&dir.0, 0o755);
        chmod(&file, 0o644);
        assert_eq!(distrust(&file), None);

        chmod(&file, 0o666);
        let why = distrust(&file).expect("a world-writable file");
        assert!(why.contains("writable by anyone (mode 0666)"), "{why}");
        assert!(
            why.contains(&format!("chmod go-w {}", file.display())),
            "{why}"
        );

        chmod(&file, 0o644);
        chmod(&dir.0, 0o775);
        let why = distrust(&file).expect("a group-writable directory");
        assert!(why.starts_with("the directory"), "{why}");
        assert!(why.contains("writable by its group (mode 0775)"), "{why}");
        chmod(&dir.0, 0o755);
    }
}
