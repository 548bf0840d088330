//! Prometheus Alertmanager's API v2, the parts its clients use (Prometheus itself,
//! `amtool`), under its paths: `POST`/`GET /api/v2/alerts`, `GET`/`POST
//! /api/v2/silences`, `GET`/`DELETE /api/v2/silence/{id}`, `GET /api/v2/status`, and
//! `/-/ready`, `/-/healthy`.
//!
//! A posted alert becomes an `alert` event as the webhook's do ([`crate::alertmanager`]),
//! with source [`ALERTMANAGER_API_SOURCE`]: its fingerprint is Alertmanager's (over its
//! labels alone), and so is the router's identity for it, whatever the route. Its status
//! is `resolved` when `endsAt` has passed on the router's clock, else `firing`.
//!
//! Alertmanager's matchers name labels: `alertname="x"` here is `labels.alertname="x"`,
//! and a silence's `labels.<name>` matchers are shown by the label's name. A silence set
//! through `/v1/silences` on something else (`type`, `severity`) shows that name as it is.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ApiError, AppState, form_pairs, silence_error};
use crate::alertmanager::{Alert, alert_fields, is_zero_time};
use crate::event::{Event, format_time};
use crate::ingest::{BatchError, Position};
use crate::notify::alerts::{ALERTMANAGER_API_SOURCE, Listed, label_set_fingerprint};
use crate::notify::matchers::{Matcher, Op};
use crate::notify::silences::SilenceView;

const LABELS: &str = "labels.";

/// The API's routes, to go behind the same middleware as `/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/alerts", post(post_alerts).get(get_alerts))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/api/v2/status", get(get_status))
}

/// `/-/ready` and `/-/healthy`: answered without a token, as `/healthz` is.
pub fn health() -> Router<AppState> {
    Router::new()
        .route("/-/ready", get(|| async { "OK" }))
        .route("/-/healthy", get(|| async { "OK" }))
}

/// A postable alert's keys: `labels` (required, not empty), `annotations`, `startsAt`,
/// `endsAt`, `generatorURL`.
const ALERT_KEYS: [&str; 5] = [
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
];

/// The events for `POST /api/v2/alerts`' body, in its order; a bad alert is refused with
/// its index and field.
pub fn events(body: &[u8], now: OffsetDateTime) -> Result<Vec<Event>, BatchError> {
    let refuse = |position, field: Option<&str>, message: String| BatchError {
        position,
        field: field.map(str::to_owned),
        message,
    };
    let items: Vec<Value> = serde_json::from_slice(body).map_err(|e| {
        refuse(
            Position::Whole,
            None,
            format!("not a list of Alertmanager alerts ([{{\"labels\": {{...}}, ...}}]): {e}"),
        )
    })?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at =
                |(field, message): (&str, String)| refuse(Position::Index(i), Some(field), message);
            let value = alert_event(item, now).map_err(at)?;
            Event::from_json(value, now)
                .map_err(|e| refuse(Position::Index(i), e.field.as_deref(), e.message))
        })
        .collect()
}

/// The event for one postable alert at `now`.
fn alert_event(item: Value, now: OffsetDateTime) -> Result<Value, (&'static str, String)> {
    let Value::Object(mut map) = item else {
        return Err((
            "alert",
            format!(
                "an alert is an object {{\"labels\": {{...}}, ...}}, got {}",
                alert_router_domain::describe_value(&item)
            ),
        ));
    };
    if let Some(key) = map.keys().find(|k| !ALERT_KEYS.contains(&k.as_str())) {
        return Err((
            "alert",
            format!(
                "unknown key `{key}`: an alert has {}",
                ALERT_KEYS.join(", ")
            ),
        ));
    }
    fn take<T: serde::de::DeserializeOwned + Default>(
        map: &mut serde_json::Map<String, Value>,
        field: &'static str,
        shape: &str,
    ) -> Result<T, (&'static str, String)> {
        match map.remove(field) {
            None | Some(Value::Null) => Ok(T::default()),
            Some(v) => {
                serde_json::from_value(v).map_err(|e| (field, format!("expected {shape}: {e}")))
            }
        }
    }
    let labels: BTreeMap<String, String> = take(&mut map, "labels", "an object of strings")?;
    let annotations: BTreeMap<String, String> =
        take(&mut map, "annotations", "an object of strings")?;
    let starts_at: Option<String> = take(&mut map, "startsAt", "a time")?;
    let ends_at: Option<String> = take(&mut map, "endsAt", "a time")?;
    let generator_url: String = take(&mut map, "generatorURL", "a string")?;
    if labels.is_empty() {
        return Err(("labels", "at least one label pair required".into()));
    }
    if let Some(name) = labels.keys().find(|n| !is_label_name(n)) {
        return Err((
            "labels",
            format!("{name:?} is not a label name: [a-zA-Z_][a-zA-Z0-9_]*"),
        ));
    }
    let instant = |field: &'static str, t: Option<String>| {
        t.filter(|t| !t.is_empty() && !is_zero_time(t))
            .map(|t| match OffsetDateTime::parse(&t, &Rfc3339) {
                Ok(at) => Ok((t, at)),
                Err(e) => Err((field, format!("{t:?} is not an RFC 3339 time: {e}"))),
            })
            .transpose()
    };
    let starts = instant("startsAt", starts_at)?;
    let ends = instant("endsAt", ends_at)?;
    if let (Some((_, s)), Some((_, e))) = (&starts, &ends)
        && e < s
    {
        return Err(("endsAt", "start time must be before end time".into()));
    }
    let resolved = ends.as_ref().is_some_and(|(_, e)| *e <= now);
    let fingerprint = label_set_fingerprint(&labels);
    // Alertmanager starts an alert without a start now.
    let starts_at = starts.map_or_else(|| format_time(now), |(t, _)| t);
    let alert = Alert {
        status: if resolved { "resolved" } else { "firing" }.to_owned(),
        labels,
        annotations,
        starts_at: Some(starts_at),
        // A firing alert has no end yet; when it would end is its `expires_at` below.
        ends_at: if resolved {
            ends.clone().map(|(t, _)| t)
        } else {
            None
        },
        generator_url,
        fingerprint,
    };
    let mut event = alert_fields(&alert, ALERTMANAGER_API_SOURCE)?;
    if let (false, Some((end, _))) = (resolved, ends) {
        // When Alertmanager would resolve it unless told again (Prometheus moves it
        // with every resend): the router does the same.
        event.insert("expires_at".into(), Value::String(end));
    }
    Ok(Value::Object(event))
}

/// Prometheus' label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `POST /api/v2/alerts`: 200 with an empty body once the events are in the outbox, as
/// Alertmanager answers; 400 for a bad alert, 503 when the outbox refuses (Prometheus
/// retries a 5xx).
async fn post_alerts(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let events = events(&body, crate::clock::now()).map_err(|e| {
        state
            .pipeline
            .counters
            .rejected
            .fetch_add(1, Ordering::Relaxed);
        ApiError::BadRequest(e)
    })?;
    match state.pipeline.ingest_async(events).await {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(e) => Err(ApiError::Refused(e)),
    }
}

/// One `filter` value, an Alertmanager matcher over a label (`name="value"`,
/// `name=~"re"`, ...; braces allowed): the matcher (named `labels.<name>`) and the label.
fn filter(text: &str) -> Result<(Matcher, String), ApiError> {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t)
        .trim();
    let m = Matcher::parse(&format!("{LABELS}{t}"))
        .map_err(|e| ApiError::Invalid(format!("bad matcher format: {text:?}: {e}")))?;
    let label = m.name()[LABELS.len()..].to_owned();
    Ok((m, label))
}

fn flag(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::Invalid(format!(
            "{key}={value:?}: write true or false"
        ))),
    }
}

/// `GET /api/v2/alerts?filter=..&active=..&silenced=..&inhibited=..&unprocessed=..
/// &receiver=..`: the firing alerts as Alertmanager's gettable alerts. A receiver is the
/// route the alert follows.
async fn get_alerts(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (mut active, mut silenced, mut inhibited) = (true, true, true);
    let mut filters = Vec::new();
    let mut receiver: Option<Matcher> = None;
    for (key, value) in form_pairs(query.as_deref().unwrap_or(""))? {
        match key.as_str() {
            "filter" => filters.push(filter(&value)?),
            "active" => active = flag(&key, &value)?,
            "silenced" => silenced = flag(&key, &value)?,
            "inhibited" => inhibited = flag(&key, &value)?,
            // Every alert the router lists is processed.
            "unprocessed" => {
                flag(&key, &value)?;
            }
            "receiver" => {
                receiver = Some(Matcher::new("receiver", Op::Regex, &value).map_err(|e| {
                    ApiError::Invalid(format!("failed to parse receiver param: {e}"))
                })?)
            }
            other => {
                return Err(ApiError::Invalid(format!(
                    "`{other}` is not a parameter of /api/v2/alerts: use filter, active, silenced, inhibited, unprocessed or receiver"
                )));
            }
        }
    }
    let pipeline = state.pipeline.clone();
    let listed = pipeline
        .notifier
        .alerts(&pipeline.snapshot().rules, crate::clock::now());
    let alerts: Vec<Value> = listed
        .iter()
        .filter(|a| a.status == "firing")
        .filter(|a| {
            filters
                .iter()
                .all(|(m, label)| m.matches_text(a.labels.get(label).map_or("", String::as_str)))
        })
        .filter(|a| receiver.as_ref().is_none_or(|r| r.matches_text(&a.route)))
        .filter(|a| {
            let held = a.held_back.as_deref().unwrap_or("");
            if held.starts_with("silenced by ") {
                silenced
            } else if held.starts_with("inhibited by ") {
                inhibited
            } else {
                active
            }
        })
        .map(gettable_alert)
        .collect();
    Ok(Json(alerts).into_response())
}

/// An alert as Alertmanager's `gettableAlert`.
fn gettable_alert(a: &Listed) -> Value {
    let held = a.held_back.as_deref().unwrap_or("");
    let silenced_by: Vec<&str> = held.strip_prefix("silenced by ").into_iter().collect();
    let inhibited_by: Vec<&str> = held.strip_prefix("inhibited by ").into_iter().collect();
    let state = if held.is_empty() {
        "active"
    } else {
        "suppressed"
    };
    let event = &a.event;
    let starts_at = event["starts_at"]
        .as_str()
        .map_or_else(|| a.starts_at.clone(), str::to_owned);
    json!({
        "labels": a.labels,
        "annotations": event.get("annotations").filter(|v| v.is_object()).cloned().unwrap_or_else(|| json!({})),
        "startsAt": starts_at,
        // A firing alert shows when it would resolve, as Alertmanager does; Go's zero
        // time says "none" to its clients.
        "endsAt": a.ends_at.clone().or_else(|| a.expires_at.clone()).unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned()),
        "updatedAt": a.updated_at,
        "generatorURL": event["generator_url"].as_str().unwrap_or(""),
        "fingerprint": a.fingerprint,
        "receivers": [{"name": a.route}],
        "status": {"state": state, "silencedBy": silenced_by, "inhibitedBy": inhibited_by},
    })
}

/// A router matcher as Alertmanager's: `labels.<name>` by the label's name, any other
/// name as it is.
fn am_matcher(m: &Matcher) -> Value {
    let name = m.name().strip_prefix(LABELS).unwrap_or(m.name());
    json!({
        "name": name,
        "value": m.value(),
        "isRegex": m.op().is_regex(),
        "isEqual": !m.op().is_negative(),
    })
}

/// A silence as Alertmanager's `gettableSilence`.
fn gettable_silence(v: &SilenceView) -> Value {
    let s = &v.silence;
    json!({
        "id": s.id,
        "status": {"state": v.state.as_str()},
        "updatedAt": format_time(s.updated_at),
        "matchers": s.matchers.iter().map(am_matcher).collect::<Vec<_>>(),
        "startsAt": format_time(s.starts_at),
        "endsAt": format_time(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

/// Whether silence `v` passes the `filter` matchers, as Alertmanager has it: each must
/// match the value the silence's equality matcher on that label gives (empty if none).
fn silence_passes(v: &SilenceView, filters: &[(Matcher, String)]) -> bool {
    filters.iter().all(|(f, label)| {
        let value = v
            .silence
            .matchers
            .iter()
            .find(|m| m.op() == Op::Equal && m.name().strip_prefix(LABELS) == Some(label))
            .map_or("", Matcher::value);
        f.matches_text(value)
    })
}

/// `GET /api/v2/silences?filter=..`: active first, then pending, then expired.
async fn get_silences(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut filters = Vec::new();
    for (key, value) in form_pairs(query.as_deref().unwrap_or(""))? {
        match key.as_str() {
            "filter" => filters.push(filter(&value)?),
            other => {
                return Err(ApiError::Invalid(format!(
                    "`{other}` is not a parameter of /api/v2/silences: use filter"
                )));
            }
        }
    }
    let mut silences = state.pipeline.notifier.silences.list(crate::clock::now());
    silences.retain(|s| silence_passes(s, &filters));
    silences.sort_by_key(|s| match s.state.as_str() {
        "active" => 0,
        "pending" => 1,
        _ => 2,
    });
    let out: Vec<Value> = silences.iter().map(gettable_silence).collect();
    Ok(Json(out).into_response())
}

async fn get_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state
        .pipeline
        .notifier
        .silences
        .get(&id, crate::clock::now())
    {
        Some(s) => Ok(Json(gettable_silence(&s)).into_response()),
        None => Err(ApiError::NotFound(format!("silence {id:?} not found"))),
    }
}

/// A postable silence as the router's silence body (`NewSilence`): Alertmanager's
/// matcher names are label names.
fn new_silence(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::Invalid(format!("the body is not JSON: {e}")))?;
    let Value::Object(map) = v else {
        return Err(ApiError::Invalid(
            "a silence is a JSON object {\"matchers\": [...], \"startsAt\", \"endsAt\", \"createdBy\", \"comment\"}".into(),
        ));
    };
    let mut out = serde_json::Map::new();
    for (key, value) in map {
        let key = match key.as_str() {
            "id" => "id",
            "startsAt" => "starts_at",
            "endsAt" => "ends_at",
            "createdBy" => "created_by",
            "comment" => "comment",
            // What a gettable silence has, posted back.
            "status" | "updatedAt" => continue,
            "matchers" => {
                let Value::Array(items) = value else {
                    return Err(ApiError::Invalid(
                        "field `matchers`: expected a list of {name, value, isRegex, isEqual}"
                            .into(),
                    ));
                };
                let items = items
                    .into_iter()
                    .map(|mut m| {
                        if let Some(Value::String(name)) = m.get_mut("name")
                            && is_label_name(name)
                        {
                            *name = format!("{LABELS}{name}");
                        }
                        m
                    })
                    .collect();
                out.insert("matchers".into(), Value::Array(items));
                continue;
            }
            other => {
                return Err(ApiError::Invalid(format!(
                    "unknown key `{other}`: a silence has id, matchers, startsAt, endsAt, createdBy and comment"
                )));
            }
        };
        out.insert(key.into(), value);
    }
    Ok(Value::Object(out))
}

/// `POST /api/v2/silences`: 200 `{"silenceID": ...}`, for a new silence and a change.
async fn post_silence(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body = new_silence(&body)?.to_string();
    let pipeline = state.pipeline.clone();
    let set = tokio::task::spawn_blocking(move || pipeline.set_silence(body.as_bytes(), "api"))
        .await
        .map_err(|e| ApiError::Internal(format!("the request did not finish: {e}")))?
        .map_err(silence_error)?;
    Ok(Json(json!({"silenceID": set.silence.silence.id})).into_response())
}

/// `DELETE /api/v2/silence/{id}`: expires it; 200 with an empty body, also when it had
/// expired already.
async fn delete_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let pipeline = state.pipeline.clone();
    let expired = {
        let id = id.clone();
        tokio::task::spawn_blocking(move || pipeline.expire_silence(&id, "api"))
            .await
            .map_err(|e| ApiError::Internal(format!("the request did not finish: {e}")))?
    };
    match expired {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(e) => {
            let silences = &state.pipeline.notifier.silences;
            match silences.get(&id, crate::clock::now()) {
                Some(s) if s.state.as_str() == "expired" => Ok(StatusCode::OK.into_response()),
                _ => Err(silence_error(e)),
            }
        }
    }
}

/// `GET /api/v2/status`: what `amtool` reads. No cluster; the config is the router's, not
/// Alertmanager's, so none is shown.
async fn get_status(State(state): State<AppState>) -> Json<Value> {
    let uptime = time::Duration::try_from(state.pipeline.uptime()).unwrap_or_default();
    let started = crate::clock::now() - uptime;
    Json(json!({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "branch": "",
            "revision": "",
            "buildUser": "alert-router",
            "buildDate": "",
            "goVersion": "none (alert-router)",
        },
        "config": {"original": ""},
        "uptime": format_time(started),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> OffsetDateTime {
        OffsetDateTime::parse(t, &Rfc3339).expect("a time")
    }

    #[test]
    fn the_fingerprint_is_alertmanagers() {
        // By hand, as prometheus/common's labelSetToFingerprint computes it: FNV-1a 64
        // from its offset over `alertname` 0xff `x` 0xff. A real Alertmanager (0.25)
        // answered the same fingerprints for these label sets.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in b"alertname\xffx\xff" {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        assert_eq!(format!("{hash:016x}"), "d240efc3896bf266");
        let one = BTreeMap::from([("alertname".to_owned(), "x".to_owned())]);
        assert_eq!(label_set_fingerprint(&one), "d240efc3896bf266");
        let three = BTreeMap::from(
            [
                ("severity", "critical"),
                ("instance", "api-1:8080"),
                ("alertname", "HighLatency"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        assert_eq!(label_set_fingerprint(&three), "e33c9f3f467125ab");
        assert_eq!(label_set_fingerprint(&BTreeMap::new()), "cbf29ce484222325");
    }

    #[test]
    fn a_posted_alert_is_an_alert_event_identified_as_alertmanager_does() {
        let now = at("2026-12-04T10:00:00Z");
        let body = json!([
            {"labels": {"alertname": "x", "severity": "critical"}, "annotations": {"summary": "s"},
             "startsAt": "2026-12-04T09:00:00Z", "endsAt": "2026-12-04T10:05:00Z",
             "generatorURL": "http://prom/graph"},
            {"labels": {"alertname": "x", "severity": "critical"},
             "startsAt": "2026-12-04T09:00:00Z", "endsAt": "2026-12-04T09:59:00Z"},
            {"labels": {"alertname": "y"}}
        ]);
        let events = events(body.to_string().as_bytes(), now).expect("valid alerts");
        let firing = events[0].to_json();
        assert_eq!(firing["type"], "alert");
        assert_eq!(firing["status"], "firing");
        assert_eq!(firing["severity"], "critical");
        assert_eq!(firing["source"], "alertmanager-api");
        assert_eq!(firing["summary"], "s");
        assert_eq!(firing["alertname"], "x");
        assert_eq!(firing["ends_at"], Value::Null, "firing: no end yet");
        assert_eq!(
            firing["expires_at"], "2026-12-04T10:05:00Z",
            "when it resolves unless told again"
        );
        assert_eq!(firing["generator_url"], "http://prom/graph");
        let fp = label_set_fingerprint(&events[0].labels);
        assert_eq!(firing["fingerprint"], json!(fp));
        assert_eq!(events[0].id, format!("am:{fp}:firing:2026-12-04T09:00:00Z"));
        assert_eq!(
            crate::notify::alerts::fingerprint(None, &events[0]),
            fp,
            "the router's identity is Alertmanager's fingerprint"
        );
        let resolved = events[1].to_json();
        assert_eq!(resolved["status"], "resolved", "endsAt has passed");
        assert_eq!(resolved["ends_at"], "2026-12-04T09:59:00Z");
        assert_eq!(
            events[1].id,
            format!("am:{fp}:resolved:2026-12-04T09:00:00Z")
        );
        let bare = events[2].to_json();
        assert_eq!(
            (bare["status"].clone(), bare["starts_at"].clone()),
            (json!("firing"), json!("2026-12-04T10:00:00Z")),
            "no start: it starts now"
        );
        assert_eq!(bare["severity"], "warning");
    }

    #[test]
    fn a_bad_alert_is_refused_with_its_index_and_field() {
        let now = at("2026-12-04T10:00:00Z");
        for (alert, field) in [
            (json!({"labels": {}}), "labels"),
            (json!({"annotations": {"a": "b"}}), "labels"),
            (json!({"labels": {"a-b": "c"}}), "labels"),
            (
                json!({"labels": {"a": "b"}, "startsAt": "yesterday"}),
                "startsAt",
            ),
            (
                json!({"labels": {"a": "b"}, "startsAt": "2026-12-04T10:00:00Z", "endsAt": "2026-12-04T09:00:00Z"}),
                "endsAt",
            ),
            (json!({"labels": {"a": 1}}), "labels"),
        ] {
            let body = json!([{"labels": {"ok": "1"}}, alert]);
            let e = events(body.to_string().as_bytes(), now).expect_err("refused");
            assert_eq!(
                (e.position, e.field.as_deref()),
                (Position::Index(1), Some(field)),
                "{alert}: {}",
                e.message
            );
        }
        let e = events(b"{}", now).expect_err("not a list");
        assert_eq!(e.position, Position::Whole);
    }

    #[test]
    fn matchers_name_labels_both_ways() {
        let body = json!({
            "matchers": [
                {"name": "alertname", "value": "x", "isRegex": false, "isEqual": true},
                {"name": "type", "value": "deploy", "isRegex": false, "isEqual": true},
                {"name": "env", "value": "prod.*", "isRegex": true, "isEqual": false}
            ],
            "startsAt": "2026-12-04T10:00:00Z", "endsAt": "2026-12-04T11:00:00Z",
            "createdBy": "a", "comment": "c", "id": ""
        });
        let new = new_silence(body.to_string().as_bytes()).expect("a silence");
        let names: Vec<&str> = new["matchers"]
            .as_array()
            .expect("matchers")
            .iter()
            .filter_map(|m| m["name"].as_str())
            .collect();
        assert_eq!(names, ["labels.alertname", "labels.type", "labels.env"]);
        assert_eq!(new["created_by"], "a");
        let parsed = crate::notify::silences::NewSilence::from_json(new).expect("read");
        let back: Vec<Value> = parsed.matchers.iter().map(am_matcher).collect();
        assert_eq!(
            back,
            body["matchers"].as_array().cloned().expect("matchers")
        );
        let severity = Matcher::parse("severity=critical").expect("a matcher");
        assert_eq!(am_matcher(&severity)["name"], "severity", "kept as it is");

        let (m, label) = filter("alertname=~\"x|y\"").expect("a filter");
        assert_eq!(label, "alertname");
        assert!(m.matches_text("y") && !m.matches_text("z"));
        let (m, _) = filter("{severity!=\"critical\"}").expect("a filter");
        assert!(!m.matches_text("critical") && m.matches_text("anything"));
        assert!(filter("nonsense").is_err());
    }
}
