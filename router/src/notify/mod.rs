//! Noise control between the rules and the outbox: what turns a stream of events into
//! the notifications people want. Alerts (events with `status: firing | resolved`) have an
//! identity and a lifecycle; routes may group them, throttle events, mute them in time
//! windows; silences and inhibitions hold matching ones back. Everything held back is
//! counted by reason.

pub mod alerts;
pub mod deadlines;
pub mod engine;
pub mod explain;
pub mod groups;
pub mod keys;
pub mod matchers;
pub mod policy;
pub mod rows;
pub mod silences;
pub mod throttle;
pub mod time_intervals;
