//! End to end: `alert-router import-alertmanager` on a production-like Alertmanager
//! configuration (tests/data/alertmanager.yml: nested routes, `continue`, `match`,
//! `match_re` and `matchers`, two inhibit rules, time intervals, every receiver kind the
//! router has a plugin for and one it has not). What it writes passes `check`, and for
//! each of a set of label sets the router's routes reach the same receivers as
//! Alertmanager's own `amtool config routes test` says Alertmanager would. A webhook
//! receiver then gets, from the running imported router, the body Alertmanager sends.
//!
//! Without `amtool` on PATH the test fails, saying what to install: it never skips.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use alert_router_tests::fake_webhook::FakeWebhook;
use alert_router_tests::harness::{Router, TempDir, eventually, plugin_dir, repo_root, run_cli};
use serde_json::{Value, json};

const INSTALL: &str = "install it with `apt-get install -y prometheus-alertmanager` (Debian's package ships amtool; .ci/run installs it)";

/// Label sets, and what each exercises in tests/data/alertmanager.yml.
const CASES: &[(&str, &[(&str, &str)])] = &[
    (
        "the dead man's switch: to nowhere",
        &[("alertname", "Watchdog"), ("team", "database")],
    ),
    (
        "a child with continue, its sibling not matching",
        &[
            ("alertname", "DiskFull"),
            ("team", "database"),
            ("severity", "critical"),
            ("instance", "db1"),
        ],
    ),
    (
        "the other child",
        &[("team", "database"), ("severity", "warning")],
    ),
    (
        "no child: the parent itself",
        &[("team", "database"), ("severity", "info")],
    ),
    (
        "a regex alternative",
        &[("team", "database"), ("severity", "page")],
    ),
    (
        "a grandchild, then the next sibling by continue",
        &[
            ("service", "web"),
            ("severity", "critical"),
            ("env", "prod"),
        ],
    ),
    (
        "a negative matcher keeps the grandchild out",
        &[
            ("service", "web"),
            ("severity", "critical"),
            ("env", "staging"),
        ],
    ),
    (
        "a missing label is empty for !=",
        &[("service", "api-gateway"), ("severity", "critical")],
    ),
    (
        "match_re and matchers, anchored",
        &[("service", "cdn"), ("severity", "warning")],
    ),
    (
        "an anchored regex does not match a longer value",
        &[("service", "webserver")],
    ),
    (
        "the first match without continue stops its level",
        &[("team", "database"), ("service", "web")],
    ),
    (
        "a job regex",
        &[("job", "batch-nightly"), ("alertname", "JobFailed")],
    ),
    (
        "nothing but the root",
        &[("alertname", "Unknown"), ("cluster", "eu1")],
    ),
];

/// What `amtool config routes test` says Alertmanager sends `labels` to.
fn amtool_receivers(labels: &[(&str, &str)]) -> BTreeSet<String> {
    let config = repo_root().join("tests/data/alertmanager.yml");
    let out = Command::new("amtool")
        .arg("config")
        .arg("routes")
        .arg("test")
        .arg(format!("--config.file={}", config.display()))
        .args(labels.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .unwrap_or_else(|e| panic!("cannot run amtool ({e}): {INSTALL}"));
    assert!(
        out.status.success(),
        "amtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// The importer names each route after its receiver (`-2`, `-3` for a receiver's
/// later routes).
fn receiver_of(route: &str, receivers: &BTreeSet<String>) -> String {
    if receivers.contains(route) {
        return route.to_owned();
    }
    match route.rsplit_once('-') {
        Some((base, n)) if n.parse::<u32>().is_ok() => base.to_owned(),
        _ => route.to_owned(),
    }
}

#[test]
fn imported_routes_reach_the_receivers_amtool_names() {
    assert!(
        Command::new("amtool").arg("--version").output().is_ok(),
        "amtool is not on PATH: {INSTALL}"
    );
    let dir = TempDir::new("import-am");
    let source = repo_root().join("tests/data/alertmanager.yml");
    let plugins = plugin_dir().display().to_string();
    let (code, out, err) = run_cli(
        dir.path(),
        &[
            "import-alertmanager",
            &source.display().to_string(),
            "--output",
            "out",
            "--plugins",
            &plugins,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    // What has no counterpart is listed with its place.
    for expected in [
        "alertmanager.yml:13:3: templates: Go templates are not converted",
        "alertmanager.yml:95:7: receiver `dba-pager`: pagerduty_configs: not converted",
        "alertmanager.yml:98:18: receiver `dba-slack`: slack_configs: channel:",
        "alertmanager.yml:103:16: receiver `frontend-slack`: slack_configs: title:",
    ] {
        assert!(out.contains(expected), "{expected} in:\n{out}");
    }
    assert!(out.contains("not converted (4):"), "{out}");
    let config = dir.path().join("out/router.yaml");
    let config = config.display().to_string();
    let (code, out, err) = run_cli(dir.path(), &["--config", &config, "check", "--strict"]);
    assert_eq!(code, 0, "check: {out}{err}");
    // Secrets went to .env, never into router.yaml.
    let written = std::fs::read_to_string(dir.path().join("out/router.yaml")).expect("router.yaml");
    assert!(
        !written.contains("dba-secret") && !written.contains("oncall-token"),
        "{written}"
    );
    let env = std::fs::read_to_string(dir.path().join("out/.env")).expect(".env");
    assert!(
        env.contains("FRONTEND_ONCALL_WEBHOOK_AUTHORIZATION='Bearer oncall-token'"),
        "{env}"
    );

    // Every case through the router's `route`, in one run.
    let events: String = CASES
        .iter()
        .enumerate()
        .map(|(i, (_, labels))| {
            let labels: serde_json::Map<String, Value> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            format!("{}\n", json!({"type": "alert", "status": "firing", "id": format!("case-{i}"), "labels": labels}))
        })
        .collect();
    dir.write("cases.ndjson", &events);
    let (code, out, err) = run_cli(
        dir.path(),
        &["--config", &config, "route", "--event", "cases.ndjson"],
    );
    assert_eq!(code, 0, "route: {out}{err}");
    let mut routed: Vec<BTreeSet<String>> = vec![BTreeSet::new(); CASES.len()];
    let mut case = None;
    for line in out.lines() {
        if let Some(id) = line.strip_prefix("alert (case-") {
            case = id.trim_end_matches("):").parse::<usize>().ok();
        } else if let (Some(i), Some(rest)) = (case, line.strip_prefix("  route `")) {
            let route = rest.split('`').next().unwrap_or_default();
            routed[i].insert(route.to_owned());
        }
    }
    for (i, (what, labels)) in CASES.iter().enumerate() {
        let expected = amtool_receivers(labels);
        let got: BTreeSet<String> = routed[i]
            .iter()
            .map(|route| receiver_of(route, &expected))
            .collect();
        assert_eq!(got, expected, "case {i} ({what}): {labels:?}\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_gets_alertmanagers_body_from_the_imported_router() {
    let hook = FakeWebhook::start(None).await;
    let dir = TempDir::new("import-am-run");
    let source = dir.write(
        "alertmanager.yml",
        &format!(
            r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: team
    webhook_configs:
      - url: {url}
        http_config: {{authorization: {{credentials: s3cret}}}}
"#,
            url = hook.url()
        ),
    );
    let plugins = plugin_dir().display().to_string();
    // Into a directory of its own, which the router then runs on.
    let router_dir = TempDir::new("import-am-router");
    let (code, out, err) = run_cli(
        dir.path(),
        &[
            "import-alertmanager",
            &source.display().to_string(),
            "--output",
            &router_dir.path().display().to_string(),
            "--plugins",
            &plugins,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("everything was converted"), "{out}");
    let router = Router::start_in(router_dir).await;

    let alert = json!([{
        "labels": {"alertname": "DiskFull", "instance": "db1"},
        "annotations": {"summary": "disk full"},
        "startsAt": "2026-12-04T10:00:00Z",
        "generatorURL": "http://prometheus/graph?g0.expr=x",
    }]);
    let status = reqwest::Client::new()
        .post(format!("{}/api/v2/alerts", router.url))
        .json(&alert)
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status, 200);
    let body = eventually(
        Duration::from_secs(20),
        "the webhook's notification",
        || {
            hook.accepted()
                .first()
                .map(|a| (a.body.clone(), a.authorization.clone()))
        },
    )
    .await;
    let (body, authorization) = body;
    assert_eq!(authorization.as_deref(), Some("Bearer s3cret"));
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "team");
    assert_eq!(body["groupLabels"], json!({"alertname": "DiskFull"}));
    assert_eq!(
        body["commonLabels"],
        json!({"alertname": "DiskFull", "instance": "db1"})
    );
    assert_eq!(body["commonAnnotations"], json!({"summary": "disk full"}));
    assert_eq!(body["truncatedAlerts"], 0);
    let first = &body["alerts"][0];
    assert_eq!(first["status"], "firing");
    assert_eq!(
        first["labels"],
        json!({"alertname": "DiskFull", "instance": "db1"})
    );
    assert_eq!(first["startsAt"], "2026-12-04T10:00:00Z");
    assert_eq!(first["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(first["generatorURL"], "http://prometheus/graph?g0.expr=x");
    // Alertmanager's fingerprint of these labels: the router's identity for the alert.
    let listed: Value = router.get_json("/api/v2/alerts").await;
    assert_eq!(first["fingerprint"], listed[0]["fingerprint"], "{listed}");

    // Its end, as Prometheus says it: the group says it resolved, with its end.
    let mut resolved = alert.clone();
    resolved[0]["endsAt"] = json!("2026-12-04T10:05:00Z");
    let status = reqwest::Client::new()
        .post(format!("{}/api/v2/alerts", router.url))
        .json(&resolved)
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status, 200);
    let body = eventually(Duration::from_secs(20), "the resolved notification", || {
        hook.accepted().get(1).map(|a| a.body.clone())
    })
    .await;
    assert_eq!(body["status"], "resolved", "{body}");
    assert_eq!(body["alerts"][0]["status"], "resolved");
    assert_eq!(body["alerts"][0]["endsAt"], "2026-12-04T10:05:00Z");
    assert_eq!(body["alerts"][0]["fingerprint"], first["fingerprint"]);
}
