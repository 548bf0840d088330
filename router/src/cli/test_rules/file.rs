//! The file format of `alert-router test`: read from YAML with every key checked, each
//! problem reported at its place, and turned into each test's steps in the order they
//! happen. What the steps do is the parent module's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::{Location, Spanned};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::diag::{Diagnostic, Diagnostics};
use crate::notify::engine::Reason;
use crate::notify::silences::NewSilence;

/// Where tests start when the file does not say: a Monday, at midnight UTC.
pub const DEFAULT_START: &str = "2026-01-05T00:00:00Z";

/// The keys a message expectation checks its payload with, at most one of them.
const PAYLOAD_CHECKS: &str = "contains (a text in any string of the payload), payload (a subset) or exact (the whole payload)";

// ---- the file as written ----------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    config: Option<Spanned<String>>,
    start: Option<Spanned<String>>,
    tests: Spanned<Vec<Spanned<RawTest>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: Spanned<String>,
    #[serde(default)]
    events: Vec<Spanned<RawEvents>>,
    #[serde(default)]
    silences: Vec<Spanned<RawSilence>>,
    #[serde(default)]
    expect: Vec<Spanned<RawExpect>>,
}

/// `- at: 5m` with `event: {...}` or `events: [{...}, ...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    at: Spanned<String>,
    event: Option<Value>,
    events: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSilence {
    at: Spanned<String>,
    silence: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    at: Spanned<String>,
    alerts: Option<Spanned<Vec<Spanned<RawAlert>>>>,
    no_alerts: Option<bool>,
    messages: Option<Spanned<Vec<Spanned<RawMessage>>>>,
    count: Option<Spanned<u64>>,
    held_back: Option<BTreeMap<String, Spanned<u64>>>,
    routed: Option<BTreeMap<String, Spanned<u64>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlert {
    name: String,
    status: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    sink: Spanned<String>,
    contains: Option<String>,
    payload: Option<Value>,
    exact: Option<Value>,
}

// ---- checked ----------------------------------------------------------------------------

/// One test file, read and checked.
#[derive(Debug)]
pub struct TestFile {
    pub path: PathBuf,
    /// The config the tests run on: the file's `config:` (relative to the file), else
    /// the command line's.
    pub config: PathBuf,
    pub start: OffsetDateTime,
    pub tests: Vec<Test>,
}

#[derive(Debug)]
pub struct Test {
    pub name: String,
    pub line: u32,
    /// In the order they happen: by time, and at one time silences, then events, then
    /// expectations, each kind in file order.
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct Step {
    /// From the file's start.
    pub at: Duration,
    pub line: u32,
    pub action: Action,
}

#[derive(Debug)]
pub enum Action {
    /// The body of a `POST /v1/silences`.
    Silence(Value),
    /// The events of one `POST /v1/events`.
    Post(Vec<Value>),
    Expect(Expect),
}

/// What must hold at one instant.
#[derive(Debug, Default)]
pub struct Expect {
    pub alerts: Vec<ExpectedAlert>,
    /// `no_alerts: true`: no alert is firing.
    pub no_alerts: bool,
    /// Whether this is a messages check (`messages:` or `count:`): it looks at what the
    /// sinks got since the previous one.
    pub checks_messages: bool,
    pub messages: Vec<ExpectedMessage>,
    /// `count:` and its line.
    pub count: Option<(u64, u32)>,
    /// `held_back:` reason, count and line.
    pub held_back: Vec<(String, u64, u32)>,
    /// `routed:` route, messages it wrote for its sinks since the start, and line.
    pub routed: Vec<(String, u64, u32)>,
}

#[derive(Debug)]
pub struct ExpectedAlert {
    pub line: u32,
    /// Its `alertname`, or failing that its type.
    pub name: String,
    /// `firing` or `resolved`.
    pub status: String,
    pub severity: Option<String>,
    /// A subset of its labels.
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct ExpectedMessage {
    pub line: u32,
    pub col: u32,
    pub sink: String,
    pub check: PayloadCheck,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PayloadCheck {
    /// Any message to the sink.
    Any,
    /// A text in one of the payload's strings.
    Contains(String),
    /// These keys with these values, recursively.
    Subset(Value),
    /// The whole payload.
    Exact(Value),
}

impl TestFile {
    /// Reads and checks the test file at `path`; `default_config` when it names none.
    /// Every problem is reported, each at its place.
    pub fn read(path: &Path, default_config: &Path) -> Result<TestFile, Diagnostics> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Diagnostic::file(path, format!("cannot read the test file: {e}")))?;
        TestFile::parse(path, &text, default_config)
    }

    /// [`TestFile::read`] on `text`, read from `path`.
    pub fn parse(path: &Path, text: &str, default_config: &Path) -> Result<TestFile, Diagnostics> {
        if text.trim().is_empty() {
            return Err(Diagnostic::file(
                path,
                "the file is empty: a test file has `tests:`, a list of tests each with a name, events and expect",
            )
            .into());
        }
        let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| Diagnostic::yaml(path, &e))?;
        let mut problems = Diagnostics::default();
        let config = match &raw.config {
            Some(c) => lexically_clean(
                &path
                    .parent()
                    .unwrap_or_else(|| Path::new(""))
                    .join(&c.value),
            ),
            None => default_config.to_path_buf(),
        };
        let start_text = raw
            .start
            .as_ref()
            .map_or(DEFAULT_START, |s| s.value.as_str());
        let start = match OffsetDateTime::parse(start_text.trim(), &Rfc3339) {
            Ok(t) => t,
            Err(e) => {
                let loc = raw.start.as_ref().map(|s| s.referenced);
                problems.push(place(path, loc.as_ref(), format!(
                    "start: {start_text:?} is not an RFC 3339 time ({e}): write e.g. 2026-12-04T10:00:00Z"
                )));
                OffsetDateTime::UNIX_EPOCH
            }
        };
        if raw.tests.value.is_empty() {
            problems.push(at(
                path,
                &raw.tests.referenced,
                "tests: none: add a test with a name, events and expect",
            ));
        }
        let mut names = BTreeMap::new();
        let mut tests = Vec::new();
        for test in raw.tests.value {
            let line = test.referenced.line() as u32;
            let name = test.value.name.value.clone();
            if let Some(first) = names.insert(name.clone(), line) {
                problems.push(at(
                    path,
                    &test.value.name.referenced,
                    format!("test `{name}`: the name is used already, by the test at line {first}: give each test its own name"),
                ));
            }
            let steps = steps(path, &name, test.value, start, &mut problems);
            tests.push(Test { name, line, steps });
        }
        problems.into_result(TestFile {
            path: path.to_path_buf(),
            config,
            start,
            tests,
        })
    }

    /// Every message expectation with its test: their sinks are checked against the
    /// config once it is loaded.
    pub fn messages_expected(&self) -> impl Iterator<Item = (&Test, &ExpectedMessage)> {
        self.tests.iter().flat_map(|t| {
            t.steps.iter().flat_map(move |s| match &s.action {
                Action::Expect(e) => e.messages.iter().map(move |m| (t, m)).collect(),
                _ => Vec::new(),
            })
        })
    }
}

/// One test's steps, in the order they happen.
fn steps(
    path: &Path,
    name: &str,
    test: RawTest,
    start: OffsetDateTime,
    problems: &mut Diagnostics,
) -> Vec<Step> {
    let what = format!("test `{name}`");
    let expects_nothing = test.expect.is_empty();
    // (time, rank at that time, step): sorted stably, so each kind keeps file order.
    let mut steps: Vec<(Duration, u8, Step)> = Vec::new();
    for spanned in test.silences {
        let line = spanned.referenced.line() as u32;
        let raw = spanned.value;
        let Some(at_) = offset_at(path, &what, &raw.at, problems) else {
            continue;
        };
        if let Err(e) = NewSilence::from_json(raw.silence.clone()) {
            problems.push(at(path, &spanned.referenced, format!(
                "{what}: silence: {e} (a silence as POST /v1/silences takes it: {{matchers: [\"labels.exchange=binance\"], duration: 1h, created_by: test}})"
            )));
            continue;
        }
        steps.push((
            at_,
            0,
            Step {
                at: at_,
                line,
                action: Action::Silence(raw.silence),
            },
        ));
    }
    let mut previous: Option<Duration> = None;
    for spanned in test.events {
        let line = spanned.referenced.line() as u32;
        let raw = spanned.value;
        let Some(at_) = offset_at(path, &what, &raw.at, problems) else {
            continue;
        };
        if let Some(before) = previous.filter(|&b| b > at_) {
            problems.push(at(
                path,
                &raw.at.referenced,
                format!(
                    "{what}: events at {} come after events at {}: list events in time order",
                    offset_text(at_),
                    offset_text(before)
                ),
            ));
        }
        previous = Some(previous.map_or(at_, |p| p.max(at_)));
        let events = match (raw.event, raw.events) {
            (Some(one), None) => vec![one],
            (None, Some(many)) if !many.is_empty() => many,
            (None, Some(_)) => {
                problems.push(at(
                    path,
                    &spanned.referenced,
                    format!("{what}: events: the list is empty: give at least one event"),
                ));
                continue;
            }
            (Some(_), Some(_)) => {
                problems.push(at(
                    path,
                    &spanned.referenced,
                    format!("{what}: give `event` (one) or `events` (a list), not both"),
                ));
                continue;
            }
            (None, None) => {
                problems.push(at(path, &spanned.referenced, format!(
                    "{what}: nothing at {}: give `event: {{type: ..., ...}}` or `events: [...]`",
                    offset_text(at_)
                )));
                continue;
            }
        };
        // Refused now, at its place, rather than when the test runs.
        if let Err(e) = parse_events(&events, start) {
            problems.push(at(
                path,
                &spanned.referenced,
                format!("{what}: the router would refuse this: {e}"),
            ));
            continue;
        }
        steps.push((
            at_,
            1,
            Step {
                at: at_,
                line,
                action: Action::Post(events),
            },
        ));
    }
    for spanned in test.expect {
        let line = spanned.referenced.line() as u32;
        let raw = spanned.value;
        let Some(at_) = offset_at(path, &what, &raw.at, problems) else {
            continue;
        };
        if let Some(expect) = expectation(path, &what, &spanned.referenced, raw, problems) {
            steps.push((
                at_,
                2,
                Step {
                    at: at_,
                    line,
                    action: Action::Expect(expect),
                },
            ));
        }
    }
    if expects_nothing {
        problems.push(at(path, &test.name.referenced, format!(
            "{what}: nothing is expected: add `expect:` with at and alerts, messages, count or held_back"
        )));
    }
    steps.sort_by_key(|(t, rank, _)| (*t, *rank));
    steps.into_iter().map(|(_, _, step)| step).collect()
}

/// The events as the router's ingest reads a body, times defaulting to `now`.
pub fn parse_events(
    events: &[Value],
    now: OffsetDateTime,
) -> Result<Vec<crate::event::Event>, crate::ingest::BatchError> {
    let body = match events {
        [one] => one.to_string(),
        many => Value::Array(many.to_vec()).to_string(),
    };
    crate::ingest::parse_body(body.as_bytes(), now)
}

fn expectation(
    path: &Path,
    what: &str,
    loc: &Location,
    raw: RawExpect,
    problems: &mut Diagnostics,
) -> Option<Expect> {
    let before = problems.0.len();
    let mut expect = Expect {
        no_alerts: raw.no_alerts == Some(true),
        checks_messages: raw.messages.is_some() || raw.count.is_some(),
        count: raw
            .count
            .as_ref()
            .map(|c| (c.value, c.referenced.line() as u32)),
        ..Expect::default()
    };
    if let Some(alerts) = raw.alerts {
        if alerts.value.is_empty() {
            problems.push(at(path, &alerts.referenced, format!(
                "{what}: alerts: an empty list expects nothing: write `no_alerts: true` to expect no alert firing"
            )));
        }
        for spanned in alerts.value {
            let raw = spanned.value;
            let status =
                match raw.status {
                    None => "firing".to_owned(),
                    Some(s) if matches!(s.value.as_str(), "firing" | "resolved") => s.value,
                    Some(s) => {
                        problems.push(at(path, &s.referenced, format!(
                        "{what}: alert `{}`: status {:?}: an alert is `firing` or `resolved`",
                        raw.name, s.value
                    )));
                        continue;
                    }
                };
            if let Some(s) = &raw.severity
                && let Err(e) = s.value.parse::<crate::event::Severity>()
            {
                problems.push(at(
                    path,
                    &s.referenced,
                    format!("{what}: alert `{}`: severity: {e}", raw.name),
                ));
            }
            expect.alerts.push(ExpectedAlert {
                line: spanned.referenced.line() as u32,
                name: raw.name,
                status,
                severity: raw.severity.map(|s| s.value),
                labels: raw.labels,
            });
        }
    }
    if let Some(messages) = raw.messages {
        if messages.value.is_empty() {
            problems.push(at(path, &messages.referenced, format!(
                "{what}: messages: an empty list expects nothing: write `count: 0` to expect no message"
            )));
        }
        for spanned in messages.value {
            let raw = spanned.value;
            let check =
                match (raw.contains, raw.payload, raw.exact) {
                    (None, None, None) => PayloadCheck::Any,
                    (Some(text), None, None) => PayloadCheck::Contains(text),
                    (None, Some(subset), None) => PayloadCheck::Subset(subset),
                    (None, None, Some(exact)) => PayloadCheck::Exact(exact),
                    _ => {
                        problems.push(at(path, &spanned.referenced, format!(
                        "{what}: a message is checked with one of {PAYLOAD_CHECKS}, not several"
                    )));
                        continue;
                    }
                };
            expect.messages.push(ExpectedMessage {
                line: spanned.referenced.line() as u32,
                col: raw.sink.referenced.column() as u32,
                sink: raw.sink.value,
                check,
            });
        }
    }
    for (reason, count) in raw.held_back.unwrap_or_default() {
        if !Reason::ALL.iter().any(|r| r.as_str() == reason) {
            let reasons: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
            let hint = match crate::diag::closest(&reason, reasons.iter().copied()) {
                Some(r) => format!(" (did you mean `{r}`?)"),
                None => String::new(),
            };
            problems.push(at(
                path,
                &count.referenced,
                format!(
                    "{what}: held_back: unknown reason `{reason}`{hint}: the reasons are {}",
                    reasons.join(", ")
                ),
            ));
            continue;
        }
        expect
            .held_back
            .push((reason, count.value, count.referenced.line() as u32));
    }
    for (route, count) in raw.routed.unwrap_or_default() {
        expect
            .routed
            .push((route, count.value, count.referenced.line() as u32));
    }
    if expect.alerts.is_empty()
        && !expect.no_alerts
        && !expect.checks_messages
        && expect.held_back.is_empty()
        && expect.routed.is_empty()
        && problems.0.len() == before
    {
        problems.push(at(path, loc, format!(
            "{what}: this expectation checks nothing: give alerts, no_alerts: true, messages, count, held_back or routed"
        )));
    }
    (problems.0.len() == before).then_some(expect)
}

/// `at:` read as an offset, or its problem reported.
fn offset_at(
    path: &Path,
    what: &str,
    at_: &Spanned<String>,
    problems: &mut Diagnostics,
) -> Option<Duration> {
    parse_offset(&at_.value)
        .map_err(|e| problems.push(at(path, &at_.referenced, format!("{what}: at: {e}"))))
        .ok()
}

/// `tests/../router.yaml` as `router.yaml`, for messages; the file system is not asked
/// (a `..` after a symbolic link would lead elsewhere, so only `name/..` pairs go).
fn lexically_clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match (c, out.last()) {
            // `/..` is `/`.
            (Component::CurDir, _) | (Component::ParentDir, Some(Component::RootDir)) => {}
            (Component::ParentDir, Some(Component::Normal(_))) => {
                out.pop();
            }
            _ => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// An offset from the start: `0s`, `10s`, `5m`, `1h30m`, `1d 2h`, `250ms`; a bare number
/// is seconds.
pub fn parse_offset(text: &str) -> Result<Duration, String> {
    let hint = "write an offset from start such as 0s, 10s, 5m or 1h30m";
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("empty: {hint}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        // One part: a number and the letters after it.
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit = rest[digits..]
            .find(|c: char| !c.is_ascii_alphabetic())
            .map_or(rest.len(), |i| digits + i);
        if digits == 0 {
            return Err(format!("{text:?}: {hint}"));
        }
        let part = crate::config::parse_duration(&rest[..unit])
            .map_err(|e| format!("{text:?}: {e}; {hint}"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{text:?} is too long"))?;
        rest = rest[unit..].trim_start();
    }
    Ok(total)
}

/// An offset as the file would write it: `0s`, `90s` as `1m30s`.
pub fn offset_text(d: Duration) -> String {
    if d.is_zero() {
        "0s".to_owned()
    } else {
        crate::config::format_duration(d)
    }
}

fn at(file: &Path, loc: &Location, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(file, loc.line() as u32, loc.column() as u32, message)
}

fn place(file: &Path, loc: Option<&Location>, message: impl Into<String>) -> Diagnostic {
    match loc {
        Some(loc) => at(file, loc, message),
        None => Diagnostic::file(file, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<TestFile, Diagnostics> {
        TestFile::parse(Path::new("dir/t.yaml"), text, Path::new("router.yaml"))
    }

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(f) => panic!("expected problems, read {f:?}"),
            Err(d) => d.0.iter().map(ToString::to_string).collect(),
        }
    }

    const EVERY_KEY: &str = r#"# every key
config: ../router.yaml
start: 2026-12-04T10:00:00Z
tests:
  - name: all of it
    events:
      - at: 0s
        event: {type: equity, drawdown_pct: 12, labels: {bot: a}}
      - at: 1h30m
        events: [{type: a}, {type: b}]
    silences:
      - at: 10s
        silence: {matchers: ["labels.bot=a"], duration: 1h, created_by: test}
    expect:
      - at: 5m
        alerts:
          - {name: drawdown, status: resolved, severity: critical, labels: {bot: a}}
          - name: other
        no_alerts: false
      - at: 5m
        messages:
          - sink: console
          - sink: console
            contains: Drawdown
          - sink: hook
            payload: {embeds: [{title: x}]}
          - sink: hook
            exact: {text: "y"}
        count: 4
      - at: 0
        no_alerts: true
        held_back: {silenced: 1, grouped: 0}
"#;

    #[test]
    fn reads_every_key() {
        let f = parse(EVERY_KEY).expect("valid");
        assert_eq!(f.config, Path::new("router.yaml"));
        assert_eq!(
            f.start,
            OffsetDateTime::parse("2026-12-04T10:00:00Z", &Rfc3339).expect("a time")
        );
        let [test] = &f.tests[..] else {
            panic!("one test: {:?}", f.tests)
        };
        assert_eq!((test.name.as_str(), test.line), ("all of it", 5));
        // In time order; at 5m the two expectations in file order.
        let order: Vec<(u64, u32)> = test
            .steps
            .iter()
            .map(|s| (s.at.as_secs(), s.line))
            .collect();
        assert_eq!(
            order,
            [(0, 7), (0, 30), (10, 12), (300, 15), (300, 20), (5400, 9)]
        );
        let Action::Post(first) = &test.steps[0].action else {
            panic!("events first")
        };
        assert_eq!(
            first[0],
            json!({"type": "equity", "drawdown_pct": 12, "labels": {"bot": "a"}})
        );
        let Action::Post(two) = &test.steps[5].action else {
            panic!("events")
        };
        assert_eq!(two.len(), 2);
        let Action::Silence(s) = &test.steps[2].action else {
            panic!("a silence")
        };
        assert_eq!(s["duration"], "1h");
        let Action::Expect(e) = &test.steps[3].action else {
            panic!("an expectation")
        };
        assert!(!e.no_alerts && !e.checks_messages);
        assert_eq!(e.alerts.len(), 2);
        assert_eq!(
            (
                e.alerts[0].name.as_str(),
                e.alerts[0].status.as_str(),
                e.alerts[0].severity.as_deref(),
                e.alerts[0].line
            ),
            ("drawdown", "resolved", Some("critical"), 17)
        );
        assert_eq!(e.alerts[0].labels.get("bot").map(String::as_str), Some("a"));
        assert_eq!(
            (e.alerts[1].status.as_str(), e.alerts[1].line),
            ("firing", 18)
        );
        let Action::Expect(e) = &test.steps[4].action else {
            panic!("an expectation")
        };
        assert!(e.checks_messages);
        assert_eq!(e.count, Some((4, 29)));
        let checks: Vec<(&str, u32, u32, &PayloadCheck)> = e
            .messages
            .iter()
            .map(|m| (m.sink.as_str(), m.line, m.col, &m.check))
            .collect();
        assert_eq!(
            checks,
            [
                ("console", 22, 19, &PayloadCheck::Any),
                (
                    "console",
                    23,
                    19,
                    &PayloadCheck::Contains("Drawdown".into())
                ),
                (
                    "hook",
                    25,
                    19,
                    &PayloadCheck::Subset(json!({"embeds": [{"title": "x"}]}))
                ),
                ("hook", 27, 19, &PayloadCheck::Exact(json!({"text": "y"}))),
            ]
        );
        let Action::Expect(e) = &test.steps[1].action else {
            panic!("an expectation")
        };
        assert!(e.no_alerts);
        assert_eq!(
            e.held_back,
            [
                ("grouped".to_owned(), 0, 32),
                ("silenced".to_owned(), 1, 32)
            ]
        );
        assert_eq!(f.messages_expected().count(), 4);
    }

    #[test]
    fn defaults_the_start_and_the_config() {
        let f =
            parse("tests:\n  - name: a\n    expect: [{at: 1m, no_alerts: true}]\n").expect("valid");
        assert_eq!(f.config, Path::new("router.yaml"));
        assert_eq!(f.start.to_string(), "2026-01-05 0:00:00.0 +00:00:00");
        assert_eq!(f.start.weekday(), time::Weekday::Monday);
    }

    #[test]
    fn the_config_is_relative_to_the_file() {
        let read = |dir: &str, config: &str| {
            let text = format!(
                "config: {config}\ntests:\n  - name: a\n    expect: [{{at: 1m, no_alerts: true}}]\n"
            );
            TestFile::parse(&Path::new(dir).join("t.yaml"), &text, Path::new("x"))
                .expect("valid")
                .config
        };
        assert_eq!(read("tests", "../router.yaml"), Path::new("router.yaml"));
        assert_eq!(
            read("a/b", "./../../c/router.yaml"),
            Path::new("c/router.yaml")
        );
        assert_eq!(read("", "../router.yaml"), Path::new("../router.yaml"));
        assert_eq!(read("a", "/etc/router.yaml"), Path::new("/etc/router.yaml"));
        assert_eq!(
            read("/srv/tests", "../../../router.yaml"),
            Path::new("/router.yaml")
        );
    }

    #[test]
    fn offsets() {
        let secs = |s: &str| parse_offset(s).map(|d| d.as_millis());
        assert_eq!(secs("0s"), Ok(0));
        assert_eq!(secs("0"), Ok(0));
        assert_eq!(secs("10s"), Ok(10_000));
        assert_eq!(secs("5m"), Ok(300_000));
        assert_eq!(secs("1h30m"), Ok(5_400_000));
        assert_eq!(secs("1d 2h"), Ok(93_600_000));
        assert_eq!(secs("1m30s250ms"), Ok(90_250));
        assert_eq!(secs("90"), Ok(90_000));
        for bad in ["", "m", "-5m", "5 parsecs", "1h-2m", "soon"] {
            let e = parse_offset(bad).expect_err(bad);
            assert!(e.contains("0s, 10s, 5m or 1h30m"), "{bad}: {e}");
        }
        assert_eq!(offset_text(Duration::ZERO), "0s");
        assert_eq!(offset_text(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn unknown_keys_are_refused_at_their_place() {
        assert_eq!(
            problems("tests:\n  - name: a\n    expect:\n      - at: 1m\n        alerst: []\n"),
            [
                "dir/t.yaml:5:9: unknown field `alerst`, expected one of at, alerts, no_alerts, messages, count, held_back, routed"
            ]
        );
        assert_eq!(
            problems("start: 2026-01-05T00:00:00Z\nstrat: x\ntests: []\n"),
            ["dir/t.yaml:2:1: unknown field `strat`, expected one of config, start, tests"]
        );
        let p = problems(
            "tests:\n  - name: a\n    events:\n      - at: 0s\n        event: {type: a}\n        sink: x\n",
        );
        assert!(
            p[0].starts_with("dir/t.yaml:6:9: unknown field `sink`"),
            "{p:?}"
        );
    }

    #[test]
    fn mistakes_are_reported_at_their_place() {
        let text = r#"start: yesterday
tests:
  - name: a
    events:
      - at: 5m
        event: {type: a}
      - at: 1m
        event: {type: b}
      - at: soon
        event: {type: c}
      - at: 6m
      - at: 7m
        event: {severity: loud}
    silences:
      - at: 0s
        silence: {matchers: ["type=a"], created_by: t, duratoin: 1h}
    expect:
      - at: 1m
        alerts: [{name: x, status: pending}]
      - at: 2m
        held_back: {silnced: 1}
      - at: 3m
        messages: [{sink: console, contains: a, exact: {}}]
      - at: 4m
      - at: 5m
        alerts: []
  - name: a
    expect: [{at: 1m, no_alerts: true}]
  - name: b
    events: [{at: 0s, event: {type: a}}]
"#;
        let p = problems(text);
        let expected = [
            "dir/t.yaml:1:8: start: \"yesterday\" is not an RFC 3339 time",
            "dir/t.yaml:15:9: test `a`: silence: field `duratoin`: unknown key (did you mean `duration`?)",
            "dir/t.yaml:7:13: test `a`: events at 1m come after events at 5m: list events in time order",
            "dir/t.yaml:9:13: test `a`: at: \"soon\": ",
            "dir/t.yaml:11:9: test `a`: nothing at 6m: give `event: {type: ..., ...}` or `events: [...]`",
            "dir/t.yaml:12:9: test `a`: the router would refuse this: ",
            "dir/t.yaml:19:36: test `a`: alert `x`: status \"pending\": an alert is `firing` or `resolved`",
            "dir/t.yaml:21:30: test `a`: held_back: unknown reason `silnced` (did you mean `silenced`?): the reasons are silenced, inhibited, throttled, grouped, muted, delayed",
            "dir/t.yaml:23:20: test `a`: a message is checked with one of contains",
            "dir/t.yaml:24:9: test `a`: this expectation checks nothing",
            "dir/t.yaml:26:17: test `a`: alerts: an empty list expects nothing: write `no_alerts: true`",
            "dir/t.yaml:27:11: test `a`: the name is used already, by the test at line 3",
            "dir/t.yaml:29:11: test `b`: nothing is expected",
        ];
        for want in expected {
            assert!(
                p.iter().any(|p| p.starts_with(want)),
                "no {want:?} in\n{}",
                p.join("\n")
            );
        }
        assert_eq!(p.len(), expected.len(), "{}", p.join("\n"));
    }

    #[test]
    fn an_empty_file_or_no_tests_says_what_a_test_file_has() {
        let p = problems("\n");
        assert!(p[0].starts_with("dir/t.yaml: the file is empty"), "{p:?}");
        let p = problems("tests: []\n");
        assert_eq!(
            p,
            ["dir/t.yaml:1:8: tests: none: add a test with a name, events and expect"]
        );
        let p = problems("config: x.yaml\n");
        assert_eq!(p, ["dir/t.yaml:1:1: missing field `tests`"]);
        let p = problems("tests: [1\n");
        assert!(p[0].starts_with("dir/t.yaml:"), "{p:?}");
    }
}
