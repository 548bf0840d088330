//! A sink's counters and health, as `/v1/status` and `/metrics` show them.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::lock;
use crate::plugins::{Health, HealthListener};

/// Upper bounds (seconds) of the delivery latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A sink's counters, read by `/v1/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Messages queued for the sink (rendered and routed to it).
    pub routed: AtomicU64,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub rate_limited: AtomicU64,
    pub render_errors: AtomicU64,
    pub unhealthy: AtomicBool,
    pub last_error: Mutex<Option<String>>,
    /// Cumulative counts per [`LATENCY_BUCKETS`] entry (plus +Inf), and the sum in µs.
    pub latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    pub latency_sum_us: AtomicU64,
    /// Attempts that ended in a crash of the plugin's own process (`isolation: process`).
    pub crashes: AtomicU64,
    /// How the last of those ended ("died of SIGSEGV (signal 11) during deliver").
    pub last_crash: Mutex<Option<String>>,
    /// When the attempt in progress began (Unix milliseconds), 0 between attempts: what
    /// tells a sink stuck inside `deliver`.
    pub delivering_since_ms: AtomicI64,
    /// The `delivering_since_ms` of the last attempt warned of as stuck: one warning each.
    stuck_warned: AtomicI64,
    /// Messages not sent when their event came: silenced, inhibited, throttled, grouped,
    /// muted or delayed by a time window.
    pub held_back: crate::notify::engine::HeldCounts,
}

impl SinkStats {
    pub(super) fn record_latency(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_buckets[LATENCY_BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// An attempt ended in a crash of the plugin's process.
    pub(super) fn crashed(&self, reason: &str) {
        self.crashes.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_crash) = Some(reason.to_owned());
    }

    /// How long the attempt in progress has been inside `deliver`, if one is.
    pub fn delivering_for(&self, now_ms: i64) -> Option<Duration> {
        match self.delivering_since_ms.load(Ordering::Relaxed) {
            0 => None,
            since => Some(Duration::from_millis(
                now_ms.saturating_sub(since).max(0) as u64
            )),
        }
    }

    /// How long the attempt in progress has been inside `deliver`, when that is past
    /// `timeout`.
    pub fn stuck(&self, now_ms: i64, timeout: Duration) -> Option<Duration> {
        self.delivering_for(now_ms).filter(|&d| d > timeout)
    }

    /// Like [`SinkStats::stuck`], but only the first time for each attempt: for the
    /// warning in the log.
    pub fn newly_stuck(&self, now_ms: i64, timeout: Duration) -> Option<Duration> {
        let stuck = self.stuck(now_ms, timeout)?;
        let since = self.delivering_since_ms.load(Ordering::Relaxed);
        (self.stuck_warned.swap(since, Ordering::Relaxed) != since).then_some(stuck)
    }

    pub(super) fn set_error(&self, e: &str) {
        self.unhealthy.store(true, Ordering::Relaxed);
        *lock(&self.last_error) = Some(e.to_owned());
    }

    /// Counts a message that will never be delivered (the outbox keeps the letter).
    pub fn dead_letter(&self, error: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.set_error(error);
    }

    /// What the plugin said about the sink's health between deliveries. Like a delivery's
    /// outcome, it stands until the next one: healthy keeps the last error for the
    /// record, unhealthy makes its reason the last error.
    pub fn report_health(&self, health: Health) {
        match health {
            Health::Healthy => self.unhealthy.store(false, Ordering::Relaxed),
            Health::Unhealthy(reason) => self.set_error(&reason),
        }
    }
}

/// Shows what an instance of sink `name` reports about its health in `stats`.
pub(super) fn health_listener(name: &str, stats: &Arc<SinkStats>) -> HealthListener {
    let (name, stats) = (name.to_owned(), stats.clone());
    Arc::new(move |health| {
        tracing::debug!(sink = %name, ?health, "the plugin reported the sink's health");
        stats.report_health(health);
    })
}
