//! What noise control keeps in the outbox's database, beside the messages and in the same
//! transactions: the alerts, the events held for a group or a time window, and each
//! group's timers. An event held back is on disk before its producer hears `202`, and a
//! group's notification is written in the same commit that releases what it sent, so a
//! crash neither loses nor repeats a held event.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One alert (notify/alerts.rs).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub fingerprint: String,
    pub version: i64,
    pub status: String,
    pub starts_ms: i64,
    pub ends_ms: Option<i64>,
    pub updated_ms: i64,
    pub count: u64,
    pub resolve_timeout_ms: i64,
    pub route: String,
    pub event: Arc<str>,
}

/// One event held for a group or until a time window ends.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldRow {
    pub id: i64,
    pub route: String,
    pub group_key: String,
    pub fingerprint: String,
    /// `firing`, `resolved`, or `event` (not an alert: sent once).
    pub status: String,
    pub event: Arc<str>,
    pub at_ms: i64,
    /// Its group's last notification included it (a firing alert stays until resolved).
    pub notified: bool,
}

/// A group's definition and timers, as JSON in the `groups` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// The `group_by` keys' values.
    pub values: Vec<(String, String)>,
    pub sinks: Vec<String>,
    pub template: Option<String>,
    pub wait_ms: i64,
    pub interval_ms: i64,
    pub repeat_ms: i64,
    pub send_resolved: bool,
    pub created_ms: i64,
    pub next_ms: i64,
    pub last_notify_ms: Option<i64>,
    /// Set for the summary of a time window (`mode: delay`): the window's name.
    pub window: Option<String>,
    /// Its route is gone or groups differently since a reload: it says everything it
    /// holds at its next look, and closes.
    #[serde(default)]
    pub closing: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub route: String,
    pub group_key: String,
    pub state: GroupState,
}

/// Everything noise control writes with one batch (an accepted request, or a group's
/// notification).
#[derive(Debug, Default)]
pub struct Changes {
    /// Upserted unless the stored version is newer.
    pub alerts: Vec<AlertRow>,
    pub alerts_gone: Vec<String>,
    pub held: Vec<HeldRow>,
    /// Held events sent and done with.
    pub released: Vec<i64>,
    /// Held events (firing alerts) a notification included, kept for the next ones.
    pub notified: Vec<i64>,
    pub groups: Vec<GroupRow>,
    pub groups_gone: Vec<(String, String)>,
    /// Alert rules' series (derive/eval.rs).
    pub series: Vec<crate::derive::eval::SeriesRow>,
    /// Schedules' last runs: (name, Unix ms), with the event the run posts.
    pub schedule_runs: Vec<(String, i64)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.alerts_gone.is_empty()
            && self.held.is_empty()
            && self.released.is_empty()
            && self.notified.is_empty()
            && self.groups.is_empty()
            && self.groups_gone.is_empty()
            && self.series.is_empty()
            && self.schedule_runs.is_empty()
    }
}

/// What an earlier run left.
#[derive(Debug, Default)]
pub struct Stored {
    pub alerts: Vec<AlertRow>,
    pub held: Vec<HeldRow>,
    pub groups: Vec<GroupRow>,
    pub series: Vec<crate::derive::eval::SeriesRow>,
    pub schedule_runs: Vec<(String, i64)>,
}
