//! `GET /v1/status`: the outbox, the config in force and its reloads, the event
//! counters and every sink's queue, counters, health and recent dead letters.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::Pipeline;
use crate::config::Isolation;
use crate::dispatch::SinkStats;
use crate::event::format_time;
use crate::outbox::{Count, DeadLetter, Selector, now_ms};

impl Pipeline {
    /// How long the router has run.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Value {
        let snap = self.snapshot.load();
        let dead = self.outbox.dead_counts().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot count dead letters");
            Default::default()
        });
        let recent = |sink: &str| -> Vec<DeadLetter> {
            if dead.get(sink).copied().unwrap_or(0) == 0 {
                return Vec::new();
            }
            self.outbox
                .dead_letters(&Selector::Sink(sink.to_owned()), DEAD_LETTERS_SHOWN)
                .unwrap_or_default()
        };
        let dead_of = |sink: &str| dead.get(sink).copied().unwrap_or(0);
        let mut sinks = serde_json::Map::new();
        for (name, entry) in &snap.sinks {
            let mut s = sink_status(
                &entry.worker.stats,
                self.outbox.waiting(name),
                dead_of(name),
                &recent(name),
            );
            s["plugin"] = json!(entry.plugin.name());
            s["plugin_version"] = json!(entry.plugin.version());
            let isolation = entry
                .config
                .isolation
                .unwrap_or_else(|| Isolation::default_for(entry.plugin.path()));
            s["isolation"] = json!(isolation.as_str());
            let stats = &entry.worker.stats;
            s["crashes"] = json!(stats.crashes.load(Ordering::Relaxed));
            s["last_crash"] = json!(*stats.last_crash.lock().unwrap_or_else(|e| e.into_inner()));
            s["stuck_for_seconds"] = json!(
                stats
                    .stuck(now_ms(), entry.config.deliver_timeout)
                    .map(|d| d.as_secs())
            );
            s["settings"] = entry.plugin.manifest().redact(&entry.config.settings);
            s["rate_limit"] =
                json!(entry.config.rate_limit.map(
                    |r| json!({"per_second": 1.0 / r.period.as_secs_f64(), "burst": r.burst})
                ));
            sinks.insert(name.clone(), s);
        }
        for (name, broken) in &snap.broken {
            let mut s = sink_status(
                &broken.stats,
                self.outbox.waiting(name),
                dead_of(name),
                &recent(name),
            );
            s["plugin"] = json!(broken.config.plugin);
            s["healthy"] = json!(false);
            s["started"] = json!(false);
            s["last_error"] = json!(broken.reason);
            sinks.insert(name.clone(), s);
        }
        let (waiting, per_sink) = self.outbox.waiting_all();
        // Messages of sinks no longer configured wait for them to come back.
        let orphaned: BTreeMap<String, u64> = per_sink
            .into_iter()
            .filter(|(s, _)| !snap.sinks.contains_key(s) && !snap.broken.contains_key(s))
            .map(|(s, c)| (s, c.messages))
            .collect();
        let storage = self.fixed.storage();
        let c = &self.counters;
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "outbox": {
                "path": self.outbox.path().display().to_string(),
                "queued": waiting.messages,
                "queued_bytes": waiting.bytes,
                "max_messages": storage.max_messages,
                "max_bytes": storage.max_bytes,
                "dead_letters": dead.values().sum::<u64>(),
                "waiting_for_missing_sinks": orphaned,
            },
            "uptime_seconds": self.started.elapsed().as_secs(),
            "config": {
                "path": snap.config.path.display().to_string(),
                "loaded_at": format_time(snap.loaded_at),
                "routes": snap.rules.routes().len(),
                "templates": snap.templates.len(),
                "last_reload": *self.reloads.last.lock().unwrap_or_else(|e| e.into_inner()),
                "restart_needed": self.fixed.restart_needed(&snap.config),
                "reloads": {
                    "succeeded": self.reloads.succeeded.load(Ordering::Relaxed),
                    "failed": self.reloads.failed.load(Ordering::Relaxed),
                },
            },
            "events": {
                "accepted": c.accepted.load(Ordering::Relaxed),
                "duplicates": c.duplicates.load(Ordering::Relaxed),
                "unrouted": c.unrouted.load(Ordering::Relaxed),
                "rejected": c.rejected.load(Ordering::Relaxed),
                "rule_errors": c.rule_errors.load(Ordering::Relaxed),
                "by_type": c.by_type.lock().unwrap_or_else(|e| e.into_inner()).to_json(),
                "alert_rules": c.tally.alert_rules_json(
                    snap.rules.alert_rules().iter().map(|r| r.name.as_str())
                ),
            },
            "routes": c.tally.routes_json(snap.rules.routes().iter().map(|r| r.name.as_str())),
            "notify": {
                "held_back": self.notifier.held_back.to_json(),
                "open": self.notifier.summary(),
                "silences": self.notifier.silence_counts(crate::clock::now()),
                "clock": if crate::clock::is_file_clock() { "file (tests only)" } else { "system" },
            },
            "sinks": sinks,
        })
    }
}

impl Pipeline {
    /// Warns, once per attempt, of each sink whose plugin has been inside `deliver` for
    /// longer than its `deliver_timeout`. Called every second while the router runs.
    pub fn warn_of_stuck_sinks(&self) {
        let snap = self.snapshot();
        let now = now_ms();
        for (name, entry) in &snap.sinks {
            if let Some(stuck) = entry
                .worker
                .stats
                .newly_stuck(now, entry.config.deliver_timeout)
            {
                tracing::warn!(sink = %name, plugin = %entry.plugin.name(), "the plugin has been inside deliver for {}s, past deliver_timeout ({}s); /v1/status shows the sink as stuck until it returns", stuck.as_secs(), entry.config.deliver_timeout.as_secs_f64());
            }
        }
    }
}

/// Dead letters listed per sink in `/v1/status` (the newest ones).
const DEAD_LETTERS_SHOWN: usize = 10;

fn sink_status(stats: &SinkStats, waiting: Count, dead: u64, recent: &[DeadLetter]) -> Value {
    let recent: Vec<Value> = recent
        .iter()
        .map(|d| json!({"seq": d.seq, "id": d.id, "event_type": d.event_type, "attempts": d.attempts, "error": d.error, "time": d.time}))
        .collect();
    json!({
        "healthy": !stats.unhealthy.load(Ordering::Relaxed),
        "queued": waiting.messages,
        "queued_bytes": waiting.bytes,
        "sent": stats.sent.load(Ordering::Relaxed),
        "failed": stats.failed.load(Ordering::Relaxed),
        "retried": stats.retried.load(Ordering::Relaxed),
        "rate_limited": stats.rate_limited.load(Ordering::Relaxed),
        "render_errors": stats.render_errors.load(Ordering::Relaxed),
        "routed": stats.routed.load(Ordering::Relaxed),
        "held_back": stats.held_back.to_json(),
        "dead_letters": dead,
        "recent_dead_letters": recent,
        "last_error": *stats.last_error.lock().unwrap_or_else(|e| e.into_inner()),
    })
}
