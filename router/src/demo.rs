//! `alert-router demo`: starts the router in-process on a config and replays a simulated,
//! seeded trading day through its HTTP API with [`alert_router_client`], so every
//! event takes the real path (ingest, rules, templates, sinks, state).
//!
//! The simulation ([`Simulator`]) is pure: the same seed gives the same days, event for
//! event. The runner paces it (`speed` simulated seconds per real second), stamps each
//! event with its simulated time (day 0 is today, UTC) and prints one line per event.
//!
//! The router it starts keeps its outbox and trading state in a storage of its own
//! ([`DemoStorage`]), so simulated trades never mix with the live ones in
//! `storage.path`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_router_client::{
    Client, DailySummary, ErrorEvent, PerformanceMetrics, PortfolioUpdate, Position, Severity,
    TradeClosed, TradeOpened, TradingEvent, to_event,
};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::config::Config;
use crate::event::format_time;
use crate::pipeline::Pipeline;

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Simulated seconds per real second (1440: a simulated day per real minute).
    pub speed: f64,
    /// One day, then wait for delivery and exit; otherwise day after day until Ctrl-C.
    pub once: bool,
    pub seed: u64,
    /// Where the demo's router keeps its outbox and state; `None`: a temporary
    /// directory, removed at exit.
    pub storage: Option<PathBuf>,
}

/// A simulated day per real minute.
pub const DEFAULT_SPEED: f64 = 1440.0;

/// The longest `--once` waits for the sinks to deliver the day after its last event.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);
const MINUTES_PER_DAY: u32 = 24 * 60;
/// Minutes between portfolio updates.
const PORTFOLIO_EVERY: u32 = 15;
const START_CAPITAL: f64 = 50_000.0;

/// Runs the demo on the config at `config_path`.
pub fn run(config_path: &Path, opts: Options) -> Result<ExitCode> {
    if !(opts.speed.is_finite() && opts.speed > 0.0) {
        bail!(
            "--speed {}: give a positive number (60 = one simulated minute per second)",
            opts.speed
        );
    }
    let mut config = Config::load(config_path)
        .map_err(|d| anyhow::anyhow!("{d}\n{} problem(s) in the config", d.0.len()))?;
    let storage = DemoStorage::new(opts.storage.clone())?;
    config.storage.path = storage.path.clone();
    let listen = config.server.listen;
    let token = config.server.token.as_ref().map(|t| t.expose().to_owned());
    let dashboard = config
        .enabled_sinks()
        .find(|(_, s)| s.plugin == "dashboard")
        .and_then(|(_, s)| s.settings.get("listen").and_then(Value::as_str))
        .map(str::to_owned);
    let sinks: Vec<String> = config.enabled_sinks().map(|(n, _)| n.clone()).collect();
    let pipeline = Pipeline::start(config, None).map_err(|d| anyhow::anyhow!("{d}"))?;
    // Editing a template while the demo runs shows at once, as with `run`.
    let _reload = crate::reload::start(pipeline.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("demo")
        .build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {listen}: is a router already running? Stop it, or set \
                 ALERT_ROUTER_LISTEN (or server.listen) to another address"
                )
            })?;
        let url = browsable(listener.local_addr()?);
        println!("alert-router demo: the router listens on {url}");
        println!("  curl -s {url}/v1/status");
        println!("  curl -s {url}/v1/state/performance");
        match dashboard.as_deref().map(str::parse::<SocketAddr>) {
            Some(Ok(d)) if d.port() != 0 => println!("  dashboard: {}/", browsable(d)),
            Some(Ok(d)) => println!(
                "  dashboard: listens on a free port ({d}); give it a fixed one, such as 127.0.0.1:8501, to open it"
            ),
            Some(Err(_)) => println!("  dashboard: {}", dashboard.as_deref().unwrap_or_default()),
            None => {}
        }
        println!("  sinks: {}", sinks.join(", "));
        println!("  storage: {}", storage.describe());
        let app = crate::api::app(crate::api::AppState {
            pipeline: pipeline.clone(),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
        });
        let mut client = Client::new(url)
            .with_timeout(Duration::from_secs(10))
            .with_retries(5);
        if let Some(t) = token {
            client = client.with_token(t);
        }
        let outcome = tokio::select! {
            r = replay(&client, &opts) => r,
            _ = tokio::signal::ctrl_c() => {
                println!("stopping: Ctrl-C");
                Ok(())
            }
        };
        let _ = stop_tx.send(());
        let _ = server.await;
        outcome
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let p = pipeline.clone();
    let left = std::thread::spawn(move || p.shutdown(deadline))
        .join()
        .unwrap_or_default();
    for (sink, n) in &left {
        eprintln!("sink `{sink}` stopped with {n} message(s) undelivered");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Sends the simulated days at their pace; with `once`, one day and then waits until the
/// router has delivered everything.
async fn replay(client: &Client, opts: &Options) -> Result<()> {
    let mut sim = Simulator::new(opts.seed);
    let today = OffsetDateTime::now_utc()
        .replace_time(time::Time::MIDNIGHT)
        .to_offset(time::UtcOffset::UTC);
    loop {
        let day = sim.next_day();
        let day_start = today + time::Duration::days(i64::from(day.index));
        let date = day_start.date();
        println!(
            "--- day {} ({date}), seed {}, {} events, speed {}x: the day takes {}",
            day.index + 1,
            opts.seed,
            day.events.len(),
            opts.speed,
            real_time(f64::from(MINUTES_PER_DAY * 60) / opts.speed)
        );
        let started = tokio::time::Instant::now();
        for sim_event in day.events {
            let due = started + Duration::from_secs_f64(f64::from(sim_event.at) / opts.speed);
            tokio::time::sleep_until(due).await;
            let time = day_start + time::Duration::seconds(i64::from(sim_event.at));
            let mut event = sim_event.event;
            event["time"] = json!(format_time(time));
            if event["type"] == "daily_summary" {
                event["date"] = json!(date.to_string());
            }
            client
                .send(event)
                .await
                .with_context(|| format!("sending {}", sim_event.line))?;
            println!(
                "[{:02}:{:02}] {}",
                sim_event.at / 3600,
                sim_event.at / 60 % 60,
                sim_event.line
            );
        }
        if opts.once {
            return settle(client).await;
        }
    }
}

/// The demo router's storage directory: one the user named (kept), or a new temporary
/// one that is removed when this is dropped, after the router has stopped.
struct DemoStorage {
    path: PathBuf,
    temporary: bool,
}

impl DemoStorage {
    fn new(given: Option<PathBuf>) -> Result<DemoStorage> {
        if let Some(path) = given {
            return Ok(DemoStorage {
                path,
                temporary: false,
            });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("alert-router-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create the demo's storage {}", path.display()))?;
        Ok(DemoStorage {
            path,
            temporary: true,
        })
    }

    fn describe(&self) -> String {
        if self.temporary {
            format!(
                "{} (the demo's own, removed at exit; --storage DIR keeps it)",
                self.path.display()
            )
        } else {
            format!("{} (kept)", self.path.display())
        }
    }
}

impl Drop for DemoStorage {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `24m`, `1m`, `40s`, `2h 24m`: how long a stretch of simulated time takes for real.
fn real_time(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// Polls `/v1/status` until every running sink has nothing queued and has handled (sent
/// or failed) everything routed to it.
async fn settle(client: &Client) -> Result<()> {
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        let status = client.service_status().await?;
        let mut pending = Vec::new();
        if let Some(sinks) = status["sinks"].as_object() {
            for (name, s) in sinks {
                if s["started"] == json!(false) {
                    continue;
                }
                let n = |k: &str| s[k].as_u64().unwrap_or(0);
                let handled = (n("sent") + n("failed")).saturating_sub(n("render_errors"));
                if n("queued") > 0 || handled < n("routed") {
                    pending.push(format!(
                        "{name}: {} left",
                        n("routed").saturating_sub(handled)
                    ));
                }
            }
        }
        if pending.is_empty() {
            let events = &status["events"];
            println!(
                "done: {} event(s) accepted, every sink has handled its messages",
                events["accepted"]
            );
            if let Some(sinks) = status["sinks"].as_object() {
                for (name, s) in sinks {
                    let last_error = match s["last_error"].as_str() {
                        Some(e) => format!(", last error: {e}"),
                        None => String::new(),
                    };
                    println!(
                        "  {name}: sent {}, failed {}{last_error}",
                        s["sent"], s["failed"]
                    );
                }
            }
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "the sinks did not deliver everything within {}s ({}); see /v1/status",
                SETTLE_TIMEOUT.as_secs(),
                pending.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- the simulation ----------------------------------------------------------------------

/// splitmix64: small, fast, and the same on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.unit() * f64::from(n)) as u32
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Roughly standard normal (Irwin–Hall of four), without transcendental functions,
    /// so the walk is bit-identical everywhere.
    fn normal(&mut self) -> f64 {
        let s: f64 = (0..4).map(|_| self.unit()).sum();
        (s - 2.0) / (1.0f64 / 3.0).sqrt()
    }
}

const MARKETS: [(&str, f64, f64); 5] = [
    // symbol, opening price, volatility per minute
    ("BTC/USDT", 45_000.0, 0.0012),
    ("ETH/USDT", 2_500.0, 0.0015),
    ("SOL/USDT", 100.0, 0.0022),
    ("BNB/USDT", 310.0, 0.0014),
    ("AVAX/USDT", 35.0, 0.0020),
];
const STRATEGIES: [&str; 4] = [
    "RSI_MACD",
    "Bollinger_Breakout",
    "EMA_Cross",
    "Mean_Reversion",
];
const MAX_OPEN: usize = 3;
/// Minutes after which a position is closed whatever its price.
const MAX_HOLD: u32 = 240;

#[derive(Debug, Clone)]
struct Open {
    market: usize,
    long: bool,
    entry: f64,
    qty: f64,
    stop: f64,
    target: f64,
    strategy: &'static str,
    opened: u32,
}

impl Open {
    fn pnl(&self, price: f64) -> f64 {
        let per_unit = if self.long {
            price - self.entry
        } else {
            self.entry - price
        };
        cents(per_unit * self.qty)
    }

    fn cost(&self) -> f64 {
        cents(self.entry * self.qty)
    }

    fn side(&self) -> &'static str {
        if self.long { "BUY" } else { "SELL" }
    }
}

/// One event of a simulated day: when (seconds after midnight), the event (without `id`
/// and `time`), and the line the demo prints for it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    pub at: u32,
    pub event: Value,
    pub line: String,
}

/// A simulated day: its number (0 first) and its events in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub index: u32,
    pub events: Vec<SimEvent>,
}

/// A seeded trading bot: prices that walk, positions opened and closed on stops, targets
/// and time, a portfolio that carries over from one day to the next.
#[derive(Debug, Clone)]
pub struct Simulator {
    rng: Rng,
    prices: Vec<f64>,
    cash: f64,
    open: Vec<Open>,
    day: u32,
    /// Total value at each portfolio update since the start, for the metrics.
    equity: Vec<f64>,
    /// Every closed trade's P&L since the start.
    closed: Vec<f64>,
}

impl Simulator {
    pub fn new(seed: u64) -> Simulator {
        Simulator {
            rng: Rng(seed),
            prices: MARKETS.iter().map(|m| m.1).collect(),
            cash: START_CAPITAL,
            open: Vec::new(),
            day: 0,
            equity: vec![START_CAPITAL],
            closed: Vec::new(),
        }
    }

    fn total_value(&self) -> f64 {
        let positions: f64 = self
            .open
            .iter()
            .map(|o| o.cost() + o.pnl(cents(self.prices[o.market])))
            .sum();
        cents(self.cash + positions)
    }

    /// Simulates the next day, from 00:00 to 23:59.
    pub fn next_day(&mut self) -> Day {
        let index = self.day;
        self.day += 1;
        let mut out = Vec::new();
        let day_start_value = self.total_value();
        let mut day_pnls: Vec<f64> = Vec::new();
        let warning_at = 360 + self.rng.below(240);
        let error_at = 600 + self.rng.below(300);
        let critical_at = 900 + self.rng.below(300);
        for minute in 0..MINUTES_PER_DAY {
            let mut second = minute * 60;
            let mut push = |out: &mut Vec<SimEvent>, event: Value, line: String| {
                out.push(SimEvent {
                    at: second,
                    event,
                    line,
                });
                second += 1;
            };
            for (i, m) in MARKETS.iter().enumerate() {
                self.prices[i] *= 1.0 + m.2 * self.rng.normal();
            }
            // Exits: stop, target, time, an occasional signal; everything at 23:30.
            let mut i = 0;
            while i < self.open.len() {
                let o = &self.open[i];
                let price = cents(self.prices[o.market]);
                let reason = if minute >= 1410 {
                    Some("End of Day")
                } else if (o.long && price <= o.stop) || (!o.long && price >= o.stop) {
                    Some("Stop Loss")
                } else if (o.long && price >= o.target) || (!o.long && price <= o.target) {
                    Some("Take Profit")
                } else if minute - o.opened >= MAX_HOLD {
                    Some("Time Exit")
                } else if self.rng.chance(0.002) {
                    Some("Signal Exit")
                } else {
                    None
                };
                let Some(reason) = reason else {
                    i += 1;
                    continue;
                };
                let o = self.open.remove(i);
                let pnl = o.pnl(price);
                self.cash = cents(self.cash + o.cost() + pnl);
                day_pnls.push(pnl);
                self.closed.push(pnl);
                let t = TradeClosed {
                    symbol: MARKETS[o.market].0.into(),
                    side: o.side().into(),
                    entry_price: o.entry,
                    exit_price: price,
                    quantity: o.qty,
                    pnl,
                    pnl_pct: round(pnl / o.cost() * 100.0, 2),
                    reason: Some(reason.into()),
                    duration: Some(json!((minute - o.opened) * 60)),
                    strategy: Some(o.strategy.into()),
                };
                let line = format!(
                    "trade_closed  {} {} {} @ {} -> {}: {:+.2} ({reason})",
                    t.symbol, t.side, t.quantity, t.entry_price, t.exit_price, t.pnl
                );
                push(&mut out, typed(&t), line);
            }
            // Entries.
            if (30..1380).contains(&minute)
                && self.open.len() < MAX_OPEN
                && self.rng.chance(1.0 / 70.0)
            {
                let market = self.rng.below(MARKETS.len() as u32) as usize;
                if !self.open.iter().any(|o| o.market == market) {
                    let long = self.rng.chance(0.65);
                    let entry = cents(self.prices[market]);
                    let budget = self.total_value() * self.rng.range(0.05, 0.15);
                    let qty = round(budget / entry, 4);
                    let stop_pct = self.rng.range(0.008, 0.015);
                    let target_pct = self.rng.range(0.012, 0.025);
                    let (stop, target) = if long {
                        (entry * (1.0 - stop_pct), entry * (1.0 + target_pct))
                    } else {
                        (entry * (1.0 + stop_pct), entry * (1.0 - target_pct))
                    };
                    let strategy = STRATEGIES[self.rng.below(STRATEGIES.len() as u32) as usize];
                    let o = Open {
                        market,
                        long,
                        entry,
                        qty,
                        stop: cents(stop),
                        target: cents(target),
                        strategy,
                        opened: minute,
                    };
                    if qty > 0.0 && o.cost() <= self.cash {
                        self.cash = cents(self.cash - o.cost());
                        let t = TradeOpened {
                            symbol: MARKETS[market].0.into(),
                            side: o.side().into(),
                            entry_price: entry,
                            quantity: qty,
                            strategy: Some(strategy.into()),
                            stop_loss: Some(o.stop),
                            take_profit: Some(o.target),
                            total_value: Some(o.cost()),
                        };
                        let line = format!(
                            "trade_opened  {} {} {} @ {} ({strategy})",
                            t.symbol, t.side, t.quantity, t.entry_price
                        );
                        self.open.push(o);
                        push(&mut out, typed(&t), line);
                    }
                }
            }
            // Something going wrong, at three levels.
            for (at, severity, kind, message, component) in [
                (
                    warning_at,
                    Severity::Warning,
                    "HighLatency",
                    "Exchange API latency above 2s for 5 minutes",
                    "market_data",
                ),
                (
                    error_at,
                    Severity::Error,
                    "OrderRejected",
                    "Order rejected by the exchange: insufficient margin",
                    "order_manager",
                ),
                (
                    critical_at,
                    Severity::Critical,
                    "ConnectionError",
                    "Exchange API timeout after 30s; trading paused",
                    "exchange_connector",
                ),
            ] {
                if minute == at {
                    let e = ErrorEvent {
                        message: message.into(),
                        error_type: Some(kind.into()),
                        component: Some(component.into()),
                        details: None,
                        severity: Some(severity),
                    };
                    let line = format!("error         {severity}: {kind} in {component}");
                    push(&mut out, typed(&e), line);
                }
            }
            if minute > 0 && minute % PORTFOLIO_EVERY == 0 {
                let (event, line) = self.portfolio(day_start_value);
                push(&mut out, event, line);
            }
            if minute == 1425 {
                let (event, line) = self.performance();
                push(&mut out, event, line);
            }
            if minute == MINUTES_PER_DAY - 1 {
                let (event, line) = self.summary(&day_pnls, day_start_value);
                push(&mut out, event, line);
            }
        }
        Day { index, events: out }
    }

    fn portfolio(&mut self, day_start_value: f64) -> (Value, String) {
        let total = self.total_value();
        self.equity.push(total);
        let peak = self.equity.iter().copied().fold(f64::MIN, f64::max);
        let positions = self
            .open
            .iter()
            .map(|o| {
                let price = cents(self.prices[o.market]);
                let pnl = o.pnl(price);
                Position {
                    symbol: MARKETS[o.market].0.into(),
                    side: if o.long { "LONG" } else { "SHORT" }.into(),
                    quantity: o.qty,
                    entry_price: o.entry,
                    current_price: price,
                    pnl: Some(pnl),
                    pnl_pct: Some(round(pnl / o.cost() * 100.0, 2)),
                    value: Some(cents(o.cost() + pnl)),
                }
            })
            .collect::<Vec<_>>();
        let pnl = cents(total - day_start_value);
        let p = PortfolioUpdate {
            total_value: total,
            cash: Some(self.cash),
            pnl: Some(pnl),
            pnl_pct: Some(round(pnl / day_start_value * 100.0, 2)),
            drawdown_pct: Some(round((peak - total) / peak * 100.0, 2)),
            positions: Some(positions),
        };
        let line = format!(
            "portfolio     {total:.2} (cash {:.2}, {} position(s), {pnl:+.2} today)",
            self.cash,
            self.open.len()
        );
        (typed(&p), line)
    }

    /// Metrics since the start, from the closed trades and the 15-minute equity marks.
    fn performance(&self) -> (Value, String) {
        let wins: f64 = self.closed.iter().filter(|p| **p > 0.0).sum();
        let losses: f64 = -self.closed.iter().filter(|p| **p < 0.0).sum::<f64>();
        let won = self.closed.iter().filter(|p| **p > 0.0).count();
        let returns: Vec<f64> = self.equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
        let n = returns.len().max(1) as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let sd = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        let down = (returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
        let per_year = f64::from(MINUTES_PER_DAY / PORTFOLIO_EVERY) * 365.0;
        let mut peak = f64::MIN;
        let mut max_dd: f64 = 0.0;
        for v in &self.equity {
            peak = peak.max(*v);
            max_dd = max_dd.max((peak - v) / peak);
        }
        let mut sorted = returns.clone();
        sorted.sort_by(f64::total_cmp);
        let p5 = sorted.get(sorted.len() * 5 / 100).copied().unwrap_or(0.0);
        let ratio = |x: f64, y: f64| (y > 0.0).then(|| round(x / y, 2));
        let total = self.total_value();
        let m = PerformanceMetrics {
            total_return: Some(round((total / START_CAPITAL - 1.0) * 100.0, 2)),
            sharpe_ratio: ratio(mean * per_year.sqrt(), sd),
            sortino_ratio: ratio(mean * per_year.sqrt(), down),
            max_drawdown: Some(round(max_dd * 100.0, 2)),
            win_rate: (!self.closed.is_empty())
                .then(|| round(won as f64 / self.closed.len() as f64 * 100.0, 2)),
            profit_factor: ratio(wins, losses),
            total_trades: Some(self.closed.len() as u64),
            volatility: Some(round(sd * per_year.sqrt() * 100.0, 2)),
            // One day's 95% VaR from the 15-minute marks (square-root-of-time scaling).
            var_95: Some(round(
                (-p5).max(0.0) * f64::from(MINUTES_PER_DAY / PORTFOLIO_EVERY).sqrt() * 100.0,
                2,
            )),
        };
        let line = format!(
            "performance   return {:+.2}%, {} trade(s), win rate {:.1}%",
            m.total_return.unwrap_or(0.0),
            self.closed.len(),
            m.win_rate.unwrap_or(0.0)
        );
        (typed(&m), line)
    }

    fn summary(&self, pnls: &[f64], day_start_value: f64) -> (Value, String) {
        let won = pnls.iter().filter(|p| **p > 0.0).count() as u64;
        let total_pnl = cents(pnls.iter().sum());
        let s = DailySummary {
            date: None,
            total_trades: pnls.len() as u64,
            winning_trades: won,
            losing_trades: pnls.len() as u64 - won,
            win_rate: if pnls.is_empty() {
                0.0
            } else {
                round(won as f64 / pnls.len() as f64 * 100.0, 2)
            },
            total_pnl,
            total_pnl_pct: Some(round(total_pnl / day_start_value * 100.0, 2)),
            best_trade: pnls.iter().copied().reduce(f64::max),
            worst_trade: pnls.iter().copied().reduce(f64::min),
            portfolio_value: Some(self.total_value()),
        };
        let line = format!(
            "daily_summary {} trade(s), {won} won, {total_pnl:+.2}, portfolio {:.2}",
            s.total_trades,
            self.total_value()
        );
        (typed(&s), line)
    }
}

/// A typed event as JSON; the types here always encode as objects.
fn typed<E: TradingEvent>(event: &E) -> Value {
    to_event(event).unwrap_or_else(|_| json!({"type": E::TYPE}))
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn cents(x: f64) -> f64 {
    round(x, 2)
}

/// A URL a browser or curl on this machine can open for `addr`: a wildcard address
/// (`0.0.0.0`, `::`) is reached through loopback.
fn browsable(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("http://[::1]:{}", a.port()),
        _ => format!("http://{addr}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(day: &Day) -> Vec<(String, String)> {
        day.events
            .iter()
            .map(|e| {
                (
                    e.event["type"].as_str().unwrap_or("").to_owned(),
                    e.event["symbol"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_days() {
        let (mut a, mut b) = (Simulator::new(7), Simulator::new(7));
        for _ in 0..3 {
            assert_eq!(a.next_day(), b.next_day());
        }
        assert_ne!(
            kinds(&Simulator::new(7).next_day()),
            kinds(&Simulator::new(8).next_day())
        );
    }

    #[test]
    fn a_day_has_every_type_and_consistent_numbers() {
        let mut sim = Simulator::new(7);
        for _ in 0..5 {
            let day = sim.next_day();
            let of = |t: &str| -> Vec<&Value> {
                day.events
                    .iter()
                    .map(|e| &e.event)
                    .filter(|e| e["type"] == t)
                    .collect()
            };
            let closed = of("trade_closed");
            assert_eq!(
                of("trade_opened").len(),
                closed.len(),
                "all closed by 23:30"
            );
            assert!(closed.len() >= 3, "{} trades", closed.len());
            let severities: Vec<&Value> = of("error").iter().map(|e| &e["severity"]).collect();
            assert_eq!(
                severities,
                [&json!("warning"), &json!("error"), &json!("critical")]
            );
            assert_eq!(of("performance_metrics").len(), 1);
            assert_eq!(of("portfolio_update").len(), 95);
            let mut pnl_sum = 0.0;
            for t in &closed {
                let (entry, exit, qty, pnl) = (
                    t["entry_price"].as_f64().unwrap_or(0.0),
                    t["exit_price"].as_f64().unwrap_or(0.0),
                    t["quantity"].as_f64().unwrap_or(0.0),
                    t["pnl"].as_f64().unwrap_or(f64::NAN),
                );
                let want = if t["side"] == "BUY" {
                    (exit - entry) * qty
                } else {
                    (entry - exit) * qty
                };
                assert!((want - pnl).abs() < 0.006, "{t}");
                pnl_sum += pnl;
            }
            let summary = of("daily_summary");
            let s = summary[0];
            assert_eq!(s["total_trades"], json!(closed.len()));
            assert!((s["total_pnl"].as_f64().unwrap_or(0.0) - pnl_sum).abs() < 0.01);
            for p in of("portfolio_update") {
                let positions: f64 = p["positions"]
                    .as_array()
                    .map(|ps| ps.iter().filter_map(|x| x["value"].as_f64()).sum())
                    .unwrap_or(0.0);
                let cash = p["cash"].as_f64().unwrap_or(0.0);
                let total = p["total_value"].as_f64().unwrap_or(0.0);
                assert!((cash + positions - total).abs() < 0.02, "{p}");
            }
            // Everything is closed at the end: the value is the cash.
            let last = of("portfolio_update")
                .last()
                .map(|p| p["total_value"].clone());
            assert_eq!(last, Some(s["portfolio_value"].clone()));
        }
    }

    #[test]
    fn the_seed_day_has_wins_and_losses() {
        let day = Simulator::new(7).next_day();
        let pnls: Vec<f64> = day
            .events
            .iter()
            .filter(|e| e.event["type"] == "trade_closed")
            .filter_map(|e| e.event["pnl"].as_f64())
            .collect();
        assert!(
            pnls.iter().any(|p| *p > 0.0) && pnls.iter().any(|p| *p < 0.0),
            "{pnls:?}"
        );
    }

    #[test]
    fn a_day_at_the_default_speed_takes_a_minute() {
        let day = f64::from(MINUTES_PER_DAY * 60);
        assert_eq!(real_time(day / DEFAULT_SPEED), "1m");
        assert_eq!(real_time(day / 60.0), "24m");
        assert_eq!(real_time(day / 10.0), "2h 24m");
        assert_eq!(real_time(day / 100_000.0), "1s");
        assert_eq!(real_time(90.0), "1m 30s");
    }

    #[test]
    fn the_demo_storage_is_its_own_and_a_temporary_one_goes_at_the_end() {
        let temp = DemoStorage::new(None).unwrap();
        let path = temp.path.clone();
        assert!(path.is_dir() && path.starts_with(std::env::temp_dir()));
        std::fs::write(path.join("outbox.db"), "x").unwrap();
        drop(temp);
        assert!(!path.exists());
        let kept = DemoStorage::new(Some(PathBuf::from("demo-data"))).unwrap();
        assert_eq!(kept.path, Path::new("demo-data"));
        assert!(kept.describe().contains("kept"));
    }

    #[test]
    fn wildcard_addresses_are_shown_as_loopback_urls() {
        let url = |a: &str| browsable(a.parse().unwrap());
        assert_eq!(url("0.0.0.0:8501"), "http://127.0.0.1:8501");
        assert_eq!(url("[::]:9470"), "http://[::1]:9470");
        assert_eq!(url("10.0.0.5:8501"), "http://10.0.0.5:8501");
    }
}
