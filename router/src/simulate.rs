//! Events through a configuration on a clock of the program's own, sending nothing:
//! what `alert-router test` and `replay` are built on. The router runs as it does for
//! real (rules, alert rules, noise control, templates, the outbox, the sinks' workers),
//! on a scratch storage directory, with every sink's plugin replaced by a capture (its
//! manifest and `validate` still judge the config). The clock moves only when told, and
//! on the way it stops at every instant something falls due (a group's wait, an alert
//! rule's `for:`), so a day of events plays in a moment with the same result.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::clock;
use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics};
use crate::event::{Event, format_time};
use crate::notify::alerts::Listed;
use crate::pipeline::{Accepted, IngestError, Pipeline};

/// The longest [`Simulation`] waits for the sinks' workers to take what was written:
/// they take it at once (a capture answers at once), so this is only a guard.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Stops at due instants while moving the clock, at most: a bound, should something
/// stay due.
const MAX_STOPS: usize = 1_000_000;

/// One message a sink would have been sent.
#[derive(Debug, Clone, Serialize)]
pub struct Captured {
    /// When, on the simulation's clock.
    pub at: String,
    #[serde(skip)]
    pub at_time: OffsetDateTime,
    pub sink: String,
    pub id: String,
    pub payload: Value,
    pub event: Value,
}

/// A router that plays events at their times and keeps what it would send.
pub struct Simulation {
    pipeline: Arc<Pipeline>,
    captured: Arc<Mutex<Vec<Captured>>>,
    scratch: PathBuf,
    now: OffsetDateTime,
}

impl Simulation {
    /// Starts `config` at `start` on a scratch storage directory (the config's own is
    /// never touched), its sinks unpaced (a rate limit would only slow the play).
    pub fn start(mut config: Config, start: OffsetDateTime) -> Result<Simulation, Diagnostics> {
        clock::set_manual(start);
        let scratch = scratch_dir().map_err(|e| {
            Diagnostics::from(Diagnostic::file(
                &config.path,
                format!("cannot make a scratch directory: {e}"),
            ))
        })?;
        config.storage.path = scratch.clone();
        // Scratch storage: no fsync per commit (nothing here must survive a power cut).
        config.storage.sync = crate::config::SyncMode::Normal;
        for sink in config.sinks.values_mut() {
            sink.rate_limit = None;
        }
        let captured: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let into = captured.clone();
        let capture: crate::plugins::Capture = Arc::new(move |sink: &str, message: &[u8]| {
            let message: Value = serde_json::from_slice(message).unwrap_or(Value::Null);
            let now = clock::now();
            into.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Captured {
                    at: format_time(now),
                    at_time: now,
                    sink: sink.to_owned(),
                    id: message["id"].as_str().unwrap_or_default().to_owned(),
                    payload: message["payload"].clone(),
                    event: message["event"].clone(),
                });
        });
        let pipeline = Pipeline::start_capturing(config, capture).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&scratch);
        })?;
        Ok(Simulation {
            pipeline,
            captured,
            scratch,
            now: start,
        })
    }

    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// Moves the clock to `t` (never back), stopping at every instant something falls
    /// due on the way, and doing it there.
    pub fn advance_to(&mut self, t: OffsetDateTime) {
        let target = t.max(self.now);
        let target_ms = ms(target);
        for _ in 0..MAX_STOPS {
            let Some(due) = self.pipeline.next_deadline_ms().filter(|&d| d <= target_ms) else {
                break;
            };
            let at = from_ms(due).max(self.now);
            self.set(at);
            self.pipeline.tick(at);
            self.drain();
            // A deadline a tick does not move (a notification waiting for room in the
            // outbox) would hold the clock here: go on to the target.
            if self.pipeline.next_deadline_ms() == Some(due) {
                break;
            }
        }
        self.set(target);
        self.pipeline.tick(target);
        // As the live timer does (every minute): resolved alerts leave the list after
        // an hour.
        self.pipeline.prune_notify(target, target_ms);
        self.drain();
    }

    /// Posts `events` at the clock's time, as `POST /v1/events` would.
    pub fn post(&mut self, events: Vec<Event>) -> Result<Accepted, IngestError> {
        let accepted = self.pipeline.ingest(events);
        self.drain();
        accepted
    }

    /// Sets a silence at the clock's time, as `POST /v1/silences` would with `body`.
    pub fn set_silence(
        &mut self,
        body: &[u8],
    ) -> Result<crate::pipeline::SetSilence, crate::notify::silences::SilenceError> {
        self.pipeline.set_silence(body, "test")
    }

    /// Every message captured so far, in the order the sinks took them.
    pub fn captured(&self) -> Vec<Captured> {
        self.captured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The alerts the router tracks now, as `GET /v1/alerts` lists them.
    pub fn alerts(&self) -> Vec<Listed> {
        let snap = self.pipeline.snapshot();
        self.pipeline.notifier.alerts(&snap.rules, self.now)
    }

    /// `/v1/status`, for the counts held back by reason and the rest.
    pub fn status(&self) -> Value {
        self.pipeline.status()
    }

    fn set(&mut self, t: OffsetDateTime) {
        self.now = t;
        clock::set_manual(t);
    }

    /// Waits until the sinks' workers took everything written so far.
    fn drain(&self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.pipeline.outbox().waiting_all().0.messages > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        self.pipeline.shutdown(Instant::now());
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn scratch_dir() -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "alert-router-simulation-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&path)?;
    Ok(path)
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
