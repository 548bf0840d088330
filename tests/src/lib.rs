//! Harness for alert-router's end-to-end tests: start the real binary on a config,
//! wait for it, talk to it; and fake upstreams (Telegram, Discord, ...) on 127.0.0.1
//! that speak the real protocols and reject what the real services reject.

pub mod harness;

pub mod browser;
pub mod fake_discord;
pub mod fake_slack;
pub mod fake_telegram;
pub mod fake_webhook;
pub mod file_clock;
pub mod host_double;
pub mod shipped;
pub mod templates;
