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

/// The candidate `name` was most likely meant to be (a typo: a letter missing, extra,
/// wrong or two swapped), for a "did you mean" hint; `None` when none is close.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    // Short names are close to everything: allow one edit, then one per three letters.
    let allowed = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name, &c.to_ascii_lowercase()), c))
        .filter(|&(d, c)| d <= allowed && d < c.chars().count())
        .min()
        .map(|(_, c)| c)
}

/// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: two back (for swaps), the previous one, the current one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut prev, row);
    }
    prev[b.len()]
}

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
    fn closest_finds_a_typo_and_nothing_far() {
        let filters = ["datetime", "duration", "money", "upper", "path", "format"];
        assert_eq!(closest("datetme", filters), Some("datetime"));
        assert_eq!(closest("pth", filters), Some("path"));
        assert_eq!(closest("fromat", filters), Some("format"));
        assert_eq!(closest("Money", filters), Some("money"));
        assert_eq!(closest("colour", filters), None);
        assert_eq!(
            closest("x", ["y"]),
            None,
            "a one-letter name is not a typo of another"
        );
        assert_eq!(closest("a", std::iter::empty()), None);
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
