//! The Discord sink plugin through its Rust API (the rlib), against the fake Discord
//! webhook server: the original module's embeds arrive exactly as the golden files say,
//! an oversized event arrives whole without a 400 and pings nobody, 429s and the
//! remaining-budget headers are honoured, refusals fail with Discord's error text,
//! outages are retried, a half-sent message is finished without repeats, and the
//! webhook token never appears in a reason or a log line. Also: `templates/discord/`
//! rendered by the router produce exactly the payloads these tests start from, the
//! cdylib works through the router's plugin host, and the fake itself answers as
//! Discord does.
//!
//! Each test runs the fake on a tokio runtime of its own and calls the sink from the
//! test thread, as the router's sink thread would. Where the router would wait before
//! retrying, the tests wait what the sink asked for, under an overall deadline.
//!
//! Golden files live in `tests/golden/discord/`; `UPDATE_GOLDEN=1` rewrites them from
//! what the fake accepted (review the diff before committing).

use std::ffi::{c_char, c_void};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alert_router_plugin::{Host, Message, Outcome, Sink, ffi};
use alert_router_tests::fake_discord::{Accepted, Budget, FakeDiscord, Reply, WEBHOOK_ID};
use discord::{Discord, Settings};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

// ---------------------------------------------------------------------------------
// Harness: a host table that records log lines, and a router-like delivery loop.

/// Lines the plugin logged through the host, as "LEVEL text".
#[derive(Default)]
struct Logs(Mutex<Vec<String>>);

unsafe extern "C" fn host_log(data: *mut c_void, level: i32, msg: *const c_char, len: usize) {
    // SAFETY: `data` is the harness's `Logs`, alive while the sink is; `msg` is valid
    // for the call.
    let (logs, text) = unsafe { (&*(data as *const Logs), ffi::bytes(msg, len)) };
    let line = format!("{level} {}", String::from_utf8_lossy(text));
    logs.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
}

unsafe extern "C" fn host_unavailable(
    _: *mut c_void,
    _: *const c_char,
    _: usize,
    reply: ffi::WriteFn,
    ctx: *mut c_void,
) -> i32 {
    let text = "not available in this test";
    // SAFETY: the plugin passed `reply` and `ctx` for this call.
    unsafe { reply(ctx, text.as_ptr() as *const c_char, text.len()) };
    1
}

unsafe extern "C" fn host_no_render(
    _: *mut c_void,
    _: *const c_char,
    _: usize,
    _: *const c_char,
    _: usize,
    reply: ffi::WriteFn,
    ctx: *mut c_void,
) -> i32 {
    let text = "no templates in this test";
    // SAFETY: the plugin passed `reply` and `ctx` for this call.
    unsafe { reply(ctx, text.as_ptr() as *const c_char, text.len()) };
    1
}

/// A Discord sink with the host table it was created with.
struct Plugin {
    // Declared first, so dropped first: it uses the table and logs below.
    sink: Discord,
    _table: Box<ffi::Host>,
    logs: Box<Logs>,
    reasons: Vec<String>,
}

impl Plugin {
    fn new(settings: Value) -> Result<Plugin, String> {
        let logs = Box::new(Logs::default());
        let table = Box::new(ffi::Host {
            struct_size: size_of::<ffi::Host>() as u32,
            host_data: &*logs as *const Logs as *mut c_void,
            log: host_log,
            query: host_unavailable,
            emit: host_unavailable,
            render: host_no_render,
            set_health: None,
            request: None,
        });
        // SAFETY: the table outlives the sink (field order in `Plugin`).
        let host = unsafe { Host::from_raw(&*table) }.ok_or("no host table")?;
        let settings: Settings =
            serde_json::from_value(settings).map_err(|e| format!("settings: {e}"))?;
        let sink = Discord::create(host, settings)?;
        Ok(Plugin {
            sink,
            _table: table,
            logs,
            reasons: Vec::new(),
        })
    }

    fn on(discord: &FakeDiscord) -> Plugin {
        Plugin::new(json!({"webhook_url": discord.webhook_url(), "username": "Trading Bot"}))
            .expect("the fake's webhook URL is accepted")
    }

    /// One attempt, as the router's sink thread makes it.
    fn deliver(&mut self, id: &str, attempt: u32, payload: &Value) -> Outcome {
        let outcome = self.sink.deliver(Message {
            id: id.to_owned(),
            sink: "discord".to_owned(),
            attempt,
            payload: payload.clone(),
            event: json!({}),
        });
        if let Outcome::Retry { reason, .. } | Outcome::Fail { reason } = &outcome {
            self.reasons.push(reason.clone());
        }
        outcome
    }

    /// Delivers as the router does: after a retry, waits what the sink asked for (or
    /// 50 ms) and tries again, until it is delivered or failed, or `deadline` passes.
    /// Returns every attempt's outcome.
    fn deliver_until_done(
        &mut self,
        id: &str,
        payload: &Value,
        deadline: Duration,
    ) -> Vec<Outcome> {
        let until = Instant::now() + deadline;
        let mut outcomes = Vec::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.deliver(id, attempt, payload);
            let wait = match &outcome {
                Outcome::Retry { after, .. } => after.unwrap_or(Duration::from_millis(50)),
                _ => Duration::ZERO,
            };
            let done = !matches!(outcome, Outcome::Retry { .. });
            outcomes.push(outcome);
            let now = Instant::now();
            if done || now >= until {
                return outcomes;
            }
            std::thread::sleep(wait.min(until - now));
        }
    }

    fn logs(&self) -> Vec<String> {
        self.logs
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Nothing the plugin said, as a reason or in the log, contains `secret`.
    fn assert_never_said(&self, secret: &str) {
        for text in self.reasons.iter().chain(self.logs().iter()) {
            assert!(!text.contains(secret), "the webhook token leaked: {text}");
        }
    }
}

/// A fake Discord on a runtime of its own.
fn fake(budget: Budget) -> (Runtime, FakeDiscord) {
    let runtime = Runtime::new().expect("a tokio runtime for the fake");
    let discord = runtime.block_on(FakeDiscord::start_with_budget(budget));
    (runtime, discord)
}

fn is_ok(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Ok)
}

/// Every field of every embed of the accepted bodies, in order.
fn fields(accepted: &[Accepted]) -> Vec<(String, String)> {
    accepted
        .iter()
        .flat_map(|a| a.body["embeds"].as_array().cloned().unwrap_or_default())
        .flat_map(|e| e["fields"].as_array().cloned().unwrap_or_default())
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (text("name"), text("value"))
        })
        .collect()
}

fn words(from: usize, chars: usize) -> String {
    let mut text = String::new();
    let mut i = from;
    while text.len() < chars {
        text.push_str(&format!("w{i:04} "));
        i += 1;
    }
    // ASCII, so bytes are characters.
    text.truncate(chars);
    text.trim_end().to_owned()
}

// ---------------------------------------------------------------------------------
// The original module's embeds, rendered by hand as templates/discord/*.yaml would
// render the module's example events: values escaped for Discord markdown by the
// router (`RSI\_MACD`, `\-$80.00`, `2025\-11\-03`; the template's own text is not
// escaped, and `+`, `$`, `%` are not markdown), optional fields that are absent
// rendering empty.

fn trade_closed_payload() -> Value {
    json!({"embeds": [{
        "title": "✅ Trade Closed",
        "description": "SELL position closed for ETH/USDT",
        "color": "profit",
        "timestamp": "2025-11-03T17:30:00Z",
        "fields": [
            {"name": "📊 Symbol", "value": "ETH/USDT", "inline": true},
            {"name": "📈 Side", "value": "SELL", "inline": true},
            {"name": "💰 Entry Price", "value": "$2,500.00", "inline": true},
            {"name": "💰 Exit Price", "value": "$2,600.00", "inline": true},
            {"name": "📦 Quantity", "value": "2.0000", "inline": true},
            {"name": "💵 P&L", "value": "+$200.00 (+4.00%)", "inline": true},
            {"name": "📝 Reason", "value": "Take Profit", "inline": false},
            {"name": "⏱️ Duration", "value": "3 hours", "inline": true},
            {"name": "🎯 Strategy", "value": "", "inline": true},
        ],
    }]})
}

fn trade_opened_payload() -> Value {
    json!({"embeds": [{
        "title": "🟢 Trade Opened",
        "description": "BUY position opened for BTC/USDT",
        "color": "info",
        "timestamp": "2025-11-03T14:30:00Z",
        "fields": [
            {"name": "📊 Symbol", "value": "BTC/USDT", "inline": true},
            {"name": "📈 Side", "value": "BUY", "inline": true},
            {"name": "💰 Entry Price", "value": "$45,000.00", "inline": true},
            {"name": "📦 Quantity", "value": "0.5000", "inline": true},
            {"name": "💵 Total Value", "value": "$22,500.00", "inline": true},
            {"name": "🎯 Strategy", "value": "RSI\\_MACD", "inline": true},
            {"name": "🛡️ Stop Loss", "value": "$44,000.00", "inline": true},
            {"name": "🎯 Take Profit", "value": "$47,000.00", "inline": true},
        ],
    }]})
}

fn error_payload() -> Value {
    json!({"embeds": [{
        "title": "🚨 CRITICAL: RiskViolation",
        "description": "Max drawdown exceeded",
        "color": "critical",
        "timestamp": "2025-11-03T15:00:00Z",
        "fields": [
            {"name": "🧩 Component", "value": "risk", "inline": true},
            {"name": "🏷️ Type", "value": "RiskViolation", "inline": true},
            {"name": "📋 Details", "value": "", "inline": false},
        ],
    }]})
}

fn daily_summary_payload() -> Value {
    json!({"embeds": [{
        "title": "📊 Daily Summary · 2025\\-11\\-03",
        "description": "15 trades: 10 won, 5 lost",
        "color": "profit",
        "timestamp": "2025-11-03T23:59:00Z",
        "fields": [
            {"name": "🔢 Total Trades", "value": 15, "inline": true},
            {"name": "✅ Winning Trades", "value": 10, "inline": true},
            {"name": "❌ Losing Trades", "value": 5, "inline": true},
            {"name": "🎯 Win Rate", "value": "66.67%", "inline": true},
            {"name": "💵 Total P&L", "value": "+$250.00 (+2.50%)", "inline": true},
            {"name": "💼 Portfolio Value", "value": "$12,500.00", "inline": true},
            {"name": "🏆 Best Trade", "value": "+$200.00", "inline": true},
            {"name": "📉 Worst Trade", "value": "\\-$80.00", "inline": true},
        ],
    }]})
}

fn portfolio_update_payload() -> Value {
    json!({"embeds": [{
        "title": "💼 Portfolio Update",
        "description": "Total value $12,500.00",
        "color": "profit",
        "timestamp": "2025-11-03T18:00:00Z",
        "fields": [
            {"name": "💰 Total Value", "value": "$12,500.00", "inline": true},
            {"name": "💵 Cash", "value": "$2,500.00", "inline": true},
            {"name": "📈 P&L", "value": "+$2,500.00 (+25.00%)", "inline": true},
            {"name": "📉 Drawdown", "value": "\\-3.20%", "inline": true},
            {"name": "📋 Positions", "inline": false, "value":
                "**BTC/USDT** LONG 0.5000 @ $45,000.00 → $46,500.00 (+$750.00, +3.33%)\n\
                 **ETH/USDT** LONG 2.0000 @ $2,400.00 → $2,500.00 (+$200.00, +4.17%)"},
        ],
    }]})
}

fn performance_metrics_payload() -> Value {
    json!({"embeds": [{
        "title": "📈 Performance Metrics",
        "color": "profit",
        "timestamp": "2025-11-03T18:00:00Z",
        "fields": [
            {"name": "💹 Total Return", "value": "+25.00%", "inline": true},
            {"name": "📐 Sharpe Ratio", "value": "1.85", "inline": true},
            {"name": "📐 Sortino Ratio", "value": "", "inline": true},
            {"name": "📉 Max Drawdown", "value": "\\-8.50%", "inline": true},
            {"name": "🎯 Win Rate", "value": "65.00%", "inline": true},
            {"name": "⚖️ Profit Factor", "value": "", "inline": true},
            {"name": "🔢 Total Trades", "value": "120", "inline": true},
            {"name": "🌊 Volatility", "value": "", "inline": true},
            {"name": "⚠️ VaR (95%)", "value": "", "inline": true},
        ],
    }]})
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden/discord")
        .join(format!("{name}.json"))
}

/// Compares `actual` with the golden file `name`, or rewrites it with UPDATE_GOLDEN=1.
fn assert_golden(name: &str, actual: &Value) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(actual).expect("JSON") + "\n";
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, text).expect("write golden file");
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    let expected: Value = serde_json::from_str(&text).expect("golden file is JSON");
    assert_eq!(
        actual,
        &expected,
        "{name}: what Discord got differs from {}",
        path.display()
    );
}

// ---------------------------------------------------------------------------------
// Tests.

#[test]
fn the_original_modules_embeds_arrive_as_the_golden_files_say() {
    let (_runtime, discord) = fake(Budget {
        requests: 10,
        per: Duration::from_secs(1),
    });
    let mut plugin = Plugin::on(&discord);
    let cases = [
        ("trade_opened", trade_opened_payload()),
        ("trade_closed", trade_closed_payload()),
        ("error", error_payload()),
        ("daily_summary", daily_summary_payload()),
        ("portfolio_update", portfolio_update_payload()),
        ("performance_metrics", performance_metrics_payload()),
    ];
    for (i, (name, payload)) in cases.iter().enumerate() {
        // Six in a row: the sink's own budget (5 per 2 s) holds the sixth back a while.
        let outcomes = plugin.deliver_until_done(name, payload, Duration::from_secs(10));
        assert!(
            is_ok(outcomes.last().expect("an attempt")),
            "{name}: {outcomes:?}"
        );
        let accepted = discord.accepted();
        assert_eq!(accepted.len(), i + 1, "{name}: one message each");
        let got = &accepted[i];
        assert!(
            got.wait && got.version == Some(10),
            "{name}: posted to /api/v10 with wait=true"
        );
        assert!(got.pings.is_empty(), "{name}: pinged {:?}", got.pings);
        assert_golden(name, &got.body);
    }
    assert!(discord.requests().iter().all(|r| r.status == 200));

    // The example the original module documents, spelled out.
    let closed = &discord.accepted()[1].body;
    let embed = &closed["embeds"][0];
    assert_eq!(embed["title"], "✅ Trade Closed");
    assert_eq!(embed["color"], 0x2ECC71, "green");
    assert_eq!(
        embed["fields"][5],
        json!({"name": "💵 P&L", "value": "+$200.00 (+4.00%)", "inline": true})
    );
    assert_eq!(
        embed["fields"].as_array().map(Vec::len),
        Some(8),
        "the empty Strategy is left out"
    );
    assert_eq!(closed["allowed_mentions"], json!({"parse": []}));
    assert_eq!(closed["username"], "Trading Bot");
    plugin.assert_never_said(discord.token());
}

#[test]
fn a_huge_trade_with_everyone_in_its_symbol_arrives_whole_and_pings_nobody() {
    let (_runtime, discord) = fake(Budget::DISCORD);
    let mut plugin = Plugin::on(&discord);
    let reason = words(0, 5000);
    assert_eq!(reason.chars().count(), 5000);
    let mut payload = trade_closed_payload();
    payload["content"] = json!("Trade closed: @everyone/USDT +$200.00");
    let embed = &mut payload["embeds"][0];
    embed["description"] = json!("SELL position closed for @everyone/USDT");
    embed["fields"][0]["value"] = json!("@everyone/USDT");
    embed["fields"][6]["value"] = json!(reason);
    embed["fields"][8]["value"] = json!("RSI\\_MACD");
    let notes: Vec<(String, String)> = (0..31)
        .map(|i| {
            (
                format!("Note {i}"),
                format!("observation {i}: {}", words(i * 10, 40)),
            )
        })
        .collect();
    for (name, value) in &notes {
        if let Some(fields) = embed["fields"].as_array_mut() {
            fields.push(json!({"name": name, "value": value, "inline": true}));
        }
    }
    assert_eq!(embed["fields"].as_array().map(Vec::len), Some(40));

    let outcomes = plugin.deliver_until_done("m-huge", &payload, Duration::from_secs(10));
    assert!(is_ok(outcomes.last().expect("an attempt")), "{outcomes:?}");

    let requests = discord.requests();
    assert!(
        requests.iter().all(|r| r.status == 200),
        "Discord refused something: {requests:?}"
    );
    let accepted = discord.accepted();
    assert!(
        accepted.len() >= 2,
        "over 6000 characters: more than one message"
    );
    for got in &accepted {
        assert_eq!(got.body["allowed_mentions"], json!({"parse": []}));
        assert!(got.pings.is_empty(), "pinged {:?}", got.pings);
    }
    assert_eq!(
        accepted[0].body["content"], "Trade closed: @everyone/USDT +$200.00",
        "shown, not pinged"
    );

    // Nothing lost: the reason, in order, over its continuation fields.
    let all = fields(&accepted);
    let pieces: Vec<&str> = all
        .iter()
        .filter(|(name, _)| name == "📝 Reason" || name == "📝 Reason (cont.)")
        .map(|(_, value)| value.as_str())
        .collect();
    assert!(pieces.len() >= 5);
    assert_eq!(pieces.join(" "), reason);
    // Every other field exactly once, in order.
    let others: Vec<(String, String)> = all
        .iter()
        .filter(|(name, _)| name.starts_with("Note "))
        .cloned()
        .collect();
    assert_eq!(others, notes);
    assert_eq!(all.len(), 8 + pieces.len() + notes.len());

    // What was split is logged, without the token.
    let logs = plugin.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("message m-huge: embeds[0].fields[6].value: split into 5 fields")),
        "{logs:#?}"
    );
    plugin.assert_never_said(discord.token());

    // The same message with mentions allowed does ping: the fake would have noticed.
    let mut pinging =
        Plugin::new(json!({"webhook_url": discord.webhook_url(), "mentions": ["everyone"]}))
            .expect("settings accepted");
    let outcomes = pinging.deliver_until_done("m-ping", &payload, Duration::from_secs(10));
    assert!(is_ok(outcomes.last().expect("an attempt")), "{outcomes:?}");
    let pinged = &discord.accepted()[accepted.len()];
    assert_eq!(pinged.pings, ["everyone"]);
}

#[test]
fn a_429_with_retry_after_is_honoured() {
    let (_runtime, discord) = fake(Budget::DISCORD);
    let mut plugin = Plugin::on(&discord);
    discord.script([Reply::RateLimited {
        retry_after: 1.5,
        global: false,
    }]);
    let payload = trade_closed_payload();

    let first = plugin.deliver("m1", 1, &payload);
    let Outcome::Retry { after, reason } = &first else {
        panic!("expected a retry, got {first:?}");
    };
    assert_eq!(*after, Some(Duration::from_millis(1500)));
    assert!(reason.contains("rate limited"), "{reason}");
    assert_eq!(discord.requests().len(), 1);

    // Asked again at once, the sink does not even send: it waits out the 1.5 s.
    let second = plugin.deliver("m1", 2, &payload);
    let Outcome::Retry {
        after: Some(after), ..
    } = second
    else {
        panic!("expected a retry with a delay, got {second:?}");
    };
    assert!(
        after > Duration::ZERO && after <= Duration::from_millis(1500),
        "{after:?}"
    );
    assert_eq!(discord.requests().len(), 1, "nothing sent while paused");

    let outcomes = plugin.deliver_until_done("m1", &payload, Duration::from_secs(10));
    assert!(is_ok(outcomes.last().expect("an attempt")), "{outcomes:?}");
    let requests = discord.requests();
    let accepted = discord.accepted();
    assert_eq!(accepted.len(), 1, "delivered once");
    assert!(
        accepted[0].at.duration_since(requests[0].at) >= Duration::from_millis(1500),
        "sent again only after retry_after"
    );
    plugin.assert_never_said(discord.token());
}

#[test]
fn a_global_429_pauses_every_sink_on_that_discord() {
    let (_runtime, discord) = fake(Budget::DISCORD);
    let mut one = Plugin::on(&discord);
    let mut two = Plugin::on(&discord);
    discord.script([Reply::RateLimited {
        retry_after: 0.8,
        global: true,
    }]);
    let payload = trade_closed_payload();
    let outcome = one.deliver("g1", 1, &payload);
    assert!(
        matches!(&outcome, Outcome::Retry { after: Some(a), reason } if *a == Duration::from_millis(800) && reason.contains("globally")),
        "{outcome:?}"
    );
    let outcome = two.deliver("g2", 1, &payload);
    assert!(
        matches!(&outcome, Outcome::Retry { after: Some(a), reason } if *a <= Duration::from_millis(800) && reason.contains("global")),
        "another sink on the same Discord waits too: {outcome:?}"
    );
    assert_eq!(discord.requests().len(), 1);
    let outcomes = two.deliver_until_done("g2", &payload, Duration::from_secs(10));
    assert!(is_ok(outcomes.last().expect("an attempt")), "{outcomes:?}");
    one.assert_never_said(discord.token());
    two.assert_never_said(discord.token());
}

#[test]
fn the_remaining_budget_headers_slow_the_sink_before_a_429() {
    // Tighter than the sink's own default budget, so only the headers can hold it back.
    let budget = Budget {
        requests: 2,
        per: Duration::from_millis(800),
    };
    let (_runtime, discord) = fake(budget);
    let mut plugin = Plugin::on(&discord);
    let mut held_back = 0;
    for i in 0..6 {
        let payload = json!({"content": format!("message {i}")});
        let outcomes =
            plugin.deliver_until_done(&format!("m{i}"), &payload, Duration::from_secs(10));
        assert!(
            is_ok(outcomes.last().expect("an attempt")),
            "m{i}: {outcomes:?}"
        );
        held_back += outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Retry { reason, .. } if reason.contains("bucket")))
            .count();
    }
    let requests = discord.requests();
    assert_eq!(requests.len(), 6, "no request was wasted: {requests:?}");
    assert!(
        requests.iter().all(|r| r.status == 200),
        "Discord had to say no: {requests:?}"
    );
    assert!(
        // Twice on an idle machine (before m2 and m4); a stalled one may see a window
        // end on its own, but never none at all in six quick deliveries.
        held_back >= 1,
        "the sink never waited for the bucket"
    );
    let contents: Vec<Value> = discord
        .accepted()
        .iter()
        .map(|a| a.body["content"].clone())
        .collect();
    let expected: Vec<Value> = (0..6).map(|i| json!(format!("message {i}"))).collect();
    assert_eq!(contents, expected, "all delivered, in order");
    let accepted = discord.accepted();
    assert!(accepted[2].at.duration_since(accepted[0].at) >= budget.per);
    plugin.assert_never_said(discord.token());
}

#[test]
fn a_message_split_in_two_is_finished_without_repeats_after_a_failure() {
    let (_runtime, discord) = fake(Budget::DISCORD);
    let mut plugin = Plugin::on(&discord);
    let content = words(0, 3000);
    let payload = json!({"content": content});
    // The first part goes through, the second meets a 500.
    discord.script([Reply::Normal, Reply::Status(500)]);

    let outcome = plugin.deliver("m-split", 1, &payload);
    let Outcome::Retry {
        after: None,
        reason,
    } = &outcome
    else {
        panic!("expected a plain retry, got {outcome:?}");
    };
    assert!(
        reason.starts_with("part 2 of 2: Discord answered 500 Internal Server Error"),
        "{reason}"
    );
    assert_eq!(discord.accepted().len(), 1);

    let outcome = plugin.deliver("m-split", 2, &payload);
    assert!(is_ok(&outcome), "{outcome:?}");
    let parts: Vec<String> = discord
        .accepted()
        .iter()
        .map(|a| a.body["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(parts.len(), 2, "the retry sent only the second part");
    assert_eq!(parts.join(" "), content, "nothing lost, nothing twice");

    // Delivered in full: the same id again is a new message, sent whole.
    let outcome = plugin.deliver("m-split", 3, &payload);
    assert!(is_ok(&outcome), "{outcome:?}");
    assert_eq!(discord.accepted().len(), 4);
    plugin.assert_never_said(discord.token());
}

#[test]
fn refusals_fail_with_discords_error_text() {
    let (_runtime, discord) = fake(Budget::DISCORD);
    let mut plugin = Plugin::on(&discord);

    // Scripted: Discord's own 50035 answer.
    discord.script([Reply::Json(
        400,
        json!({"code": 50035, "message": "Invalid Form Body", "errors": {"embeds": {"0": {"description": {"_errors": [
            {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 4096 or fewer in length."}]}}}}}),
    )]);
    let outcome = plugin.deliver("bad-1", 1, &trade_closed_payload());
    let Outcome::Fail { reason } = &outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(
        reason.contains("400 Bad Request: Invalid Form Body (code 50035): embeds.0.description: Must be 4096 or fewer in length. (BASE_TYPE_MAX_LENGTH)"),
        "{reason}"
    );

    // Real: the fake validates what the sink passed through as it is.
    let mut payload = trade_closed_payload();
    payload["embeds"][0]["url"] = json!("not a url");
    let outcome = plugin.deliver("bad-2", 1, &payload);
    let Outcome::Fail { reason } = &outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(
        reason.contains("embeds.0.url: Not a well formed URL. (URL_TYPE_INVALID_URL)"),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("/api/v10/webhooks/{WEBHOOK_ID}/***")),
        "names the webhook: {reason}"
    );

    // A template that renders nothing is refused before Discord sees it.
    let outcome = plugin.deliver("bad-3", 1, &json!({"embeds": [{"color": "red"}]}));
    assert!(
        matches!(&outcome, Outcome::Fail { reason } if reason.contains("nothing to send")),
        "{outcome:?}"
    );
    assert_eq!(discord.requests().len(), 2);
    plugin.assert_never_said(discord.token());
}

#[test]
fn a_wrong_token_or_a_deleted_webhook_fails() {
    let (_runtime, discord) = fake(Budget::DISCORD);
    let wrong_token = discord
        .webhook_url()
        .replace(discord.token(), "WrongToken123");
    let mut plugin = Plugin::new(json!({"webhook_url": wrong_token})).expect("settings accepted");
    let outcome = plugin.deliver("t1", 1, &trade_closed_payload());
    assert!(
        matches!(&outcome, Outcome::Fail { reason } if reason.contains("401 Unauthorized: Invalid Webhook Token (code 50027)")),
        "{outcome:?}"
    );
    plugin.assert_never_said("WrongToken123");

    let mut plugin = Plugin::on(&discord);
    discord.script([Reply::UnknownWebhook]);
    let outcome = plugin.deliver("t2", 1, &trade_closed_payload());
    assert!(
        matches!(&outcome, Outcome::Fail { reason } if reason.contains("Unknown Webhook (code 10015)") && reason.contains("settings.webhook_url")),
        "{outcome:?}"
    );
    plugin.assert_never_said(discord.token());
}

#[test]
fn server_errors_and_unreachable_hosts_are_retried() {
    let (_runtime, discord) = fake(Budget::DISCORD);
    let mut plugin = Plugin::on(&discord);
    discord.script([Reply::Status(502), Reply::Status(503)]);
    let outcomes =
        plugin.deliver_until_done("s1", &trade_closed_payload(), Duration::from_secs(10));
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(
        matches!(&outcomes[0], Outcome::Retry { after: None, reason } if reason.contains("502 Bad Gateway"))
    );
    assert!(
        matches!(&outcomes[1], Outcome::Retry { after: None, reason } if reason.contains("503 Service Unavailable"))
    );
    assert!(is_ok(&outcomes[2]));
    assert_eq!(discord.accepted().len(), 1);
    plugin.assert_never_said(discord.token());

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let token = "UnreachableSecret_42";
    let mut plugin = Plugin::new(json!({"webhook_url": format!("http://127.0.0.1:{port}/api/webhooks/{WEBHOOK_ID}/{token}")}))
        .expect("settings accepted");
    let outcome = plugin.deliver("s2", 1, &trade_closed_payload());
    let Outcome::Retry {
        after: None,
        reason,
    } = &outcome
    else {
        panic!("expected a plain retry, got {outcome:?}");
    };
    assert!(reason.contains("no answer from Discord"), "{reason}");
    assert!(
        reason.contains(&format!(
            "http://127.0.0.1:{port}/api/v10/webhooks/{WEBHOOK_ID}/***"
        )),
        "{reason}"
    );
    plugin.assert_never_said(token);
}

#[test]
fn settings_reach_the_request_and_bad_ones_are_refused_without_the_token() {
    let (_runtime, discord) = fake(Budget::DISCORD);
    let mut plugin = Plugin::new(json!({
        "webhook_url": discord.webhook_url(),
        "username": "Risk Desk",
        "avatar_url": "https://example.com/bot.png",
        "thread_id": "998877665544332211",
    }))
    .expect("settings accepted");
    assert!(is_ok(&plugin.deliver(
        "s1",
        1,
        &json!({"content": "hello"})
    )));
    let got = &discord.accepted()[0];
    assert_eq!(got.thread_id.as_deref(), Some("998877665544332211"));
    assert_eq!(got.body["username"], "Risk Desk");
    assert_eq!(got.body["avatar_url"], "https://example.com/bot.png");

    let token = discord.token();
    let refused = [
        (
            json!({"webhook_url": discord.webhook_url().replace("http://", "ftp://")}),
            "settings.webhook_url: must use https",
        ),
        (
            json!({"webhook_url": discord.webhook_url(), "username": "discord bot"}),
            "settings.username",
        ),
        (
            json!({"webhook_url": discord.webhook_url(), "mentions": true}),
            "mentions: expected a list",
        ),
        (
            json!({"webhook_url": discord.webhook_url(), "thread": "1"}),
            "unknown field `thread`",
        ),
    ];
    for (settings, expected) in refused {
        let Err(error) = Plugin::new(settings) else {
            panic!("accepted, though {expected:?} was expected");
        };
        assert!(
            error.contains(expected),
            "expected {expected:?} in {error:?}"
        );
        assert!(!error.contains(token), "the token leaked: {error}");
    }
}

#[test]
fn the_fake_answers_like_discord() {
    let (runtime, discord) = fake(Budget {
        requests: 2,
        per: Duration::from_secs(5),
    });
    let base = format!("http://{}", discord.addr());
    let token = discord.token().to_owned();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let post = |path: String, body: &'static str| {
            http.post(format!("{base}{path}"))
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let hook = format!("/api/webhooks/{WEBHOOK_ID}/{token}");

        // No wait: 204 and no body; wait=true: 200 and the Message.
        let answer = post(hook.clone(), r#"{"content": "hi"}"#).await.expect("answer");
        assert_eq!(answer.status(), 204);
        assert_eq!(answer.headers()["x-ratelimit-remaining"], "1");
        let answer = post(format!("/api/v10/webhooks/{WEBHOOK_ID}/{token}?wait=true"), r#"{"content": "hi"}"#)
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["x-ratelimit-remaining"], "0");
        let message: Value = answer.json().await.expect("a Message");
        assert_eq!(message["content"], "hi");
        assert_eq!(message["webhook_id"], WEBHOOK_ID);

        // Over budget: 429 with a float retry_after and the headers.
        let answer = post(hook.clone(), r#"{"content": "hi"}"#).await.expect("answer");
        assert_eq!(answer.status(), 429);
        assert!(answer.headers().contains_key("retry-after"));
        assert_eq!(answer.headers()["x-ratelimit-scope"], "user");
        let body: Value = answer.json().await.expect("JSON");
        let retry_after = body["retry_after"].as_f64().expect("a float");
        assert!(retry_after > 0.0 && retry_after <= 5.0, "{body}");
        assert_eq!(body["global"], false);

        discord.set_budget(Budget { requests: 100, per: Duration::from_secs(1) });
        let cases: [(String, &str, Option<&str>, u16, Value); 6] = [
            (hook.clone(), "{}", None, 400, json!({"message": "Cannot send an empty message", "code": 50006})),
            (hook.clone(), "{nope", None, 400, json!({"message": "The request body contains invalid JSON.", "code": 50109})),
            (hook.clone(), r#"{"content": "x"}"#, Some("text/plain"), 400, json!(50035)),
            (hook.clone(), r#"{"embeds": [{"title": "t", "color": "red", "fields": [{"name": "n", "value": " "}]}]}"#, None, 400, json!(50035)),
            (format!("/api/webhooks/1/{token}"), r#"{"content": "x"}"#, None, 404, json!({"message": "Unknown Webhook", "code": 10015})),
            (format!("/api/webhooks/{WEBHOOK_ID}/wrong"), r#"{"content": "x"}"#, None, 401, json!({"message": "Invalid Webhook Token", "code": 50027})),
        ];
        for (path, body, content_type, status, expected) in cases {
            let answer = http
                .post(format!("{base}{path}"))
                .header("content-type", content_type.unwrap_or("application/json"))
                .body(body)
                .send()
                .await
                .expect("answer");
            assert_eq!(answer.status(), status, "{body}");
            let got: Value = answer.json().await.expect("Discord's error JSON");
            if expected.is_number() {
                assert_eq!(got["code"], expected, "{got}");
                assert_eq!(got["message"], "Invalid Form Body");
            } else {
                assert_eq!(got, expected);
            }
        }
        let bad: Value = post(
            hook.clone(),
            r#"{"embeds": [{"title": "t", "color": "red", "fields": [{"name": "n", "value": " "}]}]}"#,
        )
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
        assert_eq!(bad["errors"]["embeds"]["0"]["color"]["_errors"][0]["code"], "NUMBER_TYPE_COERCE");
        assert_eq!(bad["errors"]["embeds"]["0"]["fields"]["0"]["value"]["_errors"][0]["code"], "BASE_TYPE_REQUIRED");
    });
    assert_eq!(discord.accepted().len(), 2);
}

/// Host services for loading the cdylib through the router: nothing to offer.
struct NoServices;

impl alert_router::plugins::HostServices for NoServices {
    fn query(&self, _: &str, path: &str) -> Result<String, alert_router_plugin::HostError> {
        Err(alert_router_plugin::HostError::not_found(format!(
            "no resource /v1/{path} in this test"
        )))
    }
    fn emit(&self, _: &str, _: &[u8]) -> Result<String, alert_router_plugin::HostError> {
        Err(alert_router_plugin::HostError::unavailable(
            "no ingest in this test",
        ))
    }
    fn render(&self, _: &str, _: &str, _: &[u8]) -> Result<String, alert_router_plugin::HostError> {
        Err(alert_router_plugin::HostError::not_found(
            "no templates in this test",
        ))
    }
    fn request(
        &self,
        _: &str,
        _: &str,
        path: &str,
        _: &[u8],
    ) -> Result<String, alert_router_plugin::HostError> {
        Err(alert_router_plugin::HostError::not_found(format!(
            "no resource /v1/{path} in this test"
        )))
    }
}

#[test]
fn the_cdylib_works_through_the_routers_plugin_host() {
    use alert_router::plugins::{Catalog, Delivery, Markup};
    use std::sync::Arc;

    let (_runtime, discord) = fake(Budget::DISCORD);
    // The dev-dependency's libdiscord.so sits beside this test binary.
    let plugin = Catalog::new(vec![])
        .load("discord")
        .expect("load libdiscord.so");
    assert_eq!(plugin.name(), "discord");
    assert_eq!(plugin.manifest().markup, Markup::Markdown);

    let settings = json!({"webhook_url": discord.webhook_url()});
    let mut sink = plugin
        .create("discord-ops", &settings, Arc::new(NoServices))
        .expect("settings accepted");
    let message = json!({"id": "abi-1", "sink": "discord-ops", "attempt": 1,
        "payload": trade_closed_payload(), "event": {"type": "trade_closed"}});
    assert_eq!(sink.deliver(message.to_string().as_bytes()), Delivery::Ok);
    // The same body as through the rlib, but for the username no setting gave.
    let mut body = discord.accepted()[0].body.clone();
    assert!(body.get("username").is_none());
    body["username"] = json!("Trading Bot");
    assert_golden("trade_closed", &body);

    discord.script([Reply::RateLimited {
        retry_after: 1.5,
        global: false,
    }]);
    let message =
        json!({"id": "abi-2", "sink": "discord-ops", "attempt": 1, "payload": {"content": "x"}});
    match sink.deliver(message.to_string().as_bytes()) {
        Delivery::Retry { after, reason } => {
            assert_eq!(after, Some(Duration::from_millis(1500)));
            assert!(!reason.contains(discord.token()), "{reason}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }

    let bad = json!({"webhook_url": discord.webhook_url().replace(WEBHOOK_ID, "not-an-id")});
    let Err(error) = plugin.create("discord-bad", &bad, Arc::new(NoServices)) else {
        panic!("a webhook URL without a webhook id was accepted");
    };
    let error = error.to_string();
    assert!(error.contains("settings.webhook_url"), "{error}");
    assert!(!error.contains(discord.token()), "{error}");
}

/// The original module's example events, as the router hands them to templates.
fn example_events() -> Vec<(&'static str, Value, Value)> {
    let base = |kind: &str, severity: &str, time: &str, data: Value| {
        let mut event =
            json!({"type": kind, "severity": severity, "time": time, "id": "ev-1", "labels": {}});
        if let (Some(event), Value::Object(data)) = (event.as_object_mut(), data) {
            event.extend(data);
        }
        event
    };
    vec![
        (
            "trade_opened",
            base(
                "trade_opened",
                "info",
                "2025-11-03T14:30:00Z",
                json!({
            "symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "quantity": 0.5,
            "strategy": "RSI_MACD", "stop_loss": 44000, "take_profit": 47000}),
            ),
            trade_opened_payload(),
        ),
        (
            "trade_closed",
            base(
                "trade_closed",
                "info",
                "2025-11-03T17:30:00Z",
                json!({
            "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2600,
            "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0, "reason": "Take Profit",
            "duration": "3 hours"}),
            ),
            trade_closed_payload(),
        ),
        (
            "error",
            base(
                "error",
                "critical",
                "2025-11-03T15:00:00Z",
                json!({
            "message": "Max drawdown exceeded", "error_type": "RiskViolation",
            "component": "risk"}),
            ),
            error_payload(),
        ),
        (
            "daily_summary",
            base(
                "daily_summary",
                "info",
                "2025-11-03T23:59:00Z",
                json!({
            "date": "2025-11-03", "total_trades": 15, "winning_trades": 10, "losing_trades": 5,
            "win_rate": 66.67, "total_pnl": 250, "total_pnl_pct": 2.5, "best_trade": 200,
            "worst_trade": -80, "portfolio_value": 12500}),
            ),
            daily_summary_payload(),
        ),
        (
            "portfolio_update",
            base(
                "portfolio_update",
                "info",
                "2025-11-03T18:00:00Z",
                json!({
            "total_value": 12500, "cash": 2500, "pnl": 2500, "pnl_pct": 25.0, "drawdown_pct": 3.2,
            "positions": [
                {"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.5, "entry_price": 45000,
                 "current_price": 46500, "pnl": 750, "pnl_pct": 3.33},
                {"symbol": "ETH/USDT", "side": "LONG", "quantity": 2.0, "entry_price": 2400,
                 "current_price": 2500, "pnl": 200, "pnl_pct": 4.17}]}),
            ),
            portfolio_update_payload(),
        ),
        (
            "performance_metrics",
            base(
                "performance_metrics",
                "info",
                "2025-11-03T18:00:00Z",
                json!({
            "total_return": 25.0, "sharpe_ratio": 1.85, "max_drawdown": 8.5, "win_rate": 65.0,
            "total_trades": 120}),
            ),
            performance_metrics_payload(),
        ),
    ]
}

#[test]
fn the_templates_render_the_payloads_the_golden_files_start_from() {
    use alert_router::render::{Markup, context};
    use alert_router_tests::templates;

    let templates = templates::shipped("discord", Markup::Markdown);

    let now = "2025-11-03T23:59:59Z";
    for (kind, event, expected) in example_events() {
        let id = templates
            .resolve("discord", "discord", kind)
            .expect("a template for each type");
        let ctx = context(&event, "test-rule", "discord", "discord", now);
        let rendered = templates
            .render(id, &ctx)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(
            rendered, expected,
            "{kind}: the template renders other than the test assumes"
        );
    }

    // Every optional field absent, and a losing trade: the guards hold, colors flip.
    let minimal = json!({"type": "trade_closed", "severity": "warning", "time": now, "id": "m",
        "labels": {}, "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500,
        "exit_price": 2400, "quantity": 2.0, "pnl": -200, "pnl_pct": -4.0});
    let id = templates
        .resolve("discord", "discord", "trade_closed")
        .expect("trade_closed");
    let rendered = templates
        .render(id, &context(&minimal, "r", "discord", "discord", now))
        .expect("renders without the optional fields");
    assert_eq!(rendered["embeds"][0]["title"], "❌ Trade Closed");
    assert_eq!(rendered["embeds"][0]["color"], "loss");
    assert_eq!(
        rendered["embeds"][0]["fields"][5]["value"],
        "\\-$200.00 (\\-4.00%)"
    );
    assert_eq!(rendered["embeds"][0]["fields"][6]["value"], "");
    for kind in [
        "performance_metrics",
        "portfolio_update",
        "error",
        "daily_summary",
    ] {
        let mut event =
            json!({"type": kind, "severity": "error", "time": now, "id": "m", "labels": {}});
        // Only the fields every event of the type must have.
        let required: &[(&str, Value)] = match kind {
            "portfolio_update" => &[("total_value", json!(1000))],
            "error" => &[("message", json!("boom"))],
            "daily_summary" => &[
                ("total_trades", json!(0)),
                ("winning_trades", json!(0)),
                ("losing_trades", json!(0)),
                ("win_rate", json!(0)),
                ("total_pnl", json!(0)),
            ],
            _ => &[],
        };
        for (key, value) in required {
            event[*key] = value.clone();
        }
        let id = templates
            .resolve("discord", "discord", kind)
            .expect("a template");
        templates
            .render(id, &context(&event, "r", "discord", "discord", now))
            .unwrap_or_else(|e| panic!("{kind} without its optional fields: {e}"));
    }

    // A custom event type falls back to default.yaml.
    let custom = json!({"type": "backup_done", "severity": "warning", "time": now, "id": "c",
        "labels": {}, "message": "took 5 min", "size_mb": 120});
    let id = templates
        .resolve("discord", "discord", "backup_done")
        .expect("default.yaml");
    let rendered = templates
        .render(id, &context(&custom, "r", "discord", "discord", now))
        .expect("default renders");
    assert_eq!(rendered["embeds"][0]["title"], "⚠️ backup\\_done");
    assert_eq!(rendered["embeds"][0]["color"], "warning");
    let description = rendered["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("**message**: took 5 min"),
        "{description}"
    );
    assert!(description.contains("**size\\_mb**: 120"), "{description}");
}
