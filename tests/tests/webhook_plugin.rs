//! The generic webhook sink plugin: through its Rust API (the rlib) against a fake
//! receiver that checks signatures, its shipped template, and end to end, where it and
//! the Slack plugin are dropped into a running router's plugin directory and used without
//! a restart, their secrets kept out of the status page and the log.
//!
//! The plugin-API tests call the sink from the test thread, as the router's sink thread
//! would, while the fake runs on a runtime of its own. One plugin crate per test binary:
//! each plugin's rlib exports the same C entry symbol.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alert_router::render::{Markup, context};
use alert_router_plugin::{Outcome, Sink};
use alert_router_tests::fake_slack::FakeSlack;
use alert_router_tests::fake_webhook::{self, FakeWebhook};
use alert_router_tests::harness::{Router, dir_with, eventually, plugin_dir};
use alert_router_tests::host_double::{
    HostDouble, Hosted, assert_secret_free, message, reason, reason_of_fail, upstream_runtime,
};
use alert_router_tests::templates;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;
use webhook::Webhook;

const WAIT: Duration = Duration::from_secs(30);
const SIGNING_SECRET: &str = "whsec-7Hq2pL9xR4vN8kD3";
const BEARER: &str = "Bearer hdr-Zt5mQ1wE6yU0";

fn webhook_sink(host: &Arc<HostDouble>, settings: Value) -> Hosted<Webhook> {
    let settings = serde_json::from_value(settings).expect("webhook settings");
    host.create::<Webhook>(settings)
        .expect("the webhook sink starts")
}

fn signed_sink(host: &Arc<HostDouble>, hook: &FakeWebhook) -> Hosted<Webhook> {
    webhook_sink(
        host,
        json!({"url": hook.url(), "secret": SIGNING_SECRET, "headers": {"Authorization": BEARER},
               "timeout": "2s"}),
    )
}

#[test]
fn webhook_sends_the_payload_signed_with_the_idempotency_key() {
    let rt = upstream_runtime();
    let hook = rt.block_on(FakeWebhook::start(Some(SIGNING_SECRET)));
    let host = HostDouble::new();
    let mut sink = signed_sink(&host, &hook);
    let payload = json!({"event": {"type": "trade_closed", "pnl": 200.5, "labels": {"env": "prod"}},
                         "rule": "r", "sink": "hook"});
    assert_eq!(sink.deliver(message("msg-1", 1, &payload)), Outcome::Ok);
    let accepted = hook.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        accepted[0].body, payload,
        "the body is the payload, types kept"
    );
    assert_eq!(accepted[0].idempotency_key, "msg-1");
    assert!(accepted[0].signed, "the receiver verified the signature");
    assert_eq!(accepted[0].authorization.as_deref(), Some(BEARER));
    assert_eq!(accepted[0].method, "POST");

    // A retry of the same message carries the same key: the receiver can drop it.
    assert_eq!(sink.deliver(message("msg-1", 2, &payload)), Outcome::Ok);
    assert_eq!(hook.duplicates(), 1);
    assert_eq!(hook.accepted().len(), 1);

    // PUT when asked.
    let mut put = webhook_sink(
        &host,
        json!({"url": hook.url(), "method": "PUT", "secret": SIGNING_SECRET}),
    );
    assert_eq!(put.deliver(message("msg-2", 1, &payload)), Outcome::Ok);
    assert_eq!(hook.accepted()[1].method, "PUT");
    assert_secret_free(&host, &[], &[hook.token(), SIGNING_SECRET, BEARER]);
}

#[test]
fn webhook_with_the_wrong_secret_is_refused_by_the_receiver() {
    let rt = upstream_runtime();
    let hook = rt.block_on(FakeWebhook::start(Some(SIGNING_SECRET)));
    let host = HostDouble::new();
    let mut sink = webhook_sink(
        &host,
        json!({"url": hook.url(), "secret": "not-the-right-one"}),
    );
    let outcome = sink.deliver(message("m", 1, &json!({"a": 1})));
    let Outcome::Fail { reason } = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        reason.contains("401 Unauthorized: bad signature"),
        "{reason}"
    );
    assert!(hook.accepted().is_empty());
    // Unsigned requests to a signing receiver are refused too.
    let mut unsigned = webhook_sink(&host, json!({"url": hook.url()}));
    let outcome = unsigned.deliver(message("m", 1, &json!({"a": 1})));
    assert!(
        reason_of_fail(&outcome).contains("missing signature"),
        "{outcome:?}"
    );
    assert_secret_free(
        &host,
        std::slice::from_ref(reason),
        &[hook.token(), "not-the-right-one"],
    );
}

/// An HTTP date `seconds` from now (IMF-fixdate, as RFC 9110 writes it).
fn http_date_in(seconds: i64) -> String {
    let at = OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    at.format(format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .expect("an HTTP date")
}

#[test]
fn webhook_503_is_retried_after_its_retry_after_in_seconds_or_as_a_date() {
    let rt = upstream_runtime();
    let hook = rt.block_on(FakeWebhook::start(Some(SIGNING_SECRET)));
    let host = HostDouble::new();
    let mut sink = signed_sink(&host, &hook);
    hook.script([
        fake_webhook::Reply::Unavailable {
            retry_after: "2".into(),
        },
        fake_webhook::Reply::Unavailable {
            retry_after: http_date_in(5),
        },
    ]);
    let payload = json!({"n": 1});
    let first = sink.deliver(message("m", 1, &payload));
    assert!(
        matches!(&first, Outcome::Retry { after: Some(a), reason }
            if *a == Duration::from_secs(2) && reason.contains("503 Service Unavailable: down for maintenance")),
        "{first:?}"
    );
    let second = sink.deliver(message("m", 2, &payload));
    match &second {
        // Whole seconds in the date, so 4 to 5 s remain.
        Outcome::Retry { after: Some(a), .. } => {
            assert!(
                *a >= Duration::from_secs(3) && *a <= Duration::from_secs(5),
                "{a:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sink.deliver(message("m", 3, &payload)), Outcome::Ok);
    assert_eq!(hook.accepted().len(), 1);
    assert_secret_free(
        &host,
        &[reason(&first).to_owned(), reason(&second).to_owned()],
        &[hook.token(), SIGNING_SECRET, BEARER],
    );
}

#[test]
fn webhook_400_fails_with_the_start_of_the_body() {
    let rt = upstream_runtime();
    let hook = rt.block_on(FakeWebhook::start(None));
    let host = HostDouble::new();
    let mut sink = webhook_sink(&host, json!({"url": hook.url()}));
    let body = format!("schema error: field `qty` {}END", "x".repeat(300));
    hook.script([fake_webhook::Reply::BadRequest(body)]);
    let outcome = sink.deliver(message("m", 1, &json!({"qty": "lots"})));
    let reason = reason_of_fail(&outcome);
    assert!(
        reason.contains("400 Bad Request: schema error: field `qty` xxx"),
        "{reason}"
    );
    assert!(
        !reason.contains("END"),
        "only the first 200 characters: {reason}"
    );
    assert!(
        reason.contains("(POST http://127.0.0.1:"),
        "names the endpoint: {reason}"
    );
    assert!(!reason.contains(hook.token()), "{reason}");
    assert!(hook.accepted().is_empty());
}

#[test]
fn webhook_hang_past_the_timeout_is_retried() {
    let rt = upstream_runtime();
    let hook = rt.block_on(FakeWebhook::start(Some(SIGNING_SECRET)));
    let host = HostDouble::new();
    let mut sink = webhook_sink(
        &host,
        json!({"url": hook.url(), "secret": SIGNING_SECRET, "timeout": "300ms"}),
    );
    hook.script([fake_webhook::Reply::Hang(Duration::from_secs(5))]);
    let started = Instant::now();
    let outcome = sink.deliver(message("m", 1, &json!({"n": 1})));
    let took = started.elapsed();
    assert!(
        matches!(&outcome, Outcome::Retry { after: None, reason } if reason.contains("timed out")),
        "{outcome:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "gave up after the timeout, took {took:?}"
    );
    assert_eq!(sink.deliver(message("m", 2, &json!({"n": 1}))), Outcome::Ok);

    // Nobody listening: retried, and the URL stays out of the reason.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address").port()
    };
    let url = format!("http://127.0.0.1:{closed}/hooks/tok_unreachable_0123456789");
    let mut gone = webhook_sink(&host, json!({"url": url, "timeout": "1s"}));
    let outcome = gone.deliver(message("m", 1, &json!({})));
    assert!(
        matches!(&outcome, Outcome::Retry { reason, .. } if reason.contains("no answer from the webhook")),
        "{outcome:?}"
    );
    assert_secret_free(&host, &[reason(&outcome).to_owned()], &["tok_unreachable"]);
}

#[test]
fn bad_webhook_settings_are_refused_without_echoing_secrets() {
    let host = HostDouble::new();
    for (settings, want) in [
        (json!({"url": "ftp://x/tok_secret_abc"}), "settings.url"),
        (
            json!({"url": "http://x/tok_secret_abc", "method": "DELETE"}),
            "settings.method",
        ),
        (
            json!({"url": "http://x/tok_secret_abc", "timeout": "soon"}),
            "settings.timeout",
        ),
        (
            json!({"url": "http://x/tok_secret_abc", "headers": {"X-Alert-Router-Signature": "tok_secret_abc"}}),
            "settings.headers.X-Alert-Router-Signature",
        ),
    ] {
        let settings = serde_json::from_value(settings).expect("shape");
        let error = host.create::<Webhook>(settings).err().expect("refused");
        assert!(error.contains(want), "{error}");
        assert!(!error.contains("tok_secret"), "{error}");
    }
}

// ---------------------------------------------------------------------------------
// The Slack plugin.

#[test]
fn the_webhook_template_sends_the_event_with_native_types() {
    let templates = templates::shipped("webhook", Markup::None);
    let now = "2025-11-03T23:59:59Z";
    let event = json!({"type": "trade_closed", "severity": "info", "time": now, "id": "e1",
        "labels": {"env": "prod"}, "symbol": "ETH/USDT", "pnl": 200.5, "quantity": 2, "win": true, "note": "a < b & c"});
    let id = templates
        .resolve("hook", "webhook", "trade_closed")
        .expect("default.yaml");
    let payload = templates
        .render(id, &context(&event, "trading", "hook", "webhook", now))
        .expect("renders");
    assert_eq!(
        payload,
        json!({"event": event, "rule": "trading", "sink": "hook"})
    );
}

// ---------------------------------------------------------------------------------
// End to end: dropped into a running router.

fn trade_closed() -> Value {
    json!({"type": "trade_closed", "time": "2025-11-03T17:30:00Z", "symbol": "ETH/USDT", "side": "SELL",
           "entry_price": 2500, "exit_price": 2600, "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0,
           "reason": "Take Profit", "duration": "3 hours"})
}

#[tokio::test]
async fn slack_and_webhook_dropped_into_a_running_router_deliver_without_a_restart() {
    let slack = FakeSlack::start().await;
    let hook = FakeWebhook::start(Some(SIGNING_SECRET)).await;
    // Only the console plugin at first, in a directory of the test's own.
    let dir = dir_with(&[
        (
            "router.yaml",
            "plugins: {dirs: [\"{dir}/plugins\"]}\nrules: rules\ntemplates: \"{repo}/templates\"\nsinks:\n  console:\n    plugin: console\n    settings: {path: \"{dir}/console.txt\"}\n",
        ),
        (
            "rules/main.yaml",
            "routes:\n  - name: main\n    to: [console]\n",
        ),
    ]);
    std::fs::create_dir_all(dir.path().join("plugins")).expect("plugins dir");
    std::fs::copy(
        plugin_dir().join("libconsole.so"),
        dir.path().join("plugins/libconsole.so"),
    )
    .expect("copy console");
    let router = Router::start_in(dir).await;

    // Drop the plugins in, then add sinks and a route for them.
    for lib in ["libslack.so", "libwebhook.so"] {
        std::fs::copy(
            plugin_dir().join(lib),
            router.dir.path().join("plugins").join(lib),
        )
        .unwrap_or_else(|e| panic!("drop {lib} in: {e}"));
    }
    let config = router.dir.path().join("router.yaml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "  slack:\n    plugin: slack\n    settings:\n      webhook_url: \"{}\"\n  hook:\n    plugin: webhook\n    settings:\n      url: \"{}\"\n      secret: \"{SIGNING_SECRET}\"\n      headers: {{Authorization: \"{BEARER}\"}}\n      timeout: 5s\n",
        slack.webhook_url(),
        hook.url()
    ));
    std::fs::write(&config, text).expect("add the sinks");
    std::fs::write(
        router.dir.path().join("rules/main.yaml"),
        "routes:\n  - name: trades\n    match: {type: trade_closed}\n    to: [slack, hook]\n    continue: true\n  - name: main\n    to: [console]\n",
    )
    .expect("route to them");
    router
        .status_until("both new sinks", |s| {
            s["sinks"]["slack"]["plugin"] == "slack" && s["sinks"]["hook"]["plugin"] == "webhook"
        })
        .await;

    assert_eq!(router.post_events(trade_closed().to_string()).await.0, 202);
    let posted = eventually(WAIT, "the Slack message", || {
        slack.accepted().into_iter().next()
    })
    .await;
    let body = posted.body.to_string();
    assert!(
        body.contains("✅ Trade Closed") && body.contains("+$200.00 (+4.00%)"),
        "{body}"
    );
    let received = eventually(WAIT, "the signed webhook body", || {
        hook.accepted().into_iter().next()
    })
    .await;
    assert!(received.signed);
    assert_eq!(received.body["event"]["type"], "trade_closed");
    assert_eq!(received.body["event"]["pnl"], 200, "numbers stay numbers");
    assert_eq!(received.body["rule"], "trades");
    assert_eq!(received.body["sink"], "hook");
    assert!(
        !received.idempotency_key.is_empty(),
        "every request carries the message id"
    );

    // The secrets stay out of the status page and the log.
    let status = router.get_text("/v1/status").await;
    let stderr = router.stderr();
    for secret in [
        slack.secret(),
        hook.token(),
        SIGNING_SECRET,
        "hdr-Zt5mQ1wE6yU0",
    ] {
        assert!(!status.contains(secret), "{secret} in the status: {status}");
        assert!(!stderr.contains(secret), "{secret} in the log");
    }
}
