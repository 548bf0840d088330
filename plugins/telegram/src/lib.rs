//! The Telegram sink: a bot that sends the router's notifications to chats and answers
//! commands (`/status`, `/portfolio`, `/mute 30m`, `/silence type=error 2h`, ...) by long
//! polling.
//!
//! Settings are documented on [`Settings`]. The plugin runs its own tokio runtime
//! (one worker thread) for the Bot API client and the polling loop; `deliver` hands
//! each message to it and waits for the outcome. Dropping the sink stops and joins
//! everything it started.
//!
//! - `config`: settings, defaults, validation; [`config::redact`] keeps the token out of text.
//! - `format`: the payload, Telegram's limits, splitting, the plain-text fallback.
//! - `pace`: Telegram's per-chat, per-group and overall limits.
//! - `client`: the Bot API client and `verdict`, the one function that maps every
//!   answer to retry, plain-text resend or fail.
//! - `notify`: one notification to every chat, remembering which chats got it.
//! - `polling`: the long-poll loop: `getUpdates`, the offset, who may ask what.
//! - `answers`: each command's answer (data and template), and the end-of-mute line.
//! - `silences`: `/silence`, `/silences`, `/unsilence`: the router's silences, which hold
//!   events back from every sink (through `host.request`).
//! - `health`: without commands, the start-up `getMe` that shows a bad token or an
//!   unreachable Bot API in the router's status before any notification does.
//! - `mute`, `state`: the mute (this bot's notifications only), and what survives
//!   reloads and restarts.
//! - `duration`: durations as commands take them (`30m`, `1h30m`).

mod answers;
mod client;
mod commands;
pub mod config;
mod duration;
pub mod format;
mod health;
mod mute;
mod notify;
mod pace;
mod polling;
mod silences;
mod state;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alert_router_plugin::{Host, Level, Message, Outcome, Sink, export_plugin};
use tokio::sync::{Notify, watch};

pub use config::Settings;

use crate::client::Client;
use crate::config::Config;
use crate::pace::Pacer;
use crate::state::StateStore;

/// How long dropping the sink waits for its tasks to finish (the polling loop confirms
/// the last offset to Telegram on its way out).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A Telegram sink instance.
pub struct Telegram {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What the delivery path and the background tasks share.
pub(crate) struct Shared {
    pub host: Host,
    pub config: Config,
    pub client: Client,
    pub state: StateStore,
    pub pacer: Mutex<Pacer>,
    pub stats: Stats,
    /// Woken whenever the mute changes, so the expiry watch re-reads it.
    pub mute_changed: Notify,
    pub progress: Mutex<notify::Progress>,
}

impl Shared {
    /// Logs through the router with the token redacted, whatever the text holds.
    pub fn log(&self, level: Level, message: &str) {
        self.host
            .log(level, &config::redact(&self.config.token, message));
    }

    pub fn error(&self, message: &str) {
        self.log(Level::Error, message)
    }

    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message)
    }

    pub fn info(&self, message: &str) {
        self.log(Level::Info, message)
    }

    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message)
    }
}

/// Counters shown by `/stats`.
#[derive(Debug)]
pub(crate) struct Stats {
    pub sent: AtomicU64,
    pub commands: AtomicU64,
    pub refused: AtomicU64,
    pub errors: AtomicU64,
    pub held: AtomicU64,
    pub started: u64,
}

impl Stats {
    fn new() -> Self {
        Stats {
            sent: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            held: AtomicU64::new(0),
            started: mute::unix_now(),
        }
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let now = mute::unix_now();
        serde_json::json!({
            "messages_sent": self.sent.load(Ordering::Relaxed),
            "commands_received": self.commands.load(Ordering::Relaxed),
            "commands_refused": self.refused.load(Ordering::Relaxed),
            "errors": self.errors.load(Ordering::Relaxed),
            "notifications_held": self.held.load(Ordering::Relaxed),
            "started_at": rfc3339(self.started),
            "uptime_seconds": now.saturating_sub(self.started),
        })
    }
}

/// Unix seconds as RFC 3339, the form templates' `datetime` filter reads.
pub(crate) fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl Sink for Telegram {
    type Settings = Settings;

    /// The token's form, chats, admins, API URL, modes and rate limits, checked as
    /// `create` does; the bot itself is asked (getMe) only once it runs.
    fn validate(settings: &Settings) -> Result<(), String> {
        Config::from_settings(settings.clone())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let config = Config::from_settings(settings).map_err(|e| e.to_string())?;
        let client = Client::new(&config, host)?;
        let (state, warning) = StateStore::open(config.bot_id, config.state_dir.as_deref())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("telegram-sink")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Telegram sink's runtime: {e}"))?;
        let shared = Arc::new(Shared {
            host,
            pacer: Mutex::new(Pacer::new(config.rate_limits)),
            client,
            state,
            stats: Stats::new(),
            mute_changed: Notify::new(),
            progress: Mutex::new(notify::Progress::default()),
            config,
        });
        if let Some(warning) = warning {
            shared.warn(&warning);
        }
        let (shutdown, stop) = watch::channel(false);
        let mut tasks = vec![runtime.spawn(answers::watch_mute(shared.clone(), stop.clone()))];
        // Either way a getMe at start tells the router whether the bot works.
        if shared.config.commands {
            tasks.push(runtime.spawn(polling::poll(shared.clone(), stop)));
        } else {
            tasks.push(runtime.spawn(health::check(shared.clone(), stop)));
        }
        Ok(Telegram {
            shared,
            runtime: Some(runtime),
            shutdown,
            tasks,
        })
    }

    fn deliver(&mut self, message: Message) -> Outcome {
        match self.wait(notify::deliver(self.shared.clone(), message)) {
            Some(outcome) => outcome,
            None => Outcome::fail("the Telegram sink's delivery task stopped unexpectedly"),
        }
    }
}

impl Telegram {
    /// Runs `future` on the sink's runtime and waits for it from this (non-async)
    /// thread. Works whether or not the caller is itself inside some tokio runtime.
    fn wait<F>(&self, future: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self.runtime.as_ref()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(future.await);
        });
        // A panic in the task drops `tx`, which ends the wait with `None`.
        rx.recv().ok()
    }
}

impl Drop for Telegram {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let tasks = std::mem::take(&mut self.tasks);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            for task in tasks {
                let _ = task.await;
            }
            let _ = tx.send(());
        });
        if rx.recv_timeout(SHUTDOWN_GRACE).is_err() {
            self.shared
                .warn("the polling loop did not stop in time; stopping it mid-request");
        }
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

export_plugin!(
    Telegram,
    name = "telegram",
    markup = "html",
    description = "Telegram bot: sends notifications to chats and answers commands such as /status",
);

#[cfg(test)]
mod tests {
    #[test]
    fn the_bot_token_is_the_one_secret_never_shown() {
        let plugin = alert_router_plugin::exported_plugin!().expect("a readable descriptor");
        assert_eq!(plugin.name, "telegram");
        assert_eq!(plugin.markup(), Some("html"));
        assert_eq!(plugin.secret_settings(), ["bot_token"]);
    }
}
