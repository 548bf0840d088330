//! End to end: events built to hurt, posted to the real router over HTTP. Ids that forge
//! log lines, duplicate keys, times no sink can write, deep nesting, too many fields and
//! an endless stream of new event types; each is refused with a 400 that names the field,
//! the place in the batch and the limit, or (the types) counted in bounded space.

use std::time::Duration;

use alert_router_tests::harness::{Router, eventually_async};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// A router whose console sink appends JSON lines, every event routed to it.
async fn router() -> Router {
    Router::start(
        r#"
plugins: {dirs: ["{plugins}"]}
rules: rules
templates: templates
sinks:
  console:
    plugin: console
    settings: {path: "{dir}/out.jsonl", format: json}
"#,
        &[
            (
                "rules/r.yaml",
                "routes:\n  - name: all\n    to: [console]\n",
            ),
            (
                "templates/console/default.yaml",
                "text: \"{{ event.type }}\"\n",
            ),
        ],
    )
    .await
}

/// Posts `body`, expects a 400, and checks the answer's `expected` keys and that its
/// error mentions each of `words`.
async fn refused(router: &Router, body: &str, expected: Value, words: &[&str]) {
    let (status, answer) = router.post_events(body).await;
    assert_eq!(status, 400, "{body} -> {answer}");
    for (k, v) in expected.as_object().into_iter().flatten() {
        assert_eq!(&answer[k], v, "{body} -> {answer}");
    }
    let error = answer["error"].as_str().unwrap_or_default();
    for word in words {
        assert!(error.contains(word), "{body} -> {error:?} lacks {word:?}");
    }
}

#[tokio::test]
async fn ids_must_be_printable_and_are_counted_in_characters() {
    let router = router().await;
    let forged = "{\"type\": \"a\"}\n{\"type\": \"a\", \"id\": \"x\\nINFO forged line\"}\n";
    refused(
        &router,
        forged,
        json!({"line": 2, "field": "id"}),
        &["control character", "U+000A"],
    )
    .await;
    refused(
        &router,
        &json!({"type": "a", "id": "tab\there"}).to_string(),
        json!({"field": "id"}),
        &["U+0009"],
    )
    .await;
    // 100 `é` are 200 bytes but 100 characters: within the 128.
    let accented = "é".repeat(100);
    let (status, answer) = router
        .post_events(json!({"type": "a", "id": accented}).to_string())
        .await;
    assert_eq!((status, &answer["ids"]), (202, &json!([accented])));
    refused(
        &router,
        &json!({"type": "a", "id": "é".repeat(129)}).to_string(),
        json!({"field": "id"}),
        &["129 characters", "128"],
    )
    .await;
}

#[tokio::test]
async fn duplicate_keys_are_refused_naming_the_key_and_the_line() {
    let router = router().await;
    refused(
        &router,
        r#"{"type": "a", "type": "b"}"#,
        json!({"field": "type"}),
        &["duplicate key", "once"],
    )
    .await;
    refused(
        &router,
        "{\"type\": \"a\"}\n{\"type\": \"a\", \"labels\": {\"env\": \"prod\", \"env\": \"dev\"}}\n",
        json!({"line": 2, "field": "labels.env"}),
        &["duplicate key"],
    )
    .await;
    refused(
        &router,
        r#"[{"type": "a"}, {"type": "a", "x": [{"k": 1, "k": 2}]}]"#,
        json!({"index": 1, "field": "x[0].k"}),
        &["duplicate key"],
    )
    .await;
    // One object over several lines is still one object.
    refused(
        &router,
        "{\n  \"type\": \"a\",\n  \"id\": \"1\",\n  \"id\": \"2\"\n}\n",
        json!({"field": "id"}),
        &["duplicate key"],
    )
    .await;
    // The same key in different objects is no duplicate.
    let (status, answer) = router
        .post_events(r#"{"type": "a", "x": {"type": 1}, "labels": {"type": "t"}}"#)
        .await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test]
async fn times_no_sink_can_write_are_refused() {
    let router = router().await;
    for time in [
        "0000-01-01T00:00:00+23:59",
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:59:59-23:59",
    ] {
        refused(
            &router,
            &json!({"type": "a", "time": time}).to_string(),
            json!({"field": "time"}),
            &["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"],
        )
        .await;
    }
    let (status, answer) = router
        .post_events(r#"[{"type": "a", "time": "0001-01-01T00:00:00Z"}, {"type": "b", "time": "9999-12-31T23:59:59+00:00"}]"#)
        .await;
    assert_eq!(status, 202, "{answer}");
    // The router still runs and the console writes both.
    eventually_async(WAIT, "both events at the console", || async {
        let text = std::fs::read_to_string(router.dir.path().join("out.jsonl")).unwrap_or_default();
        (text.lines().count() >= 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn nesting_fields_and_labels_have_limits_named_in_the_refusal() {
    let router = router().await;
    let nest = |levels: usize| {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!({"n": v});
        }
        v
    };
    // The event object is the first level: 31 more are allowed.
    let mut ok = json!({"type": "a"});
    ok["n"] = nest(31);
    let (status, answer) = router.post_events(ok.to_string()).await;
    assert_eq!(status, 202, "{answer}");
    let mut deep = json!({"type": "a"});
    deep["n"] = nest(40);
    refused(
        &router,
        &deep.to_string(),
        json!({"field": format!("n{}", ".n".repeat(31))}),
        &["32 levels"],
    )
    .await;
    let mut wide = json!({"type": "a"});
    for i in 0..257 {
        wide[format!("f{i}")] = json!(i);
    }
    refused(
        &router,
        &wide.to_string(),
        json!({}),
        &["257 fields", "256"],
    )
    .await;
    let labels: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("l{i}"), json!("v"))).collect();
    refused(
        &router,
        &json!({"type": "a", "labels": labels}).to_string(),
        json!({"field": "labels"}),
        &["65 labels", "64"],
    )
    .await;
    refused(
        &router,
        &json!({"type": "t".repeat(129)}).to_string(),
        json!({"field": "type"}),
        &["129 characters", "128"],
    )
    .await;
}

/// The `alert_router_events_total` samples of a `/metrics` page.
fn type_series(metrics: &str) -> Vec<&str> {
    metrics
        .lines()
        .filter(|l| l.starts_with("alert_router_events_total{"))
        .collect()
}

#[tokio::test]
async fn endless_new_types_are_counted_in_bounded_space() {
    let router = router().await;
    let batch = |from: usize, to: usize| {
        (from..to)
            .map(|i| json!({"type": format!("type-{i:05}")}).to_string() + "\n")
            .collect::<String>()
    };
    let (status, answer) = router.post_events(batch(0, 600)).await;
    assert_eq!(status, 202, "{answer}");
    let metrics = router.get_text("/metrics").await;
    let series = type_series(&metrics);
    assert_eq!(series.len(), 501, "500 types and (other)");
    assert!(
        series.contains(&"alert_router_events_total{type=\"(other)\"} 100"),
        "{series:?}"
    );
    let status = router.get_json("/v1/status").await;
    let by_type = status["events"]["by_type"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(by_type.len(), 501);
    assert_eq!(by_type["(other)"], 100);
    assert_eq!(by_type["type-00000"], 1);
    let (metrics_len, status_len) = (metrics.len(), status.to_string().len());

    // 3000 more new types, and a known one again: nothing grows but the counts.
    for from in [600, 1600, 2600] {
        let (code, answer) = router.post_events(batch(from, from + 1000)).await;
        assert_eq!(code, 202, "{answer}");
    }
    let (code, _) = router.post_events(r#"{"type": "type-00001"}"#).await;
    assert_eq!(code, 202);
    let metrics = router.get_text("/metrics").await;
    let series = type_series(&metrics);
    assert_eq!(series.len(), 501);
    assert!(
        series.contains(&"alert_router_events_total{type=\"(other)\"} 3100"),
        "{series:?}"
    );
    assert!(series.contains(&"alert_router_events_total{type=\"type-00001\"} 2"));
    let status = router.get_json("/v1/status").await;
    assert_eq!(status["events"]["by_type"]["(other)"], 3100);
    // Counts gain a digit at most; the queues of the console sink may differ a little.
    assert!(
        metrics.len() < metrics_len + 200,
        "{metrics_len} -> {}",
        metrics.len()
    );
    assert!(
        status.to_string().len() < status_len + 200,
        "{status_len} -> {}",
        status.to_string().len()
    );
    assert!(metrics.len() < 64 * 1024 && status.to_string().len() < 64 * 1024);
}
