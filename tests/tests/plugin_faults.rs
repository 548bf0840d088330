//! A bad plugin never takes the router down for good: the C test plugin (tests/c) made to
//! segfault, abort, exit, hang or ask to wait forever on one message, beside a sink that
//! works. The router is restarted by the test as a supervisor would; the crashing message
//! becomes a dead letter after `max_crashes`, every other message is delivered.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use alert_router_tests::harness::{Router, eventually, read_json_lines};
use serde_json::{Value, json};

/// Sink `bad` is the C plugin (with `retry_extra` in its retry policy and `bad_extra`
/// lines), `good` the console plugin writing JSON lines.
fn config(retry_extra: &str, bad_extra: &str) -> String {
    let c_dir = env!("AR_TEST_C_PLUGIN_DIR");
    format!(
        r#"plugins: {{dirs: ["{{plugins}}", "{c_dir}"]}}
storage: {{path: data}}
rules: rules
templates: templates
sinks:
  bad:
    plugin: ctest
    retry: {{initial_backoff: 10ms, max_backoff: 10ms{retry_extra}}}
{bad_extra}
    settings: {{path: "{{dir}}/bad.log"}}
  good:
    plugin: console
    settings: {{path: "{{dir}}/good.jsonl", format: json}}
"#
    )
}

fn files() -> [(&'static str, &'static str); 3] {
    [
        (
            "rules/a.yaml",
            "routes:\n  - name: jobs\n    match: {type: job}\n    to: [bad, good]\n",
        ),
        (
            "templates/ctest/default.yaml",
            "text: \"{{ event.message }}\"\n",
        ),
        (
            "templates/console/default.yaml",
            include_str!("../../templates/console/default.yaml"),
        ),
    ]
}

const SIGSEGV: i32 = 11;

/// The C plugin is not beside the router's executable, so by default it would run in a
/// process of its own.
const IN_PROCESS: &str = "    isolation: in-process";

fn job(id: &str, message: &str) -> String {
    json!({"type": "job", "id": id, "message": message}).to_string()
}

/// What `bad` was handed, per event id: the attempt numbers, in order.
fn attempts_at(dir: &Path, id: &str) -> Vec<u64> {
    std::fs::read_to_string(dir.join("bad.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["event"]["id"] == id)
        .filter_map(|m| m["attempt"].as_u64())
        .collect()
}

fn good_ids(dir: &Path) -> Vec<String> {
    read_json_lines(&dir.join("good.jsonl"))
        .iter()
        .filter_map(|l| l["event"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// Posts a batch that will crash the router. The `202` is sent after the batch is
/// committed, and the worker may deliver (and crash the router) before the answer is
/// written: a cut connection here is the crash, and the batch was taken.
async fn post_before_the_crash(router: &Router, batch: String) {
    let sent = reqwest::Client::new()
        .post(format!("{}/v1/events", router.url))
        .header("content-type", "application/json")
        .body(batch)
        .send()
        .await;
    if let Ok(resp) = sent {
        assert_eq!(resp.status().as_u16(), 202);
    }
}

/// The error of the newest dead letter of sink `bad` in a `/v1/status` answer.
fn bad_dead_letter(status: &Value) -> &str {
    status["sinks"]["bad"]["recent_dead_letters"][0]["error"]
        .as_str()
        .unwrap_or_default()
}

/// Polls the router's status until `pred` holds (`Ok`), or the router exits (`Err`).
async fn status_or_exit(
    router: &mut Router,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value, ExitStatus> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = Value::Null;
    loop {
        if let Some(status) = router.exit_within(Duration::ZERO).await {
            return Err(status);
        }
        if let Ok(resp) = client.get(format!("{}/v1/status", router.url)).send().await
            && let Ok(status) = resp.json::<Value>().await
        {
            if pred(&status) {
                return Ok(status);
            }
            last = status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last status: {last}\n{}",
            router.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Restarts the router after each death until it stays up with the crashing message
/// dead-lettered; returns how the runs that died ended and the final status.
async fn supervise(router: &mut Router) -> (Vec<ExitStatus>, Value) {
    let mut deaths = Vec::new();
    loop {
        match status_or_exit(router, "the dead letter", |s| {
            s["sinks"]["bad"]["dead_letters"] == 1
        })
        .await
        {
            Ok(status) => return (deaths, status),
            Err(died) => {
                deaths.push(died);
                assert!(
                    deaths.len() <= 3,
                    "a crash loop: the router died {} times: {deaths:?}\n{}",
                    deaths.len(),
                    router.stderr()
                );
                while let Err(died) = router.try_restart().await {
                    deaths.push(died);
                    assert!(deaths.len() <= 3, "a crash loop at start: {deaths:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_plugin_that_segfaults_on_one_message_is_dead_lettered_after_two_crashes() {
    let mut router = Router::start(&config("", IN_PROCESS), &files()).await;
    // One batch: the router dies as soon as it delivers `boom`.
    let batch =
        [("ok-1", "fine"), ("boom", "segfault"), ("ok-2", "fine")].map(|(id, m)| job(id, m));
    assert_eq!(
        router.post_events(format!("[{}]", batch.join(","))).await.0,
        202
    );
    let (deaths, status) = supervise(&mut router).await;
    let signals: Vec<Option<i32>> = deaths.iter().map(ExitStatus::signal).collect();
    assert_eq!(
        signals,
        [Some(SIGSEGV), Some(SIGSEGV)],
        "the router died of the plugin's SIGSEGV twice (max_crashes: 2), then stayed up"
    );
    let dir = router.dir.path().to_owned();
    // The redelivery after a crash carries the next attempt number.
    assert_eq!(attempts_at(&dir, "boom"), [1, 2]);
    let letter = &status["sinks"]["bad"]["recent_dead_letters"][0];
    let error = letter["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("gave up after 2 attempts that ended in a crash (retry.max_crashes is 2)")
            && error.contains("the plugin crashed with SIGSEGV (signal 11) during attempt 2"),
        "{letter}"
    );
    // Each crash said so on stderr, with the sink, before the process died.
    let first_run = std::fs::read_to_string(dir.join("stderr.1.log")).unwrap_or_default();
    assert!(
        first_run.contains("the plugin of sink `bad` crashed with SIGSEGV while delivering"),
        "{first_run}"
    );
    // Everything else reaches both sinks: `ok-2` waited behind `boom`.
    let ok2 = router
        .status_until("ok-2 delivered by both", |s| {
            s["sinks"]["bad"]["sent"].as_u64() >= Some(1) && s["outbox"]["queued"] == 0
        })
        .await;
    assert_eq!(ok2["sinks"]["bad"]["dead_letters"], 1, "{ok2}");
    assert_eq!(attempts_at(&dir, "ok-2"), [1]);
    let mut good = good_ids(&dir);
    good.sort();
    good.dedup();
    assert_eq!(
        good,
        ["boom", "ok-1", "ok-2"],
        "the console sink got everything"
    );
}

#[tokio::test]
async fn an_abort_or_an_exit_inside_deliver_ends_in_a_dead_letter_too() {
    for (fault, signal) in [("abort", Some(6)), ("exit", None)] {
        let mut router = Router::start(&config("", IN_PROCESS), &files()).await;
        let batch = format!("[{},{}]", job("boom", fault), job("after", "fine"));
        post_before_the_crash(&router, batch).await;
        let (deaths, status) = supervise(&mut router).await;
        assert_eq!(deaths.len(), 2, "{fault}: {deaths:?}");
        for died in &deaths {
            assert_eq!(died.signal(), signal, "{fault}: {died:?}");
        }
        let error = bad_dead_letter(&status).to_owned();
        let expected = match fault {
            "abort" => "the plugin crashed with SIGABRT (signal 6)",
            // exit() runs no signal handler: the death is not attributed, and counts.
            _ => "the router died during attempt 2 without a clean stop",
        };
        assert!(error.contains(expected), "{fault}: {error}");
        let dir = router.dir.path().to_owned();
        router
            .status_until("the message after it delivered", |_| {
                attempts_at(&dir, "after") == [1]
            })
            .await;
    }
}

#[tokio::test]
async fn a_plugin_that_always_asks_to_wait_is_bounded_by_max_waits() {
    let mut router = Router::start(&config(", max_waits: 3", IN_PROCESS), &files()).await;
    assert_eq!(
        router.post_events(job("later", "wait-forever")).await.0,
        202
    );
    assert_eq!(router.post_events(job("next", "fine")).await.0, 202);
    let status = status_or_exit(&mut router, "the dead letter", |s| {
        s["sinks"]["bad"]["dead_letters"] == 1
    })
    .await
    .expect("the router stays up");
    let error = bad_dead_letter(&status);
    assert!(
        error.contains("the upstream asked to wait 4 times, more than retry.max_waits (3)"),
        "{error}"
    );
    let dir = router.dir.path().to_owned();
    assert_eq!(attempts_at(&dir, "later"), [1, 2, 3, 4]);
    router
        .status_until("the next message delivered", |_| {
            attempts_at(&dir, "next") == [1]
        })
        .await;
}

const PROCESS: &str = "    isolation: process";

#[tokio::test]
async fn in_a_process_of_its_own_a_crashing_plugin_costs_only_its_message() {
    for (fault, died) in [
        ("segfault", "died of SIGSEGV (signal 11)"),
        ("abort", "died of SIGABRT (signal 6)"),
        ("exit", "exited with status 3"),
    ] {
        let mut router = Router::start(&config("", PROCESS), &files()).await;
        let batch = [("ok-1", "fine"), ("boom", fault), ("ok-2", "fine")].map(|(id, m)| job(id, m));
        assert_eq!(
            router.post_events(format!("[{}]", batch.join(","))).await.0,
            202
        );
        let status = status_or_exit(&mut router, "the dead letter and an empty queue", |s| {
            s["sinks"]["bad"]["dead_letters"] == 1 && s["outbox"]["queued"] == 0
        })
        .await
        .expect("the router stays up");
        let bad = &status["sinks"]["bad"];
        assert_eq!(bad["isolation"], "process", "{fault}: {bad}");
        assert_eq!(bad["crashes"], 2, "{fault}: {bad}");
        assert!(
            bad["last_crash"].as_str().is_some_and(|c| c.contains(died)),
            "{fault}: {bad}"
        );
        let error = bad["recent_dead_letters"][0]["error"]
            .as_str()
            .unwrap_or_default();
        assert!(
            error.contains("gave up after 2 attempts that ended in a crash")
                && error.contains(&format!("the plugin's process {died} during deliver")),
            "{fault}: {error}"
        );
        let dir = router.dir.path().to_owned();
        assert_eq!(attempts_at(&dir, "boom"), [1, 2], "{fault}");
        assert_eq!(attempts_at(&dir, "ok-2"), [1], "{fault}");
        let mut good = good_ids(&dir);
        good.sort();
        assert_eq!(
            good,
            ["boom", "ok-1", "ok-2"],
            "{fault}: the console sink got everything once"
        );
    }
}

#[tokio::test]
async fn a_hung_plugin_in_a_process_of_its_own_is_killed_at_deliver_timeout() {
    let extra = format!("{PROCESS}\n    deliver_timeout: 1s");
    let mut router = Router::start(&config(", max_attempts: 2", &extra), &files()).await;
    let batch = format!("[{},{}]", job("stuck", "hang"), job("after", "fine"));
    assert_eq!(router.post_events(batch).await.0, 202);
    let status = status_or_exit(&mut router, "the dead letter", |s| {
        s["sinks"]["bad"]["dead_letters"] == 1
    })
    .await
    .expect("the router stays up");
    let error = bad_dead_letter(&status);
    assert!(
        error.contains("gave up after 2 failed attempts: the plugin's process was killed: it did not answer within deliver_timeout (1s)"),
        "{error}"
    );
    let dir = router.dir.path().to_owned();
    assert_eq!(attempts_at(&dir, "stuck"), [1, 2]);
    router
        .status_until("the next message delivered", |_| {
            attempts_at(&dir, "after") == [1]
        })
        .await;
}

#[tokio::test]
async fn a_hung_plugin_in_process_shows_as_stuck_and_does_not_hold_the_stop() {
    let extra = format!("{IN_PROCESS}\n    deliver_timeout: 1s");
    let dir = alert_router_tests::harness::dir_with(&[
        ("router.yaml", &config("", &extra)),
        files()[0],
        files()[1],
        files()[2],
    ]);
    let mut router = Router::start_in_with_env(dir, &[("ALERT_ROUTER_DRAIN", "1s")]).await;
    let batch = format!("[{},{}]", job("stuck", "hang"), job("other", "fine"));
    assert_eq!(router.post_events(batch).await.0, 202);
    let status = router
        .status_until("the sink shown as stuck", |s| {
            s["sinks"]["bad"]["stuck_for_seconds"].as_u64() >= Some(1)
        })
        .await;
    // The other sink is not held up.
    let dir = router.dir.path().to_owned();
    router
        .status_until("the console sink delivered both", |_| {
            good_ids(&dir).len() == 2
        })
        .await;
    assert_eq!(status["sinks"]["good"]["stuck_for_seconds"], Value::Null);
    eventually(
        Duration::from_secs(5),
        "the warning of the stuck sink",
        || {
            let stderr = router.stderr();
            (stderr.contains("past deliver_timeout (1s)") && stderr.contains("sink=bad"))
                .then_some(())
        },
    )
    .await;
    let began = Instant::now();
    assert!(router.terminate(), "the router exits 0 after SIGTERM");
    let took = began.elapsed();
    // --drain 1s, then a second for the worker inside deliver, then the exit itself.
    assert!(took < Duration::from_secs(4), "stopping took {took:?}");
    // The next start counts the abandoned attempt as failed, and tries again.
    router.restart().await;
    let stderr = router.stderr();
    assert!(
        stderr.contains("still inside deliver when the router stopped (attempt 1)"),
        "{stderr}"
    );
    router
        .status_until("the second attempt under way", |_| {
            attempts_at(&dir, "stuck") == [1, 2]
        })
        .await;
}

#[tokio::test]
async fn a_plugin_file_written_slowly_never_takes_the_router_down() {
    let library = std::fs::read(Path::new(env!("AR_TEST_C_PLUGIN_DIR")).join("libctest.so"))
        .expect("the C plugin");
    for isolation in [IN_PROCESS, PROCESS] {
        // `bad` loads the C plugin from a directory of the test's own, first in the list.
        let config = config("", isolation).replacen(
            "plugins: {dirs: [",
            "plugins: {dirs: [\"{dir}/plugins\", ",
            1,
        );
        let dir = alert_router_tests::harness::dir_with(&[
            ("router.yaml", &config),
            files()[0],
            files()[1],
            files()[2],
        ]);
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).expect("the plugins dir");
        std::fs::write(plugins.join("libctest.so"), &library).expect("install the plugin");
        let router = Router::start_in(dir).await;
        let dir = router.dir.path().to_owned();
        let deliver = |id: &'static str| {
            let router = &router;
            let dir = dir.clone();
            async move {
                assert_eq!(router.post_events(job(id, "fine")).await.0, 202);
                router
                    .status_until(&format!("{id} delivered"), |_| attempts_at(&dir, id) == [1])
                    .await;
            }
        };
        deliver("before").await;

        // A copy that pauses for less than the quiet period is loaded whole, once.
        let mut file = std::fs::File::create(plugins.join("libctest.so")).expect("rewrite");
        let half = library.len() / 2;
        file.write_all(&library[..half]).expect("the first half");
        file.flush().expect("flush");
        // The writer's own pause (part of the scenario, not a wait for the router).
        tokio::time::sleep(Duration::from_millis(300)).await;
        file.write_all(&library[half..]).expect("the rest");
        drop(file);
        let reloaded = router
            .status_until("the new file loaded", |s| {
                s["config"]["last_reload"]["ok"] == true
            })
            .await;
        assert_eq!(
            reloaded["config"]["reloads"],
            json!({"succeeded": 1, "failed": 0}),
            "{isolation}: no reload saw the half-written file: {reloaded}"
        );
        deliver("between").await;

        // A new copy written as a slow copy over the network does: half of it, then a
        // pause longer than the router waits for a plugin file to be quiet.
        let mut file = std::fs::File::create(plugins.join("libctest.so")).expect("rewrite");
        file.write_all(&library[..half]).expect("the first half");
        file.flush().expect("flush");
        let refused = router
            .status_until("the reload with the half file refused", |s| {
                s["config"]["last_reload"]["ok"] == false
            })
            .await;
        assert!(
            refused["config"]["last_reload"]["errors"]
                .to_string()
                .contains("incomplete"),
            "{isolation}: {refused}"
        );
        // The running plugin still delivers.
        deliver("during").await;

        file.write_all(&library[half..]).expect("the rest");
        drop(file);
        let reloaded = router
            .status_until("the whole file loaded", |s| {
                s["config"]["reloads"]["succeeded"] == 2
            })
            .await;
        assert!(
            reloaded["config"]["last_reload"]["changes"]
                .to_string()
                .contains("sink `bad` reconfigured (new plugin file)"),
            "{isolation}: {reloaded}"
        );
        deliver("after").await;
    }
}

#[tokio::test]
async fn a_plugin_whose_validate_crashes_in_a_process_of_its_own_is_a_check_error() {
    let config = config("", PROCESS).replace(
        "settings: {path: \"{dir}/bad.log\"}",
        "settings: {path: segfault-in-validate}",
    );
    let dir = alert_router_tests::harness::dir_with(&[
        ("router.yaml", &config),
        files()[0],
        files()[1],
        files()[2],
    ]);
    let (code, stdout, stderr) = alert_router_tests::harness::run_cli(dir.path(), &["check"]);
    assert_eq!(
        code, 1,
        "check finds it, and lives to say so: {stdout}{stderr}"
    );
    assert!(
        stdout.contains(
            "sinks.bad.settings: plugin `ctest` refused them: its process died of SIGSEGV (signal 11) before validate returned"
        ),
        "{stdout}{stderr}"
    );
}
