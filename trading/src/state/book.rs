//! The in-memory state of the trading the router watches, and how each event changes it:
//! the latest portfolio, the open positions, the closed-trade history, the equity curves,
//! the trade statistics and the latest reported metrics. [`Book::apply`] also reports each
//! change as a [`Change`], which the persistence writer stores.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::analytics::TradeStats;
use super::equity::{Curve, DailyCloses, MAX_POINTS, Nanos, Point};
use alert_router_domain::EventRef;

/// The most closed trades kept in the history (newest kept). Statistics count every trade.
pub(super) const MAX_TRADES: usize = 10_000;

/// A position is `(symbol, side)`, side being `LONG`, `SHORT` or the producer's own word.
pub(super) type PositionKey = (String, String);

/// The latest `portfolio_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Portfolio {
    pub total_value: f64,
    pub cash: Option<f64>,
    pub pnl: Option<f64>,
    pub pnl_pct: Option<f64>,
    pub drawdown_pct: Option<f64>,
    pub time: Nanos,
}

/// The data of the latest event of a reported kind (`performance_metrics`,
/// `daily_summary`), as the producer sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Reported {
    pub time: Nanos,
    pub data: Map<String, Value>,
}

/// Which reported kind a [`Reported`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReportedKind {
    Performance,
    DailySummary,
}

/// An open position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Position {
    pub symbol: String,
    /// `LONG`, `SHORT`, or the producer's side in upper case when it is neither.
    pub side: String,
    pub quantity: f64,
    /// Quantity-weighted average entry price.
    pub entry_price: f64,
    pub opened_at: Option<Nanos>,
    pub strategy: Option<String>,
    /// What a `portfolio_update` said about it, shown while the price is still the one it
    /// reported.
    pub marks: Option<Marks>,
}

/// A producer's own valuation of a position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Marks {
    pub current_price: f64,
    pub value: Option<f64>,
    pub pnl: Option<f64>,
    pub pnl_pct: Option<f64>,
}

/// Where the current set of positions came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum PositionsSource {
    #[default]
    None,
    PortfolioUpdate,
    Trades,
}

impl PositionsSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PositionsSource::None => "none",
            PositionsSource::PortfolioUpdate => "portfolio_update",
            PositionsSource::Trades => "trades",
        }
    }
}

/// One closed trade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Trade {
    /// Arrival order, unique, increasing.
    pub seq: u64,
    /// The id of the `trade_closed` event.
    pub id: String,
    pub symbol: String,
    /// The side as the producer wrote it.
    pub side: String,
    pub entry_price: f64,
    pub exit_price: f64,
    pub quantity: f64,
    pub pnl: f64,
    pub pnl_pct: f64,
    pub reason: Option<String>,
    pub strategy: Option<String>,
    /// The event's `duration` as sent: seconds or a text such as "3 hours".
    pub duration: Option<Value>,
    /// The duration in seconds, when it is known or can be worked out.
    pub duration_s: Option<f64>,
    pub opened_at: Option<Nanos>,
    pub closed_at: Nanos,
}

/// Which equity curve a point belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CurveId {
    /// `portfolio_update.total_value` over time.
    Portfolio,
    /// Cumulative closed P&L over time, the stand-in when no portfolio value was sent.
    Pnl,
}

impl CurveId {
    pub fn as_str(self) -> &'static str {
        match self {
            CurveId::Portfolio => "portfolio",
            CurveId::Pnl => "pnl",
        }
    }
}

/// One change to the book, as the persistence writer needs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Change {
    Portfolio(Portfolio),
    Reported(ReportedKind, Reported),
    /// A position opened, changed (`Some`) or closed (`None`).
    Position(PositionKey, Option<Position>),
    /// A `portfolio_update` replaced the whole set.
    PositionsReplaced(Vec<Position>),
    PositionsSource(PositionsSource),
    Price(String, f64),
    Trade(Trade),
    Stats(TradeStats),
    Point(CurveId, Point),
    /// The curve was thinned: this is now all of it.
    Rewrite(CurveId, Vec<Point>),
    DailyClose(i64, Point),
}

/// Where [`Book::apply`] reports changes; `None` for a store that keeps nothing, so no
/// change is even built.
pub(super) type Emit<'a> = Option<&'a mut dyn FnMut(Change)>;

fn emit(out: &mut Emit<'_>, change: impl FnOnce() -> Change) {
    if let Some(out) = out {
        out(change());
    }
}

/// Everything the store knows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Book {
    pub portfolio: Option<Portfolio>,
    pub performance: Option<Reported>,
    pub daily_summary: Option<Reported>,
    pub positions: BTreeMap<PositionKey, Position>,
    pub positions_source: PositionsSource,
    /// The last known price of each symbol: the latest entry, exit or position price.
    pub prices: HashMap<String, f64>,
    /// Oldest first, at most [`MAX_TRADES`].
    pub trades: VecDeque<Trade>,
    pub next_seq: u64,
    pub stats: TradeStats,
    pub equity: Curve,
    pub pnl_curve: Curve,
    pub daily: DailyCloses,
}

impl Default for Book {
    fn default() -> Self {
        Book {
            portfolio: None,
            performance: None,
            daily_summary: None,
            positions: BTreeMap::new(),
            positions_source: PositionsSource::None,
            prices: HashMap::new(),
            trades: VecDeque::new(),
            next_seq: 1,
            stats: TradeStats::default(),
            equity: Curve::new(MAX_POINTS),
            pnl_curve: Curve::new(MAX_POINTS),
            daily: DailyCloses::default(),
        }
    }
}

/// Whether events of this type change the book. Everything else costs this one check.
pub(super) fn is_tracked(kind: &str) -> bool {
    matches!(
        kind,
        "trade_opened"
            | "trade_closed"
            | "portfolio_update"
            | "performance_metrics"
            | "daily_summary"
    )
}

impl Book {
    /// Applies one validated event. Events of other types are ignored.
    pub fn apply(&mut self, event: EventRef<'_>, mut out: Emit<'_>) {
        let time = nanos(event.time);
        match event.kind {
            "trade_opened" => self.trade_opened(event.data, time, &mut out),
            "trade_closed" => self.trade_closed(event, time, &mut out),
            "portfolio_update" => self.portfolio_update(event.data, time, &mut out),
            "performance_metrics" | "daily_summary" => {
                let kind = if event.kind == "daily_summary" {
                    ReportedKind::DailySummary
                } else {
                    ReportedKind::Performance
                };
                let reported = Reported {
                    time,
                    data: event.data.clone(),
                };
                emit(&mut out, || Change::Reported(kind, reported.clone()));
                match kind {
                    ReportedKind::Performance => self.performance = Some(reported),
                    ReportedKind::DailySummary => self.daily_summary = Some(reported),
                }
            }
            _ => {}
        }
    }

    fn trade_opened(&mut self, d: &Map<String, Value>, time: Nanos, out: &mut Emit<'_>) {
        let (Some(symbol), Some(side), Some(price), Some(qty)) = (
            text(d, "symbol"),
            text(d, "side"),
            num(d, "entry_price"),
            num(d, "quantity"),
        ) else {
            return;
        };
        self.set_price(symbol, price, out);
        if qty <= 0.0 {
            return;
        }
        let key = (symbol.to_owned(), position_side(side));
        let strategy = text(d, "strategy").map(str::to_owned);
        let position = match self.positions.get(&key) {
            Some(p) => {
                let quantity = p.quantity + qty;
                Position {
                    quantity,
                    entry_price: (p.entry_price * p.quantity + price * qty) / quantity,
                    strategy: p.strategy.clone().or(strategy),
                    marks: None,
                    ..p.clone()
                }
            }
            None => Position {
                symbol: key.0.clone(),
                side: key.1.clone(),
                quantity: qty,
                entry_price: price,
                opened_at: Some(time),
                strategy,
                marks: None,
            },
        };
        emit(out, || {
            Change::Position(key.clone(), Some(position.clone()))
        });
        self.positions.insert(key, position);
        self.set_source(PositionsSource::Trades, out);
    }

    fn trade_closed(&mut self, event: EventRef<'_>, closed_at: Nanos, out: &mut Emit<'_>) {
        let d = &event.data;
        let (Some(symbol), Some(side), Some(entry_price), Some(exit_price), Some(qty)) = (
            text(d, "symbol"),
            text(d, "side"),
            num(d, "entry_price"),
            num(d, "exit_price"),
            num(d, "quantity"),
        ) else {
            return;
        };
        let (Some(pnl), Some(pnl_pct)) = (num(d, "pnl"), num(d, "pnl_pct")) else {
            return;
        };
        self.set_price(symbol, exit_price, out);

        // The position this trade closes: the same side, or else the opposite one, since
        // producers write either the position's side or the side of the closing order.
        let same = (symbol.to_owned(), position_side(side));
        let key = if self.positions.contains_key(&same) {
            Some(same)
        } else {
            opposite(&same.1)
                .map(|o| (symbol.to_owned(), o.to_owned()))
                .filter(|k| self.positions.contains_key(k))
        };
        let mut opened_at = None;
        let mut strategy = text(d, "strategy").map(str::to_owned);
        if let Some(key) = key
            && let Some(p) = self.positions.get_mut(&key)
        {
            opened_at = p.opened_at;
            strategy = strategy.or_else(|| p.strategy.clone());
            let left = p.quantity - qty.max(0.0);
            if left <= p.quantity * 1e-9 {
                self.positions.remove(&key);
                emit(out, || Change::Position(key, None));
            } else {
                p.quantity = left;
                p.marks = None;
                let p = p.clone();
                emit(out, || Change::Position(key, Some(p)));
            }
            self.set_source(PositionsSource::Trades, out);
        }

        let duration = d.get("duration").filter(|v| !v.is_null()).cloned();
        let mut duration_s = duration.as_ref().and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => parse_duration(s),
            _ => None,
        });
        if duration_s.is_none()
            && let Some(opened) = opened_at
        {
            duration_s = Some(closed_at.saturating_sub(opened) as f64 / 1e9);
        }
        if opened_at.is_none()
            && let Some(secs) = duration_s.filter(|s| s.is_finite() && *s >= 0.0)
        {
            opened_at = Some(closed_at.saturating_sub((secs * 1e9) as i64));
        }

        let trade = Trade {
            seq: self.next_seq,
            id: event.id.to_owned(),
            symbol: symbol.to_owned(),
            side: side.to_owned(),
            entry_price,
            exit_price,
            quantity: qty,
            pnl,
            pnl_pct,
            reason: text(d, "reason").map(str::to_owned),
            strategy,
            duration,
            duration_s,
            opened_at,
            closed_at,
        };
        self.next_seq += 1;
        emit(out, || Change::Trade(trade.clone()));
        self.trades.push_back(trade);
        while self.trades.len() > MAX_TRADES {
            self.trades.pop_front();
        }
        self.stats.add(pnl);
        let stats = self.stats;
        emit(out, || Change::Stats(stats));
        let point = Point {
            time: closed_at,
            value: stats.total_pnl(),
        };
        if self.pnl_curve.push(point) {
            let points = self.pnl_curve.points().to_vec();
            emit(out, || Change::Rewrite(CurveId::Pnl, points));
        } else {
            emit(out, || Change::Point(CurveId::Pnl, point));
        }
    }

    fn portfolio_update(&mut self, d: &Map<String, Value>, time: Nanos, out: &mut Emit<'_>) {
        let Some(total_value) = num(d, "total_value") else {
            return;
        };
        let portfolio = Portfolio {
            total_value,
            cash: num(d, "cash"),
            pnl: num(d, "pnl"),
            pnl_pct: num(d, "pnl_pct"),
            drawdown_pct: num(d, "drawdown_pct"),
            time,
        };
        emit(out, || Change::Portfolio(portfolio.clone()));
        self.portfolio = Some(portfolio);

        let point = Point {
            time,
            value: total_value,
        };
        if self.equity.push(point) {
            let points = self.equity.points().to_vec();
            emit(out, || Change::Rewrite(CurveId::Portfolio, points));
        } else {
            emit(out, || Change::Point(CurveId::Portfolio, point));
        }
        if let Some((day, close)) = self.daily.record(point) {
            emit(out, || Change::DailyClose(day, close));
        }

        if let Some(Value::Array(list)) = d.get("positions") {
            let mut positions = BTreeMap::new();
            for entry in list {
                let Value::Object(p) = entry else { continue };
                let (Some(symbol), Some(side), Some(quantity), Some(entry_price), Some(price)) = (
                    text(p, "symbol"),
                    text(p, "side"),
                    num(p, "quantity"),
                    num(p, "entry_price"),
                    num(p, "current_price"),
                ) else {
                    continue;
                };
                self.set_price(symbol, price, out);
                if quantity == 0.0 {
                    continue;
                }
                let key = (symbol.to_owned(), position_side(side));
                let before = self.positions.get(&key);
                let opened_at = text(p, "opened_at")
                    .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
                    .map(nanos)
                    .or_else(|| before.and_then(|b| b.opened_at));
                let strategy = text(p, "strategy")
                    .map(str::to_owned)
                    .or_else(|| before.and_then(|b| b.strategy.clone()));
                let position = Position {
                    symbol: key.0.clone(),
                    side: key.1.clone(),
                    quantity,
                    entry_price,
                    opened_at,
                    strategy,
                    marks: Some(Marks {
                        current_price: price,
                        value: num(p, "value"),
                        pnl: num(p, "pnl"),
                        pnl_pct: num(p, "pnl_pct"),
                    }),
                };
                positions.insert(key, position);
            }
            self.positions = positions;
            emit(out, || {
                Change::PositionsReplaced(self.positions.values().cloned().collect())
            });
            self.set_source(PositionsSource::PortfolioUpdate, out);
        }
    }

    fn set_price(&mut self, symbol: &str, price: f64, out: &mut Emit<'_>) {
        match self.prices.get_mut(symbol) {
            Some(p) if *p == price => return,
            Some(p) => *p = price,
            None => {
                self.prices.insert(symbol.to_owned(), price);
            }
        }
        emit(out, || Change::Price(symbol.to_owned(), price));
    }

    fn set_source(&mut self, source: PositionsSource, out: &mut Emit<'_>) {
        if self.positions_source != source {
            self.positions_source = source;
            emit(out, || Change::PositionsSource(source));
        }
    }
}

/// Unix nanoseconds in UTC, saturating outside the years 1678 to 2262.
pub(super) fn nanos(t: OffsetDateTime) -> Nanos {
    t.unix_timestamp_nanos()
        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn text<'a>(d: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    d.get(key).and_then(Value::as_str)
}

fn num(d: &Map<String, Value>, key: &str) -> Option<f64> {
    d.get(key).and_then(Value::as_f64).filter(|f| f.is_finite())
}

/// The position side a trade side stands for: `BUY`/`LONG` is `LONG`, `SELL`/`SHORT` is
/// `SHORT`; any other word is kept, upper-cased.
pub(super) fn position_side(side: &str) -> String {
    let side = side.trim();
    if side.eq_ignore_ascii_case("buy") || side.eq_ignore_ascii_case("long") {
        "LONG".to_owned()
    } else if side.eq_ignore_ascii_case("sell") || side.eq_ignore_ascii_case("short") {
        "SHORT".to_owned()
    } else {
        side.to_uppercase()
    }
}

fn opposite(side: &str) -> Option<&'static str> {
    match side {
        "LONG" => Some("SHORT"),
        "SHORT" => Some("LONG"),
        _ => None,
    }
}

/// Seconds in a human duration such as "3 hours", "2h 30m", "45 sec" or "1.5 days";
/// `None` when the text is not one.
///
/// Not the config's duration grammar (`alert_router_plugin::parse_duration`, which is
/// strict, `30s` or `2h30m`): this reads what bots write in a trade's `duration`, where a
/// word, a fraction or "and" is common and a refusal would lose the figure.
pub(super) fn parse_duration(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].to_ascii_lowercase();
        let scale = match unit.as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            _ => return None,
        };
        total += value * scale;
        rest = rest[unit_len..].trim_start_matches([' ', ',']);
        rest = rest.strip_prefix("and ").unwrap_or(rest);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alert_router_domain::OwnedEvent;
    use serde_json::json;

    fn event(kind: &str, time: &str, data: Value) -> OwnedEvent {
        let mut value = data;
        value["type"] = json!(kind);
        value["time"] = json!(time);
        match OwnedEvent::from_json(value, crate::EVENT_TYPES) {
            Ok(e) => e,
            Err(e) => panic!("test event is invalid: {e}"),
        }
    }

    #[test]
    fn opens_average_the_entry_and_closes_reduce_the_position() {
        let mut b = Book::default();
        let t = "2025-11-03T10:00:00Z";
        let open = |price: f64, qty: f64| {
            event(
                "trade_opened",
                t,
                json!({"symbol": "BTC/USDT", "side": "BUY", "entry_price": price, "quantity": qty, "strategy": "RSI_MACD"}),
            )
        };
        b.apply(open(40_000.0, 1.0).as_ref(), None);
        b.apply(open(46_000.0, 2.0).as_ref(), None);
        let key = ("BTC/USDT".to_owned(), "LONG".to_owned());
        let p = &b.positions[&key];
        assert_eq!(p.quantity, 3.0);
        assert_eq!(p.entry_price, 44_000.0);
        assert_eq!(b.prices["BTC/USDT"], 46_000.0);

        // The closing order's side (SELL) finds the LONG position.
        let close = event(
            "trade_closed",
            "2025-11-03T13:00:00Z",
            json!({"symbol": "BTC/USDT", "side": "SELL", "entry_price": 44_000, "exit_price": 45_000,
                   "quantity": 1, "pnl": 1000, "pnl_pct": 2.27}),
        );
        b.apply(close.as_ref(), None);
        assert_eq!(b.positions[&key].quantity, 2.0);
        assert_eq!(b.positions[&key].entry_price, 44_000.0);
        let trade = &b.trades[0];
        assert_eq!(trade.strategy.as_deref(), Some("RSI_MACD"));
        assert_eq!(trade.opened_at, Some(nanos(b_time(t))));
        assert_eq!(trade.duration_s, Some(3.0 * 3600.0));

        let close_all = event(
            "trade_closed",
            "2025-11-03T14:00:00Z",
            json!({"symbol": "BTC/USDT", "side": "BUY", "entry_price": 44_000, "exit_price": 43_000,
                   "quantity": 2, "pnl": -2000, "pnl_pct": -2.27}),
        );
        b.apply(close_all.as_ref(), None);
        assert!(b.positions.is_empty());
        assert_eq!(b.stats.trades, 2);
        assert_eq!(b.pnl_curve.values(), vec![1000.0, -1000.0]);
    }

    fn b_time(s: &str) -> OffsetDateTime {
        match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => t,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn a_close_without_a_position_still_records_the_trade() {
        let mut b = Book::default();
        let closed = event(
            "trade_closed",
            "2025-11-03T14:00:00Z",
            json!({"symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500, "exit_price": 2600,
                   "quantity": 2, "pnl": 200, "pnl_pct": 4, "duration": "3 hours", "reason": "Take Profit"}),
        );
        b.apply(closed.as_ref(), None);
        let trade = &b.trades[0];
        assert_eq!(trade.duration, Some(json!("3 hours")));
        assert_eq!(trade.duration_s, Some(10_800.0));
        assert_eq!(
            trade.opened_at,
            Some(nanos(b_time("2025-11-03T11:00:00Z"))),
            "worked out from the duration"
        );
        assert!(b.positions.is_empty());
        assert_eq!(b.positions_source, PositionsSource::None);
    }

    #[test]
    fn other_events_change_nothing_and_emit_nothing() {
        let mut b = Book::default();
        let mut changes = Vec::new();
        let mut sink = |c| changes.push(c);
        let other = event("disk_full", "2025-11-03T14:00:00Z", json!({"pct": 99}));
        b.apply(other.as_ref(), Some(&mut sink));
        assert!(changes.is_empty());
        assert_eq!(b, Book::default());
        assert!(!is_tracked("disk_full") && !is_tracked("error"));
    }

    #[test]
    fn human_durations() {
        assert_eq!(parse_duration("3 hours"), Some(10_800.0));
        assert_eq!(parse_duration("2h 30m"), Some(9_000.0));
        assert_eq!(
            parse_duration("1 day, 2 hours and 5 minutes"),
            Some(93_900.0)
        );
        assert_eq!(parse_duration("1.5 days"), Some(129_600.0));
        assert_eq!(parse_duration("45s"), Some(45.0));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("3 fortnights"), None);
    }
}
