//! The alert-router sink plugin ABI, and a Rust SDK for writing plugins against it.
//!
//! A plugin is a shared library that the router loads at run time to deliver messages
//! somewhere: a chat, a webhook, a file. The ABI is plain C, defined by
//! `include/alert_router_plugin.h` in this crate, so plugins can be written in any
//! language that exports C functions. This crate mirrors the header in [`ffi`] and
//! wraps it in a safe API:
//!
//! - implement [`Sink`] (settings, `create`, `deliver`);
//! - call the router back through [`Host`] (`log`, `query`, `emit`);
//! - export it with [`export_plugin!`], which generates the C entry points and catches
//!   every panic at the boundary.
//!
//! Build the crate as a `cdylib` whose library name is the plugin's name:
//!
//! ```toml
//! [lib]
//! name = "shout"            # gives libshout.so
//! crate-type = ["cdylib"]
//! ```
//!
//! and drop `libshout.so` into one of the router's plugin directories. A running
//! router picks it up on its next reload. See [`Sink`] for a complete plugin.

pub mod export;
pub mod ffi;
mod host;
mod sink;

pub use host::{Host, Level};
pub use sink::{Message, Outcome, Sink};
