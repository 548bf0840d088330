//! `export` and `replay` end to end: a router on a file clock takes a day of events,
//! `export` reads them out of its outbox while it runs (each once, oldest first, their
//! times kept), and `replay` plays them through a candidate config with one more alert
//! rule and a grouped route for its alerts: the report shows those alerts, and nothing
//! else changed. Then the same with the demo's recorded day and the shipped config.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use alert_router_tests::harness::{
    Router, dir_with, eventually_async, read_json_lines, router_binary,
};
use alert_router_tests::shipped::router_yaml;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const WAIT: Duration = Duration::from_secs(20);

const CONFIG: &str = r#"
storage: {path: data}
plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  console:
    plugin: console
    settings: {path: "{dir}/out.jsonl", format: json}
"#;

/// The running config with the candidate's rules.
const CANDIDATE: &str = r#"
storage: {path: data}
plugins: {dirs: ["{plugins}"]}
rules: candidate-rules
templates: templates
sinks:
  console:
    plugin: console
    settings: {path: "{dir}/out.jsonl", format: json}
"#;

/// What both configs have: every event to the console, and an alert on a losing trade.
const RULES: &str = r#"
alerts:
  - name: big-loss
    match: {type: closed}
    threshold: "event.pnl < 0"
routes:
  - name: everything
    to: [console]
"#;

/// What the candidate adds, in a file read before the other: an alert rule over error
/// bursts, and a grouped route that takes its alerts first.
const BURST: &str = r#"
alerts:
  - name: error-burst
    match: {type: error}
    count: {at_least: 3, within: 10m}
routes:
  - name: bursts
    match: {type: alert, labels: {alertname: error-burst}}
    group_by: [alertname]
    group_wait: 30s
    group_interval: 1m
    to: [console]
"#;

const ONE: &str = "text: \"{{ event.type }} {{ event.id }}\"\n";
const GROUP: &str =
    "text: \"group: {% for a in alerts %}{{ a.event.alertname }} {{ a.status }} {% endfor %}\"\n";

/// The router's clock: a file holding one instant.
struct Clock {
    path: PathBuf,
    now: OffsetDateTime,
}

impl Clock {
    /// Moves the clock to `hh:mm` of the test's day and waits until the router's timer
    /// has looked at it.
    async fn set(&mut self, router: &Router, hh_mm: &str) {
        self.now = at(hh_mm);
        let next = self.path.with_extension("next");
        std::fs::write(&next, self.now.format(&Rfc3339).expect("a time")).expect("write");
        std::fs::rename(&next, &self.path).expect("move the clock");
        let want = self.now;
        eventually_async(WAIT, "the timer to see the new time", || async {
            let status = router.get_json("/v1/status").await;
            let tick = status["notify"]["open"]["last_tick"].as_str()?.to_owned();
            (OffsetDateTime::parse(&tick, &Rfc3339).ok()? >= want).then_some(())
        })
        .await;
    }
}

/// `hh:mm` on the test's day, as the router writes it.
fn at(hh_mm: &str) -> OffsetDateTime {
    OffsetDateTime::parse(&format!("2026-12-04T{hh_mm}:00Z"), &Rfc3339).expect("a time")
}

fn stamp(hh_mm: &str) -> String {
    at(hh_mm).format(&Rfc3339).expect("a time")
}

async fn post(router: &Router, event: Value) {
    let (status, answer) = router.post_events(event.to_string()).await;
    assert_eq!(status, 202, "{answer}");
}

/// Runs the router's command line in `dir` with `env`: (exit code, stdout, stderr).
fn cli(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(router_binary())
        .args(args)
        .current_dir(dir)
        .env("ALERT_ROUTER_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run the router binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn ids(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or(""))
        .collect()
}

/// The rows of a replay's JSON report whose count differs between the two configs, as
/// `what name count`.
fn changed(report: &Value) -> BTreeSet<String> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["baseline"] != r["candidate"])
        .map(|r| {
            format!(
                "{} {} {}",
                r["what"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or(""),
                r["count"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// A row's (baseline, candidate) counts.
fn row(report: &Value, what: &str, name: &str, count: &str) -> (Value, Value) {
    let found = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["what"] == what && r["name"] == name && r["count"] == count)
        .unwrap_or_else(|| panic!("no row {what} {name} {count} in {report:#}"));
    (found["baseline"].clone(), found["candidate"].clone())
}

#[tokio::test]
async fn a_day_exported_while_the_router_runs_replays_through_a_candidate_with_one_more_rule() {
    let dir = dir_with(&[
        ("router.yaml", CONFIG),
        ("candidate.yaml", CANDIDATE),
        ("rules/routes.yaml", RULES),
        ("candidate-rules/routes.yaml", RULES),
        ("candidate-rules/0-burst.yaml", BURST),
        ("templates/console/default.yaml", ONE),
        ("templates/console/group.yaml", GROUP),
        ("clock", "2026-12-04T08:00:00Z"),
    ]);
    let path = dir.path().join("clock");
    let router = Router::start_in_with_env(
        dir,
        &[(
            "ALERT_ROUTER_TEST_CLOCK",
            path.to_str().expect("a UTF-8 path"),
        )],
    )
    .await;
    let mut clock = Clock {
        path,
        now: at("08:00"),
    };

    // The day: events stamped by the router's clock, and one with a time of its own
    // (posted late, so stored out of time order).
    post(
        &router,
        json!({"id": "open-1", "type": "opened", "symbol": "BTC"}),
    )
    .await;
    for (hh_mm, id) in [("09:00", "err-1"), ("09:03", "err-2"), ("09:06", "err-3")] {
        clock.set(&router, hh_mm).await;
        post(
            &router,
            json!({"id": id, "type": "error", "message": "exchange timeout", "component": "exchange"}),
        )
        .await;
    }
    clock.set(&router, "12:00").await;
    post(&router, json!({"id": "hb-1", "type": "heartbeat"})).await;
    clock.set(&router, "14:00").await;
    post(
        &router,
        json!({"id": "closed-1", "type": "closed", "pnl": -50}),
    )
    .await;
    clock.set(&router, "18:00").await;
    post(
        &router,
        json!({"id": "closed-2", "type": "closed", "pnl": 80}),
    )
    .await;
    clock.set(&router, "19:00").await;
    post(
        &router,
        json!({"id": "late-1", "type": "note", "time": stamp("17:30")}),
    )
    .await;
    // 8 events and big-loss firing and resolving.
    let live = eventually_async(WAIT, "10 messages at the console", || async {
        let lines = read_json_lines(&router.dir.path().join("out.jsonl"));
        (lines.len() >= 10).then_some(lines)
    })
    .await;
    assert_eq!(live.len(), 10);

    // Exported while the router runs: each event once, oldest first, its time kept; the
    // alerts the router made itself left out.
    let d = router.dir.path();
    let (code, stdout, stderr) = cli(
        d,
        &[
            "--config",
            "router.yaml",
            "export",
            "--output",
            "day.ndjson",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "the events go to the file: {stdout}");
    assert!(stderr.contains("exported 8 event(s)"), "{stderr}");
    assert!(stderr.contains("left out 2 alert(s)"), "{stderr}");
    let day = ndjson(&std::fs::read_to_string(d.join("day.ndjson")).expect("the export"));
    assert_eq!(
        ids(&day),
        [
            "open-1", "err-1", "err-2", "err-3", "hb-1", "closed-1", "late-1", "closed-2"
        ]
    );
    let times: Vec<&str> = day
        .iter()
        .map(|e| e["time"].as_str().unwrap_or(""))
        .collect();
    let want: Vec<String> = [
        "08:00", "09:00", "09:03", "09:06", "12:00", "14:00", "17:30", "18:00",
    ]
    .iter()
    .map(|t| stamp(t))
    .collect();
    assert_eq!(times, want);
    assert_eq!(day[1]["component"], "exchange", "{}", day[1]);

    // With the router's own alerts; and a range, to stdout.
    let (code, stdout, stderr) = cli(d, &["export", "--with-derived"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let all = ndjson(&stdout);
    assert_eq!(all.len(), 10, "{stdout}");
    let derived: Vec<&Value> = all
        .iter()
        .filter(|e| e["source"] == "alert-rules")
        .collect();
    assert_eq!(derived.len(), 2, "{stdout}");
    assert_eq!(derived[0]["status"], "firing");
    assert_eq!(derived[1]["status"], "resolved");
    let (code, stdout, stderr) = cli(
        d,
        &[
            "export",
            "--since",
            &stamp("09:00"),
            "--until",
            &stamp("12:00"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ids(&ndjson(&stdout)), ["err-1", "err-2", "err-3"]);
    // The router goes on as before, the writer of its outbox.
    post(&router, json!({"id": "after", "type": "note"})).await;
    eventually_async(WAIT, "the event after the export", || async {
        (read_json_lines(&d.join("out.jsonl")).len() == 11).then_some(())
    })
    .await;
    // Its counts per route and per alert rule, which a replay compares.
    let status = router.get_json("/v1/status").await;
    assert_eq!(status["routes"]["everything"]["routed"], 11, "{status:#}");
    assert_eq!(
        status["events"]["alert_rules"]["big-loss"],
        json!({"firing": 1, "resolved": 1}),
        "{status:#}"
    );

    // Replayed through the candidate: error-burst fires at 09:06 and resolves at 09:10,
    // each said by a group notification (after group_wait, then at the group's
    // interval); nothing else changes.
    let (code, stdout, stderr) = cli(
        d,
        &[
            "--config",
            "router.yaml",
            "replay",
            "--events",
            "day.ndjson",
            "--candidate",
            "candidate.yaml",
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["events"], 8);
    assert_eq!(
        changed(&report),
        [
            "alert rule error-burst fired",
            "alert rule error-burst resolved",
            "route bursts grouped",
            "route bursts routed",
            "sink console grouped",
            "sink console sent",
        ]
        .map(str::to_owned)
        .into(),
        "{report:#}"
    );
    // The baseline did what the live router did.
    assert_eq!(
        row(&report, "sink", "console", "sent"),
        (json!(10), json!(12))
    );
    assert_eq!(
        row(&report, "alert rule", "big-loss", "fired"),
        (json!(1), json!(1))
    );
    assert_eq!(
        row(&report, "alert rule", "error-burst", "fired"),
        (Value::Null, json!(1))
    );
    assert_eq!(
        row(&report, "alert rule", "error-burst", "resolved"),
        (Value::Null, json!(1))
    );
    assert_eq!(
        row(&report, "route", "bursts", "grouped"),
        (Value::Null, json!(2))
    );
    assert_eq!(
        row(&report, "route", "everything", "routed"),
        (json!(10), json!(10))
    );
    assert_eq!(report["differing_messages"], 2, "{report:#}");
    let differences: Vec<(String, String, String, String)> = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| ["only_in", "sink", "at", "text"].map(|k| d[k].as_str().unwrap_or("").to_owned()))
        .map(|[a, b, c, d]| (a, b, c, d))
        .collect();
    assert_eq!(
        differences,
        [
            (
                "candidate".into(),
                "console".into(),
                "2026-12-04T09:06:30Z".into(),
                "group: error-burst firing".into()
            ),
            (
                "candidate".into(),
                "console".into(),
                // At the group's next interval after the alert resolved.
                "2026-12-04T09:10:30Z".into(),
                "group: error-burst resolved".into()
            ),
        ]
    );

    // The same as a table for a terminal.
    let (code, text, stderr) = cli(
        d,
        &[
            "replay",
            "--events",
            "day.ndjson",
            "--candidate",
            "candidate.yaml",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    println!("{text}");
    let header = text
        .lines()
        .find(|l| l.contains("BASELINE"))
        .unwrap_or_else(|| panic!("no header in:\n{text}"));
    let column = header.find("CHANGE").expect("a change column");
    let fired = text
        .lines()
        .find(|l| l.starts_with("alert rule error-burst") && l.contains("fired"))
        .unwrap_or_else(|| panic!("no error-burst row in:\n{text}"));
    assert_eq!(fired.get(column..), Some("new"), "{text}");
    let unchanged = text
        .lines()
        .find(|l| l.starts_with("alert rule big-loss") && l.contains("fired"))
        .unwrap_or_else(|| panic!("no big-loss row in:\n{text}"));
    assert!(
        unchanged.trim_end().len() < column,
        "no change shown: {text}"
    );
    assert!(
        text.contains("+ candidate  console  2026-12-04T09:06:30Z  group: error-burst firing"),
        "{text}"
    );
}

#[test]
fn replay_says_what_is_wrong_with_its_events_or_configs() {
    let dir = dir_with(&[
        ("router.yaml", CONFIG),
        ("rules/routes.yaml", RULES),
        ("templates/console/default.yaml", ONE),
        (
            "bad.yaml",
            "plugins: {dirs: [\"{plugins}\"]}\nrules: bad-rules\ntemplates: templates\nsinks:\n  console: {plugin: console}\n",
        ),
        (
            "bad-rules/r.yaml",
            "routes:\n  - name: r\n    to: [telegarm]\n",
        ),
        (
            "no-time.ndjson",
            "{\"type\": \"a\", \"time\": \"2026-12-04T08:00:00Z\"}\n\n{\"type\": \"b\"}\n",
        ),
        (
            "good.ndjson",
            "{\"type\": \"a\", \"time\": \"2026-12-04T08:00:00Z\"}\n",
        ),
    ]);
    let d = dir.path();
    let replay = |events: &str, candidate: &str| {
        cli(
            d,
            &["replay", "--events", events, "--candidate", candidate],
            &[],
        )
    };
    let (code, _, stderr) = replay("no-time.ndjson", "router.yaml");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("no-time.ndjson:3: the b event has no `time`"),
        "{stderr}"
    );
    let (code, _, stderr) = replay("good.ndjson", "bad.yaml");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the candidate config"), "{stderr}");
    assert!(
        stderr.contains("r.yaml:3:") && stderr.contains("telegarm"),
        "{stderr}"
    );
    let (code, _, stderr) = replay("missing.ndjson", "router.yaml");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot read missing.ndjson"), "{stderr}");
    let (code, _, stderr) = cli(d, &["replay", "--events", "good.ndjson"], &[]);
    assert_eq!(code, 2, "no candidate: {stderr}");
    let (code, _, stderr) = cli(d, &["export", "--since", "yesterday"], &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = cli(d, &["export"], &[]);
    assert_eq!(code, 1, "no outbox yet: {stderr}");
    assert!(stderr.contains("no outbox at"), "{stderr}");
}

/// The extra rule for the shipped config: an alert when errors come in twos, its alerts
/// grouped to the console before the shipped routes see them.
const DEMO_EXTRA: &str = r#"
alerts:
  - name: errors-again
    match: {type: error}
    count: {at_least: 2, within: 12h}
routes:
  - name: errors-again
    match: {type: alert, labels: {alertname: errors-again}}
    group_by: [alertname]
    group_wait: 30s
    to: [console]
"#;

#[test]
fn the_demos_day_through_the_shipped_config_and_one_more_rule_changes_only_that_rule() {
    let shipped = |file: &str| {
        std::fs::read_to_string(
            alert_router_tests::harness::repo_root()
                .join("rules")
                .join(file),
        )
        .expect("the shipped rules")
    };
    let baseline = router_yaml();
    let candidate = baseline.replace("\nrules: {shipped-rules}\n", "\nrules: candidate-rules\n");
    assert_ne!(candidate, baseline, "the candidate has rules of its own");
    let dir = dir_with(&[
        ("router.yaml", &baseline),
        ("candidate.yaml", &candidate),
        ("candidate-rules/default.yaml", &shipped("default.yaml")),
        ("candidate-rules/alerts.yaml", &shipped("alerts.yaml")),
        ("candidate-rules/00-errors-again.yaml", DEMO_EXTRA),
    ]);
    let d = dir.path();
    // The shipped config as it comes, on a free port and without the dashboard's.
    let env = [
        ("ALERT_ROUTER_LISTEN", "127.0.0.1:0"),
        ("DASHBOARD_ENABLED", "false"),
    ];
    let (code, stdout, stderr) = cli(
        d,
        &[
            "demo",
            "--once",
            "--speed",
            "100000",
            "--storage",
            "demo-data",
        ],
        &env,
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let demo_out = stdout.clone();
    let sent = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("done: ")?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `done:` line in:\n{stdout}"));

    let (code, _, stderr) = cli(
        d,
        &["export", "--storage", "demo-data", "--output", "day.ndjson"],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let day = ndjson(&std::fs::read_to_string(d.join("day.ndjson")).expect("the export"));
    assert_eq!(day.len() as u64, sent, "every event of the day, once");
    let errors = day.iter().filter(|e| e["type"] == "error").count();
    assert!(errors >= 2, "the demo's day has errors: {errors}");

    let (code, stdout, stderr) = cli(
        d,
        &[
            "replay",
            "--events",
            "day.ndjson",
            "--candidate",
            "candidate.yaml",
            "--json",
        ],
        &env,
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    let (_, fired) = row(&report, "alert rule", "errors-again", "fired");
    assert!(fired.as_u64().unwrap_or(0) >= 1, "{report:#}");
    // Only the new rule, its route, and the console that its notifications go to.
    for change in changed(&report) {
        assert!(
            change.starts_with("alert rule errors-again ")
                || change.starts_with("route errors-again ")
                || change == "sink console sent"
                || change == "sink console grouped",
            "{change} changed: {report:#}"
        );
    }
    // The demo's console got its events and the alerts the shipped alert rules derived.
    let console_sent = demo_out
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("console: sent ")?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `console: sent` line in:\n{demo_out}"));
    let (baseline_sent, _) = row(&report, "sink", "console", "sent");
    assert_eq!(
        baseline_sent,
        json!(console_sent),
        "the baseline sent what the demo did"
    );
    for d in report["differences"].as_array().expect("differences") {
        assert_eq!(d["only_in"], "candidate", "{d}");
        assert_eq!(d["sink"], "console", "{d}");
    }
    assert!(
        report["differing_messages"].as_u64().unwrap_or(0) >= 1,
        "{report:#}"
    );
}
