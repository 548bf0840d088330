//! End to end, on a clock the test moves: alert rules over the event stream (threshold
//! with `for:`, count in a window, streak, absence, a condition over the state store)
//! fire and resolve as `alert` events that are routed like any other; their series are
//! separate, survive a SIGKILL, and start fresh when their rule changes.

use alert_router_tests::file_clock::{FileClock, console_texts, console_texts_until};
use alert_router_tests::harness::{Router, dir_with, eventually, read_json_lines};
use serde_json::{Value, json};

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

const CONFIG: &str = r#"
plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  console:
    plugin: console
    settings: {path: "{dir}/out.jsonl", format: json}
"#;

/// Alerts as `name status summary`; every other event is routed nowhere.
const ALERT: &str = "text: \"{{ event.alertname }} {{ event.status }} {{ event.summary }}\"\n";
const ROUTES: &str = "routes:\n  - name: alerts\n    match: {type: alert}\n    to: [console]\n";

async fn router_with(alerts: &str) -> (Router, FileClock) {
    let dir = dir_with(&[
        ("router.yaml", CONFIG),
        ("rules/routes.yaml", ROUTES),
        ("rules/alerts.yaml", alerts),
        ("templates/console/alert.yaml", ALERT),
        (
            "templates/console/default.yaml",
            "text: \"{{ event.type }}\"\n",
        ),
    ]);
    FileClock::start(dir, "2026-12-04T10:00:00Z").await
}

async fn post(router: &Router, events: Value) {
    let (status, answer) = router.post_events(events.to_string()).await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test]
async fn a_threshold_fires_after_for_per_series_and_resolves_when_it_no_longer_holds() {
    let rules = r#"
alerts:
  - name: drawdown
    match: {type: equity}
    by: [labels.bot]
    threshold: "event.drawdown_pct >= 10"
    for: 5m
    severity: critical
    annotations:
      summary: "drawdown {{ event.drawdown_pct }}% on {{ series.bot }}"
"#;
    let (router, mut clock) = router_with(rules).await;
    post(
        &router,
        json!([
            {"type": "equity", "drawdown_pct": 12, "labels": {"bot": "a"}},
            {"type": "equity", "drawdown_pct": 3, "labels": {"bot": "b"}}
        ]),
    )
    .await;
    clock.advance_and_tick(&router, 299).await;
    assert!(console_texts(&router).is_empty(), "not for 5 minutes yet");
    // Interrupted `for:` on another series: b goes over, back under, over again.
    post(
        &router,
        json!({"type": "equity", "drawdown_pct": 11, "labels": {"bot": "b"}}),
    )
    .await;
    clock.advance_and_tick(&router, 1).await;
    assert_eq!(
        console_texts_until(&router, 1).await,
        ["drawdown firing drawdown 12% on a"]
    );
    post(
        &router,
        json!({"type": "equity", "drawdown_pct": 4, "labels": {"bot": "b"}}),
    )
    .await;
    post(
        &router,
        json!({"type": "equity", "drawdown_pct": 15, "labels": {"bot": "b"}}),
    )
    .await;
    clock.advance_and_tick(&router, 299).await;
    assert_eq!(
        console_texts(&router).len(),
        1,
        "b's for: started again at its last crossing"
    );
    clock.advance_and_tick(&router, 1).await;
    assert_eq!(
        console_texts_until(&router, 2).await[1],
        "drawdown firing drawdown 15% on b"
    );
    post(
        &router,
        json!({"type": "equity", "drawdown_pct": 2, "labels": {"bot": "a"}}),
    )
    .await;
    assert_eq!(
        console_texts_until(&router, 3).await[2],
        "drawdown resolved drawdown 2% on a"
    );
    let out = read_json_lines(&router.dir.path().join("out.jsonl"));
    let first = &out[0]["event"];
    assert_eq!(first["severity"], "critical", "{first}");
    assert_eq!(first["labels"]["bot"], "a", "{first}");
    assert_eq!(first["source"], "alert-rules", "{first}");
    let firing = router.get_json("/v1/alerts?state=firing").await;
    assert_eq!(
        firing["alerts"].as_array().map(Vec::len),
        Some(1),
        "only b fires: {firing}"
    );
}

#[tokio::test]
async fn a_count_fires_at_n_events_in_the_window_and_resolves_as_it_empties() {
    let rules = r#"
alerts:
  - name: error-burst
    match: {type: failure}
    by: [component]
    count: {at_least: 3, within: 10m}
    annotations: {summary: "{{ series.component }} failing"}
"#;
    let (router, mut clock) = router_with(rules).await;
    post(
        &router,
        json!([{"type": "failure", "component": "api"}, {"type": "failure", "component": "db"}]),
    )
    .await;
    clock.advance_and_tick(&router, 60).await;
    post(&router, json!({"type": "failure", "component": "api"})).await;
    clock.advance_and_tick(&router, 60).await;
    assert!(console_texts(&router).is_empty());
    post(&router, json!({"type": "failure", "component": "api"})).await;
    assert_eq!(
        console_texts_until(&router, 1).await,
        ["error-burst firing api failing"]
    );
    // The first of the three leaves the window 10 minutes after it came.
    clock.advance_and_tick(&router, 479).await;
    assert_eq!(console_texts(&router).len(), 1);
    clock.advance_and_tick(&router, 1).await;
    assert_eq!(
        console_texts_until(&router, 2).await[1],
        "error-burst resolved api failing"
    );
}

#[tokio::test]
async fn a_streak_of_losses_fires_and_a_win_resolves_it_and_the_state_survives_a_kill() {
    let rules = r#"
alerts:
  - name: losing-streak
    match: {type: closed}
    streak: {count: 3, when: "event.pnl < 0"}
    annotations: {summary: "last loss {{ event.pnl }}"}
"#;
    let (mut router, mut clock) = router_with(rules).await;
    post(&router, json!([{"type": "closed", "pnl": -1}, {"type": "closed", "pnl": 5}, {"type": "closed", "pnl": -2}])).await;
    post(&router, json!({"type": "closed", "pnl": -3})).await;
    // Series are written at every tick (at least once a second): after one, a kill loses
    // nothing of them.
    clock.advance_and_tick(&router, 1).await;
    router.kill();
    router.restart().await;
    assert!(console_texts(&router).is_empty());
    post(&router, json!({"type": "closed", "pnl": -4})).await;
    assert_eq!(
        console_texts_until(&router, 1).await,
        ["losing-streak firing last loss -4"]
    );
    post(&router, json!({"type": "closed", "pnl": 1})).await;
    assert_eq!(
        console_texts_until(&router, 2).await[1],
        "losing-streak resolved last loss 1"
    );
}

#[tokio::test]
async fn a_missing_heartbeat_fires_with_the_last_one_and_a_new_one_resolves_it() {
    let rules = r#"
alerts:
  - name: bot-silent
    match: {type: heartbeat}
    by: [source]
    absent: 2m
    annotations: {summary: "{{ series.source }} last seen at {{ event.time }}"}
"#;
    let (router, mut clock) = router_with(rules).await;
    post(
        &router,
        json!([{"type": "heartbeat", "source": "bot-a"}, {"type": "heartbeat", "source": "bot-b"}]),
    )
    .await;
    clock.advance_and_tick(&router, 60).await;
    post(&router, json!({"type": "heartbeat", "source": "bot-b"})).await;
    clock.advance_and_tick(&router, 60).await;
    assert_eq!(
        console_texts_until(&router, 1).await,
        ["bot-silent firing bot-a last seen at 2026-12-04T10:00:00Z"]
    );
    post(&router, json!({"type": "heartbeat", "source": "bot-a"})).await;
    assert_eq!(
        console_texts_until(&router, 2).await[1],
        "bot-silent resolved bot-a last seen at 2026-12-04T10:02:00Z"
    );
    assert_eq!(
        console_texts(&router).len(),
        2,
        "bot-b was seen a minute ago"
    );
}

#[tokio::test]
async fn a_state_rule_reads_the_state_store_on_its_events_and_changed_rules_start_fresh() {
    let rules = r#"
alerts:
  - name: low-equity
    match: {type: portfolio_update}
    state: "state.portfolio.total_value < 40000"
    annotations: {summary: "equity {{ event.total_value | default('?') }}"}
"#;
    let (router, mut clock) = router_with(rules).await;
    post(
        &router,
        json!({"type": "portfolio_update", "total_value": 52000}),
    )
    .await;
    clock.advance_and_tick(&router, 1).await;
    assert!(console_texts(&router).is_empty());
    post(
        &router,
        json!({"type": "portfolio_update", "total_value": 38000}),
    )
    .await;
    clock.advance_and_tick(&router, 1).await;
    let sent = console_texts_until(&router, 1).await;
    assert!(sent[0].starts_with("low-equity firing"), "{sent:?}");
    // A changed rule starts fresh, and the reload says so.
    std::fs::write(
        router.dir.path().join("rules/alerts.yaml"),
        rules.replace("< 40000", "< 30000"),
    )
    .expect("rewrite");
    reqwest::Client::new()
        .post(format!("{}/v1/reload", router.url))
        .send()
        .await
        .expect("reload");
    // The file watcher may take the change before this reload does (which then finds
    // nothing changed): the change is read from the log, which says every reload's.
    eventually(WAIT, "the reload to say the rule changed", || {
        router
            .stderr()
            .contains("alert rule `low-equity` changed")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_schedule_posts_its_event_on_time_in_its_zone_and_makes_a_missed_run_once() {
    let rules = r#"
schedules:
  - name: close
    cron: "59 23 * * *"
    time_zone: America/New_York
    event:
      type: report
      date: "{{ now[:10] }}"
      trades: "{{ state.daily.count }}"
"#;
    let routes = "routes:\n  - name: reports\n    match: {type: report}\n    to: [console]\n";
    let (mut router, mut clock) = router_with(rules).await;
    std::fs::write(router.dir.path().join("rules/routes.yaml"), routes).expect("routes");
    std::fs::write(
        router.dir.path().join("templates/console/default.yaml"),
        "text: \"{{ event.type }} {{ event.time }} trades={{ event.trades }}\"\n",
    )
    .expect("template");
    let outcome: Value = reqwest::Client::new()
        .post(format!("{}/v1/reload", router.url))
        .send()
        .await
        .expect("reload")
        .json()
        .await
        .expect("JSON");
    assert_eq!(outcome["ok"], true, "{outcome}");
    // 10:00 UTC; 23:59 in New York is 04:59 UTC the next day.
    clock.advance_and_tick(&router, 18 * 3600 + 58 * 60).await;
    assert!(console_texts(&router).is_empty(), "04:58 UTC: not yet");
    clock.advance_and_tick(&router, 60).await;
    let sent = console_texts_until(&router, 1).await;
    assert_eq!(sent, ["report 2026-12-05T04:59:00Z trades=0"]);
    // Down for three days: the missed runs are made once, at the start.
    router.kill();
    clock.advance(3 * 86_400);
    router.restart().await;
    let sent = console_texts_until(&router, 2).await;
    assert_eq!(sent[1], "report 2026-12-08T04:59:00Z trades=0");
    clock.advance_and_tick(&router, 60).await;
    assert_eq!(console_texts(&router).len(), 2, "once");
}

#[tokio::test]
async fn a_count_window_goes_on_across_a_restart() {
    let rules = r#"
alerts:
  - name: error-burst
    match: {type: failure}
    count: {at_least: 3, within: 10m}
    annotations: {summary: "three within ten minutes"}
"#;
    let (mut router, mut clock) = router_with(rules).await;
    post(&router, json!([{"type": "failure"}, {"type": "failure"}])).await;
    clock.advance_and_tick(&router, 60).await;
    router.kill();
    router.restart().await;
    post(&router, json!({"type": "failure"})).await;
    assert_eq!(
        console_texts_until(&router, 1).await,
        ["error-burst firing three within ten minutes"]
    );
    // The window still ends ten minutes after the first two, counted before the restart.
    clock.advance_and_tick(&router, 9 * 60 - 1).await;
    assert_eq!(console_texts(&router).len(), 1);
    clock.advance_and_tick(&router, 1).await;
    assert_eq!(
        console_texts_until(&router, 2).await[1],
        "error-burst resolved three within ten minutes"
    );
}
