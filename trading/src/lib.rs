//! The trading domain of alert-router: what the router knows about trading, kept apart
//! from the router itself, which calls it only through [`alert_router_domain::Domain`].
//!
//! - [`EVENT_TYPES`]: the six trading event types of the original monitoring module
//!   (`trade_opened`, `trade_closed`, `error`, `daily_summary`, `portfolio_update`,
//!   `performance_metrics`) and their fields, validated on ingest;
//! - [`StateStore`]: the portfolio, positions, trade history, equity curves and
//!   analytics those events describe, kept in SQLite (`<storage.path>/state.db`) and
//!   answering `GET /v1/state/{portfolio,positions,trades,performance,equity,daily}`,
//!   Telegram's `/portfolio` and the like, and the dashboard;
//! - [`SimulatedBot`]: the seeded trading day `alert-router demo` replays.
//!
//! [`TRADING`] is the domain the `alert-router` binary registers at start-up.

mod schemas;
mod simulator;
mod state;
#[cfg(test)]
mod testing;

use std::path::Path;

use alert_router_domain::{Domain, EventRef, EventType, Field, QueryError, Simulator, Store};
use serde_json::Value;
use time::OffsetDateTime;

pub use schemas::EVENT_TYPES;
pub use simulator::SimulatedBot;
pub use state::{StateError, StateStore};

/// The trading domain.
pub static TRADING: Trading = Trading;

/// See [`TRADING`].
#[derive(Debug, Clone, Copy)]
pub struct Trading;

impl Domain for Trading {
    fn name(&self) -> &'static str {
        "trading"
    }

    fn event_types(&self) -> &'static [EventType] {
        EVENT_TYPES
    }

    fn sample_value(&self, kind: &str, field: &Field) -> Value {
        schemas::sample_value(kind, field.name).unwrap_or_else(|| field.kind.sample())
    }

    fn open(&self, dir: &Path) -> Result<Box<dyn Store>, String> {
        StateStore::open(dir)
            .map(|store| Box::new(store) as Box<dyn Store>)
            .map_err(|e| e.to_string())
    }

    fn simulator(&self, seed: u64) -> Option<Box<dyn Simulator>> {
        Some(Box::new(SimulatedBot::new(seed)))
    }
}

impl Store for StateStore {
    fn tracks(&self, kind: &str) -> bool {
        StateStore::tracks(kind)
    }

    fn apply(&self, event: EventRef<'_>) {
        StateStore::apply(self, event);
    }

    fn flush(&self) -> Result<(), String> {
        StateStore::flush(self).map_err(|e| e.to_string())
    }

    fn resources(&self) -> &'static [&'static str] {
        state::RESOURCES
    }

    fn query(
        &self,
        resource: &str,
        query: &str,
        now: OffsetDateTime,
    ) -> Option<Result<Value, QueryError>> {
        if !state::RESOURCES.contains(&resource) {
            return None;
        }
        Some(
            self.query_at(resource, query, now)
                .map_err(|e| QueryError(e.to_string())),
        )
    }
}
