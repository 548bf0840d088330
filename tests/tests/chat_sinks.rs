//! End to end: the real router with the Telegram and Discord plugins, the shipped rules
//! and templates, against fake Telegram and Discord servers on 127.0.0.1. Notifications,
//! bot commands answered from the state store, upstream rate limits, and secrets kept
//! out of the status page and the log.

use std::time::{Duration, Instant};

use alert_router_tests::fake_discord::{FakeDiscord, Reply};
use alert_router_tests::fake_telegram::FakeTelegram;
use alert_router_tests::harness::{Router, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const CHAT: i64 = 4242;
const USER: i64 = 777;

/// A router with the shipped rules and templates and the given chat sinks.
async fn router(sinks: &str) -> Router {
    Router::start(
        &format!(
            r#"plugins: {{dirs: ["{{plugins}}"]}}
rules: {{shipped-rules}}
templates: "{{repo}}/templates"
sinks:
  console:
    plugin: console
    settings: {{path: "{{dir}}/console.txt"}}
  # The shipped rules send everything to the dashboard too; here it is off.
  dashboard: {{plugin: dashboard, enabled: false}}
{sinks}"#
        ),
        &[],
    )
    .await
}

fn telegram_sink(tg: &FakeTelegram) -> String {
    format!(
        "  telegram:\n    plugin: telegram\n    settings:\n      bot_token: \"{}\"\n      api_url: \"{}\"\n      chat_ids: [{CHAT}]\n",
        tg.token(),
        tg.api_url()
    )
}

fn discord_sink(dc: &FakeDiscord) -> String {
    format!(
        "  discord:\n    plugin: discord\n    settings:\n      webhook_url: \"{}\"\n      username: Trading Bot\n",
        dc.webhook_url()
    )
}

fn trade_opened() -> Value {
    json!({"type": "trade_opened", "time": "2025-11-03T14:30:00Z", "symbol": "BTC/USDT", "side": "BUY",
           "entry_price": 45000, "quantity": 0.5, "strategy": "RSI_MACD", "stop_loss": 44000, "take_profit": 47000})
}

fn trade_closed(n: i64) -> Value {
    json!({"type": "trade_closed", "time": "2025-11-03T17:30:00Z", "symbol": "ETH/USDT", "side": "SELL",
           "entry_price": 2500, "exit_price": 2600, "quantity": 2.0, "pnl": 200 + n, "pnl_pct": 4.0,
           "reason": "Take Profit", "duration": "3 hours"})
}

#[tokio::test]
async fn telegram_notifies_and_answers_commands_from_the_state_store() {
    let tg = FakeTelegram::start("110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw").await;
    let router = router(&format!(
        "{}  discord: {{plugin: discord, enabled: false}}\n",
        telegram_sink(&tg)
    ))
    .await;
    let portfolio = json!({"type": "portfolio_update", "total_value": 12500, "cash": 2500, "pnl": 2500, "pnl_pct": 25,
                           "positions": [{"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.2, "entry_price": 45000, "current_price": 46500}]});
    let body = format!("{}\n{}\n{}\n", trade_opened(), trade_closed(0), portfolio);
    assert_eq!(router.post_events(body).await.0, 202);
    // The shipped rules send trades to the chats; portfolio updates only to the console.
    let sent = eventually(WAIT, "two notifications", || {
        (tg.messages().len() >= 2).then(|| tg.messages())
    })
    .await;
    assert!(
        sent[0].visible.starts_with("🟢 Trade Opened"),
        "{}",
        sent[0].visible
    );
    assert!(
        sent[0].visible.contains("💰 Entry Price: $45,000.00"),
        "{}",
        sent[0].visible
    );
    assert!(
        sent[1].visible.contains("P&L: +$200.00 (+4.00%)"),
        "{}",
        sent[1].visible
    );
    assert!(sent.iter().all(|m| m.chat_id == json!(CHAT)));

    // Commands are answered from the router's state and status.
    tg.push_command(CHAT, USER, "/portfolio");
    let answer = eventually(WAIT, "/portfolio answered with the total value", || {
        tg.messages_to(CHAT)
            .into_iter()
            .find(|m| m.visible.contains("12,500"))
    })
    .await;
    assert!(answer.visible.contains("$12,500.00"), "{}", answer.visible);
    tg.push_command(CHAT, USER, "/status");
    let status = eventually(WAIT, "/status listing the sinks", || {
        tg.messages_to(CHAT)
            .into_iter()
            .find(|m| m.visible.contains("console"))
    })
    .await;
    assert!(status.visible.contains("telegram"), "{}", status.visible);
    tg.push_command(CHAT, USER, "/trades");
    eventually(WAIT, "/trades listing the closed trade", || {
        tg.messages_to(CHAT)
            .into_iter()
            .find(|m| m.visible.contains("ETH/USDT") && m.visible != sent[1].visible)
    })
    .await;

    // A stranger gets nothing, and the attempt is counted as an event.
    let before = tg.messages().len();
    tg.push_command(9999, 1, "/portfolio");
    router
        .status_until("the stranger's command to be recorded", |s| {
            s["events"]["by_type"]["telegram_command"]
                .as_u64()
                .unwrap_or(0)
                >= 4
        })
        .await;
    assert!(tg.messages_to(9999).is_empty());
    assert_eq!(tg.messages().len(), before);

    // The token is in every API URL: it must not reach the status page or the log.
    let status = router.get_text("/v1/status").await;
    assert!(
        !status.contains(tg.token()) && !status.contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"),
        "{status}"
    );
    assert!(status.contains("\"bot_token\":\"***\""), "{status}");
    assert!(
        !router
            .stderr()
            .contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")
    );
}

#[tokio::test]
async fn discord_embeds_and_a_429_that_pauses_only_discord() {
    let dc = FakeDiscord::start().await;
    let router = router(&format!(
        "{}  telegram: {{plugin: telegram, enabled: false}}\n",
        discord_sink(&dc)
    ))
    .await;
    assert_eq!(router.post_events(trade_closed(0).to_string()).await.0, 202);
    let accepted = eventually(WAIT, "the embed", || {
        let a = dc.accepted();
        (!a.is_empty()).then_some(a)
    })
    .await;
    let embed = &accepted[0].body["embeds"][0];
    assert_eq!(embed["title"], "✅ Trade Closed", "{embed}");
    assert!(
        embed["fields"].to_string().contains("$200.00 (+4.00%)"),
        "{embed}"
    );
    assert_eq!(accepted[0].body["allowed_mentions"], json!({"parse": []}));

    // Discord asks to wait 1.5 s: the next Discord delivery waits, the console does not.
    dc.script([Reply::RateLimited {
        retry_after: 1.5,
        global: false,
    }]);
    let posted = Instant::now();
    let body = format!("{}\n{}\n", trade_closed(1), trade_closed(2));
    assert_eq!(router.post_events(body).await.0, 202);
    let console = router.dir.path().join("console.txt");
    eventually(WAIT, "the console to print both", || {
        std::fs::read_to_string(&console)
            .ok()
            .filter(|t| t.matches("Trade Closed").count() >= 3)
            .map(|_| ())
    })
    .await;
    // Order, not wall-clock margins: the console printed both while Discord was still
    // paused (it had only the first embed).
    let discord_when_console_done = dc.accepted().len();
    let accepted = eventually(WAIT, "both embeds after the pause", || {
        let a = dc.accepted();
        (a.len() >= 3).then_some(a)
    })
    .await;
    let discord_done = posted.elapsed();
    assert!(
        discord_done >= Duration::from_millis(1500),
        "Discord waited {discord_done:?}"
    );
    assert_eq!(
        discord_when_console_done, 1,
        "the console was not held up by Discord's pause"
    );
    let pnls: Vec<String> = accepted
        .iter()
        .map(|a| a.body["embeds"][0]["fields"].to_string())
        .collect();
    assert!(
        pnls[1].contains("$201.00") && pnls[2].contains("$202.00"),
        "in order, none lost: {pnls:?}"
    );

    let status = router.get_text("/v1/status").await;
    assert!(
        !status.contains(dc.token()),
        "the webhook token stays out of the status: {status}"
    );
    assert!(!router.stderr().contains(dc.token()), "and out of the log");
}
