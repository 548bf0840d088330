//! `GET /metrics`: the router's counters in the Prometheus text format. The numbers are
//! the ones `/v1/status` shows (atomics the pipeline and the workers keep anyway), so
//! there is no second bookkeeping and no global recorder.

use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dispatch::{LATENCY_BUCKETS, SinkStats};
use crate::pipeline::Pipeline;
use crate::pipeline::{OTHER_TYPES, TYPE_SERIES};

/// Builds an exposition: families with their HELP and TYPE, then samples.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The whole `/metrics` page.
pub fn render(pipeline: &Pipeline) -> String {
    let mut e = Exposition {
        out: String::with_capacity(4096),
    };
    let c = &pipeline.counters;
    e.family(
        "alert_router_events_accepted_total",
        "counter",
        "Events answered 202, repeats included.",
    );
    e.sample("alert_router_events_accepted_total", &[], read(&c.accepted));
    e.family(
        "alert_router_events_total",
        "counter",
        &format!(
            "Events taken for routing, by type: the first {TYPE_SERIES} types, every later one as type=\"{OTHER_TYPES}\"."
        ),
    );
    for (kind, n) in c.by_type.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        e.sample("alert_router_events_total", &[("type", kind)], n);
    }
    for (name, help, counter) in [
        (
            "alert_router_events_duplicate_total",
            "Events whose id was seen within the dedup window.",
            &c.duplicates,
        ),
        (
            "alert_router_events_unrouted_total",
            "Events no route matched.",
            &c.unrouted,
        ),
        (
            "alert_router_events_rejected_total",
            "Events refused with 400 or 503.",
            &c.rejected,
        ),
        (
            "alert_router_rule_errors_total",
            "Route conditions that failed to evaluate.",
            &c.rule_errors,
        ),
    ] {
        e.family(name, "counter", help);
        e.sample(name, &[], read(counter));
    }

    let r = &pipeline.reloads;
    e.family(
        "alert_router_reloads_total",
        "counter",
        "Config reloads, by result.",
    );
    e.sample(
        "alert_router_reloads_total",
        &[("result", "success")],
        read(&r.succeeded),
    );
    e.sample(
        "alert_router_reloads_total",
        &[("result", "failure")],
        read(&r.failed),
    );
    let last_ok = r
        .last
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_none_or(|o| o.ok);
    e.family(
        "alert_router_config_last_reload_successful",
        "gauge",
        "Whether the last reload succeeded (1 before any).",
    );
    e.sample(
        "alert_router_config_last_reload_successful",
        &[],
        u8::from(last_ok),
    );

    let snap = pipeline.snapshot();
    let outbox = pipeline.outbox();
    let sinks: Vec<(&str, &SinkStats, u64)> = snap
        .sinks
        .iter()
        .map(|(n, s)| (n.as_str(), &*s.worker.stats))
        .chain(snap.broken.iter().map(|(n, b)| (n.as_str(), &*b.stats)))
        .map(|(n, s)| (n, s, outbox.waiting(n).messages))
        .collect();
    type Read = fn(&SinkStats) -> u64;
    let per_sink: [(&str, &str, Read); 6] = [
        (
            "alert_router_routed_total",
            "Messages queued, by sink.",
            |s| read(&s.routed),
        ),
        (
            "alert_router_delivered_total",
            "Messages delivered, by sink.",
            |s| read(&s.sent),
        ),
        (
            "alert_router_retried_total",
            "Attempts that will be retried, by sink.",
            |s| read(&s.retried),
        ),
        (
            "alert_router_failed_total",
            "Messages dead-lettered, by sink.",
            |s| read(&s.failed),
        ),
        (
            "alert_router_rate_limited_total",
            "Deliveries that waited for the sink's rate limit.",
            |s| read(&s.rate_limited),
        ),
        (
            "alert_router_render_errors_total",
            "Messages whose template failed to render, by sink.",
            |s| read(&s.render_errors),
        ),
    ];
    for (name, help, value) in per_sink {
        e.family(name, "counter", help);
        for (sink, stats, _) in &sinks {
            e.sample(name, &[("sink", sink)], value(stats));
        }
    }
    e.family(
        "alert_router_held_back_total",
        "counter",
        "Messages not sent when their event came, by sink and reason: silenced, inhibited, throttled, grouped (into a group's notification), muted or delayed (by a time window).",
    );
    for (sink, stats, _) in &sinks {
        for reason in crate::notify::engine::Reason::ALL {
            e.sample(
                "alert_router_held_back_total",
                &[("sink", sink), ("reason", reason.as_str())],
                stats.held_back.get(reason),
            );
        }
    }
    let open = pipeline.notifier.summary();
    e.family(
        "alert_router_alerts",
        "gauge",
        "Alerts the router tracks, by state.",
    );
    for state in ["firing", "resolved"] {
        e.sample(
            "alert_router_alerts",
            &[("state", state)],
            open["alerts"][state].as_u64().unwrap_or(0),
        );
    }
    e.family(
        "alert_router_open_groups",
        "gauge",
        "Groups holding alerts or events for a notification.",
    );
    e.sample(
        "alert_router_open_groups",
        &[],
        open["groups"].as_u64().unwrap_or(0),
    );
    e.family("alert_router_silences", "gauge", "Silences by state.");
    let silences = pipeline.notifier.silence_counts(crate::clock::now());
    for state in ["active", "pending", "expired"] {
        e.sample(
            "alert_router_silences",
            &[("state", state)],
            silences[state].as_u64().unwrap_or(0),
        );
    }
    e.family(
        "alert_router_queue_depth",
        "gauge",
        "Messages waiting in the outbox per sink, the one in delivery included.",
    );
    for (sink, _, depth) in &sinks {
        e.sample("alert_router_queue_depth", &[("sink", sink)], depth);
    }
    let (waiting, _) = outbox.waiting_all();
    e.family(
        "alert_router_outbox_bytes",
        "gauge",
        "Bytes of messages waiting in the outbox, all sinks together.",
    );
    e.sample("alert_router_outbox_bytes", &[], waiting.bytes);
    if let Ok(dead) = outbox.dead_counts() {
        e.family(
            "alert_router_dead_letters",
            "gauge",
            "Dead letters kept in the outbox, by sink.",
        );
        for (sink, _, _) in &sinks {
            e.sample(
                "alert_router_dead_letters",
                &[("sink", sink)],
                dead.get(*sink).copied().unwrap_or(0),
            );
        }
    }
    let name = "alert_router_delivery_latency_seconds";
    e.family(
        name,
        "histogram",
        "Time from queueing to delivery, by sink.",
    );
    for (sink, stats, _) in &sinks {
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            e.sample(
                &format!("{name}_bucket"),
                &[("sink", sink), ("le", &bound.to_string())],
                read(&stats.latency_buckets[i]),
            );
        }
        let count = read(&stats.latency_buckets[LATENCY_BUCKETS.len()]);
        e.sample(
            &format!("{name}_bucket"),
            &[("sink", sink), ("le", "+Inf")],
            count,
        );
        e.sample(
            &format!("{name}_sum"),
            &[("sink", sink)],
            read(&stats.latency_sum_us) as f64 / 1e6,
        );
        e.sample(&format!("{name}_count"), &[("sink", sink)], count);
    }
    e.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_label_values() {
        let mut e = Exposition { out: String::new() };
        e.family("m", "counter", "Help.");
        e.sample("m", &[("sink", "a\"b\\c"), ("le", "+Inf")], 3);
        assert_eq!(
            e.out,
            "# HELP m Help.\n# TYPE m counter\nm{sink=\"a\\\"b\\\\c\",le=\"+Inf\"} 3\n"
        );
    }
}
