//! The host services plugins call back into through the C ABI: `query` (status, a
//! sink's delivered messages, the state store), `emit` (an event of the plugin's own),
//! `render` (a template of the plugin's own, e.g. a Telegram command's answer) and
//! `request` (a change: a silence set or expired, e.g. a Telegram admin's `/silence`).

use std::sync::{Arc, OnceLock, Weak};

use alert_router_plugin::HostError;
use serde_json::{Value, json};

use super::Pipeline;
use crate::dispatch;
use crate::domains::StateQueryError;
use crate::event::format_time;
use crate::ingest;
use crate::plugins::HostServices;

/// Messages the host's `delivered` query lists without a `limit`, and at most.
const DEFAULT_DELIVERED: usize = 100;
const MAX_DELIVERED: usize = 10_000;

impl Pipeline {
    /// The host's `delivered?limit=N` for `sink` (default 100, at most 10,000): the
    /// latest messages delivered to it that retention still keeps, oldest first, each
    /// as `deliver` got it. A plugin that keeps a history in memory (the dashboard's
    /// feed) fills it again from here after a restart.
    fn delivered_to(&self, sink: &str, query: &str) -> Result<String, HostError> {
        let limit = delivered_limit(query).map_err(HostError::bad_request)?;
        let messages = self
            .outbox
            .delivered(sink, limit)
            .map_err(|e| HostError::failed(e.to_string()))?;
        let mut out = String::from("[");
        for (i, message) in messages.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&dispatch::wire(message, sink, message.attempts));
        }
        out.push(']');
        Ok(out)
    }

    /// Renders `name` for a plugin's own message: `templates/<sink>/<name>`, then
    /// `templates/<plugin>/<name>`, with the plugin's context plus `sink` and `now`.
    fn render_for_plugin(
        &self,
        sink: &str,
        name: &str,
        context: &[u8],
    ) -> Result<String, HostError> {
        let snap = self.snapshot.load();
        // A sink whose instance is being created (or was removed) is not in the snapshot.
        let entry = snap
            .sinks
            .get(sink)
            .ok_or_else(|| HostError::unavailable(format!("sink `{sink}` is not running")))?;
        let plugin = entry.plugin.name();
        let id = snap.templates.find(sink, plugin, name).ok_or_else(|| {
            HostError::not_found(format!("no template `{name}`: add templates/{sink}/{name}.yaml or templates/{plugin}/{name}.yaml"))
        })?;
        let mut ctx: serde_json::Map<String, Value> = match serde_json::from_slice(context) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(HostError::bad_request(
                    "the render context must be a JSON object",
                ));
            }
            Err(e) => {
                return Err(HostError::bad_request(format!(
                    "the render context is not valid JSON: {e}"
                )));
            }
        };
        ctx.insert("sink".into(), json!(sink));
        ctx.insert("plugin".into(), json!(plugin));
        ctx.insert("now".into(), json!(format_time(crate::clock::now())));
        let payload = snap
            .templates
            .render(id, &minijinja::Value::from(minijinja::value::Serde(&ctx)))
            .map_err(|e| HostError::failed(e.to_string()))?;
        Ok(payload.to_string())
    }
}

/// The `limit` of a `delivered` query: `limit=N` from 1 to [`MAX_DELIVERED`], or none.
fn delivered_limit(query: &str) -> Result<usize, String> {
    match query.strip_prefix("limit=") {
        None if query.is_empty() => Ok(DEFAULT_DELIVERED),
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_DELIVERED).contains(n))
            .ok_or_else(|| {
                format!("delivered: limit={n}: expected a whole number from 1 to {MAX_DELIVERED}")
            }),
        None => Err(format!(
            "delivered: unknown parameter `{query}`: the only one is limit=N"
        )),
    }
}

/// The host services plugins call back into. Holds the router weakly: instances live
/// inside it, and a strong reference would keep it alive forever.
pub(super) struct Services {
    pub(super) pipeline: OnceLock<Weak<Pipeline>>,
    /// Set when the router only shows what it would send (`test`, `replay`): sinks get
    /// capturing instances instead of their plugins' (see [`crate::simulate`]).
    pub(super) capture: Option<crate::plugins::Capture>,
}

impl Services {
    fn pipeline(&self) -> Result<Arc<Pipeline>, HostError> {
        self.pipeline
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| HostError::unavailable("the router is starting or stopping"))
    }
}

impl HostServices for Services {
    fn query(&self, sink: &str, path: &str) -> Result<String, HostError> {
        let pipeline = self.pipeline()?;
        let (resource, query) = path.split_once('?').unwrap_or((path, ""));
        match resource.trim_matches('/') {
            "status" => Ok(pipeline.status().to_string()),
            // As `GET /v1/silences` and `GET /v1/alerts` answer (without filters).
            "silences" => {
                let list = pipeline.notifier.silences.list(crate::clock::now());
                serde_json::to_string(&serde_json::json!({ "silences": list }))
                    .map_err(|e| HostError::failed(e.to_string()))
            }
            "alerts" => {
                let now = crate::clock::now();
                let alerts = pipeline.notifier.alerts(&pipeline.snapshot().rules, now);
                serde_json::to_string(&serde_json::json!({ "alerts": alerts }))
                    .map_err(|e| HostError::failed(e.to_string()))
            }
            "delivered" => pipeline.delivered_to(sink, query),
            r if r.starts_with("state/") => pipeline
                .stores
                .query(&r["state/".len()..], query)
                .map(|v| v.to_string())
                .map_err(|e| match e {
                    // As `GET /v1/state/...` answers 404 and 400.
                    StateQueryError::Unknown(m) => HostError::not_found(m),
                    StateQueryError::Refused(m) => HostError::bad_request(m),
                }),
            other => Err(HostError::not_found(format!(
                "unknown resource `{other}`: ask for status, delivered, silences, alerts or state/<{}>",
                pipeline.stores.resources().join("|")
            ))),
        }
    }

    fn emit(&self, sink: &str, event_json: &[u8]) -> Result<String, HostError> {
        let pipeline = self.pipeline()?;
        let mut events = ingest::parse_body(event_json, crate::clock::now())
            .map_err(|e| HostError::bad_request(e.to_string()))?;
        for e in &mut events {
            e.source.get_or_insert_with(|| sink.to_owned());
        }
        // Every refusal of a valid batch says "retry later" (`POST /v1/events` answers 503).
        let accepted = pipeline
            .ingest(events)
            .map_err(|e| HostError::unavailable(e.to_string()))?;
        serde_json::to_string(&accepted).map_err(|e| HostError::failed(e.to_string()))
    }

    fn render(&self, sink: &str, name: &str, context_json: &[u8]) -> Result<String, HostError> {
        self.pipeline()?.render_for_plugin(sink, name, context_json)
    }

    fn request(
        &self,
        sink: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<String, HostError> {
        let pipeline = self.pipeline()?;
        let resource = path.trim_matches('/');
        if let Some((resource, params)) = resource.split_once('?') {
            return Err(HostError::bad_request(format!(
                "{method} {resource} takes no parameters: leave out `?{params}`"
            )));
        }
        let (collection, id) = match resource.split_once('/') {
            Some((collection, id)) => (collection, Some(id)),
            None => (resource, None),
        };
        let via = format!("sink {sink}");
        // As `POST /v1/silences` and `DELETE /v1/silences/{id}` answer.
        let silence = match (collection, method, id) {
            ("silences", "POST", None) => pipeline.set_silence(body, &via).map(|s| s.silence),
            ("silences", "DELETE", Some(id)) if body.is_empty() => {
                pipeline.expire_silence(id, &via)
            }
            ("silences", "DELETE", Some(_)) => {
                return Err(HostError::bad_request(
                    "DELETE silences/<id> takes no body: pass an empty one",
                ));
            }
            ("silences", _, _) => {
                return Err(HostError::bad_request(format!(
                    "{method} {resource}: silences take POST silences (a new silence, or a change with its id in the body) and DELETE silences/<id>; query(\"silences\") lists them"
                )));
            }
            _ => {
                return Err(HostError::not_found(format!(
                    "unknown resource `{resource}`: request takes POST silences and DELETE silences/<id>"
                )));
            }
        };
        let silence = silence.map_err(|e| match e.http_status() {
            404 => HostError::not_found(e.to_string()),
            // A wrong body, or a silence already expired: the same call fails the same way.
            400 | 409 => HostError::bad_request(e.to_string()),
            _ => HostError::failed(e.to_string()),
        })?;
        serde_json::to_string(&silence).map_err(|e| HostError::failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_delivered_query_takes_a_limit_in_range_and_nothing_else() {
        assert_eq!(delivered_limit(""), Ok(DEFAULT_DELIVERED));
        assert_eq!(delivered_limit("limit=250"), Ok(250));
        assert_eq!(delivered_limit("limit=10000"), Ok(MAX_DELIVERED));
        for bad in ["limit=0", "limit=10001", "limit=ten"] {
            let e = delivered_limit(bad).unwrap_err();
            assert!(e.contains("a whole number from 1 to 10000"), "{bad}: {e}");
        }
        let e = delivered_limit("since=1h").unwrap_err();
        assert!(e.contains("unknown parameter `since=1h`"), "{e}");
    }

    /// A router with no sinks, on a scratch directory.
    fn router(dir: &crate::testing::TempDir) -> Arc<Pipeline> {
        dir.write("rules/default.yaml", "routes: []\n")
            .write("templates/.keep", "")
            .write("router.yaml", "sinks: {}\n");
        let path = dir.0.join("router.yaml");
        let text = std::fs::read_to_string(&path).expect("the config was written");
        let config = Config::parse(&path, &text, &|_| None).expect("a valid config");
        Pipeline::start(config, None).expect("the router starts")
    }

    fn kind(answer: Result<String, HostError>) -> alert_router_plugin::HostErrorKind {
        answer.expect_err("a failure").kind()
    }

    #[test]
    fn each_host_call_failure_has_the_kind_a_plugin_acts_on() {
        use alert_router_plugin::HostErrorKind::{BadRequest, NotFound, Unavailable};
        let dir = crate::testing::TempDir::new("host-services");
        let pipeline = router(&dir);
        let services = pipeline.services.clone();
        let query = |path: &str| services.query("dash", path);

        assert!(query("status").is_ok());
        assert!(query("state/trades?limit=5").is_ok());
        assert_eq!(kind(query("state/nope")), NotFound);
        assert_eq!(kind(query("metrics")), NotFound);
        assert_eq!(kind(query("state/trades?limit=ten")), BadRequest);
        assert_eq!(kind(query("state/trades?colour=red")), BadRequest);
        assert_eq!(kind(query("delivered?limit=0")), BadRequest);

        assert!(services.emit("dash", br#"{"type": "deploy"}"#).is_ok());
        assert_eq!(kind(services.emit("dash", b"{not json")), BadRequest);
        assert_eq!(
            kind(services.emit("dash", br#"{"no": "type"}"#)),
            BadRequest
        );
        // No sink `dash` runs, so it cannot render (yet, or any more).
        assert_eq!(kind(services.render("dash", "status", b"{}")), Unavailable);

        // Once the router is gone, every call says: not now.
        let before_the_end = services.clone();
        drop(pipeline);
        assert_eq!(
            kind(before_the_end.request("dash", "POST", "silences", b"{}")),
            Unavailable
        );
        assert_eq!(kind(services.query("dash", "status")), Unavailable);
        assert_eq!(
            kind(services.emit("dash", br#"{"type": "x"}"#)),
            Unavailable
        );
        assert_eq!(kind(services.render("dash", "status", b"{}")), Unavailable);
        // And before it is there.
        let starting = Services {
            pipeline: OnceLock::new(),
            capture: None,
        };
        let e = starting.query("dash", "status").expect_err("not started");
        assert_eq!(
            (e.kind(), e.message()),
            (Unavailable, "the router is starting or stopping")
        );
    }

    #[test]
    fn a_request_sets_and_expires_a_silence_as_the_api_does() {
        use alert_router_plugin::HostErrorKind::{BadRequest, NotFound};
        let dir = crate::testing::TempDir::new("host-request");
        let pipeline = router(&dir);
        let services = pipeline.services.clone();
        let request = |method: &str, path: &str, body: &str| {
            services.request("tg", method, path, body.as_bytes())
        };
        let json = |answer: Result<String, HostError>| -> Value {
            serde_json::from_str(&answer.expect("an answer")).expect("JSON")
        };

        let set = json(request(
            "POST",
            "silences",
            r#"{"matchers": "type=deploy, labels.env=prod", "duration": "1h", "created_by": "@ana", "comment": "release"}"#,
        ));
        assert_eq!(set["state"], "active", "{set}");
        assert_eq!(
            set["matchers"],
            json!([r#"type="deploy""#, r#"labels.env="prod""#])
        );
        assert_eq!(set["created_by"], "@ana");
        let id = set["id"].as_str().expect("an id").to_owned();
        let listed = json(services.query("tg", "silences"));
        assert_eq!(listed["silences"][0]["id"], id.as_str(), "{listed}");

        // The router's own reasons, as the HTTP API gives them.
        let e = request(
            "POST",
            "silences",
            r#"{"matchers": "labels.=x", "duration": "1h", "created_by": "a"}"#,
        )
        .expect_err("a bad matcher");
        assert_eq!(e.kind(), BadRequest);
        assert!(e.message().contains("no label key after `labels.`"), "{e}");
        let e = request("POST", "silences", "{not json").expect_err("not JSON");
        assert_eq!(e.kind(), BadRequest);
        assert!(e.message().starts_with("the body is not JSON"), "{e}");
        assert_eq!(
            kind(request("POST", "silences?dry_run=1", "{}")),
            BadRequest
        );
        assert_eq!(kind(request("GET", "silences", "")), BadRequest);
        assert_eq!(kind(request("DELETE", "silences", "")), BadRequest);
        assert_eq!(kind(request("POST", "status", "{}")), NotFound);
        assert_eq!(kind(request("DELETE", "silences/nope", "")), NotFound);
        assert_eq!(
            kind(request("DELETE", &format!("silences/{id}"), "{}")),
            BadRequest
        );

        let expired = json(request("DELETE", &format!("/silences/{id}"), ""));
        assert_eq!(
            (expired["id"].as_str(), &expired["state"]),
            (Some(id.as_str()), &json!("expired"))
        );
        // Expiring it again fails the same way every time.
        let e = request("DELETE", &format!("silences/{id}"), "").expect_err("expired");
        assert_eq!(e.kind(), BadRequest);
        assert!(e.message().contains("has already expired"), "{e}");
    }
}
