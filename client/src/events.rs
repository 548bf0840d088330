//! The typed trading events (the README's documented types, field for field) and
//! [`to_event`], which turns one into the JSON object the router takes.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ClientError;
use crate::severity::Severity;

/// A typed event of one of the documented trading types.
pub trait TradingEvent: Serialize {
    /// The event's `type`.
    const TYPE: &'static str;
}

/// The JSON object of a typed event, with its `type`.
pub fn to_event<E: TradingEvent>(event: &E) -> Result<Value, ClientError> {
    let mut value = serde_json::to_value(event)
        .map_err(|e| ClientError::Transport(format!("cannot encode a {} event: {e}", E::TYPE)))?;
    match value.as_object_mut() {
        Some(map) => {
            map.insert("type".into(), json!(E::TYPE));
        }
        None => {
            return Err(ClientError::Transport(format!(
                "a {} event must encode as a JSON object",
                E::TYPE
            )));
        }
    }
    Ok(value)
}

/// `trade_opened`: a position was entered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TradeOpened {
    /// The market, `BTC/USDT`.
    pub symbol: String,
    /// `BUY`/`LONG` or `SELL`/`SHORT`.
    pub side: String,
    /// The price the position was entered at.
    pub entry_price: f64,
    /// How much was bought or sold.
    pub quantity: f64,
    /// The strategy that entered it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub strategy: Option<String>,
    /// The stop-loss price.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_loss: Option<f64>,
    /// The take-profit price.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub take_profit: Option<f64>,
    /// What the position cost.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total_value: Option<f64>,
}

impl TradeOpened {
    /// The required fields; set the optional ones on the result.
    pub fn new(symbol: &str, side: &str, entry_price: f64, quantity: f64) -> TradeOpened {
        TradeOpened {
            symbol: symbol.into(),
            side: side.into(),
            entry_price,
            quantity,
            ..TradeOpened::default()
        }
    }
}

impl TradingEvent for TradeOpened {
    const TYPE: &'static str = "trade_opened";
}

/// `trade_closed`: a position was exited, with its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TradeClosed {
    /// The market, `BTC/USDT`.
    pub symbol: String,
    /// The side of the position that closed: `BUY`/`LONG` or `SELL`/`SHORT`.
    pub side: String,
    /// The price the position was entered at.
    pub entry_price: f64,
    /// The price it was exited at.
    pub exit_price: f64,
    /// How much was traded.
    pub quantity: f64,
    /// Profit (positive) or loss (negative), in the quote currency.
    pub pnl: f64,
    /// In percent: `4.0` is 4%.
    pub pnl_pct: f64,
    /// Why it closed: `Take Profit`, `Stop Loss`, ...
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// Seconds as a number, or a text such as `"3 hours"`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration: Option<Value>,
    /// The strategy that traded it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub strategy: Option<String>,
}

impl TradingEvent for TradeClosed {
    const TYPE: &'static str = "trade_closed";
}

/// `error`: something went wrong in the bot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// What went wrong, for people.
    pub message: String,
    /// A kind to route on: `ConnectionError`, `OrderRejected`, ...
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_type: Option<String>,
    /// The part of the bot it happened in.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub component: Option<String>,
    /// Anything more, as JSON.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub details: Option<Value>,
    /// `warning`, `error` (the router's default for errors) or `critical`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub severity: Option<Severity>,
}

impl ErrorEvent {
    /// An error with only its message.
    pub fn new(message: impl Into<String>) -> ErrorEvent {
        ErrorEvent {
            message: message.into(),
            ..ErrorEvent::default()
        }
    }
}

impl TradingEvent for ErrorEvent {
    const TYPE: &'static str = "error";
}

/// `daily_summary`: the day's trading in numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DailySummary {
    /// `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub date: Option<String>,
    /// Trades closed that day.
    pub total_trades: u64,
    /// Of those, the ones that made money.
    pub winning_trades: u64,
    /// Of those, the ones that lost money.
    pub losing_trades: u64,
    /// In percent.
    pub win_rate: f64,
    /// The day's profit or loss, in the quote currency.
    pub total_pnl: f64,
    /// The day's profit or loss, in percent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total_pnl_pct: Option<f64>,
    /// The best trade's P&L.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub best_trade: Option<f64>,
    /// The worst trade's P&L.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub worst_trade: Option<f64>,
    /// What the account was worth at the end of the day.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub portfolio_value: Option<f64>,
}

impl TradingEvent for DailySummary {
    const TYPE: &'static str = "daily_summary";
}

/// One open position in a [`PortfolioUpdate`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// The market, `BTC/USDT`.
    pub symbol: String,
    /// `LONG` or `SHORT` (`BUY`/`SELL` are read the same way).
    pub side: String,
    /// How much is held.
    pub quantity: f64,
    /// The price it was entered at.
    pub entry_price: f64,
    /// The market's price now.
    pub current_price: f64,
    /// Unrealised profit or loss, in the quote currency.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pnl: Option<f64>,
    /// Unrealised profit or loss, in percent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pnl_pct: Option<f64>,
    /// What the position is worth now.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<f64>,
}

/// `portfolio_update`: what the account is worth now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortfolioUpdate {
    /// Cash and positions together.
    pub total_value: f64,
    /// Cash not in positions.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cash: Option<f64>,
    /// Profit or loss, in the quote currency.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pnl: Option<f64>,
    /// Profit or loss, in percent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pnl_pct: Option<f64>,
    /// How far below its peak the account is, in percent; shown negative whichever sign
    /// is sent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub drawdown_pct: Option<f64>,
    /// The open positions.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub positions: Option<Vec<Position>>,
}

impl TradingEvent for PortfolioUpdate {
    const TYPE: &'static str = "portfolio_update";
}

/// `performance_metrics`: the bot's own figures; every field optional. The router keeps
/// them as reported, apart from the figures it computes from the events it saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerformanceMetrics {
    /// Total return, in percent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total_return: Option<f64>,
    /// Sharpe ratio.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sharpe_ratio: Option<f64>,
    /// Sortino ratio.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sortino_ratio: Option<f64>,
    /// Maximum drawdown, in percent; a loss, shown negative whichever sign is sent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_drawdown: Option<f64>,
    /// Winning trades, in percent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub win_rate: Option<f64>,
    /// Gross profit over gross loss.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub profit_factor: Option<f64>,
    /// Trades counted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total_trades: Option<u64>,
    /// Volatility of returns, in percent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volatility: Option<f64>,
    /// 95% value at risk, in percent; a loss, shown negative whichever sign is sent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub var_95: Option<f64>,
}

impl TradingEvent for PerformanceMetrics {
    const TYPE: &'static str = "performance_metrics";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_events_carry_their_type_and_skip_absent_fields() {
        let mut t = TradeOpened::new("BTC/USDT", "BUY", 45000.0, 0.5);
        t.strategy = Some("RSI_MACD".into());
        let v = to_event(&t).expect("encodes");
        assert_eq!(
            v,
            json!({"symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000.0,
                   "quantity": 0.5, "strategy": "RSI_MACD", "type": "trade_opened"})
        );
        let mut e = ErrorEvent::new("exchange down");
        e.severity = Some(Severity::Critical);
        assert_eq!(
            to_event(&e).expect("encodes"),
            json!({"message": "exchange down", "severity": "critical", "type": "error"})
        );
    }

    #[test]
    fn an_error_event_reads_its_severity_back() {
        let e: ErrorEvent =
            serde_json::from_value(json!({"message": "slow", "severity": "WARN"})).expect("reads");
        assert_eq!(e.severity, Some(Severity::Warning));
        let e: ErrorEvent =
            serde_json::from_value(json!({"message": "slow", "severity": null})).expect("reads");
        assert_eq!(e.severity, None);
    }
}
