//! End to end: `alert-router test` plays rule test files through a config on a clock of
//! its own: a threshold alert rule fires after its `for:` and resolves, a grouped route
//! speaks after its `group_wait` with what it gathered, a silence holds back what it
//! matches; a wrong expectation fails at its line with a diff of the payloads, and a
//! file with a key that does not exist is refused at its place.

use alert_router_tests::harness::{dir_with, run_cli};

const CONFIG: &str = r#"
plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  console:
    plugin: console
    settings: {format: json}
  hook:
    plugin: webhook
    settings: {url: "http://127.0.0.1:9/hook"}
"#;

const RULES: &str = r#"
alerts:
  - name: drawdown
    match: {type: equity}
    by: [labels.bot]
    threshold: "event.drawdown_pct >= 10"
    for: 5m
    severity: critical
    annotations:
      summary: "drawdown {{ event.drawdown_pct }}% on {{ series.bot }}"
routes:
  - name: alerts
    match: {type: alert}
    to: [console]
  - name: errors
    match: {type: error}
    group_by: [component]
    group_wait: 30s
    to: [hook]
  - name: pings
    match: {type: ping}
    to: [console]
"#;

const ALERT: &str = "text: \"{{ event.alertname }} {{ event.status }}: {{ event.summary }}\"\n";
const DEFAULT: &str = "text: \"{{ event.type }}\"\n";
const GROUP: &str = "component: \"{{ group.component | default('') }}\"\ncount: \"{{ counts.total }}\"\nerrors: \"{{ alerts | map(attribute='event') | map(attribute='message') | list }}\"\n";

/// Passes: every expectation holds, to the second.
const PASSING: &str = r#"# on the command line's config (router.yaml in the working directory)
start: 2026-12-04T10:00:00Z
tests:
  - name: drawdown fires after five minutes and resolves
    events:
      - at: 0s
        event: {type: equity, drawdown_pct: 12, labels: {bot: a}}
      - at: 6m
        event: {type: equity, drawdown_pct: 3, labels: {bot: a}}
    expect:
      - at: 4m59s
        no_alerts: true
        count: 0
      - at: 5m
        alerts:
          - {name: drawdown, labels: {bot: a, severity: critical}}
        messages:
          - sink: console
            exact: {text: "drawdown firing: drawdown 12% on a"}
        count: 1
      - at: 6m
        alerts: [{name: drawdown, status: resolved}]
        messages:
          - {sink: console, contains: "drawdown resolved"}
        count: 1

  - name: an id sent again is a repeat within the dedup window, and new after it
    events:
      - at: 0s
        event: {type: ping, id: p-1}
      - at: 5m
        event: {type: ping, id: p-1}
      - at: 1h
        event: {type: ping, id: p-1}
    expect:
      - at: 5m
        count: 1                  # the first; the repeat is not routed
      - at: 1h
        count: 1                  # since 5m: the dedup window (10m) has passed
"#;

/// Passes too, with its own `config:` (relative to the file).
const GROUPED: &str = r#"config: ../router.yaml
tests:
  - name: errors are grouped per component and a silence holds one back
    events:
      - at: 0s
        events:
          - {type: error, component: exchange, message: timeout}
          - {type: error, component: exchange, message: refused}
      - at: 10s
        event: {type: error, component: db, message: locked}
      - at: 20s
        event: {type: error, component: exchange, message: reset}
    silences:
      - at: 0s
        silence: {matchers: ["component=db"], duration: 1h, created_by: test}
    expect:
      - at: 29s
        count: 0
      - at: 30s
        messages:
          - sink: hook
            payload: {component: exchange, errors: [timeout, refused, reset]}
        count: 1
        held_back: {silenced: 1, grouped: 3}
"#;

/// The group holds three errors, not two: line 16 fails.
const WRONG: &str = r#"tests:
  - name: passes
    events:
      - at: 0s
        event: {type: error, component: exchange, message: timeout}
    expect:
      - at: 30s
        count: 1
  - name: counts wrong
    events:
      - at: 0s
        events: [{type: error, component: exchange, message: timeout}, {type: error, component: exchange, message: refused}, {type: error, component: exchange, message: reset}]
    expect:
      - at: 30s
        messages:
          - sink: hook
            payload: {component: exchange, count: 2}
"#;

const BAD_KEY: &str = r#"tests:
  - name: a typo
    events:
      - at: 0s
        event: {type: error}
    expect:
      - at: 1m
        mesages: [{sink: hook}]
"#;

fn project(tests: &[(&str, &str)]) -> alert_router_tests::harness::TempDir {
    let mut files = vec![
        ("router.yaml", CONFIG),
        ("rules/r.yaml", RULES),
        ("templates/console/alert.yaml", ALERT),
        ("templates/console/default.yaml", DEFAULT),
        ("templates/hook/default.yaml", DEFAULT),
        ("templates/hook/group.yaml", GROUP),
    ];
    files.extend_from_slice(tests);
    dir_with(&files)
}

#[test]
fn passing_tests_are_listed_ok_and_exit_0() {
    let dir = project(&[
        ("rule_tests/drawdown.yaml", PASSING),
        ("rule_tests/grouped.yaml", GROUPED),
        ("rule_tests/notes.txt", "not a test file"),
    ]);
    // A directory: every *.yaml in it, in name order.
    let (code, stdout, stderr) = run_cli(dir.path(), &["test", "rule_tests"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "rule_tests/drawdown.yaml\n  ok      drawdown fires after five minutes and resolves\n  ok      an id sent again is a repeat within the dedup window, and new after it\n\
         rule_tests/grouped.yaml\n  ok      errors are grouped per component and a silence holds one back\n\
         3 test(s) in 2 file(s): 3 ok, 0 failed\n",
        "{stderr}"
    );
}

#[test]
fn a_wrong_expectation_fails_at_its_line_with_a_diff_and_exit_1() {
    let dir = project(&[("wrong.yaml", WRONG)]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["test", "wrong.yaml"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let expected = "wrong.yaml
  ok      passes
  FAILED  counts wrong
wrong.yaml:16: test `counts wrong`: at 30s: expected a message to `hook` by 30s with this payload (a subset); it got 1, none like it; the closest, at 30s (- expected, + got):
        {
          \"component\": \"exchange\",
      -   \"count\": 2
      +   \"count\": 3
        }
2 test(s) in 1 file(s): 1 ok, 1 failed
";
    assert_eq!(stdout, expected, "{stderr}");
}

#[test]
fn a_key_that_does_not_exist_is_refused_at_its_place_with_exit_2() {
    let dir = project(&[("bad.yaml", BAD_KEY), ("good.yaml", PASSING)]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["test", "bad.yaml", "good.yaml"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("bad.yaml:8:9: unknown field `mesages`, expected one of at, alerts, no_alerts, messages, count, held_back, routed\n"),
        "{stdout}"
    );
    // The other files still run.
    assert!(
        stdout.contains("good.yaml\n  ok      drawdown fires"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("2 test(s) in 2 file(s): 2 ok, 0 failed; 1 invalid (see above)\n"),
        "{stdout}"
    );

    // A config with a problem: said as `check` says it, and nothing runs.
    let dir = project(&[("t.yaml", PASSING)]);
    let rules = dir.path().join("rules/r.yaml");
    let broken = RULES.replace("to: [hook]", "to: [hoook]");
    std::fs::write(&rules, broken).expect("write the rules");
    let (code, stdout, stderr) = run_cli(dir.path(), &["test", "t.yaml"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("rules/r.yaml:19:10: route `errors`: unknown sink `hoook`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("t.yaml: not run: its config router.yaml has problems (listed above)"),
        "{stdout}"
    );
}

/// The shipped rules' own tests (rules/tests), as a user runs them, with the shipped
/// router.yaml (its plugins those the tests build).
#[test]
fn the_shipped_rules_pass_their_own_tests() {
    let repo = alert_router_tests::harness::repo_root();
    let config = alert_router_tests::shipped::router_yaml()
        .replace("\nrules: {shipped-rules}\n", "\nrules: \"{repo}/rules\"\n");
    let tests = std::fs::read_to_string(repo.join("rules/tests/trading.yaml"))
        .expect("the shipped rule tests");
    let dir = alert_router_tests::harness::dir_with(&[
        ("router.yaml", &config),
        ("rules/tests/trading.yaml", &tests),
    ]);
    let (code, stdout, stderr) = alert_router_tests::harness::run_cli(
        dir.path(),
        &["--config", "router.yaml", "test", "rules/tests"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("6 test(s) in 1 file(s): 6 ok, 0 failed"),
        "{stdout}"
    );
}
