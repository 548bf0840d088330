//! End to end: Prometheus Alertmanager's own command line, `amtool` (Debian's
//! `prometheus-alertmanager`), pointed at the router: it sets, lists and expires
//! silences, posts and lists alerts through the router's Alertmanager API v2, and the
//! router's routes see the effect.
//!
//! Without `amtool` on PATH the test fails, saying what to install: it never skips.

use std::process::Command;
use std::time::Duration;

use alert_router_tests::harness::{Router, eventually_async, read_json_lines};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

const CONFIG: &str = r#"
plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  console:
    plugin: console
    settings: {path: "{dir}/out.jsonl", format: json}
"#;

const RULES: &str = "routes:\n  - name: alerts\n    match: {type: alert}\n    to: [console]\n";
const TEMPLATE: &str =
    "text: \"{{ event.alertname }} {{ event.status }} {{ event.fingerprint }}\"\n";

/// Alertmanager's fingerprint of `{alertname="x"}`, as Alertmanager 0.25 itself answered.
const X_FINGERPRINT: &str = "d240efc3896bf266";

/// Runs `amtool --alertmanager.url=<router> args...`: exit code, stdout, stderr.
fn amtool(router: &Router, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("amtool")
        .arg(format!("--alertmanager.url={}", router.url))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run amtool ({e}): install it with `apt-get install -y prometheus-alertmanager` (Debian's package ships amtool; .ci/run installs it)"
            )
        });
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `amtool args...`, which must succeed: its stdout.
fn amtool_ok(router: &Router, args: &[&str]) -> String {
    let (code, out, err) = amtool(router, args);
    assert_eq!(code, 0, "amtool {args:?} failed: {out}{err}");
    out
}

fn texts(router: &Router) -> Vec<String> {
    read_json_lines(&router.dir.path().join("out.jsonl"))
        .iter()
        .filter_map(|l| l["payload"]["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_silences_and_alerts_go_through_the_routers_alertmanager_api() {
    assert!(
        Command::new("amtool").arg("--version").output().is_ok(),
        "amtool is not on PATH: install it with `apt-get install -y prometheus-alertmanager` (Debian's package ships amtool; .ci/run installs it)"
    );
    let router = Router::start(
        CONFIG,
        &[
            ("rules/r.yaml", RULES),
            ("templates/console/default.yaml", TEMPLATE),
        ],
    )
    .await;

    // A silence, set and listed by amtool, in force in the router.
    let id = amtool_ok(
        &router,
        &[
            "silence",
            "add",
            "alertname=x",
            "--duration=1h",
            "--comment=c",
            "--author=a",
        ],
    )
    .trim()
    .to_owned();
    assert_eq!(id.len(), 36, "a silence id: {id:?}");
    let listed = amtool_ok(&router, &["silence", "query"]);
    assert!(
        listed.contains(&id) && listed.contains("alertname=\"x\""),
        "{listed}"
    );
    let json: Value =
        serde_json::from_str(&amtool_ok(&router, &["silence", "query", "-o", "json"]))
            .expect("amtool's JSON");
    assert_eq!(json[0]["id"], id.as_str(), "{json}");
    assert_eq!(json[0]["matchers"][0]["name"], "alertname", "{json}");
    assert_eq!(json[0]["createdBy"], "a");
    assert_eq!(json[0]["comment"], "c");
    assert_eq!(json[0]["status"]["state"], "active");
    let theirs = amtool_ok(&router, &["silence", "query", "alertname=x"]);
    assert!(theirs.contains(&id), "filtered by its matcher: {theirs}");
    let others = amtool_ok(&router, &["silence", "query", "alertname=y"]);
    assert!(!others.contains(&id), "filtered out: {others}");
    let mine = router.get_json(&format!("/v1/silences/{id}")).await;
    assert_eq!(mine["matchers"][0], "labels.alertname=\"x\"", "{mine}");
    assert_eq!(mine["created_by"], "a");

    // Alerts posted by amtool: the silenced one is held back, the other delivered.
    amtool_ok(
        &router,
        &["alert", "add", "alertname=x", "--annotation=summary=s"],
    );
    amtool_ok(&router, &["alert", "add", "alertname=y"]);
    router
        .status_until("the silenced alert held back", |s| {
            s["sinks"]["console"]["held_back"]["silenced"].as_u64() == Some(1)
        })
        .await;
    let delivered = eventually_async(WAIT, "alert y delivered", || async {
        let t = texts(&router);
        t.iter().any(|l| l.starts_with("y firing")).then_some(t)
    })
    .await;
    assert!(
        !delivered.iter().any(|l| l.starts_with("x ")),
        "{delivered:?}"
    );

    let active = amtool_ok(&router, &["alert", "query"]);
    let names: Vec<&str> = active
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["y"], "the silenced one is not active: {active}");
    let all: Value = serde_json::from_str(&amtool_ok(
        &router,
        &["alert", "query", "-a", "-s", "-o", "json"],
    ))
    .expect("amtool's JSON");
    let all = all.as_array().expect("a list");
    assert_eq!(all.len(), 2, "{all:?}");
    let x = all
        .iter()
        .find(|a| a["labels"]["alertname"] == "x")
        .expect("alert x listed");
    assert_eq!(
        x["fingerprint"], X_FINGERPRINT,
        "Alertmanager's fingerprint"
    );
    assert_eq!(x["status"]["state"], "suppressed");
    assert_eq!(x["status"]["silencedBy"][0], id.as_str());
    assert_eq!(x["annotations"]["summary"], "s");
    let y = all
        .iter()
        .find(|a| a["labels"]["alertname"] == "y")
        .expect("alert y listed");
    assert_eq!(y["status"]["state"], "active");
    assert_eq!(y["receivers"][0]["name"], "alerts", "the route");
    let filtered = amtool_ok(&router, &["alert", "query", "-s", "alertname=~x|z"]);
    let names: Vec<&str> = filtered
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["x"], "silenced and matching: {filtered}");
    let mine = router.get_json("/v1/alerts").await;
    assert!(
        mine["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .any(|a| a["fingerprint"] == X_FINGERPRINT),
        "the router's identity is Alertmanager's: {mine}"
    );

    // Expired by amtool: gone from the active ones, and x is delivered again.
    amtool_ok(&router, &["silence", "expire", &id]);
    let listed = amtool_ok(&router, &["silence", "query"]);
    assert!(!listed.contains(&id), "{listed}");
    let expired = amtool_ok(&router, &["silence", "query", "--expired"]);
    assert!(expired.contains(&id), "{expired}");
    assert_eq!(
        router.get_json(&format!("/v1/silences/{id}")).await["state"],
        "expired"
    );
    amtool_ok(&router, &["alert", "add", "alertname=x"]);
    eventually_async(
        WAIT,
        "alert x delivered once the silence expired",
        || async {
            texts(&router)
                .iter()
                .any(|l| l == &format!("x firing {X_FINGERPRINT}"))
                .then_some(())
        },
    )
    .await;

    // What amtool reads of the status; Alertmanager's health endpoints.
    let config = amtool(&router, &["config", "show"]);
    assert_eq!(config.0, 0, "{config:?}");
    for path in ["/-/ready", "/-/healthy"] {
        assert_eq!(router.get_text(path).await, "OK", "{path}");
    }
}
