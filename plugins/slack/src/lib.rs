//! The Slack sink: posts each message to a Slack channel through an incoming webhook.
//!
//! The sink's template is Slack's message payload written as YAML: `text` (mrkdwn;
//! the notification fallback when there are blocks), `blocks` (Block Kit: `header`,
//! `section` with `text` and `fields`, `context`, `divider`, ...) and any other field
//! Slack takes (`unfurl_links`, ...). The router escapes `&`, `<` and `>` in
//! interpolated values (the manifest's markup is `mrkdwn`).
//!
//! Before sending, the sink fits the payload to Slack's limits (see `format`): empty
//! headers, sections and fields are left out; `text` is cut at 40,000 characters and a
//! header at 150 with `…`; a section's text over 3,000 characters is split over
//! several sections; more than 50 blocks go out as several messages, in order. A retry
//! after a partial send posts only the parts Slack does not have yet.
//!
//! Slack answers in plain text: `ok` is delivered; 429 and 503 are retried after their
//! `Retry-After`; 408, other 5xx (`rollup_error`) and network errors are retried;
//! anything else (`invalid_payload`, `channel_not_found`, `invalid_token`, ...) fails
//! with Slack's text. The webhook URL is the secret: it never appears in a reason or a
//! log line.
//!
//! Settings: see [`Settings`].

mod client;
mod config;
mod format;

use alert_router_plugin::{Host, Message, Outcome, Progress, Sink, export_plugin};

pub use config::Settings;

use crate::client::Client;
use alert_router_plugin::http::Endpoint;

/// One Slack sink: one incoming webhook.
pub struct Slack {
    host: Host,
    endpoint: Endpoint,
    client: Client,
    progress: Progress,
}

impl Sink for Slack {
    type Settings = Settings;

    /// The webhook URL's checks, the same `create` makes.
    fn validate(settings: &Settings) -> Result<(), String> {
        settings.clone().validate().map(drop)
    }

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let endpoint = settings.validate()?;
        let client = Client::new(endpoint.clone())?;
        host.debug(&format!("posting to {}", endpoint.redacted()));
        Ok(Slack {
            host,
            endpoint,
            client,
            progress: Progress::default(),
        })
    }

    /// Posts the message's parts in order. If one fails after others went through,
    /// the ones posted are remembered by message id, and the retry sends the rest.
    fn deliver(&mut self, message: Message) -> Outcome {
        let built = match format::build(&message.payload) {
            Ok(built) => built,
            Err(e) => return Outcome::fail(e),
        };
        let resume = self.progress.resume(&message.id, &built.bodies);
        if resume.sent == 0 && message.attempt <= 1 {
            for note in &built.notes {
                let line = self
                    .endpoint
                    .redact(&format!("message {}: {note} (Slack's limits)", message.id));
                self.host.debug(&line);
            }
        }
        let client = &self.client;
        self.progress
            .send_rest(&message.id, &built.bodies, resume, |body| client.send(body))
    }
}

export_plugin!(
    Slack,
    name = "slack",
    markup = "mrkdwn",
    description = "Posts messages to a Slack channel through an incoming webhook, with Block Kit",
);

#[cfg(test)]
mod tests {
    #[test]
    fn the_webhook_url_is_the_one_secret_never_shown() {
        let plugin = alert_router_plugin::exported_plugin!().expect("a readable descriptor");
        assert_eq!(plugin.name, "slack");
        assert_eq!(plugin.markup(), Some("mrkdwn"));
        assert_eq!(plugin.secret_settings(), ["webhook_url"]);
    }
}
