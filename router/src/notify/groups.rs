//! Groups: what a grouped route (or a time window in `mode: delay`) holds, and when it
//! speaks. As in Alertmanager: a new group waits `group_wait` before its first
//! notification; after that it looks every `group_interval` and notifies when something
//! changed (a new alert or event, an alert resolved) or when `repeat_interval` passed
//! with alerts still firing. One notification lists every entry of the group: an alert
//! once (its newest event, how many it got), an event that is not an alert once and
//! then never again, a resolved alert once (unless `send_resolved: false`). A window's
//! group speaks once, when the window ends, and is gone.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::deadlines::Deadlines;
use super::rows::{GroupRow, GroupState, HeldRow};

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Firing,
    Resolved,
    /// Not an alert: sent once.
    Event,
}

impl Status {
    pub fn parse(s: &str) -> Status {
        match s {
            "firing" => Status::Firing,
            "resolved" => Status::Resolved,
            _ => Status::Event,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
            Status::Event => "event",
        }
    }
}

/// A group's identity: its route and its key.
pub type GroupId = (String, String);

/// The open groups, and when each speaks next, kept in order: the timer asks which are
/// due and when the next one is without going through every group (a route grouping
/// by every label opens one per alert).
#[derive(Debug, Default)]
pub struct OpenGroups {
    by_id: BTreeMap<GroupId, Group>,
    next: Deadlines<GroupId>,
}

impl OpenGroups {
    pub fn new(by_id: BTreeMap<GroupId, Group>) -> OpenGroups {
        let mut groups = OpenGroups {
            by_id,
            next: Deadlines::default(),
        };
        groups.reindex();
        groups
    }

    pub fn get(&self, id: &GroupId) -> Option<&Group> {
        self.by_id.get(id)
    }

    pub fn values(&self) -> impl Iterator<Item = &Group> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Files `row` in its group, opening it with `open` if it is not; when the group
    /// speaks next.
    pub fn hold(&mut self, row: &HeldRow, open: impl FnOnce() -> Group) -> i64 {
        let id = (row.route.clone(), row.group_key.clone());
        let before = self.by_id.get(&id).map(|g| g.state.next_ms);
        let group = self.by_id.entry(id.clone()).or_insert_with(open);
        group.hold(row);
        let after = group.state.next_ms;
        self.next.moved(&id, before, Some(after));
        after
    }

    /// Carries out `plan` on its group, which closes when it holds nothing more.
    pub fn apply(&mut self, plan: &Plan) {
        let id = (plan.route.clone(), plan.key.clone());
        let Some(group) = self.by_id.get_mut(&id) else {
            return;
        };
        let before = group.state.next_ms;
        group.apply(plan);
        let after = if group.is_empty() {
            self.by_id.remove(&id);
            None
        } else {
            Some(group.state.next_ms)
        };
        self.next.moved(&id, Some(before), after);
    }

    /// Changes every group with `change`, then orders them anew (a reload).
    pub fn change_all(&mut self, mut change: impl FnMut(&mut Group)) {
        self.by_id.values_mut().for_each(&mut change);
        self.reindex();
    }

    /// The groups whose time has come by `now_ms`.
    pub fn due(&self, now_ms: i64) -> impl Iterator<Item = &Group> {
        self.next.due(now_ms).filter_map(|id| self.by_id.get(id))
    }

    /// When the next group speaks.
    pub fn next_ms(&self) -> Option<i64> {
        self.next.next()
    }

    fn reindex(&mut self) {
        self.next = self
            .by_id
            .iter()
            .map(|(id, g)| (g.state.next_ms, id.clone()))
            .collect();
    }
}

/// One alert (or one event) of a group.
#[derive(Debug, Clone)]
pub struct Entry {
    pub fingerprint: String,
    pub status: Status,
    pub first_ms: i64,
    pub latest_ms: i64,
    pub count: u64,
    /// Its newest event, as stored.
    pub event: Arc<str>,
    /// The held rows behind it, oldest first; the last is the newest event.
    pub held: Vec<i64>,
    /// The status the group's last notification said, if it said anything.
    pub notified: Option<Status>,
}

/// One group.
#[derive(Debug, Clone)]
pub struct Group {
    pub route: String,
    pub key: String,
    pub state: GroupState,
    /// By fingerprint; listed in order of `first_ms`.
    pub entries: BTreeMap<String, Entry>,
}

impl Group {
    pub fn row(&self) -> GroupRow {
        GroupRow {
            route: self.route.clone(),
            group_key: self.key.clone(),
            state: self.state.clone(),
        }
    }

    /// Adds a held event.
    pub fn hold(&mut self, row: &HeldRow) {
        let status = Status::parse(&row.status);
        match self.entries.get_mut(&row.fingerprint) {
            Some(entry) => {
                if entry.status == Status::Resolved && status == Status::Firing {
                    // Firing again: a new occurrence.
                    entry.count = 0;
                    entry.first_ms = row.at_ms;
                }
                entry.status = status;
                entry.latest_ms = row.at_ms;
                entry.count += 1;
                entry.event = row.event.clone();
                entry.held.push(row.id);
                if row.notified {
                    entry.notified = Some(status);
                }
            }
            None => {
                self.entries.insert(
                    row.fingerprint.clone(),
                    Entry {
                        fingerprint: row.fingerprint.clone(),
                        status,
                        first_ms: row.at_ms,
                        latest_ms: row.at_ms,
                        count: 1,
                        event: row.event.clone(),
                        held: vec![row.id],
                        notified: row.notified.then_some(status),
                    },
                );
            }
        }
    }

    /// What the group does at `now_ms`, if it is due.
    pub fn plan(&self, now_ms: i64) -> Option<Plan> {
        if self.state.next_ms > now_ms {
            return None;
        }
        let s = &self.state;
        let mut release = Vec::new();
        let mut keep = Vec::new();
        let mut listed = Vec::new();
        // A window's summary, or a group closed by a reload: everything, once.
        let window = s.window.is_some() || s.closing;
        for entry in self.entries.values() {
            let wanted = window || entry.status != Status::Resolved || s.send_resolved;
            if wanted {
                listed.push(entry.clone());
            }
            match entry.status {
                Status::Firing if !window => {
                    // Kept for the next notifications; only its newest event is.
                    let (newest, older) =
                        entry.held.split_last().expect("an entry has a held event");
                    release.extend_from_slice(older);
                    keep.push(*newest);
                }
                _ => release.extend_from_slice(&entry.held),
            }
        }
        let changed = self.entries.values().any(|e| {
            e.notified != Some(e.status) && (e.status != Status::Resolved || s.send_resolved)
        });
        let repeat = s
            .last_notify_ms
            .is_some_and(|last| now_ms - last >= s.repeat_ms)
            && self.entries.values().any(|e| e.status == Status::Firing);
        let notify = !listed.is_empty() && (window || changed || repeat);
        listed.sort_by(|a, b| (a.first_ms, &a.fingerprint).cmp(&(b.first_ms, &b.fingerprint)));
        Some(Plan {
            route: self.route.clone(),
            key: self.key.clone(),
            notify: notify.then_some(listed),
            // Nothing said: resolved entries nobody wants are dropped, the rest stay.
            release: if notify {
                release
            } else {
                self.entries
                    .values()
                    .filter(|e| e.status == Status::Resolved)
                    .flat_map(|e| e.held.iter().copied())
                    .collect()
            },
            keep: if notify { keep } else { Vec::new() },
            now_ms,
        })
    }

    /// Applies a plan whose notification was written. Entries that gained events since
    /// the plan keep them.
    pub fn apply(&mut self, plan: &Plan) {
        let released: std::collections::HashSet<i64> = plan.release.iter().copied().collect();
        let kept: std::collections::HashSet<i64> = plan.keep.iter().copied().collect();
        let listed: BTreeMap<&str, Status> = plan
            .notify
            .iter()
            .flatten()
            .map(|e| (e.fingerprint.as_str(), e.status))
            .collect();
        self.entries.retain(|fp, entry| {
            entry.held.retain(|id| !released.contains(id));
            if let Some(status) = listed.get(fp.as_str())
                && entry.held.iter().any(|id| kept.contains(id))
            {
                entry.notified = Some(*status);
            }
            !entry.held.is_empty()
        });
        let s = &mut self.state;
        if plan.notify.is_some() {
            s.last_notify_ms = Some(plan.now_ms);
        }
        s.next_ms = plan.now_ms + s.interval_ms.max(1);
    }

    /// Whether the group is done (nothing left to say or keep).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A due group's notification and bookkeeping.
#[derive(Debug, Clone)]
pub struct Plan {
    pub route: String,
    pub key: String,
    /// The entries to send, oldest first; `None`: nothing to say this time.
    pub notify: Option<Vec<Entry>>,
    /// Held rows done with once the notification is written.
    pub release: Vec<i64>,
    /// Held rows of firing alerts it includes, kept (marked notified).
    pub keep: Vec<i64>,
    pub now_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(send_resolved: bool) -> Group {
        Group {
            route: "r".into(),
            key: "component=api".into(),
            state: GroupState {
                values: vec![("component".into(), "api".into())],
                sinks: vec!["chat".into()],
                template: None,
                wait_ms: 30_000,
                interval_ms: 60_000,
                repeat_ms: 3_600_000,
                send_resolved,
                created_ms: 0,
                next_ms: 30_000,
                last_notify_ms: None,
                window: None,
                closing: false,
            },
            entries: BTreeMap::new(),
        }
    }

    fn held(id: i64, fp: &str, status: &str, at_ms: i64) -> HeldRow {
        HeldRow {
            id,
            route: "r".into(),
            group_key: "component=api".into(),
            fingerprint: fp.into(),
            status: status.into(),
            event: format!("{{\"n\":{id}}}").into(),
            at_ms,
            notified: false,
        }
    }

    fn sent(plan: &Plan) -> Vec<(String, &'static str, u64)> {
        plan.notify
            .iter()
            .flatten()
            .map(|e| (e.fingerprint.clone(), e.status.as_str(), e.count))
            .collect()
    }

    /// The open groups' order answers as a scan of every group would, whatever they
    /// go through: opening, holding, speaking, closing, a reload's change.
    #[test]
    fn open_groups_in_order_agree_with_a_scan() {
        let mut groups = OpenGroups::default();
        let mut seed: u64 = 11;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let mut now = 0i64;
        for step in 0..3_000 {
            now += next(20_000) as i64;
            match next(4) {
                0 | 1 => {
                    let key = format!("k{}", next(30));
                    let mut row = held(step, &format!("f{}", next(5)), "firing", now);
                    row.group_key = key.clone();
                    let wait = next(60_000) as i64;
                    groups.hold(&row, || {
                        let mut g = group(next(2) == 0);
                        g.key = key.clone();
                        g.state.created_ms = now;
                        g.state.next_ms = now + wait;
                        g
                    });
                }
                2 => {
                    let plans: Vec<Plan> = groups.due(now).filter_map(|g| g.plan(now)).collect();
                    for plan in &plans {
                        groups.apply(plan);
                    }
                }
                _ => {
                    let shift = next(100_000) as i64;
                    groups.change_all(|g| g.state.next_ms = now + shift);
                }
            }
            let probe = now + next(120_000) as i64;
            let scan_next = groups.values().map(|g| g.state.next_ms).min();
            assert_eq!(groups.next_ms(), scan_next, "step {step}");
            let mut scan: Vec<&str> = groups
                .values()
                .filter(|g| g.state.next_ms <= probe)
                .map(|g| g.key.as_str())
                .collect();
            let mut due: Vec<&str> = groups.due(probe).map(|g| g.key.as_str()).collect();
            scan.sort_unstable();
            due.sort_unstable();
            assert_eq!(due, scan, "step {step}");
        }
        assert!(!groups.is_empty(), "the walk kept some groups open");
    }

    #[test]
    fn a_group_waits_then_lists_each_alert_once_and_each_event() {
        let mut g = group(true);
        g.hold(&held(1, "a", "firing", 0));
        g.hold(&held(2, "a", "firing", 1_000));
        g.hold(&held(3, "e1", "event", 2_000));
        assert!(g.plan(29_999).is_none(), "group_wait has not passed");
        let plan = g.plan(30_000).expect("due");
        assert_eq!(
            sent(&plan),
            [("a".into(), "firing", 2), ("e1".into(), "event", 1)]
        );
        assert_eq!(plan.release, [1, 3]);
        assert_eq!(plan.keep, [2]);
        g.apply(&plan);
        assert_eq!(
            g.entries.len(),
            1,
            "the event is gone, the firing alert stays"
        );
        assert_eq!(g.state.next_ms, 90_000);
        // Nothing new at the next interval: silence.
        let quiet = g.plan(90_000).expect("due");
        assert!(quiet.notify.is_none());
        g.apply(&quiet);
        assert_eq!(g.state.last_notify_ms, Some(30_000));
    }

    #[test]
    fn a_resolved_alert_is_sent_once_then_the_group_is_done() {
        let mut g = group(true);
        g.hold(&held(1, "a", "firing", 0));
        let first = g.plan(30_000).expect("due");
        g.apply(&first);
        g.hold(&held(2, "a", "resolved", 40_000));
        let plan = g.plan(90_000).expect("due");
        assert_eq!(sent(&plan), [("a".into(), "resolved", 2)]);
        g.apply(&plan);
        assert!(g.is_empty());
    }

    #[test]
    fn without_send_resolved_a_resolution_is_dropped_quietly() {
        let mut g = group(false);
        g.hold(&held(1, "a", "firing", 0));
        let first = g.plan(30_000).expect("due");
        g.apply(&first);
        g.hold(&held(2, "a", "resolved", 40_000));
        let plan = g.plan(90_000).expect("due");
        assert!(plan.notify.is_none());
        assert_eq!(plan.release, [1, 2]);
        g.apply(&plan);
        assert!(g.is_empty());
    }

    #[test]
    fn firing_alerts_are_repeated_after_repeat_interval() {
        let mut g = group(true);
        g.hold(&held(1, "a", "firing", 0));
        let first = g.plan(30_000).expect("due");
        g.apply(&first);
        let mut now = 30_000;
        while now < 30_000 + 3_600_000 - 60_000 {
            now += 60_000;
            let p = g.plan(now).expect("due");
            assert!(p.notify.is_none(), "no repeat at {now}");
            g.apply(&p);
        }
        now += 60_000;
        let repeat = g.plan(now).expect("due");
        assert_eq!(sent(&repeat), [("a".into(), "firing", 1)]);
    }

    #[test]
    fn an_event_held_while_a_notification_is_written_stays_for_the_next() {
        let mut g = group(true);
        g.hold(&held(1, "a", "firing", 0));
        let plan = g.plan(30_000).expect("due");
        g.hold(&held(2, "b", "firing", 30_001));
        g.apply(&plan);
        assert_eq!(g.entries.len(), 2);
        assert_eq!(g.entries["b"].notified, None);
        assert_eq!(g.entries["a"].notified, Some(Status::Firing));
        let next = g.plan(90_000).expect("due");
        assert_eq!(sent(&next).len(), 2, "b is new: both are listed");
    }

    #[test]
    fn a_window_group_sends_everything_once() {
        let mut g = group(false);
        g.state.window = Some("night".into());
        g.hold(&held(1, "a", "firing", 0));
        g.hold(&held(2, "b", "resolved", 0));
        let plan = g.plan(30_000).expect("due");
        assert_eq!(
            sent(&plan).len(),
            2,
            "a window's summary lists resolved ones too"
        );
        assert_eq!(plan.release, [1, 2]);
        g.apply(&plan);
        assert!(g.is_empty());
    }
}
