//! The [`Sink`] trait a plugin implements, the [`Message`] it receives and the
//! [`Outcome`] it reports.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::Host;

/// A sink delivers rendered messages to one destination (a chat, a webhook, a file).
///
/// The router creates one value per configured sink with [`Sink::create`], calls
/// [`Sink::deliver`] once per message, and drops the value when the sink is removed,
/// reconfigured or the router stops. Between those calls the router owns everything
/// else: queueing, rate limiting, retries with backoff, dead letters and metrics. A
/// sink makes exactly one attempt per call and reports how it went; it never sleeps to
/// retry.
///
/// When each method runs:
/// - `validate` runs on any thread, with no sink, whenever the router checks a
///   configuration (`check`, startup, reload), and before every `create`.
/// - `create` runs on a router thread (never inside the router's async runtime), when a
///   configuration that names this sink is loaded. An `Err` refuses the settings: the
///   operator sees the message and the sink does not start.
/// - `deliver` runs on a thread dedicated to this sink, never concurrently with itself,
///   in the order messages were queued. A panic inside it is caught and reported as
///   [`Outcome::Fail`] with the panic message; the router keeps running.
/// - `Drop` runs once, after the last `deliver` returned. Stop and join any thread the
///   sink started: after it returns, calls through the [`Host`] handle fail with
///   [`HostErrorKind::Unavailable`](crate::HostErrorKind::Unavailable).
///
/// A whole plugin, with [`export_plugin!`](crate::export_plugin):
///
/// ```
/// use alert_router_plugin::{Host, Message, Outcome, Sink, export_plugin};
///
/// /// Shout's settings: the manifest's `settings` are generated from this type.
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// #[serde(deny_unknown_fields)]
/// struct Settings {
///     /// What goes before each message.
///     prefix: String,
/// }
///
/// struct Shout { host: Host, prefix: String }
///
/// impl Sink for Shout {
///     type Settings = Settings;
///     fn create(host: Host, settings: Settings) -> Result<Self, String> {
///         Ok(Shout { host, prefix: settings.prefix })
///     }
///     fn deliver(&mut self, message: Message) -> Outcome {
///         let text = message.payload["text"].as_str().unwrap_or_default();
///         self.host.info(&format!("{}{}", self.prefix, text.to_uppercase()));
///         Outcome::Ok
///     }
/// }
///
/// export_plugin!(Shout, name = "shout", markup = "none", description = "Shouts messages");
/// # fn main() {}
/// ```
pub trait Sink: Sized + Send + 'static {
    /// The sink's `settings` from router.yaml. Deserialized from JSON before `create`;
    /// a deserialization error refuses the settings with serde's message, so
    /// `#[serde(deny_unknown_fields)]` turns a typo into a clear error.
    type Settings: DeserializeOwned;

    /// Judges the settings without starting anything: what can be told from them alone
    /// (a URL that does not parse, a value out of range, a path that does not exist or
    /// cannot be read). An `Err` is the one-line reason, naming the setting
    /// (`settings.url: ...`). The router calls it from `check`, at startup and at every
    /// reload, before any `create`; the SDK calls it again before `create`, so `create`
    /// never sees settings it refuses. It must have no side effects (no socket bound, no
    /// file written, no thread started): it may run many times, from any thread, with no
    /// sink. What only running can tell (a port in use, a server that does not answer)
    /// belongs in `create`. By default every settings value serde accepts passes.
    fn validate(settings: &Self::Settings) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// Builds the sink from settings [`Sink::validate`] passed. Start background threads
    /// here. An `Err` refuses the settings too (for what only running can tell, e.g. a
    /// port in use).
    fn create(host: Host, settings: Self::Settings) -> Result<Self, String>;

    /// Makes one attempt at delivering `message`.
    fn deliver(&mut self, message: Message) -> Outcome;
}

/// One rendered message for one sink.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    /// Stable across attempts: use it as an idempotency key.
    pub id: String,
    /// The name of the sink in router.yaml.
    pub sink: String,
    /// 1 on the first attempt.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The sink's template rendered for this event, as JSON (for Telegram the
    /// `sendMessage` fields, for Discord the webhook body, ...).
    pub payload: serde_json::Value,
    /// The event as templates see it: `type`, `severity`, `time`, `id`, `labels` and its
    /// data fields.
    #[serde(default)]
    pub event: serde_json::Value,
}

fn first_attempt() -> u32 {
    1
}

/// How one delivery attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered.
    Ok,
    /// Not delivered, worth another attempt. `after` is the delay the upstream asked
    /// for (a 429's `Retry-After`): the whole sink pauses that long. `None` lets the
    /// router pick an exponential backoff with jitter.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Not delivered and never will be (the upstream refused the message itself).
    /// The message goes to the dead letters with `reason`.
    Fail { reason: String },
}

impl Outcome {
    /// A retry with the router's own backoff.
    pub fn retry(reason: impl Into<String>) -> Self {
        Outcome::Retry {
            after: None,
            reason: reason.into(),
        }
    }

    /// A retry no sooner than `after`, as the upstream asked.
    pub fn retry_after(after: Duration, reason: impl Into<String>) -> Self {
        Outcome::Retry {
            after: Some(after),
            reason: reason.into(),
        }
    }

    /// A permanent failure.
    pub fn fail(reason: impl Into<String>) -> Self {
        Outcome::Fail {
            reason: reason.into(),
        }
    }

    /// Says which part failed when a message goes out as several (`part 2 of 3: ...`);
    /// a message of one part, and a success, stay as they are.
    pub fn in_part(self, sent: usize, total: usize) -> Self {
        if total < 2 {
            return self;
        }
        let part = |reason: String| format!("part {} of {total}: {reason}", sent + 1);
        match self {
            Outcome::Retry { after, reason } => Outcome::Retry {
                after,
                reason: part(reason),
            },
            Outcome::Fail { reason } => Outcome::Fail {
                reason: part(reason),
            },
            Outcome::Ok => Outcome::Ok,
        }
    }
}
