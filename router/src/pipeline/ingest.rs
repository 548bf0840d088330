//! The path of a batch of validated events: dedup, rules, templates, room in the
//! outbox ([`Pipeline::prepare`]), the write, then the bookkeeping once it is durable
//! ([`Pipeline::settle`]: counters, the state store). All or nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;

use super::{Pipeline, SinkEntry, Snapshot};
use crate::dispatch::SinkStats;
use crate::event::{Event, format_time};
use crate::ingest::Seen;
use crate::notify::engine::{Held, Reason, Verdict};
use crate::notify::rows::Changes;
use crate::outbox::{self, Batch, Count, NewMessage, OutboxError, Reservation};
use crate::render;

/// Counters over all events.
#[derive(Debug, Default)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub unrouted: AtomicU64,
    pub rule_errors: AtomicU64,
    pub rejected: AtomicU64,
    pub by_type: Mutex<TypeCounts>,
    /// Per route and per alert rule.
    pub tally: super::tally::Tally,
}

/// How many event types get a series of their own in `/metrics` and a count in
/// `/v1/status`.
pub const TYPE_SERIES: usize = 500;
/// The type the ones past [`TYPE_SERIES`] are counted under. Not a valid event type
/// (types have no parentheses), so it never mixes with one.
pub const OTHER_TYPES: &str = "(other)";

/// Events taken, by type. The first [`TYPE_SERIES`] types seen are counted each on its
/// own, every later one under [`OTHER_TYPES`]: a producer that sends ever-new types
/// cannot grow `/metrics` and `/v1/status` (and the router's memory) without bound.
#[derive(Debug, Default)]
pub struct TypeCounts {
    named: BTreeMap<String, u64>,
    other: u64,
}

impl TypeCounts {
    pub fn add(&mut self, kind: String, n: u64) {
        if let Some(count) = self.named.get_mut(&kind) {
            *count += n;
        } else if self.named.len() < TYPE_SERIES {
            self.named.insert(kind, n);
        } else {
            self.other += n;
        }
    }

    /// Every count by type, then [`OTHER_TYPES`] once any type was counted there.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.named
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .chain((self.other > 0).then_some((OTHER_TYPES, self.other)))
    }

    /// `{type: count}`, as `/v1/status` shows it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.iter().map(|(k, n)| (k.to_owned(), n.into())).collect())
    }
}

/// Why a valid batch was refused: nothing of it was accepted, and the producer should
/// try again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("{0}: nothing in this request was accepted; retry later")]
    Full(#[from] outbox::Full),
    #[error(
        "the outbox could not store the batch ({0}): nothing in this request was accepted; retry later"
    )]
    Storage(String),
    #[error(
        "event `{id}` is being stored by another request right now: nothing in this request was accepted; retry shortly (it will then count as a repeat)"
    )]
    InFlight { id: String },
}

/// A batch routed and rendered, with room taken in the outbox, not yet written.
pub struct Prepared {
    /// Held until the batch is written: a reload stops removed sinks only after that.
    snapshot: Arc<Snapshot>,
    batch: Batch,
    reservation: Reservation,
    accepted: Accepted,
    /// Ids seen for the first time: forgotten again if the batch is not written.
    fresh: Vec<String>,
    /// Events a domain keeps, applied to its state once the batch is written.
    tracked: Vec<Arc<Event>>,
    /// Each routed event's span (only when debug logging is on), to say in it that the
    /// batch was written.
    spans: Vec<tracing::Span>,
    by_type: BTreeMap<String, u64>,
    /// Messages per running sink, for its counters.
    routed: Vec<(Arc<SinkStats>, u64)>,
    /// Dead on arrival: the sink's counters, the error, whether it was a render error.
    dead: Vec<(Arc<SinkStats>, String, bool)>,
    /// Events kept for a group or a time window, filed once the batch is written.
    held: Vec<Held>,
    /// Messages not sent now, per sink and reason, counted once the batch is written.
    held_back: Vec<(Arc<SinkStats>, Reason)>,
    /// Messages per route (its index in the snapshot's routes): `None` written for a
    /// sink, else the reason it was held back.
    by_route: Vec<(usize, Option<Reason>)>,
    /// Alert rules' alerts routed in this batch: (rule, fired (else resolved)).
    alert_rules: Vec<(String, bool)>,
}
/// What `ingest` answers: every event's id, in order (repeats included).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    pub accepted: usize,
    pub ids: Vec<String>,
}

impl Pipeline {
    /// Routes, renders and writes validated events to the outbox, and returns once they
    /// are committed. All or nothing: when the outbox (or a sink's share of it) is full,
    /// or the write fails, nothing is kept and the ids are forgotten, so the producer can
    /// retry. Blocking.
    pub fn ingest(&self, events: Vec<Event>) -> Result<Accepted, IngestError> {
        let mut prepared = self.prepare(events)?;
        let written = self
            .outbox
            .append_blocking(std::mem::take(&mut prepared.batch));
        self.settle(prepared, written)
    }

    /// [`ingest`](Self::ingest) with more of the router's own state written in the same
    /// commit (`extra` adds it to the batch's noise-control changes).
    pub(super) fn ingest_with(
        &self,
        events: Vec<Event>,
        extra: impl FnOnce(&mut crate::notify::rows::Changes),
    ) -> Result<Accepted, IngestError> {
        let mut prepared = self.prepare(events)?;
        extra(&mut prepared.batch.notify);
        let written = self
            .outbox
            .append_blocking(std::mem::take(&mut prepared.batch));
        self.settle(prepared, written)
    }

    /// [`ingest`](Self::ingest) for async callers: routing and rendering a big batch run
    /// on a blocking thread, and the commit is awaited. The work runs as a task of its
    /// own, so a producer that hangs up mid-request cannot cut it between the commit and
    /// the bookkeeping after it (counters, the state store).
    pub async fn ingest_async(
        self: &Arc<Self>,
        events: Vec<Event>,
    ) -> Result<Accepted, IngestError> {
        let pipeline = self.clone();
        tokio::spawn(async move {
            let mut prepared = if events.len() > 64 {
                let p = pipeline.clone();
                tokio::task::spawn_blocking(move || p.prepare(events))
                    .await
                    .map_err(|e| IngestError::Storage(format!("routing the batch failed: {e}")))??
            } else {
                pipeline.prepare(events)?
            };
            let written = pipeline
                .outbox
                .append(std::mem::take(&mut prepared.batch))
                .await;
            pipeline.settle(prepared, written)
        })
        .await
        .map_err(|e| IngestError::Storage(format!("the ingest task failed: {e}")))?
    }

    /// Dedup, rules and templates: everything up to the outbox write, with room taken.
    pub fn prepare(&self, events: Vec<Event>) -> Result<Prepared, IngestError> {
        // A full `Arc` (not a guard), held until the batch is written: a reload waits for
        // the last holder of the old snapshot before it stops the sinks that are gone.
        let snap = self.snapshot.load_full();
        let now_t = crate::clock::now();
        let now_ms = (now_t.unix_timestamp_nanos() / 1_000_000) as i64;
        let now = format_time(now_t);
        let mut notify_changes = Changes::default();
        let mut held: Vec<Held> = Vec::new();
        let mut held_back: Vec<(Arc<SinkStats>, Reason)> = Vec::new();
        let mut by_route: Vec<(usize, Option<Reason>)> = Vec::new();
        let mut alert_rules: Vec<(String, bool)> = Vec::new();
        let mut ids = Vec::with_capacity(events.len());
        let mut fresh = Vec::new();
        let mut messages: Vec<NewMessage> = Vec::new();
        let mut dead = Vec::new();
        let mut per_sink: BTreeMap<String, Count> = BTreeMap::new();
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        let mut tracked: Vec<Arc<Event>> = Vec::new();
        let mut spans = Vec::new();
        let total = events.len();
        // Alerts that alert rules derive from an event are routed in the same batch,
        // after it.
        let mut queue: std::collections::VecDeque<(Event, bool)> =
            events.into_iter().map(|e| (e, false)).collect();
        while let Some((event, derived)) = queue.pop_front() {
            if !derived {
                ids.push(event.id.clone());
            }
            // One span per event, so `ALERT_ROUTER_LOG=debug` follows it from here to the
            // outbox; each delivery attempt's span names the same id (dispatch.rs).
            let span = tracing::debug_span!("event", id = %event.id, r#type = %event.kind);
            let _in_event = span.enter();
            if event.id_given {
                match self.dedup.offer(&event.id, now_ms) {
                    Seen::New => fresh.push(event.id.clone()),
                    Seen::Repeat => {
                        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!("a repeat of an event already stored: not routed again");
                        // A firing alert sent again (Prometheus resends each one every
                        // minute, with the same id) is not news, but says it still fires.
                        self.notifier
                            .still_firing(&event, now_ms, &mut notify_changes);
                        continue;
                    }
                    // Twice in this batch: the batch is stored whole, so a repeat.
                    Seen::Storing if fresh.contains(&event.id) => {
                        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!("a repeat within this batch: not routed again");
                        continue;
                    }
                    // Another request is storing it (a producer's retry overtook its first
                    // try). Taking it would send it twice; dropping it would lose it if
                    // that write fails. The producer asks again shortly instead.
                    Seen::Storing => {
                        self.refused(&fresh, total);
                        return Err(IngestError::InFlight { id: event.id });
                    }
                }
            }
            // An alert rule's alert (from this batch's events, or from the timer).
            if event.source.as_deref() == Some(crate::derive::eval::SOURCE)
                && let Some(rule) = event.data.get("rule").and_then(|r| r.as_str())
            {
                let fired = event.data.get("status").and_then(|s| s.as_str()) == Some("firing");
                alert_rules.push((rule.to_owned(), fired));
            }
            // Look up before inserting: `entry` would allocate the key for every event.
            match by_type.get_mut(&event.kind) {
                Some(n) => *n += 1,
                None => {
                    by_type.insert(event.kind.clone(), 1);
                }
            }
            // Shared, not copied: the state store gets the event as posted (a route's
            // `set` changes a copy of its own).
            let event = Arc::new(event);
            if self.stores.tracks(&event.kind) {
                tracked.push(event.clone());
            }
            // The event's stored text, written once for everything that wants it: alert
            // rules, the alert's own record, and the hits that share the event (every
            // hit, unless a route's `set` changed it).
            let mut written: Option<(Arc<Event>, Arc<str>)> = None;
            if !snap.rules.alert_rules().is_empty() || event.alert_status().is_some() {
                written = Some((event.clone(), event.to_json_string().into()));
            }
            if let Some((_, text)) = written
                .as_ref()
                .filter(|_| !snap.rules.alert_rules().is_empty())
            {
                let mut alerts = Vec::new();
                self.evaluator
                    .on_event(&snap.rules, &event, text, now_ms, &mut alerts);
                for a in &alerts {
                    tracing::info!(rule = %a.data.get("rule").and_then(|r| r.as_str()).unwrap_or(""), status = %a.data.get("status").and_then(|r| r.as_str()).unwrap_or(""), id = %a.id, "alert rule");
                }
                queue.extend(alerts.into_iter().map(|a| (a, true)));
            }
            // Kept for the alert's bookkeeping below (a route's `set` then changes a copy).
            let alert = event.alert_status().map(|status| (status, event.clone()));
            let hits = snap.rules.route_shared(event, &mut |route, e| {
                self.counters.rule_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(route = %route.name, file = %route.file.display(), line = route.line, error = %e, "rule condition failed; treated as no match");
            });
            if hits.is_empty() {
                self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("no route matched");
            }
            if !span.is_disabled() {
                spans.push(span.clone());
            }
            // An alert is tracked whatever happens to its messages (a silenced alert
            // still fires): under the identity its first route gives it.
            let fingerprint = alert.map(|(status, event)| {
                let text = match &written {
                    Some((e, text)) if Arc::ptr_eq(e, &event) => text.clone(),
                    _ => event.to_json_string().into(),
                };
                let first = hits.first().map(|h| &snap.rules.routes()[h.route]);
                self.notifier
                    .observe(&event, &text, status, first, now_ms, &mut notify_changes)
            });
            let mut silence_noted = false;
            for hit in hits {
                let route = &snap.rules.routes()[hit.route];
                let event_text = match &written {
                    Some((e, text)) if Arc::ptr_eq(e, &hit.event) => text.clone(),
                    _ => {
                        let text: Arc<str> = hit.event.to_json_string().into();
                        written = Some((hit.event.clone(), text.clone()));
                        text
                    }
                };
                let suppressed = match self.notifier.verdict(
                    &snap.rules,
                    route,
                    &hit.sinks,
                    &hit.event,
                    &event_text,
                    fingerprint.as_deref(),
                    now_t,
                    now_ms,
                ) {
                    Verdict::Send { suppressed } => suppressed,
                    Verdict::Hold(h) => {
                        tracing::debug!(route = %route.name, group = %h.row.group_key, reason = h.reason.as_str(), "held for a notification to come");
                        count_held(&snap, &hit.sinks, h.reason, &mut held_back);
                        count_route(&snap, hit.route, &hit.sinks, h.reason, &mut by_route);
                        notify_changes.held.push(h.row.clone());
                        held.push(*h);
                        continue;
                    }
                    Verdict::HeldBack(reason, by) => {
                        tracing::debug!(route = %route.name, reason = reason.as_str(), by = %by, "held back");
                        // A silence counts events, not the routes they took.
                        if reason == Reason::Silenced
                            && !silence_noted
                            && let Some(id) = by.strip_prefix("silence ")
                        {
                            self.notifier.silences.note_held_back(id);
                            silence_noted = true;
                        }
                        count_held(&snap, &hit.sinks, reason, &mut held_back);
                        count_route(&snap, hit.route, &hit.sinks, reason, &mut by_route);
                        continue;
                    }
                };
                let suppressed = suppressed.map(|(n, since_ms)| (n, format_ms(since_ms)));
                // Templates read the event in place; each sink's context shares it.
                let event_value = render::event_value(&hit.event);
                let template = route.template.as_deref().unwrap_or(&hit.event.kind);
                for sink in &hit.sinks {
                    let mut message = NewMessage {
                        sink: sink.clone(),
                        id: format!("{}:{sink}", hit.event.id),
                        event_id: hit.event.id.clone(),
                        event_type: hit.event.kind.clone(),
                        route: route.name.clone(),
                        template: template.to_owned(),
                        payload: None,
                        event: event_text.clone(),
                        error: None,
                    };
                    if let Some(broken) = snap.broken.get(sink) {
                        let error = format!("sink `{sink}` did not start: {}", broken.reason);
                        tracing::debug!(route = %route.name, %sink, %error, "dead on arrival");
                        dead.push((broken.stats.clone(), error.clone(), false));
                        message.error = Some(error);
                        messages.push(message);
                        continue;
                    }
                    let Some(entry) = snap.sinks.get(sink) else {
                        continue; // a disabled sink
                    };
                    let context = |plugin: &str| {
                        let ctx = render::context_with(
                            event_value.clone(),
                            &route.name,
                            sink,
                            plugin,
                            &now,
                        );
                        match &suppressed {
                            Some((count, since)) => render::suppressed_context(ctx, *count, since),
                            None => ctx,
                        }
                    };
                    match render_for_sink(&snap, entry, sink, template, context) {
                        Ok(payload) => {
                            tracing::debug!(route = %route.name, %sink, template, message_id = %message.id, "rendered for the sink");
                            message.payload = Some(payload.into());
                            by_route.push((hit.route, None));
                            let bytes = message.bytes();
                            match per_sink.get_mut(sink) {
                                Some(count) => count.add(1, bytes),
                                None => per_sink.entry(sink.clone()).or_default().add(1, bytes),
                            }
                        }
                        Err(e) => {
                            tracing::debug!(route = %route.name, %sink, template, error = %e, "the template failed: dead on arrival");
                            dead.push((entry.worker.stats.clone(), e.clone(), true));
                            message.error = Some(e);
                        }
                    }
                    messages.push(message);
                }
            }
        }
        let wanted: Vec<(String, Count, u64)> = per_sink
            .iter()
            .map(|(sink, count)| {
                let max = snap
                    .sinks
                    .get(sink)
                    .map_or(u64::MAX, |e| e.config.max_queue as u64);
                (sink.clone(), *count, max)
            })
            .collect();
        let reservation = match self.outbox.reserve(&wanted) {
            Ok(r) => r,
            Err(full) => {
                self.refused(&fresh, total);
                return Err(IngestError::Full(full));
            }
        };
        let routed = per_sink
            .iter()
            .filter_map(|(sink, count)| {
                snap.sinks
                    .get(sink)
                    .map(|e| (e.worker.stats.clone(), count.messages))
            })
            .collect();
        Ok(Prepared {
            snapshot: snap,
            batch: Batch {
                messages,
                seen: fresh.clone(),
                notify: notify_changes,
            },
            reservation,
            accepted: Accepted {
                accepted: ids.len(),
                ids,
            },
            fresh,
            tracked,
            spans,
            by_type,
            routed,
            dead,
            held,
            held_back,
            by_route,
            alert_rules,
        })
    }

    /// After the write: counters and state when it committed; room and ids given back
    /// when it did not.
    fn settle(
        &self,
        prepared: Prepared,
        written: Result<(), OutboxError>,
    ) -> Result<Accepted, IngestError> {
        if let Err(e) = written {
            self.outbox.release(prepared.reservation);
            self.refused(&prepared.fresh, prepared.accepted.accepted);
            tracing::error!(error = %e, "a batch could not be written to the outbox; answered 503");
            for span in &prepared.spans {
                span.in_scope(|| tracing::debug!("the batch was not written: refused"));
            }
            return Err(IngestError::Storage(e.to_string()));
        }
        self.dedup.stored(&prepared.fresh);
        for span in &prepared.spans {
            span.in_scope(|| tracing::debug!("stored in the outbox"));
        }
        for (stats, n) in prepared.routed {
            stats.routed.fetch_add(n, Ordering::Relaxed);
        }
        for (stats, reason) in prepared.held_back {
            stats.held_back.add(reason, 1);
            self.notifier.held_back.add(reason, 1);
        }
        if !prepared.by_route.is_empty() {
            let routes = prepared.snapshot.rules.routes();
            self.counters.tally.routes(
                prepared
                    .by_route
                    .iter()
                    .filter_map(|(i, reason)| Some((routes.get(*i)?.name.as_str(), *reason))),
            );
        }
        if !prepared.alert_rules.is_empty() {
            self.counters.tally.alerts(
                prepared
                    .alert_rules
                    .iter()
                    .map(|(rule, fired)| (rule.as_str(), *fired)),
            );
        }
        self.notifier.held(prepared.held);
        for (stats, error, render_error) in prepared.dead {
            if render_error {
                stats.render_errors.fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!(%error, "message dead-lettered before delivery");
            stats.dead_letter(&error);
        }
        for event in &prepared.tracked {
            self.stores.apply(event.domain_view());
        }
        self.counters
            .accepted
            .fetch_add(prepared.accepted.accepted as u64, Ordering::Relaxed);
        if !prepared.by_type.is_empty() {
            let mut counts = self
                .counters
                .by_type
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (k, n) in prepared.by_type {
                counts.add(k, n);
            }
        }
        Ok(prepared.accepted)
    }

    /// A batch of `events` events was refused whole: its new ids may come again.
    fn refused(&self, fresh: &[String], events: usize) {
        for id in fresh {
            self.dedup.forget(id);
        }
        self.counters
            .rejected
            .fetch_add(events as u64, Ordering::Relaxed);
    }
}

/// Counts a message of each running sink among `sinks` as held back for `reason`.
fn count_held(
    snap: &Snapshot,
    sinks: &[String],
    reason: Reason,
    out: &mut Vec<(Arc<SinkStats>, Reason)>,
) {
    for sink in sinks {
        if let Some(entry) = snap.sinks.get(sink) {
            out.push((entry.worker.stats.clone(), reason));
        }
    }
}

/// Counts a message of each running sink among `sinks` as held back by route `route`.
fn count_route(
    snap: &Snapshot,
    route: usize,
    sinks: &[String],
    reason: Reason,
    out: &mut Vec<(usize, Option<Reason>)>,
) {
    for sink in sinks {
        if snap.sinks.contains_key(sink) {
            out.push((route, Some(reason)));
        }
    }
}

/// Unix milliseconds as RFC 3339.
pub(super) fn format_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(format_time)
        .unwrap_or_default()
}

/// Renders `template` for a running sink, as JSON text, with the context `context`
/// makes from the sink's plugin name.
pub(super) fn render_for_sink(
    snap: &Snapshot,
    entry: &SinkEntry,
    sink: &str,
    template: &str,
    context: impl FnOnce(&str) -> minijinja::Value,
) -> Result<String, String> {
    let plugin = entry.plugin.name();
    match snap.templates.resolve(sink, plugin, template) {
        None => Err(format!(
            "no template `{template}` for sink `{sink}`: add templates/{sink}/{template}.yaml, templates/{plugin}/{template}.yaml or a default.yaml"
        )),
        Some(id) => snap
            .templates
            .render_json(id, &context(plugin))
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_past_the_cap_are_counted_as_other() {
        let mut counts = TypeCounts::default();
        for i in 0..TYPE_SERIES + 20 {
            counts.add(format!("t{i:04}"), 2);
        }
        counts.add("t0000".into(), 1);
        counts.add("new".into(), 5);
        let all: Vec<(&str, u64)> = counts.iter().collect();
        assert_eq!(all.len(), TYPE_SERIES + 1);
        assert_eq!(all[0], ("t0000", 3));
        assert_eq!(all[TYPE_SERIES], (OTHER_TYPES, 20 * 2 + 5));
        assert_eq!(counts.to_json()[OTHER_TYPES], 45);
        assert_eq!(TypeCounts::default().to_json(), serde_json::json!({}));
    }
}
