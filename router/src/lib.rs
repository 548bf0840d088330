//! alert-router: routes events to people.
//!
//! Producers post events (trades, errors, daily summaries, any custom type) over HTTP.
//! YAML rules decide which sinks receive each one, minijinja templates decide what
//! each sink says, and sink plugins, loaded as shared libraries through a C ABI,
//! deliver it. See the README for the outside contract; this crate is the daemon.
//!
//! Modules follow the data:
//!
//! - [`api`] (HTTP) and [`ingest`] (bodies, dedup) take events in, [`alertmanager`]
//!   Alertmanager's notifications; [`event`] validates them;
//! - [`pipeline`] holds the snapshot in force ([`config`], [`rules`], [`render`]'s
//!   templates, the sinks) and moves each event through it, feeding [`state`];
//!   [`notify`] decides per route whether a message goes now, waits for its group or a
//!   time window, or is held back (silences, inhibition, throttles), on [`clock`]'s time;
//! - [`outbox`] keeps every accepted message on disk until it is delivered or dead (it
//!   and [`state`] open their databases through the `alert-router-sqlite` crate);
//! - [`dispatch`] delivers per sink through [`plugins`] (the host side of the C ABI);
//! - [`reload`] swaps in a new snapshot when files change, [`restart`] says what only a
//!   restart applies; [`metrics`] and
//!   `/v1/status` report; [`diag`] is how every file problem is said;
//! - [`cli`] is the binary's commands, [`demo`] the simulated trading day,
//!   [`am_import`] the conversion of an Alertmanager configuration. Producers'
//!   Rust client is the `alert-router-client` crate, which links none of this one.

pub mod alertmanager;
pub mod am_import;
pub mod api;
pub mod cli;
pub mod clock;
pub mod comparison;
pub mod config;
pub mod demo;
pub mod derive;
pub mod diag;
pub mod dispatch;
pub mod domains;
pub mod event;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod pipeline;
pub mod plugins;
pub mod reload;
pub mod render;
pub mod restart;
pub mod rules;
pub mod simulate;
#[cfg(test)]
mod testing;
pub mod tz;
