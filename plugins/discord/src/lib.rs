//! The Discord sink: posts each message to a Discord channel through a webhook, as
//! rich embeds.
//!
//! The sink's template is the Execute Webhook body written as YAML (`content`,
//! `embeds` with `title`, `description`, `color`, `fields`, `footer`, `timestamp`, ...).
//! Colors may be names (`green`, `dark_red`), severities (`info`, `warning`, `error`,
//! `critical`), `profit` / `loss`, `#rrggbb` or integers. Before sending, the sink fits
//! the body to every limit Discord has (see `format`), so a long event never earns a
//! 400: decoration is cut with `…`, message text is split over several embeds and
//! messages, sent in order. Every message carries `allowed_mentions` from the
//! `mentions` setting, `{"parse": []}` by default, so an `@everyone` inside an event
//! pings nobody.
//!
//! Rate limits are kept before Discord has to enforce them: the sink reads
//! `X-RateLimit-Remaining` / `X-RateLimit-Reset-After`, honours a 429's `retry_after`
//! (and a `global` one for every webhook on that host), and stays within 5 requests per
//! 2 s and 30 per minute per webhook. When it must wait, `deliver` sends nothing and
//! returns a retry after the wait, which pauses the sink in the router.
//!
//! Settings: see [`Settings`]. The webhook token never appears in a log line or a
//! reason.

mod client;
mod config;
mod format;
mod ratelimit;

/// Turns a rendered payload (JSON) into the webhook bodies it would post, as `deliver`
/// does, and returns how many: the entry point of the `discord_format` fuzz target
/// (`fuzz/`), which checks that no payload makes the formatter panic.
#[doc(hidden)]
pub fn bodies_for_fuzzing(payload_json: &[u8]) -> usize {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(payload_json) else {
        return 0;
    };
    let defaults = format::Defaults {
        username: None,
        avatar_url: None,
        mentions: Vec::new(),
    };
    format::build(&payload, &defaults).map_or(0, |built| built.bodies.len())
}

use alert_router_plugin::http::Endpoint;
use alert_router_plugin::{Host, Message, Outcome, Progress, Sink, export_plugin};

pub use config::Settings;

use crate::client::Client;
use crate::format::{Defaults, Note};

/// One Discord sink: one webhook.
pub struct Discord {
    host: Host,
    endpoint: Endpoint,
    client: Client,
    defaults: Defaults,
    progress: Progress,
}

impl Sink for Discord {
    type Settings = Settings;

    /// The webhook URL, thread id, username and avatar URL, checked as `create` does.
    fn validate(settings: &Settings) -> Result<(), String> {
        settings.clone().validate().map(drop)
    }

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let config = settings.validate()?;
        let client = Client::new(config.endpoint.clone(), &config.host)?;
        host.debug(&format!("posting to {}", config.endpoint.redacted()));
        Ok(Discord {
            host,
            endpoint: config.endpoint,
            client,
            defaults: Defaults {
                username: config.username,
                avatar_url: config.avatar_url,
                mentions: config.mentions,
            },
            progress: Progress::default(),
        })
    }

    /// Posts the message's bodies in order. If one fails after others went through,
    /// the ones delivered are remembered by message id, and the retry sends the rest.
    fn deliver(&mut self, message: Message) -> Outcome {
        let built = match format::build(&message.payload, &self.defaults) {
            Ok(built) => built,
            Err(e) => return Outcome::fail(e.to_string()),
        };
        let resume = self.progress.resume(&message.id, &built.bodies);
        if resume.changed {
            self.log_warn(&format!(
                "message {}: its payload changed since part of it was sent; sending it again from the start",
                message.id
            ));
        }
        if resume.sent == 0 && message.attempt <= 1 {
            for note in &built.notes {
                let line = format!("message {}: {note}", message.id);
                match note {
                    Note::Split { .. } => self.host.debug(&self.endpoint.redact(&line)),
                    _ => self.log_warn(&line),
                }
            }
        }
        let client = &mut self.client;
        self.progress
            .send_rest(&message.id, &built.bodies, resume, |body| client.send(body))
    }
}

impl Discord {
    fn log_warn(&self, line: &str) {
        self.host.warn(&self.endpoint.redact(line));
    }
}

export_plugin!(
    Discord,
    name = "discord",
    markup = "markdown",
    description = "Posts messages to a Discord channel through a webhook, as rich embeds",
);

#[cfg(test)]
mod tests {
    #[test]
    fn the_webhook_url_is_the_one_secret_never_shown() {
        let plugin = alert_router_plugin::exported_plugin!().expect("a readable descriptor");
        assert_eq!(plugin.name, "discord");
        assert_eq!(plugin.markup(), Some("markdown"));
        assert_eq!(plugin.secret_settings(), ["webhook_url"]);
    }
}
