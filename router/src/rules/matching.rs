//! A `match:` as rule files write it (a route's, an inhibition's `source` and
//! `target`, an alert rule's), and compiled: types (names or globs), a severity
//! comparison, labels, Alertmanager's matchers and a `when:` expression, which goes to
//! the [`Conditions`] every rule file's expressions are compiled with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::event::Severity;
use crate::notify::matchers::Matcher;

/// Variables a `when:` expression may use.
pub(super) const EXPRESSION_VARIABLES: [&str; 1] = ["event"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    #[serde(rename = "type")]
    kind: Option<Spanned<OneOrMany>>,
    severity: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Alertmanager's matchers, in the silences' syntax (notify/matchers.rs).
    #[serde(default)]
    matchers: Vec<Spanned<String>>,
    when: Option<Spanned<String>>,
}

impl RawMatch {
    /// What it says, without where it says it (a definition's digest must not change
    /// when the file's lines move).
    pub(crate) fn describe(&self) -> String {
        format!(
            "{:?}",
            (
                self.kind.as_ref().map(|k| &k.value),
                self.severity.as_ref().map(|s| &s.value),
                &self.labels,
                self.matchers.iter().map(|m| &m.value).collect::<Vec<_>>(),
                self.when.as_ref().map(|w| &w.value),
            )
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A severity condition such as `>= warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeverityMatch {
    op: Cmp,
    severity: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl SeverityMatch {
    /// `warning`, `>= warning`, `< error`, `!= debug`.
    pub fn parse(s: &str) -> Result<SeverityMatch, String> {
        let s = s.trim();
        let (op, rest) = [
            ("==", Cmp::Eq),
            ("!=", Cmp::Ne),
            (">=", Cmp::Ge),
            ("<=", Cmp::Le),
            (">", Cmp::Gt),
            ("<", Cmp::Lt),
            ("=", Cmp::Eq),
        ]
        .into_iter()
        .find_map(|(prefix, op)| s.strip_prefix(prefix).map(|rest| (op, rest)))
        .unwrap_or((Cmp::Eq, s));
        let severity = rest.parse()?;
        Ok(SeverityMatch { op, severity })
    }

    pub fn matches(&self, s: Severity) -> bool {
        match self.op {
            Cmp::Eq => s == self.severity,
            Cmp::Ne => s != self.severity,
            Cmp::Lt => s < self.severity,
            Cmp::Le => s <= self.severity,
            Cmp::Gt => s > self.severity,
            Cmp::Ge => s >= self.severity,
        }
    }
}

/// A compiled `match:` (a route's, or an inhibition's `source` or `target`).
#[derive(Debug, Clone)]
pub struct Match {
    pub(super) types: Vec<String>,
    pub(super) severity: Option<SeverityMatch>,
    pub(super) labels: Vec<(String, String)>,
    pub(super) matchers: Vec<Matcher>,
    /// Index into the compiled expressions.
    pub(super) when: Option<usize>,
}

impl Match {
    pub(super) fn admits_type(&self, kind: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| glob_match(t, kind))
    }
}

/// The expressions of every rule file (`when:`, an alert rule's conditions), compiled
/// together in one environment once all files are read.
#[derive(Default)]
pub(crate) struct Conditions {
    pub(super) sources: Vec<String>,
    /// Where each is, whose it is, its key (`when`, `threshold`...) and the variables it
    /// may use.
    pub(super) at: Vec<ConditionAt>,
}

pub(super) struct ConditionAt {
    pub(super) file: PathBuf,
    pub(super) loc: serde_saphyr::Location,
    pub(super) owner: String,
    pub(super) key: &'static str,
    pub(super) variables: &'static [&'static str],
}

impl Conditions {
    /// Adds `source`; returns its index among the compiled expressions.
    pub(crate) fn add(
        &mut self,
        file: &Path,
        source: &Spanned<String>,
        owner: &str,
        key: &'static str,
        variables: &'static [&'static str],
    ) -> usize {
        self.sources.push(source.value.clone());
        self.at.push(ConditionAt {
            file: file.to_path_buf(),
            loc: source.referenced,
            owner: owner.to_owned(),
            key,
            variables,
        });
        self.sources.len() - 1
    }
}

/// Compiles a `match:`; a `when:` goes to `conditions` (compiled with the others
/// later) under `owner`'s name.
pub(crate) fn compile_match(
    file: &Path,
    raw: RawMatch,
    owner: &str,
    prefix: &str,
    problems: &mut Diagnostics,
    conditions: &mut Conditions,
) -> Match {
    let types = match raw.kind.map(|k| k.value) {
        None => Vec::new(),
        Some(OneOrMany::One(t)) => vec![t],
        Some(OneOrMany::Many(ts)) => ts,
    };
    let severity = raw
        .severity
        .and_then(|s| match SeverityMatch::parse(&s.value) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(at(
                    file,
                    &s.referenced,
                    format!("{owner}: {prefix}severity: {e} (comparisons: ==, !=, <, <=, >, >=)"),
                ));
                None
            }
        });
    let matchers = raw
        .matchers
        .iter()
        .filter_map(|m| match Matcher::parse(&m.value) {
            Ok(matcher) => Some(matcher),
            Err(e) => {
                problems.push(at(
                    file,
                    &m.referenced,
                    format!("{owner}: {prefix}matchers: {e}"),
                ));
                None
            }
        })
        .collect();
    let when = raw
        .when
        .map(|w| conditions.add(file, &w, owner, "when", &EXPRESSION_VARIABLES));
    Match {
        types,
        severity,
        labels: raw.labels.into_iter().collect(),
        matchers,
        when,
    }
}

pub(super) fn at(
    file: &Path,
    loc: &serde_saphyr::Location,
    message: impl Into<String>,
) -> Diagnostic {
    Diagnostic::new(file, loc.line() as u32, loc.column() as u32, message)
}

/// `*` matches any run of characters, `?` any one; everything else matches itself.
/// Runs on every route for every event, so it works on the strings in place.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and where in the text it is tried from next.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'?' {
            // `?` is one character, which may be several bytes.
            pi += 1;
            ti += utf8_len(t[ti]);
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            let next = st + utf8_len(t[st]);
            pi = sp + 1;
            ti = next;
            star = Some((sp, next));
        } else {
            return false;
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

/// The length of the UTF-8 character that starts with byte `b`.
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}
