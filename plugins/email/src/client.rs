//! The SMTP side: one pooled lettre transport per sink on the sink's own current-thread
//! tokio runtime, and [`classify`], the one place that says what the server's answer
//! means.

use alert_router_plugin::Outcome;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{self, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::runtime::Runtime;

use crate::config::{Config, Security};

/// How the server took one message, without lettre's types so [`classify`] can be
/// tested on its own.
#[derive(Debug)]
pub(crate) enum Answer {
    Sent,
    /// A 4xx reply: try again later.
    Transient(String),
    /// A 5xx reply: the server will never take this message.
    Permanent(String),
    /// No usable answer: connection refused, TLS, timeout, dropped connection.
    Unreachable(String),
    /// Our side could not go on (no authentication mechanism in common, ...): a
    /// settings problem that another attempt will not fix.
    Refused(String),
}

/// Sends messages to one SMTP server over a connection pool.
pub(crate) struct Client {
    /// Always `Some` until dropped: see the `Drop` impl.
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    runtime: Runtime,
    config: Config,
}

impl Client {
    pub(crate) fn new(config: Config) -> Result<Client, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the sink's runtime: {e}"))?;
        let builder = match config.security {
            Security::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
            }
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host),
            Security::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                config.host.as_str(),
            )),
        }
        .map_err(|e| {
            format!(
                "settings.host: cannot set up TLS for {:?}: {}",
                config.host,
                config.redact(&e.to_string())
            )
        })?;
        let mut builder = builder
            .port(config.port)
            .timeout(Some(config.timeout))
            .pool_config(PoolConfig::new().max_size(2));
        if let Some((user, password)) = &config.login {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        // The pool starts a cleanup task: it needs the runtime as the current one.
        let transport = {
            let _entered = runtime.enter();
            builder.build()
        };
        Ok(Client {
            transport: Some(transport),
            runtime,
            config,
        })
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Makes one attempt at sending `message`.
    pub(crate) fn send(&self, message: lettre::Message) -> Outcome {
        let Some(transport) = &self.transport else {
            return Outcome::retry("the email sink is shutting down");
        };
        let result = self.runtime.block_on(transport.send(message));
        let answer = match result {
            Ok(_) => Answer::Sent,
            Err(e) => answer_for(&e),
        };
        match classify(&answer) {
            Outcome::Ok => Outcome::Ok,
            Outcome::Retry { after, reason } => Outcome::Retry {
                after,
                reason: self.context(&reason),
            },
            Outcome::Fail { reason } => Outcome::fail(self.context(&reason)),
        }
    }

    /// Names the server and keeps the password out.
    fn context(&self, reason: &str) -> String {
        self.config
            .redact(&format!("{reason}; SMTP server {}", self.config.server()))
    }
}

impl Drop for Client {
    /// Dropping the pool spawns its shutdown task: without the runtime as the current
    /// one, that spawn panics.
    fn drop(&mut self) {
        let _entered = self.runtime.enter();
        drop(self.transport.take());
    }
}

/// Sorts a lettre error into an [`Answer`], its text including the server's reply.
fn answer_for(error: &smtp::Error) -> Answer {
    let text = describe(error);
    if error.is_permanent() {
        Answer::Permanent(text)
    } else if error.is_transient() {
        Answer::Transient(text)
    } else if error.is_client() {
        Answer::Refused(text)
    } else {
        Answer::Unreachable(text)
    }
}

/// An error as one line with its causes.
fn describe(error: &smtp::Error) -> String {
    let mut text = alert_router_plugin::error_chain(error);
    if error.is_timeout() && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What an answer means. The only place that decides:
/// - sent: delivered;
/// - a 4xx reply, and no answer at all (connection, TLS, timeout): retry;
/// - a 5xx reply: fail, with the server's reply text;
/// - a refusal on our side (no common authentication mechanism): fail.
pub(crate) fn classify(answer: &Answer) -> Outcome {
    match answer {
        Answer::Sent => Outcome::Ok,
        Answer::Transient(text) => {
            Outcome::retry(format!("the SMTP server deferred the message: {text}"))
        }
        Answer::Unreachable(text) => {
            Outcome::retry(format!("no answer from the SMTP server: {text}"))
        }
        Answer::Permanent(text) => {
            Outcome::fail(format!("the SMTP server refused the message: {text}"))
        }
        Answer::Refused(text) => Outcome::fail(format!(
            "cannot talk to the SMTP server: {text}; check settings.tls, settings.username and settings.password"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_maps_to_one_outcome() {
        assert_eq!(classify(&Answer::Sent), Outcome::Ok);
        let deferred = classify(&Answer::Transient(
            "transient error (451): 4.3.0 try later".into(),
        ));
        assert!(
            matches!(&deferred, Outcome::Retry { after: None, reason } if reason.contains("451")),
            "{deferred:?}"
        );
        let down = classify(&Answer::Unreachable("Connection error: refused".into()));
        assert!(
            matches!(down, Outcome::Retry { after: None, .. }),
            "{down:?}"
        );
        let refused = classify(&Answer::Permanent(
            "permanent error (550): 5.1.1 no such user".into(),
        ));
        assert_eq!(
            refused,
            Outcome::fail(
                "the SMTP server refused the message: permanent error (550): 5.1.1 no such user"
            )
        );
        let ours = classify(&Answer::Refused("no compatible mechanism".into()));
        assert!(
            matches!(&ours, Outcome::Fail { reason } if reason.contains("settings.password")),
            "{ours:?}"
        );
    }
}
