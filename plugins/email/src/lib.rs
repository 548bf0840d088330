//! The email sink: sends each message as an email over SMTP.
//!
//! The sink's template gives `subject`, `text` (the plain part) and `html` (the HTML
//! part); with both parts the email is `multipart/alternative`, with one it is that part
//! alone. The manifest's markup is `html`: the router HTML-escapes every interpolated
//! value, which is what the HTML part needs; the subject and the plain part are decoded
//! back (`&amp; &lt; &gt; &quot;`) before sending. Every attempt at one message carries
//! the same `Message-ID: <message id@alert-router>`.
//!
//! One pooled SMTP transport per sink (STARTTLS, implicit TLS or plain, see
//! [`Settings`]). Answers: accepted is delivered; a 4xx reply, connection errors and
//! timeouts are retried; a 5xx reply fails with the server's reply text. The password
//! never appears in a log line or a reason.

mod body;
mod client;
mod config;

use alert_router_plugin::{Host, Message, Outcome, Sink, export_plugin};

pub use config::Settings;

use crate::client::Client;

/// One email sink: one SMTP server, one sender, a fixed list of recipients.
pub struct Email {
    client: Client,
}

impl Sink for Email {
    type Settings = Settings;

    /// Host, TLS mode, port, login, addresses and timeout, checked as `create` does.
    fn validate(settings: &Settings) -> Result<(), String> {
        settings.clone().validate().map(drop)
    }

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let config = settings.validate()?;
        host.debug(&format!(
            "sending mail through {} to {} recipient(s)",
            config.server(),
            config.to.len()
        ));
        Ok(Email {
            client: Client::new(config)?,
        })
    }

    fn deliver(&mut self, message: Message) -> Outcome {
        let config = self.client.config();
        match body::build(&message.payload, &message.id, &config.from, &config.to) {
            Ok(email) => self.client.send(email),
            Err(reason) => Outcome::fail(reason),
        }
    }
}

export_plugin!(
    Email,
    name = "email",
    markup = "html",
    description = "Sends each message as an email (plain text and HTML) over SMTP",
);

#[cfg(test)]
mod tests {
    #[test]
    fn the_password_is_the_one_secret_never_shown() {
        let plugin = alert_router_plugin::exported_plugin!().expect("a readable descriptor");
        assert_eq!(plugin.name, "email");
        assert_eq!(plugin.markup(), Some("html"));
        assert_eq!(plugin.secret_settings(), ["password"]);
    }
}
