//! The demo's simulated trading bot: prices that walk, positions opened and closed on
//! stops, targets and time, errors of rising severity, portfolio updates every 15
//! minutes, the day's performance and summary. Pure: the same seed gives the same days,
//! event for event; `alert-router demo` paces them and posts them through the API.

use alert_router_client::{
    DailySummary, ErrorEvent, PerformanceMetrics, PortfolioUpdate, Position, Severity, TradeClosed,
    TradeOpened, TradingEvent, to_event,
};
use alert_router_domain::{Day, SimEvent, Simulator};
use serde_json::{Value, json};
use time::Date;

const MINUTES_PER_DAY: u32 = 24 * 60;
/// Minutes between portfolio updates.
const PORTFOLIO_EVERY: u32 = 15;
const START_CAPITAL: f64 = 50_000.0;

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

/// A seeded trading bot: prices that walk, positions opened and closed on stops, targets
/// and time, a portfolio that carries over from one day to the next.
#[derive(Debug, Clone)]
pub struct SimulatedBot {
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

impl SimulatedBot {
    pub fn new(seed: u64) -> SimulatedBot {
        SimulatedBot {
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
    fn simulate_day(&mut self) -> Day {
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
        Day { events: out }
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

impl Simulator for SimulatedBot {
    fn next_day(&mut self, date: Date) -> Day {
        let mut day = self.simulate_day();
        for e in &mut day.events {
            if e.event["type"] == "daily_summary" {
                e.event["date"] = json!(date.to_string());
            }
        }
        day
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
        let (mut a, mut b) = (SimulatedBot::new(7), SimulatedBot::new(7));
        for _ in 0..3 {
            assert_eq!(a.simulate_day(), b.simulate_day());
        }
        assert_ne!(
            kinds(&SimulatedBot::new(7).simulate_day()),
            kinds(&SimulatedBot::new(8).simulate_day())
        );
    }

    #[test]
    fn a_day_has_every_type_and_consistent_numbers() {
        let mut sim = SimulatedBot::new(7);
        for _ in 0..5 {
            let day = sim.simulate_day();
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
        let day = SimulatedBot::new(7).simulate_day();
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
}
