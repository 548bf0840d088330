//! The generic webhook sink: sends each message as JSON to any HTTP endpoint.
//!
//! The sink's template is the JSON body itself (`templates/webhook/default.yaml` sends
//! the whole event plus `rule` and `sink`). Every request carries
//! `Content-Type: application/json` and `Idempotency-Key: <message id>`, the same on
//! every attempt, so a receiver can drop a repeat. With `secret` set it also carries
//! `X-Alert-Router-Timestamp: <unix seconds>` and
//! `X-Alert-Router-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
//!
//! Answers: 2xx is delivered; 429 and 503 are retried after their `Retry-After`
//! (seconds or an HTTP date); 408, other 5xx, network errors and timeouts are retried
//! with the router's backoff; anything else fails with the first 200 characters of the
//! body. Redirects are not followed.
//!
//! Settings: see [`Settings`]. The URL, the header values and the secret never appear
//! in a log line or a reason.

mod client;
mod config;
mod sign;

use alert_router_plugin::{Host, Message, Outcome, Sink, export_plugin};

pub use config::Settings;

use crate::client::Client;

/// One webhook sink: one endpoint.
pub struct Webhook {
    client: Client,
}

impl Sink for Webhook {
    type Settings = Settings;

    /// The URL, method, headers, timeout and secret, checked as `create` does.
    fn validate(settings: &Settings) -> Result<(), String> {
        settings.clone().validate().map(drop)
    }

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let config = settings.validate()?;
        host.debug(&format!(
            "sending {} to {}{}",
            config.method,
            config.endpoint.redacted(),
            if config.secret.is_some() {
                ", signed"
            } else {
                ""
            }
        ));
        Ok(Webhook {
            client: Client::new(config)?,
        })
    }

    fn deliver(&mut self, message: Message) -> Outcome {
        match serde_json::to_vec(&message.payload) {
            Ok(body) => self.client.send(&message.id, body),
            // A `Value` always serializes; kept as a failure rather than a panic.
            Err(e) => Outcome::fail(format!("cannot write the payload as JSON: {e}")),
        }
    }
}

export_plugin!(
    Webhook,
    name = "webhook",
    markup = "none",
    description =
        "Sends each message as JSON to an HTTP endpoint, optionally signed with HMAC-SHA256",
);

#[cfg(test)]
mod tests {
    #[test]
    fn the_url_the_headers_and_the_signing_key_are_never_shown() {
        let plugin = alert_router_plugin::exported_plugin!().expect("a readable descriptor");
        assert_eq!(plugin.name, "webhook");
        assert_eq!(plugin.markup(), Some("none"));
        assert_eq!(plugin.secret_settings(), ["headers", "secret", "url"]);
    }
}
