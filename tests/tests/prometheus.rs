//! End to end: Debian's real `prometheus` pointed at the router as its Alertmanager. It
//! evaluates two alerting rules that always fire and sends their alerts to the router's
//! Alertmanager API v2 (`POST /api/v2/alerts`); the router's route delivers the one no
//! silence holds and holds back the one a silence, set through the router's
//! `POST /api/v2/silences` before Prometheus started, matches. Prometheus' resends (every
//! second here) are taken as repeats: the firing alert is delivered once.
//!
//! Without `prometheus` on PATH the test fails, saying what to install: it never skips.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alert_router_tests::harness::{Router, TempDir, read_json_lines};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

/// Prometheus starts, evaluates every second and sends at once; this is for a slow machine.
const WAIT: Duration = Duration::from_secs(60);

const INSTALL: &str = "install Debian's Prometheus with `apt-get install -y prometheus` (.ci/run installs it; do not start its service)";

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

/// Prometheus' rule file: two alerts that fire from the first evaluation on.
const PROMETHEUS_RULES: &str = r#"
groups:
  - name: router-e2e
    rules:
      - alert: RouterE2EFiring
        expr: vector(1) > 0
        for: 0s
        labels: {severity: critical}
        annotations: {summary: "always firing, from a real Prometheus"}
      - alert: RouterE2ESilenced
        expr: vector(1) > 0
        for: 0s
        labels: {severity: critical}
        annotations: {summary: "always firing, silenced in the router"}
"#;

/// A running `prometheus`, killed when dropped (also when the test panics).
struct Prometheus {
    child: Child,
    log: PathBuf,
    url: String,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts `prometheus` on a config pointing at `router` as its only Alertmanager.
    fn start(router: &Router) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let router_addr = router
            .url
            .strip_prefix("http://")
            .expect("the router's http:// URL");
        let rules = dir.write("rules.yml", PROMETHEUS_RULES);
        let config = dir.write(
            "prometheus.yml",
            &format!(
                "global: {{evaluation_interval: 1s}}\n\
                 rule_files: [{rules:?}]\n\
                 alerting:\n  alertmanagers:\n    - static_configs: [{{targets: [\"{router_addr}\"]}}]\n"
            ),
        );
        let data = dir.path().join("data");
        let log = dir.path().join("prometheus.log");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Prometheus drops what its rules fire before it has discovered its
            // Alertmanagers (some seconds after it starts), and sends a firing alert
            // again only after this delay (1m by default).
            .arg("--rules.alert.resend-delay=1s")
            // Its alerts' generatorURL (else the host's name).
            .arg(format!("--web.external-url=http://127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("prometheus.out")).expect("a log file"))
            .stderr(File::create(&log).expect("a log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run prometheus ({e}): {INSTALL}"));
        Prometheus {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// What Prometheus logged (it logs to stderr).
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `check` until it returns `Some`; after `WAIT`, panics with `what`, what the
    /// router and Prometheus logged, and which Alertmanagers Prometheus says it uses.
    async fn until<T, F, Fut>(&mut self, router: &Router, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let alertmanagers = get_text(&format!("{}/api/v1/alertmanagers", self.url)).await;
                let theirs = get_text(&format!("{}/api/v1/alerts", self.url)).await;
                let ours = get_text(&format!("{}/v1/alerts", router.url)).await;
                let sent = get_text(&format!("{}/metrics", self.url)).await;
                let sent: Vec<&str> = sent
                    .lines()
                    .filter(|l| l.starts_with("prometheus_notifications_"))
                    .collect();
                let status = get_text(&format!("{}/v1/status", router.url)).await;
                panic!(
                    "waiting for {what}: {}\n\
                     Prometheus' /api/v1/alertmanagers: {alertmanagers}\n\
                     Prometheus' /api/v1/alerts: {theirs}\n\
                     the router's /v1/alerts: {ours}\n\
                     the router's /v1/status: {status}\n\
                     Prometheus' notifier: {sent:#?}\n\
                     --- Prometheus' log ---\n{}\n--- the router's log ---\n{}",
                    match exited {
                        Some(status) => format!("prometheus exited ({status})"),
                        None => format!("timed out after {WAIT:?}"),
                    },
                    self.log(),
                    router.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET url`'s body, or why there is none.
async fn get_text(url: &str) -> String {
    match reqwest::get(url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => e.to_string(),
    }
}

fn texts(router: &Router) -> Vec<String> {
    read_json_lines(&router.dir.path().join("out.jsonl"))
        .iter()
        .filter_map(|l| l["payload"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// Sets a silence on `alertname` through the router's Alertmanager API: its id.
async fn silence(router: &Router, alertname: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    let body = json!({
        "matchers": [{"name": "alertname", "value": alertname, "isRegex": false, "isEqual": true}],
        "startsAt": now.format(&Rfc3339).expect("a timestamp"),
        "endsAt": (now + time::Duration::hours(1)).format(&Rfc3339).expect("a timestamp"),
        "createdBy": "e2e",
        "comment": "held back in the router",
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v2/silences", router.url))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /api/v2/silences");
    assert_eq!(resp.status().as_u16(), 200, "POST /api/v2/silences");
    let answer: Value = resp.json().await.expect("JSON");
    answer["silenceID"]
        .as_str()
        .unwrap_or_else(|| panic!("a silenceID: {answer}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sends_its_firing_alerts_to_the_router_as_to_an_alertmanager() {
    assert!(
        Command::new("prometheus").arg("--version").output().is_ok(),
        "prometheus is not on PATH: {INSTALL}"
    );
    let router = Router::start(
        CONFIG,
        &[
            ("rules/r.yaml", RULES),
            ("templates/console/default.yaml", TEMPLATE),
        ],
    )
    .await;
    let silence_id = silence(&router, "RouterE2ESilenced").await;
    let mut prometheus = Prometheus::start(&router);

    // The firing alert: listed by the router with the rule's name and labels...
    let firing = prometheus
        .until(&router, "RouterE2EFiring firing in the router", || async {
            let alerts = router
                .get_json("/v1/alerts?state=firing&labels.alertname=RouterE2EFiring")
                .await;
            alerts["alerts"].as_array().and_then(|a| a.first()).cloned()
        })
        .await;
    assert_eq!(firing["labels"]["severity"], "critical", "{firing}");
    let fingerprint = firing["fingerprint"]
        .as_str()
        .unwrap_or_else(|| panic!("a fingerprint: {firing}"))
        .to_owned();
    assert_eq!(
        fingerprint.len(),
        16,
        "Alertmanager's fingerprint: {firing}"
    );

    // ...delivered by its route...
    let line = format!("RouterE2EFiring firing {fingerprint}");
    prometheus
        .until(&router, "the console sink printing it", || async {
            texts(&router).contains(&line).then_some(())
        })
        .await;

    // ...and, through the Alertmanager API, the same alert as Prometheus sent it.
    let v2 = router.get_json("/api/v2/alerts").await;
    let listed = v2
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["labels"]["alertname"] == "RouterE2EFiring")
        })
        .unwrap_or_else(|| panic!("RouterE2EFiring in /api/v2/alerts: {v2}"));
    assert_eq!(listed["fingerprint"], fingerprint.as_str(), "{listed}");
    assert_eq!(
        listed["labels"],
        json!({"alertname": "RouterE2EFiring", "severity": "critical"}),
        "only the rule's labels: {listed}"
    );
    assert_eq!(
        listed["annotations"]["summary"], "always firing, from a real Prometheus",
        "{listed}"
    );
    assert_eq!(listed["status"]["state"], "active", "{listed}");
    assert_eq!(listed["receivers"][0]["name"], "alerts", "the route");
    let generator = listed["generatorURL"].as_str().unwrap_or_default();
    assert!(
        generator.starts_with(&format!("{}/graph?g0.expr=vector", prometheus.url)),
        "Prometheus' link to its rule: {listed}"
    );

    // The silenced rule's alert reached the router too, and its route held it back.
    let silenced = prometheus
        .until(&router, "RouterE2ESilenced held back", || async {
            let status = router.get_json("/v1/status").await;
            if status["sinks"]["console"]["held_back"]["silenced"].as_u64() < Some(1) {
                return None;
            }
            let all = router.get_json("/api/v2/alerts?silenced=true").await;
            all.as_array()
                .and_then(|a| {
                    a.iter()
                        .find(|a| a["labels"]["alertname"] == "RouterE2ESilenced")
                })
                .cloned()
        })
        .await;
    assert_eq!(silenced["status"]["state"], "suppressed", "{silenced}");
    assert_eq!(
        silenced["status"]["silencedBy"][0],
        silence_id.as_str(),
        "{silenced}"
    );
    let printed = texts(&router);
    assert!(
        !printed.iter().any(|l| l.starts_with("RouterE2ESilenced")),
        "the silenced alert is not delivered: {printed:?}"
    );

    // Prometheus sends its firing alerts again (every second here): the router takes
    // each as a repeat, which keeps the alert firing, and routes it only once.
    prometheus
        .until(&router, "Prometheus' resends taken as repeats", || async {
            let status = router.get_json("/v1/status").await;
            (status["events"]["duplicates"].as_u64() >= Some(4)).then_some(())
        })
        .await;
    let printed = texts(&router);
    assert_eq!(
        printed.iter().filter(|l| **l == line).count(),
        1,
        "delivered once: {printed:?}"
    );

    // Prometheus took every answer of the router.
    let log = prometheus.log();
    assert!(
        !log.contains("Error sending alert") && !log.contains("level=error"),
        "Prometheus logged errors:\n{log}"
    );
}
