//! The noise controller: for each route an event takes, whether it goes out now, is held
//! for a group or a time window, or is held back (silenced, inhibited, throttled, muted),
//! and, on a timer, the groups' notifications and the alerts that time out. Its state
//! (alerts, groups, throttles) outlives reloads: the pipeline keeps one for its life.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use time::OffsetDateTime;

use super::alerts::{self, Alerts};
use super::groups::{Group, OpenGroups, Plan};
use super::keys;
use super::policy::Mode;
use super::rows::{Changes, GroupState, HeldRow, Stored};
use super::silences::{self, Silences};
use super::throttle::{self, Throttles};
use crate::event::{AlertStatus, Event};
use crate::rules::{Route, Rules};

/// Why a message was not sent when its event came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Silenced,
    Inhibited,
    Throttled,
    /// Folded into a group's notification.
    Grouped,
    /// Dropped by a time window (`mode: drop`).
    Muted,
    /// Kept by a time window (`mode: delay`) for its summary.
    Delayed,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::Silenced,
        Reason::Inhibited,
        Reason::Throttled,
        Reason::Grouped,
        Reason::Muted,
        Reason::Delayed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Silenced => "silenced",
            Reason::Inhibited => "inhibited",
            Reason::Throttled => "throttled",
            Reason::Grouped => "grouped",
            Reason::Muted => "muted",
            Reason::Delayed => "delayed",
        }
    }
}

/// Messages held back, by reason (per sink in its stats, and for the whole router).
#[derive(Debug, Default)]
pub struct HeldCounts([AtomicU64; 6]);

impl HeldCounts {
    pub fn add(&self, reason: Reason, n: u64) {
        self.0[reason as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self, reason: Reason) -> u64 {
        self.0[reason as usize].load(Ordering::Relaxed)
    }

    pub fn to_json(&self) -> serde_json::Value {
        Reason::ALL
            .iter()
            .map(|r| (r.as_str().to_owned(), serde_json::json!(self.get(*r))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// What to do with one route's message for an event.
#[derive(Debug)]
pub enum Verdict {
    /// Send it now; a throttled route says how many were held back before it, and
    /// since when (Unix ms).
    Send { suppressed: Option<(u64, i64)> },
    /// Keep it for a group (or a window's summary): the row goes into the batch, and
    /// [`Notifier::held`] files it once the batch is written.
    Hold(Box<Held>),
    /// Not sent: why, and which silence, alert or window.
    HeldBack(Reason, String),
}

/// An event kept for a group, and how to make the group if it is the first.
#[derive(Debug)]
pub struct Held {
    pub row: HeldRow,
    pub group: GroupState,
    pub reason: Reason,
}

/// The noise controller.
pub struct Notifier {
    state: Mutex<State>,
    pub silences: Arc<Silences>,
    next_held: AtomicI64,
    /// Raised when a group appears or an alert's end comes sooner than the timer's
    /// wake-up: the timer looks again.
    wake: (Mutex<bool>, Condvar),
    /// When the sleeping timer wakes by itself (Unix ms on the router's clock);
    /// `i64::MAX` while it is awake, when anything new must raise it.
    sleeping_until_ms: AtomicI64,
    pub held_back: HeldCounts,
    /// The clock's time (Unix ms) at the end of the timer's last pass: what tests wait
    /// for after moving the clock, before they check that nothing was sent.
    pub last_tick_ms: AtomicI64,
}

#[derive(Default)]
struct State {
    alerts: Alerts,
    groups: OpenGroups,
    throttles: Throttles,
}

impl Notifier {
    /// The controller, with what the last run left: alerts, and groups rebuilt from their
    /// held events (a group whose timers were not stored starts over, from `now_ms`, with
    /// its route's settings in `rules`, or at once if the route is gone).
    pub fn restore(
        stored: Stored,
        silences: Arc<Silences>,
        rules: &Rules,
        now_ms: i64,
    ) -> Notifier {
        let (alerts, skipped) = Alerts::restore(stored.alerts);
        for s in skipped {
            tracing::warn!("{s}; not restored");
        }
        let next_held = stored.held.iter().map(|h| h.id).max().unwrap_or(0) + 1;
        let mut groups: BTreeMap<(String, String), Group> = stored
            .groups
            .into_iter()
            .map(|g| {
                (
                    (g.route.clone(), g.group_key.clone()),
                    Group {
                        route: g.route,
                        key: g.group_key,
                        state: g.state,
                        entries: BTreeMap::new(),
                    },
                )
            })
            .collect();
        for row in &stored.held {
            let group = groups
                .entry((row.route.clone(), row.group_key.clone()))
                .or_insert_with(|| Group {
                    route: row.route.clone(),
                    key: row.group_key.clone(),
                    state: rules
                        .routes()
                        .iter()
                        .find(|r| r.name == row.route)
                        .and_then(|r| group_state(r, Vec::new(), None, now_ms))
                        .unwrap_or_else(|| orphan_state(now_ms)),
                    entries: BTreeMap::new(),
                });
            group.hold(row);
        }
        groups.retain(|_, g| !g.is_empty());
        if !groups.is_empty() || !alerts.is_empty() {
            tracing::info!(
                groups = groups.len(),
                alerts = alerts.len(),
                "restored open groups and alerts from the last run"
            );
        }
        Notifier {
            state: Mutex::new(State {
                alerts,
                groups: OpenGroups::new(groups),
                throttles: Throttles::default(),
            }),
            silences,
            next_held: AtomicI64::new(next_held),
            wake: (Mutex::new(false), Condvar::new()),
            sleeping_until_ms: AtomicI64::new(i64::MAX),
            held_back: HeldCounts::default(),
            last_tick_ms: AtomicI64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an alert event under the identity its first route gives it (that route's
    /// `key`, else its type and labels); returns the fingerprint.
    pub fn observe(
        &self,
        event: &Arc<Event>,
        event_text: &Arc<str>,
        status: AlertStatus,
        route: Option<&Route>,
        now_ms: i64,
        changes: &mut Changes,
    ) -> String {
        let policy = route.map(|r| &r.policy);
        let key = policy.and_then(|p| p.key.as_deref());
        let fingerprint = alerts::fingerprint(key, event);
        let timeout = policy.map_or(super::policy::DEFAULT_RESOLVE_TIMEOUT, |p| {
            p.resolve_timeout
        });
        // An alert rule's alert ends when the rule says so, never by silence.
        let timeout = if event.source.as_deref() == Some(crate::derive::eval::SOURCE) {
            std::time::Duration::from_secs(100 * 365 * 86_400)
        } else {
            timeout
        };
        let sighting = alerts::Sighting {
            fingerprint: &fingerprint,
            event,
            event_text,
            status,
            route: route.map_or("", |r| r.name.as_str()),
            resolve_timeout_ms: timeout.as_millis() as i64,
        };
        let (observed, ends_at) = {
            let mut state = self.lock();
            let observed = state.alerts.observe(sighting, now_ms);
            let ends_at = state
                .alerts
                .get(&fingerprint)
                .and_then(|a| a.times_out_at());
            (observed, ends_at)
        };
        changes.alerts.push(observed.row);
        // Most alerts end later than the timer means to wake anyway: waking it for each
        // one would cost a pass per event.
        if ends_at.is_some_and(|t| t < self.sleeping_until_ms.load(Ordering::Acquire)) {
            self.raise();
        }
        fingerprint
    }

    /// A repeat of a firing alert's event (its id seen before): the alert, if it still
    /// fires, was seen now, so its `resolve_timeout` starts again. Nothing is routed.
    pub fn still_firing(&self, event: &Event, now_ms: i64, changes: &mut Changes) {
        if event.alert_status() != Some(AlertStatus::Firing) {
            return;
        }
        let fingerprint = alerts::fingerprint(None, event);
        let expires_ms = alerts::announced_end(event);
        if let Some(row) = self.lock().alerts.touch(&fingerprint, now_ms, expires_ms) {
            changes.alerts.push(row);
        }
    }

    /// What to do with `route`'s message for `event` (`fingerprint` set for an alert).
    #[allow(clippy::too_many_arguments)]
    pub fn verdict(
        &self,
        rules: &Rules,
        route: &Route,
        sinks: &[String],
        event: &Arc<Event>,
        event_text: &Arc<str>,
        fingerprint: Option<&str>,
        now: OffsetDateTime,
        now_ms: i64,
    ) -> Verdict {
        if let Some(id) = self.silences.matching(event, now) {
            return Verdict::HeldBack(Reason::Silenced, format!("silence {id}"));
        }
        if !rules.inhibitions().is_empty()
            && let Some(by) = self.inhibited_by(rules, event, fingerprint)
        {
            return Verdict::HeldBack(Reason::Inhibited, format!("alert {by}"));
        }
        let policy = &route.policy;
        if policy.is_plain() {
            return Verdict::Send { suppressed: None };
        }
        let hold = |reason: Reason, key: String, group: GroupState| {
            let fingerprint = fingerprint.map_or_else(|| event.id.clone(), str::to_owned);
            let status = event.alert_status().map_or("event", AlertStatus::as_str);
            Verdict::Hold(Box::new(Held {
                row: HeldRow {
                    id: self.next_held.fetch_add(1, Ordering::Relaxed),
                    route: route.name.clone(),
                    group_key: key,
                    fingerprint,
                    status: status.to_owned(),
                    event: event_text.clone(),
                    at_ms: now_ms,
                    notified: false,
                },
                group,
                reason,
            }))
        };
        if let Some(window) = &policy.window
            && let Some((name, ends)) = muted(rules, window, now)
            && !window.unless.is_some_and(|u| u.matches(event.severity))
        {
            return match window.mode {
                Mode::Drop => Verdict::HeldBack(Reason::Muted, format!("time window {name}")),
                Mode::Delay => {
                    let next_ms =
                        ends.map_or(i64::MAX, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
                    let state = GroupState {
                        values: Vec::new(),
                        sinks: sinks.to_vec(),
                        template: route.template.clone(),
                        wait_ms: 0,
                        interval_ms: 0,
                        repeat_ms: 0,
                        send_resolved: true,
                        created_ms: now_ms,
                        next_ms,
                        last_notify_ms: None,
                        window: Some(name.clone()),
                        closing: false,
                    };
                    hold(Reason::Delayed, format!("window:{name}"), state)
                }
            };
        }
        if let Some(t) = &policy.throttle
            && fingerprint.is_none()
        {
            let key = keys::joined(&keys::values(&t.key, event));
            let per_ms = t.per.as_millis() as i64;
            return match self
                .lock()
                .throttles
                .offer(&route.name, key, t.count, per_ms, now_ms)
            {
                throttle::Verdict::Send(suppressed) => Verdict::Send { suppressed },
                throttle::Verdict::HeldBack => Verdict::HeldBack(
                    Reason::Throttled,
                    format!("throttle of route {}", route.name),
                ),
            };
        }
        if let Some(g) = &policy.grouping {
            let values = keys::values(&g.by, event);
            let key = keys::joined(&values);
            if let Some(state) = group_state(route, values, Some(sinks), now_ms) {
                return hold(Reason::Grouped, key, state);
            }
        }
        Verdict::Send { suppressed: None }
    }

    /// Why `event` (an entry of a group about to speak) is held back now, if it is: a
    /// silence or an inhibition that began after it joined its group.
    pub fn holds_back(
        &self,
        rules: &Rules,
        event: &Arc<Event>,
        fingerprint: &str,
        now: OffsetDateTime,
    ) -> Option<String> {
        if let Some(id) = self.silences.matching(event, now) {
            return Some(format!("silence {id}"));
        }
        if rules.inhibitions().is_empty() {
            return None;
        }
        self.inhibited_by(rules, event, Some(fingerprint))
            .map(|fp| format!("alert {fp}"))
    }

    /// The firing alert that inhibits `event`, if one does: it matches an inhibition's
    /// source, `event` its target, they agree on the `equal` keys, and it is not `event`'s
    /// own alert.
    fn inhibited_by(&self, rules: &Rules, event: &Arc<Event>, own: Option<&str>) -> Option<String> {
        let mut ctx = None;
        let mut quiet = |_e: String| {};
        let targeted: Vec<_> = rules
            .inhibitions()
            .iter()
            .filter(|i| rules.matches(&i.target, event, &mut ctx, &mut quiet))
            .collect();
        if targeted.is_empty() {
            return None;
        }
        let state = self.lock();
        for alert in state.alerts.firing() {
            if Some(alert.fingerprint.as_str()) == own {
                continue;
            }
            let mut source_ctx = None;
            for inhibition in &targeted {
                if inhibition
                    .equal
                    .iter()
                    .all(|k| k.value(&alert.event) == k.value(event))
                    && rules.matches(
                        &inhibition.source,
                        &alert.event,
                        &mut source_ctx,
                        &mut quiet,
                    )
                {
                    return Some(alert.fingerprint.clone());
                }
            }
        }
        None
    }

    /// Files the events of a written batch in their groups (making the groups they
    /// start).
    pub fn held(&self, held: Vec<Held>) {
        if held.is_empty() {
            return;
        }
        let mut state = self.lock();
        let mut sooner = false;
        let sleeping_until = self.sleeping_until_ms.load(Ordering::Acquire);
        for h in held {
            let Held { row, group, .. } = h;
            let speaks_at = state.groups.hold(&row, || Group {
                route: row.route.clone(),
                key: row.group_key.clone(),
                state: group,
                entries: BTreeMap::new(),
            });
            sooner |= speaks_at < sleeping_until;
        }
        drop(state);
        // A group that speaks later than the timer wakes anyway needs no wake-up.
        if sooner {
            self.raise();
        }
    }

    /// After a reload: open groups of a route that still groups by the same keys take
    /// its new timers, sinks and template, and keep what they hold and when they last
    /// spoke; those of a route that is gone or groups differently send what they hold
    /// at once, with the settings they had, and close. Returns what it did, in words.
    pub fn reconfigure(&self, rules: &Rules, now_ms: i64) -> Vec<String> {
        let mut state = self.lock();
        let mut closed: BTreeMap<String, usize> = BTreeMap::new();
        state.groups.change_all(|group| {
            if group.state.closing {
                return;
            }
            let route = rules.routes().iter().find(|r| r.name == group.route);
            let same_keys = |r: &&Route| {
                let by: Vec<String> = r
                    .policy
                    .grouping
                    .iter()
                    .flat_map(|g| g.by.iter().map(ToString::to_string))
                    .collect();
                let had: Vec<&String> = group.state.values.iter().map(|(k, _)| k).collect();
                by.iter().collect::<Vec<_>>() == had
            };
            match route {
                Some(r) if group.state.window.is_some() => {
                    // A window's summary keeps its end; it follows the route's sinks.
                    group.state.sinks = r.to.clone();
                    group.state.template = r.template.clone();
                }
                Some(r) if r.policy.grouping.is_some() && same_keys(&r) => {
                    if let Some(new) = group_state(r, group.state.values.clone(), None, now_ms) {
                        let s = &mut group.state;
                        s.sinks = new.sinks;
                        s.template = new.template;
                        s.interval_ms = new.interval_ms;
                        s.repeat_ms = new.repeat_ms;
                        s.send_resolved = new.send_resolved;
                        if s.last_notify_ms.is_none() {
                            // Still waiting for its first word: the new group_wait counts
                            // from when it opened.
                            s.wait_ms = new.wait_ms;
                            s.next_ms = s.created_ms.saturating_add(new.wait_ms);
                        }
                    }
                }
                _ => {
                    group.state.closing = true;
                    group.state.next_ms = now_ms;
                    *closed.entry(group.route.clone()).or_default() += 1;
                }
            }
        });
        drop(state);
        self.raise();
        let mut out: Vec<String> = Vec::new();
        for (route, n) in closed {
            out.push(format!("route `{route}` is gone or groups differently: its {n} open group(s) send what they hold now, and close"));
        }
        out
    }

    /// The groups due at `now_ms`, with what each says and releases.
    pub fn due(&self, now_ms: i64) -> Vec<(Plan, GroupState)> {
        let state = self.lock();
        state
            .groups
            .due(now_ms)
            .filter_map(|g| g.plan(now_ms).map(|p| (p, g.state.clone())))
            .collect()
    }

    /// A plan's notification was written (or there was nothing to write): its group
    /// moves on. Returns the storage changes that record it (written by the caller in
    /// the same batch as the notification, so built before it: see [`Notifier::changes_for`]).
    pub fn done(&self, plan: &Plan) {
        self.lock().groups.apply(plan);
    }

    /// The storage changes of carrying out `plan`: rows released and kept, and the
    /// group's timers after it (or its removal).
    pub fn changes_for(&self, plan: &Plan) -> Changes {
        let state = self.lock();
        let mut changes = Changes {
            released: plan.release.clone(),
            notified: plan.keep.clone(),
            ..Changes::default()
        };
        if let Some(group) = state.groups.get(&(plan.route.clone(), plan.key.clone())) {
            let mut after = group.clone();
            after.apply(plan);
            if after.is_empty() {
                changes
                    .groups_gone
                    .push((plan.route.clone(), plan.key.clone()));
            } else {
                changes.groups.push(after.row());
            }
        }
        changes
    }

    /// Resolved events for the firing alerts whose `resolve_timeout` or announced end
    /// (`expires_at`) passed: the same alert, `status: resolved`, `resolved_by: timeout`,
    /// at `now` (`ends_at` the announced end, when there was one). Their ids are stable
    /// (`timeout:<fingerprint>:<started>`), so a retry after a crash is a repeat, not a
    /// second resolution.
    pub fn timed_out(&self, now: OffsetDateTime, now_ms: i64) -> Vec<Event> {
        let state = self.lock();
        state
            .alerts
            .timed_out(now_ms)
            .into_iter()
            .map(|a| {
                let mut e = (*a.event).clone();
                e.id = format!("timeout:{}:{}", a.fingerprint, a.starts_ms);
                e.id_given = true;
                e.time = now;
                e.data.insert("status".into(), "resolved".into());
                e.data.insert("resolved_by".into(), "timeout".into());
                if let Some(end) = a.expires_ms {
                    e.data.remove("expires_at");
                    e.data.insert("ends_at".into(), format_ms(end).into());
                }
                e
            })
            .collect()
    }

    /// Forgets old resolved alerts and idle throttle series; the alerts' rows to delete.
    pub fn prune(&self, now_ms: i64) -> Changes {
        let mut state = self.lock();
        let gone = state.alerts.prune(now_ms);
        state.throttles.prune(now_ms, 24 * 3600 * 1000);
        Changes {
            alerts_gone: gone,
            ..Changes::default()
        }
    }

    /// When the timer must look next: the earliest group due or alert timing out.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let state = self.lock();
        let groups = state.groups.next_ms();
        let alerts = state.alerts.next_timeout();
        groups.into_iter().chain(alerts).min()
    }

    /// Wakes the timer.
    pub fn raise(&self) {
        let (flag, cv) = &self.wake;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    /// The timer is awake: anything new raises it again.
    pub fn awake(&self) {
        self.sleeping_until_ms.store(i64::MAX, Ordering::Release);
    }

    /// Waits until raised or `timeout` passes; `until_ms` is when that is on the
    /// router's clock, for [`Notifier::observe`] to know whether to raise.
    pub fn sleep(&self, timeout: std::time::Duration, until_ms: i64) {
        self.sleeping_until_ms.store(until_ms, Ordering::Release);
        self.wait(timeout);
        self.awake();
    }

    /// Waits until raised or `timeout` passes.
    pub fn wait(&self, timeout: std::time::Duration) {
        let (flag, cv) = &self.wake;
        let mut raised = flag.lock().unwrap_or_else(|e| e.into_inner());
        if !*raised {
            raised = cv
                .wait_timeout(raised, timeout)
                .map(|(r, _)| r)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        *raised = false;
    }

    /// The alerts, for `GET /v1/alerts`, each with why it is held back if it is.
    pub fn alerts(&self, rules: &Rules, now: OffsetDateTime) -> Vec<alerts::Listed> {
        let list: Vec<alerts::Alert> = self.lock().alerts.all().cloned().collect();
        let mut listed: Vec<alerts::Listed> = list
            .into_iter()
            .map(|a| {
                let held_back = if a.status == AlertStatus::Firing {
                    self.silences
                        .matching(&a.event, now)
                        .map(|id| format!("silenced by {id}"))
                        .or_else(|| {
                            self.inhibited_by(rules, &a.event, Some(&a.fingerprint))
                                .map(|fp| format!("inhibited by {fp}"))
                        })
                } else {
                    None
                };
                alerts::Listed {
                    fingerprint: a.fingerprint.clone(),
                    status: a.status.as_str(),
                    kind: a.event.kind.clone(),
                    severity: a.event.severity.as_str(),
                    labels: a.event.labels.clone(),
                    starts_at: format_ms(a.starts_ms),
                    ends_at: a.ends_ms.map(format_ms),
                    expires_at: a.expires_ms.map(format_ms),
                    updated_at: format_ms(a.updated_ms),
                    count: a.count,
                    route: a.route.clone(),
                    held_back,
                    event: serde_json::from_str(&a.event_text).unwrap_or(serde_json::Value::Null),
                }
            })
            .collect();
        listed.sort_by(|a, b| {
            b.starts_at
                .cmp(&a.starts_at)
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        listed
    }

    /// Silences by state at `now`: `{active, pending, expired}`.
    pub fn silence_counts(&self, now: OffsetDateTime) -> serde_json::Value {
        let (mut active, mut pending, mut expired) = (0u64, 0u64, 0u64);
        for s in self.silences.list(now) {
            match s.state {
                silences::State::Active => active += 1,
                silences::State::Pending => pending += 1,
                silences::State::Expired => expired += 1,
            }
        }
        serde_json::json!({"active": active, "pending": pending, "expired": expired})
    }

    /// Open groups and alerts, for `/v1/status`.
    pub fn summary(&self) -> serde_json::Value {
        let state = self.lock();
        let firing = state.alerts.firing().count();
        let held: usize = state.groups.values().map(|g| g.entries.len()).sum();
        let last_tick = self.last_tick_ms.load(Ordering::Relaxed);
        serde_json::json!({
            "last_tick": (last_tick > 0).then(|| format_ms(last_tick)),
            "alerts": {"firing": firing, "resolved": state.alerts.len() - firing},
            "groups": state.groups.len(),
            "held_entries": held,
            "throttle_series": state.throttles.len(),
        })
    }
}

/// A new group's settings from its route, or `None` when the route is not grouped.
fn group_state(
    route: &Route,
    values: Vec<(String, String)>,
    sinks: Option<&[String]>,
    now_ms: i64,
) -> Option<GroupState> {
    let g = route.policy.grouping.as_ref()?;
    let ms = |d: std::time::Duration| d.as_millis().min(i64::MAX as u128) as i64;
    Some(GroupState {
        values,
        sinks: sinks.map_or_else(|| route.to.clone(), <[String]>::to_vec),
        template: route.template.clone(),
        wait_ms: ms(g.wait),
        interval_ms: ms(g.interval),
        repeat_ms: ms(g.repeat),
        send_resolved: g.send_resolved,
        created_ms: now_ms,
        next_ms: now_ms.saturating_add(ms(g.wait)),
        last_notify_ms: None,
        window: None,
        closing: false,
    })
}

/// A group whose route is gone: it says what it holds at once, to no sink the config
/// still has, which the notification's writer reports.
fn orphan_state(now_ms: i64) -> GroupState {
    GroupState {
        values: Vec::new(),
        sinks: Vec::new(),
        template: None,
        wait_ms: 0,
        interval_ms: 60_000,
        repeat_ms: i64::MAX,
        send_resolved: true,
        created_ms: now_ms,
        next_ms: now_ms,
        last_notify_ms: None,
        window: None,
        closing: true,
    }
}

/// Whether `window` holds messages back at `now`: the window's name, and when it ends
/// (when known).
fn muted(
    rules: &Rules,
    window: &super::policy::Window,
    now: OffsetDateTime,
) -> Option<(String, Option<OffsetDateTime>)> {
    let intervals = rules.time_intervals();
    for name in &window.muted_during {
        if let Some(interval) = intervals.get(name)
            && interval.contains(now)
        {
            return Some((name.clone(), interval.next_change(now)));
        }
    }
    if window.active_during.is_empty() {
        return None;
    }
    // Names are checked when the rules load; one missing here would mute for ever.
    let active = intervals
        .union(window.active_during.iter().map(String::as_str))
        .ok()?;
    if active.contains(now) {
        return None;
    }
    Some((
        format!("outside {}", window.active_during.join(", ")),
        active.next_change(now),
    ))
}

fn format_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(crate::event::format_time)
        .unwrap_or_default()
}
