//! A trading bot's side of alert-router: posts a few events with the Rust client.
//!
//! ```sh
//! cargo run -p alert-router-client --example producer -- [http://127.0.0.1:9470]
//! ```
//! `ALERT_ROUTER_TOKEN` is sent as the bearer token when set.

use std::process::ExitCode;
use std::time::Duration;

use alert_router_client::{Client, ErrorEvent, Severity, TradeClosed, TradeOpened};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:9470".into());
    let mut client = Client::new(url)
        .with_timeout(Duration::from_secs(5))
        .with_retries(4);
    if let Ok(token) = std::env::var("ALERT_ROUTER_TOKEN") {
        client = client.with_token(token);
    }

    let mut opened = TradeOpened::new("BTC/USDT", "BUY", 45000.0, 0.5);
    opened.strategy = Some("RSI_MACD".into());
    opened.stop_loss = Some(44000.0);
    opened.take_profit = Some(47000.0);
    let closed = TradeClosed {
        symbol: "ETH/USDT".into(),
        side: "SELL".into(),
        entry_price: 2500.0,
        exit_price: 2600.0,
        quantity: 2.0,
        pnl: 200.0,
        pnl_pct: 4.0,
        reason: Some("Take Profit".into()),
        duration: Some(json!("3 hours")),
        strategy: None,
    };
    let mut warning = ErrorEvent::new("Exchange API latency above 2s");
    warning.error_type = Some("HighLatency".into());
    warning.severity = Some(Severity::Warning);

    let results = [
        ("trade_opened", client.notify_trade_opened(&opened).await),
        ("trade_closed", client.notify_trade_closed(&closed).await),
        ("error", client.notify_error(&warning).await),
        (
            "heartbeat",
            client
                .send(json!({"type": "heartbeat", "bot": "example"}))
                .await,
        ),
    ];
    let mut code = ExitCode::SUCCESS;
    for (kind, result) in results {
        match result {
            Ok(id) => println!("{kind} -> {id}"),
            Err(e) => {
                eprintln!("{kind} -> {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    match client.stats().await {
        Ok(stats) => println!("router events: {stats}"),
        Err(e) => eprintln!("stats -> {e}"),
    }
    code
}
