//! The Slack sink plugin: through its Rust API (the rlib) against a fake Slack incoming
//! webhook that enforces Slack's limits and answers as Slack does, and its shipped
//! templates. Dropped into a running router: tests/webhook_plugin.rs.
//!
//! The plugin-API tests call the sink from the test thread, as the router's sink thread
//! would, while the fake runs on a runtime of its own. One plugin crate per test binary:
//! each plugin's rlib exports the same C entry symbol.

use std::sync::Arc;
use std::time::Duration;

use alert_router::render::{Markup, context};
use alert_router_plugin::{Outcome, Sink};
use alert_router_tests::fake_slack::{self, FakeSlack};
use alert_router_tests::host_double::{
    HostDouble, Hosted, assert_secret_free, message, reason, reason_of_fail, upstream_runtime,
};
use alert_router_tests::templates;
use serde_json::{Value, json};
use slack::Slack;

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
    let rt = upstream_runtime();
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
    let rt = upstream_runtime();
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
    let rt = upstream_runtime();
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
    let rt = upstream_runtime();
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
    let templates = templates::shipped("slack", Markup::Mrkdwn);
    let rt = upstream_runtime();
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
