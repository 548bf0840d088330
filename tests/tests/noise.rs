//! End to end, on a clock the test moves (the e2e binary reads it from a file): groups
//! wait, speak once per interval, repeat and say when alerts resolve; alerts resolve by
//! themselves; silences, inhibitions, throttles and time windows hold messages back and
//! count them; what a group holds survives a SIGKILL.

use alert_router_tests::file_clock::{FileClock, console_texts, console_texts_until};
use alert_router_tests::harness::{Router, dir_with, read_json_lines, run_cli};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const CONFIG: &str = r#"
plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  console:
    plugin: console
    settings: {path: "{dir}/out.jsonl", format: json}
"#;

/// Each message as one line of text: a group's as `N: type/status×count ...`, an
/// event's as `type n=<n>` (plus what a throttle held back).
const GROUP: &str = "text: \"{{ counts.total }}: {% for a in alerts %}{{ a.event.type }}{% if a.event.component is defined %}.{{ a.event.component }}{% endif %}/{{ a.status }}x{{ a.count }}{% if a.event.resolved_by is defined %}({{ a.event.resolved_by }}){% endif %} {% endfor %}{% if window %}window={{ window.name }}{% endif %}\"\n";
const ONE: &str = "text: \"{{ event.type }} n={{ event.n | default('') }}{% if event.status is defined %} {{ event.status }}{% endif %}{% if suppressed is defined %} suppressed={{ suppressed.count }}{% endif %}\"\n";

/// A router on the file clock at `start`, with `rules` and the two test templates.
async fn router_at(start: &str, rules: &str) -> (Router, FileClock) {
    let dir = dir_with(&[
        ("router.yaml", CONFIG),
        ("rules/r.yaml", rules),
        ("templates/console/group.yaml", GROUP),
        ("templates/console/default.yaml", ONE),
    ]);
    FileClock::start(dir, start).await
}

async fn post(router: &Router, events: Value) {
    let (status, answer) = router.post_events(events.to_string()).await;
    assert_eq!(status, 202, "{answer}");
}

async fn held_back(router: &Router, reason: &str) -> u64 {
    router.get_json("/v1/status").await["sinks"]["console"]["held_back"][reason]
        .as_u64()
        .unwrap_or(0)
}

const GROUPED: &str = r#"
routes:
  - name: failures
    match: {type: failure}
    group_by: [component]
    group_wait: 10s
    group_interval: 1m
    repeat_interval: 1h
    resolve_timeout: 2h
    to: [console]
  - name: rest
    to: [console]
"#;

#[tokio::test]
async fn a_group_waits_speaks_once_per_interval_repeats_and_says_when_alerts_resolve() {
    let (router, mut clock) = router_at("2026-12-04T10:00:00Z", GROUPED).await;
    post(
        &router,
        json!([
            {"type": "failure", "component": "api", "n": 1},
            {"type": "failure", "component": "api", "n": 2},
            {"type": "failure", "component": "db", "n": 3},
            {"type": "failure", "component": "api", "status": "firing", "labels": {"check": "latency"}},
            {"type": "tick", "n": 4}
        ]),
    )
    .await;
    // The plain event goes at once; the group waits.
    assert_eq!(console_texts_until(&router, 1).await, ["tick n=4"]);
    clock.advance_and_tick(&router, 9).await;
    assert_eq!(console_texts(&router).len(), 1, "group_wait has not passed");
    assert_eq!(held_back(&router, "grouped").await, 4);

    clock.advance_and_tick(&router, 1).await;
    let mut sent = console_texts_until(&router, 3).await;
    sent[1..].sort();
    assert_eq!(
        sent[1..],
        [
            "1: failure.db/firingx1 ",
            "3: failure.api/firingx1 failure.api/firingx1 failure.api/firingx1 "
        ]
    );

    // The alert fires again: the same alert, nothing new to say at the next interval.
    post(&router, json!({"type": "failure", "component": "api", "status": "firing", "labels": {"check": "latency"}})).await;
    clock.advance_and_tick(&router, 60).await;
    assert_eq!(
        console_texts(&router).len(),
        3,
        "no change: no notification"
    );

    // An hour after the last notification it is repeated, with its count.
    clock.advance_and_tick(&router, 3600).await;
    let sent = console_texts_until(&router, 4).await;
    assert_eq!(sent[3], "1: failure.api/firingx2 ");

    // It resolves: said once at the next interval, then the group is done.
    post(&router, json!({"type": "failure", "component": "api", "status": "resolved", "labels": {"check": "latency"}})).await;
    clock.advance_and_tick(&router, 60).await;
    let sent = console_texts_until(&router, 5).await;
    assert_eq!(sent[4], "1: failure.api/resolvedx3 ");
    let alerts = router.get_json("/v1/alerts?state=resolved").await;
    assert_eq!(alerts["alerts"][0]["count"], 3, "{alerts}");
    // Nothing more to say; a resolved alert is listed for an hour, then forgotten.
    clock.advance_and_tick(&router, 3 * 3600).await;
    assert_eq!(console_texts(&router).len(), 5);
    let status = router.get_json("/v1/status").await;
    assert_eq!(status["notify"]["open"]["groups"], 0, "{status}");
    assert_eq!(
        status["notify"]["open"]["alerts"]["resolved"], 0,
        "{status}"
    );
}

#[tokio::test]
async fn an_alert_without_news_resolves_after_its_resolve_timeout() {
    let rules = "routes:\n  - name: all\n    resolve_timeout: 2m\n    to: [console]\n";
    let (router, mut clock) = router_at("2026-12-04T10:00:00Z", rules).await;
    post(
        &router,
        json!({"type": "disk_full", "status": "firing", "labels": {"host": "a"}, "n": 1}),
    )
    .await;
    assert_eq!(
        console_texts_until(&router, 1).await,
        ["disk_full n=1 firing"]
    );
    let firing = router
        .get_json("/v1/alerts?state=firing&labels.host=a")
        .await;
    assert_eq!(
        firing["alerts"].as_array().map(Vec::len),
        Some(1),
        "{firing}"
    );
    clock.advance_and_tick(&router, 119).await;
    assert_eq!(console_texts(&router).len(), 1, "not yet");
    clock.advance_and_tick(&router, 1).await;
    let sent = console_texts_until(&router, 2).await;
    assert_eq!(sent[1], "disk_full n=1 resolved");
    let out = read_json_lines(&router.dir.path().join("out.jsonl"));
    assert_eq!(out[1]["event"]["resolved_by"], "timeout", "{}", out[1]);
    let resolved = router.get_json("/v1/alerts?state=resolved").await;
    assert_eq!(
        resolved["alerts"][0]["ends_at"], "2026-12-04T10:02:00Z",
        "{resolved}"
    );
}

#[tokio::test]
async fn what_a_group_holds_survives_a_kill_and_speaks_after_the_restart() {
    let (mut router, mut clock) = router_at("2026-12-04T10:00:00Z", GROUPED).await;
    post(
        &router,
        json!([
            {"type": "failure", "component": "api", "n": 1},
            {"type": "failure", "component": "api", "status": "firing"}
        ]),
    )
    .await;
    router.kill();
    router.restart().await;
    assert!(console_texts(&router).is_empty());
    clock.advance_and_tick(&router, 10).await;
    let sent = console_texts_until(&router, 1).await;
    assert_eq!(sent, ["2: failure.api/firingx1 failure.api/firingx1 "]);
    // The firing alert is still known after a second kill, and only it is repeated.
    router.kill();
    router.restart().await;
    clock.advance_and_tick(&router, 3600 + 60).await;
    let sent = console_texts_until(&router, 2).await;
    assert_eq!(sent[1], "1: failure.api/firingx1 ");
    let firing = router.get_json("/v1/alerts?state=firing").await;
    assert_eq!(
        firing["alerts"].as_array().map(Vec::len),
        Some(1),
        "{firing}"
    );
}

#[tokio::test]
async fn silences_hold_back_what_they_match_until_they_expire_and_survive_a_restart() {
    let rules = "routes:\n  - name: all\n    to: [console]\n";
    let (mut router, mut clock) = router_at("2026-12-04T10:00:00Z", rules).await;
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/v1/silences", router.url))
        .json(&json!({"matchers": ["labels.exchange=binance", "severity!=critical"], "duration": "1h", "created_by": "ana", "comment": "maintenance"}))
        .send()
        .await
        .expect("POST /v1/silences");
    assert_eq!(created.status().as_u16(), 201);
    let silence: Value = created.json().await.expect("JSON");
    assert_eq!(silence["state"], "active", "{silence}");
    post(&router, json!([
        {"type": "order_failed", "labels": {"exchange": "binance"}, "n": 1},
        {"type": "order_failed", "labels": {"exchange": "kraken"}, "n": 2},
        {"type": "order_failed", "severity": "critical", "labels": {"exchange": "binance"}, "n": 3}
    ]))
    .await;
    assert_eq!(
        console_texts_until(&router, 2).await,
        ["order_failed n=2", "order_failed n=3"]
    );
    assert_eq!(held_back(&router, "silenced").await, 1);
    let listed = router.get_json("/v1/silences").await;
    assert_eq!(listed["silences"][0]["held_back"], 1, "{listed}");

    // A restart keeps it.
    router.kill();
    router.restart().await;
    post(
        &router,
        json!({"type": "order_failed", "labels": {"exchange": "binance"}, "n": 4}),
    )
    .await;
    post(&router, json!({"type": "marker", "n": 5})).await;
    assert_eq!(
        console_texts_until(&router, 3).await[2],
        "marker n=5",
        "n=4 was silenced"
    );

    // It ends by itself.
    clock.advance(3600);
    post(
        &router,
        json!({"type": "order_failed", "labels": {"exchange": "binance"}, "n": 6}),
    )
    .await;
    assert_eq!(console_texts_until(&router, 4).await[3], "order_failed n=6");
    let expired = router.get_json("/v1/silences?state=expired").await;
    assert_eq!(
        expired["silences"].as_array().map(Vec::len),
        Some(1),
        "{expired}"
    );
}

#[tokio::test]
async fn the_silence_command_line_adds_lists_and_expires() {
    let rules = "routes:\n  - name: all\n    to: [console]\n";
    let (router, _clock) = router_at("2026-12-04T10:00:00Z", rules).await;
    let dir = router.dir.path();
    let url = router.url.as_str();
    let (code, out, err) = run_cli(
        dir,
        &[
            "silence",
            "add",
            "--url",
            url,
            "type=heartbeat",
            "--for",
            "2h",
            "--author",
            "ops",
            "--comment",
            "deploy",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let id = out.trim().to_owned();
    assert!(!id.is_empty(), "the new silence's id on stdout: {out:?}");
    let (code, out, err) = run_cli(dir, &["silence", "list", "--url", url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&id) && out.contains("type=\"heartbeat\"") && out.contains("deploy"),
        "{out}"
    );
    post(
        &router,
        json!([{"type": "heartbeat", "n": 1}, {"type": "marker", "n": 2}]),
    )
    .await;
    assert_eq!(console_texts_until(&router, 1).await, ["marker n=2"]);
    let (code, _, err) = run_cli(dir, &["silence", "expire", "--url", url, &id]);
    assert_eq!(code, 0, "{err}");
    post(&router, json!({"type": "heartbeat", "n": 3})).await;
    assert_eq!(console_texts_until(&router, 2).await[1], "heartbeat n=3");
    let (code, _, err) = run_cli(dir, &["silence", "expire", "--url", url, "no-such-id"]);
    assert_ne!(code, 0);
    assert!(err.contains("no-such-id"), "{err}");
}

#[tokio::test]
async fn a_firing_alert_inhibits_targets_with_the_same_labels_until_it_resolves() {
    let rules = r#"
routes:
  - name: all
    to: [console]
inhibit:
  - source: {type: exchange_down}
    target: {type: order_failed}
    equal: [labels.exchange]
"#;
    let (router, _clock) = router_at("2026-12-04T10:00:00Z", rules).await;
    post(&router, json!({"type": "exchange_down", "status": "firing", "labels": {"exchange": "binance"}, "n": 1})).await;
    post(
        &router,
        json!([
            {"type": "order_failed", "labels": {"exchange": "binance"}, "n": 2},
            {"type": "order_failed", "labels": {"exchange": "kraken"}, "n": 3}
        ]),
    )
    .await;
    assert_eq!(
        console_texts_until(&router, 2).await,
        ["exchange_down n=1 firing", "order_failed n=3"]
    );
    assert_eq!(held_back(&router, "inhibited").await, 1);
    post(&router, json!({"type": "exchange_down", "status": "resolved", "labels": {"exchange": "binance"}, "n": 4})).await;
    post(
        &router,
        json!({"type": "order_failed", "labels": {"exchange": "binance"}, "n": 5}),
    )
    .await;
    assert_eq!(
        console_texts_until(&router, 4).await[2..],
        ["exchange_down n=4 resolved", "order_failed n=5"]
    );
}

#[tokio::test]
async fn a_throttled_route_sends_at_most_its_rate_and_the_next_message_says_how_many_were_held() {
    let rules = r#"
routes:
  - name: errors
    throttle: {key: [component], at_most: 2/10m}
    to: [console]
"#;
    let (router, mut clock) = router_at("2026-12-04T10:00:00Z", rules).await;
    let burst: Vec<Value> = (1..=5)
        .map(|n| json!({"type": "failure", "component": "api", "n": n}))
        .collect();
    post(&router, Value::Array(burst)).await;
    post(
        &router,
        json!({"type": "failure", "component": "db", "n": 6}),
    )
    .await;
    assert_eq!(
        console_texts_until(&router, 3).await,
        ["failure n=1", "failure n=2", "failure n=6"]
    );
    assert_eq!(held_back(&router, "throttled").await, 3);
    clock.advance(600);
    post(
        &router,
        json!({"type": "failure", "component": "api", "n": 7}),
    )
    .await;
    assert_eq!(
        console_texts_until(&router, 4).await[3],
        "failure n=7 suppressed=3"
    );
}

const QUIET_HOURS: &str = r#"
time_intervals:
  - name: night
    time_intervals:
      - times: [{start_time: "22:00", end_time: "24:00"}, {start_time: "00:00", end_time: "06:00"}]
        location: America/New_York
routes:
  - name: trades
    match: {type: trade}
    muted_during: [night]
    unless_severity: critical
    mode: delay
    to: [console]
  - name: chatter
    match: {type: chatter}
    muted_during: [night]
    to: [console]
  - name: rest
    to: [console]
"#;

#[tokio::test]
async fn quiet_hours_follow_new_york_across_the_dst_change_and_deliver_a_summary() {
    // 2026-11-01 05:30 UTC is 01:30 EDT; at 06:00 UTC New York falls back to EST, so
    // the night ends at 06:00 EST = 11:00 UTC, not 10:00 UTC.
    let (router, mut clock) = router_at("2026-11-01T05:30:00Z", QUIET_HOURS).await;
    post(
        &router,
        json!([
            {"type": "trade", "n": 1},
            {"type": "trade", "severity": "critical", "n": 2},
            {"type": "chatter", "n": 3},
            {"type": "marker", "n": 4}
        ]),
    )
    .await;
    assert_eq!(
        console_texts_until(&router, 2).await,
        ["trade n=2", "marker n=4"]
    );
    assert_eq!(held_back(&router, "delayed").await, 1);
    assert_eq!(held_back(&router, "muted").await, 1);
    clock.set(OffsetDateTime::parse("2026-11-01T10:30:00Z", &Rfc3339).expect("a time"));
    post(&router, json!({"type": "trade", "n": 5})).await;
    clock.advance_and_tick(&router, 0).await;
    assert_eq!(
        console_texts(&router).len(),
        2,
        "05:30 EST is still night: {:?}",
        console_texts(&router)
    );
    clock.set(OffsetDateTime::parse("2026-11-01T11:00:00Z", &Rfc3339).expect("a time"));
    clock.advance_and_tick(&router, 0).await;
    let sent = console_texts_until(&router, 3).await;
    assert_eq!(sent[2], "2: trade/firingx1 trade/firingx1 window=night");
    post(&router, json!({"type": "chatter", "n": 6})).await;
    assert_eq!(
        console_texts_until(&router, 4).await[3],
        "chatter n=6",
        "the day has begun"
    );
}

/// Asks for a reload; its outcome.
async fn reload(router: &Router) -> Value {
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/reload", router.url))
        .send()
        .await
        .expect("POST /v1/reload");
    answer.json().await.expect("JSON")
}

#[tokio::test]
async fn a_reload_keeps_open_groups_and_closes_those_whose_grouping_changed() {
    let (router, mut clock) = router_at("2026-12-04T10:00:00Z", GROUPED).await;
    post(
        &router,
        json!({"type": "failure", "component": "api", "n": 1}),
    )
    .await;
    // New timers, same keys: the open group stays open under the new group_wait.
    std::fs::write(
        router.dir.path().join("rules/r.yaml"),
        GROUPED.replace("group_wait: 10s", "group_wait: 30s"),
    )
    .expect("rewrite the rules");
    let outcome = reload(&router).await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    clock.advance_and_tick(&router, 10).await;
    assert!(
        console_texts(&router).is_empty(),
        "the new group_wait applies"
    );
    post(
        &router,
        json!({"type": "failure", "component": "api", "n": 2}),
    )
    .await;
    // Grouped by another key: the open group says what it holds at once and closes.
    std::fs::write(
        router.dir.path().join("rules/r.yaml"),
        GROUPED.replace("group_by: [component]", "group_by: [severity]"),
    )
    .expect("rewrite the rules");
    // The file watcher may take the change before this reload does (which then finds
    // nothing changed): the change is read from the log, which says every reload's.
    reload(&router).await;
    let sent = console_texts_until(&router, 1).await;
    assert!(
        router.stderr().contains("groups differently"),
        "{}",
        router.stderr()
    );
    assert_eq!(sent, ["2: failure.api/firingx1 failure.api/firingx1 "]);
    post(
        &router,
        json!({"type": "failure", "component": "db", "n": 3}),
    )
    .await;
    clock.advance_and_tick(&router, 10).await;
    assert_eq!(
        console_texts_until(&router, 2).await[1],
        "1: failure.db/firingx1 "
    );
}

#[tokio::test]
async fn a_silence_set_while_an_alert_sits_in_its_group_quiets_its_repeats() {
    let (router, mut clock) = router_at("2026-12-04T10:00:00Z", GROUPED).await;
    let alert = json!({"type": "failure", "component": "exchange", "status": "firing", "labels": {"exchange": "binance"}});
    post(&router, alert.clone()).await;
    clock.advance_and_tick(&router, 10).await;
    assert_eq!(
        console_texts_until(&router, 1).await,
        ["1: failure.exchange/firingx1 "]
    );
    // "Quiet, I'm on it."
    let created = reqwest::Client::new()
        .post(format!("{}/v1/silences", router.url))
        .json(&json!({"matchers": ["labels.exchange=binance"], "duration": "2h", "created_by": "ana"}))
        .send()
        .await
        .expect("POST /v1/silences");
    assert_eq!(created.status().as_u16(), 201);
    post(&router, alert.clone()).await;
    clock.advance_and_tick(&router, 3600 + 60).await;
    assert_eq!(
        console_texts(&router).len(),
        1,
        "the hourly repeat is silenced"
    );
    let alerts = router.get_json("/v1/alerts?state=firing").await;
    let held = alerts["alerts"][0]["held_back"]
        .as_str()
        .unwrap_or_default();
    assert!(held.starts_with("silenced by "), "{alerts}");
    // After the silence, the next repeat speaks again. The bot still reports the alert,
    // which keeps it firing; the reports the silence held back are not in the group.
    post(&router, alert).await;
    clock.advance_and_tick(&router, 3600 + 60).await;
    assert_eq!(
        console_texts_until(&router, 2).await[1],
        "1: failure.exchange/firingx1 "
    );
}

#[tokio::test]
async fn route_and_render_explain_the_silence_window_throttle_and_group_that_apply() {
    let extra = r#"  - name: errors
    match: {type: failure}
    group_by: [component]
    group_wait: 10s
    group_interval: 1m
    to: [console]
  - name: chatter-throttled
    match: {type: noise}
    throttle: {key: [component], at_most: 2/10m}
    to: [console]
  - name: rest"#;
    let rules = format!(
        "{}inhibit:\n  - source: {{type: exchange_down}}\n    target: {{type: order_failed}}\n    equal: [labels.exchange]\n",
        QUIET_HOURS.replace("  - name: rest", extra)
    );
    // 03:00 in New York: night.
    let (router, _clock) = router_at("2026-12-04T08:00:00Z", &rules).await;
    let created = reqwest::Client::new()
        .post(format!("{}/v1/silences", router.url))
        .json(&json!({"matchers": ["labels.exchange=binance"], "duration": "1h", "created_by": "ana"}))
        .send()
        .await
        .expect("POST /v1/silences");
    assert_eq!(created.status().as_u16(), 201);
    let dir = router.dir.path();
    std::fs::write(
        dir.join("events.ndjson"),
        [
            json!({"type": "trade", "n": 1}),
            json!({"type": "failure", "component": "api", "status": "firing"}),
            json!({"type": "noise", "component": "db"}),
            json!({"type": "order_failed", "labels": {"exchange": "binance"}}),
        ]
        .map(|e| e.to_string())
        .join("\n"),
    )
    .expect("write events");
    let clock = dir.join("clock");
    let out = std::process::Command::new(alert_router_tests::harness::router_binary())
        .args(["route", "--event", "events.ndjson"])
        .current_dir(dir)
        .env("ALERT_ROUTER_TEST_CLOCK", &clock)
        .output()
        .expect("run route");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "- muted now by the time window `night`: kept, and sent in one summary when it ends",
        "- an alert (firing), fingerprint ",
        "- grouped as `component=api`: the group speaks 10s after it opens, then at most every 1m",
        "console: templates/console/group.yaml",
        "- throttled: at most 2 per 10m for component=db",
        "- held back: silence ",
        "(labels.exchange=\"binance\") by ana until 2026-12-04T09:00:00Z",
        "- held back while an alert matching the source of the inhibition at ",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let out = std::process::Command::new(alert_router_tests::harness::router_binary())
        .args(["render", "--sink", "console", "--event", "events.ndjson"])
        .current_dir(dir)
        .env("ALERT_ROUTER_TEST_CLOCK", &clock)
        .output()
        .expect("run render");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("\"1: failure.api/firingx1 \""),
        "the group template, with a group of one: {stdout}"
    );
    assert!(
        stderr.contains("note: route `trades`: muted now by the time window `night`"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_firing_alert_sent_again_with_its_id_is_not_routed_again_but_does_not_time_out() {
    let rules = "routes:\n  - name: all\n    resolve_timeout: 5m\n    to: [console]\n";
    let (router, mut clock) = router_at("2026-12-04T10:00:00Z", rules).await;
    let alert = json!({"type": "disk_full", "id": "prom:1", "status": "firing", "labels": {"host": "a"}, "n": 1});
    post(&router, alert.clone()).await;
    assert_eq!(
        console_texts_until(&router, 1).await,
        ["disk_full n=1 firing"]
    );
    // As Prometheus does: the same alert every minute, for ten minutes.
    for _ in 0..10 {
        clock.advance_and_tick(&router, 60).await;
        post(&router, alert.clone()).await;
    }
    assert_eq!(
        console_texts(&router).len(),
        1,
        "not routed again, not resolved by the timeout"
    );
    let firing = router.get_json("/v1/alerts?state=firing").await;
    assert_eq!(
        firing["alerts"][0]["updated_at"], "2026-12-04T10:10:00Z",
        "{firing}"
    );
    // Then it stops coming: five minutes later it resolves.
    clock.advance_and_tick(&router, 300).await;
    assert_eq!(
        console_texts_until(&router, 2).await[1],
        "disk_full n=1 resolved"
    );
}

/// As Prometheus sends to Alertmanager's API: a firing alert with `endsAt` a few minutes
/// ahead, sent again every minute with a later one. It resolves at the last `endsAt`
/// once the resends stop, as Alertmanager resolves it, not after `resolve_timeout`.
#[tokio::test]
async fn an_alert_from_alertmanagers_api_resolves_at_its_last_announced_end() {
    let rules = "routes:\n  - name: all\n    resolve_timeout: 1h\n    to: [console]\n";
    let (router, mut clock) = router_at("2026-12-04T10:00:00Z", rules).await;
    let client = reqwest::Client::new();
    let send = |ends_at: OffsetDateTime| {
        let body = json!([{
            "labels": {"alertname": "DiskFull"},
            "startsAt": "2026-12-04T10:00:00Z",
            "endsAt": ends_at.format(&Rfc3339).expect("a time"),
        }]);
        let request = client
            .post(format!("{}/api/v2/alerts", router.url))
            .json(&body);
        async move {
            let status = request.send().await.expect("post").status();
            assert_eq!(status, 200);
        }
    };
    let four_minutes = time::Duration::minutes(4);
    send(clock.now + four_minutes).await;
    assert_eq!(console_texts_until(&router, 1).await, ["alert n= firing"]);
    for _ in 0..3 {
        clock.advance_and_tick(&router, 60).await;
        send(clock.now + four_minutes).await;
    }
    // Alertmanager's API shows when it would end.
    let listed = router.get_json("/api/v2/alerts").await;
    assert_eq!(listed[0]["endsAt"], "2026-12-04T10:07:00Z", "{listed}");
    // The resends stop at 10:03; the last said 10:07.
    clock.advance_and_tick(&router, 239).await;
    assert_eq!(console_texts(&router).len(), 1, "not before its end");
    clock.advance_and_tick(&router, 1).await;
    assert_eq!(
        console_texts_until(&router, 2).await[1],
        "alert n= resolved"
    );
    let out = read_json_lines(&router.dir.path().join("out.jsonl"));
    assert_eq!(
        out[1]["event"]["ends_at"], "2026-12-04T10:07:00Z",
        "{}",
        out[1]
    );
    let resolved = router.get_json("/v1/alerts?state=resolved").await;
    assert_eq!(
        resolved["alerts"].as_array().map(Vec::len),
        Some(1),
        "{resolved}"
    );
}
