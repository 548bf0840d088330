//! Setting variables in a `.env` file (the one the config reads, see
//! [`crate::config::read_dotenv`]) without disturbing the rest of it: a line that sets
//! one of the variables gets the new value in place, the others are appended, and every
//! other line (comments, blank lines, other variables) stays as it was.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Sets `vars` (name, value) in the `.env` at `path`, creating it (readable by its owner
/// only: it holds secrets) if it does not exist. The file is replaced in one rename, so
/// a router watching it never reads half of it.
pub(super) fn update(path: &Path, vars: &[(&str, &str)]) -> Result<()> {
    let path = resolve(path);
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let text = updated(old.as_deref().unwrap_or_default(), vars);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".env".to_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        let permissions = match std::fs::metadata(&path) {
            Ok(m) => Some(m.permissions()),
            Err(_) => owner_only(),
        };
        if let Some(p) = permissions {
            file.set_permissions(p)?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write {}: {e}", path.display())
    })
}

/// The file itself when `path` is a symlink (a `.env` linked from elsewhere stays a link).
fn resolve(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// A new `.env`'s permissions: its owner's only, as it holds secrets.
#[cfg(unix)]
fn owner_only() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn owner_only() -> Option<std::fs::Permissions> {
    None
}

/// `text` with `vars` set: lines that set them (`NAME=...`, `export NAME=...`) get the new
/// value in place, keeping `export`; names not found are appended in order.
fn updated(text: &str, vars: &[(&str, &str)]) -> String {
    let mut seen = vec![false; vars.len()];
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let end = &line[body.len()..];
        match set_by(body).and_then(|(export, name)| {
            vars.iter()
                .position(|(n, _)| *n == name)
                .map(|i| (export, i))
        }) {
            Some((export, i)) => {
                seen[i] = true;
                let (name, value) = vars[i];
                out.push_str(if export { "export " } else { "" });
                out.push_str(&format!("{name}={}", quoted(value)));
                out.push_str(if end.is_empty() { "\n" } else { end });
            }
            None => out.push_str(line),
        }
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for ((name, value), seen) in vars.iter().zip(seen) {
        if !seen {
            out.push_str(&format!("{name}={}\n", quoted(value)));
        }
    }
    out
}

/// `value` as a `.env` value that reads back as it is: bare when it is plain, else in
/// single quotes (taken literally), else, holding a `'` itself, in double quotes with
/// `\`, `"`, `$` and newlines escaped.
fn quoted(value: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:@+,=%".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        return value.into();
    }
    if !value.contains(['\'', '\n']) {
        return format!("'{value}'").into();
    }
    let mut out = String::from('"');
    for c in value.chars() {
        match c {
            '\\' | '"' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out.into()
}

/// The variable a line sets, and whether it says `export`; `None` for comments, blank
/// lines and anything else.
fn set_by(line: &str) -> Option<(bool, &str)> {
    let line = line.trim_start();
    if line.starts_with('#') {
        return None;
    }
    let (export, rest) = match line.strip_prefix("export ") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, line),
    };
    let (name, _) = rest.split_once('=')?;
    Some((export, name.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_lines_change_in_place_and_the_rest_is_kept() {
        let before = "# my secrets\nOTHER=1\nexport TELEGRAM_CHAT_ID=0\n\n# TELEGRAM_ENABLED=false\nTELEGRAM_ENABLED = false\nLAST=x";
        let after = updated(
            before,
            &[
                ("TELEGRAM_ENABLED", "true"),
                ("TELEGRAM_BOT_TOKEN", "1:a"),
                ("TELEGRAM_CHAT_ID", "42"),
            ],
        );
        assert_eq!(
            after,
            "# my secrets\nOTHER=1\nexport TELEGRAM_CHAT_ID=42\n\n# TELEGRAM_ENABLED=false\nTELEGRAM_ENABLED=true\nLAST=x\nTELEGRAM_BOT_TOKEN=1:a\n"
        );
    }

    #[test]
    fn a_new_file_gets_one_line_each_and_crlf_stays() {
        assert_eq!(updated("", &[("A", "1"), ("B", "2")]), "A=1\nB=2\n");
        assert_eq!(updated("A=0\r\nC=3\r\n", &[("A", "1")]), "A=1\r\nC=3\r\n");
    }

    /// What is written reads back, through the same dotenv reader the config uses, as
    /// the value given.
    #[test]
    fn values_read_back_as_they_were_given() {
        let values = [
            "1:a",
            "Basic YWxlcnQ6cGE=",
            "pa$$word",
            "it's #1",
            "both ' and \" and \\ and $HOME",
            "two\nlines",
            "",
        ];
        let vars: Vec<(String, &str)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("V{i}"), *v))
            .collect();
        let refs: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        let text = updated("", &refs);
        let read: std::collections::HashMap<String, String> =
            dotenvy::from_read_iter(text.as_bytes())
                .map(|r| r.expect("a valid line"))
                .collect();
        for (name, value) in &vars {
            assert_eq!(read.get(name).map(String::as_str), Some(*value), "{text}");
        }
        assert_eq!(quoted("1:a"), "1:a", "plain values stay bare");
    }

    #[test]
    fn every_line_of_a_repeated_name_gets_the_value() {
        // read_dotenv takes the last one: leaving an old value there would win.
        assert_eq!(updated("A=0\nB=1\nA=2\n", &[("A", "9")]), "A=9\nB=1\nA=9\n");
    }

    #[test]
    fn the_file_is_written_owner_only_and_keeps_its_permissions() {
        let dir =
            std::env::temp_dir().join(format!("alert-router-env-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        let _ = std::fs::remove_file(&path);
        update(&path, &[("A", "1")]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "A=1\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            update(&path, &[("B", "2")]).unwrap();
            assert_eq!(mode(&path), 0o640);
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "A=1\nB=2\n");
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
