//! The state store: what the router knows about the trading it watches, so Telegram
//! commands (`/portfolio`, `/positions`, `/trades`, `/performance`, `/daily`) and the
//! dashboard can answer from it.
//!
//! Every accepted event goes through [`StateStore::apply`]; the trading types update the
//! state, any other type costs one type check:
//! - `portfolio_update`: the portfolio, a point of the equity curve, the day's close, and,
//!   when it lists `positions`, the whole set of positions (replaced);
//! - `trade_opened`: opens a position for the symbol and side or adds to it (the entry price
//!   is the quantity-weighted average); `BUY`/`LONG` is a `LONG` position, `SELL`/`SHORT` a
//!   `SHORT` one;
//! - `trade_closed`: one trade of the history, and reduces (or removes) the position it
//!   closes: the one of the same side, or else of the opposite side, since producers write
//!   either the position's side or the closing order's;
//! - `performance_metrics`, `daily_summary`: the latest of each kept as reported, and
//!   answered apart from what the store computes itself, never mixed into it.
//!
//! The last known price of a symbol is the latest entry, exit or position price seen.
//! [`StateStore::open`] keeps the state in SQLite (`<dir>/state.db`) and loads it back at
//! start; a background thread commits changes in batches, and [`StateStore::flush`] waits
//! for it.
//!
//! # What queries answer
//! [`StateStore::query`] takes a resource and a URL query string. Times are RFC 3339 UTC
//! strings; numbers are JSON numbers rounded to at least 8 decimals (and 8 significant
//! digits), and a value that does not exist or would be NaN or infinite is `null`.
//! Percentages are in percent (`25.0` is 25%).
//!
//! - `portfolio` (no parameters): before any `portfolio_update`, `{"empty": true}`; then
//!   `{"total_value", "cash", "pnl", "pnl_pct", "drawdown_pct", "drawdown_source",
//!   "updated_at", "positions_value"}`. `cash`, `pnl` and `pnl_pct` are as reported (or
//!   `null`); `drawdown_pct` is the reported one, else computed from the equity curve
//!   (`drawdown_source`: `"reported"` or `"computed"`); `positions_value` sums the open
//!   positions' values.
//! - `positions` (`symbol`): `{"positions": [{"symbol", "side", "quantity", "entry_price",
//!   "current_price", "value", "pnl", "pnl_pct", "opened_at", "strategy"}], "source"}`,
//!   sorted by symbol then side; `side` is `LONG`, `SHORT` or the producer's own word
//!   upper-cased; `source` is `"portfolio_update"`, `"trades"` (whichever changed the set
//!   last) or `"none"`. `value`, `pnl` and `pnl_pct` are the ones a `portfolio_update`
//!   reported while the price is unchanged, else worked out from `current_price`.
//! - `trades` (`limit` 1 to 10000, default 50; `symbol`; `strategy`; `since`, an RFC 3339
//!   time, a date or `today`): `{"trades": [trade...], "total": n}`, newest first; `total`
//!   counts every kept trade that matches, before `limit`. A trade is `{"id", "symbol",
//!   "side", "entry_price", "exit_price", "quantity", "pnl", "pnl_pct", "reason",
//!   "strategy", "duration", "duration_s", "opened_at", "closed_at"}`: `duration` as sent
//!   (seconds or a text), `duration_s` in seconds when known or derivable, `opened_at` from
//!   the position it closed or from `duration`. The newest 10,000 trades are kept.
//!   `symbol` and `strategy` match case-insensitively.
//! - `performance` (no parameters): two objects, never merged into one.
//!   `"computed"`: what the router works out from the events it saw: `total_pnl`,
//!   `total_trades`, `wins`, `losses`, `win_rate` (%), `profit_factor` (gross profit /
//!   gross loss, `null` without losses), `avg_win`, `avg_loss` (negative), `best_trade`,
//!   `worst_trade`, `expectancy` (mean P&L per trade), `total_return` (%), `sharpe_ratio`
//!   and `sortino_ratio` (annualised from daily returns, × √365), `max_drawdown` (%, peak
//!   to trough, positive), `max_drawdown_abs`, `volatility` (annualised, %), `var_95`
//!   (one-day 95% historical VaR as a positive loss %), `daily_returns` (how many the
//!   ratios used), `equity_source` (the curve they came from, as for `equity`) and
//!   `"today": {"date", "trades", "pnl"}` (UTC day). Trade statistics count every trade
//!   ever closed, not only the kept ones; return-based metrics need `portfolio_update`
//!   values (they are `null` on a P&L-only curve, and with fewer than two daily returns).
//!   `"reported"`: `{"performance_metrics", "daily_summary"}`, each the latest such event's
//!   fields as the producer sent them (floats rounded as above) plus its `"time"`, or
//!   `null` before one came.
//! - `equity` (`range`: `1D`, `1W`, `1M` (30 days) or `all`, the default):
//!   `{"points": [{"time", "value"}], "range", "source"}`. `source` is `"portfolio_update"`
//!   (total value over time) or, when none was sent, `"trades"`: cumulative closed P&L from
//!   zero, with a `"note"` saying so; `"none"` with no data. At most 2,000 points: older
//!   stretches are merged, keeping each stretch's lowest and highest point.
//! - `daily` (`date`, a date or `today`, the default; `symbol`; `strategy`): `{"date",
//!   "trades": [trade...], "count", "wins", "losses", "pnl", "win_rate", "best_trade",
//!   "worst_trade", "reported"}`: the trades closed that UTC day, newest first, the
//!   figures computed from them, and, apart, the latest `daily_summary` when it is for
//!   that day (its fields as sent plus its `"time"`; else `null`).

mod analytics;
mod book;
mod equity;
mod error;
mod persist;
mod query;
mod store;

#[cfg(test)]
use error::QueryError;
pub use error::StateError;
pub use store::StateStore;

/// The resources [`StateStore::query`] answers.
pub const RESOURCES: &[&str] = &[
    "portfolio",
    "positions",
    "trades",
    "performance",
    "equity",
    "daily",
];

#[cfg(test)]
mod tests;
