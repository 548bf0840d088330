//! The dashboard sink: a live web dashboard of what the router sees, served by the
//! plugin itself. It replaces the original module's Streamlit dashboard: header
//! metrics, the equity curve with a time range, the portfolio distribution, positions,
//! recent trades with filters, performance and risk metrics, the router's status; plus a
//! live feed of routed events and each sink's health; and noise control: firing alerts,
//! silences, and what the router held back and why.
//!
//! Settings are documented on [`Settings`]. Data comes from two places: the router's
//! state, status, alerts and silences through the host's `query` callback, asked when a
//! page (or a script) loads an `/api/...` endpoint and, for status and noise control,
//! every two seconds for each open page; and the messages delivered to this sink, which
//! become feed items pushed to open pages by server-sent events. The page is one HTML
//! file with a small hand-written script and stylesheet, all embedded in the library;
//! the charts are SVG drawn by plotters. Nothing is fetched from elsewhere.
//!
//! - `config`: settings, defaults, validation (a token is required off loopback).
//! - `feed`: a delivered message as a feed item, and the bounded feed.
//! - `charts`: the equity curve and the distribution donut as SVG.
//! - `figures`: the header's figures, one source (computed or reported) per figure.
//! - `noise`: the noise-control section: firing alerts, current silences, and the
//!   messages held back by reason.
//! - `hub`: what the handlers share: the instances using a server (whose host the router
//!   is asked through), the feed, the live channel to open pages.
//! - `server`: the server's runtime, and how instances share it across reloads.
//! - `api`: the routes, the token check, the event stream.

mod api;
pub mod charts;
pub mod config;
pub mod feed;
mod figures;
mod hub;
mod noise;
mod server;

use std::sync::Arc;

use alert_router_plugin::{Host, Level, Message, Outcome, Sink, export_plugin};

pub use config::Settings;

use crate::config::Config;
use crate::server::Lease;

/// A dashboard sink instance: a lease on the server for its listen address.
pub struct Dashboard {
    lease: Lease,
}

impl Sink for Dashboard {
    type Settings = Settings;

    /// The listen address (off loopback only with a token), title, theme, token and
    /// limits, checked as `create` does; binding the port is `create`'s.
    fn validate(settings: &Settings) -> Result<(), String> {
        Config::from_settings(settings.clone())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let config = Config::from_settings(settings).map_err(|e| e.to_string())?;
        let (lease, line) = server::acquire(config, Arc::new(host))?;
        host.log(Level::Info, &line);
        Ok(Dashboard { lease })
    }

    /// Adds the message to the live feed and pushes it to open pages. Never retried:
    /// a page that is not open gets it from the feed when it opens.
    fn deliver(&mut self, message: Message) -> Outcome {
        self.lease.hub().deliver(&message);
        Outcome::Ok
    }
}

export_plugin!(
    Dashboard,
    name = "dashboard",
    markup = "none",
    description = "Live web dashboard: portfolio, equity curve, positions, trades, metrics, a live event feed, sink health, and noise control (firing alerts, silences, messages held back)",
);

#[cfg(test)]
mod tests {
    #[test]
    fn the_token_is_the_one_secret_never_shown() {
        let plugin = alert_router_plugin::exported_plugin!().expect("a readable descriptor");
        assert_eq!(plugin.name, "dashboard");
        assert_eq!(plugin.markup(), Some("none"));
        assert_eq!(plugin.secret_settings(), ["token"]);
    }
}
