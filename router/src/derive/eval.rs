//! Alert rules at work: per rule and series, what the events so far say, and the alert
//! events (`type: alert`, `status: firing` then `resolved`) that follow. Events are read
//! as they are routed; time-based changes (`for:`, `keep_firing_for:`, a count window
//! emptying, an absence, a state rule's look) come from the timer. The series that
//! changed are written every timer tick (a second at most) and at a clean stop, not with
//! each event: a hundred rules reading every event would otherwise mean a hundred rows
//! per event. The alerts themselves are committed with their batch; a crash forgets at
//! most the last second of evaluation (a count or streak a second short). A rule whose
//! definition changed starts fresh.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::rules::{AlertRule, Kind};
use crate::event::{Event, Severity};
use crate::notify::keys;
use crate::rules::Rules;

/// The `source` of the alerts rules make: alert rules never read these.
pub const SOURCE: &str = "alert-rules";

/// One series of one rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The `by` keys' values.
    pub values: Vec<(String, String)>,
    /// Since when the condition holds (threshold, state), not yet for `for:`.
    pub pending_since_ms: Option<i64>,
    /// The condition held at the last look.
    pub holds: bool,
    /// Matching events' times within the window (count).
    pub times: VecDeque<i64>,
    /// Events in a row that held `when` (streak).
    pub run: u32,
    pub last_seen_ms: i64,
    /// Firing since.
    pub firing_since_ms: Option<i64>,
    /// It stopped holding; it resolves at this time unless it holds again.
    pub keep_until_ms: Option<i64>,
    /// The newest matching event, as stored (annotations read it); shared by every rule
    /// that read it.
    pub last_event: Option<Arc<str>>,
    /// Changed since it was last written.
    #[serde(skip)]
    pub dirty: bool,
}

/// What the evaluator writes with a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRow {
    pub rule: String,
    pub key: String,
    pub definition: String,
    /// `None`: the series is gone.
    pub state: Option<Series>,
}

#[derive(Default)]
struct State {
    /// Alerts a tick made that could not be stored yet (a full outbox): the next tick
    /// hands them out again, first.
    unsent: Vec<Event>,
    /// rule name → (definition, series key → series)
    rules: HashMap<String, (String, BTreeMap<String, Series>)>,
    /// When each `state:` rule looks next (Unix ms).
    state_due: HashMap<String, i64>,
}

/// Evaluates every alert rule; lives as long as the router, across reloads.
#[derive(Default)]
pub struct Evaluator {
    state: Mutex<State>,
}

/// A state rule's condition, evaluated by the caller (it needs the state store).
pub type StateCheck<'a> = &'a dyn Fn(usize) -> Result<bool, String>;

impl Evaluator {
    /// From the rows the last run stored; rows of a rule whose definition changed, or
    /// that is gone, are dropped (said in the log).
    pub fn restore(rows: Vec<SeriesRow>, rules: &Rules) -> Evaluator {
        let mut state = State::default();
        let mut dropped: BTreeMap<String, usize> = BTreeMap::new();
        for row in rows {
            let current = rules.alert_rules().iter().find(|r| r.name == row.rule);
            match (current, row.state) {
                (Some(rule), Some(series)) if rule.definition == row.definition => {
                    state
                        .rules
                        .entry(row.rule)
                        .or_insert_with(|| (rule.definition.clone(), BTreeMap::new()))
                        .1
                        .insert(row.key, series);
                }
                _ => *dropped.entry(row.rule).or_default() += 1,
            }
        }
        for (rule, n) in dropped {
            tracing::info!(rule = %rule, series = n, "alert rule changed or gone since the last run: its series start fresh");
        }
        Evaluator {
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a reload: rules whose definition changed (or that are gone) start fresh.
    /// Returns what it did, in words. (A firing alert of such a rule is left to its
    /// `resolve_timeout`.)
    pub fn reconfigure(&self, rules: &Rules) -> Vec<String> {
        let mut state = self.lock();
        let mut out = Vec::new();
        state.rules.retain(|name, (definition, series)| {
            let keep = rules
                .alert_rules()
                .iter()
                .any(|r| &r.name == name && &r.definition == definition);
            if !keep && !series.is_empty() {
                out.push(format!(
                    "alert rule `{name}` changed or is gone: its {} series start fresh",
                    series.len()
                ));
            }
            keep
        });
        state
            .state_due
            .retain(|name, _| rules.alert_rules().iter().any(|r| &r.name == name));
        out
    }

    /// Reads `event` (as routed, before any route's `set`) with every alert rule that
    /// matches it; alerts that start or end go to `alerts`.
    pub fn on_event(
        &self,
        rules: &Rules,
        event: &Arc<Event>,
        event_text: &Arc<str>,
        now_ms: i64,
        alerts: &mut Vec<Event>,
    ) {
        if rules.alert_rules().is_empty() || event.source.as_deref() == Some(SOURCE) {
            return;
        }
        let mut ctx = None;
        // The event as conditions see it, made once for every rule that asks.
        let mut condition_ctx: Option<minijinja::Value> = None;
        let mut state = self.lock();
        for rule in rules.alert_rules() {
            let mut failed = |e: String| {
                tracing::warn!(rule = %rule.name, file = %rule.file.display(), line = rule.line, error = %e, "alert rule condition failed; treated as no match");
            };
            if !rules.matches(&rule.matcher, event, &mut ctx, &mut failed) {
                continue;
            }
            if let Kind::State { .. } = rule.kind {
                // Looked at on the next tick, when the state store has this event.
                state.state_due.insert(rule.name.clone(), now_ms);
                continue;
            }
            let key = if rule.by.is_empty() {
                String::new()
            } else {
                keys::joined_values(&rule.by, event)
            };
            let all = match state.rules.get_mut(&rule.name) {
                Some((_, all)) => all,
                None => {
                    let fresh = (rule.definition.clone(), BTreeMap::new());
                    &mut state.rules.entry(rule.name.clone()).or_insert(fresh).1
                }
            };
            let series = match all.get_mut(&key) {
                Some(series) => series,
                None => all.entry(key).or_insert_with(|| Series {
                    values: keys::values(&rule.by, event),
                    ..Series::default()
                }),
            };
            series.last_seen_ms = now_ms;
            series.last_event = Some(event_text.clone());
            let mut condition = |idx: usize| {
                rules
                    .eval_on_event(idx, event, &mut condition_ctx)
                    .unwrap_or_else(|e| {
                        failed(e);
                        false
                    })
            };
            match &rule.kind {
                Kind::Threshold(idx) => {
                    let holds = condition(*idx);
                    look(rule, series, holds, now_ms);
                }
                Kind::Count { at_least, within } => {
                    series.times.push_back(now_ms);
                    let holds = prune_window(series, *at_least, *within, now_ms);
                    look(rule, series, holds, now_ms);
                }
                Kind::Streak { count, when } => {
                    series.run = if condition(*when) {
                        series.run.saturating_add(1)
                    } else {
                        0
                    };
                    let holds = series.run >= *count;
                    look(rule, series, holds, now_ms);
                }
                Kind::Absent(_) => {
                    // It came: an absence ends.
                    look(rule, series, false, now_ms);
                }
                Kind::State { .. } => {}
            }
            if let Some(alert) = transition(rule, series, now_ms) {
                alerts.push(alert_event(rule, series, alert, now_ms));
            }
            series.dirty = true;
        }
    }

    /// What time alone changes at `now_ms`: `for:` passed, a `keep_firing_for` ran out,
    /// a count window emptied, an absence began, a state rule's look. `state` evaluates a
    /// state rule's condition.
    pub fn on_tick(&self, rules: &Rules, now_ms: i64, state_check: StateCheck<'_>) -> Vec<Event> {
        let mut state = self.lock();
        let mut alerts = std::mem::take(&mut state.unsent);
        for rule in rules.alert_rules() {
            if let Kind::State { condition, every } = &rule.kind {
                let due = state.state_due.get(&rule.name).copied().unwrap_or(i64::MIN);
                if due > now_ms {
                    continue;
                }
                state
                    .state_due
                    .insert(rule.name.clone(), now_ms + every.as_millis() as i64);
                let holds = state_check(*condition).unwrap_or_else(|e| {
                    tracing::warn!(rule = %rule.name, error = %e, "state rule condition failed; treated as not holding");
                    false
                });
                let (_, all) = state
                    .rules
                    .entry(rule.name.clone())
                    .or_insert_with(|| (rule.definition.clone(), BTreeMap::new()));
                let series = all.entry(String::new()).or_default();
                let before = series.clone();
                look(rule, series, holds, now_ms);
                let t = transition(rule, series, now_ms);
                if let Some(status) = t {
                    alerts.push(alert_event(rule, series, status, now_ms));
                }
                if *series != before {
                    series.dirty = true;
                }
                continue;
            }
            let Some((_, all)) = state.rules.get_mut(&rule.name) else {
                continue;
            };
            for series in all.values_mut() {
                let before = series.clone();
                match &rule.kind {
                    Kind::Count { at_least, within } => {
                        let holds = prune_window(series, *at_least, *within, now_ms);
                        look(rule, series, holds, now_ms);
                    }
                    Kind::Absent(after) => {
                        let holds = now_ms - series.last_seen_ms >= after.as_millis() as i64;
                        look(rule, series, holds, now_ms);
                    }
                    // Holding or not changes with events; `for:` and keep may pass.
                    _ => {}
                }
                if let Some(status) = transition(rule, series, now_ms) {
                    alerts.push(alert_event(rule, series, status, now_ms));
                }
                if *series != before {
                    series.dirty = true;
                }
            }
        }
        alerts
    }

    /// The series changed since the last call, to write (and marked written).
    pub fn take_dirty(&self) -> Vec<SeriesRow> {
        let mut state = self.lock();
        let mut rows = Vec::new();
        for (rule, (definition, all)) in state.rules.iter_mut() {
            for (key, series) in all.iter_mut().filter(|(_, s)| s.dirty) {
                series.dirty = false;
                rows.push(SeriesRow {
                    rule: rule.clone(),
                    key: key.clone(),
                    definition: definition.clone(),
                    state: Some(series.clone()),
                });
            }
        }
        rows
    }

    /// A tick's alerts could not be stored: they go out with the next tick's.
    pub fn retry_later(&self, alerts: Vec<Event>) {
        self.lock().unsent.extend(alerts);
    }

    /// Rows that could not be written: marked to be written again.
    pub fn unwritten(&self, rows: Vec<SeriesRow>) {
        let mut state = self.lock();
        for row in rows {
            if let Some(series) = state
                .rules
                .get_mut(&row.rule)
                .and_then(|(_, all)| all.get_mut(&row.key))
            {
                series.dirty = true;
            }
        }
    }

    /// The earliest time something may change by time alone.
    pub fn next_deadline_ms(&self, rules: &Rules) -> Option<i64> {
        let state = self.lock();
        if !state.unsent.is_empty() {
            return Some(i64::MIN);
        }
        let mut next: Option<i64> = state.state_due.values().copied().min();
        if rules
            .alert_rules()
            .iter()
            .any(|r| matches!(r.kind, Kind::State { .. }))
            && next.is_none()
        {
            next = Some(i64::MIN);
        }
        for rule in rules.alert_rules() {
            let Some((_, all)) = state.rules.get(&rule.name) else {
                continue;
            };
            for s in all.values() {
                let mut at = Vec::new();
                if let (Some(p), None) = (s.pending_since_ms, s.firing_since_ms) {
                    at.push(p + rule.for_.as_millis() as i64);
                }
                at.extend(s.keep_until_ms);
                match &rule.kind {
                    Kind::Count { within, .. } => {
                        at.extend(s.times.front().map(|t| t + within.as_millis() as i64));
                    }
                    Kind::Absent(after) if s.firing_since_ms.is_none() => {
                        at.push(s.last_seen_ms + after.as_millis() as i64);
                    }
                    _ => {}
                }
                next = at.into_iter().chain(next).min();
            }
        }
        next
    }
}

/// Records whether the condition holds now.
fn look(rule: &AlertRule, series: &mut Series, holds: bool, now_ms: i64) {
    if holds {
        if series.pending_since_ms.is_none() {
            series.pending_since_ms = Some(now_ms);
        }
        series.keep_until_ms = None;
    } else {
        series.pending_since_ms = None;
        if series.firing_since_ms.is_some() && series.keep_until_ms.is_none() {
            series.keep_until_ms = Some(now_ms + rule.keep_firing_for.as_millis() as i64);
        }
    }
    series.holds = holds;
}

/// Whether the series starts or stops firing at `now_ms`.
fn transition(rule: &AlertRule, series: &mut Series, now_ms: i64) -> Option<&'static str> {
    match series.firing_since_ms {
        None => {
            let since = series.pending_since_ms?;
            if series.holds && now_ms - since >= rule.for_.as_millis() as i64 {
                series.firing_since_ms = Some(now_ms);
                return Some("firing");
            }
            None
        }
        Some(_) => {
            let until = series.keep_until_ms?;
            if !series.holds && now_ms >= until {
                series.keep_until_ms = None;
                return Some("resolved");
            }
            None
        }
    }
}

/// Drops the times that left the window, and all but the newest `at_least` (older ones
/// say nothing the newest do not); whether `at_least` remain.
fn prune_window(
    series: &mut Series,
    at_least: u32,
    within: std::time::Duration,
    now_ms: i64,
) -> bool {
    let from = now_ms - within.as_millis() as i64;
    while series.times.front().is_some_and(|&t| t <= from) || series.times.len() > at_least as usize
    {
        series.times.pop_front();
    }
    series.times.len() >= at_least as usize
}

/// The alert event of `rule`'s series going `status` at `now_ms`.
fn alert_event(rule: &AlertRule, series: &mut Series, status: &str, now_ms: i64) -> Event {
    let since = series.firing_since_ms.unwrap_or(now_ms);
    if status == "resolved" {
        series.firing_since_ms = None;
    }
    let last: Value = series
        .last_event
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    labels.insert("alertname".into(), rule.name.clone());
    for (k, v) in &series.values {
        let name = k.strip_prefix("labels.").unwrap_or(k);
        labels.insert(name.to_owned(), v.clone());
    }
    let ctx = minijinja::context! {
        event => crate::render::json_value(&last),
        series => minijinja::Value::from(minijinja::value::Serde(&labels)),
        rule => &rule.name,
    };
    let env = minijinja::Environment::new();
    let render = |template: &str| {
        env.render_str(template, &ctx).unwrap_or_else(|e| {
            tracing::warn!(rule = %rule.name, error = %e, "an alert rule's label or annotation failed to render; kept as written");
            template.to_owned()
        })
    };
    for (k, v) in &rule.labels {
        labels.insert(k.clone(), render(v));
    }
    let annotations: BTreeMap<String, String> = rule
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), render(v)))
        .collect();
    let at = |ms: i64| {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    let severity = labels
        .get("severity")
        .and_then(|s| s.parse::<Severity>().ok())
        .unwrap_or(rule.severity);
    let mut data = serde_json::Map::new();
    data.insert("alertname".into(), json!(rule.name));
    data.insert("status".into(), json!(status));
    data.insert(
        "summary".into(),
        json!(annotations.get("summary").cloned().unwrap_or_default()),
    );
    data.insert(
        "description".into(),
        json!(annotations.get("description").cloned().unwrap_or_default()),
    );
    data.insert("annotations".into(), json!(annotations));
    data.insert(
        "starts_at".into(),
        json!(crate::event::format_time(at(since))),
    );
    data.insert(
        "ends_at".into(),
        if status == "resolved" {
            json!(crate::event::format_time(at(now_ms)))
        } else {
            Value::Null
        },
    );
    data.insert("rule".into(), json!(rule.name));
    // The rest of an Alertmanager alert's fields (alertmanager.rs), empty, so that a
    // template for `alert` events reads both kinds alike.
    let fingerprint =
        keys::fnv1a(format!("{}\u{ff}{}", rule.name, keys::joined(&series.values)).into_bytes());
    data.insert("fingerprint".into(), json!(fingerprint));
    for empty in ["generator_url", "receiver", "group_key", "external_url"] {
        data.insert(empty.into(), json!(""));
    }
    Event {
        id: format!(
            "rule:{}:{}:{since}:{status}",
            rule.name,
            keys::fnv1a(keys::joined(&series.values).into_bytes())
        ),
        id_given: true,
        kind: crate::alertmanager::ALERT_TYPE.to_owned(),
        severity,
        time: at(now_ms),
        source: Some(SOURCE.to_owned()),
        labels,
        data,
    }
}
