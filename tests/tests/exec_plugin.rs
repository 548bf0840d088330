//! The exec sink through the real router: the program reads the rendered message on its
//! stdin, and its exit status is the delivery's outcome.

use std::time::Duration;

use alert_router_tests::harness::{Router, dir_with, eventually, run_cli, run_refused};

fn config(command: &str) -> String {
    format!(
        "plugins: {{dirs: [\"{{plugins}}\"]}}\nrules: rules\ntemplates: templates\nsinks:\n  run:\n    plugin: exec\n    retry: {{initial_backoff: 10ms, max_backoff: 10ms}}\n    settings:\n      command: {command}\n"
    )
}

const ROUTES: (&str, &str) = ("rules/a.yaml", "routes:\n  - name: all\n    to: [run]\n");

/// The shipped default template, so the test reads what an operator's program reads.
fn default_template() -> (&'static str, &'static str) {
    (
        "templates/exec/default.yaml",
        include_str!("../../templates/exec/default.yaml"),
    )
}

#[tokio::test]
async fn the_program_reads_the_message_and_a_retry_then_delivers() {
    // Asks to be tried again on its first run (exit 75), takes the message on the second.
    let script = r#"[sh, -c, "if [ ! -e {dir}/tried ]; then touch {dir}/tried; echo 'busy, later' >&2; exit 75; fi; cat > {dir}/got.json; echo $ALERT_ROUTER_ATTEMPT > {dir}/attempt"]"#;
    let router = Router::start(&config(script), &[ROUTES, default_template()]).await;
    let body = r#"{"type": "trade_opened", "id": "x1", "symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "quantity": 0.5}"#;
    assert_eq!(router.post_events(body).await.0, 202);
    let got = eventually(Duration::from_secs(20), "the program's copy", || {
        let text = std::fs::read_to_string(router.dir.path().join("got.json")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()
    })
    .await;
    assert_eq!(got["text"], "trade_opened (info) BTC/USDT");
    assert_eq!(got["event"]["symbol"], "BTC/USDT");
    assert_eq!(got["sink"], "run");
    let attempt = std::fs::read_to_string(router.dir.path().join("attempt")).expect("attempt");
    assert_eq!(attempt.trim(), "2");
    let status = router
        .status_until("the delivery counted", |s| s["sinks"]["run"]["sent"] == 1)
        .await;
    assert_eq!(status["sinks"]["run"]["retried"], 1, "{status}");
}

#[tokio::test]
async fn a_failing_program_dead_letters_with_its_stderr_and_a_missing_one_does_not_start() {
    let script = r#"[sh, -c, "echo 'no such channel: #ops' >&2; exit 2"]"#;
    let router = Router::start(&config(script), &[ROUTES, default_template()]).await;
    assert_eq!(router.post_events(r#"{"type": "x"}"#).await.0, 202);
    let status = router
        .status_until("the dead letter", |s| {
            s["sinks"]["run"]["dead_letters"] == 1
        })
        .await;
    let error = status["sinks"]["run"]["recent_dead_letters"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("exited with status 2: no such channel: #ops"),
        "{status}"
    );

    // A program that is not there: a config error, which `check` finds and startup
    // refuses, at the settings' place.
    let dir = dir_with(&[
        ("router.yaml", &config("[no-such-program-anywhere]")),
        ROUTES,
        default_template(),
    ]);
    let refusal = "router.yaml:9:16: sinks.run.settings: plugin `exec` refused them: settings.command: no-such-program-anywhere is not on PATH";
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.starts_with(refusal), "{stdout}");
    let (code, stderr) = run_refused(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(refusal), "{stderr}");
}

#[tokio::test]
async fn a_python_sink_too_slow_once_is_killed_at_its_timeout_and_tried_again() {
    // A sink as an operator writes one: a few lines of Python reading the message on
    // stdin. Its first run hangs past the sink's timeout.
    let script = r#"import json, os, sys, time
message = json.load(sys.stdin)
if not os.path.exists("{dir}/tried"):
    open("{dir}/tried", "w").close()
    time.sleep(60)
with open("{dir}/got.json", "w") as out:
    json.dump({"attempt": os.environ["ALERT_ROUTER_ATTEMPT"], "text": message["text"]}, out)
"#;
    let config = config("[python3, \"{dir}/sink.py\"]")
        .replace("    settings:\n", "    settings:\n      timeout: 1s\n");
    let router = Router::start(&config, &[ROUTES, default_template(), ("sink.py", script)]).await;
    let body = r#"{"type": "trade_opened", "id": "slow1", "symbol": "ETH/USDT", "side": "BUY", "entry_price": 2500, "quantity": 1}"#;
    assert_eq!(router.post_events(body).await.0, 202);
    let got = eventually(Duration::from_secs(20), "the second run's copy", || {
        let text = std::fs::read_to_string(router.dir.path().join("got.json")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()
    })
    .await;
    assert_eq!(got["attempt"], "2", "{got}");
    assert_eq!(got["text"], "trade_opened (info) ETH/USDT");
    let status = router
        .status_until("the delivery counted", |s| s["sinks"]["run"]["sent"] == 1)
        .await;
    assert_eq!(status["sinks"]["run"]["retried"], 1, "{status}");
    let error = status["sinks"]["run"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.ends_with("ran longer than its timeout (1 s) and was killed"),
        "the timeout is the reason: {status}"
    );
}
