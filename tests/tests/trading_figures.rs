//! End to end: a bot whose own figures disagree with the trades the router saw (it
//! counts a losing trade the router never got). The real router with the shipped rules
//! and templates, the dashboard, the console and Telegram (a fake Bot API): every place
//! a user reads a figure keeps the router's figures apart from the bot's and says which
//! is which; a drawdown and a VaR carry one minus sign whichever sign the bot used; a
//! P&L is signed everywhere.

use std::time::Duration;

use alert_router_tests::fake_telegram::FakeTelegram;
use alert_router_tests::harness::{Router, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const CHAT: i64 = 4242;
const USER: i64 = 777;

async fn router(tg: &FakeTelegram) -> Router {
    Router::start(
        &format!(
            r#"plugins: {{dirs: ["{{plugins}}"]}}
rules: {{shipped-rules}}
templates: "{{repo}}/templates"
sinks:
  dashboard:
    plugin: dashboard
    settings: {{listen: "127.0.0.1:0"}}
  console:
    plugin: console
    settings: {{path: "{{dir}}/console.txt"}}
  telegram:
    plugin: telegram
    settings:
      bot_token: "{}"
      api_url: "{}"
      chat_ids: [{CHAT}]
  discord: {{plugin: discord, enabled: false}}
"#,
            tg.token(),
            tg.api_url()
        ),
        &[],
    )
    .await
}

/// Today's events (no `time`: the router's clock, so `/daily` sees them): two winning
/// trades and an open position the router saw, and the bot's reports counting three
/// trades with a loss of 100, its VaR and drawdown written as negative numbers.
fn events() -> Vec<Value> {
    vec![
        json!({"type": "trade_closed", "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500,
               "exit_price": 2600, "quantity": 2, "pnl": 200, "pnl_pct": 4, "reason": "Take Profit"}),
        json!({"type": "trade_closed", "symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000,
               "exit_price": 45200, "quantity": 0.5, "pnl": 100, "pnl_pct": 0.44}),
        json!({"type": "trade_opened", "symbol": "SOL/USDT", "side": "BUY", "entry_price": 150,
               "quantity": 10}),
        json!({"type": "performance_metrics", "win_rate": 66.7, "total_trades": 3, "worst_trade": -100,
               "sharpe_ratio": 1.2, "var_95": -1.5, "max_drawdown": -4.2}),
        json!({"type": "daily_summary", "total_trades": 3, "winning_trades": 2, "losing_trades": 1,
               "win_rate": 66.7, "total_pnl": 200, "best_trade": 200, "worst_trade": -100}),
    ]
}

/// The dashboard's base URL, from the sink's log line (it listens on port 0).
async fn dashboard_url(router: &Router) -> String {
    eventually(WAIT, "the dashboard's listening line", || {
        let log = router.stderr();
        let at = log.rfind("dashboard listening on http://")?;
        let url = log[at + "dashboard listening on ".len()..]
            .split_whitespace()
            .next()?;
        Some(url.trim_end_matches('/').to_owned())
    })
    .await
}

async fn get_json(url: &str) -> Value {
    let response = reqwest::get(url).await.expect("GET");
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.expect("JSON")
}

/// `2025-11-03 12:00` from an RFC 3339 time: how the answers write a report's time.
fn minutes(time: &Value) -> String {
    let t = time.as_str().expect("a time");
    format!("{} {}", &t[..10], &t[11..16])
}

/// Sends `command` to the bot and waits for the answer that starts with `heading`.
async fn ask(tg: &FakeTelegram, command: &str, heading: &str) -> String {
    tg.push_command(CHAT, USER, command);
    eventually(WAIT, &format!("the answer to {command}"), || {
        tg.messages_to(CHAT)
            .into_iter()
            .map(|m| m.visible)
            .find(|text| text.starts_with(heading))
    })
    .await
}

fn assert_has(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
}

#[tokio::test]
async fn figures_that_disagree_are_shown_apart_and_labelled_everywhere() {
    let tg = FakeTelegram::start("110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw").await;
    let router = router(&tg).await;
    let body: String = events().iter().map(|e| format!("{e}\n")).collect();
    let (status, answer) = router.post_events(body).await;
    assert_eq!(status, 202, "{answer}");
    router
        .status_until("every event delivered to the console", |s| {
            s["sinks"]["console"]["sent"].as_u64() >= Some(5)
        })
        .await;

    // The API: two objects, each adding up on its own.
    let perf = router.get_json("/v1/state/performance").await;
    let keys: Vec<&String> = perf.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["computed", "reported"], "{perf}");
    let computed = &perf["computed"];
    assert_eq!(
        [
            &computed["total_trades"],
            &computed["wins"],
            &computed["losses"],
            &computed["win_rate"],
            &computed["worst_trade"],
        ],
        [
            &json!(2),
            &json!(2),
            &json!(0),
            &json!(100.0),
            &json!(100.0)
        ],
        "{perf}"
    );
    let metrics = &perf["reported"]["performance_metrics"];
    assert_eq!(
        [
            &metrics["total_trades"],
            &metrics["win_rate"],
            &metrics["worst_trade"],
        ],
        [&json!(3), &json!(66.7), &json!(-100)],
        "{perf}"
    );
    let reported_at = minutes(&metrics["time"]);
    let summary_at = minutes(&perf["reported"]["daily_summary"]["time"]);
    assert_eq!(perf["reported"]["daily_summary"]["losing_trades"], 3 - 2);

    // The dashboard: the same answer, and a header with one source per figure.
    let url = dashboard_url(&router).await;
    assert_eq!(get_json(&format!("{url}/api/performance")).await, perf);
    let header = get_json(&format!("{url}/api/summary")).await;
    assert_eq!(
        header["win_rate"],
        json!({"value": 100.0, "source": "computed", "trades": 2})
    );
    assert_eq!(header["total_trades"], 2);
    assert_eq!(
        header["pnl"],
        json!({"value": 300.0, "pct": null, "source": "computed", "trades": 2})
    );
    assert_eq!(
        header["sharpe_ratio"],
        json!({"value": 1.2, "source": "reported", "time": metrics["time"]}),
        "the router has no daily returns: the bot's figure, with its time"
    );
    let feed = get_json(&format!("{url}/api/feed")).await;
    let reported_item = feed["events"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["type"] == "performance_metrics"))
        .expect("the report is in the feed");
    assert_has(
        reported_item["text"].as_str().unwrap_or_default(),
        &["max drawdown -4.20%"],
    );

    // Telegram: the router's figures, then the bot's, each section saying whose.
    let performance = ask(&tg, "/performance", "📊 Performance").await;
    assert_has(
        &performance,
        &[
            "🧮 From 2 trades seen\n🔢 Wins / Losses: 2 / 0\n🎯 Win Rate: 100.00%\n💵 Total P&L: +$300.00",
            "💔 Worst Trade: +$100.00",
            &format!(
                "📣 Reported by the bot at {reported_at} UTC\n🔢 Total Trades: 3\n🎯 Win Rate: 66.70%"
            ),
            "📉 Max Drawdown: -4.20%",
            "⚠️ VaR (95%): -1.50%",
        ],
    );
    assert!(!performance.contains("--"), "{performance}");
    let daily = ask(&tg, "/daily", "📅 Today").await;
    assert_has(
        &daily,
        &[
            "🧮 From 2 trades seen\n✅ Winning: 2\n❌ Losing: 0",
            "💵 P&L: +$300.00",
            &format!("📣 Reported by the bot at {summary_at} UTC\n📈 Trades: 3 (2 won, 1 lost)"),
            "💔 Worst Trade: -$100.00",
        ],
    );
    // A position opened with BUY is a LONG position (README, State).
    let positions = ask(&tg, "/positions", "📋 Open Positions").await;
    assert_has(&positions, &["• SOL/USDT LONG 10.0000 @ $150.00"]);
    let closed = tg
        .messages_to(CHAT)
        .into_iter()
        .map(|m| m.visible)
        .find(|m| m.starts_with("✅ Trade Closed") && m.contains("ETH/USDT"))
        .expect("the trade notification");
    assert_has(&closed, &["💵 P&L: +$200.00 (+4.00%)"]);

    // The console: signed P&L, losses with one minus sign.
    let console =
        std::fs::read_to_string(router.dir.path().join("console.txt")).expect("console output");
    assert_has(
        &console,
        &[
            "💵 P&L: +$200.00 (+4.00%)",
            "💵 P&L: +$100.00 (+0.44%)",
            "📉 Max Drawdown: -4.20%",
            "⚠️ VaR (95%): -1.50%",
            "💔 Worst Trade: -$100.00",
        ],
    );
    assert!(!console.contains("--"), "{console}");
}
