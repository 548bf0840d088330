//! `alert-router test FILE|DIR...`: rule tests, as `promtool test rules` has them. Each
//! test plays its events and silences at offsets from a start instant through the
//! config on a [`Simulation`] (fresh for every test: nothing carries over), and at the
//! instants it names checks the alerts, what the sinks got and what was held back.
//! Tests run one after another: a simulation's clock is the whole process's.
//!
//! Exit codes: 0 every test passed, 1 a test failed, 2 a file or its config cannot be
//! read or is invalid.

mod diff;
mod file;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics};
use crate::notify::alerts::Listed;
use crate::pipeline;
use crate::plugins::Catalog;
use crate::simulate::{Captured, Simulation};
use file::{
    Action, Expect, ExpectedAlert, ExpectedMessage, PayloadCheck, Test, TestFile, offset_text,
};

/// Messages listed in a failure, at most (a count that is far off lists the first).
const MAX_LISTED: usize = 10;
/// A payload shown on one line up to this many characters, else pretty and indented.
const ONE_LINE: usize = 100;

/// One expectation that did not hold: its line and what was expected and found.
#[derive(Debug)]
struct Failure {
    line: u32,
    message: String,
}

/// How the run went, for the summary and the exit code.
#[derive(Debug, Default)]
struct Tally {
    files: usize,
    passed: usize,
    failed: usize,
    /// What could not run: a file or directory unreadable, a file or its config
    /// invalid, a test the router refused (a silence it would not set).
    invalid: usize,
}

/// `test`: runs every test file in `paths` (a directory: its `*.yaml`) on its config,
/// `default_config` unless the file names one.
pub fn run(default_config: &Path, paths: &[PathBuf]) -> Result<ExitCode> {
    let mut tally = Tally::default();
    let mut configs: HashMap<PathBuf, Option<Config>> = HashMap::new();
    for path in test_files(paths, &mut tally) {
        tally.files += 1;
        let file = match TestFile::read(&path, default_config) {
            Ok(file) => file,
            Err(problems) => {
                print_problems(&problems);
                tally.invalid += 1;
                continue;
            }
        };
        let Some(config) = configs
            .entry(file.config.clone())
            .or_insert_with(|| load_config(&file.config))
        else {
            println!(
                "{}: not run: its config {} has problems (listed above)",
                path.display(),
                file.config.display()
            );
            tally.invalid += 1;
            continue;
        };
        let unknown = unknown_sinks(&file, config);
        if !unknown.is_empty() {
            print_problems(&unknown);
            tally.invalid += 1;
            continue;
        }
        println!("{}", path.display());
        for test in &file.tests {
            match run_test(&file, test, config) {
                Ok(failures) if failures.is_empty() => {
                    println!("  ok      {}", test.name);
                    tally.passed += 1;
                }
                Ok(failures) => {
                    println!("  FAILED  {}", test.name);
                    for f in failures {
                        println!(
                            "{}:{}: test `{}`: {}",
                            path.display(),
                            f.line,
                            test.name,
                            f.message.trim_end()
                        );
                    }
                    tally.failed += 1;
                }
                Err(problems) => {
                    println!("  ERROR   {}", test.name);
                    print_problems(&problems);
                    tally.invalid += 1;
                }
            }
        }
    }
    let mut summary = format!(
        "{} test(s) in {} file(s): {} ok, {} failed",
        tally.passed + tally.failed,
        tally.files,
        tally.passed,
        tally.failed
    );
    if tally.invalid > 0 {
        let _ = write!(summary, "; {} invalid (see above)", tally.invalid);
    }
    println!("{summary}");
    Ok(if tally.invalid > 0 {
        ExitCode::from(2)
    } else if tally.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The files to run: each file named, and every `*.yaml` in each directory named (in
/// name order). A path that is neither is reported and counted invalid.
fn test_files(paths: &[PathBuf], tally: &mut Tally) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let listed = std::fs::read_dir(path).and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<Vec<PathBuf>>>()
        });
        match listed {
            Ok(mut found) => {
                found.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml"));
                found.sort();
                if found.is_empty() {
                    println!("{}: no *.yaml test files in this directory", path.display());
                    tally.invalid += 1;
                }
                files.extend(found);
            }
            Err(e) => {
                println!("{}: cannot list the directory: {e}", path.display());
                tally.invalid += 1;
            }
        }
    }
    files
}

/// The config at `path`, checked as `check` checks it (a plugin that cannot load is a
/// problem here too: its sink would capture nothing); `None` once its problems are
/// printed.
fn load_config(path: &Path) -> Option<Config> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(problems) => {
            print_problems(&problems);
            return None;
        }
    };
    let catalog = Catalog::new(config.plugin_dirs.clone()).strict_modes(config.plugin_strict_modes);
    let checked = match pipeline::check(config, &catalog) {
        Ok(c) => c,
        Err(problems) => {
            print_problems(&problems);
            return None;
        }
    };
    let mut problems = Diagnostics::default();
    for (name, loaded) in &checked.plugins {
        if let (Err(cannot), Some(sink)) = (loaded, checked.config.sinks.get(name)) {
            problems.extend(cannot.diagnostics(&checked.config.path, name, sink, ""));
        }
    }
    if !problems.is_empty() {
        print_problems(&problems);
        return None;
    }
    Some(checked.config)
}

/// Message expectations naming a sink the config does not have, each at its place.
fn unknown_sinks(file: &TestFile, config: &Config) -> Diagnostics {
    let mut problems = Diagnostics::default();
    for (test, m) in file.messages_expected() {
        if !config.sinks.contains_key(&m.sink) {
            let names: Vec<&str> = config.sinks.keys().map(String::as_str).collect();
            let hint = match crate::diag::closest(&m.sink, names.iter().copied()) {
                Some(n) => format!(" (did you mean `{n}`?)"),
                None => String::new(),
            };
            problems.push(Diagnostic::new(
                &file.path,
                m.line,
                m.col,
                format!(
                    "test `{}`: messages: unknown sink `{}`{hint}: the sinks of {} are {}",
                    test.name,
                    m.sink,
                    config.path.display(),
                    names.join(", ")
                ),
            ));
        }
    }
    problems
}

fn print_problems(problems: &Diagnostics) {
    for p in &problems.0 {
        println!("{p}");
    }
}

/// The messages a `messages` check looks at: those after the previous one's.
struct Period {
    /// Index in the captured messages of the first one in the period.
    from: usize,
    /// When the previous messages check was, if there was one.
    since: Option<Duration>,
}

impl Period {
    fn describe(&self, at: Duration) -> String {
        match self.since {
            None => format!("by {}", offset_text(at)),
            Some(since) => format!("after {} and by {}", offset_text(since), offset_text(at)),
        }
    }
}

/// Runs one test on a fresh simulation: its failures, or the problems that stopped it
/// (a silence the router refuses, a simulation that cannot start).
fn run_test(file: &TestFile, test: &Test, config: &Config) -> Result<Vec<Failure>, Diagnostics> {
    let mut sim = Simulation::start(config.clone(), file.start).map_err(|problems| {
        let mut said = Diagnostics::from(Diagnostic::new(
            &file.path,
            test.line,
            0,
            format!(
                "test `{}`: the router cannot start on {}:",
                test.name,
                config.path.display()
            ),
        ));
        said.extend(problems);
        said
    })?;
    let mut period = Period {
        from: 0,
        since: None,
    };
    let mut failures = Vec::new();
    for step in &test.steps {
        let refused = |what: String| {
            Diagnostics::from(Diagnostic::new(
                &file.path,
                step.line,
                0,
                format!("test `{}`: {what}", test.name),
            ))
        };
        let now = time::Duration::try_from(step.at)
            .ok()
            .and_then(|d| file.start.checked_add(d))
            .ok_or_else(|| refused(format!("at {}: too far from start", offset_text(step.at))))?;
        sim.advance_to(now);
        let at = offset_text(step.at);
        match &step.action {
            Action::Silence(body) => {
                sim.set_silence(body.to_string().as_bytes()).map_err(|e| {
                    refused(format!("at {at}: the router refuses this silence: {e}"))
                })?;
            }
            Action::Post(events) => {
                let events = file::parse_events(events, now).map_err(|e| {
                    refused(format!("at {at}: the router refuses these events: {e}"))
                })?;
                if let Err(e) = sim.post(events) {
                    failures.push(Failure {
                        line: step.line,
                        message: format!("at {at}: the router did not take the events: {e}"),
                    });
                }
            }
            Action::Expect(expect) => {
                let checking = Checking {
                    file,
                    config,
                    sim: &sim,
                    at: step.at,
                    line: step.line,
                };
                failures.extend(checking.check(expect, &mut period));
            }
        }
    }
    Ok(failures)
}

/// One expectation being checked against the simulation at its instant.
struct Checking<'a> {
    file: &'a TestFile,
    config: &'a Config,
    sim: &'a Simulation,
    at: Duration,
    line: u32,
}

impl Checking<'_> {
    fn check(&self, expect: &Expect, period: &mut Period) -> Vec<Failure> {
        let mut failures = Vec::new();
        if !expect.alerts.is_empty() || expect.no_alerts {
            self.alerts(expect, &mut failures);
        }
        if expect.checks_messages {
            self.messages(expect, period, &mut failures);
        }
        if !expect.routed.is_empty() {
            self.routed(expect, &mut failures);
        }
        if !expect.held_back.is_empty() {
            self.held_back(expect, &mut failures);
        }
        failures
    }

    fn fail(&self, failures: &mut Vec<Failure>, line: u32, message: String) {
        failures.push(Failure {
            line,
            message: format!("at {}: {message}", offset_text(self.at)),
        });
    }

    fn alerts(&self, expect: &Expect, failures: &mut Vec<Failure>) {
        let listed = self.sim.alerts();
        for want in &expect.alerts {
            if !listed.iter().any(|a| alert_matches(want, a)) {
                let mut with = Vec::new();
                if let Some(s) = &want.severity {
                    with.push(format!("severity {s}"));
                }
                if !want.labels.is_empty() {
                    with.push(format!("labels {}", labels_text(&want.labels)));
                }
                let with = if with.is_empty() {
                    String::new()
                } else {
                    format!(" with {}", with.join(" and "))
                };
                self.fail(
                    failures,
                    want.line,
                    format!(
                        "expected a {} alert `{}`{with}; {}",
                        want.status,
                        want.name,
                        alerts_text(&listed, "the alerts then")
                    ),
                );
            }
        }
        let firing: Vec<Listed> = listed
            .into_iter()
            .filter(|a| a.status == "firing")
            .collect();
        if expect.no_alerts && !firing.is_empty() {
            self.fail(
                failures,
                self.line,
                format!(
                    "expected no alert firing; {}",
                    alerts_text(&firing, "firing")
                ),
            );
        }
    }

    /// `routed:`: the messages each named route wrote for its sinks since the start.
    fn routed(&self, expect: &Expect, failures: &mut Vec<Failure>) {
        let status = self.sim.status();
        let routes = &status["routes"];
        for (route, want, line) in &expect.routed {
            let Some(counts) = routes.get(route.as_str()) else {
                let known: Vec<&str> = routes
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, _)| name.as_str())
                    .collect();
                self.fail(
                    failures,
                    *line,
                    format!(
                        "routed: the config has no route `{route}` (its routes: {})",
                        known.join(", ")
                    ),
                );
                continue;
            };
            let got = counts["routed"].as_u64().unwrap_or(0);
            if got != *want {
                self.fail(
                    failures,
                    *line,
                    format!("expected route `{route}` to have written {want} message(s) for its sinks, got {got}"),
                );
            }
        }
    }

    fn held_back(&self, expect: &Expect, failures: &mut Vec<Failure>) {
        let status = self.sim.status();
        let counts = &status["notify"]["held_back"];
        for (reason, want, line) in &expect.held_back {
            let got = counts[reason.as_str()].as_u64().unwrap_or(0);
            if got != *want {
                let all: Vec<String> = counts
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect();
                self.fail(
                    failures,
                    *line,
                    format!(
                        "expected {want} message(s) held back as `{reason}` (router-wide), got {got} (all: {})",
                        all.join(", ")
                    ),
                );
            }
        }
    }

    fn messages(&self, expect: &Expect, period: &mut Period, failures: &mut Vec<Failure>) {
        let captured = self.sim.captured();
        let got = captured.get(period.from..).unwrap_or_default();
        let when = period.describe(self.at);
        // Each sink's expectations match its messages in the order it got them.
        let mut next: HashMap<&str, usize> = HashMap::new();
        for want in &expect.messages {
            let start = next.get(want.sink.as_str()).copied().unwrap_or(0);
            let found = (start..got.len()).find(|&i| {
                got[i].sink == want.sink && payload_matches(&want.check, &got[i].payload)
            });
            match found {
                Some(i) => {
                    next.insert(want.sink.as_str(), i + 1);
                }
                None => {
                    let message = self.missing_message(want, got, start, &when);
                    self.fail(failures, want.line, message);
                }
            }
        }
        if let Some((count, line)) = expect.count
            && got.len() as u64 != count
        {
            let mut message = format!(
                "expected {count} message(s) {when} (all sinks), got {}",
                got.len()
            );
            if !got.is_empty() {
                message.push(':');
                for c in got.iter().take(MAX_LISTED) {
                    let _ = write!(
                        message,
                        "\n    {} at {}: {}",
                        c.sink,
                        self.offset_of(c),
                        short(&c.payload)
                    );
                }
                if got.len() > MAX_LISTED {
                    let _ = write!(message, "\n    ... and {} more", got.len() - MAX_LISTED);
                }
            }
            self.fail(failures, line, message);
        }
        period.from = captured.len();
        period.since = Some(self.at);
    }

    /// Why no message matched `want`, with what came closest.
    fn missing_message(
        &self,
        want: &ExpectedMessage,
        got: &[Captured],
        start: usize,
        when: &str,
    ) -> String {
        let sink = want.sink.as_str();
        let to_sink: Vec<&Captured> = got.iter().filter(|c| c.sink == sink).collect();
        if to_sink.is_empty() {
            let disabled = match self.config.sinks.get(sink) {
                Some(s) if !s.enabled => " (it is disabled in the config: enabled: false)",
                _ => "",
            };
            return format!(
                "expected a message to `{sink}` {when}{disabled}, got none; {}",
                sinks_text(got)
            );
        }
        if got[..start.min(got.len())]
            .iter()
            .any(|c| c.sink == sink && payload_matches(&want.check, &c.payload))
        {
            return format!(
                "the message to `{sink}` that matches came before the one matched by an earlier expectation: list a sink's messages in the order it got them"
            );
        }
        let n = to_sink.len();
        match &want.check {
            PayloadCheck::Any => format!("expected another message to `{sink}` {when}; it got {n}"),
            PayloadCheck::Contains(text) => {
                let mut message = format!(
                    "expected a message to `{sink}` {when} with {text:?} in its text; it got {n}, none with it:"
                );
                for c in to_sink.iter().take(MAX_LISTED) {
                    let _ = write!(
                        message,
                        "\n    at {}: {}",
                        self.offset_of(c),
                        short(&c.payload)
                    );
                }
                message
            }
            PayloadCheck::Subset(expected) | PayloadCheck::Exact(expected) => {
                let subset = matches!(want.check, PayloadCheck::Subset(_));
                let closest = to_sink
                    .iter()
                    .map(|c| (c, diff::json_diff(expected, &c.payload, subset)))
                    .min_by_key(|(_, (_, changed))| *changed);
                let how = if subset {
                    "this payload (a subset)"
                } else {
                    "exactly this payload"
                };
                let mut message = format!(
                    "expected a message to `{sink}` {when} with {how}; it got {n}, none like it"
                );
                if let Some((c, (text, _))) = closest {
                    let _ = write!(
                        message,
                        "; the closest, at {} (- expected, + got):\n{}",
                        self.offset_of(c),
                        indent(&text)
                    );
                }
                message
            }
        }
    }

    fn offset_of(&self, c: &Captured) -> String {
        offset_text(Duration::try_from(c.at_time - self.file.start).unwrap_or_default())
    }
}

fn payload_matches(check: &PayloadCheck, payload: &Value) -> bool {
    match check {
        PayloadCheck::Any => true,
        PayloadCheck::Contains(text) => diff::contains_text(payload, text),
        PayloadCheck::Subset(want) => diff::matches(want, payload, true),
        PayloadCheck::Exact(want) => diff::matches(want, payload, false),
    }
}

/// An alert's name: its `alertname` (alert rules', Alertmanager's), else its type.
fn alert_name(a: &Listed) -> &str {
    a.event
        .get("alertname")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(&a.kind)
}

fn alert_matches(want: &ExpectedAlert, a: &Listed) -> bool {
    alert_name(a) == want.name
        && a.status == want.status
        && want.severity.as_deref().is_none_or(|s| s == a.severity)
        && want.labels.iter().all(|(k, v)| match a.labels.get(k) {
            Some(label) => label == v,
            // An alert rule's severity is the alert's, not a label of it.
            None => k == "severity" && a.severity == v,
        })
}

/// The alerts, one a line, after `title`; or that there are none.
fn alerts_text(alerts: &[Listed], title: &str) -> String {
    if alerts.is_empty() {
        return "there are no alerts".to_owned();
    }
    let mut text = format!("{title}:");
    for a in alerts {
        let _ = write!(
            text,
            "\n    {} {} {} {}",
            alert_name(a),
            a.status,
            a.severity,
            labels_text(&a.labels)
        );
    }
    text
}

fn labels_text(labels: &std::collections::BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// What each sink got in the period, as `console ×2, hook ×1`, or that none got anything.
fn sinks_text(got: &[Captured]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for c in got {
        match counts.iter_mut().find(|(s, _)| *s == c.sink) {
            Some((_, n)) => *n += 1,
            None => counts.push((&c.sink, 1)),
        }
    }
    if counts.is_empty() {
        return "no sink got anything".to_owned();
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
    format!("the sinks got: {}", parts.join(", "))
}

/// A payload on one line when short, else pretty and indented under the line.
fn short(payload: &Value) -> String {
    let line = payload.to_string();
    if line.chars().count() <= ONE_LINE {
        line
    } else {
        format!("\n{}", indent(&diff::pretty(payload)).trim_end())
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn listed(
        kind: &str,
        status: &'static str,
        severity: &'static str,
        labels: &[(&str, &str)],
        event: Value,
    ) -> Listed {
        Listed {
            fingerprint: "f".into(),
            status,
            kind: kind.into(),
            severity,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            starts_at: String::new(),
            ends_at: None,
            expires_at: None,
            updated_at: String::new(),
            count: 1,
            route: String::new(),
            held_back: None,
            event,
        }
    }

    fn want(
        name: &str,
        status: &str,
        severity: Option<&str>,
        labels: &[(&str, &str)],
    ) -> ExpectedAlert {
        ExpectedAlert {
            line: 1,
            name: name.into(),
            status: status.into(),
            severity: severity.map(str::to_owned),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn alerts_match_by_alertname_else_type_status_severity_and_a_subset_of_labels() {
        let rule = listed(
            "alert",
            "firing",
            "critical",
            &[("alertname", "drawdown"), ("bot", "a")],
            json!({"alertname": "drawdown"}),
        );
        assert!(alert_matches(&want("drawdown", "firing", None, &[]), &rule));
        assert!(alert_matches(
            &want("drawdown", "firing", Some("critical"), &[("bot", "a")]),
            &rule
        ));
        assert!(
            alert_matches(
                &want("drawdown", "firing", None, &[("severity", "critical")]),
                &rule
            ),
            "the alert's severity stands for a severity label it does not have"
        );
        assert!(!alert_matches(
            &want("drawdown", "firing", None, &[("severity", "info")]),
            &rule
        ));
        assert!(!alert_matches(
            &want("drawdown", "resolved", None, &[]),
            &rule
        ));
        assert!(!alert_matches(
            &want("drawdown", "firing", None, &[("bot", "b")]),
            &rule
        ));
        assert!(
            !alert_matches(&want("alert", "firing", None, &[]), &rule),
            "the alertname first"
        );
        let plain = listed(
            "exchange_down",
            "resolved",
            "error",
            &[("exchange", "binance")],
            json!({}),
        );
        assert!(alert_matches(
            &want(
                "exchange_down",
                "resolved",
                Some("error"),
                &[("exchange", "binance")]
            ),
            &plain
        ));
        let unnamed = listed(
            "exchange_down",
            "firing",
            "error",
            &[],
            json!({"alertname": ""}),
        );
        assert!(alert_matches(
            &want("exchange_down", "firing", None, &[]),
            &unnamed
        ));
    }

    #[test]
    fn texts_for_failures() {
        assert_eq!(alerts_text(&[], "firing"), "there are no alerts");
        let a = listed(
            "alert",
            "firing",
            "critical",
            &[("alertname", "dd")],
            json!({"alertname": "dd"}),
        );
        assert_eq!(
            alerts_text(&[a], "firing"),
            "firing:\n    dd firing critical {alertname: dd}"
        );
        assert_eq!(short(&json!({"text": "hi"})), r#"{"text":"hi"}"#);
        let long = json!({"text": "x".repeat(120)});
        assert!(
            short(&long).starts_with("\n      {\n        \"text\""),
            "{}",
            short(&long)
        );
        let period = Period {
            from: 0,
            since: None,
        };
        assert_eq!(period.describe(Duration::from_secs(300)), "by 5m");
        let period = Period {
            from: 3,
            since: Some(Duration::from_secs(300)),
        };
        assert_eq!(
            period.describe(Duration::from_secs(600)),
            "after 5m and by 10m"
        );
        assert!(payload_matches(&PayloadCheck::Any, &json!(null)));
        assert!(payload_matches(
            &PayloadCheck::Contains("ll".into()),
            &json!({"a": ["hello"]})
        ));
        assert!(payload_matches(
            &PayloadCheck::Subset(json!({"a": 1})),
            &json!({"a": 1, "b": 2})
        ));
        assert!(!payload_matches(
            &PayloadCheck::Exact(json!({"a": 1})),
            &json!({"a": 1, "b": 2})
        ));
    }
}
