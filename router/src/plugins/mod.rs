//! The host side of the plugin ABI (`plugin-api/include/alert_router_plugin.h`): finds
//! sink plugins, loads them, checks what they declare, and runs instances of them.
//!
//! The way through, in the order a sink meets it:
//!
//! 1. [`Catalog::load`] finds `lib<name>.so` in the configured plugin directories (then the
//!    executable's own directory), loads it from a fresh private copy so the file can be
//!    replaced while the router runs, and checks the descriptor and manifest. An unchanged
//!    file is loaded once and shared as an `Arc<Plugin>`.
//! 2. [`Plugin::validate`] asks the plugin whether it takes one sink's settings, without
//!    side effects (`check`, startup and reload all ask, before any `create`).
//! 3. [`Plugin::create`] hands one sink's settings to the plugin, with the host's
//!    [`HostServices`] behind the `ar_host` table, and returns an [`Instance`].
//! 4. [`Instance::deliver`] makes one delivery attempt and says how it went
//!    ([`Delivery`]); [`Instance::send_health_to`] passes on what the plugin says about
//!    its health between deliveries; dropping the instance calls the plugin's `destroy`.
//!
//! `create`, `deliver` and dropping an [`Instance`] call plugin code that may block: call
//! them from a dedicated thread or `spawn_blocking`, never on the async runtime.
//!
//! With `isolation: process` ([`Plugin::create_isolated`]) the instance lives in a child
//! process (`alert-router plugin-host`, see `process/`) behind the same [`Instance`].
//!
//! A library that has had an instance, or whose `validate` ran, is never unloaded (see
//! `library.rs` for why).

mod catalog;
mod elf;
mod error;
mod host;
mod instance;
mod library;
mod manifest;
mod plugin;
mod process;
mod trust;

pub use catalog::Catalog;
pub use error::PluginError;
pub use host::{Health, HealthListener, HostServices};
pub use instance::{Capture, Delivery, Instance};
pub use manifest::{Manifest, Markup, Setting, SettingProblem, SettingType, UnknownMarkup};
pub use plugin::Plugin;
pub use process::{HostArgs, ProcessOptions, serve as serve_plugin_host};
