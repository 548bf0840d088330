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
    manifest = r#"{
  "markup": "html",
  "description": "Sends each message as an email (plain text and HTML) over SMTP",
  "settings": {
    "host": {"type": "string", "required": true, "description": "the SMTP server, e.g. smtp.example.com"},
    "port": {"type": "integer", "description": "default 587 for starttls, 465 for tls, 25 for none"},
    "tls": {"type": "string", "description": "starttls (default), tls or none"},
    "username": {"type": "string", "description": "the login, with password"},
    "password": {"type": "string", "secret": true, "description": "the password for username"},
    "from": {"type": "string", "required": true, "description": "the sender: a@b.c or \"Name <a@b.c>\""},
    "to": {"type": "array", "required": true, "description": "the recipients: a list of addresses"},
    "timeout": {"type": ["string", "number"], "description": "longest wait for any one server answer, e.g. 30s (default), or a number of seconds"}
  }
}"#
);

#[cfg(test)]
mod tests {
    #[test]
    fn the_manifest_describes_every_setting_with_html_markup_and_a_secret_password() {
        let plugin = alert_router_plugin::exported_plugin!().expect("a readable descriptor");
        assert_eq!(plugin.name, "email");
        assert_eq!(plugin.markup(), Some("html"));
        assert_eq!(
            plugin.settings(),
            [
                "from", "host", "password", "port", "timeout", "tls", "to", "username"
            ]
        );
        assert_eq!(plugin.secret_settings(), ["password"]);
        assert_eq!(plugin.required_settings(), ["from", "host", "to"]);
    }
}
