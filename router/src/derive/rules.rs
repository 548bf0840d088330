//! Alert rules (`alerts:` in rule files): alerts no single event shows, derived from the
//! stream. Each has a name, a `match:` for the events it reads, `by:` keys that split
//! them into series, a severity, labels and annotations (minijinja, rendered with the
//! series' newest event), and one kind:
//!
//! - `threshold: <expression over event>`: the newest event of the series holds it, for
//!   `for:` (default 0) and then until it does not (plus `keep_firing_for:`);
//! - `count: {at_least: N, within: 10m}`: N matching events within a sliding window;
//! - `streak: {count: N, when: <expression>}`: N events in a row that hold `when`, reset
//!   by one that does not;
//! - `absent: 2m`: no matching event for that long, in a series seen before;
//! - `state: <expression over state>`: a condition over the state store's answers
//!   (`state.daily.pnl_pct`), looked at on each matching event and every
//!   `every:` (default 1m), with `for:`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::parse_duration;
use crate::diag::{Diagnostic, Diagnostics};
use crate::event::Severity;
use crate::notify::keys::Key;
use crate::rules::matching::{Conditions, Match, RawMatch, compile_match};

/// Variables a threshold, streak or event condition may use.
const EVENT_VARIABLES: [&str; 1] = ["event"];
/// Variables a `state:` condition may use.
const STATE_VARIABLES: [&str; 1] = ["state"];
/// How often a `state:` rule is looked at without events, by default.
const DEFAULT_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlertRule {
    name: Spanned<String>,
    #[serde(rename = "match", default)]
    matcher: RawMatch,
    #[serde(default)]
    by: Vec<Spanned<String>>,
    severity: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    threshold: Option<Spanned<String>>,
    count: Option<Spanned<RawCount>>,
    streak: Option<Spanned<RawStreak>>,
    absent: Option<Spanned<String>>,
    state: Option<Spanned<String>>,
    #[serde(rename = "for")]
    for_: Option<Spanned<String>>,
    keep_firing_for: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCount {
    at_least: u32,
    within: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStreak {
    count: u32,
    when: Spanned<String>,
}

/// A compiled alert rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
    pub file: PathBuf,
    pub line: u32,
    pub matcher: Match,
    pub by: Vec<Key>,
    pub severity: Severity,
    pub labels: BTreeMap<String, String>,
    /// Annotation name → its template's source.
    pub annotations: BTreeMap<String, String>,
    pub kind: Kind,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    /// A digest that changes when the definition does: state kept for a rule whose
    /// definition changed is dropped (it starts fresh, and says so).
    pub definition: String,
}

/// What makes an alert rule fire.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Index of the compiled condition over `event`.
    Threshold(usize),
    Count {
        at_least: u32,
        within: Duration,
    },
    Streak {
        count: u32,
        when: usize,
    },
    Absent(Duration),
    /// Index of the compiled condition over `state`, and how often to look.
    State {
        condition: usize,
        every: Duration,
    },
}

/// Compiles the `alerts:` of one rule file; conditions go to `conditions`, problems to
/// `problems`, each at its place. `names` collects names across files (unique).
pub(crate) fn compile(
    file: &Path,
    raw: Vec<Spanned<RawAlertRule>>,
    problems: &mut Diagnostics,
    conditions: &mut Conditions,
    names: &mut super::Names,
) -> Vec<AlertRule> {
    let mut out = Vec::new();
    for spanned in raw {
        let loc = spanned.referenced;
        let r = spanned.value;
        let name = r.name.value.clone();
        let owner = format!("alert rule `{name}`");
        let at = |l: &serde_saphyr::Location, m: String| {
            Diagnostic::new(
                file,
                l.line() as u32,
                l.column() as u32,
                format!("{owner}: {m}"),
            )
        };
        names.claim(file, &r.name, &owner, problems);
        // A short digest: it is stored with every series.
        let definition = crate::notify::keys::fnv1a(
            format!(
                "{:?}",
                (
                    r.matcher.describe(),
                    &r.by.iter().map(|b| &b.value).collect::<Vec<_>>(),
                    &r.threshold.as_ref().map(|t| &t.value),
                    &r.count
                        .as_ref()
                        .map(|c| (c.value.at_least, &c.value.within.value)),
                    &r.streak
                        .as_ref()
                        .map(|s| (s.value.count, &s.value.when.value)),
                    &r.absent.as_ref().map(|a| &a.value),
                    &r.state.as_ref().map(|s| &s.value),
                    &r.for_.as_ref().map(|f| &f.value)
                )
            )
            .into_bytes(),
        );
        let matcher = compile_match(file, r.matcher, &owner, "match.", problems, conditions);
        let by =
            r.by.iter()
                .filter_map(|k| match Key::parse(&k.value) {
                    Ok(key) => Some(key),
                    Err(e) => {
                        problems.push(at(&k.referenced, format!("by: {e}")));
                        None
                    }
                })
                .collect();
        let severity = match &r.severity {
            None => Severity::Warning,
            Some(s) => s.value.parse().unwrap_or_else(|e: String| {
                problems.push(at(&s.referenced, format!("severity: {e}")));
                Severity::Warning
            }),
        };
        let duration =
            |field: &str, raw: &Option<Spanned<String>>, problems: &mut Diagnostics| match raw {
                None => None,
                Some(s) => match parse_duration(&s.value) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        problems.push(at(&s.referenced, format!("{field}: {e}")));
                        None
                    }
                },
            };
        let for_ = duration("for", &r.for_, problems).unwrap_or_default();
        let keep_firing_for =
            duration("keep_firing_for", &r.keep_firing_for, problems).unwrap_or_default();
        let every = duration("every", &r.every, problems);
        let mut kinds = Vec::new();
        if let Some(t) = &r.threshold {
            kinds.push(Kind::Threshold(conditions.add(
                file,
                t,
                &owner,
                "threshold",
                &EVENT_VARIABLES,
            )));
        }
        if let Some(c) = &r.count {
            if c.value.at_least == 0 {
                problems.push(at(
                    &c.referenced,
                    "count.at_least: 0 would always fire: write at least 1".into(),
                ));
            }
            if let Some(within) = duration("count.within", &Some(c.value.within.clone()), problems)
            {
                kinds.push(Kind::Count {
                    at_least: c.value.at_least.max(1),
                    within,
                });
            }
        }
        if let Some(st) = &r.streak {
            if st.value.count == 0 {
                problems.push(at(
                    &st.referenced,
                    "streak.count: 0 would always fire: write at least 1".into(),
                ));
            }
            let when = conditions.add(
                file,
                &st.value.when,
                &owner,
                "streak.when",
                &EVENT_VARIABLES,
            );
            kinds.push(Kind::Streak {
                count: st.value.count.max(1),
                when,
            });
        }
        if let Some(d) = duration("absent", &r.absent, problems) {
            if d.is_zero() {
                problems.push(at(&loc, "absent: must be longer than zero".into()));
            }
            kinds.push(Kind::Absent(d));
        }
        if let Some(s) = &r.state {
            let condition = conditions.add(file, s, &owner, "state", &STATE_VARIABLES);
            kinds.push(Kind::State {
                condition,
                every: every.unwrap_or(DEFAULT_EVERY).max(Duration::from_secs(1)),
            });
        } else if let Some(e) = &r.every {
            problems.push(at(
                &e.referenced,
                "every: applies to `state:` rules only".into(),
            ));
        }
        let kind = match kinds.len() {
            1 => kinds.remove(0),
            0 => {
                problems.push(at(
                    &loc,
                    "say what makes it fire: one of threshold, count, streak, absent or state"
                        .into(),
                ));
                continue;
            }
            _ => {
                problems.push(at(
                    &loc,
                    "give one of threshold, count, streak, absent or state, not several".into(),
                ));
                continue;
            }
        };
        if matches!(
            kind,
            Kind::Count { .. } | Kind::Streak { .. } | Kind::Absent(_)
        ) && let Some(f) = &r.for_
        {
            problems.push(at(&f.referenced, "for: applies to threshold and state rules (count, streak and absent say their own time)".into()));
        }
        for (k, v) in r.annotations.iter().chain(&r.labels) {
            if let Err(e) = minijinja::Environment::new().template_from_str(v) {
                problems.push(at(&loc, format!("`{k}`: {e}")));
            }
        }
        out.push(AlertRule {
            name,
            file: file.to_path_buf(),
            line: loc.line() as u32,
            matcher,
            by,
            severity,
            labels: r.labels,
            annotations: r.annotations,
            kind,
            for_,
            keep_firing_for,
            definition,
        });
    }
    out
}
