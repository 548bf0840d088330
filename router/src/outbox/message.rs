//! What the outbox holds and hands out: a new message and the batch it is written in,
//! a stored message as a worker reads it, a dead letter as listings show it, which dead
//! letters a command means, and counts of waiting messages and bytes.

use std::sync::Arc;

use serde::Serialize;

/// A rendered message for one sink, or one that is dead on arrival (`error` set).
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub sink: String,
    /// `<event id>:<sink>`: stable across attempts and restarts.
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// The route that sent it, and the template it was rendered with: a dead letter
    /// that was never rendered is rendered again from them when retried.
    pub route: String,
    pub template: String,
    /// The rendered template as JSON text; `None` when rendering failed.
    pub payload: Option<Arc<str>>,
    /// The event as templates saw it, as JSON text.
    pub event: Arc<str>,
    /// Set for a message that is dead before any attempt.
    pub error: Option<String>,
}

impl NewMessage {
    pub fn bytes(&self) -> u64 {
        (self.payload.as_ref().map_or(0, |p| p.len()) + self.event.len()) as u64
    }
}

/// What one accepted batch writes, in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    pub messages: Vec<NewMessage>,
    /// Event ids to remember for the dedup window.
    pub seen: Vec<String>,
    /// Alerts, held events and group timers (noise control), committed with the rest.
    pub notify: crate::notify::rows::Changes,
}

/// A message read back for delivery.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: i64,
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: Arc<str>,
    pub event: Arc<str>,
    /// When it was accepted, Unix milliseconds.
    pub created_ms: i64,
    /// Attempts made before (a restart, or the sink was reconfigured).
    pub attempts: u32,
    /// Of those, the ones that count against `max_attempts`.
    pub failures: u32,
    /// Of those, the ones that ended in a crash (`max_crashes`).
    pub crashes: u32,
    /// Why the last attempt did not deliver it.
    pub error: Option<String>,
}

/// How a message's attempts went: what the outbox keeps of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Attempts made, whatever their end.
    pub attempts: u32,
    /// Of those, the ones that count against `max_attempts`.
    pub failures: u32,
    /// Of those, the ones that ended in a crash.
    pub crashes: u32,
}

impl Stored {
    pub fn bytes(&self) -> u64 {
        (self.payload.len() + self.event.len()) as u64
    }

    /// How its attempts went so far.
    pub fn tally(&self) -> Tally {
        Tally {
            attempts: self.attempts,
            failures: self.failures,
            crashes: self.crashes,
        }
    }

    /// From a row of `seq, id, event_id, event_type, payload, event, created, attempts,
    /// failures, crashes, error`.
    pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
        Ok(Stored {
            seq: row.get(0)?,
            id: row.get(1)?,
            event_id: row.get(2)?,
            event_type: row.get(3)?,
            payload: row.get::<_, String>(4)?.into(),
            event: row.get::<_, String>(5)?.into(),
            created_ms: row.get(6)?,
            attempts: row.get::<_, i64>(7)?.max(0) as u32,
            failures: row.get::<_, i64>(8)?.max(0) as u32,
            crashes: row.get::<_, i64>(9)?.max(0) as u32,
            error: row.get(10)?,
        })
    }
}

/// A dead letter as listed by the API and the CLI.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The outbox's own number for it: what `retry` and `drop` take besides ids.
    pub seq: i64,
    pub sink: String,
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub route: String,
    pub attempts: u32,
    pub error: String,
    /// When it died, RFC 3339.
    pub time: String,
    /// The rendered payload; null when it was never rendered.
    pub payload: Option<serde_json::Value>,
    pub event: serde_json::Value,
    #[serde(skip)]
    pub template: String,
    #[serde(skip)]
    pub event_text: String,
    #[serde(skip)]
    pub payload_text: Option<String>,
}

/// Which dead letters a `retry` or `drop` is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Message ids (`<event id>:<sink>`), event ids or seq numbers.
    Ids(Vec<String>),
    Sink(String),
    All,
}

impl Selector {
    /// The SQL condition (on top of `state = dead`) and its parameters.
    pub(super) fn condition(&self) -> (String, Vec<String>) {
        match self {
            Selector::All => (String::new(), Vec::new()),
            Selector::Sink(sink) => (" AND sink = ?1".into(), vec![sink.clone()]),
            Selector::Ids(ids) => {
                let mut params = Vec::new();
                let mut any = Vec::new();
                for id in ids {
                    params.push(id.clone());
                    let n = params.len();
                    any.push(format!(
                        "id = ?{n} OR event_id = ?{n} OR CAST(seq AS TEXT) = ?{n}"
                    ));
                }
                if any.is_empty() {
                    (" AND 0".into(), params)
                } else {
                    (format!(" AND ({})", any.join(" OR ")), params)
                }
            }
        }
    }
}

/// How a dead letter goes back into the queue.
#[derive(Debug)]
pub struct Requeue {
    pub seq: i64,
    /// A payload rendered again (the letter had none), or `None` to keep its own.
    pub payload: Option<String>,
}

/// Messages and bytes waiting for delivery.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Count {
    pub messages: u64,
    pub bytes: u64,
}

impl Count {
    pub fn add(&mut self, messages: u64, bytes: u64) {
        self.messages += messages;
        self.bytes += bytes;
    }

    pub(super) fn sub(&mut self, messages: u64, bytes: u64) {
        self.messages = self.messages.saturating_sub(messages);
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}
