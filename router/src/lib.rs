//! alert-router: routes events to people.
//!
//! Producers post events (trades, errors, daily summaries, any custom type) over HTTP.
//! YAML rules decide which sinks receive each one, minijinja templates decide what
//! each sink says, and sink plugins, loaded as shared libraries through a C ABI,
//! deliver it. See the README for the outside contract; this crate is the daemon.
//!
//! Modules follow the data: [`event`] → [`config`] → [`rules`] → [`render`] →
//! [`dispatch`] → [`plugins`], with [`api`] in front and [`cli`] on top.

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod diag;
pub mod dispatch;
pub mod event;
pub mod ingest;
pub mod metrics;
pub mod pipeline;
pub mod plugins;
pub mod reload;
pub mod render;
pub mod rules;
pub mod state;
