//! End to end: the real router with the dashboard plugin, the shipped rules and
//! templates. Its JSON endpoints, event stream and token check over plain HTTP; reloads
//! that change its settings; and the page itself in headless Chromium (Debian's
//! `chromium` and `chromedriver`, see `alert_router_tests::browser`): no console errors,
//! live updates without a reload, the equity range control, the token on a non-loopback
//! listener, reconnecting after a router restart, and screenshots at desktop and phone
//! width saved to `target/test-artifacts/dashboard/`.

use std::time::{Duration, Instant};

use alert_router_tests::browser::{Browser, artifacts_dir};
use alert_router_tests::harness::{
    Router, dir_with, eventually, eventually_async, run_cli, run_refused,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const WAIT: Duration = Duration::from_secs(20);

/// The shipped rules and templates (the first route sends every event to the
/// dashboard), the dashboard with `settings`, and the console writing to a file.
/// The dashboard runs in the router's process, as it does installed beside the router
/// (the tests load plugins from cargo's `deps`, where they would default to a process of
/// their own): a reload hands its running server to the new instance.
fn config(settings: &str) -> String {
    format!(
        r#"plugins: {{dirs: ["{{plugins}}"]}}
rules: {{shipped-rules}}
templates: "{{repo}}/templates"
sinks:
  dashboard:
    plugin: dashboard
    isolation: in-process
    settings: {settings}
  console:
    plugin: console
    settings: {{path: "{{dir}}/console.txt"}}
  telegram: {{plugin: telegram, enabled: false}}
  discord: {{plugin: discord, enabled: false}}
"#
    )
}

/// The dashboard's base URL, from the sink's log line (it listens on port 0 in tests).
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

fn at(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("an RFC 3339 time")
}

/// A believable month: a daily portfolio value for 35 days, every two hours over the
/// last day, closed trades over several symbols and strategies, open positions, a
/// warning and an error. Oldest first, all in the past.
fn trading_month(now: OffsetDateTime) -> Vec<Value> {
    let mut events = Vec::new();
    let mut value = 48_700.0;
    for d in (1..=35).rev() {
        value *= 1.0 + 0.006 * ((d as f64) * 1.7).sin() + 0.002;
        events.push(
            json!({"type": "portfolio_update", "time": at(now - time::Duration::days(d)),
                           "total_value": (value * 100.0_f64).round() / 100.0}),
        );
    }
    let trades = [
        (
            "BTC/USDT",
            "LONG",
            44_000.0,
            45_200.0,
            0.2,
            "RSI_MACD",
            "Take Profit",
        ),
        (
            "ETH/USDT",
            "LONG",
            2_500.0,
            2_440.0,
            3.0,
            "Breakout",
            "Stop Loss",
        ),
        (
            "SOL/USDT",
            "SHORT",
            160.0,
            151.0,
            40.0,
            "MeanReversion",
            "Take Profit",
        ),
        (
            "BTC/USDT",
            "LONG",
            45_500.0,
            46_100.0,
            0.1,
            "Breakout",
            "Take Profit",
        ),
        (
            "ADA/USDT",
            "LONG",
            0.62,
            0.598,
            8_000.0,
            "RSI_MACD",
            "Stop Loss",
        ),
        (
            "ETH/USDT",
            "LONG",
            2_410.0,
            2_495.0,
            2.0,
            "RSI_MACD",
            "Take Profit",
        ),
    ];
    for (i, (symbol, side, entry, exit, qty, strategy, reason)) in trades.iter().enumerate() {
        let sign = if *side == "SHORT" { -1.0 } else { 1.0 };
        let pnl = ((exit - entry) * qty * sign * 100.0_f64).round() / 100.0;
        let pnl_pct = ((exit / entry - 1.0) * 100.0 * sign * 100.0_f64).round() / 100.0;
        events.push(json!({"type": "trade_closed", "time": at(now - time::Duration::hours(30 - 5 * i as i64)),
                           "symbol": symbol, "side": side, "entry_price": entry, "exit_price": exit,
                           "quantity": qty, "pnl": pnl, "pnl_pct": pnl_pct, "strategy": strategy,
                           "reason": reason, "duration": 3600 * (i + 1)}));
    }
    for h in (1..=10).rev() {
        value *= 1.0 + 0.0015 * ((h as f64) * 2.3).cos();
        events.push(
            json!({"type": "portfolio_update", "time": at(now - time::Duration::hours(2 * h)),
                           "total_value": (value * 100.0_f64).round() / 100.0}),
        );
    }
    let yesterday = (now - time::Duration::days(1)).date();
    events.push(json!({"type": "daily_summary", "time": at(now - time::Duration::hours(1)),
                       "date": yesterday.to_string(), "total_trades": 6, "winning_trades": 4,
                       "losing_trades": 2, "win_rate": 66.67, "total_pnl": 474.0, "total_pnl_pct": 0.9,
                       "portfolio_value": 52_400.0}));
    events.push(json!({"type": "performance_metrics", "time": at(now - time::Duration::minutes(55)),
                       "total_return": 7.4, "sharpe_ratio": 1.85, "sortino_ratio": 2.6, "max_drawdown": 3.2,
                       "profit_factor": 2.33, "total_trades": 6, "var_95": -1.5}));
    events.push(
        json!({"type": "trade_opened", "time": at(now - time::Duration::minutes(50)),
                       "symbol": "BTC/USDT", "side": "BUY", "entry_price": 45_000, "quantity": 0.2,
                       "strategy": "RSI_MACD", "stop_loss": 44_000, "take_profit": 47_000}),
    );
    events.push(json!({"type": "cpu_high", "severity": "warning", "time": at(now - time::Duration::minutes(40)),
                       "host": "trader-1", "cpu": 93}));
    events.push(
        json!({"type": "error", "time": at(now - time::Duration::minutes(30)),
                       "error_type": "ConnectionError", "message": "Exchange API timeout after 30s",
                       "component": "order_manager"}),
    );
    events.push(json!({"type": "portfolio_update", "time": at(now - time::Duration::minutes(5)),
                       "total_value": 52_480.5, "cash": 28_930.5, "pnl": 2_480.5, "pnl_pct": 4.96,
                       "positions": [
                           {"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.2, "entry_price": 45_000, "current_price": 46_500},
                           {"symbol": "ETH/USDT", "side": "LONG", "quantity": 4, "entry_price": 2_400, "current_price": 2_500},
                           {"symbol": "SOL/USDT", "side": "SHORT", "quantity": 25, "entry_price": 150, "current_price": 155}]}));
    events
}

async fn post_all(router: &Router, events: &[Value]) {
    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
    let (status, answer) = router.post_events(body).await;
    assert_eq!(status, 202, "{answer}");
}

/// Waits until the dashboard sink has delivered `n` messages.
async fn delivered(router: &Router, n: u64) {
    router
        .status_until(&format!("{n} messages delivered to the dashboard"), |s| {
            s["sinks"]["dashboard"]["sent"].as_u64() >= Some(n)
        })
        .await;
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn get_json(url: &str) -> Value {
    let (status, body) = get(url, None).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

// ---- plain HTTP ---------------------------------------------------------------------

#[tokio::test]
async fn the_demo_fills_the_dashboard_with_a_trading_day() {
    let dir = dir_with(&[(
        "router.yaml",
        &format!(
            "server: {{listen: \"127.0.0.1:0\"}}\n{}",
            config("{listen: \"127.0.0.1:0\"}")
        ),
    )]);
    let (code, stdout, stderr) = run_cli(
        dir.path(),
        &[
            "--config",
            "router.yaml",
            "demo",
            "--once",
            "--speed",
            "100000",
            // The demo keeps to a storage of its own unless told; here, the one the
            // next start uses.
            "--storage",
            "data",
        ],
    );
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    // Port 0 picks a free port at bind time: the demo says how to get a URL instead of
    // printing one that cannot be opened.
    assert!(
        stdout.contains("dashboard: listens on a free port (127.0.0.1:0); give it a fixed one"),
        "the demo points at the dashboard: {stdout}"
    );
    // The day is in the state store: the dashboard of the next start shows it.
    let router = Router::start_in(dir).await;
    let url = dashboard_url(&router).await;
    let summary = get_json(&format!("{url}/api/summary")).await;
    let portfolio = router.get_json("/v1/state/portfolio").await;
    assert!(
        summary["total_value"].as_f64().is_some_and(|v| v > 0.0),
        "{summary}"
    );
    assert_eq!(summary["total_value"], portfolio["total_value"]);
    assert!(
        summary["total_trades"].as_u64().is_some_and(|n| n >= 3),
        "a day has several closed trades: {summary}"
    );
    let trades = get_json(&format!("{url}/api/trades")).await;
    assert!(
        trades["trades"].as_array().is_some_and(|t| !t.is_empty()),
        "{trades}"
    );
    let (status, svg) = get(&format!("{url}/api/charts/equity.svg?range=all"), None).await;
    assert_eq!(status, 200);
    let points: usize = svg
        .split("data-points=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        points > 10,
        "the day's equity curve is drawn: {points} points"
    );
}

#[tokio::test]
async fn the_json_endpoints_answer_from_the_state_and_the_feed() {
    let router = Router::start(&config("{listen: \"127.0.0.1:0\", max_trades: 4}"), &[]).await;
    let url = dashboard_url(&router).await;
    let events = trading_month(OffsetDateTime::now_utc());
    post_all(&router, &events).await;
    delivered(&router, events.len() as u64).await;

    let info = get_json(&format!("{url}/api/info")).await;
    assert_eq!(info["title"], "Trading Dashboard");
    assert_eq!(info["theme"], "dark");
    assert_eq!(info["listen"], url.trim_start_matches("http://"));

    let summary = get_json(&format!("{url}/api/summary")).await;
    assert_eq!(summary["total_value"], 52_480.5);
    assert_eq!(
        (
            summary["pnl"]["value"].clone(),
            summary["pnl"]["pct"].clone()
        ),
        (json!(2480.5), json!(4.96))
    );
    assert_eq!(summary["pnl"]["source"], "reported", "the portfolio's own");
    // One source per figure, and which: 4 of the 6 trades the router saw won; the
    // Sharpe ratio is the router's, from its month of daily closes, not the bot's 1.85.
    let win = &summary["win_rate"];
    assert!(
        win["value"]
            .as_f64()
            .is_some_and(|w| (w - 66.666).abs() < 0.1),
        "{summary}"
    );
    assert_eq!(
        (&win["source"], &win["trades"]),
        (&json!("computed"), &json!(6))
    );
    let sharpe = &summary["sharpe_ratio"];
    assert_eq!(sharpe["source"], "computed", "{summary}");
    assert_ne!(sharpe["value"], 1.85, "{summary}");
    assert!(
        sharpe["daily_returns"].as_u64().is_some_and(|n| n >= 30),
        "{summary}"
    );

    let positions = get_json(&format!("{url}/api/positions")).await;
    let symbols: Vec<&str> = positions["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols, ["BTC/USDT", "ETH/USDT", "SOL/USDT"]);

    let trades = get_json(&format!("{url}/api/trades")).await;
    assert_eq!(
        trades["trades"].as_array().unwrap().len(),
        4,
        "max_trades limits the table"
    );
    assert_eq!(trades["total"], 6);
    assert_eq!(
        trades["symbols"],
        json!(["ADA/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT"])
    );
    assert_eq!(
        trades["strategies"],
        json!(["Breakout", "MeanReversion", "RSI_MACD"])
    );
    let btc = get_json(&format!(
        "{url}/api/trades?symbol=BTC%2FUSDT&strategy=Breakout"
    ))
    .await;
    assert_eq!(btc["total"], 1);
    assert_eq!(btc["trades"][0]["pnl"], 60.0);

    let perf = get_json(&format!("{url}/api/performance")).await;
    assert_eq!(perf, router.get_json("/v1/state/performance").await);
    for key in [
        "max_drawdown",
        "volatility",
        "var_95",
        "sharpe_ratio",
        "win_rate",
    ] {
        assert!(perf["computed"][key].is_number(), "{key}: {perf}");
    }
    assert_eq!(
        perf["reported"]["performance_metrics"]["sharpe_ratio"],
        1.85
    );
    assert_eq!(perf["reported"]["daily_summary"]["total_trades"], 6);
    let all = get_json(&format!("{url}/api/equity?range=all")).await;
    let day = get_json(&format!("{url}/api/equity?range=1D")).await;
    assert!(all["points"].as_array().unwrap().len() > day["points"].as_array().unwrap().len());

    // The feed: the shipped templates' words, newest first, filterable by severity.
    let feed = get_json(&format!("{url}/api/feed")).await;
    let items = feed["events"].as_array().unwrap();
    assert_eq!(items.len(), events.len());
    let closed = items
        .iter()
        .find(|i| i["type"] == "trade_closed" && i["title"].as_str().unwrap().contains("SOL/USDT"))
        .unwrap();
    let title = closed["title"].as_str().unwrap();
    assert!(
        title.starts_with("✅ Trade Closed: SOL/USDT +$360.00 (+5.6"),
        "{title}"
    );
    assert_eq!(closed["tone"], "positive");
    let errors = get_json(&format!("{url}/api/feed?severity=warning")).await;
    let kinds: Vec<&str> = errors["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["error", "cpu_high"]);
    assert_eq!(errors["events"][0]["title"], "❌ ERROR: ConnectionError");

    // Per-sink health, without the sinks' settings.
    let status = get_json(&format!("{url}/api/status")).await;
    assert_eq!(status["sinks"]["dashboard"]["sent"], events.len());
    assert_eq!(status["sinks"]["dashboard"]["healthy"], true);
    assert!(status["sinks"]["console"].get("settings").is_none());
    assert_eq!(status["events"]["accepted"], events.len());

    // Charts are SVG, one per range.
    let (code, svg) = get(&format!("{url}/api/charts/equity.svg?range=1W"), None).await;
    assert_eq!(code, 200);
    assert!(
        svg.starts_with("<svg class=\"chart chart-equity\"") && svg.contains("data-range=\"1W\""),
        "{svg}"
    );
    let (_, donut) = get(&format!("{url}/api/charts/allocation.svg"), None).await;
    assert!(donut.contains("SOL/USDT (short)"), "{donut}");
    let (code, body) = get(&format!("{url}/api/equity?range=2Y"), None).await;
    assert_eq!(code, 400, "{body}");
}

/// The feed's titles, newest first.
async fn feed_titles(url: &str) -> Vec<String> {
    get_json(&format!("{url}/api/feed")).await["events"]
        .as_array()
        .expect("a list of events")
        .iter()
        .map(|i| i["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_feed_is_filled_again_after_a_restart() {
    let mut router = Router::start(&config("{listen: \"127.0.0.1:0\"}"), &[]).await;
    let events = [
        json!({"type": "error", "severity": "error", "message": "feed down", "error_type": "FeedError"}),
        json!({"type": "trade_closed", "symbol": "SOL/USDT", "side": "SELL", "entry_price": 150,
               "exit_price": 160, "quantity": 10, "pnl": 100, "pnl_pct": 6.67}),
        json!({"type": "cpu_high", "severity": "warning", "message": "CPU at 93%"}),
    ];
    post_all(&router, &events).await;
    delivered(&router, 3).await;
    let before = feed_titles(&dashboard_url(&router).await).await;
    assert_eq!(before.len(), 3, "{before:?}");

    assert!(router.terminate(), "the router stops cleanly");
    router.restart().await;
    let url = dashboard_url(&router).await;
    assert_eq!(
        feed_titles(&url).await,
        before,
        "the same items, in the same order, before anything new arrives"
    );

    post_all(
        &router,
        &[json!({"type": "error", "message": "after the restart", "error_type": "Restarted"})],
    )
    .await;
    delivered(&router, 1).await;
    let after = feed_titles(&url).await;
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(
        after[0].contains("Restarted"),
        "the new one on top: {after:?}"
    );
    assert_eq!(after[1..], before[..], "the old ones once each");
}

#[tokio::test]
async fn a_new_event_reaches_an_open_event_stream() {
    let router = Router::start(&config("{listen: \"127.0.0.1:0\"}"), &[]).await;
    let url = dashboard_url(&router).await;
    let mut stream = reqwest::Client::new()
        .get(format!("{url}/api/events"))
        .send()
        .await
        .expect("the event stream");
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let mut posted: Option<Instant> = None;
    let deadline = Instant::now() + WAIT;
    while !seen.contains("event: feed") {
        assert!(
            Instant::now() < deadline,
            "no feed event within {WAIT:?}: {seen}"
        );
        let chunk = tokio::time::timeout(WAIT, stream.chunk())
            .await
            .expect("the stream stays open")
            .expect("a chunk")
            .expect("not the end");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if posted.is_none() && seen.contains("event: hello") {
            assert!(seen.contains("retry: 1000"), "{seen}");
            let (status, _) = router
                .post_events(json!({"type": "trade_opened", "symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000, "quantity": 0.5}).to_string())
                .await;
            assert_eq!(status, 202);
            posted = Some(Instant::now());
        }
    }
    let latency = posted.expect("posted").elapsed();
    eprintln!("event posted → on the dashboard's stream: {latency:?}");
    assert!(seen.contains("🟢 Trade Opened: BUY BTC/USDT"), "{seen}");
}

#[tokio::test]
async fn off_loopback_the_sink_refuses_to_start_without_a_token_and_checks_it() {
    // No token: a config error, which `check` finds and startup refuses, at the place.
    let dir = dir_with(&[("router.yaml", &config("{listen: \"0.0.0.0:0\"}"))]);
    let refusal = "router.yaml:8:15: sinks.dashboard.settings: plugin `dashboard` refused them: settings.token: required because listen (0.0.0.0:0) is not a loopback address";
    let (code, stdout, stderr) = run_cli(dir.path(), &["check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains(refusal), "{stdout}");
    let (code, stderr) = run_refused(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(refusal), "{stderr}");

    // With a token: every route wants it.
    let router = Router::start(
        &config("{listen: \"0.0.0.0:0\", token: \"tok-3n7/x\"}"),
        &[],
    )
    .await;
    let url = dashboard_url(&router).await.replace("0.0.0.0", "127.0.0.1");
    let status = router.get_json("/v1/status").await;
    assert_eq!(
        status["sinks"]["dashboard"]["settings"]["token"], "***",
        "the token is a secret"
    );
    assert!(
        !router.stderr().contains("tok-3n7"),
        "the token is never logged"
    );
    for path in [
        "/",
        "/api/summary",
        "/api/events",
        "/api/charts/equity.svg",
        "/assets/app.js",
    ] {
        let (code, body) = get(&format!("{url}{path}"), None).await;
        assert_eq!(code, 401, "{path} without a token: {body}");
        let (code, _) = get(&format!("{url}{path}"), Some("wrong")).await;
        assert_eq!(code, 401, "{path} with a wrong token");
        let (code, _) = get(&format!("{url}{path}?token=wrong"), None).await;
        assert_eq!(code, 401, "{path} with a wrong ?token=");
    }
    let (code, _) = get(&format!("{url}/api/summary"), Some("tok-3n7/x")).await;
    assert_eq!(code, 200);
    let (code, page) = get(&format!("{url}/?token=tok-3n7%2Fx"), None).await;
    assert_eq!(code, 200);
    assert!(page.contains("<title>Trading Dashboard</title>"));

    // The same in a browser: refused without the right token, the page (and every
    // request it makes) with it.
    let browser = Browser::start(1280, 900).await;
    browser.goto(&format!("{url}/")).await;
    let body = browser.text("body").await.unwrap_or_default();
    assert!(body.contains("a token is required"), "{body}");
    browser.goto(&format!("{url}/?token=nope")).await;
    assert!(
        browser
            .text("body")
            .await
            .unwrap_or_default()
            .contains("a token is required")
    );
    browser.goto(&format!("{url}/?token=tok-3n7%2Fx")).await;
    browser
        .wait_for(
            WAIT,
            "the page to load its data",
            "return document.body.dataset.loaded === 'true';",
        )
        .await;
    assert_eq!(
        browser.text("#banner").await.unwrap_or_default(),
        "",
        "every request of the page passed"
    );
    browser
        .wait_for(
            WAIT,
            "the live stream",
            "return document.getElementById('conn').dataset.state === 'live';",
        )
        .await;
    let address = browser.execute("return location.href;", json!([])).await;
    assert!(
        !address.as_str().unwrap_or_default().contains("token"),
        "the token leaves the address bar: {address}"
    );
}

#[tokio::test]
async fn a_reload_changes_title_and_theme_and_a_failed_one_changes_nothing() {
    let router = Router::start(&config("{listen: \"127.0.0.1:0\", title: \"Desk A\"}"), &[]).await;
    let url = dashboard_url(&router).await;
    let (status, _) = router
        .post_events(json!({"type": "heartbeat", "n": 1}).to_string())
        .await;
    assert_eq!(status, 202);
    delivered(&router, 1).await;
    let reload = |settings: &str, extra: &str| {
        let text = config(settings).replace("sinks:\n", &format!("sinks:\n{extra}"));
        let text = alert_router_tests::harness::expand(&text, router.dir.path());
        std::fs::write(router.dir.path().join("router.yaml"), text).expect("write router.yaml");
    };
    let client = reqwest::Client::new();

    // Same address, new title and theme: the new instance takes over the running server.
    reload(
        "{listen: \"127.0.0.1:0\", title: \"Desk B\", theme: light}",
        "",
    );
    let answer = client
        .post(format!("{}/v1/reload", router.url))
        .send()
        .await
        .expect("reload");
    assert_eq!(
        answer.status().as_u16(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let info = eventually_async(WAIT, "the new title", || async {
        let info = get_json(&format!("{url}/api/info")).await;
        (info["title"] == "Desk B").then_some(info)
    })
    .await;
    assert_eq!(info["theme"], "light");
    let (_, page) = get(&format!("{url}/"), None).await;
    assert!(page.contains("<title>Desk B</title>") && page.contains("data-theme=\"light\""));
    assert_eq!(
        feed_titles(&url).await.len(),
        1,
        "the feed survives the reload"
    );
    let (status, _) = router
        .post_events(json!({"type": "heartbeat", "n": 2}).to_string())
        .await;
    assert_eq!(status, 202);
    delivered(&router, 2).await;
    assert_eq!(feed_titles(&url).await.len(), 2);

    // A reload that fails (another dashboard sink cannot start) builds a third instance
    // and destroys it again: the second one's settings stay.
    reload(
        "{listen: \"127.0.0.1:0\", title: \"Desk C\"}",
        "  open:\n    plugin: dashboard\n    settings: {listen: \"0.0.0.0:0\"}\n",
    );
    let answer = client
        .post(format!("{}/v1/reload", router.url))
        .send()
        .await
        .expect("reload");
    assert_eq!(answer.status().as_u16(), 422);
    let body = answer.text().await.unwrap_or_default();
    assert!(body.contains("settings.token: required"), "{body}");
    let info = get_json(&format!("{url}/api/info")).await;
    assert_eq!(
        (info["title"].clone(), info["theme"].clone()),
        (json!("Desk B"), json!("light"))
    );
    let (status, _) = router
        .post_events(json!({"type": "heartbeat", "n": 3}).to_string())
        .await;
    assert_eq!(status, 202);
    delivered(&router, 3).await;
    assert_eq!(feed_titles(&url).await.len(), 3);
}

// ---- in a browser ------------------------------------------------------------------------

/// The console messages at level SEVERE (errors), as text.
async fn console_errors(browser: &Browser) -> Vec<String> {
    browser
        .console_log()
        .await
        .into_iter()
        .filter(|e| e.level == "SEVERE")
        .map(|e| e.message)
        .collect()
}

async fn open_page(browser: &Browser, url: &str) {
    browser.goto(&format!("{url}/")).await;
    browser
        .wait_for(
            WAIT,
            "the page to load its data",
            "return document.body.dataset.loaded === 'true';",
        )
        .await;
    browser
        .wait_for(
            WAIT,
            "the live stream",
            "return document.getElementById('conn').dataset.state === 'live';",
        )
        .await;
}

#[tokio::test]
async fn the_page_loads_clean_updates_live_and_is_screenshotted() {
    let router = Router::start(&config("{listen: \"127.0.0.1:0\"}"), &[]).await;
    let url = dashboard_url(&router).await;
    let events = trading_month(OffsetDateTime::now_utc());
    post_all(&router, &events).await;
    delivered(&router, events.len() as u64).await;

    let browser = Browser::start(1280, 900).await;
    open_page(&browser, &url).await;
    let errors = console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors on load: {errors:?}");
    assert_eq!(browser.text("#banner").await.unwrap_or_default(), "");
    assert_eq!(
        browser.text("#m-total-value").await.as_deref(),
        Some("$52,480.50")
    );
    assert_eq!(browser.text("#m-pnl").await.as_deref(), Some("+$2,480.50"));
    let pnl_class = browser
        .execute(
            "return document.getElementById('m-pnl').className;",
            json!([]),
        )
        .await;
    assert_eq!(pnl_class, "value pos", "a gain is green");
    assert_eq!(browser.text("#m-win-rate").await.as_deref(), Some("66.7%"));
    // Each figure says where it comes from: the router's own, from what it saw, or
    // the bot's report in a card of its own, never mixed.
    assert_eq!(
        browser.text("#m-trades").await.as_deref(),
        Some("from 6 trades seen")
    );
    assert_eq!(
        browser.text("#performance-source").await.as_deref(),
        Some("from 6 trades seen")
    );
    let sharpe_source = browser.text("#m-sharpe-source").await.unwrap_or_default();
    assert!(
        sharpe_source.starts_with("from ") && sharpe_source.ends_with(" daily returns"),
        "{sharpe_source}"
    );
    let reported_source = browser
        .text("#reported-metrics-source")
        .await
        .unwrap_or_default();
    assert!(
        reported_source.starts_with("reported by the bot at ") && reported_source.ends_with(" UTC"),
        "{reported_source}"
    );
    // The bot sent its VaR as -1.5: one minus sign, in red.
    let var = browser
        .execute(
            "const dt = [...document.querySelectorAll('#reported-metrics dt')].find(d => d.textContent === 'VaR 95% (1 day)'); \
             return dt ? [dt.nextElementSibling.textContent, dt.nextElementSibling.className] : null;",
            json!([]),
        )
        .await;
    assert_eq!(var, json!(["-1.50%", "neg"]));
    let page = browser
        .execute(
            "return document.querySelector('main').innerText;",
            json!([]),
        )
        .await;
    assert!(
        !page.as_str().unwrap_or_default().contains("--"),
        "a double sign on the page: {page}"
    );
    assert_eq!(
        browser
            .execute(
                "return document.querySelectorAll('#positions tbody tr').length;",
                json!([])
            )
            .await,
        3
    );
    let theme = browser
        .execute("return document.documentElement.dataset.theme;", json!([]))
        .await;
    assert_eq!(theme, "dark");
    let errors_li = browser
        .execute(
            "return document.querySelectorAll('#feed li.sev-error').length;",
            json!([]),
        )
        .await;
    assert_eq!(
        errors_li, 1,
        "the error is in the feed, colored by severity"
    );

    let dir = artifacts_dir();
    browser
        .save_screenshot(&dir.join("desktop-1280x900.png"))
        .await;
    browser
        .save_full_page_screenshot(&dir.join("desktop-full-page.png"))
        .await;

    // Live: a trade and a portfolio update show without a reload.
    browser
        .execute("window.__sameDocument = 42;", json!([]))
        .await;
    let now = OffsetDateTime::now_utc();
    let (status, _) = router
        .post_events(format!(
            "{}\n{}\n",
            json!({"type": "trade_closed", "time": at(now), "symbol": "DOGE/USDT", "side": "LONG", "entry_price": 0.1,
                   "exit_price": 0.09, "quantity": 10000, "pnl": -100, "pnl_pct": -10, "strategy": "Momentum", "reason": "Stop Loss"}),
            json!({"type": "portfolio_update", "time": at(now), "total_value": 61_234.56, "cash": 30_000, "pnl": -1_765.44, "pnl_pct": -2.8,
                   "positions": [{"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.5, "entry_price": 45_000, "current_price": 44_000}]})
        ))
        .await;
    assert_eq!(status, 202);
    browser
        .wait_for(
            WAIT,
            "the new total value",
            "return document.getElementById('m-total-value').textContent === '$61,234.56';",
        )
        .await;
    browser
        .wait_for(
            WAIT,
            "the new trade in the table",
            "return document.querySelector('#trades tbody').textContent.includes('DOGE/USDT');",
        )
        .await;
    browser
        .wait_for(
            WAIT,
            "the new position set",
            "return document.querySelectorAll('#positions tbody tr').length === 1;",
        )
        .await;
    assert_eq!(browser.text("#m-pnl").await.as_deref(), Some("-$1,765.44"));
    let pnl_class = browser
        .execute(
            "return document.getElementById('m-pnl').className;",
            json!([]),
        )
        .await;
    assert_eq!(pnl_class, "value neg", "a loss is red");
    let feed_top = browser.text("#feed li .title").await.unwrap_or_default();
    assert!(
        feed_top.contains("Portfolio $61,234.56") || feed_top.contains("DOGE/USDT"),
        "{feed_top}"
    );
    assert_eq!(
        browser
            .execute("return window.__sameDocument;", json!([]))
            .await,
        42,
        "no reload happened"
    );

    // The severity filter.
    browser
        .execute("const s = document.getElementById('f-severity'); s.value = 'warning'; s.dispatchEvent(new Event('change'));", json!([]))
        .await;
    let shown = browser
        .execute("return [...document.querySelectorAll('#feed li')].map(l => l.className.split(' ')[0]);", json!([]))
        .await;
    assert_eq!(shown, json!(["sev-error", "sev-warning"]));
    browser
        .execute("const s = document.getElementById('f-severity'); s.value = ''; s.dispatchEvent(new Event('change'));", json!([]))
        .await;
    // The symbol filter.
    browser
        .execute("const s = document.getElementById('f-symbol'); s.value = 'SOL/USDT'; s.dispatchEvent(new Event('change'));", json!([]))
        .await;
    browser
        .wait_for(WAIT, "only SOL/USDT trades", "const rows = [...document.querySelectorAll('#trades tbody tr')]; return rows.length === 1 && rows[0].textContent.includes('SOL/USDT');")
        .await;

    browser.set_viewport(390, 844).await;
    let width = browser
        .execute("return window.innerWidth;", json!([]))
        .await;
    assert_eq!(width, 390, "the phone-width viewport");
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            json!([]),
        )
        .await;
    assert_eq!(
        overflow, 0,
        "nothing wider than a phone screen (tables scroll in their cards)"
    );
    browser
        .wait_for(WAIT, "the chart redrawn for the phone's width", "const svg = document.querySelector('#equity-chart svg'); return svg && svg.viewBox.baseVal.width < 400;")
        .await;
    browser
        .save_screenshot(&dir.join("phone-390x844.png"))
        .await;
    browser
        .save_full_page_screenshot(&dir.join("phone-full-page.png"))
        .await;

    let errors = console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[tokio::test]
async fn the_time_range_control_changes_the_equity_chart() {
    let router = Router::start(&config("{listen: \"127.0.0.1:0\"}"), &[]).await;
    let url = dashboard_url(&router).await;
    let events = trading_month(OffsetDateTime::now_utc());
    post_all(&router, &events).await;
    delivered(&router, events.len() as u64).await;
    let browser = Browser::start(1280, 900).await;
    open_page(&browser, &url).await;

    let mut charts = Vec::new();
    for range in ["1D", "1W", "1M", "all"] {
        browser
            .execute(
                "document.querySelector(`#range button[data-range=\"${arguments[0]}\"]`).click();",
                json!([range]),
            )
            .await;
        let chart = browser
            .wait_for(
                WAIT,
                &format!("the {range} chart"),
                "const svg = document.querySelector('#equity-chart svg'); return svg && svg.dataset.range === arguments[0] ? [svg.dataset.points, svg.outerHTML] : null;"
                    .replace("arguments[0]", &format!("'{range}'"))
                    .as_str(),
            )
            .await;
        let pressed = browser
            .execute("return document.querySelector('#range button[aria-pressed=\"true\"]').dataset.range;", json!([]))
            .await;
        assert_eq!(pressed, range);
        let points: usize = chart[0].as_str().unwrap().parse().unwrap();
        let hover = browser
            .execute(
                "return document.querySelectorAll('#equity-chart .pt title').length;",
                json!([]),
            )
            .await;
        assert_eq!(hover, points, "a hover value per point");
        charts.push((range, points, chart[1].as_str().unwrap().to_owned()));
    }
    let points: Vec<usize> = charts.iter().map(|c| c.1).collect();
    assert!(
        points[0] < points[1] && points[1] < points[2] && points[2] < points[3],
        "{points:?}"
    );
    for pair in charts.windows(2) {
        assert_ne!(
            pair[0].2, pair[1].2,
            "{} and {} draw different charts",
            pair[0].0, pair[1].0
        );
    }
    let errors = console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[tokio::test]
async fn the_page_reconnects_after_the_router_restarts() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let settings = format!("{{listen: \"127.0.0.1:{port}\"}}");
    let mut router = Router::start(&config(&settings), &[]).await;
    let url = format!("http://127.0.0.1:{port}");
    assert_eq!(dashboard_url(&router).await, url);
    let browser = Browser::start(1280, 900).await;
    open_page(&browser, &url).await;

    assert!(router.terminate(), "the router stops cleanly");
    browser
        .wait_for(
            WAIT,
            "the page to notice",
            "return document.getElementById('conn').dataset.state === 'down';",
        )
        .await;
    let router = Router::start(&config(&settings), &[]).await;
    assert_eq!(dashboard_url(&router).await, url, "the same dashboard port");
    browser
        .wait_for(
            WAIT,
            "the page to reconnect",
            "return document.getElementById('conn').dataset.state === 'live';",
        )
        .await;
    let (status, _) = router
        .post_events(
            json!({"type": "error", "message": "after the restart", "error_type": "Restarted"})
                .to_string(),
        )
        .await;
    assert_eq!(status, 202);
    browser
        .wait_for(
            WAIT,
            "the new event on the open page",
            "return document.getElementById('feed').textContent.includes('after the restart');",
        )
        .await;
}

/// One route, every event to the dashboard: a silenced event is held back once.
const ONE_ROUTE: &str = "routes:\n  - name: everything-to-dashboard\n    to: [dashboard]\n";

/// What a hostile producer or silence author would like the page to run.
const HOSTILE: &str = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";

#[tokio::test]
async fn the_noise_section_shows_a_silence_and_what_it_held_back_live() {
    let router = Router::start(
        &config("{listen: \"127.0.0.1:0\"}").replace("{shipped-rules}", "\"{dir}/rules\""),
        &[("rules/routes.yaml", ONE_ROUTE)],
    )
    .await;
    let url = dashboard_url(&router).await;
    let browser = Browser::start(1280, 900).await;
    open_page(&browser, &url).await;
    assert_eq!(
        browser.text("#silences tbody").await.as_deref(),
        Some("No silence is active or pending")
    );

    // After the page loaded: whatever shows next came by its live updates.
    let client = reqwest::Client::new();
    let post_silence = |body: Value| {
        let client = client.clone();
        let url = format!("{}/v1/silences", router.url);
        async move {
            let answer = client.post(url).json(&body).send().await.expect("POST");
            assert_eq!(answer.status().as_u16(), 201);
            let silence: Value = answer.json().await.expect("the silence");
            silence["id"].as_str().expect("an id").to_owned()
        }
    };
    let id = post_silence(
        json!({"matchers": ["labels.exchange=binance"], "duration": "1h",
                                 "created_by": "ana", "comment": "maintenance"}),
    )
    .await;
    let later = at(OffsetDateTime::now_utc() + time::Duration::hours(2));
    let pending = post_silence(json!({"matchers": ["type=deploy"], "starts_at": later,
                                      "duration": "1h", "created_by": "bo", "comment": HOSTILE}))
    .await;
    let (status, answer) = router
        .post_events(
            json!({"type": "exchange_down", "status": "firing", "severity": "error",
                   "labels": {"exchange": "binance", "note": HOSTILE}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 202, "{answer}");

    let row = browser
        .wait_for(
            WAIT,
            "the silence with one message held back",
            &format!(
                "const tr = document.querySelector('#silences tr[data-id=\"{id}\"]'); \
                 const cells = tr ? [...tr.cells].map(c => c.textContent) : []; \
                 return cells[5] === '1' ? cells : null;"
            ),
        )
        .await;
    let cells: Vec<&str> = row
        .as_array()
        .expect("the row's cells")
        .iter()
        .map(|c| c.as_str().unwrap_or_default())
        .collect();
    assert_eq!(cells[0], "active");
    assert_eq!(cells[1], "labels.exchange=\"binance\"");
    assert!(cells[2].starts_with("ends in "), "{cells:?}");
    assert_eq!(cells[3..], ["ana", "maintenance", "1"]);

    // The pending silence after the active one; its comment as text.
    let ids = browser
        .execute(
            "return [...document.querySelectorAll('#silences tbody tr')].map(r => r.dataset.id);",
            json!([]),
        )
        .await;
    assert_eq!(ids, json!([id, pending]));
    let comment = browser
        .execute(
            "return document.querySelector(`#silences tr[data-id=\"${arguments[0]}\"]`).cells[4].textContent;",
            json!([pending]),
        )
        .await;
    assert_eq!(comment, HOSTILE);
    let when = browser
        .execute(
            "return document.querySelector(`#silences tr[data-id=\"${arguments[0]}\"]`).cells[2].textContent;",
            json!([pending]),
        )
        .await;
    assert!(
        when.as_str().unwrap_or_default().starts_with("starts in "),
        "{when}"
    );

    // The firing alert, and what holds it back; its labels as text.
    let alert = browser
        .wait_for(
            WAIT,
            "the firing alert",
            "const tr = [...document.querySelectorAll('#alerts tbody tr')].find(r => r.cells[0].textContent === 'exchange_down'); \
             return tr ? [...tr.cells].map(c => c.textContent) : null;",
        )
        .await;
    assert_eq!(alert[1], "error");
    assert_eq!(alert[5], format!("silenced by {id}"), "{alert}");
    let chips = browser
        .execute(
            "return [...document.querySelectorAll('#alerts .label-chip')].map(c => c.textContent);",
            json!([]),
        )
        .await;
    assert_eq!(
        chips,
        json!(["exchange=binance", format!("note={HOSTILE}")])
    );

    // Held back by reason: the router's total and the dashboard sink's.
    let silenced = |row: &str| {
        format!(
            "const col = [...document.querySelectorAll('#held-back thead th')].findIndex(h => h.textContent === 'Silenced'); \
             const tr = document.querySelector('#held-back {row}'); \
             return tr && col > 0 ? tr.cells[col].textContent : null;"
        )
    };
    assert_eq!(browser.execute(&silenced("tr.total"), json!([])).await, "1");
    assert_eq!(
        browser
            .execute(&silenced("tr[data-sink=\"dashboard\"]"), json!([]))
            .await,
        "1"
    );
    let summary = browser.text("#noise-summary").await.unwrap_or_default();
    assert!(
        summary.contains("1 alert firing") && summary.contains("1 silence active"),
        "{summary}"
    );

    // Nothing the producer or the author wrote became markup, let alone ran.
    let injected = browser
        .execute(
            "return [document.querySelectorAll('#noise img, #noise script').length, window.__pwned ?? null];",
            json!([]),
        )
        .await;
    assert_eq!(injected, json!([0, null]));
    let errors = console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser
        .save_full_page_screenshot(&artifacts_dir().join("noise-control-full-page.png"))
        .await;
}
