//! The trading event types of the original monitoring module and their fields. Extra
//! fields are allowed (and reach templates); documented ones must have the right shape.

use alert_router_domain::FieldKind::{self, Duration, Integer, Number, Records, Text};
use alert_router_domain::{EventType, Field};
use serde_json::{Value, json};

const fn req(name: &'static str, kind: FieldKind) -> Field {
    Field::required(name, kind)
}

const fn opt(name: &'static str, kind: FieldKind) -> Field {
    Field::optional(name, kind)
}

/// Fields of each entry of `portfolio_update.positions`.
const POSITION_FIELDS: &[Field] = &[
    req("symbol", Text),
    req("side", Text),
    req("quantity", Number),
    req("entry_price", Number),
    req("current_price", Number),
    opt("pnl", Number),
    opt("pnl_pct", Number),
    opt("value", Number),
];

/// The six trading types.
pub const EVENT_TYPES: &[EventType] = &[
    EventType {
        name: "trade_opened",
        fields: &[
            req("symbol", Text),
            req("side", Text),
            req("entry_price", Number),
            req("quantity", Number),
            opt("strategy", Text),
            opt("stop_loss", Number),
            opt("take_profit", Number),
            opt("total_value", Number),
        ],
    },
    EventType {
        name: "trade_closed",
        fields: &[
            req("symbol", Text),
            req("side", Text),
            req("entry_price", Number),
            req("exit_price", Number),
            req("quantity", Number),
            req("pnl", Number),
            req("pnl_pct", Number),
            opt("reason", Text),
            opt("duration", Duration),
            opt("strategy", Text),
        ],
    },
    EventType {
        name: "error",
        fields: &[
            req("message", Text),
            opt("error_type", Text),
            opt("component", Text),
            opt("details", Text),
        ],
    },
    EventType {
        name: "daily_summary",
        fields: &[
            opt("date", Text),
            req("total_trades", Integer),
            req("winning_trades", Integer),
            req("losing_trades", Integer),
            req("win_rate", Number),
            req("total_pnl", Number),
            opt("total_pnl_pct", Number),
            opt("best_trade", Number),
            opt("worst_trade", Number),
            opt("portfolio_value", Number),
        ],
    },
    EventType {
        name: "portfolio_update",
        fields: &[
            req("total_value", Number),
            opt("cash", Number),
            opt("pnl", Number),
            opt("pnl_pct", Number),
            opt("positions", Records(POSITION_FIELDS)),
            opt("drawdown_pct", Number),
        ],
    },
    EventType {
        name: "performance_metrics",
        fields: &[
            opt("total_return", Number),
            opt("sharpe_ratio", Number),
            opt("sortino_ratio", Number),
            opt("max_drawdown", Number),
            opt("win_rate", Number),
            opt("profit_factor", Number),
            opt("total_trades", Integer),
            opt("volatility", Number),
            opt("var_95", Number),
        ],
    },
];

/// A plausible value of field `name` of a `kind` event, for the sample events `check`
/// renders templates with; `None` where the field's kind gives one.
pub(crate) fn sample_value(kind: &str, name: &str) -> Option<Value> {
    Some(match (kind, name) {
        (_, "symbol") => json!("BTC/USDT"),
        ("trade_closed", "side") => json!("SELL"),
        (_, "side") => json!("BUY"),
        (_, "entry_price") => json!(45000),
        (_, "exit_price") => json!(46000),
        (_, "quantity") => json!(0.5),
        (_, "strategy") => json!("RSI_MACD"),
        (_, "stop_loss") => json!(44000),
        (_, "take_profit") => json!(47000),
        ("trade_opened", "total_value") => json!(22500),
        ("trade_closed", "pnl") => json!(500),
        ("trade_closed", "pnl_pct") => json!(2.22),
        (_, "reason") => json!("Take Profit"),
        (_, "message") => json!("exchange timeout"),
        (_, "error_type") => json!("TimeoutError"),
        (_, "component") => json!("order-executor"),
        (_, "details") => json!("POST /api/v3/order took longer than 10 s"),
        (_, "date") => json!("2025-11-03"),
        (_, "positions") => json!([
            {"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.5, "entry_price": 45000,
             "current_price": 46000, "pnl": 500, "pnl_pct": 2.22, "value": 23000},
            {"symbol": "ETH/USDT", "side": "SHORT", "quantity": 2, "entry_price": 2500,
             "current_price": 2450},
        ]),
        _ => return None,
    })
}
