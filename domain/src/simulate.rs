//! A domain's simulation for `alert-router demo`: day after day of events, each at its
//! second of the day, which the demo posts through the router's HTTP API at its pace.

use serde_json::Value;
use time::Date;

/// A seeded simulation: the same seed gives the same days, event for event.
pub trait Simulator: Send {
    /// The next simulated day, which falls on `date` (the demo's day 0 is today).
    fn next_day(&mut self, date: Date) -> Day;
}

/// One simulated day: its events in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub events: Vec<SimEvent>,
}

/// One event of a simulated day.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    /// Seconds since the start of the day.
    pub at: u32,
    /// The event as a producer would post it, without `time` (the demo stamps it).
    pub event: Value,
    /// One line for the demo's output: `BUY 0.5 BTC/USDT at 45,000.00 (RSI_MACD)`.
    pub line: String,
}
