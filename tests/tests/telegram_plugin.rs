//! The Telegram sink plugin through its Rust API (the rlib), against the fake Telegram
//! Bot API server, with the real templates rendered by the router's template layer:
//! the original module's example events arrive as the golden files say; values full of
//! markup arrive escaped and accepted; a 10,000-character message arrives as several
//! valid messages; flood control turns into a retry-after and nothing is lost or sent
//! twice; a 5xx is a retry at once, naming the status (no pause in the plugin: with the
//! real router the next attempt comes after the router's backoff); markup Telegram cannot parse is resent as plain text; refusals fail with
//! Telegram's description; commands are answered in allowed chats with data from the
//! host, and strangers get nothing and are counted; `/mute` holds notifications and
//! `/unmute` reports them; `/silence`, `/silences` and `/unsilence` set, list and end
//! the router's silences (with the real router, under both isolations: a silenced event
//! reaches no chat, the router's reason for a bad matcher reaches the user, and an old
//! router is named as such); no update is answered twice; the bot token never appears in
//! a reason or a log line; a failed `getMe` (refused token, unreachable Bot API) shows
//! in the sink's health, through the host and, with the real router, in `/v1/status`.
//!
//! Each test runs the fake on a tokio runtime of its own and calls the sink from the
//! test thread, as the router's sink thread would. Each uses its own bot id: the plugin
//! shares a bot's polling offset and mute between instances in one process.
//!
//! Golden files live in `tests/golden/telegram/`; `UPDATE_GOLDEN=1` rewrites them from
//! what the fake accepted (review the diff before committing).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use alert_router::render::{Markup, Templates};
use alert_router_plugin::{HostError, Message, Outcome, Sink};
use alert_router_tests::fake_telegram::{FakeTelegram, Reply, Sent};
use alert_router_tests::harness::{Router, eventually};
use alert_router_tests::host_double::{self, HostDouble, Hosted, upstream_runtime};
use serde_json::{Value, json};
use telegram::{Settings, Telegram};
use tokio::runtime::Runtime;

// ---------------------------------------------------------------------------------
// Harness

/// The secret half of every test token; no reason or log line may contain it.
const SECRET: &str = "TESTsecretAAHdqTcvCH1vGWJxfSeofS";

/// How long a test waits for something the bot does by itself (answer a command).
const PATIENCE: Duration = Duration::from_secs(10);

/// A token for bot `n`: each test has its own bot.
fn token(n: u32) -> String {
    format!("{}:{SECRET}", 7_000_000 + n)
}

/// The fake, started on its own runtime (kept alive by the caller).
fn fake(bot: u32) -> (Runtime, FakeTelegram) {
    let rt = upstream_runtime();
    let fake = rt.block_on(FakeTelegram::start(&token(bot)));
    (rt, fake)
}

/// Settings for `fake`: chat 42, commands off, a pace that never holds a test's messages
/// back; `extra` overrides or adds fields.
fn settings(bot: u32, api_url: &str, extra: Value) -> Settings {
    let mut s = json!({
        "bot_token": token(bot),
        "chat_ids": [42],
        "api_url": api_url,
        "commands": false,
        "rate_limits": {"chat": "100/s", "group": "100/s", "overall": "100/s", "burst": 1000},
    });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(s).expect("test settings deserialize")
}

fn message(id: &str, attempt: u32, payload: Value, event: Value) -> Message {
    Message {
        id: id.to_owned(),
        sink: "telegram".to_owned(),
        attempt,
        payload,
        event,
    }
}

fn text(t: &str) -> Value {
    json!({"text": t})
}

/// The repository's templates/telegram, compiled by the router's template layer.
fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(|| alert_router_tests::templates::shipped("telegram", Markup::Html))
}

/// Renders the notification template for `event` as the router would.
fn render_event(event: &Value) -> Value {
    let t = templates();
    let kind = event["type"].as_str().expect("event type");
    let id = t.resolve("telegram", "telegram", kind).expect("a template");
    let ctx = alert_router::render::context(
        event,
        "test",
        "telegram",
        "telegram",
        "2025-11-03T18:00:00Z",
    );
    t.render(id, &ctx).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

/// Renders `templates/telegram/<name>.yaml` the way the host's `render` callback does:
/// the context's keys, plus `sink` and `now`.
fn render_command(name: &str, context: &Value) -> Result<Value, String> {
    let t = templates();
    let id = t
        .find("telegram", "telegram", name)
        .ok_or_else(|| format!("no template {name}"))?;
    let mut ctx = context.clone();
    ctx["sink"] = json!("telegram");
    ctx["now"] = json!("2025-11-03T18:00:00Z");
    t.render(id, &minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| e.to_string())
}

/// A sink for `fake` with a host that renders with the real templates.
fn start_sink(bot: u32, fake: &FakeTelegram, extra: Value) -> (Arc<HostDouble>, Hosted<Telegram>) {
    let host = HostDouble::with_renderer(render_command);
    let sink = host
        .create::<Telegram>(settings(bot, &fake.api_url(), extra))
        .expect("the sink accepts the fake's settings");
    (host, sink)
}

/// An event as the router hands it over: the reserved keys filled in.
fn event(kind: &str, severity: &str, fields: Value) -> Value {
    let mut e = json!({
        "type": kind, "severity": severity, "time": "2025-11-03T14:30:00Z",
        "id": format!("evt-{kind}"), "labels": {},
    });
    if let (Some(e), Some(fields)) = (e.as_object_mut(), fields.as_object()) {
        for (k, v) in fields {
            e.insert(k.clone(), v.clone());
        }
    }
    e
}

/// Delivers like the router: retries, waiting what the sink asks, until Ok or Fail.
fn deliver_until_done(
    sink: &mut Telegram,
    id: &str,
    payload: &Value,
    event: &Value,
) -> Vec<Outcome> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut outcomes = Vec::new();
    for attempt in 1.. {
        let outcome = sink.deliver(message(id, attempt, payload.clone(), event.clone()));
        outcomes.push(outcome.clone());
        match outcome {
            Outcome::Retry { after, .. } if Instant::now() < deadline => {
                std::thread::sleep(after.unwrap_or(Duration::from_millis(100)));
            }
            _ => break,
        }
    }
    outcomes
}

fn assert_never_said(host: &HostDouble, reasons: &[String]) {
    for line in host.logs() {
        assert!(
            !line.contains(SECRET),
            "the token leaked into a log line: {line}"
        );
    }
    for reason in reasons {
        assert!(
            !reason.contains(SECRET),
            "the token leaked into a reason: {reason}"
        );
    }
}

fn reason_of(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok => String::new(),
        Outcome::Retry { reason, .. } | Outcome::Fail { reason } => reason.clone(),
    }
}

/// The visible text Telegram shows for a part, with markup parsed away.
fn visible(sent: &[Sent]) -> Vec<String> {
    sent.iter().map(|m| m.visible.clone()).collect()
}

/// Pushes a command and waits for the bot's answer in that chat.
fn ask(fake: &FakeTelegram, chat: i64, user: i64, command: &str) -> Sent {
    let before = fake.messages_to(chat).len();
    fake.push_command(chat, user, command);
    fake.wait_for(PATIENCE, |f| f.messages_to(chat).get(before).cloned())
        .unwrap_or_else(|| panic!("no answer to {command} in chat {chat}"))
}

// ---------------------------------------------------------------------------------
// The original module's example events

/// The example events of the original module (its README and demo), as the router
/// hands them to sinks.
fn example_events() -> Vec<Value> {
    vec![
        event(
            "trade_opened",
            "info",
            json!({
                "symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "quantity": 0.5,
                "strategy": "RSI_MACD", "stop_loss": 44000, "take_profit": 47000,
            }),
        ),
        event(
            "trade_closed",
            "info",
            json!({
                "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2600,
                "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0, "reason": "Take Profit",
                "duration": "3 hours",
            }),
        ),
        event(
            "error",
            "critical",
            json!({
                "error_type": "RiskViolation", "message": "Max drawdown exceeded",
                "component": "risk_manager",
            }),
        ),
        event(
            "daily_summary",
            "info",
            json!({
                "date": "2025-11-03", "total_trades": 15, "winning_trades": 10,
                "losing_trades": 5, "win_rate": 66.67, "total_pnl": 250.0,
                "total_pnl_pct": 2.5, "best_trade": {"symbol": "BTC/USDT", "pnl": 180.0},
                "worst_trade": -75.5, "portfolio_value": 10250.0,
            }),
        ),
        event(
            "portfolio_update",
            "info",
            json!({
                "total_value": 12500.0, "cash": 2500.0, "pnl": 2500.0, "pnl_pct": 25.0,
                "positions": [
                    {"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.5, "entry_price": 45000,
                     "current_price": 46500, "pnl": 750.0, "pnl_pct": 3.33},
                    {"symbol": "ETH/USDT", "side": "LONG", "quantity": 2.0, "entry_price": 2400,
                     "current_price": 2500, "pnl": 200.0, "pnl_pct": 4.17},
                ],
            }),
        ),
        event(
            "performance_metrics",
            "info",
            json!({
                "total_return": 25.0, "sharpe_ratio": 1.85, "sortino_ratio": 2.4,
                "max_drawdown": 8.5, "win_rate": 65.0, "profit_factor": 1.9,
                "total_trades": 120, "volatility": 12.3, "var_95": 2.1,
            }),
        ),
    ]
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden/telegram")
        .join(format!("{name}.json"))
}

/// Compares `actual` with the golden file `name`, or rewrites it with UPDATE_GOLDEN=1.
fn assert_golden(name: &str, actual: &Value) {
    let path = golden_path(name);
    let text = serde_json::to_string_pretty(actual).expect("JSON") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, text).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    let expected: Value = serde_json::from_str(&expected).expect("golden file is JSON");
    assert_eq!(actual, &expected, "{} differs", path.display());
}

#[test]
fn the_original_modules_example_events_arrive_as_the_golden_files_say() {
    let (_rt, tg) = fake(1);
    let (host, mut sink) = start_sink(1, &tg, json!({}));
    for event in example_events() {
        let kind = event["type"].as_str().expect("type").to_owned();
        let payload = render_event(&event);
        let before = tg.messages().len();
        let outcome = sink.deliver(message(&kind, 1, payload, event));
        assert_eq!(outcome, Outcome::Ok, "{kind}");
        let sent = tg.messages();
        assert_eq!(sent.len(), before + 1, "{kind}: one message");
        let m = &sent[before];
        assert_golden(
            &kind,
            &json!({
                "chat_id": m.chat_id,
                "parse_mode": m.parse_mode,
                "disable_notification": m.disable_notification,
                "text": m.text,
                "visible": m.visible.lines().collect::<Vec<_>>(),
            }),
        );
    }
    // The seed's "Telegram Trade Opened" example, line for line, with bold labels.
    let opened = &tg.messages()[0];
    assert_eq!(
        opened.visible,
        "🟢 Trade Opened\n\n📊 Symbol: BTC/USDT\n📈 Side: BUY\n💰 Entry Price: $45,000.00\n\
         📦 Quantity: 0.5000\n💵 Total Value: $22,500.00\n🎯 Strategy: RSI_MACD\n\
         🛡️ Stop Loss: $44,000.00\n🎯 Take Profit: $47,000.00\n🕐 Time: 2025-11-03 14:30:00"
    );
    let bold: Vec<_> = opened
        .entities
        .iter()
        .filter(|e| e["type"] == "bold")
        .collect();
    assert_eq!(bold.len(), 10, "the title and nine labels are bold");
    // Routine reports arrive without sound; trades and errors with it.
    let silent: Vec<bool> = tg
        .messages()
        .iter()
        .map(|m| m.disable_notification)
        .collect();
    assert_eq!(silent, [false, false, false, true, true, true]);
    assert_never_said(&host, &[]);
}

#[test]
fn values_full_of_markup_arrive_escaped_and_accepted() {
    let (_rt, tg) = fake(2);
    let (_host, mut sink) = start_sink(2, &tg, json!({}));
    let hostile = event(
        "trade_opened",
        "info",
        json!({
            "symbol": "<script>alert(1)</script>", "side": "< &amp;", "entry_price": 1, "quantity": 1,
            "strategy": "R&D <b>not bold</b> 🚀 \"quoted\" & <i>",
        }),
    );
    let payload = render_event(&hostile);
    let outcome = sink.deliver(message("hostile", 1, payload, hostile));
    assert_eq!(outcome, Outcome::Ok);
    let m = &tg.messages()[0];
    assert_eq!(m.parse_mode.as_deref(), Some("HTML"));
    assert!(
        m.visible.contains("📊 Symbol: <script>alert(1)</script>\n"),
        "{}",
        m.visible
    );
    assert!(
        m.visible
            .contains("🎯 Strategy: R&D <b>not bold</b> 🚀 \"quoted\" & <i>\n"),
        "{}",
        m.visible
    );
    assert!(m.visible.contains("📈 Side: < &amp;\n"), "{}", m.visible);
    // Only the template's own tags became formatting.
    assert!(m.entities.iter().all(|e| e["type"] == "bold"));
    let labels = m.entities.len();
    assert_eq!(labels, 8, "{:?}", m.entities);

    // A custom event goes through default.yaml, every field escaped the same way.
    let mut custom = event(
        "deploy.finished",
        "warning",
        json!({"service": "<api> & co", "took_s": 42}),
    );
    custom["labels"] = json!({"env": "prod"});
    custom["source"] = json!("ci");
    let payload = render_event(&custom);
    assert_eq!(
        sink.deliver(message("custom", 1, payload, custom)),
        Outcome::Ok
    );
    let m = &tg.messages()[1];
    assert_eq!(
        m.visible,
        "⚠️ deploy.finished (warning)\n\nservice: <api> & co\ntook_s: 42\n🏷️ Labels: env=prod\n\
         📡 Source: ci\n🕐 Time: 2025-11-03 14:30:00"
    );
}

// ---------------------------------------------------------------------------------
// Length

/// About 10,000 characters of notification: bold spans over line breaks, entities,
/// emoji (one character each for Telegram's count, two UTF-16 units).
fn long_text() -> String {
    let mut text = String::from("📜 <b>Trade log</b>\n");
    let mut i = 0;
    while telegram::format::visible_len(&text, telegram::config::Markup::Html) < 10_000 {
        text.push_str(&format!(
            "<b>#{i:03}</b> BTC/USDT &amp; ETH 🚀 <i>entry $45,000.00\nexit $46,000.00</i> &lt;ok&gt;\n"
        ));
        i += 1;
    }
    text
}

#[test]
fn a_10000_character_message_arrives_as_several_valid_messages() {
    let (_rt, tg) = fake(3);
    let (_host, mut sink) = start_sink(3, &tg, json!({"chat_ids": [42, -1001234567890i64]}));
    let original = long_text();
    let shown = alert_router_tests::fake_telegram::html::parse(&original)
        .expect("valid HTML")
        .text;
    assert!(shown.chars().count() >= 10_000);
    let outcome = sink.deliver(message("long", 1, text(&original), json!({})));
    assert_eq!(outcome, Outcome::Ok);

    let plain_original = {
        let parsed = alert_router_tests::fake_telegram::html::parse(&original).expect("valid HTML");
        parsed.text
    };
    for chat in [42, -1001234567890] {
        let parts = tg.messages_to(chat);
        assert!(parts.len() >= 3, "chat {chat}: {} parts", parts.len());
        for part in &parts {
            assert!(part.visible.chars().count() <= 4096);
        }
        // Every part was accepted by Telegram's own parser (the fake refuses the rest),
        // and together they say exactly what the original says.
        let joined: String = parts
            .iter()
            .map(|p| {
                alert_router_tests::fake_telegram::html::parse(&p.text)
                    .expect("valid")
                    .text
            })
            .collect();
        assert_eq!(joined.trim_end(), plain_original.trim_end(), "chat {chat}");
    }
    assert!(tg.calls_to("sendMessage").iter().all(|c| c.status == 200));
}

// ---------------------------------------------------------------------------------
// Upstream answers

#[test]
fn flood_control_delays_the_next_attempt_and_nothing_is_lost() {
    let (_rt, tg) = fake(4);
    let (host, mut sink) = start_sink(4, &tg, json!({}));
    tg.script("sendMessage", [Reply::RetryAfter(3)]);
    let event = event("trade_opened", "info", json!({}));
    let first = sink.deliver(message("m1", 1, text("<b>hello</b>"), event.clone()));
    match &first {
        Outcome::Retry {
            after: Some(after),
            reason,
        } => {
            assert!(*after >= Duration::from_secs(3), "{after:?}");
            assert!(
                reason.contains("Too Many Requests: retry after 3"),
                "{reason}"
            );
        }
        other => panic!("expected a retry after 3 s, got {other:?}"),
    }
    let call = &tg.calls_to("sendMessage")[0];
    assert_eq!(call.status, 429);
    assert!(tg.messages().is_empty());

    // The router waits what the sink asked, then tries again: delivered once.
    std::thread::sleep(Duration::from_secs(3));
    let second = sink.deliver(message("m1", 2, text("<b>hello</b>"), event));
    assert_eq!(second, Outcome::Ok);
    assert_eq!(visible(&tg.messages()), ["hello"]);
    assert_never_said(&host, &[reason_of(&first)]);
}

/// What teloxide's request path pauses for after any 5xx (teloxide-core's
/// `DELAY_ON_SERVER_ERROR`): a delivery must never wait that long inside the plugin.
const TELOXIDE_5XX_PAUSE: Duration = Duration::from_secs(10);

#[test]
fn a_server_error_is_a_retry_at_once_and_the_next_attempt_delivers() {
    let (_rt, tg) = fake(23);
    let (host, mut sink) = start_sink(23, &tg, json!({}));
    tg.script(
        "sendMessage",
        [
            Reply::Error(500, "Internal Server Error: restart".to_owned()),
            Reply::Raw(
                502,
                "text/html",
                "<html>\n<h1>502 Bad Gateway</h1>\n</html>".to_owned(),
            ),
        ],
    );
    let first = sink.deliver(message("m1", 1, text("<b>hello</b>"), json!({})));
    let first_returned = Instant::now();
    assert_eq!(
        first,
        Outcome::Retry {
            after: None,
            reason: "chat 42: HTTP 500 Internal Server Error: Internal Server Error: restart"
                .to_owned()
        }
    );
    let second = sink.deliver(message("m1", 2, text("<b>hello</b>"), json!({})));
    assert_eq!(
        second,
        Outcome::Retry {
            after: None,
            reason: "chat 42: HTTP 502 Bad Gateway: the Telegram Bot API answered with \
                     something other than its JSON (a proxy error page?): <html> <h1>502 Bad \
                     Gateway</h1> </html>"
                .to_owned()
        }
    );
    let third = sink.deliver(message("m1", 3, text("<b>hello</b>"), json!({})));
    assert_eq!(third, Outcome::Ok);
    assert_eq!(visible(&tg.messages()), ["hello"], "delivered once");

    let calls = tg.calls_to("sendMessage");
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [500, 502, 200]);
    // The first attempt came back as soon as the fake answered it: the next request
    // followed without teloxide's pause in between.
    assert!(
        first_returned < calls[0].answered + TELOXIDE_5XX_PAUSE,
        "deliver waited {:?} after the 500",
        first_returned - calls[0].answered
    );
    assert!(calls[1].at - calls[0].answered < TELOXIDE_5XX_PAUSE);
    assert_never_said(&host, &[reason_of(&first), reason_of(&second)]);
}

#[test]
fn a_retry_after_a_partial_success_sends_only_what_is_missing() {
    let (_rt, tg) = fake(5);
    let (_host, mut sink) = start_sink(5, &tg, json!({"chat_ids": [42, 43]}));
    tg.script("sendMessage", [Reply::Normal, Reply::RetryAfter(1)]);
    let outcomes = deliver_until_done(&mut sink, "m1", &text("to both"), &json!({}));
    assert!(matches!(outcomes[0], Outcome::Retry { .. }), "{outcomes:?}");
    assert_eq!(outcomes.last(), Some(&Outcome::Ok));
    assert_eq!(visible(&tg.messages_to(42)), ["to both"]);
    assert_eq!(visible(&tg.messages_to(43)), ["to both"]);
}

#[test]
fn markup_telegram_cannot_parse_is_sent_again_as_plain_text() {
    let (_rt, tg) = fake(6);
    let (host, mut sink) = start_sink(6, &tg, json!({}));
    let broken = "<b>Deploy</b> done<br>latency < 5 ms &amp; fine";
    let outcome = sink.deliver(message("m1", 1, text(broken), json!({})));
    assert_eq!(outcome, Outcome::Ok);
    let calls = tg.calls_to("sendMessage");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].description.as_deref(),
        Some("Bad Request: can't parse entities: Unsupported start tag \"br\" at byte offset 18")
    );
    let m = &tg.messages()[0];
    assert_eq!(m.parse_mode, None, "sent as plain text");
    assert_eq!(m.visible, "Deploy donelatency < 5 ms & fine");
    assert!(
        host.logs().iter().any(|l| l.starts_with("ERROR ")
            && l.contains("can't parse entities: Unsupported start tag \"br\"")),
        "{:?}",
        host.logs()
    );
}

#[test]
fn refusals_fail_with_telegrams_description() {
    let (_rt, tg) = fake(7);
    let (host, mut sink) = start_sink(7, &tg, json!({"chat_ids": [42, 43]}));
    tg.block(42);
    let outcome = sink.deliver(message("m1", 1, text("hello"), json!({})));
    let Outcome::Fail { reason } = &outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(reason, "chat 42: Forbidden: bot was blocked by the user");
    // The other chat got it, and a re-drive does not send it there again.
    assert_eq!(tg.messages_to(43).len(), 1);
    let again = sink.deliver(message("m1", 1, text("hello"), json!({})));
    assert!(matches!(again, Outcome::Fail { .. }));
    assert_eq!(tg.messages_to(43).len(), 1);

    // Scripted answers come first: this one answers the call for chat 42.
    tg.script("sendMessage", [Reply::bad_request("chat not found")]);
    let outcome = sink.deliver(message("m2", 1, text("x"), json!({})));
    assert_eq!(
        reason_of_fail(&outcome),
        "chat 42: Bad Request: chat not found"
    );
    assert_eq!(tg.messages_to(43).len(), 2);
    assert_never_said(&host, &[reason_of(&outcome)]);
}

fn reason_of_fail(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Fail { reason } => reason.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn the_token_never_appears_in_reasons_or_logs() {
    let (_rt, tg) = fake(8);
    // A closed port: every request fails at the network level, URL and all.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let host = HostDouble::new();
    let mut dead = host
        .create::<Telegram>(settings(
            8,
            &format!("http://{closed}"),
            json!({"commands": true}),
        ))
        .expect("created");
    let network = dead.deliver(message("m1", 1, text("x"), json!({})));
    let Outcome::Retry {
        after: None,
        reason: network_reason,
    } = &network
    else {
        panic!("expected a retry, got {network:?}");
    };
    assert!(
        network_reason.starts_with("chat 42: cannot reach the Telegram Bot API"),
        "{network_reason}"
    );
    // The polling loop fails the same way and logs it.
    host.wait_for(PATIENCE, |h| {
        h.logs()
            .into_iter()
            .find(|l| l.contains("cannot start answering commands"))
    })
    .expect("a warning about polling");
    drop(dead);

    let (host2, mut sink) = start_sink(8, &tg, json!({}));
    let t = token(8);
    tg.script(
        "sendMessage",
        [
            Reply::bad_request(&format!("no route for /bot{t}/sendMessage")),
            Reply::Raw(
                200,
                "text/html",
                format!("<html>proxy error at /bot{t}/SendMessage</html>"),
            ),
        ],
    );
    let quoted = sink.deliver(message("m2", 1, text("x"), json!({})));
    assert_eq!(
        reason_of_fail(&quoted),
        "chat 42: Bad Request: no route for /bot***/sendMessage"
    );
    let page = sink.deliver(message("m3", 1, text("x"), json!({})));
    assert!(
        matches!(&page, Outcome::Retry { reason, .. } if reason.contains("/bot***/SendMessage")),
        "{page:?}"
    );
    assert_never_said(&host, std::slice::from_ref(network_reason));
    assert_never_said(&host2, &[reason_of(&quoted), reason_of(&page)]);
    let debug = format!("{:?}", settings(8, &tg.api_url(), json!({})));
    assert!(!debug.contains(SECRET), "{debug}");
}

#[test]
fn invalid_settings_are_refused_with_the_field_named() {
    let host = HostDouble::new();
    let bad: Settings =
        serde_json::from_value(json!({"bot_token": format!("x{SECRET}"), "chat_ids": [1]}))
            .expect("deserializes");
    let err = host
        .create::<Telegram>(bad)
        .map(|_| ())
        .expect_err("refused");
    assert!(
        err.starts_with("settings.bot_token: is not a Telegram bot token"),
        "{err}"
    );
    assert!(!err.contains(SECRET));
    let bad = settings(9, "http://127.0.0.1:1", json!({"chat_ids": ["ops"]}));
    let err = host
        .create::<Telegram>(bad)
        .map(|_| ())
        .expect_err("refused");
    assert!(err.starts_with("settings.chat_ids[0]: \"ops\""), "{err}");
}

#[test]
fn silent_below_and_parse_mode_settings_apply() {
    let (_rt, tg) = fake(10);
    let (_host, mut sink) = start_sink(
        10,
        &tg,
        json!({"silent_below": "warning", "parse_mode": "none"}),
    );
    for (id, severity) in [("a", "info"), ("b", "warning"), ("c", "critical")] {
        let e = event("custom", severity, json!({}));
        assert_eq!(
            sink.deliver(message(id, 1, text("a <b> & c"), e)),
            Outcome::Ok
        );
    }
    let sent = tg.messages();
    assert_eq!(
        sent.iter()
            .map(|m| m.disable_notification)
            .collect::<Vec<_>>(),
        [true, false, false]
    );
    assert!(
        sent.iter()
            .all(|m| m.parse_mode.is_none() && m.visible == "a <b> & c")
    );
}

#[test]
fn telegrams_own_limits_pace_messages_to_one_chat() {
    let (_rt, tg) = fake(11);
    // The default pace: one message per second per chat after a burst of three.
    let host = HostDouble::new();
    let mut s = settings(11, &tg.api_url(), json!({}));
    s.rate_limits = Default::default();
    let mut sink = host.create::<Telegram>(s).expect("created");
    // The plugin never waits inside deliver: past the burst it hands the wait to the
    // router as a retry-after, and the router (played here) pauses the sink that long.
    let mut held_back = Vec::new();
    for i in 0..5 {
        let id = format!("m{i}");
        let mut attempt = 1;
        loop {
            match sink.deliver(message(&id, attempt, text("tick"), json!({}))) {
                Outcome::Ok => break,
                Outcome::Retry {
                    after: Some(after),
                    reason,
                } if attempt < 3 => {
                    assert!(reason.contains("Telegram's rate limits"), "{reason}");
                    assert!(after <= Duration::from_secs(1), "{after:?}");
                    held_back.push(i);
                    std::thread::sleep(after); // the router's pause
                    attempt += 1;
                }
                other => panic!("{id}: {other:?}"),
            }
        }
    }
    assert_eq!(held_back, [3, 4], "the burst of three goes at once");
    let at: Vec<Instant> = tg.messages().iter().map(|m| m.at).collect();
    assert_eq!(at.len(), 5);
    assert!(
        at[3] - at[0] >= Duration::from_millis(900),
        "{:?}",
        at[3] - at[0]
    );
    assert!(
        at[4] - at[3] >= Duration::from_millis(900),
        "{:?}",
        at[4] - at[3]
    );
    assert!(tg.calls_to("sendMessage").iter().all(|c| c.status == 200));
}

// ---------------------------------------------------------------------------------
// Commands

/// What the state store would answer (the router's HTTP API shapes).
fn with_state(host: &HostDouble) {
    host.answer("status", json!({"sinks": {
        "telegram": {"plugin": "telegram", "healthy": true, "queued": 0, "sent": 17, "failed": 0, "retried": 2},
        "discord": {"plugin": "discord", "healthy": false, "queued": 3, "sent": 9, "failed": 1, "last_error": "HTTP 404 Unknown Webhook"},
    }}));
    host.answer(
        "state/portfolio",
        json!({"total_value": 12500.0, "cash": 2500.0, "pnl": 2500.0, "pnl_pct": 25.0,
        "positions": [{"symbol": "BTC/USDT"}]}),
    );
    host.answer("state/positions", json!({"positions": [
        {"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.5, "entry_price": 45000, "current_price": 46500, "pnl": 750.0, "pnl_pct": 3.33},
        {"symbol": "ETH/USDT", "side": "LONG", "quantity": 2.0, "entry_price": 2400, "current_price": 2500, "pnl": 200.0, "pnl_pct": 4.17},
    ]}));
    host.answer(
        "state/performance",
        json!({"computed": {"total_trades": 2, "wins": 1, "losses": 1, "win_rate": 50.0, "total_pnl": 150.0,
                            "profit_factor": 4.0, "best_trade": 200.0, "worst_trade": -50.0, "total_return": null,
                            "sharpe_ratio": null, "sortino_ratio": null, "max_drawdown": null, "volatility": null,
                            "var_95": null, "daily_returns": 0},
               "reported": {"performance_metrics": {"total_return": 25.0, "sharpe_ratio": 1.85, "win_rate": 65.0,
                                                    "var_95": -1.5, "time": "2025-11-03T12:00:00Z"},
                            "daily_summary": null}}),
    );
    let trades = json!([
        {"symbol": "ETH/USDT", "side": "SELL", "quantity": 2.0, "entry_price": 2500, "exit_price": 2600, "pnl": 200.0, "pnl_pct": 4.0},
        {"symbol": "SOL/USDT", "side": "BUY", "quantity": 10, "entry_price": 150, "exit_price": 145, "pnl": -50.0, "pnl_pct": -3.33},
    ]);
    host.answer("state/trades?limit=10", json!({"trades": trades.clone()}));
    host.answer(
        "state/trades?limit=1",
        json!({"trades": [trades[0].clone()]}),
    );
    host.answer(
        "state/daily",
        json!({"date": "2025-11-03", "trades": trades, "count": 2, "wins": 1, "losses": 1, "pnl": 150.0,
               "win_rate": 50.0, "best_trade": 200.0, "worst_trade": -50.0,
               "reported": {"total_trades": 3, "winning_trades": 2, "losing_trades": 1, "win_rate": 66.7,
                            "total_pnl": 100.0, "time": "2025-11-03T23:59:00Z"}}),
    );
}

#[test]
fn every_command_is_answered_in_an_allowed_chat_with_data_from_the_state_store() {
    let (_rt, tg) = fake(12);
    tg.set_webhook("https://old-deployment.example/hook");
    let (host, _sink) = start_sink(12, &tg, json!({"commands": true}));
    with_state(&host);

    let answers: Vec<(&str, Vec<&str>)> = vec![
        ("/start", vec!["Hello User7!", "/status — Router and sinks"]),
        (
            "/help",
            vec![
                "Commands",
                "/mute — Hold this bot's notifications below critical: /mute 30m [type]",
                "/silence — Hold back matching events from every sink",
                "/mute quiets this bot only; /silence holds matching events back from every sink.",
                "/trades — Recent trades",
            ],
        ),
        (
            "/status",
            vec![
                "Router Status",
                "✅ telegram: 0 queued, 17 sent, 0 failed, 2 retried",
                "❌ discord: 3 queued, 9 sent, 1 failed",
                "↳ HTTP 404 Unknown Webhook",
            ],
        ),
        (
            "/portfolio",
            vec![
                "💰 Total Value: $12,500.00",
                "💵 P&L: +$2,500.00 (+25.00%)",
                "Positions: 1 open",
            ],
        ),
        (
            "/performance",
            vec![
                "🧮 From 2 trades seen\n🔢 Wins / Losses: 1 / 1\n🎯 Win Rate: 50.00%",
                "💔 Worst Trade: -$50.00",
                "📣 Reported by the bot at 2025-11-03 12:00 UTC\n🎯 Win Rate: 65.00%",
                "📈 Total Return: +25.00%",
                "📐 Sharpe Ratio: 1.85",
                "⚠️ VaR (95%): -1.50%",
            ],
        ),
        (
            "/positions",
            vec![
                "Open Positions (2)",
                "• BTC/USDT LONG 0.5000 @ $45,000.00 → $46,500.00: +$750.00 (+3.33%)",
            ],
        ),
        (
            "/trades",
            vec![
                "Last Trades (2)",
                "✅ ETH/USDT SELL 2.0000 @ $2,500.00 → $2,600.00: +$200.00 (+4.00%)",
                "❌ SOL/USDT BUY 10.0000 @ $150.00 → $145.00: -$50.00 (-3.33%)",
            ],
        ),
        (
            "/trades@alert_test_bot 1",
            vec!["Last Trades (1)", "ETH/USDT"],
        ),
        (
            "/daily",
            vec![
                "📅 Today (2025-11-03)",
                "🧮 From 2 trades seen\n✅ Winning: 1\n❌ Losing: 1\n🎯 Win Rate: 50.00%\n💵 P&L: +$150.00",
                "❌ SOL/USDT BUY: -$50.00 (-3.33%)",
                "📣 Reported by the bot at 2025-11-03 23:59 UTC\n📈 Trades: 3 (2 won, 1 lost)",
            ],
        ),
        (
            "/stats",
            vec![
                "📥 Commands received: 10",
                "🧭 Router (1/2 sinks healthy)",
                "📤 Sent: 26",
                "❌ Failed: 1",
            ],
        ),
        (
            "/trades many",
            vec![
                "n must be a number from 1 to 100, not \"many\"",
                "Usage: /trades [n]",
            ],
        ),
        (
            "/frobnicate",
            vec!["I don't know /frobnicate. /help lists what I can do."],
        ),
    ];
    for (command, expected) in &answers {
        let answer = ask(&tg, 42, 7, command);
        assert_eq!(answer.parse_mode.as_deref(), Some("HTML"), "{command}");
        for line in expected {
            assert!(
                answer.visible.contains(line),
                "{command}: {line:?} not in\n{}",
                answer.visible
            );
        }
    }
    // Polling began the way Telegram requires: no webhook, then getUpdates.
    let calls = tg.calls();
    let first = |m: &str| {
        calls
            .iter()
            .position(|c| c.method == m)
            .unwrap_or(usize::MAX)
    };
    assert!(first("deletewebhook") < first("getupdates"));
    assert!(
        calls
            .iter()
            .filter(|c| c.method == "getupdates")
            .all(|c| c.status == 200)
    );
    // The menu lists every command.
    let menu: Vec<String> = tg.commands().into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        menu,
        [
            "start",
            "help",
            "status",
            "portfolio",
            "performance",
            "positions",
            "trades",
            "daily",
            "stats",
            "mute",
            "unmute",
            "silence",
            "silences",
            "unsilence"
        ]
    );
    // Data came from the host, and each command was reported to the router.
    let queries = host.queries();
    for path in [
        "status",
        "state/portfolio",
        "state/positions",
        "state/performance",
        "state/trades?limit=10",
        "state/trades?limit=1",
        "state/daily",
    ] {
        assert!(
            queries.iter().any(|q| q == path),
            "{path} not queried: {queries:?}"
        );
    }
    let emitted = host.emits();
    assert_eq!(emitted.len(), answers.len());
    assert_eq!(
        emitted[2],
        json!({"type": "telegram_command", "command": "status", "chat_id": 42, "user_id": 7, "allowed": true})
    );
}

#[test]
fn without_data_commands_say_so() {
    let (_rt, tg) = fake(13);
    let (host, _sink) = start_sink(13, &tg, json!({"commands": true}));
    host.refuse(
        "state/portfolio",
        HostError::unavailable("the router is starting or stopping"),
    );
    let answer = ask(&tg, 42, 7, "/portfolio");
    assert_eq!(
        answer.visible,
        "📭 No data for /portfolio yet: the router has not recorded any. Ask again once events come in."
    );
    // A router that is starting is no news; one that does not have what the plugin asks
    // for is worth a warning. The user gets the same answer.
    host.refuse(
        "state/positions",
        HostError::not_found("unknown state resource `positions`"),
    );
    let answer = ask(&tg, 42, 7, "/positions");
    assert!(
        answer.visible.starts_with("📭 No data for /positions"),
        "{}",
        answer.visible
    );
    let warnings: Vec<String> = host
        .logs()
        .into_iter()
        .filter(|l| l.starts_with("WARN ") && l.contains("no data from"))
        .collect();
    assert_eq!(
        warnings,
        ["WARN /positions: no data from state/positions: unknown state resource `positions`"]
    );
    // Without a status, /stats still shows the bot's own counters.
    let stats = ask(&tg, 42, 7, "/stats");
    assert!(
        stats.visible.contains("📥 Commands received: 3"),
        "{}",
        stats.visible
    );
    assert!(!stats.visible.contains("Router"), "{}", stats.visible);
}

#[test]
fn a_strangers_commands_get_nothing_and_are_counted() {
    let (_rt, tg) = fake(14);
    let (host, _sink) = start_sink(14, &tg, json!({"commands": true}));
    with_state(&host);
    for command in ["/portfolio", "/status", "/mute 1h"] {
        tg.push_command(999, 666, command);
    }
    // The allowed chat's command comes after the strangers', so once it is answered
    // the strangers' were handled too.
    let stats = ask(&tg, 42, 7, "/stats");
    assert!(tg.messages_to(999).is_empty(), "a stranger got an answer");
    assert!(
        stats.visible.contains("🚫 Commands refused: 3"),
        "{}",
        stats.visible
    );
    let warnings: Vec<String> = host
        .logs()
        .into_iter()
        .filter(|l| l.starts_with("WARN ") && l.contains("from chat 999 (user 666)"))
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        host.queries().iter().all(|q| q == "status"),
        "data was read for a stranger: {:?}",
        host.queries()
    );
    let refused: Vec<Value> = host
        .emits()
        .into_iter()
        .filter(|e| e["allowed"] == false)
        .collect();
    assert_eq!(refused.len(), 3);
    assert_eq!(
        refused[0],
        json!({"type": "telegram_command", "command": "portfolio", "chat_id": 999, "user_id": 666, "allowed": false})
    );
}

#[test]
fn mute_holds_notifications_below_critical_and_unmute_reports_them() {
    let (_rt, tg) = fake(15);
    let (host, mut sink) = start_sink(15, &tg, json!({"commands": true, "admin_user_ids": [7]}));

    // Only admins may mute.
    let refused = ask(&tg, 42, 8, "/mute 30m");
    assert_eq!(refused.visible, "⛔ Only admins may use /mute.");
    assert!(
        host.logs()
            .iter()
            .any(|l| l.starts_with("WARN ") && l.contains("user 8 in chat 42"))
    );

    let muted = ask(&tg, 42, 7, "/mute 30m");
    assert!(
        muted.visible.starts_with("🔕 Muted for 30m, until "),
        "{}",
        muted.visible
    );
    assert!(
        muted
            .visible
            .contains("notifications below critical are held back"),
        "{}",
        muted.visible
    );

    let before = tg.messages().len();
    let info = event("trade_opened", "info", json!({}));
    let error = event("error", "error", json!({}));
    assert_eq!(
        sink.deliver(message("held-1", 1, text("info"), info)),
        Outcome::Ok
    );
    assert_eq!(
        sink.deliver(message("held-2", 1, text("error"), error)),
        Outcome::Ok
    );
    assert_eq!(tg.messages().len(), before, "muted messages were sent");
    let critical = event("error", "critical", json!({}));
    assert_eq!(
        sink.deliver(message("loud", 1, text("critical"), critical)),
        Outcome::Ok
    );
    assert_eq!(visible(&tg.messages()[before..]), ["critical"]);

    let unmuted = ask(&tg, 42, 7, "/unmute");
    assert!(
        unmuted
            .visible
            .starts_with("🔔 Unmuted: 2 notifications held back over "),
        "{}",
        unmuted.visible
    );
    let info = event("trade_opened", "info", json!({}));
    assert_eq!(
        sink.deliver(message("after", 1, text("after unmute"), info)),
        Outcome::Ok
    );
    assert_eq!(
        tg.messages().last().map(|m| m.visible.as_str()),
        Some("after unmute")
    );
}

#[test]
fn a_typed_mute_runs_out_and_the_bot_says_so() {
    let (_rt, tg) = fake(16);
    let (_host, mut sink) = start_sink(16, &tg, json!({"commands": true, "chat_ids": [42, 43]}));
    let muted = ask(&tg, 42, 7, "/mute 2s trade_opened");
    assert!(
        muted
            .visible
            .contains("trade_opened notifications below critical"),
        "{}",
        muted.visible
    );
    let opened = event("trade_opened", "info", json!({}));
    let closed = event("trade_closed", "info", json!({}));
    assert_eq!(
        sink.deliver(message("o", 1, text("opened"), opened)),
        Outcome::Ok
    );
    assert_eq!(
        sink.deliver(message("c", 1, text("closed"), closed)),
        Outcome::Ok
    );
    assert_eq!(visible(&tg.messages_to(43)), ["closed"]);
    // When the mute runs out, every chat hears how much was held back.
    let over = tg
        .wait_for(PATIENCE, |f| {
            f.messages_to(43)
                .into_iter()
                .find(|m| m.visible.starts_with("🔔"))
        })
        .expect("an end-of-mute line");
    assert_eq!(
        over.visible,
        "🔔 Mute over: 1 notification held back over 2s."
    );
    assert!(tg.messages_to(42).iter().any(|m| m.visible == over.visible));
}

#[test]
fn no_update_is_answered_twice() {
    let (_rt, tg) = fake(17);
    let dir = std::env::temp_dir().join(format!("telegram-plugin-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let extra = json!({"commands": true, "state_dir": dir});
    {
        let (_host, _sink) = start_sink(17, &tg, extra.clone());
        for i in 0..5 {
            tg.push_command(42, 7, &format!("/frobnicate{i}"));
        }
        let five = tg.wait_for(PATIENCE, |f| (f.messages_to(42).len() >= 5).then_some(()));
        assert!(five.is_some(), "five answers");
        // Dropping the sink stops polling and confirms the last update to Telegram.
    }
    assert_eq!(
        tg.pending_updates(),
        0,
        "the shutdown confirmed every handled update"
    );
    let state: Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("telegram-{}.json", 7_000_017))).expect("a state file"),
    )
    .expect("JSON");
    let polls = tg.calls_to("getUpdates");
    let last_offset = polls
        .last()
        .and_then(|c| c.params["offset"].as_i64())
        .expect("an offset");
    assert_eq!(state["offset"].as_i64(), Some(last_offset));

    // A new instance (a reload, a restart) picks up where the last one stopped.
    let (_host, _sink) = start_sink(17, &tg, extra);
    let answer = ask(&tg, 42, 7, "/help");
    assert!(answer.visible.starts_with("🤖 Commands"));
    let answers = tg.messages_to(42);
    assert_eq!(answers.len(), 6, "{:?}", visible(&answers));
    for i in 0..5 {
        let n = answers
            .iter()
            .filter(|m| m.visible.contains(&format!("/frobnicate{i}.")))
            .count();
        assert_eq!(n, 1, "/frobnicate{i} answered {n} times");
    }
    let offsets: Vec<i64> = tg
        .calls_to("getUpdates")
        .iter()
        .filter_map(|c| c.params["offset"].as_i64())
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[0] <= w[1]),
        "offsets went back: {offsets:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn polling_survives_errors_with_backoff() {
    let (_rt, tg) = fake(18);
    tg.script(
        "getUpdates",
        [
            Reply::Raw(200, "text/html", "<html>bad gateway</html>".to_owned()),
            Reply::Error(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running".to_owned()),
        ],
    );
    let (host, _sink) = start_sink(18, &tg, json!({"commands": true}));
    let answer = ask(&tg, 42, 7, "/help");
    assert!(answer.visible.starts_with("🤖 Commands"));
    let warnings: Vec<String> = host
        .logs()
        .into_iter()
        .filter(|l| l.contains("getUpdates failed"))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    // Backoff: the second failure waited longer than the first.
    let polls = tg.calls_to("getUpdates");
    assert!(polls[1].at - polls[0].answered >= Duration::from_millis(900));
    assert!(polls[2].at - polls[1].answered >= Duration::from_millis(1900));
}

// ---------------------------------------------------------------------------------
// Health: what getMe finds shows in the router's status

#[test]
fn a_failed_get_me_reports_the_sink_unhealthy_until_one_succeeds() {
    let (_rt, tg) = fake(19);
    tg.script("getMe", [Reply::RetryAfter(1)]);
    let (host, _sink) = start_sink(19, &tg, json!({}));
    let reports = host
        .wait_for(PATIENCE, |h| {
            let reports = h.health();
            (reports.len() >= 2).then_some(reports)
        })
        .unwrap_or_else(|| panic!("two health reports: {:?}", host.health()));
    assert_eq!(
        reports,
        [
            Err("getMe: Too Many Requests: retry after 1".to_owned()),
            Ok(())
        ]
    );
    assert_eq!(
        tg.calls_to("getMe").len(),
        2,
        "no check after one succeeded"
    );
}

#[test]
fn a_refused_token_is_reported_once_with_the_token_redacted() {
    let (_rt, tg) = fake(20);
    let host = HostDouble::with_renderer(render_command);
    let mut wrong = settings(20, &tg.api_url(), json!({"commands": true}));
    wrong.bot_token = alert_router_plugin::Secret::new(format!("7000020:{SECRET}x"));
    let _sink = host.create::<Telegram>(wrong).expect("created");
    let reports = host
        .wait_for(PATIENCE, |h| {
            let reports = h.health();
            (!reports.is_empty()).then_some(reports)
        })
        .expect("a health report");
    assert_eq!(
        reports,
        [Err(
            "getMe: Unauthorized: Telegram refused the bot token; check settings.bot_token"
                .to_owned()
        )]
    );
    assert_never_said(
        &host,
        &reports
            .into_iter()
            .filter_map(Result::err)
            .collect::<Vec<_>>(),
    );
}

/// A router with one Telegram sink, `tg`, whose settings are `settings` (YAML flow
/// mapping entries), every event routed to it.
async fn router_with_telegram(settings: &str) -> Router {
    Router::start(
        &format!(
            "plugins: {{dirs: [\"{{plugins}}\"]}}\nrules: rules\ntemplates: templates\nsinks:\n  tg:\n    plugin: telegram\n    settings: {{chat_ids: [42], {settings}}}\n"
        ),
        &[
            ("rules/all.yaml", "routes:\n  - name: all\n    to: [tg]\n"),
            ("templates/tg/default.yaml", "text: \"{{ event.type }}\"\n"),
        ],
    )
    .await
}

#[tokio::test]
async fn an_unreachable_bot_api_shows_in_the_status_at_start() {
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let router = router_with_telegram(&format!(
        "bot_token: \"{}\", api_url: \"http://127.0.0.1:{port}\", commands: false",
        token(21)
    ))
    .await;
    let status = router
        .status_until("the failed getMe in the sink's health", |s| {
            s["sinks"]["tg"]["healthy"] == false
        })
        .await;
    let error = status["sinks"]["tg"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.starts_with("getMe: cannot reach the Telegram Bot API"),
        "{status}"
    );
    let said = format!("{status}{}", router.stderr());
    assert!(!said.contains(SECRET), "the token leaked: {said}");
}

#[tokio::test]
async fn a_refused_token_shows_in_the_status_until_a_message_goes_through() {
    let tg = FakeTelegram::start(&token(22)).await;
    // Telegram refuses the token once, as it would a revoked one that was then restored.
    tg.script("getMe", [Reply::Error(401, "Unauthorized".to_owned())]);
    let router = router_with_telegram(&format!(
        "bot_token: \"{}\", api_url: \"{}\"",
        token(22),
        tg.api_url()
    ))
    .await;
    let status = router
        .status_until("the refused token in the sink's health", |s| {
            s["sinks"]["tg"]["healthy"] == false
        })
        .await;
    assert_eq!(
        status["sinks"]["tg"]["last_error"],
        "getMe: Unauthorized: Telegram refused the bot token; check settings.bot_token",
        "{status}"
    );
    assert_eq!(router.post_events(r#"{"type": "hello"}"#).await.0, 202);
    let status = router
        .status_until("the delivery to mark the sink healthy", |s| {
            s["sinks"]["tg"]["sent"] == 1
        })
        .await;
    assert_eq!(status["sinks"]["tg"]["healthy"], true, "{status}");
    assert_eq!(tg.messages()[0].visible, "hello");
    assert!(!format!("{status}{}", router.stderr()).contains(SECRET));
}

#[tokio::test]
async fn a_server_error_is_retried_after_the_routers_backoff_not_a_pause_in_the_plugin() {
    let tg = FakeTelegram::start(&token(24)).await;
    tg.script(
        "sendMessage",
        [
            Reply::Error(500, "Internal Server Error".to_owned()),
            Reply::Raw(502, "text/html", "<html>502 Bad Gateway</html>".to_owned()),
        ],
    );
    // The router's backoff waits between half and all of 200 ms before each retry.
    let router = Router::start(
        &format!(
            "plugins: {{dirs: [\"{{plugins}}\"]}}\nrules: rules\ntemplates: templates\nsinks:\n  tg:\n    plugin: telegram\n    retry: {{max_attempts: 5, initial_backoff: 200ms, max_backoff: 200ms}}\n    settings: {{chat_ids: [42], bot_token: \"{}\", api_url: \"{}\", commands: false}}\n",
            token(24),
            tg.api_url()
        ),
        &[
            ("rules/all.yaml", "routes:\n  - name: all\n    to: [tg]\n"),
            ("templates/tg/default.yaml", "text: \"{{ event.type }}\"\n"),
        ],
    )
    .await;
    assert_eq!(router.post_events(r#"{"type": "hello"}"#).await.0, 202);
    let status = router
        .status_until("the message delivered on the third attempt", |s| {
            s["sinks"]["tg"]["sent"] == 1
        })
        .await;
    let sink = &status["sinks"]["tg"];
    assert_eq!(sink["retried"], 2, "{status}");
    assert_eq!(sink["failed"], 0, "{status}");
    assert_eq!(sink["healthy"], true, "{status}");
    // The last retry's reason stays on record: the status and Telegram's answer.
    assert_eq!(
        sink["last_error"],
        "chat 42: HTTP 502 Bad Gateway: the Telegram Bot API answered with something other \
         than its JSON (a proxy error page?): <html>502 Bad Gateway</html>",
        "{status}"
    );
    assert_eq!(tg.messages().len(), 1);
    assert_eq!(tg.messages()[0].visible, "hello");

    // Each failed attempt returned at once; the router, not the plugin, waited before
    // the next one: at least half its backoff, and nowhere near teloxide's 10 s.
    let calls = tg.calls_to("sendMessage");
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [500, 502, 200]);
    for pair in calls.windows(2) {
        let gap = pair[1].at - pair[0].answered;
        assert!(gap >= Duration::from_millis(100), "no backoff: {gap:?}");
        assert!(gap < TELOXIDE_5XX_PAUSE, "a pause in the plugin: {gap:?}");
    }
    assert!(!format!("{status}{}", router.stderr()).contains(SECRET));
}

// ---------------------------------------------------------------------------------
// Silences: the router's, set from the chat through `request`

/// A silence as the router answers POST /v1/silences.
fn silence_view(id: &str, matchers: &[&str]) -> Value {
    json!({"id": id, "state": "active", "matchers": matchers,
           "starts_at": "2025-11-03T18:00:00Z", "ends_at": "2099-11-03T20:00:00Z",
           "created_by": "@user7", "comment": "", "updated_at": "2025-11-03T18:00:00Z",
           "held_back": 0})
}

#[test]
fn silence_sends_the_words_to_the_router_and_shows_its_answer() {
    let (_rt, tg) = fake(27);
    let (host, _sink) = start_sink(27, &tg, json!({"commands": true}));
    let id = "0193a1b2-c3d4-7aaa-8bbb-000000000001";
    let view = silence_view(
        id,
        &[r#"type="error""#, r#"labels.exchange="binance maint""#],
    );
    host.answer_request("POST", "silences", view.clone());
    host.answer("silences", json!({"silences": [view]}));

    let answer = ask(
        &tg,
        42,
        7,
        r#"/silence type=error labels.exchange="binance maint" 2h exchange <maintenance>"#,
    );
    // The words as typed (quotes kept) for the router to parse, the duration in seconds,
    // the user as the author, the rest of the line as the comment.
    assert_eq!(
        host.requests(),
        [host_double::Request {
            method: "POST".into(),
            path: "silences".into(),
            body: Some(json!({
                "matchers": r#"type=error,labels.exchange="binance maint""#,
                "duration": 7200,
                "created_by": "@user7",
                "comment": "exchange <maintenance>",
            })),
        }]
    );
    assert_eq!(answer.parse_mode.as_deref(), Some("HTML"));
    assert!(
        answer.visible.starts_with(
            "🔇 Silenced for 2h, until 2099-11-03 20:00:00 UTC: events matching type=\"error\" labels.exchange=\"binance maint\" are held back from every sink."
        ),
        "{}",
        answer.visible
    );
    assert!(
        answer.visible.contains("/unsilence 0193a1b2 ends it"),
        "{}",
        answer.visible
    );

    // What the bot can tell without the router: it asks nothing.
    let answer = ask(&tg, 42, 7, "/silence 2h type=error");
    assert!(
        answer.visible.starts_with("⚠️ \"2h\" is not a matcher"),
        "{}",
        answer.visible
    );
    assert!(
        answer
            .visible
            .contains("Usage: /silence <matchers> <duration> [comment]")
    );
    assert_eq!(host.requests().len(), 1);

    // What only the router can tell: its reason, with the usage.
    host.refuse_request(
        "POST",
        "silences",
        HostError::bad_request(
            "field `matchers`: matcher `labels.=x`: no label key after `labels.`",
        ),
    );
    let answer = ask(&tg, 42, 7, "/silence labels.=x 1h");
    assert!(
        answer
            .visible
            .starts_with("⚠️ field `matchers`: matcher `labels.=x`: no label key after `labels.`\nUsage: /silence"),
        "{}",
        answer.visible
    );
    // A router that cannot take it now says so, and asking again is the advice.
    host.refuse_request(
        "POST",
        "silences",
        HostError::unavailable("the router is starting or stopping"),
    );
    let answer = ask(&tg, 42, 7, "/silence type=x 1h");
    assert_eq!(
        answer.visible,
        "⚠️ /silence did not go through: the router is starting or stopping. Try again in a moment."
    );
}

#[test]
fn a_router_older_than_request_is_named_as_too_old() {
    let (_rt, tg) = fake(28);
    let host = HostDouble::before_request(render_command);
    let _sink = host
        .create::<Telegram>(settings(28, &tg.api_url(), json!({"commands": true})))
        .expect("created");
    let too_old = "⚠️ /silence needs a newer router: this one takes no silences from the bot. /mute still holds this bot's notifications.";
    assert_eq!(ask(&tg, 42, 7, "/silence type=error 2h").visible, too_old);
    assert_eq!(
        ask(&tg, 42, 7, "/unsilence 0193a1b2").visible,
        too_old.replace("/silence", "/unsilence")
    );
    // Listing needs only a query: a router without silences is too old as well.
    assert_eq!(
        ask(&tg, 42, 7, "/silences").visible,
        too_old.replace("/silence ", "/silences ")
    );
    assert!(
        host.requests().is_empty(),
        "nothing past struct_size was called"
    );
    // /mute is the bot's own and works with any router.
    assert!(
        ask(&tg, 42, 7, "/mute 5m")
            .visible
            .starts_with("🔕 Muted for 5m")
    );
}

/// A router with one Telegram sink, `tg`, running in `isolation`, answering commands
/// from chat 42 (admin: user 7), every `error` event routed to it and shown as
/// `error <id>`, and the repository's silence answers.
async fn router_with_silences(bot: u32, tg: &FakeTelegram, isolation: &str) -> Router {
    let settings = format!(
        "{{chat_ids: [42], admin_user_ids: [7], bot_token: \"{}\", api_url: \"{}\", rate_limits: {{chat: 100/s, group: 100/s, overall: 100/s, burst: 1000}}}}",
        token(bot),
        tg.api_url()
    );
    let mut files = vec![
        (
            "rules/errors.yaml",
            "routes:\n  - name: errors\n    match: {type: error}\n    to: [tg]\n",
        ),
        (
            "templates/tg/default.yaml",
            "text: \"{{ event.type }} {{ event.id }}\"\n",
        ),
    ];
    macro_rules! answers {
        ($($name:literal),*) => {
            $(files.push((
                concat!("templates/telegram/commands/", $name, ".yaml"),
                include_str!(concat!("../../templates/telegram/commands/", $name, ".yaml")),
            ));)*
        };
    }
    answers!(
        "silence",
        "silences",
        "unsilence",
        "usage",
        "not_allowed",
        "not_done",
        "too_old"
    );
    Router::start(
        &format!(
            "plugins: {{dirs: [\"{{plugins}}\"]}}\nrules: rules\ntemplates: templates\nsinks:\n  tg:\n    plugin: telegram\n    isolation: {isolation}\n    settings: {settings}\n"
        ),
        &files,
    )
    .await
}

/// Pushes a command and waits for the bot's answer in chat 42 (notifications, `error
/// <id>`, are not answers).
async fn ask_router(tg: &FakeTelegram, user: i64, command: &str) -> String {
    let before = tg.messages_to(42).len();
    tg.push_command(42, user, command);
    eventually(PATIENCE, &format!("an answer to {command}"), || {
        tg.messages_to(42)
            .get(before..)?
            .iter()
            .map(|m| m.visible.clone())
            .find(|text| !text.starts_with("error "))
    })
    .await
}

/// Posts one `error` event with `id` and `labels`.
async fn post_error(router: &Router, id: &str, labels: Value) {
    let event = json!({"type": "error", "id": id, "message": "boom", "labels": labels});
    assert_eq!(router.post_events(event.to_string()).await.0, 202, "{id}");
}

/// The notifications chat 42 got, in order.
fn notifications(tg: &FakeTelegram) -> Vec<String> {
    tg.messages_to(42)
        .into_iter()
        .map(|m| m.visible)
        .filter(|text| text.starts_with("error "))
        .collect()
}

#[tokio::test]
async fn a_silence_from_the_chat_holds_matching_events_back_until_unsilence() {
    for (bot, isolation) in [(29, "in-process"), (30, "process")] {
        let tg = FakeTelegram::start(&token(bot)).await;
        let router = router_with_silences(bot, &tg, isolation).await;

        // Only admins may silence.
        let refused = ask_router(&tg, 8, "/silence type=error 2h").await;
        assert_eq!(refused, "⛔ Only admins may use /silence.", "{isolation}");
        // A matcher the router refuses: its reason reaches the user.
        let bad = ask_router(&tg, 7, "/silence type=error labels.=binance 2h").await;
        assert!(
            bad.starts_with("⚠️ field `matchers`: matcher `labels.=binance`: no label key after `labels.`: write e.g. labels.exchange=binance")
                && bad.contains("Usage: /silence"),
            "{isolation}: {bad}"
        );
        assert_eq!(
            router.get_json("/v1/silences").await["silences"],
            json!([]),
            "{isolation}: nothing was silenced yet"
        );

        let set = ask_router(
            &tg,
            7,
            "/silence type=error labels.exchange=binance 2h exchange maintenance",
        )
        .await;
        assert!(
            set.starts_with("🔇 Silenced for 2h, until "),
            "{isolation}: {set}"
        );
        let listed = router.get_json("/v1/silences").await;
        let silence = &listed["silences"][0];
        assert_eq!(silence["state"], "active", "{isolation}: {listed}");
        assert_eq!(
            silence["matchers"],
            json!([r#"type="error""#, r#"labels.exchange="binance""#]),
            "{isolation}: {listed}"
        );
        assert_eq!(silence["created_by"], "@user7", "{isolation}: {listed}");
        assert_eq!(
            silence["comment"], "exchange maintenance",
            "{isolation}: {listed}"
        );
        let id = silence["id"].as_str().expect("an id").to_owned();

        // The sink delivers in order: once the later, unmatched event is in the chat, the
        // matched one would have been too.
        post_error(&router, "binance-1", json!({"exchange": "binance"})).await;
        post_error(&router, "kraken-1", json!({"exchange": "kraken"})).await;
        eventually(PATIENCE, "the unmatched event in the chat", || {
            notifications(&tg)
                .contains(&"error kraken-1".to_owned())
                .then_some(())
        })
        .await;
        assert_eq!(notifications(&tg), ["error kraken-1"], "{isolation}");

        let list = ask_router(&tg, 8, "/silences").await;
        for shown in [
            "Silences (1)",
            &id[..8],
            r#"type="error" labels.exchange="binance""#,
            "ends in 1h 59m",
            "by @user7 · 1 held back",
            "exchange maintenance",
        ] {
            assert!(
                list.contains(shown),
                "{isolation}: {shown:?} not in\n{list}"
            );
        }

        let refused = ask_router(&tg, 8, &format!("/unsilence {}", &id[..13])).await;
        assert_eq!(refused, "⛔ Only admins may use /unsilence.", "{isolation}");
        let ended = ask_router(&tg, 7, &format!("/unsilence {}", &id[..13])).await;
        assert!(
            ended.starts_with(&format!("🔊 Silence {} ended", &id[..8]))
                && ended.contains("It held back 1 event."),
            "{isolation}: {ended}"
        );
        let listed = router.get_json("/v1/silences").await;
        assert_eq!(
            listed["silences"][0]["state"], "expired",
            "{isolation}: {listed}"
        );

        post_error(&router, "binance-2", json!({"exchange": "binance"})).await;
        eventually(PATIENCE, "the event after /unsilence in the chat", || {
            notifications(&tg)
                .contains(&"error binance-2".to_owned())
                .then_some(())
        })
        .await;
        assert_eq!(
            notifications(&tg),
            ["error kraken-1", "error binance-2"],
            "{isolation}"
        );
        let none = ask_router(&tg, 8, "/silences").await;
        assert!(
            none.contains("None: every event goes out."),
            "{isolation}: {none}"
        );
    }
}
