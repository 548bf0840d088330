//! End to end: `check` finds what a reload or a send would trip over, and startup and
//! reload say the same, at the same place: settings a plugin does not take, templates
//! that use an unknown filter or fail on a sample event; and `route` says what will
//! really happen to an event.

use std::time::Duration;

use alert_router::plugins::{Catalog, HostServices};
use alert_router_tests::harness::{Router, dir_with, plugin_dir, run_cli, run_refused};
use serde_json::{Value, json};

const ALL_TO_CONSOLE: &str = "routes:\n  - name: all\n    to: [console]\n";
const TEXT_TEMPLATE: &str = "text: \"{{ event.type }}\"\n";

/// A config whose console sink has `settings` (written from line 8 on).
fn config_with_settings(settings: &str) -> String {
    format!(
        "plugins: {{dirs: [\"{{plugins}}\"]}}\nrules: rules\ntemplates: templates\nsinks:\n  console:\n    plugin: console\n    settings:\n{settings}"
    )
}

const TYPO: &str = "      pth: \"{dir}/out.txt\"\n      format: json\n";
const TYPO_PROBLEM: &str = "router.yaml:8:7: sinks.console.settings.pth: unknown setting; console takes: format, path (did you mean `path`?)";

#[test]
fn check_refuses_a_setting_the_plugin_does_not_take_at_its_place() {
    let dir = dir_with(&[
        ("router.yaml", &config_with_settings(TYPO)),
        ("rules/a.yaml", ALL_TO_CONSOLE),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
    ]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(stdout.trim_end(), TYPO_PROBLEM);
    assert!(stderr.contains("1 problem(s) found"), "{stderr}");

    // A value of the wrong type is pointed at where the value is.
    let dir = dir_with(&[
        (
            "router.yaml",
            &config_with_settings("      path: [\"{dir}/out.txt\"]\n"),
        ),
        ("rules/a.yaml", ALL_TO_CONSOLE),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
    ]);
    let (code, stdout, _) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1);
    assert_eq!(
        stdout.trim_end(),
        "router.yaml:8:13: sinks.console.settings.path: must be a string, got an array"
    );
}

#[tokio::test]
async fn startup_and_reload_report_a_setting_typo_as_check_does() {
    // Startup: the router does not start, and says why at the setting's place.
    let dir = dir_with(&[
        ("router.yaml", &config_with_settings(TYPO)),
        ("rules/a.yaml", ALL_TO_CONSOLE),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
    ]);
    let (code, stderr) = run_refused(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(TYPO_PROBLEM), "{stderr}");

    // Reload: refused with the same line, while the running config stays.
    let router = Router::start(
        &config_with_settings("      path: \"{dir}/out.txt\"\n"),
        &[
            ("rules/a.yaml", ALL_TO_CONSOLE),
            ("templates/console/default.yaml", TEXT_TEMPLATE),
        ],
    )
    .await;
    let bad = config_with_settings(TYPO).replace("{plugins}", &plugin_dir().display().to_string());
    let bad = bad.replace("{dir}", &router.dir.path().display().to_string());
    std::fs::write(router.dir.path().join("router.yaml"), bad).expect("write the config");
    let (status, body) = reload(&router).await;
    assert_eq!(status, 422, "{body}");
    let errors: Vec<&str> = body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(errors.len(), 1, "{body}");
    assert!(errors[0].ends_with(TYPO_PROBLEM), "{body}");
}

#[test]
fn a_refusal_by_the_plugin_is_said_at_the_settings_place_without_the_json_one() {
    // `format` is a string as the manifest says, but not one the console knows: its
    // `validate` refuses with serde's words, which end with a place in the settings JSON.
    let dir = dir_with(&[
        (
            "router.yaml",
            &config_with_settings("      path: \"{dir}/out.txt\"\n      format: xml\n"),
        ),
        ("rules/a.yaml", ALL_TO_CONSOLE),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
    ]);
    let problem = "router.yaml:8:7: sinks.console.settings: plugin `console` refused them: unknown variant `xml`, expected `text` or `json`";
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(stdout.trim_end(), problem, "no place in JSON");
    // Startup says the same and does not start.
    let (code, stderr) = run_refused(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(problem), "{stderr}");
    assert!(!dir.path().join("out.txt").exists(), "{stderr}");
}

#[test]
fn every_first_party_manifest_lists_exactly_the_settings_its_plugin_takes() {
    // A plugin's settings type refuses a name it does not know and lists the ones it
    // takes; the manifest must list the same, or the router would refuse a setting the
    // plugin takes (or let a typo through to the plugin).
    struct Nobody;
    impl HostServices for Nobody {
        fn query(&self, _: &str, _: &str) -> Result<String, alert_router_plugin::HostError> {
            Err(alert_router_plugin::HostError::unavailable("no host"))
        }
        fn emit(&self, _: &str, _: &[u8]) -> Result<String, alert_router_plugin::HostError> {
            Err(alert_router_plugin::HostError::unavailable("no host"))
        }
        fn render(
            &self,
            _: &str,
            _: &str,
            _: &[u8],
        ) -> Result<String, alert_router_plugin::HostError> {
            Err(alert_router_plugin::HostError::unavailable("no host"))
        }
        fn request(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &[u8],
        ) -> Result<String, alert_router_plugin::HostError> {
            Err(alert_router_plugin::HostError::unavailable("no host"))
        }
    }
    let catalog = Catalog::new(vec![plugin_dir()]);
    let services: std::sync::Arc<dyn HostServices> = std::sync::Arc::new(Nobody);
    for name in [
        "console",
        "dashboard",
        "discord",
        "email",
        "exec",
        "slack",
        "telegram",
        "webhook",
    ] {
        let plugin = catalog.load(name).expect("the plugin loads");
        let declared: Vec<&str> = plugin
            .manifest()
            .settings
            .keys()
            .map(String::as_str)
            .collect();
        let refusal = plugin
            .create("probe", &json!({"no_such_setting": 1}), services.clone())
            .expect_err("an unknown setting is refused")
            .to_string();
        // serde: "expected `a`", "expected `a` or `b`", "expected one of `a`, `b`, `c`".
        let (_, expected) = refusal
            .split_once(", expected ")
            .unwrap_or_else(|| panic!("{name}: no list of settings in {refusal}"));
        let mut takes: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        takes.sort();
        assert_eq!(declared, takes, "{name}: the manifest against {refusal}");
    }
}

const DATETME: &str = "text: |\n  {{ event.type }} at {{ event.time | datetme }}\n";
const DATETME_PROBLEM: &str =
    "templates/console/x.yaml:2:39: unknown filter `datetme` (did you mean `datetime`?)";

#[tokio::test]
async fn an_unknown_filter_fails_check_and_the_reload_instead_of_every_message() {
    let files = [
        ("rules/a.yaml", ALL_TO_CONSOLE),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
        ("templates/console/x.yaml", DATETME),
    ];
    let config = config_with_settings("      path: \"{dir}/out.txt\"\n");
    let mut with_config = vec![("router.yaml", config.as_str())];
    with_config.extend(files);
    let dir = dir_with(&with_config);
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(stdout.trim_end(), DATETME_PROBLEM);

    // The running router keeps its templates rather than take the broken one.
    let router = Router::start(&config, &files[..2]).await;
    router.dir.write("templates/console/x.yaml", DATETME);
    let (status, body) = reload(&router).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .is_some_and(|e| e.ends_with(DATETME_PROBLEM)),
        "{body}"
    );
}

const UNGUARDED: &str = "text: |\n  {{ event.symbol }} at {{ event.stop_loss|money }}\n";
const UNGUARDED_WARNING: &str = "templates/console/trade_opened.yaml:2:28: warning: undefined value: event.stop_loss (sample: trade_opened with required fields only; guard a field events may lack with `is defined`)";

#[tokio::test]
async fn a_template_that_fails_on_a_sample_event_is_a_warning_at_its_place() {
    let config = config_with_settings("      path: \"{dir}/out.txt\"\n");
    let files = [
        ("rules/a.yaml", ALL_TO_CONSOLE),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
        ("templates/console/trade_opened.yaml", UNGUARDED),
    ];
    let mut with_config = vec![("router.yaml", config.as_str())];
    with_config.extend(files);
    let dir = dir_with(&with_config);
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(
        code, 0,
        "a warning does not fail the check: {stdout}{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            UNGUARDED_WARNING,
            "ok: 1 sink(s), 1 route(s), templates in templates; 1 warning(s)"
        ]
    );
    let (code, stdout, stderr) = run_cli(dir.path(), &["check", "--strict"]);
    assert_eq!(code, 1, "--strict fails on it: {stdout}{stderr}");
    assert_eq!(stdout.trim_end(), UNGUARDED_WARNING);
    assert!(stderr.contains("1 warning(s) found"), "{stderr}");

    // Startup says the same in its log, and runs: an event with a stop loss renders.
    let router = Router::start(&config, &files).await;
    let logged = UNGUARDED_WARNING.replace(": warning: ", ": ");
    assert!(router.stderr().contains(&logged), "{}", router.stderr());
    // A reload puts it in force and answers the warning, which /v1/status keeps.
    let (code, answer) = reload(&router).await;
    assert_eq!(code, 200, "{answer}");
    let one_warning = |list: &Value| {
        list.as_array()
            .is_some_and(|l| l.len() == 1 && l[0].as_str().is_some_and(|w| w.ends_with(&logged)))
    };
    assert!(one_warning(&answer["warnings"]), "{answer}");
    let status = router.get_json("/v1/status").await;
    assert!(
        one_warning(&status["config"]["last_reload"]["warnings"]),
        "{status}"
    );
    let (status, _) = router
        .post_events(
            json!({"type": "trade_opened", "symbol": "BTC/USDT", "side": "BUY",
                   "entry_price": 45000, "quantity": 0.5, "stop_loss": 44000})
            .to_string(),
        )
        .await;
    assert_eq!(status, 202);
    alert_router_tests::harness::eventually(Duration::from_secs(20), "the delivery", || {
        let out = std::fs::read_to_string(router.dir.path().join("out.txt")).ok()?;
        out.contains("BTC/USDT at $44,000.00").then_some(())
    })
    .await;
}

#[test]
fn the_shipped_templates_pass_check_cleanly_with_every_first_party_plugin() {
    let config = r#"plugins: {dirs: ["{plugins}"]}
rules: ["{repo}/rules", rules]
templates: "{repo}/templates"
sinks:
  dashboard: {plugin: dashboard, settings: {listen: "127.0.0.1:0"}}
  console: {plugin: console, settings: {format: text}}
  telegram: {plugin: telegram, settings: {bot_token: "1:a", chat_ids: [42], commands: false}}
  discord: {plugin: discord, settings: {webhook_url: "https://discord.com/api/webhooks/1/x"}}
  slack: {plugin: slack, settings: {webhook_url: "https://hooks.slack.com/services/T/B/x"}}
  email: {plugin: email, settings: {host: smtp.example.com, from: a@example.com, to: [b@example.com], timeout: 30}}
  webhook: {plugin: webhook, settings: {url: "https://example.com/hook", timeout: 5}}
"#;
    let dir = dir_with(&[
        ("router.yaml", config),
        (
            "rules/more.yaml",
            // Every group.yaml is rehearsed too: the shipped rules group errors for the
            // chats, this route for the others.
            "routes:\n  - name: grouped\n    match: {type: error}\n    group_by: [component]\n    to: [slack, email, webhook, console, dashboard]\n    continue: true\n  - name: the-rest\n    to: [slack, email, webhook]\n",
        ),
    ]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["check", "--strict"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: 7 sink(s), 7 route(s)"), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");
}

#[test]
fn route_names_the_template_file_used_and_leaves_out_a_disabled_sink() {
    let config = r#"plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  console: {plugin: console}
  telegram: {plugin: telegram, enabled: false}
  ghost: {plugin: ghost}
"#;
    let dir = dir_with(&[
        ("router.yaml", config),
        (
            "rules/a.yaml",
            "routes:\n  - name: all\n    to: [console, telegram, ghost]\n",
        ),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
        ("templates/console/trade_opened.yaml", TEXT_TEMPLATE),
        (
            "events.json",
            r#"[{"type": "heartbeat", "id": "hb-1"}, {"type": "trade_opened", "id": "t-1", "symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "quantity": 0.5}]"#,
        ),
    ]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["route", "--event", "events.json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "heartbeat (hb-1):",
            "  route `all` (rules/a.yaml:2), severity info:",
            "    console: templates/console/default.yaml",
            "    telegram: disabled (enabled: false): gets nothing",
        ]
    );
    assert!(
        lines[4].starts_with("    ghost: cannot start (plugin `ghost` not found")
            && lines[4].ends_with("): the message goes to its dead letters"),
        "{stdout}"
    );
    assert_eq!(
        lines[6..8],
        [
            "  route `all` (rules/a.yaml:2), severity info:",
            "    console: templates/console/trade_opened.yaml",
        ]
    );
}

#[tokio::test]
async fn status_shows_an_empty_secret_as_unset_and_a_set_one_as_stars() {
    let config = r#"plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  open: {plugin: dashboard, settings: {listen: "127.0.0.1:0", token: ""}}
  closed: {plugin: dashboard, settings: {listen: "127.0.0.1:0", token: "s3cret-t0ken"}}
"#;
    let router = Router::start(config, &[("rules/a.yaml", "routes: []\n")]).await;
    let status = router
        .status_until("both dashboards running", |s| {
            s["sinks"]["open"]["healthy"] == true && s["sinks"]["closed"]["healthy"] == true
        })
        .await;
    assert_eq!(
        status["sinks"]["open"]["settings"]["token"], "",
        "unset: no authentication"
    );
    assert_eq!(status["sinks"]["closed"]["settings"]["token"], "***");
    assert!(!status.to_string().contains("s3cret-t0ken"));
}

async fn reload(router: &Router) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/reload", router.url))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("POST /v1/reload");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[test]
fn a_missing_template_is_a_check_error_at_its_place_not_a_fall_back() {
    let settings = "      path: \"{dir}/out.txt\"\n";
    // A route names a template that is not there (a typo, or a path out of the folder),
    // and another sink has no template at all.
    let config = format!(
        "{}  quiet:\n    plugin: webhook\n    settings: {{url: \"http://127.0.0.1:9/hook\"}}\n",
        config_with_settings(settings)
    );
    let rules = "routes:\n  - name: typo\n    match: {type: a}\n    to: [console]\n    template: tarde\n  - name: all\n    to: [console, quiet]\n";
    let dir = dir_with(&[
        ("router.yaml", &config),
        ("rules/a.yaml", rules),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
        ("templates/console/trade.yaml", TEXT_TEMPLATE),
    ]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("rules/a.yaml:5:15: route `typo`: no template `tarde` for sink `console`: write tarde.yaml in templates/console\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("router.yaml:10:5: sink `quiet` has no template, and routes send to it without naming one: write default.yaml in templates/quiet or templates/webhook\n"),
        "{stdout}"
    );
    // The same config does not start: startup and check agree.
    let (code, stderr) = run_refused(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("route `typo`: no template `tarde`"),
        "{stderr}"
    );

    // A name that leaves the folder is not a template's name at all.
    std::fs::write(
        dir.path().join("rules/a.yaml"),
        "routes:\n  - name: out\n    to: [console]\n    template: ../../etc/passwd\n",
    )
    .expect("rules");
    let (code, stdout, _) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(
            "rules/a.yaml:4:15: route `out`: template `../../etc/passwd` is not a template's name"
        ),
        "{stdout}"
    );
}

/// Noise settings, inhibitions and time windows with a mistake each.
const NOISY_RULES: &str = r#"routes:
  - name: errors
    group_by: [labels.]
    group_wait: soon
    to: [console]
  - name: trades
    muted_during: [nigth]
    mode: later
    to: [console]
  - name: chatter
    throttle: {key: [component], at_most: "0/1m"}
    to: [console]
inhibit:
  - source: {severity: ">= eror"}
    target: {type: order_failed}
    equal: [labels.]
time_intervals:
  - name: night
    time_intervals:
      - location: Mars/Olympus
"#;

#[test]
fn check_reports_each_mistake_in_noise_settings_at_its_place() {
    let dir = dir_with(&[
        (
            "router.yaml",
            &config_with_settings(TYPO).replace(TYPO, "      path: \"{dir}/out.txt\"\n"),
        ),
        ("rules/a.yaml", NOISY_RULES),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
    ]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    for expected in [
        "rules/a.yaml:3:15: route `errors`: group_by: `labels.`: name one label, e.g. labels.exchange",
        "rules/a.yaml:4:17: route `errors`: group_wait:",
        "rules/a.yaml:7:19: route `trades`: no time interval named `nigth`",
        "rules/a.yaml:8:11: route `trades`: mode: `later`: use drop",
        "rules/a.yaml:11:43: route `chatter`: throttle.at_most: \"0/1m\": a count of zero lets nothing through",
        "rules/a.yaml:14:24: inhibit entry 1 (line 14): source.severity: unknown severity \"eror\"",
        "rules/a.yaml:16:13: inhibit entry 1 (line 14): equal: `labels.`",
        "rules/a.yaml:20:19:",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(stdout.contains("Mars/Olympus"), "{stdout}");
}

#[test]
fn a_grouped_route_needs_a_group_template_or_a_default_and_check_renders_it() {
    let grouped = "routes:\n  - name: errors\n    group_by: [component]\n    to: [console]\n";
    let dir = dir_with(&[
        (
            "router.yaml",
            &config_with_settings("      path: \"{dir}/out.txt\"\n"),
        ),
        ("rules/a.yaml", grouped),
        ("templates/console/error.yaml", TEXT_TEMPLATE),
    ]);
    let (code, stdout, _) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("rules/a.yaml:2: route `errors` groups its messages: no template `group` (nor a default) for sink `console`: write group.yaml in"),
        "{stdout}"
    );
    // A group template that reads what a group does not have is a warning at its place.
    let dir = dir_with(&[
        (
            "router.yaml",
            &config_with_settings("      path: \"{dir}/out.txt\"\n"),
        ),
        ("rules/a.yaml", grouped),
        (
            "templates/console/group.yaml",
            "text: \"{{ counts.total }} {{ alerts[0].event.nope }}\"\n",
        ),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
    ]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("templates/console/group.yaml:1:"),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("warning"), "{stdout}{stderr}");
}
