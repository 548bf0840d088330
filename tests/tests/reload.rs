//! End to end: rules, templates, config and plugins change under a running router.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use alert_router_tests::harness::{
    Router, dir_with, eventually, eventually_async, read_json_lines,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const TEXT: &str = "text: \"{{ event.type }} {{ event.n | default('') }}\"\n";

fn two_consoles() -> String {
    r#"plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  a:
    plugin: console
    settings: {path: "{dir}/a.jsonl", format: json}
  b:
    plugin: console
    settings: {path: "{dir}/b.jsonl", format: json}
"#
    .to_owned()
}

const TO_A: &str = "routes:\n  - name: main\n    to: [a]\n";
const TO_B: &str = "routes:\n  - name: main\n    to: [b]\n";

fn ns(path: &std::path::Path) -> Vec<i64> {
    read_json_lines(path)
        .iter()
        .filter_map(|l| l["event"]["n"].as_i64())
        .collect()
}

async fn reloads(router: &Router) -> u64 {
    router.get_json("/v1/status").await["config"]["reloads"]["succeeded"]
        .as_u64()
        .unwrap_or(0)
}

/// Writes `contents` to `path` the way vim does: a new file renamed over the old one.
fn save_by_rename(path: &std::path::Path, contents: &str) {
    let tmp = path.with_extension("yaml.tmp~");
    std::fs::write(&tmp, contents).expect("write temp");
    std::fs::rename(&tmp, path).expect("rename over");
}

#[tokio::test]
async fn a_rule_edit_under_load_loses_and_repeats_nothing() {
    let router = Arc::new(
        Router::start(
            &two_consoles(),
            &[
                ("rules/main.yaml", TO_A),
                ("templates/console/default.yaml", TEXT),
            ],
        )
        .await,
    );
    // A producer posting numbered events one at a time until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (router, stop) = (router.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let (status, _) = router
                    .post_events(json!({"type": "tick", "n": n}).to_string())
                    .await;
                assert_eq!(status, 202);
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            n
        })
    };
    let a = router.dir.path().join("a.jsonl");
    let b = router.dir.path().join("b.jsonl");
    eventually(WAIT, "events flowing to a", || {
        (ns(&a).len() > 50).then_some(())
    })
    .await;
    let edited = Instant::now();
    std::fs::write(router.dir.path().join("rules/main.yaml"), TO_B).expect("edit the rule");
    eventually(WAIT, "events flowing to b", || {
        (!ns(&b).is_empty()).then_some(())
    })
    .await;
    let switched = edited.elapsed();
    // Keep producing a little after the switch, then stop and let everything land.
    eventually(WAIT, "more events at b", || {
        (ns(&b).len() > 50).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let posted = producer.await.expect("the producer");
    let (at_a, at_b) = eventually(WAIT, "every event delivered", || {
        let (at_a, at_b) = (ns(&a), ns(&b));
        (at_a.len() + at_b.len() >= posted as usize).then_some((at_a, at_b))
    })
    .await;
    assert!(
        switched < Duration::from_secs(1),
        "the new rule was in force {switched:?} after the write"
    );
    // Each event went to exactly one sink, in order, and the switch is one clean cut.
    let mut all: Vec<i64> = at_a.iter().chain(&at_b).copied().collect();
    all.sort();
    assert_eq!(
        all,
        (0..posted).collect::<Vec<_>>(),
        "none lost, none twice"
    );
    let last_a = at_a.iter().max().copied().unwrap_or(-1);
    let first_b = at_b.iter().min().copied().unwrap_or(i64::MAX);
    assert_eq!(
        last_a + 1,
        first_b,
        "events before the reload went to a, after it to b"
    );
    assert!(
        at_a.windows(2).all(|w| w[0] < w[1]) && at_b.windows(2).all(|w| w[0] < w[1]),
        "FIFO"
    );
}

#[tokio::test]
async fn a_broken_edit_keeps_the_running_config_and_a_fix_recovers() {
    let router = Router::start(
        &two_consoles(),
        &[
            ("rules/main.yaml", TO_A),
            ("templates/console/default.yaml", TEXT),
        ],
    )
    .await;
    let rules = router.dir.path().join("rules/main.yaml");
    let template = router.dir.path().join("templates/console/default.yaml");
    let config = router.dir.path().join("router.yaml");
    let good_config = std::fs::read_to_string(&config).expect("config");
    let cases: Vec<(&std::path::Path, String, &str)> = vec![
        (
            &rules,
            "routes:\n  - name: main\n    to: [a\n".into(),
            "rules/main.yaml:3:",
        ),
        (
            &template,
            "text: \"{{ event.type \"\n".into(),
            "templates/console/default.yaml:1:",
        ),
        (
            &rules,
            "routes:\n  - name: main\n    to: [nowhere]\n".into(),
            "rules/main.yaml:3:10: route `main`: unknown sink `nowhere`",
        ),
        (
            &config,
            good_config.replace(
                "plugin: console\n    settings: {path: \"",
                "plugin: missing\n    settings: {path: \"",
            ),
            "sink `a` did not start: plugin `missing` not found",
        ),
    ];
    for (n, (file, broken, expected)) in cases.into_iter().enumerate() {
        let original = std::fs::read_to_string(file).expect("read");
        std::fs::write(file, &broken).expect("break it");
        let status = router
            .status_until(&format!("a failed reload naming {expected}"), |s| {
                s["config"]["last_reload"]["ok"] == false
                    && s["config"]["last_reload"]["errors"]
                        .as_array()
                        .is_some_and(|e| {
                            e.iter()
                                .any(|e| e.as_str().unwrap_or("").contains(expected))
                        })
            })
            .await;
        assert!(status["sinks"]["a"]["healthy"] == true, "{status}");
        // The old snapshot still routes.
        assert_eq!(
            router
                .post_events(json!({"type": "still", "n": n}).to_string())
                .await
                .0,
            202
        );
        let a = router.dir.path().join("a.jsonl");
        eventually(WAIT, "delivery with the old config", || {
            (ns(&a).len() == n + 1).then_some(())
        })
        .await;
        // Fixing the file recovers by itself.
        std::fs::write(file, &original).expect("fix it");
        router
            .status_until("a successful reload", |s| {
                s["config"]["last_reload"]["ok"] == true
            })
            .await;
    }
    let metrics = router.get_text("/metrics").await;
    assert!(
        metrics.contains("alert_router_reloads_total{result=\"failure\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alert_router_config_last_reload_successful 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn template_edits_vim_saves_and_bursts() {
    let router = Router::start(
        &two_consoles(),
        &[
            ("rules/main.yaml", TO_A),
            ("templates/console/default.yaml", TEXT),
        ],
    )
    .await;
    let template = router.dir.path().join("templates/console/default.yaml");
    save_by_rename(&template, "text: \"v2 {{ event.type }}\"\n");
    router
        .status_until("the vim-style save to be picked up", |s| {
            s["config"]["last_reload"]["ok"] == true
        })
        .await;
    assert_eq!(router.post_events(r#"{"type": "x"}"#).await.0, 202);
    let a = router.dir.path().join("a.jsonl");
    let lines = eventually(WAIT, "a delivery", || {
        let l = read_json_lines(&a);
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert_eq!(lines[0]["payload"]["text"], "v2 x");
    let status = router.get_json("/v1/status").await;
    let changes = status["config"]["last_reload"]["changes"].to_string();
    assert!(
        changes.contains("templates changed") && changes.contains("default.yaml"),
        "the reload says what changed: {changes}"
    );

    // 50 saves back to back: one or a few reloads, not 50. No pause between them, so
    // the gaps stay far below the watcher's quiet period however slow the machine is.
    let before = reloads(&router).await;
    for i in 0..50 {
        std::fs::write(&template, format!("text: \"v{i} {{{{ event.type }}}}\"\n")).expect("save");
    }
    router
        .status_until("the burst to settle", |s| {
            s["config"]["last_reload"]["changes"]
                .to_string()
                .contains("default.yaml")
        })
        .await;
    // Wait until no more reloads happen (reading files must not cause any), then count.
    let mut last = reloads(&router).await;
    let settle_by = Instant::now() + WAIT;
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let now = reloads(&router).await;
        if now == last {
            break;
        }
        assert!(
            Instant::now() < settle_by,
            "reloads keep happening with no change: {now}"
        );
        last = now;
    }
    let burst = last - before;
    assert!((1..=10).contains(&burst), "50 saves caused {burst} reloads");
    assert_eq!(router.post_events(r#"{"type": "y"}"#).await.0, 202);
    let lines = eventually(WAIT, "the second delivery", || {
        let l = read_json_lines(&a);
        (l.len() == 2).then_some(l)
    })
    .await;
    assert_eq!(
        lines[1]["payload"]["text"], "v49 y",
        "the last save is the one in force"
    );
}

#[tokio::test]
async fn sighup_and_the_api_reload_too() {
    let router = Router::start(
        &two_consoles(),
        &[
            ("rules/main.yaml", TO_A),
            ("templates/console/default.yaml", TEXT),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/v1/reload", router.url))
        .send()
        .await
        .expect("reload");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        (body["ok"].clone(), body["trigger"].clone()),
        (json!(true), json!("api"))
    );
    std::fs::write(router.dir.path().join("notes.txt"), "not config").expect("write");
    let pid = router.pid();
    let _ = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(pid.to_string())
        .status();
    router
        .status_until("a reload by signal", |s| {
            s["config"]["last_reload"]["trigger"] == "signal"
        })
        .await;
    // A broken config: the API answers 422 with the place.
    std::fs::write(
        router.dir.path().join("rules/main.yaml"),
        "routes: [{name: main, to: [zzz]}]\n",
    )
    .expect("break");
    let resp = client
        .post(format!("{}/v1/reload", router.url))
        .send()
        .await
        .expect("reload");
    assert_eq!(resp.status().as_u16(), 422);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["errors"].to_string().contains("unknown sink `zzz`"),
        "{body}"
    );
}

#[tokio::test]
async fn a_plugin_dropped_in_is_used_without_a_restart() {
    // Only the console plugin at first, in a directory of the test's own.
    let console = alert_router_tests::harness::plugin_dir().join("libconsole.so");
    let dir = dir_with(&[
        (
            "router.yaml",
            "plugins: {dirs: [\"{dir}/plugins\"]}\nrules: rules\ntemplates: templates\nsinks:\n  a:\n    plugin: console\n    settings: {path: \"{dir}/a.jsonl\", format: json}\n",
        ),
        ("rules/main.yaml", TO_A),
        ("templates/console/default.yaml", TEXT),
        (
            "templates/ctest/default.yaml",
            "note: \"{{ event.type }}\"\n",
        ),
    ]);
    std::fs::create_dir_all(dir.path().join("plugins")).expect("plugins dir");
    std::fs::copy(&console, dir.path().join("plugins/libconsole.so")).expect("copy console");
    let router = Router::start_in(dir).await;
    // Drop the C plugin in, then add a sink and a route for it.
    let c_plugin = std::path::Path::new(env!("AR_TEST_C_PLUGIN_DIR")).join("libctest.so");
    std::fs::copy(&c_plugin, router.dir.path().join("plugins/libctest.so"))
        .expect("drop the plugin in");
    let config = router.dir.path().join("router.yaml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "  c:\n    plugin: ctest\n    settings: {{path: \"{}/c.out\"}}\n",
        router.dir.path().display()
    ));
    std::fs::write(&config, text).expect("add the sink");
    std::fs::write(
        router.dir.path().join("rules/main.yaml"),
        "routes:\n  - name: to-c\n    match: {type: dropin}\n    to: [c]\n  - name: main\n    match: {type: \"*\"}\n    to: [a]\n",
    )
    .expect("route to it");
    let status = router
        .status_until("the new sink", |s| s["sinks"]["c"]["plugin"] == "ctest")
        .await;
    assert!(
        status["config"]["last_reload"]["changes"]
            .to_string()
            .contains("sink `c` added"),
        "{status}"
    );
    assert_eq!(router.post_events(r#"{"type": "dropin"}"#).await.0, 202);
    let out = router.dir.path().join("c.out");
    eventually(WAIT, "the dropped-in plugin to deliver", || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.contains("\"dropin\""))
            .map(|_| ())
    })
    .await;
}

/// `GET path` with an optional bearer token: the status code.
async fn status_code(router: &Router, path: &str, token: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().get(format!("{}{path}", router.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET").status().as_u16()
}

#[tokio::test]
async fn a_token_set_by_a_reload_guards_the_api_at_once_and_removing_it_opens_it_again() {
    const TOKEN: &str = "r3load-t0ken-value";
    let router = Router::start(
        &two_consoles(),
        &[
            ("rules/main.yaml", TO_A),
            ("templates/console/default.yaml", TEXT),
        ],
    )
    .await;
    let config = router.dir.path().join("router.yaml");
    let open = std::fs::read_to_string(&config).expect("config");
    assert_eq!(status_code(&router, "/v1/status", None).await, 200);

    std::fs::write(&config, format!("server: {{token: {TOKEN}}}\n{open}")).expect("set a token");
    eventually_async(WAIT, "the API to ask for the new token", || async {
        (status_code(&router, "/v1/status", None).await == 401).then_some(())
    })
    .await;
    assert_eq!(status_code(&router, "/v1/status", Some("wrong")).await, 401);
    assert_eq!(status_code(&router, "/v1/status", Some(TOKEN)).await, 200);
    assert_eq!(status_code(&router, "/healthz", None).await, 200);
    let client = reqwest::Client::new();
    let posted = client
        .post(format!("{}/v1/events", router.url))
        .bearer_auth(TOKEN)
        .body(r#"{"type": "guarded", "n": 1}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status().as_u16(), 202);
    let status: Value = client
        .get(format!("{}/v1/status", router.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("JSON");
    let changes = status["config"]["last_reload"]["changes"].to_string();
    assert!(changes.contains("server.token set"), "{changes}");
    assert_eq!(status["config"]["restart_needed"], json!([]), "{status}");

    std::fs::write(&config, &open).expect("remove the token");
    eventually_async(WAIT, "the API to be open again", || async {
        (status_code(&router, "/v1/status", None).await == 200).then_some(())
    })
    .await;
    let status = router.get_json("/v1/status").await;
    let changes = status["config"]["last_reload"]["changes"].to_string();
    assert!(changes.contains("server.token removed"), "{changes}");
    let said = format!("{status}{}{}", router.stderr(), router.stdout());
    assert!(!said.contains(TOKEN), "the token is never shown or logged");
}

#[tokio::test]
async fn a_body_limit_changed_by_a_reload_applies_at_once() {
    let router = Router::start(
        &two_consoles(),
        &[
            ("rules/main.yaml", TO_A),
            ("templates/console/default.yaml", TEXT),
        ],
    )
    .await;
    let big = json!({"type": "big", "blob": "x".repeat(2000)}).to_string();
    assert_eq!(router.post_events(big.clone()).await.0, 202);
    let config = router.dir.path().join("router.yaml");
    let open = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("server: {{max_body: 1KiB}}\n{open}")).expect("lower it");
    let status = router
        .status_until("the lower limit in force", |s| {
            s["config"]["last_reload"]["changes"]
                .to_string()
                .contains("server.max_body changed from 8388608 to 1024 bytes")
        })
        .await;
    assert_eq!(status["config"]["restart_needed"], json!([]), "{status}");
    assert_eq!(router.post_events(big).await.0, 413);
    assert_eq!(router.post_events(r#"{"type": "small"}"#).await.0, 202);
}

#[tokio::test]
async fn a_listen_change_needs_a_restart_and_says_so_while_the_old_address_serves() {
    let listening = "server: {listen: \"127.0.0.1:0\"}\n";
    let router = Router::start_on_configured_listen(
        &format!("{listening}{}", two_consoles()),
        &[
            ("rules/main.yaml", TO_A),
            ("templates/console/default.yaml", TEXT),
        ],
    )
    .await;
    let config = router.dir.path().join("router.yaml");
    let started = std::fs::read_to_string(&config).expect("config");
    // Nothing need listen there: the address is only compared, never bound.
    let moved = started.replace("127.0.0.1:0", "127.0.0.1:9");
    std::fs::write(&config, &moved).expect("move the API");
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/v1/reload", router.url))
        .send()
        .await
        .expect("the old address still answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(
        answer["restart_needed"],
        json!(["server.listen"]),
        "{answer}"
    );
    // The file watcher may have reloaded first; one of the two reloads said why.
    let status = router
        .status_until("the reload to say what needs a restart", |s| {
            s["config"]["restart_needed"] == json!(["server.listen"])
        })
        .await;
    let said = format!("{answer}{status}{}", router.stderr());
    assert!(
        said.contains("server.listen changed from 127.0.0.1:0 to 127.0.0.1:9: it takes effect at the next restart"),
        "{said}"
    );
    let warned = router.stderr().lines().any(|l| {
        l.contains("WARN") && l.contains("only after a restart") && l.contains("server.listen")
    });
    assert!(warned, "a warning names the key: {}", router.stderr());
    // The rest of the file still applies, and the old address keeps serving.
    assert_eq!(
        router.post_events(r#"{"type": "still", "n": 1}"#).await.0,
        202
    );
    let a = router.dir.path().join("a.jsonl");
    eventually(WAIT, "delivery", || (ns(&a) == [1]).then_some(())).await;
    // Put back, nothing waits for a restart any more.
    std::fs::write(&config, &started).expect("move it back");
    router
        .status_until("no restart needed", |s| {
            s["config"]["restart_needed"] == json!([])
        })
        .await;
}

#[tokio::test]
async fn a_reload_lowering_max_attempts_dead_letters_a_message_in_backoff_at_once() {
    // Two hours of backoff: the only way to see the dead letter within the test's wait
    // is the reload taking effect in the middle of it.
    let config = r#"plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  f:
    plugin: flaky
    retry: {max_attempts: 5, initial_backoff: 2h, max_backoff: 2h}
    settings: {path: "{dir}/attempts.jsonl"}
"#;
    let router = Router::start(
        config,
        &[
            ("rules/main.yaml", "routes:\n  - name: main\n    to: [f]\n"),
            ("templates/flaky/default.yaml", "behave: retry\n"),
        ],
    )
    .await;
    let (code, answer) = router
        .post_events(r#"{"type": "doomed", "id": "d1"}"#)
        .await;
    assert_eq!(code, 202, "{answer}");
    router
        .status_until("the first attempt to fail", |s| {
            s["sinks"]["f"]["retried"] == 1
        })
        .await;
    let config = router.dir.path().join("router.yaml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace("max_attempts: 5", "max_attempts: 1"))
        .expect("lower max_attempts");
    let status = router
        .status_until("the message in backoff to become a dead letter", |s| {
            s["sinks"]["f"]["dead_letters"] == 1
        })
        .await;
    let letter = &status["sinks"]["f"]["recent_dead_letters"][0];
    assert_eq!(letter["id"], "d1:f", "{status}");
    assert_eq!(letter["attempts"], 1, "{status}");
    assert!(
        letter["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("gave up after 1 failed attempts: flaky asks to retry message d1:f"),
        "{status}"
    );
    assert_eq!(status["sinks"]["f"]["queued"], 0, "{status}");
    let attempts = read_json_lines(&router.dir.path().join("attempts.jsonl"));
    assert_eq!(
        attempts.len(),
        1,
        "no attempt after the reload: {attempts:?}"
    );
}

#[tokio::test]
async fn two_quick_reloads_during_a_delivery_keep_the_first_ones_new_settings() {
    let router = Router::start(
        r#"plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  w:
    plugin: flaky
    settings: {path: "{dir}/one.jsonl"}
"#,
        &[
            ("rules/main.yaml", "routes:\n  - name: main\n    to: [w]\n"),
            ("templates/flaky/default.yaml", "hold_until: \"{dir}/go\"\n"),
        ],
    )
    .await;
    let (one, two) = (
        router.dir.path().join("one.jsonl"),
        router.dir.path().join("two.jsonl"),
    );
    assert_eq!(
        router
            .post_events(r#"{"type": "first", "id": "e1"}"#)
            .await
            .0,
        202
    );
    eventually(WAIT, "the first delivery to be under way", || {
        (read_json_lines(&one).len() == 1).then_some(())
    })
    .await;
    // While the plugin holds it: new settings (a new instance), then only a new retry
    // policy, each reloaded before the next.
    let config = router.dir.path().join("router.yaml");
    let client = reqwest::Client::new();
    let text = std::fs::read_to_string(&config).expect("config");
    let edits = [
        text.replace("one.jsonl", "two.jsonl"),
        text.replace("one.jsonl", "two.jsonl").replace(
            "    plugin: flaky\n",
            "    plugin: flaky\n    retry: {max_attempts: 3}\n",
        ),
    ];
    for edit in edits {
        std::fs::write(&config, edit).expect("edit the config");
        let answer = client
            .post(format!("{}/v1/reload", router.url))
            .send()
            .await
            .expect("reload");
        assert_eq!(answer.status().as_u16(), 200);
    }
    std::fs::write(router.dir.path().join("go"), "").expect("let the delivery finish");
    assert_eq!(
        router
            .post_events(r#"{"type": "second", "id": "e2"}"#)
            .await
            .0,
        202
    );
    let lines = eventually(WAIT, "the second message", || {
        let lines = read_json_lines(&two);
        (!lines.is_empty()).then_some(lines)
    })
    .await;
    assert_eq!(
        lines[0]["id"], "e2:w",
        "the new instance delivers it: {lines:?}"
    );
    let old: Vec<Value> = read_json_lines(&one);
    assert_eq!(old.len(), 1, "the old instance only had the first: {old:?}");
}

#[tokio::test]
async fn a_trace_log_written_into_the_config_directory_is_no_loop() {
    // The harness writes the router's stderr to stderr.log in the config's directory,
    // which the file watcher watches: at trace level each line it logged about a file
    // event was a file event again.
    let dir = dir_with(&[
        ("router.yaml", &two_consoles()),
        ("rules/main.yaml", TO_A),
        ("templates/console/default.yaml", TEXT),
    ]);
    let router = alert_router_tests::harness::Router::start_in_with_env(
        dir,
        &[("ALERT_ROUTER_LOG", "trace")],
    )
    .await;
    assert_eq!(router.post_events(r#"{"type": "x"}"#).await.0, 202);
    let status = router.get_json("/v1/status").await;
    assert_eq!(status["config"]["reloads"]["succeeded"], 0, "{status}");
    let log = std::fs::metadata(router.dir.path().join("stderr.log")).map(|m| m.len());
    assert!(
        log.as_ref().is_ok_and(|&len| len < 20 << 20),
        "the log stays small: {log:?} bytes"
    );
}
