//! [`Diagnostic`]: a problem in a file the operator wrote, with where it is and what
//! to do. Config, rules, templates and plugin loading all report through it, so `check`,
//! the log and `/v1/status` print every problem the same way: `file:line:col: message`.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem at one place. `line` and `col` are 1-based; 0 means unknown (the
/// problem is about the whole file, or the place could not be determined).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, line: u32, col: u32, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            col,
            message: message.into(),
        }
    }

    /// A problem with a whole file (unreadable, missing).
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Diagnostic::new(file, 0, 0, message)
    }

    /// A problem from serde-saphyr, at the place it points to.
    pub fn yaml(file: &Path, err: &serde_saphyr::Error) -> Self {
        let (line, col) = err
            .location()
            .map(|l| (l.line() as u32, l.column() as u32))
            .unwrap_or((0, 0));
        // saphyr's Display repeats the location and adds a snippet; the first line has
        // the reason, which is what a one-line diagnostic wants.
        let text = err.to_string();
        let reason = text.lines().next().unwrap_or("invalid YAML").trim();
        let reason = strip_location_prefix(reason);
        Diagnostic::new(file, line, col, reason)
    }
}

/// saphyr starts some messages with "line L column C: "; the diagnostic says that itself.
fn strip_location_prefix(reason: &str) -> &str {
    let reason = reason.strip_prefix("error: ").unwrap_or(reason);
    if let Some(rest) = reason.strip_prefix("line ")
        && let Some(idx) = rest.find(": ")
        && rest[..idx]
            .split(" column ")
            .all(|p| p.trim().chars().all(|c| c.is_ascii_digit()))
    {
        return &rest[idx + 2..];
    }
    reason
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (0, _) => write!(f, "{}: {}", self.file.display(), self.message),
            (line, 0) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            (line, col) => write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                line,
                col,
                self.message
            ),
        }
    }
}

/// Several problems, reported together (so `check` shows all of them at once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0)
    }

    /// `Ok(value)` when nothing was reported.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_file_line_col() {
        let d = Diagnostic::new("rules/a.yaml", 3, 7, "unknown sink `tg`");
        assert_eq!(d.to_string(), "rules/a.yaml:3:7: unknown sink `tg`");
        assert_eq!(
            Diagnostic::file("x.yaml", "not found").to_string(),
            "x.yaml: not found"
        );
    }

    #[test]
    fn yaml_errors_point_at_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: u32,
        }
        let err = serde_saphyr::from_str::<T>("n: lots\n").unwrap_err();
        let d = Diagnostic::yaml(Path::new("t.yaml"), &err);
        assert_eq!((d.line, d.col), (1, 4), "{d}");
        assert!(!d.message.starts_with("line"), "{d}");
        // A syntax error: one place, said once.
        let err = serde_saphyr::from_str::<T>("n: [1\n").unwrap_err();
        let d = Diagnostic::yaml(Path::new("t.yaml"), &err);
        assert!(
            !d.message.contains("line ") && !d.message.starts_with("error"),
            "{d}"
        );
    }
}
