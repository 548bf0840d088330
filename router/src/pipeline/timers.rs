//! The noise controller's clock work, on a thread of its own: groups whose time has
//! come send their notification (rendered now, with the templates in force, written to
//! the outbox in the same commit that releases what they held), alerts whose
//! `resolve_timeout` passed resolve (a `resolved` event through the whole pipeline), and
//! old resolved alerts and expired silences are forgotten.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use minijinja::Value;
use time::OffsetDateTime;

use super::ingest::{format_ms, render_for_sink};
use super::{Pipeline, Snapshot};
use crate::clock;
use crate::notify::groups::{Entry, Plan, Status};
use crate::notify::rows::GroupState;
use crate::outbox::{Batch, Count, NewMessage};
use crate::render;

/// Alerts a notification lists at most (the oldest ones); `counts` says how many there
/// are in all. Keeps one render within the limits every template has (a webhook's JSON
/// of 300 Alertmanager alerts is near the 10,000 values a payload may hold).
const MAX_LISTED: usize = 200;

/// The longest the timer sleeps without looking (it is woken when something changes).
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// How often old resolved alerts, idle throttles and expired silences are pruned.
const PRUNE_EVERY_MS: i64 = 60_000;

/// Stops the timer thread when dropped or told.
pub struct Timers {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pipeline: Weak<Pipeline>,
}

impl Timers {
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(p) = self.pipeline.upgrade() {
            p.notifier.raise();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the timer thread of `pipeline`.
pub fn start(pipeline: &Arc<Pipeline>) -> std::io::Result<Timers> {
    let stop = Arc::new(AtomicBool::new(false));
    let weak = Arc::downgrade(pipeline);
    let thread = {
        let stop = stop.clone();
        let weak = weak.clone();
        std::thread::Builder::new()
            .name("notify-timers".into())
            .spawn(move || run(&weak, &stop))?
    };
    Ok(Timers {
        stop,
        thread: Some(thread),
        pipeline: weak,
    })
}

fn run(pipeline: &Weak<Pipeline>, stop: &AtomicBool) {
    let mut last_prune: Option<i64> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(p) = pipeline.upgrade() else { return };
        let now = clock::now();
        let now_ms = ms(now);
        // A bug here must not end the timers (groups would never speak again): the
        // tick is lost, and the next one tries again.
        let tick = std::panic::AssertUnwindSafe(|| {
            p.tick(now);
            if last_prune.is_none_or(|last| now_ms.saturating_sub(last) >= PRUNE_EVERY_MS) {
                p.prune_notify(now, now_ms);
                last_prune = Some(now_ms);
            }
        });
        if std::panic::catch_unwind(tick).is_err() {
            tracing::error!(
                "a noise-control tick stopped on an internal error; trying again in a second: please report it"
            );
        }
        p.notifier.last_tick_ms.store(now_ms, Ordering::Relaxed);
        let next = p.next_deadline_ms().map(|ms| ms.max(now_ms));
        let wait = next
            .map_or(MAX_SLEEP, |ms| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                    .map_or(MAX_SLEEP, clock::real_wait)
            })
            .min(MAX_SLEEP);
        let until_ms = next
            .unwrap_or(i64::MAX)
            .min(now_ms.saturating_add(wait.as_millis() as i64));
        let notifier = p.notifier.clone();
        drop(p);
        notifier.sleep(wait, until_ms);
    }
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Pipeline {
    /// Does what is due at `now` on the router's clock: alerts past their
    /// `resolve_timeout` resolve, alert rules look at time, due groups speak. The timer
    /// thread calls it; `test` and `replay` call it as they move their clock.
    pub fn tick(&self, now: OffsetDateTime) {
        let now_ms = ms(now);
        self.resolve_timed_out(now, now_ms);
        self.run_schedules(now);
        self.evaluate_alert_rules(now_ms);
        self.flush_due_groups(now, now_ms);
    }

    /// When [`Pipeline::tick`] has something to do next, on the router's clock (Unix
    /// ms): a group due, an alert timing out, an alert rule's time.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let snap = self.snapshot.load_full();
        self.notifier
            .next_deadline_ms()
            .into_iter()
            .chain(self.evaluator.next_deadline_ms(&snap.rules))
            .chain(self.schedule_runs.next_ms(snap.rules.schedules()))
            .min()
    }

    /// The state store's answer to every resource, as `state` rules and schedules' event
    /// templates see it.
    fn state_answers(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut state = serde_json::Map::new();
        for resource in self.stores.resources() {
            if let Ok(v) = self.stores.query(resource, "") {
                state.insert(resource.to_owned(), v);
            }
        }
        state
    }

    /// Posts the event of every schedule whose time has come, stored with the mark of its
    /// run (so it is made once); a refusal is tried again on the next tick.
    fn run_schedules(&self, now: OffsetDateTime) {
        let snap = self.snapshot.load_full();
        let due = self.schedule_runs.due(snap.rules.schedules(), now);
        if due.is_empty() {
            return;
        }
        let state = self.state_answers();
        for (schedule, at) in due {
            let event = match schedule.event(at, &state) {
                Ok(e) => e,
                Err(e) => {
                    // Counted as run: the next run may fare better; this one would fail
                    // the same way every tick.
                    tracing::error!(schedule = %schedule.name, file = %schedule.file.display(), line = schedule.line, error = %e, "a schedule's event could not be made; this run is skipped");
                    self.schedule_runs.ran(&schedule.name, at);
                    continue;
                }
            };
            let mark = (schedule.name.clone(), ms(at));
            match self.ingest_with(vec![event], |changes| changes.schedule_runs.push(mark)) {
                Ok(_) => {
                    tracing::info!(schedule = %schedule.name, at = %crate::event::format_time(at), "schedule ran");
                    self.schedule_runs.ran(&schedule.name, at);
                }
                Err(e) => {
                    tracing::warn!(schedule = %schedule.name, error = %e, "a schedule's event could not be stored yet; trying again")
                }
            }
        }
    }

    /// Resolves the alerts whose `resolve_timeout` passed, by ingesting their `resolved`
    /// events. A refusal (a full outbox) is tried again on the next tick.
    fn resolve_timed_out(&self, now: OffsetDateTime, now_ms: i64) {
        let events = self.notifier.timed_out(now, now_ms);
        if events.is_empty() {
            return;
        }
        let n = events.len();
        match self.ingest(events) {
            Ok(_) => tracing::info!(
                alerts = n,
                "alerts resolved: no firing event within their resolve_timeout"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "alerts past their resolve_timeout could not be resolved yet; trying again")
            }
        }
    }

    /// What time alone changes in alert rules (`for:` passed, a window emptied, an
    /// absence, a state rule's look): their alerts, ingested with the series' state.
    fn evaluate_alert_rules(&self, now_ms: i64) {
        let snap = self.snapshot.load_full();
        if snap.rules.alert_rules().is_empty() {
            return;
        }
        // A state rule reads every resource of the state store.
        let check = |idx: usize| {
            let state = self.state_answers();
            let ctx = minijinja::context! { state => Value::from(minijinja::value::Serde(&state)) };
            snap.rules.eval_condition(idx, &ctx)
        };
        let alerts = self.evaluator.on_tick(&snap.rules, now_ms, &check);
        if !alerts.is_empty() {
            let kept = alerts.clone();
            if let Err(e) = self.ingest(alerts) {
                tracing::warn!(error = %e, alerts = kept.len(), "alert rules' alerts could not be stored yet; trying again");
                self.evaluator.retry_later(kept);
            }
        }
        self.write_series();
    }

    /// Writes the alert rules' series that changed since the last time (each tick, and at
    /// a clean stop).
    pub(super) fn write_series(&self) {
        let rows = self.evaluator.take_dirty();
        if rows.is_empty() {
            return;
        }
        let mut batch = Batch::default();
        batch.notify.series = rows.clone();
        if let Err(e) = self.outbox.append_blocking(batch) {
            tracing::warn!(error = %e, "alert rules' state could not be written; trying again");
            self.evaluator.unwritten(rows);
        }
    }

    /// Sends the notification of every group that is due.
    fn flush_due_groups(&self, now: OffsetDateTime, now_ms: i64) {
        for (plan, group) in self.notifier.due(now_ms) {
            let snap = self.snapshot.load_full();
            // What a silence or an inhibition that began since holds back is left out
            // (its group still counts it as said, so it does not come back as news).
            let listed: Vec<Entry> = plan
                .notify
                .iter()
                .flatten()
                .filter(|e| !self.held_back_now(&snap, e, now))
                .cloned()
                .collect();
            let messages = notification(&snap, &plan, &group, &listed, now);
            let mut wanted: Vec<(String, Count, u64)> = Vec::new();
            for m in messages.iter().filter(|m| m.error.is_none()) {
                let max = snap
                    .sinks
                    .get(&m.sink)
                    .map_or(u64::MAX, |e| e.config.max_queue as u64);
                let mut c = Count::default();
                c.add(1, m.bytes());
                wanted.push((m.sink.clone(), c, max));
            }
            let reservation = match self.outbox.reserve(&wanted) {
                Ok(r) => r,
                Err(full) => {
                    tracing::warn!(route = %plan.route, group = %plan.key, error = %full, "a group's notification waits for room in the outbox");
                    continue;
                }
            };
            let batch = Batch {
                messages,
                seen: Vec::new(),
                notify: self.notifier.changes_for(&plan),
            };
            let sent: Vec<(String, bool)> = batch
                .messages
                .iter()
                .map(|m| (m.sink.clone(), m.error.is_none()))
                .collect();
            match self.outbox.append_blocking(batch) {
                Ok(()) => {
                    self.notifier.done(&plan);
                    let routed = sent
                        .iter()
                        .filter(|(sink, ok)| *ok && snap.sinks.contains_key(sink))
                        .map(|_| (plan.route.as_str(), None));
                    self.counters.tally.routes(routed);
                    for (sink, ok) in sent {
                        if let Some(entry) = snap.sinks.get(&sink) {
                            if ok {
                                entry.worker.stats.routed.fetch_add(1, Ordering::Relaxed);
                            } else {
                                entry
                                    .worker
                                    .stats
                                    .render_errors
                                    .fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    if plan.notify.is_some() {
                        tracing::debug!(route = %plan.route, group = %plan.key, "group notification written");
                    }
                }
                Err(e) => {
                    self.outbox.release(reservation);
                    tracing::error!(route = %plan.route, group = %plan.key, error = %e, "a group's notification could not be written; trying again");
                }
            }
        }
    }

    /// Whether a group's entry is silenced or inhibited at `now`.
    fn held_back_now(&self, snap: &Snapshot, entry: &Entry, now: OffsetDateTime) -> bool {
        let Ok(json) = serde_json::from_str(&entry.event) else {
            return false;
        };
        let Ok(event) = crate::event::Event::from_json(json, now) else {
            return false;
        };
        let event = Arc::new(event);
        match self
            .notifier
            .holds_back(&snap.rules, &event, &entry.fingerprint, now)
        {
            Some(by) => {
                tracing::debug!(fingerprint = %entry.fingerprint, %by, "left out of its group's notification");
                true
            }
            None => false,
        }
    }

    /// Forgets what noise control keeps past its time: alerts resolved over an hour ago,
    /// idle throttle series, silences expired five days ago.
    pub fn prune_notify(&self, now: OffsetDateTime, now_ms: i64) {
        let changes = self.notifier.prune(now_ms);
        if !changes.is_empty() {
            let batch = Batch {
                notify: changes,
                ..Batch::default()
            };
            if let Err(e) = self.outbox.append_blocking(batch) {
                tracing::warn!(error = %e, "old resolved alerts could not be deleted; trying again later");
            }
        }
        if let Err(e) = self.notifier.silences.prune(now) {
            tracing::warn!(error = %e, "expired silences could not be pruned; trying again later");
        }
    }
}

/// One group notification per sink of the group that runs; a sink that is gone or
/// did not start gets a dead letter saying so (nothing a group held disappears quietly).
fn notification(
    snap: &Snapshot,
    plan: &Plan,
    group: &GroupState,
    entries: &[Entry],
    now: OffsetDateTime,
) -> Vec<NewMessage> {
    let Some(newest) = entries
        .iter()
        .max_by_key(|e| (e.latest_ms, e.fingerprint.clone()))
    else {
        return Vec::new();
    };
    let newest_json: serde_json::Value =
        serde_json::from_str(&newest.event).unwrap_or(serde_json::Value::Null);
    let event_id = format!("group:{}:{}:{}", plan.route, plan.key, plan.now_ms);
    let event_type = newest_json
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("group")
        .to_owned();
    let template = group.template.clone().unwrap_or_else(|| "group".to_owned());
    let alerts: Vec<Value> = entries.iter().take(MAX_LISTED).map(entry_value).collect();
    let firing = entries
        .iter()
        .filter(|e| e.status != Status::Resolved)
        .count();
    let counts = minijinja::context! {
        firing => firing,
        resolved => entries.len() - firing,
        total => entries.len(),
    };
    let values: serde_json::Map<String, serde_json::Value> = group
        .values
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let window = group.window.as_ref().map_or(Value::from(()), |name| {
        minijinja::context! { name => name, ended_at => format_ms(plan.now_ms) }
    });
    let now_text = crate::event::format_time(now);
    let sinks: Vec<&String> = if group.sinks.is_empty() {
        Vec::new()
    } else {
        group.sinks.iter().collect()
    };
    let mut out = Vec::new();
    for sink in sinks {
        let mut message = NewMessage {
            sink: sink.clone(),
            id: format!("{event_id}:{sink}"),
            event_id: event_id.clone(),
            event_type: event_type.clone(),
            route: plan.route.clone(),
            template: template.clone(),
            payload: None,
            event: newest.event.clone(),
            error: None,
        };
        if let Some(broken) = snap.broken.get(sink) {
            message.error = Some(format!("sink `{sink}` did not start: {}", broken.reason));
            out.push(message);
            continue;
        }
        let Some(entry) = snap.sinks.get(sink) else {
            continue; // disabled, or no longer configured
        };
        let context = |plugin: &str| {
            let base = render::context_with(
                render::json_value(&newest_json),
                &plan.route,
                sink,
                plugin,
                &now_text,
            );
            render::group_context(
                base,
                Value::from(alerts.clone()),
                Value::from(minijinja::value::Serde(&values)),
                counts.clone(),
                window.clone(),
            )
        };
        match render_for_sink(snap, entry, sink, &template, context) {
            Ok(payload) => message.payload = Some(payload.into()),
            Err(e) => message.error = Some(e),
        }
        out.push(message);
    }
    out
}

/// An entry as a grouped template's `alerts` lists it.
fn entry_value(e: &Entry) -> Value {
    let event: serde_json::Value =
        serde_json::from_str(&e.event).unwrap_or(serde_json::Value::Null);
    let (status, ends_at) = match e.status {
        Status::Resolved => ("resolved", Value::from(format_ms(e.latest_ms))),
        _ => ("firing", Value::from(())),
    };
    minijinja::context! {
        status => status,
        fingerprint => e.fingerprint.clone(),
        starts_at => format_ms(e.first_ms),
        ends_at => ends_at,
        count => e.count,
        event => render::json_value(&event),
    }
}
