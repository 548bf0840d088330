//! `POST /v1/alertmanager`: Prometheus Alertmanager's webhook (payload version 4) as
//! events, one `alert` event per alert in the notification.
//!
//! An alert's event id is `am:<fingerprint>:<status>:<startsAt>`, so what Alertmanager
//! sends again is recognised by the router's dedup: its retries after a `5xx`, and the
//! alerts already notified that a group's next notification repeats ("new alerts
//! added"). A resolution has its own id, and a repeat after `repeat_interval` (hours,
//! beyond the dedup window) is delivered again, as a reminder.
//!
//! Fields of an `alert` event: `alertname`, `status` (`firing` or `resolved`), `summary`
//! and `description` (the annotations of those names, or empty), `annotations`,
//! `starts_at`, `ends_at` (null while firing: Alertmanager sends Go's zero time),
//! `generator_url`, `fingerprint`, `receiver`, `group_key`, `external_url`. The alert's
//! labels are the event's labels; its `severity` label gives the event's severity.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::event::Event;
use crate::ingest::{BatchError, Position};

/// The event type of an Alertmanager alert.
pub const ALERT_TYPE: &str = "alert";

/// A webhook notification. Unknown keys are ignored: Alertmanager keeps adding some
/// (`notification_reason`, `routeLabels`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    version: String,
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    group_key: String,
    #[serde(default, rename = "externalURL")]
    external_url: String,
    alerts: Vec<Alert>,
}

/// One alert, as the webhook sends it (and as `POST /api/v2/alerts` makes it: see
/// [`crate::api`]'s `am_v2`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Alert {
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

/// The events of one notification, in its order. A body that is not a version 4
/// notification, or an alert that does not make a valid event, is refused with where.
pub fn events(body: &[u8], now: OffsetDateTime) -> Result<Vec<Event>, BatchError> {
    let refuse = |position, field: Option<&str>, message: String| BatchError {
        position,
        field: field.map(str::to_owned),
        message,
    };
    let notification: Notification = serde_json::from_slice(body).map_err(|e| {
        refuse(
            Position::Whole,
            None,
            format!("not an Alertmanager webhook notification: {e}"),
        )
    })?;
    if notification.version != "4" {
        return Err(refuse(
            Position::Whole,
            Some("version"),
            format!(
                "payload version {:?}: this endpoint reads version \"4\" (Alertmanager 0.x)",
                notification.version
            ),
        ));
    }
    notification
        .alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| {
            let value = alert_event(&notification, alert)
                .map_err(|(field, message)| refuse(Position::Index(i), Some(field), message))?;
            Event::from_json(value, now)
                .map_err(|e| refuse(Position::Index(i), e.field.as_deref(), e.message))
        })
        .collect()
}

/// The event (as posted to `/v1/events`) for one alert.
fn alert_event(n: &Notification, a: &Alert) -> Result<Value, (&'static str, String)> {
    let mut event = alert_fields(a, "alertmanager")?;
    event.insert("receiver".into(), json!(n.receiver));
    event.insert("group_key".into(), json!(n.group_key));
    event.insert("external_url".into(), json!(n.external_url));
    Ok(Value::Object(event))
}

/// An alert's event, but for what only a notification says (receiver, group key,
/// external URL), with `source` as given.
pub(crate) fn alert_fields(
    a: &Alert,
    source: &str,
) -> Result<Map<String, Value>, (&'static str, String)> {
    let status = match a.status.as_str() {
        "firing" | "resolved" => a.status.clone(),
        other => {
            return Err((
                "status",
                format!("alert status {other:?}: expected firing or resolved"),
            ));
        }
    };
    let starts_at = a.starts_at.as_deref().filter(|t| !is_zero_time(t));
    let ends_at = a.ends_at.as_deref().filter(|t| !is_zero_time(t));
    let time = if status == "resolved" {
        ends_at.or(starts_at)
    } else {
        starts_at
    };
    let annotation = |k: &str| a.annotations.get(k).cloned().unwrap_or_default();
    let mut event = Map::new();
    event.insert("type".into(), json!(ALERT_TYPE));
    if !a.fingerprint.is_empty() {
        event.insert(
            "id".into(),
            json!(format!(
                "am:{}:{status}:{}",
                a.fingerprint,
                starts_at.unwrap_or("")
            )),
        );
    }
    event.insert(
        "severity".into(),
        json!(severity(a.labels.get("severity").map(String::as_str))),
    );
    if let Some(t) = time {
        event.insert("time".into(), json!(t));
    }
    event.insert("source".into(), json!(source));
    event.insert("labels".into(), json!(a.labels));
    event.insert(
        "alertname".into(),
        json!(a.labels.get("alertname").cloned().unwrap_or_default()),
    );
    event.insert("status".into(), json!(status));
    event.insert("summary".into(), json!(annotation("summary")));
    event.insert("description".into(), json!(annotation("description")));
    event.insert("annotations".into(), json!(a.annotations));
    event.insert("starts_at".into(), json!(starts_at));
    event.insert("ends_at".into(), json!(ends_at));
    event.insert("generator_url".into(), json!(a.generator_url));
    event.insert("fingerprint".into(), json!(a.fingerprint));
    Ok(event)
}

/// Alertmanager sends a firing alert's `endsAt` as Go's zero time.
pub(crate) fn is_zero_time(t: &str) -> bool {
    t.starts_with("0001-01-01")
}

/// The router's severity for an alert's `severity` label. Prometheus rules use many
/// words for it; an alert without one, or with a word not known here, is a warning.
fn severity(label: Option<&str>) -> &'static str {
    match label.map(str::to_ascii_lowercase).as_deref() {
        Some("critical" | "page" | "p1" | "fatal" | "emergency") => "critical",
        Some("error" | "high" | "major" | "p2") => "error",
        Some("info" | "low" | "none" | "p4" | "p5") => "info",
        Some("debug") => "debug",
        _ => "warning",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Severity;

    /// Alertmanager 0.34's notification, as the reference gives it, with keys this
    /// endpoint does not read.
    fn notification(status: &str, ends_at: &str) -> Value {
        json!({
          "receiver": "team\\.ops",
          "status": status,
          "alerts": [{
              "status": status,
              "labels": {"alertname": "HighLatency", "cluster": "prod", "instance": "api-1:8080", "severity": "critical"},
              "annotations": {"summary": "p99 latency > 500ms", "description": "api-1 p99 is 812ms"},
              "startsAt": "2026-08-01T11:50:00.000Z",
              "endsAt": ends_at,
              "generatorURL": "http://prometheus.example:9090/graph?g0.expr=x",
              "fingerprint": "c0f5c3a1b2d4e6f7"
          }, {
              "status": status,
              "labels": {"alertname": "DiskFull", "instance": "db-1"},
              "annotations": {},
              "startsAt": "2026-08-01T11:40:00Z",
              "endsAt": ends_at,
              "generatorURL": "",
              "fingerprint": "0123456789abcdef"
          }],
          "groupLabels": {"alertname": "HighLatency"},
          "commonLabels": {},
          "commonAnnotations": {},
          "externalURL": "http://alertmanager.example:9093",
          "version": "4",
          "groupKey": "{}:{alertname=\"HighLatency\"}",
          "truncatedAlerts": 0,
          "notification_reason": "first notification",
          "routeLabels": {}
        })
    }

    fn parse(v: &Value) -> Result<Vec<Event>, BatchError> {
        events(v.to_string().as_bytes(), OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn each_alert_becomes_an_event_with_its_labels_annotations_and_severity() {
        let events = parse(&notification("firing", "0001-01-01T00:00:00Z")).unwrap();
        assert_eq!(events.len(), 2);
        let e = &events[0];
        assert_eq!(e.kind, "alert");
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.id, "am:c0f5c3a1b2d4e6f7:firing:2026-08-01T11:50:00.000Z");
        assert!(e.id_given, "Alertmanager's retries are deduplicated");
        assert_eq!(e.labels["cluster"], "prod");
        let j = e.to_json();
        assert_eq!(j["alertname"], "HighLatency");
        assert_eq!(j["summary"], "p99 latency > 500ms");
        assert_eq!(
            j["ends_at"],
            Value::Null,
            "Go's zero time means still firing"
        );
        assert_eq!(j["time"], "2026-08-01T11:50:00Z");
        assert_eq!(j["receiver"], "team\\.ops");
        assert_eq!(j["source"], "alertmanager");
        let second = events[1].to_json();
        assert_eq!(
            (second["severity"].clone(), second["summary"].clone()),
            (json!("warning"), json!("")),
            "no severity label: a warning; no summary: empty"
        );
    }

    #[test]
    fn a_resolution_has_its_own_id_and_the_time_it_ended() {
        let resolved = parse(&notification("resolved", "2026-08-01T12:10:00Z")).unwrap();
        let firing = parse(&notification("firing", "0001-01-01T00:00:00Z")).unwrap();
        assert_ne!(resolved[0].id, firing[0].id);
        let j = resolved[0].to_json();
        assert_eq!(j["status"], "resolved");
        assert_eq!(j["time"], "2026-08-01T12:10:00Z");
        assert_eq!(j["ends_at"], "2026-08-01T12:10:00Z");
    }

    #[test]
    fn bad_notifications_say_where() {
        let mut v = notification("firing", "0001-01-01T00:00:00Z");
        v["version"] = json!("3");
        let e = parse(&v).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("version"));

        let mut v = notification("firing", "0001-01-01T00:00:00Z");
        v["alerts"][1]["status"] = json!("pending");
        let e = parse(&v).unwrap_err();
        assert_eq!(
            (e.position, e.field.as_deref()),
            (Position::Index(1), Some("status"))
        );

        let mut v = notification("firing", "0001-01-01T00:00:00Z");
        v["alerts"][0]["startsAt"] = json!("yesterday");
        let e = parse(&v).unwrap_err();
        assert_eq!(
            (e.position, e.field.as_deref()),
            (Position::Index(0), Some("time"))
        );

        let e = events(b"[1, 2]", OffsetDateTime::UNIX_EPOCH).unwrap_err();
        assert!(
            e.message
                .contains("not an Alertmanager webhook notification"),
            "{}",
            e.message
        );
    }

    #[test]
    fn severity_words_map_to_the_routers_levels() {
        for (word, level) in [
            (Some("CRITICAL"), "critical"),
            (Some("page"), "critical"),
            (Some("high"), "error"),
            (Some("warning"), "warning"),
            (Some("low"), "info"),
            (Some("whatever"), "warning"),
            (None, "warning"),
        ] {
            assert_eq!(severity(word), level, "{word:?}");
        }
    }
}
