//! The Rust client (the `alert-router-client` crate) against the real router, what it
//! links, and `alert-router demo` run as a process: what a trading bot's author would see.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alert_router_client::{
    Client, ClientError, DailySummary, ErrorEvent, PerformanceMetrics, PortfolioUpdate, Position,
    Severity, TradeClosed, TradeOpened,
};
use alert_router_tests::harness::{Router, dir_with, eventually, read_json_lines, run_cli};
use alert_router_trading::StateStore;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(20);

/// The shipped rules and templates, the console writing JSON lines to `out.jsonl`.
const CONFIG: &str = r#"
plugins: {dirs: ["{plugins}"]}
rules: {shipped-rules}
templates: "{repo}/templates"
sinks:
  console:
    plugin: console
    settings: {path: "{dir}/out.jsonl", format: json}
  # The shipped rules name the chat sinks too; here they are off.
  telegram: {plugin: telegram, enabled: false}
  discord: {plugin: discord, enabled: false}
  dashboard: {plugin: dashboard, enabled: false}
"#;

fn delivered(router: &Router) -> Vec<Value> {
    read_json_lines(&router.dir.path().join("out.jsonl"))
}

#[tokio::test]
async fn every_method_is_delivered_and_lands_in_the_state() {
    let router = Router::start(CONFIG, &[]).await;
    let client = Client::new(router.url.clone());

    let mut opened = TradeOpened::new("BTC/USDT", "BUY", 45000.0, 0.5);
    opened.strategy = Some("RSI_MACD".into());
    opened.stop_loss = Some(44000.0);
    let mut ids = vec![client.notify_trade_opened(&opened).await.expect("opened")];
    ids.push(
        client
            .notify_trade_closed(&TradeClosed {
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
            })
            .await
            .expect("closed"),
    );
    let mut error = ErrorEvent::new("Exchange API timeout after 30s");
    error.component = Some("order_manager".into());
    ids.push(client.notify_error(&error).await.expect("error"));
    ids.push(
        client
            .send_portfolio_update(&PortfolioUpdate {
                total_value: 51250.5,
                cash: Some(28750.5),
                positions: Some(vec![Position {
                    symbol: "BTC/USDT".into(),
                    side: "LONG".into(),
                    quantity: 0.5,
                    entry_price: 45000.0,
                    current_price: 45000.0,
                    value: Some(22500.0),
                    ..Position::default()
                }]),
                ..PortfolioUpdate::default()
            })
            .await
            .expect("portfolio"),
    );
    ids.push(
        client
            .send_performance_metrics(&PerformanceMetrics {
                sharpe_ratio: Some(1.8),
                total_trades: Some(15),
                ..PerformanceMetrics::default()
            })
            .await
            .expect("performance"),
    );
    ids.push(
        client
            .send_daily_summary(&DailySummary {
                total_trades: 1,
                winning_trades: 1,
                losing_trades: 0,
                win_rate: 100.0,
                total_pnl: 200.0,
                ..DailySummary::default()
            })
            .await
            .expect("summary"),
    );
    ids.push(
        client
            .send(json!({"type": "heartbeat", "bot": "alpha"}))
            .await
            .expect("custom"),
    );

    let lines = eventually(WAIT, "7 messages at the console", || {
        let lines = delivered(&router);
        (lines.len() >= 7).then_some(lines)
    })
    .await;
    let got: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["event"]["id"].as_str())
        .collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(lines[2]["event"]["severity"], "error");

    let trades = router.get_json("/v1/state/trades").await;
    assert_eq!(trades["trades"][0]["symbol"], "ETH/USDT", "{trades}");
    assert_eq!(trades["trades"][0]["pnl"], 200.0);
    let portfolio = router.get_json("/v1/state/portfolio").await;
    assert_eq!(portfolio["total_value"], 51250.5, "{portfolio}");
    let positions = router.get_json("/v1/state/positions").await;
    assert_eq!(
        positions["positions"][0]["symbol"], "BTC/USDT",
        "{positions}"
    );
    let performance = router.get_json("/v1/state/performance").await;
    assert_eq!(
        performance["reported"]["performance_metrics"]["sharpe_ratio"], 1.8,
        "{performance}"
    );
    let daily = router.get_json("/v1/state/daily").await;
    assert_eq!(daily["reported"]["total_pnl"], 200.0, "{daily}");

    let status = client.service_status().await.expect("status");
    assert_eq!(status["sinks"]["console"]["sent"], 7, "{status}");
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats["accepted"], 7, "{stats}");
    assert_eq!(stats["by_type"]["trade_opened"], 1, "{stats}");
}

/// A proxy in front of the router that forwards every request but swallows the answer
/// to the first one, as a network that drops a response does. Counts connections.
async fn lossy_proxy(upstream: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    let upstream = upstream.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                continue;
            };
            tokio::spawn(async move {
                if n == 0 {
                    // Forward the request, read and drop the answer, keep the client waiting.
                    let (mut in_read, _in_write) = inbound.split();
                    let (mut out_read, mut out_write) = outbound.split();
                    let forward = tokio::io::copy(&mut in_read, &mut out_write);
                    let mut sink = Vec::new();
                    let drop_answer = out_read.read_to_end(&mut sink);
                    let _ = tokio::join!(forward, drop_answer);
                } else {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (format!("http://{addr}"), connections)
}

#[tokio::test]
async fn a_lost_answer_is_retried_with_the_same_id_and_delivered_once() {
    let router = Router::start(CONFIG, &[]).await;
    let (proxy, connections) = lossy_proxy(router.url.clone()).await;
    let client = Client::new(proxy)
        .with_timeout(Duration::from_millis(500))
        .with_retries(3);
    let id = client
        .notify_trade_opened(&TradeOpened::new("SOL/USDT", "BUY", 100.0, 10.0))
        .await
        .expect("delivered after a retry");
    assert!(connections.load(Ordering::SeqCst) >= 2, "it was retried");

    // The router saw the id twice and delivered it once.
    let direct = Client::new(router.url.clone());
    let stats = alert_router_tests::harness::eventually_async(WAIT, "the duplicate", || async {
        let stats = direct.stats().await.ok()?;
        (stats["duplicates"] == 1).then_some(stats)
    })
    .await;
    assert_eq!(stats["accepted"], 2, "{stats}");
    router
        .status_until("the console to finish", |s| {
            s["sinks"]["console"]["queued"] == 0 && s["sinks"]["console"]["sent"] == 1
        })
        .await;
    let lines = delivered(&router);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["event"]["id"], id.as_str());
}

#[tokio::test]
async fn a_refusal_comes_back_with_the_routers_reason_and_is_not_retried() {
    let router = Router::start(&format!("server: {{token: s3cret-token}}\n{CONFIG}"), &[]).await;
    let client = Client::new(router.url.clone())
        .with_token("s3cret-token")
        .with_retries(3);
    let err = client
        .send(json!({"type": "trade_opened", "side": "BUY", "entry_price": 1, "quantity": 1}))
        .await
        .expect_err("a trade without a symbol");
    match &err {
        ClientError::Refused { status, message } => {
            assert_eq!(*status, 400);
            assert!(message.contains("symbol"), "{message}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats["rejected"], 1, "one attempt only: {stats}");

    let anonymous = Client::new(router.url.clone()).with_retries(3);
    match anonymous.service_status().await {
        Err(ClientError::Refused {
            status: 401,
            message,
        }) => {
            assert!(message.contains("token"), "{message}");
            assert!(!message.contains("s3cret"), "{message}");
        }
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_router_is_unavailable_after_the_retries() {
    // A port just released: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let client = Client::new(format!("http://{addr}")).with_retries(2);
    match client.send(json!({"type": "heartbeat"})).await {
        Err(ClientError::Unavailable { attempts, last }) => {
            assert_eq!(attempts, 3);
            assert!(last.contains("connect"), "{last}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// The daemon and what only the daemon needs: a producer that links the client crate
/// must compile none of them.
const DAEMON_CRATES: &[&str] = &[
    "alert-router",
    "alert-router-plugin",
    "arc-swap",
    "axum",
    "clap",
    "governor",
    "libloading",
    "minijinja",
    "notify",
    "notify-debouncer-full",
    "rusqlite",
    "serde-saphyr",
    "teloxide",
    "tracing-subscriber",
];

#[test]
fn the_client_crate_links_nothing_of_the_daemon() {
    // Cargo tells the tests it runs where it is. Not `--offline`: the tree resolves crates
    // of other platforms too, which a build on this one never fetched.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "alert-router-client", "-e", "normal"])
        .args(["--prefix", "none", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One `name vX.Y.Z ...` line per crate.
    let crates: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains("alert-router-client") && crates.contains("reqwest"),
        "not the client's tree:\n{tree}"
    );
    let linked: Vec<&str> = DAEMON_CRATES
        .iter()
        .copied()
        .filter(|c| crates.contains(c))
        .collect();
    assert!(
        linked.is_empty(),
        "the client crate links {linked:?} of the daemon:\n{tree}"
    );
}

#[test]
fn the_clients_severity_reads_and_writes_as_the_routers() {
    use alert_router::event::Severity as RouterSeverity;
    let names = |all: &[&str]| all.join(",");
    assert_eq!(
        names(&Severity::ALL.map(Severity::as_str)),
        names(&RouterSeverity::ALL.map(RouterSeverity::as_str)),
        "the same values in the same order"
    );
    for text in [
        "debug", "info", "warning", "error", "critical", "WARN", "Crit", " Info ", "loud", "",
    ] {
        assert_eq!(
            text.parse::<Severity>().ok().map(Severity::as_str),
            text.parse::<RouterSeverity>()
                .ok()
                .map(RouterSeverity::as_str),
            "{text:?}"
        );
    }
    for s in Severity::ALL {
        assert_eq!(
            serde_json::to_value(s).expect("encodes"),
            json!(s.as_str()),
            "{s}"
        );
    }
}

/// The demo's config: the router on a free port, the shipped rules and templates.
const DEMO_CONFIG: &str = r#"
server: {listen: "127.0.0.1:0"}
storage: {path: data}
plugins: {dirs: ["{plugins}"]}
rules: {shipped-rules}
templates: "{repo}/templates"
sinks:
  console:
    plugin: console
    settings: {path: "{dir}/out.jsonl", format: json}
  telegram: {plugin: telegram, enabled: false}
  discord: {plugin: discord, enabled: false}
  dashboard: {plugin: dashboard, enabled: false}
"#;

/// Runs `demo --once` in a new directory, keeping its storage in `demo-data` there;
/// returns the console lines and the directory.
fn run_demo(seed: &str) -> (Vec<Value>, alert_router_tests::harness::TempDir) {
    let dir = dir_with(&[("router.yaml", DEMO_CONFIG)]);
    let config = dir.path().join("router.yaml");
    let config = config.to_str().expect("a UTF-8 temp path");
    let storage = dir.path().join("demo-data");
    let storage = storage.to_str().expect("a UTF-8 temp path");
    let (code, stdout, stderr) = run_cli(
        dir.path(),
        &[
            "--config",
            config,
            "demo",
            "--once",
            "--speed",
            "100000",
            "--seed",
            seed,
            "--storage",
            storage,
        ],
    );
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("/v1/state/performance"), "{stdout}");
    assert!(stdout.contains("daily_summary"), "{stdout}");
    (read_json_lines(&dir.path().join("out.jsonl")), dir)
}

fn type_and_symbol(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| {
            (
                l["event"]["type"].as_str().unwrap_or("").to_owned(),
                l["event"]["symbol"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_demo_plays_a_day_through_the_router_the_same_way_every_time() {
    let (lines, dir) = run_demo("7");
    let types = type_and_symbol(&lines);
    for kind in [
        "trade_opened",
        "trade_closed",
        "portfolio_update",
        "error",
        "performance_metrics",
        "daily_summary",
    ] {
        assert!(
            types.iter().any(|(t, _)| t == kind),
            "no {kind} at the console"
        );
    }
    let severities: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"]["type"] == "error")
        .map(|l| &l["event"]["severity"])
        .collect();
    assert_eq!(
        severities,
        [&json!("warning"), &json!("error"), &json!("critical")]
    );

    // The state the demo left behind holds the day's trades, matching its summary.
    let closed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"]["type"] == "trade_closed")
        .map(|l| &l["event"])
        .collect();
    let summary = lines
        .iter()
        .find(|l| l["event"]["type"] == "daily_summary")
        .map(|l| &l["event"])
        .expect("a summary");
    assert_eq!(summary["total_trades"], json!(closed.len()));
    let store = StateStore::open(&dir.path().join("demo-data")).expect("the demo's state");
    let trades = store.query("trades", "limit=1000").expect("trades");
    assert_eq!(trades["total"], json!(closed.len()), "{trades}");
    let pnl: f64 = closed.iter().filter_map(|t| t["pnl"].as_f64()).sum();
    let reported = summary["total_pnl"].as_f64().expect("total_pnl");
    assert!((pnl - reported).abs() < 0.01, "{pnl} vs {reported}");

    let (again, _dir) = run_demo("7");
    assert_eq!(
        type_and_symbol(&again),
        types,
        "the same seed, the same day"
    );
    let (other, _dir) = run_demo("8");
    assert_ne!(type_and_symbol(&other), types, "another seed, another day");
}

#[test]
fn the_demo_keeps_out_of_the_live_storage_and_names_only_the_sinks_it_uses() {
    let dir = dir_with(&[
        ("router.yaml", DEMO_CONFIG),
        // The live router's storage (`storage.path: data`), with what it holds.
        ("data/state.db", "the live trading state"),
    ]);
    let (code, stdout, stderr) = run_cli(dir.path(), &["demo", "--once", "--speed", "100000"]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let live: Vec<String> = std::fs::read_dir(dir.path().join("data"))
        .expect("the live storage")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(live, ["state.db"], "the demo wrote into the live storage");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/state.db"))
            .ok()
            .as_deref(),
        Some("the live trading state")
    );
    // Its own storage was a temporary directory, gone once it exits.
    let storage = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("storage: "))
        .and_then(|l| l.split(" (").next())
        .unwrap_or_else(|| panic!("no storage line in:\n{stdout}"));
    assert!(
        !std::path::Path::new(storage).exists(),
        "{storage} is left behind"
    );
    assert!(!read_json_lines(&dir.path().join("out.jsonl")).is_empty());
    // The sinks it names are the enabled ones; the disabled ones are never mentioned.
    assert!(
        stdout.lines().any(|l| l.trim() == "sinks: console"),
        "{stdout}"
    );
    let delivered = read_json_lines(&dir.path().join("out.jsonl")).len();
    assert!(
        stdout
            .lines()
            .any(|l| l.trim() == format!("console: sent {delivered}, failed 0")),
        "a sink without errors has no `last error`: {stdout}"
    );
    for disabled in ["telegram", "discord", "dashboard"] {
        assert!(
            !stdout.to_lowercase().contains(disabled),
            "{disabled} mentioned:\n{stdout}"
        );
    }
}
