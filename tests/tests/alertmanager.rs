//! End to end: Prometheus Alertmanager's webhook notifications (payload version 4, as
//! Alertmanager 0.34 sends them) posted to `/v1/alertmanager`, routed by the shipped rules
//! to fake Telegram and Discord servers, rendered by the shipped `alert` templates.

use std::time::Duration;

use alert_router_tests::fake_discord::FakeDiscord;
use alert_router_tests::fake_telegram::FakeTelegram;
use alert_router_tests::harness::{Router, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const CHAT: i64 = 4242;

/// A notification with two alerts, exactly as Alertmanager sends it: the receiver name
/// quoted by `regexp.QuoteMeta`, Go's zero time as a firing alert's `endsAt`, and keys
/// this endpoint does not read.
fn notification(status: &str, ends_at: &str) -> Value {
    json!({
      "receiver": "team\\.ops",
      "status": status,
      "alerts": [{
          "status": status,
          "labels": {"alertname": "HighLatency", "cluster": "prod", "instance": "api-1:8080", "severity": "critical"},
          "annotations": {"summary": "p99 latency > 500ms", "description": "api-1 p99 is 812ms"},
          "startsAt": "2026-08-01T11:50:00.000Z",
          "endsAt": ends_at,
          "generatorURL": "http://prometheus.example:9090/graph?g0.expr=histogram_quantile%28...%29&g0.tab=1",
          "fingerprint": "c0f5c3a1b2d4e6f7"
      }, {
          "status": status,
          "labels": {"alertname": "DiskFull", "instance": "db-1", "mountpoint": "/var"},
          "annotations": {"summary": "/var is 97% full"},
          "startsAt": "2026-08-01T11:40:00Z",
          "endsAt": ends_at,
          "generatorURL": "",
          "fingerprint": "0123456789abcdef"
      }],
      "groupLabels": {"alertname": "HighLatency"},
      "commonLabels": {},
      "commonAnnotations": {},
      "externalURL": "http://alertmanager.example:9093",
      "version": "4",
      "groupKey": "{}:{alertname=\"HighLatency\"}",
      "truncatedAlerts": 0,
      "notification_reason": "first notification"
    })
}

async fn post(router: &Router, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/alertmanager", router.url))
        .header("user-agent", "Alertmanager/0.34.0")
        .json(body)
        .send()
        .await
        .expect("POST /v1/alertmanager");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_notifications_reach_the_chats_once_each_and_resolve() {
    let tg = FakeTelegram::start("110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw").await;
    let dc = FakeDiscord::start().await;
    let router = Router::start(
        &format!(
            r#"plugins: {{dirs: ["{{plugins}}"]}}
rules: {{shipped-rules}}
templates: "{{repo}}/templates"
sinks:
  console:
    plugin: console
    settings: {{path: "{{dir}}/console.txt"}}
  dashboard: {{plugin: dashboard, enabled: false}}
  telegram:
    plugin: telegram
    settings: {{bot_token: "{}", api_url: "{}", chat_ids: [{CHAT}], commands: false}}
  discord:
    plugin: discord
    settings: {{webhook_url: "{}"}}
"#,
            tg.token(),
            tg.api_url(),
            dc.webhook_url()
        ),
        &[],
    )
    .await;

    let firing = notification("firing", "0001-01-01T00:00:00Z");
    let (status, body) = post(&router, &firing).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["ids"],
        json!([
            "am:c0f5c3a1b2d4e6f7:firing:2026-08-01T11:50:00.000Z",
            "am:0123456789abcdef:firing:2026-08-01T11:40:00Z"
        ])
    );
    let sent = eventually(WAIT, "two alerts in the chat", || {
        let m = tg.messages_to(CHAT);
        (m.len() == 2).then_some(m)
    })
    .await;
    assert!(
        sent[0]
            .visible
            .starts_with("🔥 FIRING: HighLatency (critical)"),
        "{}",
        sent[0].visible
    );
    assert!(
        sent[0].visible.contains("p99 latency > 500ms"),
        "escaped for HTML, shown as written: {}",
        sent[0].visible
    );
    assert!(
        sent[0].visible.contains("cluster=prod"),
        "{}",
        sent[0].visible
    );
    assert!(
        sent[0].text.contains("<a href=\"http://prometheus.example:9090/graph?g0.expr=histogram_quantile%28...%29&amp;g0.tab=1\">Graph</a>"),
        "{}",
        sent[0].text
    );
    assert!(
        sent[1].visible.starts_with("🔥 FIRING: DiskFull (warning)"),
        "no severity label: a warning: {}",
        sent[1].visible
    );
    let embeds = eventually(WAIT, "two embeds at Discord", || {
        let a = dc.accepted();
        (a.len() == 2).then_some(a)
    })
    .await;
    assert_eq!(
        embeds[0].body["embeds"][0]["title"],
        json!("🔥 FIRING: HighLatency")
    );
    assert_eq!(
        embeds[0].body["embeds"][0]["url"],
        json!("http://prometheus.example:9090/graph?g0.expr=histogram_quantile%28...%29&g0.tab=1")
    );
    assert!(
        embeds[1].body["embeds"][0].get("url").is_none(),
        "an empty generatorURL is left out"
    );

    // Alertmanager retries a notification it thinks failed: nothing is sent twice.
    let (status, _) = post(&router, &firing).await;
    assert_eq!(status, 202);
    // The resolution is news.
    let (status, _) = post(&router, &notification("resolved", "2026-08-01T12:10:00Z")).await;
    assert_eq!(status, 202);
    let sent = eventually(WAIT, "two resolutions in the chat", || {
        let m = tg.messages_to(CHAT);
        (m.len() == 4).then_some(m)
    })
    .await;
    assert!(
        sent[2].visible.starts_with("✅ RESOLVED: HighLatency"),
        "{}",
        sent[2].visible
    );
    assert!(sent[2].visible.contains("resolved"), "{}", sent[2].visible);
    let status = router.get_json("/v1/status").await;
    assert_eq!(status["events"]["duplicates"], json!(2));
    assert_eq!(status["events"]["by_type"]["alert"], json!(4));
    let resolved = eventually(WAIT, "four embeds at Discord", || {
        let a = dc.accepted();
        (a.len() == 4).then_some(a)
    })
    .await;
    assert_eq!(resolved[2].body["embeds"][0]["color"], json!(0x2ecc71));
}

#[tokio::test]
async fn what_is_not_a_notification_is_refused_with_where() {
    let router = Router::start(
        r#"plugins: {dirs: ["{plugins}"]}
rules: {shipped-rules}
templates: "{repo}/templates"
sinks:
  console: {plugin: console, settings: {path: "{dir}/console.txt"}}
  dashboard: {plugin: dashboard, enabled: false}
  telegram: {plugin: telegram, enabled: false}
  discord: {plugin: discord, enabled: false}
"#,
        &[],
    )
    .await;
    let mut v = notification("firing", "0001-01-01T00:00:00Z");
    v["alerts"][1]["status"] = json!("pending");
    let (status, body) = post(&router, &v).await;
    assert_eq!(status, 400, "Alertmanager does not retry a 4xx");
    assert_eq!(
        (body["index"].clone(), body["field"].clone()),
        (json!(1), json!("status"))
    );
    let (status, body) = post(&router, &json!({"type": "trade_opened"})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("not an Alertmanager webhook notification")),
        "{body}"
    );
    let status = router.get_json("/v1/status").await;
    assert_eq!(
        status["events"]["accepted"],
        json!(0),
        "nothing of either was taken"
    );
}
