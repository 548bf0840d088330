//! Alerts: events with `status: firing | resolved`, tracked by identity. An alert's
//! fingerprint is its type and labels (or a route's `key:`), hashed as Alertmanager
//! hashes label sets (FNV-1a, 64 bits, over the sorted pairs). The router keeps each
//! one's first and last sight, how many events it got, and its newest event; it
//! resolves by a `resolved` event or after `resolve_timeout` without a `firing` one.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::deadlines::Deadlines;
use super::keys::{self, Key};
use super::rows::AlertRow;
use crate::event::{AlertStatus, Event};

/// How long a resolved alert stays listed (`GET /v1/alerts?state=resolved`).
pub const KEEP_RESOLVED_MS: i64 = 60 * 60 * 1000;

/// The `source` of the events `POST /api/v2/alerts` makes (Alertmanager's API).
pub const ALERTMANAGER_API_SOURCE: &str = "alertmanager-api";

/// An alert's identity. An alert posted to Alertmanager's API (source
/// [`ALERTMANAGER_API_SOURCE`]) is identified as Alertmanager identifies it, whatever the
/// route: by its labels alone (`model.LabelSet.Fingerprint`), so the router's fingerprint
/// is the one Alertmanager's clients know.
pub fn fingerprint(key: Option<&[Key]>, event: &Event) -> String {
    let mut pairs: Vec<(String, String)> = match key {
        _ if event.source.as_deref() == Some(ALERTMANAGER_API_SOURCE) => {
            return label_set_fingerprint(&event.labels);
        }
        Some(keys) => keys::values(keys, event),
        None => {
            let mut pairs = vec![("type".to_owned(), event.kind.clone())];
            pairs.extend(
                event
                    .labels
                    .iter()
                    .map(|(k, v)| (format!("labels.{k}"), v.clone())),
            );
            pairs
        }
    };
    pairs.sort();
    keys::fnv1a(
        pairs
            .iter()
            .flat_map(|(k, v)| k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff])),
    )
}

/// Alertmanager's fingerprint of a label set (prometheus/common `model.LabelSet.Fingerprint`):
/// FNV-1a 64 over the names in order, each name and value followed by the byte 0xff, as
/// 16 hex digits. The empty set hashes nothing (FNV's offset).
pub fn label_set_fingerprint(labels: &std::collections::BTreeMap<String, String>) -> String {
    keys::fnv1a(
        labels
            .iter()
            .flat_map(|(k, v)| k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff])),
    )
}

/// One alert as the router knows it.
#[derive(Debug, Clone)]
pub struct Alert {
    pub fingerprint: String,
    /// Bumped on every change, so a slower writer never overwrites a newer state.
    pub version: i64,
    pub status: AlertStatus,
    pub starts_ms: i64,
    pub ends_ms: Option<i64>,
    /// A firing alert's announced end (`expires_at`, Alertmanager's `endsAt`): it
    /// resolves then unless a firing event moves it, instead of after `resolve_timeout`.
    pub expires_ms: Option<i64>,
    pub updated_ms: i64,
    pub count: u64,
    pub resolve_timeout_ms: i64,
    /// The route whose `key` and `resolve_timeout` it follows (the first that matched).
    pub route: String,
    pub event: Arc<Event>,
    pub event_text: Arc<str>,
}

impl Alert {
    pub fn row(&self) -> AlertRow {
        AlertRow {
            fingerprint: self.fingerprint.clone(),
            version: self.version,
            status: self.status.as_str().to_owned(),
            starts_ms: self.starts_ms,
            // A firing alert has no end yet: its row keeps the announced one.
            ends_ms: match self.status {
                AlertStatus::Firing => self.expires_ms,
                AlertStatus::Resolved => self.ends_ms,
            },
            updated_ms: self.updated_ms,
            count: self.count,
            resolve_timeout_ms: self.resolve_timeout_ms,
            route: self.route.clone(),
            event: self.event_text.clone(),
        }
    }

    /// When it resolves by itself unless a `firing` event comes first: at its announced
    /// end, else `resolve_timeout` after the last one.
    pub fn times_out_at(&self) -> Option<i64> {
        (self.status == AlertStatus::Firing).then(|| {
            self.expires_ms
                .unwrap_or(self.updated_ms + self.resolve_timeout_ms)
        })
    }
}

/// The end a firing alert's event announces: its `expires_at` (RFC 3339), in ms.
pub fn announced_end(event: &Event) -> Option<i64> {
    if event.alert_status() != Some(AlertStatus::Firing) {
        return None;
    }
    let text = event.data.get("expires_at")?.as_str()?;
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The alerts the router tracks: the firing ones, and the resolved ones for an hour.
#[derive(Debug, Default)]
pub struct Alerts {
    by_fingerprint: HashMap<String, Alert>,
    /// The firing ones by when they time out.
    timeouts: Deadlines<String>,
    next_version: i64,
}

/// One event of an alert: under which identity, and the route it follows.
pub struct Sighting<'a> {
    pub fingerprint: &'a str,
    pub event: &'a Arc<Event>,
    pub event_text: &'a Arc<str>,
    pub status: AlertStatus,
    pub route: &'a str,
    pub resolve_timeout_ms: i64,
}

/// What an event did to its alert.
pub struct Observed {
    pub row: AlertRow,
}

impl Alerts {
    /// From the rows stored by an earlier run; a row whose event no longer reads as an
    /// event (a schema change) is skipped, with the reason.
    pub fn restore(rows: Vec<AlertRow>) -> (Alerts, Vec<String>) {
        let mut alerts = Alerts::default();
        let mut skipped = Vec::new();
        for row in rows {
            let event = serde_json::from_str(&row.event)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    Event::from_json(v, time::OffsetDateTime::UNIX_EPOCH).map_err(|e| e.to_string())
                });
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    skipped.push(format!("alert {}: {e}", row.fingerprint));
                    continue;
                }
            };
            let status = if row.status == "resolved" {
                AlertStatus::Resolved
            } else {
                AlertStatus::Firing
            };
            // A firing alert's row keeps its announced end where a resolved one's end is.
            let (ends_ms, expires_ms) = match status {
                AlertStatus::Firing => (None, row.ends_ms),
                AlertStatus::Resolved => (row.ends_ms, None),
            };
            alerts.next_version = alerts.next_version.max(row.version + 1);
            let alert = Alert {
                fingerprint: row.fingerprint,
                version: row.version,
                status,
                starts_ms: row.starts_ms,
                ends_ms,
                expires_ms,
                updated_ms: row.updated_ms,
                count: row.count,
                resolve_timeout_ms: row.resolve_timeout_ms,
                route: row.route,
                event: Arc::new(event),
                event_text: row.event,
            };
            alerts
                .timeouts
                .moved(&alert.fingerprint, None, alert.times_out_at());
            alerts
                .by_fingerprint
                .insert(alert.fingerprint.clone(), alert);
        }
        (alerts, skipped)
    }

    /// Records an alert's event at `now_ms`.
    pub fn observe(&mut self, sighting: Sighting<'_>, now_ms: i64) -> Observed {
        let Sighting {
            fingerprint,
            event,
            event_text,
            status,
            route,
            resolve_timeout_ms,
        } = sighting;
        self.next_version += 1;
        let version = self.next_version;
        let expires_ms = announced_end(event);
        let before = self.get(fingerprint).and_then(Alert::times_out_at);
        let alert = self
            .by_fingerprint
            .entry(fingerprint.to_owned())
            .and_modify(|a| {
                let was = a.status;
                a.version = version;
                a.updated_ms = now_ms;
                a.event = event.clone();
                a.event_text = event_text.clone();
                a.count += 1;
                a.resolve_timeout_ms = resolve_timeout_ms;
                a.expires_ms = expires_ms;
                match (was, status) {
                    // Firing again after it resolved: a new occurrence.
                    (AlertStatus::Resolved, AlertStatus::Firing) => {
                        a.starts_ms = now_ms;
                        a.ends_ms = None;
                        a.count = 1;
                    }
                    (AlertStatus::Firing, AlertStatus::Resolved) => a.ends_ms = Some(now_ms),
                    _ => {}
                }
                a.status = status;
            })
            .or_insert_with(|| Alert {
                fingerprint: fingerprint.to_owned(),
                version,
                status,
                starts_ms: now_ms,
                ends_ms: (status == AlertStatus::Resolved).then_some(now_ms),
                expires_ms,
                updated_ms: now_ms,
                count: 1,
                resolve_timeout_ms,
                route: route.to_owned(),
                event: event.clone(),
                event_text: event_text.clone(),
            });
        let row = alert.row();
        let after = alert.times_out_at();
        self.timeouts.moved(&fingerprint.to_owned(), before, after);
        Observed { row }
    }

    /// A firing alert seen again at `now_ms` without news (a repeated event): its
    /// timeout starts again, or its end moves to the one `expires_ms` announces. The row
    /// to store, when it fires.
    pub fn touch(
        &mut self,
        fingerprint: &str,
        now_ms: i64,
        expires_ms: Option<i64>,
    ) -> Option<AlertRow> {
        let alert = self.by_fingerprint.get_mut(fingerprint)?;
        if alert.status != AlertStatus::Firing {
            return None;
        }
        let before = alert.times_out_at();
        self.next_version += 1;
        alert.version = self.next_version;
        alert.updated_ms = alert.updated_ms.max(now_ms);
        if expires_ms.is_some() {
            alert.expires_ms = expires_ms;
        }
        self.timeouts
            .moved(&fingerprint.to_owned(), before, alert.times_out_at());
        Some(alert.row())
    }

    pub fn get(&self, fingerprint: &str) -> Option<&Alert> {
        self.by_fingerprint.get(fingerprint)
    }

    /// The firing alerts.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.by_fingerprint
            .values()
            .filter(|a| a.status == AlertStatus::Firing)
    }

    pub fn all(&self) -> impl Iterator<Item = &Alert> {
        self.by_fingerprint.values()
    }

    /// Firing alerts whose `resolve_timeout` passed by `now_ms`.
    pub fn timed_out(&self, now_ms: i64) -> Vec<&Alert> {
        self.timeouts
            .due(now_ms)
            .filter_map(|fp| self.by_fingerprint.get(fp))
            .collect()
    }

    /// The earliest time an alert times out.
    pub fn next_timeout(&self) -> Option<i64> {
        self.timeouts.next()
    }

    /// Forgets alerts resolved more than [`KEEP_RESOLVED_MS`] ago; returns their
    /// fingerprints (to delete from storage).
    pub fn prune(&mut self, now_ms: i64) -> Vec<String> {
        let gone: Vec<String> = self
            .by_fingerprint
            .values()
            .filter(|a| a.ends_ms.is_some_and(|e| now_ms - e > KEEP_RESOLVED_MS))
            .map(|a| a.fingerprint.clone())
            .collect();
        for fp in &gone {
            self.by_fingerprint.remove(fp);
        }
        gone
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }
}

/// An alert as `GET /v1/alerts` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub fingerprint: String,
    pub status: &'static str,
    #[serde(rename = "type")]
    pub kind: String,
    pub severity: &'static str,
    pub labels: std::collections::BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: Option<String>,
    /// A firing alert's announced end (see [`Alert::expires_ms`]).
    pub expires_at: Option<String>,
    pub updated_at: String,
    pub count: u64,
    pub route: String,
    /// Why it is not being sent now, if it is not: `silenced by <id>`, `inhibited by
    /// <fingerprint>`.
    pub held_back: Option<String>,
    pub event: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn see(
        alerts: &mut Alerts,
        fingerprint: &str,
        event: &Arc<Event>,
        status: AlertStatus,
        resolve_timeout_ms: i64,
        now_ms: i64,
    ) -> Observed {
        let event_text: Arc<str> = event.to_json_string().into();
        let sighting = Sighting {
            fingerprint,
            event,
            event_text: &event_text,
            status,
            route: "r",
            resolve_timeout_ms,
        };
        alerts.observe(sighting, now_ms)
    }

    fn event(v: serde_json::Value) -> Arc<Event> {
        Arc::new(Event::from_json(v, time::OffsetDateTime::UNIX_EPOCH).expect("an event"))
    }

    #[test]
    fn the_fingerprint_is_the_type_and_labels_whatever_their_order() {
        let a = event(json!({"type": "down", "labels": {"a": "1", "b": "2"}, "x": 1}));
        let b = event(json!({"type": "down", "labels": {"b": "2", "a": "1"}, "x": 2}));
        let c = event(json!({"type": "down", "labels": {"a": "1", "b": "3"}}));
        let d = event(json!({"type": "up", "labels": {"a": "1", "b": "2"}}));
        assert_eq!(fingerprint(None, &a), fingerprint(None, &b));
        assert_ne!(fingerprint(None, &a), fingerprint(None, &c));
        assert_ne!(fingerprint(None, &a), fingerprint(None, &d));
        let by_b = [Key::parse("labels.b").expect("a key")];
        assert_eq!(fingerprint(Some(&by_b), &a), fingerprint(Some(&by_b), &d));
        assert_eq!(fingerprint(None, &a).len(), 16);
    }

    #[test]
    fn an_alert_fires_counts_resolves_and_fires_anew() {
        let mut alerts = Alerts::default();
        let e = event(json!({"type": "down", "status": "firing"}));
        let fp = fingerprint(None, &e);
        see(&mut alerts, &fp, &e, AlertStatus::Firing, 300_000, 1_000);
        see(&mut alerts, &fp, &e, AlertStatus::Firing, 300_000, 2_000);
        let a = alerts.get(&fp).expect("tracked");
        assert_eq!((a.count, a.starts_ms, a.updated_ms), (2, 1_000, 2_000));
        assert_eq!(alerts.next_timeout(), Some(302_000));
        assert!(alerts.timed_out(301_999).is_empty());
        assert_eq!(alerts.timed_out(302_000).len(), 1);
        let row = see(&mut alerts, &fp, &e, AlertStatus::Resolved, 300_000, 3_000).row;
        assert_eq!(
            (row.status.as_str(), row.ends_ms),
            ("resolved", Some(3_000))
        );
        assert_eq!(alerts.next_timeout(), None);
        let again = see(&mut alerts, &fp, &e, AlertStatus::Firing, 300_000, 4_000).row;
        assert_eq!(
            (again.starts_ms, again.ends_ms, again.count),
            (4_000, None, 1)
        );
        assert!(again.version > row.version);
    }

    /// Alertmanager's `endsAt` on a firing alert (`expires_at`): it resolves then, not
    /// after `resolve_timeout`; a repeat moves it; a restart keeps it.
    #[test]
    fn an_announced_end_replaces_the_timeout_and_moves_with_repeats() {
        let mut alerts = Alerts::default();
        let e = event(
            json!({"type": "alert", "status": "firing", "expires_at": "1970-01-01T00:04:00Z"}),
        );
        see(&mut alerts, "f", &e, AlertStatus::Firing, 300_000, 1_000);
        assert_eq!(alerts.next_timeout(), Some(240_000), "not 301_000");
        let moved = announced_end(&event(
            json!({"type": "alert", "status": "firing", "expires_at": "1970-01-01T00:08:00Z"}),
        ));
        let row = alerts.touch("f", 60_000, moved).expect("firing");
        assert_eq!(alerts.next_timeout(), Some(480_000));
        assert_eq!(row.ends_ms, Some(480_000), "stored with the alert");
        // A repeat without one keeps the announced end.
        alerts.touch("f", 120_000, None);
        assert_eq!(alerts.next_timeout(), Some(480_000));
        let (restored, _) = Alerts::restore(alerts.all().map(Alert::row).collect());
        let a = restored.get("f").expect("restored");
        assert_eq!((a.expires_ms, a.ends_ms), (Some(480_000), None));
        assert_eq!(restored.next_timeout(), Some(480_000));
        // A resolved event has no announced end.
        let r = event(
            json!({"type": "alert", "status": "resolved", "expires_at": "1970-01-01T00:08:00Z"}),
        );
        assert_eq!(announced_end(&r), None);
    }

    /// The deadline index answers as a scan of every alert would, whatever happens to
    /// them: firing, repeats, announced ends, resolutions, pruning, a restart.
    #[test]
    fn the_deadline_index_agrees_with_a_scan() {
        let mut alerts = Alerts::default();
        let mut seed: u64 = 7;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let mut now = 0i64;
        for step in 0..5_000 {
            now += next(5_000) as i64;
            let fp = format!("f{}", next(40));
            match next(6) {
                0 | 1 => {
                    let expires = (next(3) == 0).then(|| {
                        let at = time::OffsetDateTime::UNIX_EPOCH
                            + time::Duration::milliseconds(now + next(600_000) as i64);
                        at.format(&time::format_description::well_known::Rfc3339)
                            .expect("a time")
                    });
                    let mut v = json!({"type": "t", "status": "firing"});
                    if let Some(e) = expires {
                        v["expires_at"] = json!(e);
                    }
                    see(
                        &mut alerts,
                        &fp,
                        &event(v),
                        AlertStatus::Firing,
                        next(400_000) as i64,
                        now,
                    );
                }
                2 => {
                    let e = event(json!({"type": "t", "status": "resolved"}));
                    see(&mut alerts, &fp, &e, AlertStatus::Resolved, 300_000, now);
                }
                3 => {
                    alerts.touch(&fp, now, (next(2) == 0).then_some(now + 1_000));
                }
                4 => {
                    alerts.prune(now);
                }
                _ => {
                    let rows = alerts.all().map(Alert::row).collect();
                    alerts = Alerts::restore(rows).0;
                }
            }
            let scan_next = alerts.all().filter_map(Alert::times_out_at).min();
            assert_eq!(alerts.next_timeout(), scan_next, "step {step}");
            let probe = now + next(400_000) as i64;
            let mut scan: Vec<&str> = alerts
                .all()
                .filter(|a| a.times_out_at().is_some_and(|t| t <= probe))
                .map(|a| a.fingerprint.as_str())
                .collect();
            let mut indexed: Vec<&str> = alerts
                .timed_out(probe)
                .into_iter()
                .map(|a| a.fingerprint.as_str())
                .collect();
            scan.sort_unstable();
            indexed.sort_unstable();
            assert_eq!(indexed, scan, "step {step}");
        }
    }

    #[test]
    fn resolved_alerts_are_forgotten_after_an_hour_and_restored_ones_keep_versions() {
        let mut alerts = Alerts::default();
        let e = event(json!({"type": "down", "status": "resolved"}));
        see(&mut alerts, "f", &e, AlertStatus::Resolved, 1, 0);
        assert!(alerts.prune(KEEP_RESOLVED_MS).is_empty());
        let rows: Vec<AlertRow> = alerts.all().map(Alert::row).collect();
        let (mut restored, skipped) = Alerts::restore(rows);
        assert!(skipped.is_empty());
        assert_eq!(
            restored.get("f").map(|a| a.status),
            Some(AlertStatus::Resolved)
        );
        let v = see(&mut restored, "f", &e, AlertStatus::Resolved, 1, 5)
            .row
            .version;
        assert!(v > 1);
        assert_eq!(restored.prune(KEEP_RESOLVED_MS + 1), vec!["f".to_owned()]);
        assert!(restored.is_empty());
    }
}
