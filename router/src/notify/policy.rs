//! A route's noise settings, as rule files write them and compiled: alert identity
//! (`key`, `resolve_timeout`), grouping (`group_by`, `group_wait`, `group_interval`,
//! `repeat_interval`, `send_resolved`), `throttle`, and time windows (`active_during`,
//! `muted_during`, `unless_severity`, `mode`). A route with none of them is plain: its
//! events go out one by one, at once, as they always did.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::keys::Key;
use crate::config::{parse_count_per, parse_duration};
use crate::diag::Diagnostic;
use crate::rules::matching::SeverityMatch;

/// Alertmanager's defaults, so a route that only says `group_by` behaves as there.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
/// How long a firing alert stays firing without a new `firing` event.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The noise keys of a route, as written (rules/ reads them with the rest of the
/// route and hands them over).
#[derive(Debug, Default)]
pub struct RawPolicy {
    pub key: Option<Spanned<Vec<String>>>,
    pub resolve_timeout: Option<Spanned<String>>,
    pub group_by: Option<Spanned<Vec<String>>>,
    pub group_wait: Option<Spanned<String>>,
    pub group_interval: Option<Spanned<String>>,
    pub repeat_interval: Option<Spanned<String>>,
    pub send_resolved: Option<Spanned<bool>>,
    pub throttle: Option<Spanned<RawThrottle>>,
    pub active_during: Option<Spanned<Vec<String>>>,
    pub muted_during: Option<Spanned<Vec<String>>>,
    pub unless_severity: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    #[serde(default)]
    pub key: Vec<String>,
    pub at_most: Spanned<String>,
}

/// A route's compiled noise settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The keys that identify an alert of this route; `None`: its type and labels.
    pub key: Option<Vec<Key>>,
    pub resolve_timeout: Duration,
    pub grouping: Option<Grouping>,
    pub throttle: Option<Throttle>,
    pub window: Option<Window>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            key: None,
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            grouping: None,
            throttle: None,
            window: None,
        }
    }
}

impl Policy {
    /// Nothing to do but send each event at once.
    pub fn is_plain(&self) -> bool {
        self.grouping.is_none() && self.throttle.is_none() && self.window.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    pub by: Vec<Key>,
    pub wait: Duration,
    pub interval: Duration,
    pub repeat: Duration,
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Throttle {
    pub key: Vec<Key>,
    /// At most `count` messages per `per`, per key.
    pub count: u32,
    pub per: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// The route sends only inside one of these (empty: always).
    pub active_during: Vec<String>,
    /// The route holds back inside any of these.
    pub muted_during: Vec<String>,
    /// Events this severity condition admits pass whatever the window.
    pub unless: Option<SeverityMatch>,
    pub mode: Mode,
}

/// What a window does with what it holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Counted and dropped.
    Drop,
    /// Kept, and sent as one summary when the window ends.
    Delay,
}

/// A time interval a route names, and where, so the caller can check the name once every
/// file's `time_intervals` are known.
pub struct NamedInterval {
    pub name: String,
    pub line: u32,
    pub col: u32,
}

/// Compiles `raw` for route `route` of `file`; problems go to `problems`, each at its
/// place. Returns the policy and the time intervals it names.
pub fn compile(
    file: &Path,
    route: &str,
    raw: RawPolicy,
    problems: &mut Vec<Diagnostic>,
) -> (Policy, Vec<NamedInterval>) {
    let at = |loc: &serde_saphyr::Location, message: String| {
        Diagnostic::new(
            file,
            loc.line() as u32,
            loc.column() as u32,
            format!("route `{route}`: {message}"),
        )
    };
    let keys = |field: &str, raw: Option<Spanned<Vec<String>>>, problems: &mut Vec<Diagnostic>| {
        raw.map(|list| {
            list.value
                .iter()
                .filter_map(|k| match Key::parse(k) {
                    Ok(key) => Some(key),
                    Err(e) => {
                        problems.push(at(&list.referenced, format!("{field}: {e}")));
                        None
                    }
                })
                .collect::<Vec<Key>>()
        })
    };
    let duration = |field: &str,
                    raw: &Option<Spanned<String>>,
                    default: Duration,
                    problems: &mut Vec<Diagnostic>| match raw {
        None => default,
        Some(s) => match parse_duration(&s.value) {
            Ok(d) if !d.is_zero() || field == "group_wait" => d,
            Ok(_) => {
                problems.push(at(
                    &s.referenced,
                    format!("{field}: must be longer than zero"),
                ));
                default
            }
            Err(e) => {
                problems.push(at(&s.referenced, format!("{field}: {e}")));
                default
            }
        },
    };
    let key = keys("key", raw.key, problems);
    let resolve_timeout = duration(
        "resolve_timeout",
        &raw.resolve_timeout,
        DEFAULT_RESOLVE_TIMEOUT,
        problems,
    );
    let grouped = raw.group_by.is_some()
        || raw.group_wait.is_some()
        || raw.group_interval.is_some()
        || raw.repeat_interval.is_some();
    if !grouped && let Some(s) = &raw.send_resolved {
        problems.push(at(&s.referenced, "send_resolved: applies to grouped routes only; add group_by (an empty list makes one group)".into()));
    }
    let grouping = grouped.then(|| Grouping {
        by: keys("group_by", raw.group_by, problems).unwrap_or_default(),
        wait: duration("group_wait", &raw.group_wait, DEFAULT_GROUP_WAIT, problems),
        interval: duration(
            "group_interval",
            &raw.group_interval,
            DEFAULT_GROUP_INTERVAL,
            problems,
        ),
        repeat: duration(
            "repeat_interval",
            &raw.repeat_interval,
            DEFAULT_REPEAT_INTERVAL,
            problems,
        ),
        send_resolved: raw.send_resolved.is_none_or(|s| s.value),
    });
    let throttle_at = raw.throttle.as_ref().map(|t| t.referenced);
    let throttle = raw.throttle.and_then(|t| {
        let key = t
            .value
            .key
            .iter()
            .filter_map(|k| match Key::parse(k) {
                Ok(key) => Some(key),
                Err(e) => {
                    problems.push(at(&t.referenced, format!("throttle.key: {e}")));
                    None
                }
            })
            .collect();
        match parse_count_per(&t.value.at_most.value) {
            Ok((count, per)) => Some(Throttle { key, count, per }),
            Err(e) => {
                problems.push(at(
                    &t.value.at_most.referenced,
                    format!("throttle.at_most: {e}"),
                ));
                None
            }
        }
    });
    if grouping.is_some()
        && let Some(loc) = throttle_at
    {
        problems.push(at(&loc, "throttle and grouping together: a group already sends at most one notification per group_interval; keep one of them".into()));
    }
    let mut named = Vec::new();
    let mut names = |raw: Option<Spanned<Vec<String>>>| {
        raw.map(|list| {
            for n in &list.value {
                named.push(NamedInterval {
                    name: n.clone(),
                    line: list.referenced.line() as u32,
                    col: list.referenced.column() as u32,
                });
            }
            list.value
        })
        .unwrap_or_default()
    };
    let active_during = names(raw.active_during);
    let muted_during = names(raw.muted_during);
    let unless = raw
        .unless_severity
        .as_ref()
        .and_then(|s| match SeverityMatch::parse(&s.value) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(at(&s.referenced, format!("unless_severity: {e}")));
                None
            }
        });
    let mode = match raw.mode.as_ref().map(|m| m.value.as_str()) {
        None | Some("drop") => Mode::Drop,
        Some("delay") => Mode::Delay,
        Some(other) => {
            if let Some(m) = &raw.mode {
                problems.push(at(&m.referenced, format!("mode: `{other}`: use drop (held back and counted) or delay (sent as one summary when the window ends)")));
            }
            Mode::Drop
        }
    };
    let windowed = !active_during.is_empty() || !muted_during.is_empty();
    if !windowed {
        for (field, loc) in [
            (
                "unless_severity",
                raw.unless_severity.as_ref().map(|s| s.referenced),
            ),
            ("mode", raw.mode.as_ref().map(|s| s.referenced)),
        ] {
            if let Some(loc) = loc {
                problems.push(at(
                    &loc,
                    format!("{field}: applies with active_during or muted_during only"),
                ));
            }
        }
    }
    let window = windowed.then_some(Window {
        active_during,
        muted_during,
        unless,
        mode,
    });
    (
        Policy {
            key,
            resolve_timeout,
            grouping,
            throttle,
            window,
        },
        named,
    )
}
