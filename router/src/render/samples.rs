//! Sample events of every type a registered domain documents, valid as producers would
//! post them, for `check` to render templates with (see `rehearse.rs`).
//!
//! Each documented type comes twice: with its required fields only, so a template that
//! uses an optional field without `is defined` fails as a real event without it would;
//! and with every documented field, so what is guarded gets rendered too. Alertmanager's
//! `alert` comes firing and resolved, made by the same code that reads its webhook.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::event::Event;

/// The type of the custom events a `default.yaml` is tried with.
pub const CUSTOM_TYPE: &str = "disk_full";

/// One sample event and what it is, for messages: `trade_opened` with `required fields
/// only`. Every kind comes in two variants.
#[derive(Debug, Clone)]
pub struct Sample {
    /// `trade_opened`, `alert`, `custom disk_full`.
    pub kind: String,
    /// `required fields only`, `every documented field`, `firing`, `no fields`...
    pub variant: &'static str,
    pub event: Event,
}

/// When every sample happened.
const AT: OffsetDateTime = datetime!(2025-11-03 14:30:00 UTC);

/// Two samples of every documented type and two `alert` events.
pub fn documented() -> Vec<Sample> {
    let mut out = Vec::new();
    for domain in crate::domains::registered() {
        for documented in domain.event_types() {
            let kind = documented.name;
            for (every, variant) in [
                (false, "required fields only"),
                (true, "every documented field"),
            ] {
                let mut event = Map::new();
                event.insert("type".into(), json!(kind));
                event.insert("id".into(), json!(format!("sample-{kind}")));
                for field in documented.fields.iter().filter(|f| every || f.required) {
                    event.insert(field.name.into(), domain.sample_value(kind, field));
                }
                out.extend(sample(kind.to_string(), variant, Value::Object(event)));
            }
        }
    }
    for (status, annotations) in [
        (
            "firing",
            json!({"summary": "CPU above 90% for 5 minutes", "description": "db-1 is at 97%"}),
        ),
        ("resolved", json!({})),
    ] {
        let notification = json!({
            "version": "4", "status": status, "receiver": "alert-router",
            "groupKey": "{}:{alertname=\"HighCPU\"}", "externalURL": "http://alertmanager:9093",
            "alerts": [{
                "status": status,
                "labels": {"alertname": "HighCPU", "severity": "critical", "instance": "db-1"},
                "annotations": annotations,
                "startsAt": "2025-11-03T14:25:00Z",
                "endsAt": if status == "resolved" { "2025-11-03T14:30:00Z" } else { "0001-01-01T00:00:00Z" },
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": "c0ffee",
            }],
        });
        if let Ok(events) = crate::alertmanager::events(notification.to_string().as_bytes(), AT) {
            out.extend(events.into_iter().map(|event| Sample {
                kind: crate::alertmanager::ALERT_TYPE.to_owned(),
                variant: status,
                event,
            }));
        }
    }
    out
}

/// A custom event of type `kind` (any type the router does not document): bare, and with
/// labels, a source and data fields.
pub fn custom(kind: &str) -> Vec<Sample> {
    let bare = json!({"type": kind, "id": format!("sample-{kind}")});
    let full = json!({
        "type": kind, "id": format!("sample-{kind}"), "severity": "warning",
        "source": "sample", "labels": {"env": "prod", "host": "db-1"},
        "used_pct": 97.5, "mount": "/var",
    });
    [
        sample(format!("custom {kind}"), "no fields", bare),
        sample(format!("custom {kind}"), "labels, source and fields", full),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn sample(kind: String, variant: &'static str, event: Value) -> Option<Sample> {
    // The samples are made to be valid; one that is not (a schema changed) is left out
    // rather than reported as the operator's problem. A unit test keeps them valid.
    Event::from_json(event, AT).ok().map(|event| Sample {
        kind,
        variant,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_type_has_two_valid_samples() {
        let samples = documented();
        let types = crate::domains::registered()
            .iter()
            .flat_map(|d| d.event_types());
        for documented in types {
            let (kind, fields) = (documented.name, documented.fields);
            let of: Vec<&Sample> = samples.iter().filter(|s| s.event.kind == kind).collect();
            assert_eq!(of.len(), 2, "{kind}");
            let required = fields.iter().filter(|f| f.required).count();
            assert_eq!(
                of[0].event.data.len(),
                required,
                "{kind}: {}",
                of[0].variant
            );
            assert_eq!(
                of[1].event.data.len(),
                fields.len(),
                "{kind}: {}",
                of[1].variant
            );
        }
        let alerts: Vec<&str> = samples
            .iter()
            .filter(|s| s.event.kind == crate::alertmanager::ALERT_TYPE)
            .map(|s| s.variant)
            .collect();
        assert_eq!(alerts, ["firing", "resolved"]);
        assert_eq!(custom(CUSTOM_TYPE).len(), 2);
    }
}
