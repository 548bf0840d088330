//! Answers state queries: a resource name and a URL query string in, JSON out. Owns the
//! parameters each resource takes, their parsing and errors, and how numbers and times are
//! written (rounded, never NaN or infinity). The shapes are documented in `mod.rs`.

use alert_router_plugin::form_decode as decode;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use super::analytics::{self, TradeStats};
use super::book::{Book, MAX_TRADES, Position, Reported, Trade};
use super::equity::{Curve, NANOS_PER_DAY, Nanos, day_of};
use super::error::QueryError;
use alert_router_domain::format_time;

/// How many trades `trades` lists without a `limit`.
pub(super) const DEFAULT_LIMIT: usize = 50;

/// Answers `resource` with the parameters in `query`, `now` being the current time (for
/// `today`, `range` and today's figures).
pub(super) fn run(
    book: &Book,
    resource: &str,
    query: &str,
    now: Nanos,
) -> Result<Value, QueryError> {
    match resource {
        "portfolio" => {
            Params::parse(resource, query, &[])?;
            Ok(portfolio(book))
        }
        "positions" => {
            let p = Params::parse(resource, query, &["symbol"])?;
            Ok(positions(book, p.get("symbol")))
        }
        "trades" => {
            let p = Params::parse(resource, query, &["limit", "symbol", "strategy", "since"])?;
            let limit = p.limit()?;
            let filter = Filter::new(&p, now)?;
            Ok(trades(book, &filter, limit))
        }
        "performance" => {
            Params::parse(resource, query, &[])?;
            Ok(performance(book, now))
        }
        "equity" => {
            let p = Params::parse(resource, query, &["range"])?;
            Ok(equity(book, p.get("range"), now)?)
        }
        "daily" => {
            let p = Params::parse(resource, query, &["date", "symbol", "strategy"])?;
            let day = match p.get("date") {
                None => day_of(now),
                Some(v) => parse_day(v, now).ok_or_else(|| {
                    QueryError::bad("date", v, "a date such as 2025-11-03, or `today`")
                })?,
            };
            let filter = Filter {
                since: None,
                ..Filter::new(&p, now)?
            };
            Ok(daily(book, day, &filter))
        }
        other => Err(QueryError::UnknownResource(other.to_owned())),
    }
}

/// Decoded `name=value` pairs, each name allowed for the resource and given once.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(
        resource: &str,
        query: &str,
        allowed: &'static [&'static str],
    ) -> Result<Params, QueryError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name =
                decode(name).ok_or_else(|| QueryError::bad(name, name, "a parameter name"))?;
            let value = decode(value).ok_or_else(|| {
                QueryError::bad(
                    &name,
                    value,
                    "a value in URL encoding (%XX escapes of UTF-8)",
                )
            })?;
            if !allowed.contains(&name.as_str()) {
                return Err(QueryError::UnknownParameter {
                    resource: resource.to_owned(),
                    name,
                    allowed,
                });
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(QueryError::Repeated { name });
            }
            pairs.push((name, value));
        }
        Ok(Params(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn limit(&self) -> Result<usize, QueryError> {
        let Some(v) = self.get("limit") else {
            return Ok(DEFAULT_LIMIT);
        };
        v.parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_TRADES).contains(n))
            .ok_or_else(|| {
                QueryError::bad("limit", v, format!("a whole number from 1 to {MAX_TRADES}"))
            })
    }
}

/// `symbol`, `strategy` (both case-insensitive) and `since` filters on trades.
struct Filter {
    symbol: Option<String>,
    strategy: Option<String>,
    since: Option<Nanos>,
}

impl Filter {
    fn new(p: &Params, now: Nanos) -> Result<Filter, QueryError> {
        let since = match p.get("since") {
            None => None,
            Some(v) => Some(parse_since(v, now).ok_or_else(|| {
                QueryError::bad(
                    "since",
                    v,
                    "an RFC 3339 time such as 2025-11-03T00:00:00Z, a date such as 2025-11-03, or `today`",
                )
            })?),
        };
        Ok(Filter {
            symbol: p.get("symbol").map(str::to_owned),
            strategy: p.get("strategy").map(str::to_owned),
            since,
        })
    }

    fn is_empty(&self) -> bool {
        self.symbol.is_none() && self.strategy.is_none() && self.since.is_none()
    }

    fn matches(&self, t: &Trade) -> bool {
        self.symbol
            .as_ref()
            .is_none_or(|s| s.eq_ignore_ascii_case(&t.symbol))
            && self.strategy.as_ref().is_none_or(|s| {
                t.strategy
                    .as_ref()
                    .is_some_and(|ts| s.eq_ignore_ascii_case(ts))
            })
            && self.since.is_none_or(|since| t.closed_at >= since)
    }
}

fn parse_since(v: &str, now: Nanos) -> Option<Nanos> {
    if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        return Some(super::book::nanos(t));
    }
    parse_day(v, now).map(|day| day.saturating_mul(NANOS_PER_DAY))
}

/// `today` or `YYYY-MM-DD` as a UTC day number.
fn parse_day(v: &str, now: Nanos) -> Option<i64> {
    if v.eq_ignore_ascii_case("today") {
        return Some(day_of(now));
    }
    let date = Date::parse(v, format_description!("[year]-[month]-[day]")).ok()?;
    Some(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

fn day_text(day: i64) -> Value {
    time_value(day.saturating_mul(NANOS_PER_DAY))
        .as_str()
        .and_then(|s| s.get(..10))
        .map_or(Value::Null, |d| Value::String(d.to_owned()))
}

fn portfolio(book: &Book) -> Value {
    let Some(p) = &book.portfolio else {
        return json!({"empty": true});
    };
    let (drawdown, drawdown_source) = match p.drawdown_pct {
        Some(d) => (Some(d), "reported"),
        None => (
            analytics::current_drawdown_pct(&book.equity.values()),
            "computed",
        ),
    };
    let positions_value: f64 = book
        .positions
        .values()
        .map(|pos| marks(book, pos).value)
        .sum();
    json!({
        "total_value": num(p.total_value),
        "cash": opt(p.cash),
        "pnl": opt(p.pnl),
        "pnl_pct": opt(p.pnl_pct),
        "drawdown_pct": opt(drawdown),
        "drawdown_source": drawdown_source,
        "updated_at": time_value(p.time),
        "positions_value": num(positions_value),
    })
}

/// A position's price and valuation: the producer's own marks while the symbol's price is
/// still the one it reported, else worked out from the last known price.
struct Valued {
    price: f64,
    value: f64,
    pnl: f64,
    pnl_pct: Option<f64>,
}

fn marks(book: &Book, p: &Position) -> Valued {
    let price = book.prices.get(&p.symbol).copied().unwrap_or(p.entry_price);
    let sign = if p.side == "SHORT" { -1.0 } else { 1.0 };
    let mut v = Valued {
        price,
        value: p.quantity * price,
        pnl: (price - p.entry_price) * p.quantity * sign,
        pnl_pct: (p.entry_price > 0.0).then(|| (price / p.entry_price - 1.0) * 100.0 * sign),
    };
    if let Some(m) = &p.marks
        && m.current_price == price
    {
        v.value = m.value.unwrap_or(v.value);
        v.pnl = m.pnl.unwrap_or(v.pnl);
        v.pnl_pct = m.pnl_pct.or(v.pnl_pct);
    }
    v
}

fn positions(book: &Book, symbol: Option<&str>) -> Value {
    let list: Vec<Value> = book
        .positions
        .values()
        .filter(|p| symbol.is_none_or(|s| s.eq_ignore_ascii_case(&p.symbol)))
        .map(|p| {
            let v = marks(book, p);
            json!({
                "symbol": p.symbol,
                "side": p.side,
                "quantity": num(p.quantity),
                "entry_price": num(p.entry_price),
                "current_price": num(v.price),
                "value": num(v.value),
                "pnl": num(v.pnl),
                "pnl_pct": opt(v.pnl_pct),
                "opened_at": p.opened_at.map_or(Value::Null, time_value),
                "strategy": p.strategy,
            })
        })
        .collect();
    json!({
        "positions": list,
        "source": book.positions_source.as_str(),
    })
}

fn trade_json(t: &Trade) -> Value {
    json!({
        "id": t.id,
        "symbol": t.symbol,
        "side": t.side,
        "entry_price": num(t.entry_price),
        "exit_price": num(t.exit_price),
        "quantity": num(t.quantity),
        "pnl": num(t.pnl),
        "pnl_pct": num(t.pnl_pct),
        "reason": t.reason,
        "strategy": t.strategy,
        "duration": t.duration.as_ref().map_or(Value::Null, |d| match d.as_f64() {
            Some(f) => num(f),
            None => d.clone(),
        }),
        "duration_s": opt(t.duration_s),
        "opened_at": t.opened_at.map_or(Value::Null, time_value),
        "closed_at": time_value(t.closed_at),
    })
}

fn trades(book: &Book, filter: &Filter, limit: usize) -> Value {
    if filter.is_empty() {
        // No need to walk the whole history to count it.
        let list: Vec<Value> = book
            .trades
            .iter()
            .rev()
            .take(limit)
            .map(trade_json)
            .collect();
        return json!({"trades": list, "total": book.trades.len()});
    }
    let mut total = 0usize;
    let mut list = Vec::new();
    for t in book.trades.iter().rev().filter(|t| filter.matches(t)) {
        total += 1;
        if list.len() < limit {
            list.push(trade_json(t));
        }
    }
    json!({"trades": list, "total": total})
}

fn daily(book: &Book, day: i64, filter: &Filter) -> Value {
    let todays: Vec<&Trade> = book
        .trades
        .iter()
        .rev()
        .filter(|t| day_of(t.closed_at) == day && filter.matches(t))
        .collect();
    let stats = TradeStats::from_pnls(todays.iter().map(|t| t.pnl));
    let date = day_text(day);
    let reported =
        book.daily_summary
            .as_ref()
            .filter(|r| match r.data.get("date").and_then(Value::as_str) {
                Some(d) => Some(d) == date.as_str(),
                None => day_of(r.time) == day,
            });
    json!({
        "date": date,
        "trades": todays.iter().map(|t| trade_json(t)).collect::<Vec<_>>(),
        "count": stats.trades,
        "wins": stats.wins,
        "losses": stats.losses,
        "pnl": num(stats.total_pnl()),
        "win_rate": opt(stats.win_rate()),
        "best_trade": opt(stats.best),
        "worst_trade": opt(stats.worst),
        "reported": reported.map_or(Value::Null, reported_json),
    })
}

/// A reported event's fields as the producer sent them, with the event's `time` (a
/// reserved event key, so it never hides a field of the producer's).
fn reported_json(r: &Reported) -> Value {
    let mut map: Map<String, Value> = r
        .data
        .iter()
        .map(|(k, v)| (k.clone(), rounded(v)))
        .collect();
    map.insert("time".into(), time_value(r.time));
    Value::Object(map)
}

/// The curve the equity figures come from: the portfolio value when any was sent, else
/// cumulative closed P&L.
fn equity_curve(book: &Book) -> (&Curve, &'static str) {
    if !book.equity.is_empty() {
        (&book.equity, "portfolio_update")
    } else if !book.pnl_curve.is_empty() {
        (&book.pnl_curve, "trades")
    } else {
        (&book.equity, "none")
    }
}

const PNL_CURVE_NOTE: &str = "no portfolio_update received: values are cumulative closed P&L \
                              from a starting equity of 0";

fn equity(book: &Book, range: Option<&str>, now: Nanos) -> Result<Value, QueryError> {
    let (name, span) = match range.map(str::to_ascii_uppercase).as_deref() {
        None | Some("ALL") => ("all", None),
        Some("1D") => ("1D", Some(NANOS_PER_DAY)),
        Some("1W") => ("1W", Some(7 * NANOS_PER_DAY)),
        Some("1M") => ("1M", Some(30 * NANOS_PER_DAY)),
        Some(_) => {
            return Err(QueryError::bad(
                "range",
                range.unwrap_or_default(),
                "1D, 1W, 1M or all",
            ));
        }
    };
    let start = span.map_or(Nanos::MIN, |s| now.saturating_sub(s));
    let (curve, source) = equity_curve(book);
    let points: Vec<Value> = curve
        .points()
        .iter()
        .filter(|p| p.time >= start)
        .map(|p| json!({"time": time_value(p.time), "value": num(p.value)}))
        .collect();
    let mut out = json!({"points": points, "range": name, "source": source});
    if source == "trades" {
        out["note"] = json!(PNL_CURVE_NOTE);
    }
    Ok(out)
}

/// The metrics the store computes, in the order they are shown.
fn computed(book: &Book) -> Vec<(&'static str, Value)> {
    let s = &book.stats;
    let (curve, source) = equity_curve(book);
    let values = curve.values();
    let drawdown = analytics::max_drawdown(&values);
    // Return-based figures need real portfolio values, not P&L from zero.
    let portfolio = source == "portfolio_update";
    let daily = if portfolio {
        analytics::returns(&book.daily.values())
    } else {
        Vec::new()
    };
    let total_return = match (portfolio, values.first(), values.last()) {
        (true, Some(first), Some(last)) => analytics::total_return_pct(*first, *last),
        _ => None,
    };
    vec![
        ("total_pnl", num(s.total_pnl())),
        ("total_trades", json!(s.trades)),
        ("wins", json!(s.wins)),
        ("losses", json!(s.losses)),
        ("win_rate", opt(s.win_rate())),
        ("profit_factor", opt(s.profit_factor())),
        ("avg_win", opt(s.avg_win())),
        ("avg_loss", opt(s.avg_loss())),
        ("best_trade", opt(s.best)),
        ("worst_trade", opt(s.worst)),
        ("expectancy", opt(s.expectancy())),
        ("total_return", opt(total_return)),
        ("sharpe_ratio", opt(analytics::sharpe(&daily))),
        ("sortino_ratio", opt(analytics::sortino(&daily))),
        ("max_drawdown", opt(drawdown.and_then(|d| d.pct))),
        ("max_drawdown_abs", opt(drawdown.map(|d| d.abs))),
        ("volatility", opt(analytics::volatility_pct(&daily))),
        ("var_95", opt(analytics::var_95_pct(&daily))),
        ("daily_returns", json!(daily.len())),
    ]
}

/// `performance`: what the router worked out from the events it saw (`computed`) and
/// what the producer said (`reported`), side by side. They are never merged: a win rate
/// the bot reported next to wins and losses the router counted would not add up.
fn performance(book: &Book, now: Nanos) -> Value {
    let mut computed: Map<String, Value> = computed(book)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    computed.insert("equity_source".into(), json!(equity_curve(book).1));
    let today = day_of(now);
    let todays = TradeStats::from_pnls(
        book.trades
            .iter()
            .filter(|t| day_of(t.closed_at) == today)
            .map(|t| t.pnl),
    );
    computed.insert(
        "today".into(),
        json!({"date": day_text(today), "trades": todays.trades, "pnl": num(todays.total_pnl())}),
    );
    json!({
        "computed": computed,
        "reported": {
            "performance_metrics": book.performance.as_ref().map_or(Value::Null, reported_json),
            "daily_summary": book.daily_summary.as_ref().map_or(Value::Null, reported_json),
        },
    })
}

/// A JSON number rounded for people: at least 8 decimals and at least 8 significant
/// digits, never more than 15 significant digits (so float noise such as
/// 0.30000000000000004 disappears); `null` for NaN or infinity.
pub(super) fn num(x: f64) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    if x == 0.0 {
        return json!(0.0);
    }
    let mag = x.abs().log10().floor() as i32;
    let decimals = 8.max(7 - mag).min(14 - mag);
    let rounded = if decimals < 0 {
        x
    } else {
        let scale = 10f64.powi(decimals);
        let r = (x * scale).round() / scale;
        if r.is_finite() { r } else { x }
    };
    // `+ 0.0` turns -0.0 into 0.0.
    serde_json::Number::from_f64(rounded + 0.0).map_or(Value::Null, Value::Number)
}

fn opt(x: Option<f64>) -> Value {
    x.map_or(Value::Null, num)
}

/// A producer's value with its floats rounded like ours; integers and other values as sent.
fn rounded(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => n.as_f64().map_or(Value::Null, num),
        other => other.clone(),
    }
}

fn time_value(t: Nanos) -> Value {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t))
        .map_or(Value::Null, |t| Value::String(format_time(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_rounded_for_people_and_never_nan() {
        assert_eq!(num(0.1 + 0.2).to_string(), "0.3");
        assert_eq!(num(45_000.123_456_789).to_string(), "45000.12345679");
        assert_eq!(num(1.234_567_891_23e-10).to_string(), "1.2345679e-10");
        assert_eq!(num(-0.000_000_000_1 * 0.0).to_string(), "0.0");
        assert_eq!(num(1e20).to_string(), "1e+20");
        assert_eq!(num(1_234_567_890.1 + 0.2).to_string(), "1234567890.3");
        assert_eq!(num(f64::NAN), Value::Null);
        assert_eq!(num(f64::INFINITY), Value::Null);
        assert_eq!(num(-2.5).to_string(), "-2.5");
    }

    #[test]
    fn days_parse_as_utc_day_numbers() {
        assert_eq!(parse_day("1970-01-02", 0), Some(1));
        assert_eq!(parse_day("2025-11-03", 0), Some(20_395));
        assert_eq!(parse_day("today", 3 * NANOS_PER_DAY + 5), Some(3));
        assert_eq!(parse_day("03/11/2025", 0), None);
        assert_eq!(day_text(20_395), json!("2025-11-03"));
        assert_eq!(
            parse_since("2025-11-03T12:00:00Z", 0),
            Some(20_395 * NANOS_PER_DAY + 12 * 3_600 * 1_000_000_000)
        );
    }
}
