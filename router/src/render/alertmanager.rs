//! Filters that shape a group's notification as Alertmanager's webhook sends it (version
//! 4), so a receiver written for Alertmanager keeps working behind the router
//! (`import-alertmanager` writes such a template for every webhook receiver):
//!
//! - `alerts|alertmanager_alerts`: each alert as `{status, labels, annotations,
//!   startsAt, endsAt, generatorURL, fingerprint}`: the times of the alert as
//!   Alertmanager's API got them (`event.starts_at`, `event.ends_at`), else as the
//!   router saw it; `endsAt` Go's zero time while firing, as Alertmanager writes it;
//! - `alerts|common_labels`, `alerts|common_annotations`: the pairs every alert's event
//!   has;
//! - `group|group_labels`: the `labels.<name>` keys of `group_by` and their values, by
//!   label name (`labels.*`: every label of the group).
//!
//! What an event lacks (labels, annotations, a generator URL) is empty, never an error:
//! a group may hold the router's own events as well as Alertmanager's.

use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::{Map, Value as Json, json};

/// How Alertmanager writes the end of an alert that has none yet.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Registers every filter of this module on `env` (their names are in filters::NAMES).
pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("alertmanager_alerts", alertmanager_alerts);
    env.add_filter("common_labels", common_labels);
    env.add_filter("common_annotations", common_annotations);
    env.add_filter("group_labels", group_labels);
}

fn alertmanager_alerts(alerts: &Value) -> Result<Value, Error> {
    let shaped: Vec<Json> = list("alertmanager_alerts", alerts)?
        .iter()
        .map(|a| {
            let event = a.get("event").unwrap_or(&Json::Null);
            let text = |v: Option<&Json>| v.and_then(Json::as_str).unwrap_or_default().to_owned();
            let ends_at = [event.get("ends_at"), a.get("ends_at")]
                .into_iter()
                .flatten()
                .find_map(Json::as_str)
                .unwrap_or(ZERO_TIME);
            json!({
                "status": text(a.get("status")),
                "labels": object(event.get("labels")),
                "annotations": object(event.get("annotations")),
                // Alertmanager's own times when the alert came from it, else the
                // router's.
                "startsAt": text(event.get("starts_at").or(a.get("starts_at"))),
                "endsAt": ends_at,
                "generatorURL": text(event.get("generator_url")),
                "fingerprint": text(a.get("fingerprint")),
            })
        })
        .collect();
    Ok(super::view::value(&Json::Array(shaped)))
}

fn common_labels(alerts: &Value) -> Result<Value, Error> {
    common("common_labels", alerts, "labels")
}

fn common_annotations(alerts: &Value) -> Result<Value, Error> {
    common("common_annotations", alerts, "annotations")
}

/// The pairs of `event.<field>` that every alert has, with the same value.
fn common(filter: &str, alerts: &Value, field: &str) -> Result<Value, Error> {
    let alerts = list(filter, alerts)?;
    let mut maps = alerts
        .iter()
        .map(|a| object(a.get("event").and_then(|e| e.get(field))));
    let mut shared = maps.next().unwrap_or_default();
    for map in maps {
        shared.retain(|k, v| map.get(k) == Some(v));
    }
    Ok(super::view::value(&Json::Object(shared)))
}

fn group_labels(group: &Value) -> Result<Value, Error> {
    let group: Json = as_json("group_labels", group)?;
    let mut labels = Map::new();
    for (key, value) in group.as_object().into_iter().flatten() {
        if key == "labels.*" {
            // Every label, joined as `a=1,b=x` (notify/keys.rs): split back.
            for pair in value.as_str().unwrap_or_default().split(',') {
                if let Some((k, v)) = pair.split_once('=') {
                    labels.insert(k.to_owned(), Json::String(v.trim_matches('"').to_owned()));
                }
            }
        } else if let Some(name) = key.strip_prefix("labels.") {
            labels.insert(name.to_owned(), value.clone());
        }
    }
    Ok(super::view::value(&Json::Object(labels)))
}

/// `value` as a JSON list, or an error naming the filter.
fn list(filter: &str, value: &Value) -> Result<Vec<Json>, Error> {
    match as_json(filter, value)? {
        Json::Array(items) => Ok(items),
        Json::Null => Ok(Vec::new()),
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{filter}: expected the group's `alerts` list, got {other}"),
        )),
    }
}

/// An object field as a map; anything else (missing, null) as an empty one.
fn object(value: Option<&Json>) -> Map<String, Json> {
    value.and_then(Json::as_object).cloned().unwrap_or_default()
}

/// A template value as JSON, or an error naming the filter.
fn as_json(filter: &str, value: &Value) -> Result<Json, Error> {
    use super::json::Unconvertible;
    super::json::to_json(value, super::Markup::None).map_err(|e| match e {
        Unconvertible::Undefined => Error::new(
            ErrorKind::UndefinedError,
            format!("{filter}: the value is undefined (a group template's `alerts` or `group`?)"),
        ),
        Unconvertible::Other(why) => {
            Error::new(ErrorKind::InvalidOperation, format!("{filter}: {why}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, ctx: Json) -> String {
        let mut env = Environment::new();
        register(&mut env);
        env.render_str(template, super::super::view::value(&ctx))
            .expect("renders")
    }

    #[test]
    fn a_group_reads_as_alertmanagers_webhook() {
        let ctx = json!({
            "group": {"labels.team": "db", "component": "x"},
            "alerts": [
                {"status": "firing", "fingerprint": "d240efc3896bf266", "starts_at": "2026-12-04T10:00:00Z",
                 "ends_at": null, "count": 2,
                 "event": {"labels": {"alertname": "Disk", "team": "db", "host": "a"},
                           "annotations": {"summary": "full", "runbook": "r1"},
                           "generator_url": "http://prom/graph"}},
                {"status": "resolved", "fingerprint": "aa", "starts_at": "2026-12-04T09:00:00Z",
                 "ends_at": "2026-12-04T09:30:00Z", "count": 1,
                 "event": {"labels": {"alertname": "Disk", "team": "db", "host": "b"},
                           "annotations": {"summary": "full", "runbook": "r2"}}},
            ],
        });
        let out = render(
            "{{ alerts|alertmanager_alerts|tojson }}|{{ alerts|common_labels|tojson }}|{{ alerts|common_annotations|tojson }}|{{ group|group_labels|tojson }}",
            ctx,
        );
        let parts: Vec<Json> = out
            .split('|')
            .map(|p| serde_json::from_str(p).expect("json"))
            .collect();
        assert_eq!(
            parts[0][0],
            json!({"status": "firing", "labels": {"alertname": "Disk", "team": "db", "host": "a"},
                   "annotations": {"summary": "full", "runbook": "r1"},
                   "startsAt": "2026-12-04T10:00:00Z", "endsAt": ZERO_TIME,
                   "generatorURL": "http://prom/graph", "fingerprint": "d240efc3896bf266"})
        );
        assert_eq!(parts[0][1]["endsAt"], "2026-12-04T09:30:00Z");
        assert_eq!(parts[0][1]["generatorURL"], "", "none: empty");
        assert_eq!(parts[1], json!({"alertname": "Disk", "team": "db"}));
        assert_eq!(parts[2], json!({"summary": "full"}));
        assert_eq!(parts[3], json!({"team": "db"}), "labels only, by name");
    }

    #[test]
    fn every_label_grouping_and_events_without_labels() {
        let ctx = json!({
            "group": {"labels.*": "alertname=Disk,host=a"},
            "alerts": [{"status": "firing", "event": {"type": "error"}}],
        });
        assert_eq!(
            render(
                "{{ group|group_labels|tojson }} {{ alerts|common_labels|tojson }} {{ (alerts|alertmanager_alerts)[0].labels|tojson }}",
                ctx
            ),
            r#"{"alertname": "Disk", "host": "a"} {} {}"#
        );
    }
}
