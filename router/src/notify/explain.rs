//! What noise control would do with a route's messages for one event, in words: for
//! `alert-router route` and `render`, which answer "why did (or will) this not reach
//! the chat?" without a running router. Silences are read from the storage directory;
//! the firing alerts an inhibition waits for are only known to the running router, so an
//! inhibition is said as the condition it is.

use std::sync::Arc;

use time::OffsetDateTime;

use super::alerts;
use super::keys;
use super::policy::Mode;
use super::silences::{Silence, State};
use crate::config::format_duration;
use crate::event::{Event, format_time};
use crate::rules::{Route, Rules};

/// One line per thing that applies, in the order the router applies them.
pub fn explain(
    rules: &Rules,
    route: &Route,
    event: &Arc<Event>,
    silences: &[Silence],
    now: OffsetDateTime,
) -> Vec<String> {
    let mut lines = Vec::new();
    let policy = &route.policy;
    if let Some(status) = event.alert_status() {
        lines.push(format!(
            "an alert ({}), fingerprint {}; it resolves by itself {} after its last firing event",
            status.as_str(),
            alerts::fingerprint(policy.key.as_deref(), event),
            format_duration(policy.resolve_timeout)
        ));
    }
    for s in silences {
        if s.state(now) == State::Active && s.matches(event) {
            let matchers: Vec<String> = s.matchers.iter().map(ToString::to_string).collect();
            lines.push(format!(
                "held back: silence {} ({}) by {} until {}",
                s.id,
                matchers.join(" "),
                s.created_by,
                format_time(s.ends_at)
            ));
        }
    }
    let mut ctx = None;
    for i in rules.inhibitions() {
        if rules.matches(&i.target, event, &mut ctx, &mut |_| {}) {
            let equal: Vec<String> = i.equal.iter().map(ToString::to_string).collect();
            lines.push(format!(
                "held back while an alert matching the source of the inhibition at {}:{} fires{}",
                i.file.display(),
                i.line,
                if equal.is_empty() {
                    String::new()
                } else {
                    format!(" with the same {}", equal.join(", "))
                }
            ));
        }
    }
    if let Some(w) = &policy.window {
        let intervals = rules.time_intervals();
        let exempt = w.unless.is_some_and(|u| u.matches(event.severity));
        let muted_by = w
            .muted_during
            .iter()
            .find(|n| intervals.contains(n, now) == Some(true))
            .cloned()
            .or_else(|| {
                let active = intervals
                    .union(w.active_during.iter().map(String::as_str))
                    .ok()?;
                (!w.active_during.is_empty() && !active.contains(now))
                    .then(|| format!("outside {}", w.active_during.join(", ")))
            });
        match muted_by {
            Some(_) if exempt => lines.push(format!(
                "a time window holds this route back now, but not this event: its severity {} passes unless_severity",
                event.severity
            )),
            Some(name) => lines.push(match w.mode {
                Mode::Drop => format!("muted now by the time window `{name}`: dropped (counted)"),
                Mode::Delay => format!(
                    "muted now by the time window `{name}`: kept, and sent in one summary when it ends"
                ),
            }),
            None => lines.push("its time windows let it through now".to_owned()),
        }
    }
    if let Some(t) = &policy.throttle {
        let values = keys::values(&t.key, event);
        lines.push(format!(
            "throttled: at most {} per {}{}; what is held back is counted and said in the next message",
            t.count,
            format_duration(t.per),
            if values.is_empty() {
                String::new()
            } else {
                format!(" for {}", keys::joined(&values))
            }
        ));
    }
    if let Some(g) = &policy.grouping {
        let values = keys::values(&g.by, event);
        lines.push(format!(
            "grouped as `{}`: the group speaks {} after it opens, then at most every {}; a firing alert is repeated every {}{}",
            keys::joined(&values),
            format_duration(g.wait),
            format_duration(g.interval),
            format_duration(g.repeat),
            if g.send_resolved {
                ", and said once more when it resolves"
            } else {
                ""
            }
        ));
    }
    lines
}
