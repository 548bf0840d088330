//! End to end: what an operator meets. Config mistakes found by `check` with their
//! places, broken plugins that do not stop the others, authentication, body limits,
//! backpressure, metrics, and a graceful stop.

use std::time::Duration;

use alert_router_tests::harness::{
    Router, dir_with, eventually, plugin_dir, read_json_lines, run_cli,
};
use serde_json::{Value, json};

const TEXT_TEMPLATE: &str = "text: \"{{ event.type }}\"\n";
const ALL_TO_CONSOLE: &str = "routes:\n  - name: all\n    to: [console]\n";

fn config(extra: &str) -> String {
    format!(
        r#"plugins: {{dirs: ["{{plugins}}", "{{dir}}/more-plugins"]}}
rules: rules
templates: templates
{extra}sinks:
  console:
    plugin: console
    settings: {{path: "{{dir}}/out.jsonl", format: json}}
"#
    )
}

#[test]
fn check_reports_every_mistake_with_its_place() {
    let dir = dir_with(&[
        ("router.yaml", &config("")),
        (
            "rules/a.yaml",
            "routes:\n  - name: typo\n    to: [consol]\n  - name: bad-when\n    match: {when: \"event.pnl_pct <\"}\n    to: [console]\n",
        ),
        (
            "templates/console/default.yaml",
            "text: \"{{ event.type \"\n",
        ),
    ]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    // Paths as the config names them, relative to where the command ran.
    assert!(
        stdout.contains("rules/a.yaml:3:10: route `typo`: unknown sink `consol`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rules/a.yaml:5:19: route `bad-when`: when: syntax error"),
        "{stdout}"
    );
    assert!(
        stdout.contains("templates/console/default.yaml:1:17: syntax error: unexpected end of input, expected end of variable block"),
        "{stdout}"
    );

    let dir = dir_with(&[
        ("router.yaml", &config("")),
        ("rules/a.yaml", ALL_TO_CONSOLE),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
    ]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: 1 sink(s), 1 route(s)"), "{stdout}");
}

#[test]
fn check_names_a_missing_environment_variable_and_a_missing_plugin() {
    let dir = dir_with(&[
        (
            "router.yaml",
            &format!("server:\n  token: ${{NO_SUCH_TOKEN_VAR}}\n{}", config("")),
        ),
        ("rules/a.yaml", ALL_TO_CONSOLE),
    ]);
    let (code, stdout, _) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("router.yaml:2:10: environment variable NO_SUCH_TOKEN_VAR is not set"),
        "{stdout}"
    );

    let with_ghost = config("").replace("sinks:\n", "sinks:\n  ghost:\n    plugin: ghost\n");
    let dir = dir_with(&[
        ("router.yaml", &with_ghost),
        ("rules/a.yaml", ALL_TO_CONSOLE),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
    ]);
    let (code, stdout, _) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("router.yaml:6:5: sink `ghost`: plugin `ghost` not found"),
        "{stdout}"
    );
    assert!(
        stdout.contains("libghost.so"),
        "says which file it looked for: {stdout}"
    );
    assert!(
        stdout.contains("more-plugins"),
        "lists where it looked: {stdout}"
    );
}

#[tokio::test]
async fn broken_plugins_do_not_stop_the_other_sinks() {
    // A plugin that is missing, a file that is not a library, a library built for another
    // ABI version and half a library (a copy caught midway, which mapped would be a
    // SIGBUS): each sink fails to start with its reason; the console works.
    let sinks = "sinks:\n  ghost:\n    plugin: ghost\n  junk:\n    plugin: junk\n  old:\n    plugin: ctest\n  half:\n    plugin: half\n";
    let dir = dir_with(&[
        ("router.yaml", &config("").replace("sinks:\n", sinks)),
        (
            "rules/a.yaml",
            "routes:\n  - name: all\n    to: [ghost, junk, old, half, console]\n",
        ),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
        ("more-plugins/libjunk.so", "this is not a shared library\n"),
    ]);
    let abi2 = std::path::Path::new(env!("AR_TEST_C_PLUGIN_ABI2_DIR")).join("libctest.so");
    std::fs::copy(&abi2, dir.path().join("more-plugins/libctest.so"))
        .expect("copy the ABI 2 plugin");
    let console = std::fs::read(plugin_dir().join("libconsole.so")).expect("the console plugin");
    std::fs::write(
        dir.path().join("more-plugins/libhalf.so"),
        &console[..console.len() / 2],
    )
    .expect("write half a plugin");
    // `check` says so too, and lives to say it.
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("libhalf.so") && stdout.contains("is it still being copied?"),
        "{stdout}"
    );
    let router = Router::start_in(dir).await;
    assert_eq!(router.post_events(r#"{"type": "still-here"}"#).await.0, 202);
    let lines = eventually(Duration::from_secs(20), "the console delivery", || {
        let lines = read_json_lines(&router.dir.path().join("out.jsonl"));
        (!lines.is_empty()).then_some(lines)
    })
    .await;
    assert_eq!(lines[0]["event"]["type"], "still-here");
    let status = router.get_json("/v1/status").await;
    let reason = |sink: &str| {
        status["sinks"][sink]["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(reason("ghost").contains("libghost.so"), "{status}");
    assert!(reason("junk").contains("not a shared library"), "{status}");
    assert!(reason("old").contains("ABI 2"), "{status}");
    assert!(
        reason("half").contains("the file is incomplete"),
        "{status}"
    );
    for sink in ["ghost", "junk", "old", "half"] {
        assert_eq!(status["sinks"][sink]["started"], false, "{status}");
        assert_eq!(
            status["sinks"][sink]["dead_letters"], 1,
            "what was routed to {sink} is dead-lettered, not lost: {status}"
        );
    }
    assert!(
        router.stderr().contains("sink `junk` did not start"),
        "{}",
        router.stderr()
    );
}

/// Like sshd's StrictModes: a plugin file others could have written is not loaded (its
/// code would run as the router's user), and the error says how to fix the mode;
/// `plugins.strict_modes: false` loads it with a warning.
#[test]
fn a_plugin_file_others_can_write_is_refused_unless_strict_modes_is_off() {
    use std::os::unix::fs::PermissionsExt;
    let console_to = |sink: &str| {
        config("").replace(
            "  console:\n    plugin: console\n",
            &format!("  console:\n    plugin: {sink}\n"),
        )
    };
    let dir = dir_with(&[
        ("router.yaml", &console_to("open")),
        ("rules/a.yaml", ALL_TO_CONSOLE),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
    ]);
    let open = dir.path().join("more-plugins/libopen.so");
    std::fs::create_dir_all(dir.path().join("more-plugins")).expect("the plugin directory");
    std::fs::copy(plugin_dir().join("libconsole.so"), &open).expect("copy the console plugin");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("writable by anyone (mode 0666)")
            && stdout.contains(&format!("chmod go-w {}", open.display())),
        "{stdout}"
    );

    let yaml = dir.path().join("router.yaml");
    let written = std::fs::read_to_string(&yaml).expect("the config");
    std::fs::write(
        &yaml,
        written.replace("plugins: {dirs:", "plugins: {strict_modes: false, dirs:"),
    )
    .expect("write the config");
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("loading a plugin file others could have written"),
        "{stderr}"
    );
}

/// The running router copies plugin files under its own storage, not the shared TMPDIR:
/// a copy an earlier run left (killed between the copy and its removal) is removed at
/// start, and a loaded plugin leaves no copy behind.
#[tokio::test]
async fn plugin_copies_live_under_storage_and_leftovers_are_removed_at_start() {
    let dir = dir_with(&[
        ("router.yaml", &config("")),
        ("rules/a.yaml", ALL_TO_CONSOLE),
        ("templates/console/default.yaml", TEXT_TEMPLATE),
        (
            "data/plugin-copies/alert-router-plugin-99999-0/libconsole.so",
            "left by a crash\n",
        ),
    ]);
    let copies = dir.path().join("data/plugin-copies");
    let router = Router::start_in(dir).await;
    assert_eq!(router.post_events(r#"{"type": "x"}"#).await.0, 202);
    eventually(Duration::from_secs(20), "the console delivery", || {
        let lines = read_json_lines(&router.dir.path().join("out.jsonl"));
        (!lines.is_empty()).then_some(())
    })
    .await;
    let left: Vec<_> = std::fs::read_dir(&copies)
        .expect("the copies directory is under storage.path")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", copies.display());
}

#[tokio::test]
async fn the_token_guards_the_api_but_not_healthz() {
    let router = Router::start(
        &config("server: {token: s3cret-t0ken}\n"),
        &[
            ("rules/a.yaml", ALL_TO_CONSOLE),
            ("templates/console/default.yaml", TEXT_TEMPLATE),
        ],
    )
    .await;
    let (status, answer) = router.post_events(r#"{"type": "x"}"#).await;
    assert_eq!(status, 401, "{answer}");
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/v1/events", router.url))
        .bearer_auth("s3cret-t0ken")
        .body(r#"{"type": "x"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 202);
    assert_eq!(router.get_text("/healthz").await, "ok\n");
    let status = client
        .get(format!("{}/v1/status", router.url))
        .bearer_auth("s3cret-t0ken")
        .send()
        .await
        .expect("status");
    let text = status.text().await.unwrap_or_default();
    assert!(
        !text.contains("s3cret-t0ken"),
        "the token never appears in status: {text}"
    );
    assert!(!router.stderr().contains("s3cret-t0ken"), "nor in the log");
}

#[tokio::test]
async fn limits_backpressure_and_metrics() {
    let router = Router::start(
        &config("server: {max_body: 1KiB}\n").replace(
            "    plugin: console\n",
            "    plugin: console\n    max_queue: 5\n    rate_limit: {rate: 1/min, burst: 1}\n",
        ),
        &[
            ("rules/a.yaml", ALL_TO_CONSOLE),
            ("templates/console/default.yaml", TEXT_TEMPLATE),
        ],
    )
    .await;
    let big = json!({"type": "big", "blob": "x".repeat(2000)}).to_string();
    assert_eq!(router.post_events(big).await.0, 413);
    // One goes out at once; the rate limit holds the rest. Five fit in the queue.
    let five: Vec<Value> = (0..5).map(|i| json!({"type": "q", "n": i})).collect();
    assert_eq!(
        router.post_events(Value::Array(five).to_string()).await.0,
        202
    );
    let (status, answer) = router
        .post_events(r#"[{"type": "q", "n": 5}, {"type": "q", "n": 6}]"#)
        .await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("console"),
        "{answer}"
    );
    router
        .status_until("the first one delivered", |s| {
            s["sinks"]["console"]["sent"] == 1
        })
        .await;
    let metrics = router.get_text("/metrics").await;
    assert!(
        metrics.contains("alert_router_events_total{type=\"q\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alert_router_queue_depth{sink=\"console\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alert_router_delivered_total{sink=\"console\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE alert_router_delivery_latency_seconds histogram"),
        "{metrics}"
    );
}

#[tokio::test]
async fn sigterm_drains_the_queues_before_stopping() {
    let mut router = Router::start(
        &config("").replace(
            "    plugin: console\n",
            "    plugin: console\n    rate_limit: {rate: 20/s, burst: 1}\n",
        ),
        &[
            ("rules/a.yaml", ALL_TO_CONSOLE),
            ("templates/console/default.yaml", TEXT_TEMPLATE),
        ],
    )
    .await;
    let batch: Vec<Value> = (0..20).map(|i| json!({"type": "drain", "n": i})).collect();
    assert_eq!(
        router.post_events(Value::Array(batch).to_string()).await.0,
        202
    );
    assert!(
        router.terminate(),
        "the router exits 0 on SIGTERM: {}",
        router.stderr()
    );
    let lines = read_json_lines(&router.dir.path().join("out.jsonl"));
    assert_eq!(
        lines.len(),
        20,
        "everything queued was delivered before the exit"
    );
    let _ = eventually(Duration::from_secs(1), "", || Some(())).await;
}

/// A plugin that hangs inside `deliver` cannot hold the router's stop: past the drain
/// (and a second) the worker is left behind, the router exits 0, and the message it was
/// delivering is still in the outbox at the next start.
#[tokio::test]
async fn a_plugin_stuck_in_deliver_does_not_hold_the_stop() {
    let dir = dir_with(&[
        (
            "router.yaml",
            "plugins: {dirs: [\"{plugins}\"]}\nrules: rules\ntemplates: templates\nsinks:\n  stuck:\n    plugin: flaky\n    settings: {path: \"{dir}/attempts.jsonl\"}\n",
        ),
        ("rules/a.yaml", "routes:\n  - name: all\n    to: [stuck]\n"),
        // Each attempt waits (up to a minute) for a file that appears only at the end.
        (
            "templates/stuck/default.yaml",
            "hold_until: \"{dir}/release\"\n",
        ),
    ]);
    let mut router = Router::start_in_with_env(dir, &[("ALERT_ROUTER_DRAIN", "1s")]).await;
    assert_eq!(
        router.post_events(r#"{"type": "x", "id": "h1"}"#).await.0,
        202
    );
    let attempts = router.dir.path().join("attempts.jsonl");
    eventually(Duration::from_secs(20), "the attempt under way", || {
        (!read_json_lines(&attempts).is_empty()).then_some(())
    })
    .await;
    // The hold lasts a minute; `terminate` gives up after 30 s.
    assert!(router.terminate(), "{}", router.stderr());
    assert!(
        router
            .stderr()
            .contains("the plugin is still inside deliver after the drain; leaving it"),
        "{}",
        router.stderr()
    );
    std::fs::write(router.dir.path().join("release"), "").expect("release the hold");
    router.restart().await;
    let lines = eventually(Duration::from_secs(20), "the second attempt", || {
        let lines = read_json_lines(&attempts);
        (lines.len() >= 2).then_some(lines)
    })
    .await;
    assert_eq!(lines[1]["id"], "h1:stuck");
    assert_eq!(lines[1]["outcome"], "ok", "{:?}", lines[1]);
}

#[tokio::test]
async fn a_template_error_dead_letters_the_message_with_its_place_and_the_router_goes_on() {
    let router = Router::start(
        &config(""),
        &[
            ("rules/a.yaml", ALL_TO_CONSOLE),
            ("templates/console/default.yaml", TEXT_TEMPLATE),
            (
                "templates/console/needs_symbol.yaml",
                "text: |\n  Symbol: {{ event.symbol }}\n",
            ),
        ],
    )
    .await;
    let (status, _) = router
        .post_events(r#"{"type": "needs_symbol", "price": 1}"#)
        .await;
    assert_eq!(
        status, 202,
        "the event itself is fine: a template problem is the operator's"
    );
    let status = router
        .status_until("the render error", |s| {
            s["sinks"]["console"]["render_errors"] == 1
        })
        .await;
    let error = status["sinks"]["console"]["recent_dead_letters"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("templates/console/needs_symbol.yaml:2:14")
            && error.contains("event.symbol"),
        "the dead letter says where and what: {error}"
    );
    assert_eq!(router.post_events(r#"{"type": "fine"}"#).await.0, 202);
    let lines = eventually(Duration::from_secs(20), "the next event", || {
        let lines = read_json_lines(&router.dir.path().join("out.jsonl"));
        (!lines.is_empty()).then_some(lines)
    })
    .await;
    assert_eq!(lines[0]["event"]["type"], "fine");
}

#[test]
fn plugins_lists_name_version_abi_and_file() {
    // A plugin directory of its own (cargo's deps directory also holds proc-macro libraries).
    let dir = dir_with(&[("router.yaml", "plugins: {dirs: [\"{dir}/p\"]}\n")]);
    std::fs::create_dir_all(dir.path().join("p")).expect("plugin dir");
    for lib in ["libconsole.so", "libflaky.so"] {
        std::fs::copy(
            alert_router_tests::harness::plugin_dir().join(lib),
            dir.path().join("p").join(lib),
        )
        .expect("copy a plugin");
    }
    let (code, stdout, stderr) = run_cli(dir.path(), &["plugins"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let console = stdout
        .lines()
        .find(|l| l.starts_with("console "))
        .unwrap_or_else(|| panic!("no console line in:\n{stdout}"));
    assert!(
        console.contains(env!("CARGO_PKG_VERSION"))
            && console.contains("abi 1")
            && console.contains("libconsole.so"),
        "{console}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("flaky ")), "{stdout}");
}

#[tokio::test]
async fn every_retry_is_logged_with_its_reason_and_when_the_next_attempt_is() {
    let sinks = r#"sinks:
  failing:
    plugin: flaky
    retry: {max_attempts: 3, initial_backoff: 10ms, max_backoff: 10ms}
  pausing:
    plugin: flaky
"#;
    let router = Router::start(
        &format!(
            "plugins: {{dirs: [\"{{plugins}}\"]}}\nrules: rules\ntemplates: templates\n{sinks}"
        ),
        &[
            (
                "rules/a.yaml",
                "routes:\n  - name: all\n    to: [failing, pausing]\n",
            ),
            // Fails twice, then goes through.
            (
                "templates/failing/default.yaml",
                "behave: retry\ntimes: 2\n",
            ),
            // Asks once to wait 50 ms, as a 429 would.
            (
                "templates/pausing/default.yaml",
                "retry_after_ms: 50\ntimes: 1\n",
            ),
        ],
    )
    .await;
    assert_eq!(
        router.post_events(r#"{"type": "x", "id": "r1"}"#).await.0,
        202
    );
    router
        .status_until("both delivered after their retries", |s| {
            s["sinks"]["failing"]["sent"] == 1 && s["sinks"]["pausing"]["sent"] == 1
        })
        .await;
    let stderr = router.stderr();
    let line = |needles: &[&str]| {
        stderr
            .lines()
            .find(|l| l.contains(" INFO ") && needles.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no INFO line with {needles:?} in:\n{stderr}"))
            .to_owned()
    };
    for n in 1..=2 {
        let said = line(&[
            &format!("attempt {n} of 3 failed; retrying in "),
            "sink=failing",
            "message_id=r1:failing",
            "reason=flaky asks to retry message r1:failing as asked",
        ]);
        // The delay: 10 ms with jitter, shown in seconds.
        assert!(said.contains("retrying in 0.0"), "{said}");
    }
    line(&[
        "the upstream asked to wait: the sink pauses and retries in 0.05s (wait 1 of at most 100; 0 of 10 attempts failed)",
        "sink=pausing",
        "message_id=r1:pausing",
        "reason=flaky asks to retry message r1:pausing after 50 ms",
    ]);
}

/// An upstream that says "later" to every attempt uses up no attempt, but it cannot hold
/// the sink forever: past `retry.max_waits` the message is a dead letter that says why,
/// and the sink goes on to the next one.
#[tokio::test]
async fn retry_after_answers_are_bounded_by_max_waits() {
    let router = Router::start(
        "plugins: {dirs: [\"{plugins}\"]}\nrules: rules\ntemplates: templates\nsinks:\n  stubborn:\n    plugin: flaky\n    retry: {max_attempts: 2, max_waits: 3}\n",
        &[
            ("rules/a.yaml", "routes:\n  - name: all\n    to: [stubborn]\n"),
            // Every attempt at every message asks to wait 1 ms, as a 429 would.
            ("templates/stubborn/default.yaml", "retry_after_ms: 1\n"),
        ],
    )
    .await;
    for id in ["w1", "w2"] {
        let body = format!(r#"{{"type": "x", "id": "{id}"}}"#);
        assert_eq!(router.post_events(body).await.0, 202);
    }
    let status = router
        .status_until("both messages dead-lettered", |s| {
            s["sinks"]["stubborn"]["dead_letters"] == 2
        })
        .await;
    let sink = &status["sinks"]["stubborn"];
    assert_eq!(sink["sent"], 0);
    let letters = router.get_json("/v1/dead-letters?sink=stubborn").await;
    let first = letters["dead_letters"]
        .as_array()
        .and_then(|l| l.iter().find(|d| d["id"] == "w1:stubborn"))
        .unwrap_or_else(|| panic!("no dead letter w1:stubborn in {letters}"));
    // Three waits allowed; the fourth answer ends it. No attempt counted as failed.
    assert_eq!(first["attempts"], 4, "{first}");
    let error = first["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("the upstream asked to wait 4 times, more than retry.max_waits (3); last: flaky asks to retry message w1:stubborn after 1 ms"),
        "{error}"
    );
}

/// `ALERT_ROUTER_LOG=debug` follows one event: its span (id, type) from routing through
/// rendering to the outbox write, then one span per delivery attempt (sink, message id,
/// event id, attempt) with how each ended.
#[tokio::test]
async fn debug_logging_follows_one_event_from_ingest_to_each_delivery_attempt() {
    let dir = dir_with(&[
        (
            "router.yaml",
            "plugins: {dirs: [\"{plugins}\"]}\nrules: rules\ntemplates: templates\nsinks:\n  failing:\n    plugin: flaky\n    retry: {max_attempts: 3, initial_backoff: 10ms, max_backoff: 10ms}\n",
        ),
        (
            "rules/a.yaml",
            "routes:\n  - name: all\n    to: [failing]\n",
        ),
        // Fails once, then goes through.
        (
            "templates/failing/default.yaml",
            "behave: retry\ntimes: 1\n",
        ),
    ]);
    let router = Router::start_in_with_env(dir, &[("ALERT_ROUTER_LOG", "debug")]).await;
    assert_eq!(
        router
            .post_events(r#"{"type": "order_failed", "id": "trace-1"}"#)
            .await
            .0,
        202
    );
    router
        .status_until("delivered on the second attempt", |s| {
            s["sinks"]["failing"]["sent"] == 1
        })
        .await;
    let stderr = router.stderr();
    let line = |needles: &[&str]| {
        stderr
            .lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no line with {needles:?} in:\n{stderr}"))
            .to_owned()
    };
    let event = "event{id=trace-1 type=order_failed}";
    line(&[event, "rendered for the sink", "route=all", "sink=failing"]);
    line(&[event, "stored in the outbox"]);
    let attempt = |n: u32| {
        format!("delivery{{sink=failing message_id=trace-1:failing event_id=trace-1 attempt={n}}}")
    };
    line(&[&attempt(1), "attempt 1 of 3 failed; retrying in "]);
    line(&[&attempt(2), "delivered"]);
}
