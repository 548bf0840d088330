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
        if let Some(why) = judge(what, place, meta.mode() & 0o7777, meta.uid(), me) {
            return Some(why);
        }
    }
    None
}

/// The rule for one file or directory (`what`) at `place`, of `mode`, owned by `owner`,
/// judged for a router running as `me`.
fn judge(what: &str, place: &Path, mode: u32, owner: u32, me: u32) -> Option<String> {
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
    if owner != 0 && owner != me {
        return Some(format!(
            "the {what} {} is owned by uid {owner}, neither root nor the router's user (uid {me}): `chown {me} {}`, or install it as root",
            place.display(),
            place.display()
        ));
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

    #[test]
    fn a_file_owned_by_another_user_than_root_or_the_routers_is_distrusted() {
        let place = Path::new("/opt/plugins/libp.so");
        // `nobody` (65534) owns it; the router runs as root, then as uid 1000.
        let why = judge("file", place, 0o644, 65534, 0).expect("another user's file");
        assert_eq!(
            why,
            "the file /opt/plugins/libp.so is owned by uid 65534, neither root nor the router's user (uid 0): `chown 0 /opt/plugins/libp.so`, or install it as root"
        );
        assert!(judge("file", place, 0o644, 65534, 1000).is_some());
        assert_eq!(
            judge("file", place, 0o644, 0, 1000),
            None,
            "root's is trusted"
        );
        assert_eq!(
            judge("file", place, 0o644, 1000, 1000),
            None,
            "the router's own"
        );
        assert_eq!(judge("directory", place, 0o755, 0, 0), None);
        let why = judge("directory", place, 0o777, 0, 0).expect("a directory anyone can write");
        assert!(why.contains("writable by anyone (mode 0777)"), "{why}");
    }

    /// Where it can give a file away (as root, which CI runs as), the whole check finds it.
    #[test]
    fn a_file_given_to_nobody_is_found_by_the_check() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return; // chown needs root; the rule itself is tested above
        }
        let dir = TempDir::new("trust-owner");
        dir.write("libp.so", "x");
        let file = dir.0.join("libp.so");
        chmod(&dir.0, 0o755);
        chmod(&file, 0o644);
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).expect("chown as root");
        let why = distrust(&file).expect("nobody's file");
        assert!(why.contains("is owned by uid 65534"), "{why}");
    }
}
