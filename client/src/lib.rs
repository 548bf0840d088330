//! The Rust client producers (trading bots) use to post events to an
//! [alert-router](https://github.com/alert-router/alert-router): typed trading events,
//! `POST /v1/events` with retries that never deliver an event twice, and `GET /v1/status`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), alert_router_client::ClientError> {
//! use alert_router_client::{Client, TradeOpened};
//! let client = Client::new("http://127.0.0.1:9470").with_retries(3);
//! let id = client
//!     .notify_trade_opened(&TradeOpened::new("BTC/USDT", "BUY", 45000.0, 0.5))
//!     .await?;
//! println!("queued as {id}");
//! # Ok(())
//! # }
//! ```
//!
//! Every call gives its event an `id` (UUID v7) before the first attempt and sends the
//! same id on every retry; the router accepts a repeated id without delivering it again,
//! so a request whose answer was lost can be retried safely.
//!
//! The crate links an HTTP client (reqwest), serde and tokio's timer, and nothing of the
//! daemon: it has its own copy of the types it shares with the router ([`Severity`]), with
//! the same wire format. Calls are async and need a tokio runtime, as reqwest does.
//!
//! - [`Client`] makes the calls; [`ClientError`] says why one failed.
//! - [`TradeOpened`], [`TradeClosed`], [`ErrorEvent`], [`DailySummary`],
//!   [`PortfolioUpdate`] (with [`Position`]s) and [`PerformanceMetrics`] are the
//!   documented trading types; [`to_event`] turns any [`TradingEvent`] into its JSON.

#![warn(missing_docs)]

mod client;
mod error;
mod events;
mod retry;
mod severity;

pub use client::Client;
pub use error::ClientError;
pub use events::{
    DailySummary, ErrorEvent, PerformanceMetrics, PortfolioUpdate, Position, TradeClosed,
    TradeOpened, TradingEvent, to_event,
};
pub use severity::{Severity, UnknownSeverity};
