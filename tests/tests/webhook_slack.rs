//! The generic webhook and Slack sink plugins: through their Rust API (the rlibs)
//! against a fake receiver and a fake Slack incoming webhook, their shipped templates,
//! and end to end with the real router, where both are dropped into a running router's
//! plugin directory and used without a restart, their secrets kept out of the status
//! page and the log.
//!
//! The plugin-API tests call the sink from the test thread, as the router's sink thread
//! would, while the fakes run on a tokio runtime of their own.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alert_router_plugin::{Message, Outcome, Sink};
use alert_router_tests::fake_slack::{self, FakeSlack};
use alert_router_tests::fake_webhook::{self, FakeWebhook};
use alert_router_tests::harness::{Router, dir_with, eventually, plugin_dir};
use alert_router_tests::host_double::{HostDouble, Hosted};
use serde_json::{Value, json};
use slack::Slack;
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::runtime::Runtime;
use webhook::Webhook;

const WAIT: Duration = Duration::from_secs(30);
const SIGNING_SECRET: &str = "whsec-7Hq2pL9xR4vN8kD3";
const BEARER: &str = "Bearer hdr-Zt5mQ1wE6yU0";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the fake")
}

fn message(id: &str, attempt: u32, payload: &Value) -> Message {
    Message {
        id: id.to_owned(),
        sink: "test".to_owned(),
        attempt,
        payload: payload.clone(),
        event: json!({}),
    }
}

fn reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Ok => "",
        Outcome::Retry { reason, .. } | Outcome::Fail { reason } => reason,
    }
}

/// Nothing secret in any reason or log line.
fn assert_secret_free(host: &HostDouble, reasons: &[String], secrets: &[&str]) {
    let logs = host.logs();
    for secret in secrets {
        for text in reasons.iter().chain(&logs) {
            assert!(!text.contains(secret), "{secret:?} leaked into {text:?}");
        }
    }
}

// ---------------------------------------------------------------------------------
// The webhook plugin.

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
    let rt = runtime();
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
    let rt = runtime();
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

fn reason_of_fail(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Fail { reason } => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
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
    let rt = runtime();
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
    let rt = runtime();
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
    let rt = runtime();
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

fn slack_sink(host: &Arc<HostDouble>, url: &str) -> Hosted<Slack> {
    let settings = serde_json::from_value(json!({"webhook_url": url})).expect("slack settings");
    host.create::<Slack>(settings)
        .expect("the slack sink starts")
}

fn small_message() -> Value {
    json!({"text": "✅ Trade Closed: ETH/USDT +$200.00",
           "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "✅ Trade Closed"}},
                      {"type": "section", "fields": [{"type": "mrkdwn", "text": "*📊 Symbol:*\nETH/USDT"}]}]})
}

/// Every limit broken at once: 50,000 characters of text, a 400-character header, a
/// 10,000-character section and 120 blocks.
fn oversized_message() -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": "H".repeat(400)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": "word ".repeat(2000)}}),
    ];
    blocks.extend((0..118).map(
        |n| json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("line {n}")}}),
    ));
    json!({"text": "t".repeat(50_000), "blocks": blocks})
}

#[test]
fn slack_posts_a_message_and_an_oversized_one_arrives_whole_without_a_400() {
    let rt = runtime();
    let fake = rt.block_on(FakeSlack::start());
    let host = HostDouble::new();
    let mut sink = slack_sink(&host, &fake.webhook_url());
    assert_eq!(
        sink.deliver(message("m1", 1, &small_message())),
        Outcome::Ok
    );
    assert_eq!(fake.accepted()[0].body, small_message());

    assert_eq!(
        sink.deliver(message("m2", 1, &oversized_message())),
        Outcome::Ok
    );
    assert!(
        fake.requests().iter().all(|r| r.status == 200),
        "{:?}",
        fake.requests()
    );
    let parts: Vec<Value> = fake.accepted()[1..]
        .iter()
        .map(|a| a.body.clone())
        .collect();
    // header + 10,000 characters in 4 sections + 118 lines = 123 blocks: 3 messages.
    assert_eq!(parts.len(), 3);
    let blocks: Vec<&Value> = parts
        .iter()
        .flat_map(|p| p["blocks"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(blocks.len(), 123);
    assert_eq!(
        blocks[0]["text"]["text"]
            .as_str()
            .map(|t| t.chars().count()),
        Some(fake_slack::HEADER_MAX)
    );
    let words: usize = blocks[1..5]
        .iter()
        .map(|b| {
            b["text"]["text"]
                .as_str()
                .unwrap_or("")
                .split_whitespace()
                .count()
        })
        .sum();
    assert_eq!(words, 2000, "no word of the long section lost");
    assert_eq!(
        blocks[122]["text"]["text"], "line 117",
        "in order, to the last"
    );
    assert_eq!(
        parts[0]["text"].as_str().map(|t| t.chars().count()),
        Some(fake_slack::TEXT_MAX)
    );
    assert!(
        host.logs()
            .iter()
            .any(|l| l.contains("split into 3 messages")),
        "{:?}",
        host.logs()
    );
    assert_secret_free(&host, &[], &[fake.secret()]);
}

#[test]
fn slack_429_is_retried_after_retry_after_and_5xx_is_retried() {
    let rt = runtime();
    let fake = rt.block_on(FakeSlack::start());
    let host = HostDouble::new();
    let mut sink = slack_sink(&host, &fake.webhook_url());
    fake.script([
        fake_slack::Reply::RateLimited { retry_after: 1 },
        fake_slack::Reply::Error(500, "rollup_error"),
    ]);
    let first = sink.deliver(message("m", 1, &small_message()));
    assert!(
        matches!(&first, Outcome::Retry { after: Some(a), reason }
            if *a == Duration::from_secs(1) && reason.contains("429: rate_limited")),
        "{first:?}"
    );
    let second = sink.deliver(message("m", 2, &small_message()));
    assert!(
        matches!(&second, Outcome::Retry { after: None, reason } if reason.contains("500 Internal Server Error: rollup_error")),
        "{second:?}"
    );
    assert_eq!(sink.deliver(message("m", 3, &small_message())), Outcome::Ok);
    assert_eq!(fake.accepted().len(), 1);
    assert_secret_free(
        &host,
        &[reason(&first).to_owned(), reason(&second).to_owned()],
        &[fake.secret()],
    );
}

#[test]
fn slack_refusals_fail_with_slacks_text() {
    let rt = runtime();
    let fake = rt.block_on(FakeSlack::start());
    let host = HostDouble::new();
    let mut sink = slack_sink(&host, &fake.webhook_url());
    let mut reasons = Vec::new();
    for (status, text) in [
        (400, "invalid_payload"),
        (400, "no_text"),
        (400, "invalid_blocks"),
        (403, "action_prohibited"),
        (403, "invalid_token"),
        (404, "channel_not_found"),
        (404, "no_active_hooks"),
        (410, "channel_is_archived"),
    ] {
        fake.script([fake_slack::Reply::Error(status, text)]);
        let outcome = sink.deliver(message("m", 1, &small_message()));
        let reason = reason_of_fail(&outcome).to_owned();
        assert!(
            reason.contains(&format!("{status} ")) && reason.contains(text),
            "{reason}"
        );
        reasons.push(reason);
    }
    // The fake's own checks: a wrong secret in the URL, and a message with nothing in it.
    let wrong = fake
        .webhook_url()
        .replace(fake.secret(), "NotTheSecret0000000000");
    let mut revoked = slack_sink(&host, &wrong);
    let outcome = revoked.deliver(message("m", 1, &small_message()));
    assert!(
        reason_of_fail(&outcome).contains("403 Forbidden: invalid_token"),
        "{outcome:?}"
    );
    assert!(
        !reason_of_fail(&outcome).contains("NotTheSecret"),
        "{outcome:?}"
    );
    let outcome = sink.deliver(message("m", 1, &json!({"text": "", "blocks": []})));
    assert!(
        reason_of_fail(&outcome).contains("empty"),
        "refused before sending: {outcome:?}"
    );
    assert!(fake.accepted().is_empty());
    assert_secret_free(&host, &reasons, &[fake.secret()]);
}

#[test]
fn slack_finishes_a_half_sent_message_without_repeats() {
    let rt = runtime();
    let fake = rt.block_on(FakeSlack::start());
    let host = HostDouble::new();
    let mut sink = slack_sink(&host, &fake.webhook_url());
    fake.script([
        fake_slack::Reply::Normal,
        fake_slack::Reply::Error(503, "service_unavailable"),
    ]);
    let payload = oversized_message();
    let first = sink.deliver(message("m", 1, &payload));
    assert!(
        matches!(&first, Outcome::Retry { reason, .. } if reason.starts_with("part 2 of 3: ")),
        "{first:?}"
    );
    assert_eq!(sink.deliver(message("m", 2, &payload)), Outcome::Ok);
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 3, "part 1 once, then parts 2 and 3");
    assert_eq!(
        accepted[2].body["blocks"].as_array().map(Vec::len),
        Some(23)
    );
}

// ---------------------------------------------------------------------------------
// The shipped templates.

/// Loads `templates/<group>` alone, with `markup`.
fn load_templates(
    group: &str,
    markup: alert_router::render::Markup,
) -> alert_router::render::Templates {
    use alert_router::render::{Markup, Templates};
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{group}-templates-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(group)).expect("scratch directory");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../templates")
        .join(group);
    for entry in std::fs::read_dir(&source).expect("the template directory") {
        let path = entry.expect("a directory entry").path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, dir.join(group).join(name)).expect("copy a template");
        }
    }
    let loaded = Templates::load(&dir, &|g| if g == group { markup } else { Markup::None });
    let _ = std::fs::remove_dir_all(&dir);
    loaded.unwrap_or_else(|problems| panic!("templates/{group}: {problems:?}"))
}

fn trading_events(now: &str) -> Vec<Value> {
    let base = |kind: &str, severity: &str, data: Value| {
        let mut event = json!({"type": kind, "severity": severity, "time": now, "id": format!("id-{kind}"), "labels": {}});
        for (k, v) in data.as_object().into_iter().flatten() {
            event[k] = v.clone();
        }
        event
    };
    vec![
        base(
            "trade_opened",
            "info",
            json!({"symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "quantity": 0.5,
            "strategy": "RSI<30 & MACD", "stop_loss": 44000, "take_profit": 47000}),
        ),
        base(
            "trade_opened",
            "info",
            json!({"symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "quantity": 0.5}),
        ),
        base(
            "trade_closed",
            "info",
            json!({"symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2600,
            "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0, "reason": "Take Profit", "duration": "3 hours"}),
        ),
        base(
            "trade_closed",
            "warning",
            json!({"symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2400,
            "quantity": 2.0, "pnl": -200, "pnl_pct": -4.0}),
        ),
        base(
            "error",
            "critical",
            json!({"message": "exchange <down>", "error_type": "ConnectionError",
            "component": "feed", "details": "Traceback:\n  line 1"}),
        ),
        base("error", "error", json!({"message": "boom"})),
        base(
            "daily_summary",
            "info",
            json!({"total_trades": 10, "winning_trades": 6, "losing_trades": 4, "win_rate": 60,
            "total_pnl": 350.5, "date": "2025-11-03", "best_trade": 200, "worst_trade": -80}),
        ),
        base(
            "portfolio_update",
            "info",
            json!({"total_value": 12500, "cash": 2500, "pnl": 2500, "pnl_pct": 25,
            "positions": [{"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.2, "entry_price": 45000, "current_price": 46500}]}),
        ),
        base("portfolio_update", "info", json!({"total_value": 1000})),
        base(
            "performance_metrics",
            "info",
            json!({"total_return": 25.0, "sharpe_ratio": 1.85, "win_rate": 65.0}),
        ),
        base("performance_metrics", "info", json!({})),
        base(
            "backup_done",
            "warning",
            json!({"message": "took 5 min", "size_mb": 120, "source": "cron"}),
        ),
    ]
}

#[test]
fn the_slack_templates_render_messages_slack_accepts() {
    use alert_router::render::{Markup, context};
    let templates = load_templates("slack", Markup::Mrkdwn);
    let rt = runtime();
    let fake = rt.block_on(FakeSlack::start());
    let host = HostDouble::new();
    let mut sink = slack_sink(&host, &fake.webhook_url());
    let now = "2025-11-03T23:59:59Z";
    for event in trading_events(now) {
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        let id = templates
            .resolve("slack", "slack", &kind)
            .expect("a template");
        let payload = templates
            .render(id, &context(&event, "r", "slack", "slack", now))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let outcome = sink.deliver(message(
            &format!("{kind}-{}", fake.accepted().len()),
            1,
            &payload,
        ));
        assert_eq!(outcome, Outcome::Ok, "{kind}: {payload}");
    }
    let bodies: Vec<String> = fake.accepted().iter().map(|a| a.body.to_string()).collect();
    assert!(
        bodies[0].contains("🟢 Trade Opened") && bodies[0].contains("$45,000.00"),
        "{}",
        bodies[0]
    );
    assert!(
        bodies[0].contains("RSI&lt;30 &amp; MACD"),
        "values are escaped for mrkdwn: {}",
        bodies[0]
    );
    assert!(
        !bodies[1].contains("Stop Loss"),
        "an absent field is left out: {}",
        bodies[1]
    );
    assert!(
        bodies[2].contains("✅ Trade Closed") && bodies[2].contains("+$200.00 (+4.00%)"),
        "{}",
        bodies[2]
    );
    assert!(bodies[3].contains("❌ Trade Closed"), "{}", bodies[3]);
    assert!(
        bodies[4].contains("CRITICAL: ConnectionError")
            && bodies[4].contains("exchange &lt;down&gt;"),
        "{}",
        bodies[4]
    );
    assert!(
        bodies[11].contains("*size_mb:* 120"),
        "the default lists data fields: {}",
        bodies[11]
    );
}

#[test]
fn the_webhook_template_sends_the_event_with_native_types() {
    use alert_router::render::{Markup, context};
    let templates = load_templates("webhook", Markup::None);
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
