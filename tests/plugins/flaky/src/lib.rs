//! A test plugin that does what each message's payload tells it, so the router's tests can
//! drive retries, dead letters and panics through a real plugin.
//!
//! Payload keys:
//! - `behave`: `"ok"` (the default), `"fail"`, `"retry"` or `"panic"`;
//! - `retry_after_ms`: N: retry, asking the router to wait N ms (implies `"retry"`);
//! - `times`: N: misbehave only on attempts 1..=N, then deliver (for "fails twice, then
//!   succeeds"); without it the behaviour applies to every attempt;
//! - `hold_until`: a path: the attempt is recorded, then `deliver` blocks until that file
//!   exists (for holding a delivery in progress while a test changes something), at most
//!   a minute.
//!
//! Settings: `path`, a file to append every attempt to as one JSON line: the console
//! plugin's json format (`id`, `sink`, `attempt`, `payload`, `event`) plus `outcome`
//! (`ok`, `fail`, `retry`, `panic`), written before the plugin answers.
//!
//! `outlive_record` and `outlive_until` (two paths, both or neither): `create` starts a
//! thread that `destroy` does not stop, the bug the router must survive. It calls the host
//! (`query("status")`, `report_healthy`) at once, appending `{"when": "before", ...}` to
//! `outlive_record`, then waits (at most a minute) until `outlive_until` exists, and calls
//! `query`, `emit`, `render`, `report_unhealthy` and `log`, appending one
//! `{"when": "after", "call": ..., "answer" or "kind" and "message"}` line for each.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alert_router_plugin::{Host, HostError, Message, Outcome, Sink, export_plugin};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    outlive_record: Option<PathBuf>,
    #[serde(default)]
    outlive_until: Option<PathBuf>,
}

pub struct Flaky {
    out: Option<File>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Ok,
    Fail,
    Retry(Option<u64>),
    Panic,
}

impl Behaviour {
    fn name(self) -> &'static str {
        match self {
            Behaviour::Ok => "ok",
            Behaviour::Fail => "fail",
            Behaviour::Retry(_) => "retry",
            Behaviour::Panic => "panic",
        }
    }
}

/// What `message` asks for on this attempt, or why it cannot be understood.
fn behaviour(message: &Message) -> Result<Behaviour, String> {
    let payload = &message.payload;
    if let Some(times) = payload.get("times") {
        let times = times
            .as_u64()
            .ok_or("payload.times must be a non-negative integer")?;
        if u64::from(message.attempt) > times {
            return Ok(Behaviour::Ok);
        }
    }
    if let Some(ms) = payload.get("retry_after_ms") {
        let ms = ms
            .as_u64()
            .ok_or("payload.retry_after_ms must be a non-negative integer")?;
        return Ok(Behaviour::Retry(Some(ms)));
    }
    match payload.get("behave").map(|b| b.as_str()) {
        None | Some(Some("ok")) => Ok(Behaviour::Ok),
        Some(Some("fail")) => Ok(Behaviour::Fail),
        Some(Some("retry")) => Ok(Behaviour::Retry(None)),
        Some(Some("panic")) => Ok(Behaviour::Panic),
        Some(other) => Err(format!(
            "payload.behave must be ok, fail, retry or panic, got {}",
            other.map_or_else(|| "a non-string".to_owned(), |s| format!("`{s}`"))
        )),
    }
}

impl Flaky {
    fn record(&mut self, message: &Message, outcome: &str) -> Result<(), String> {
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        let line = serde_json::json!({
            "id": message.id,
            "sink": message.sink,
            "attempt": message.attempt,
            "payload": message.payload,
            "event": message.event,
            "outcome": outcome,
        });
        // One write per line, so concurrent instances on one file never interleave.
        out.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| format!("cannot append to the record file: {e}"))
    }
}

impl Sink for Flaky {
    type Settings = Settings;

    fn create(host: Host, settings: Settings) -> Result<Self, String> {
        let out = match settings.path {
            None => None,
            Some(path) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| format!("settings.path: cannot open {path} for appending: {e}"))?,
            ),
        };
        match (settings.outlive_record, settings.outlive_until) {
            (None, None) => {}
            (Some(record), Some(until)) => {
                // Never joined, on purpose: it outlives the instance.
                std::thread::spawn(move || outlive(host, &record, &until));
            }
            _ => return Err("settings: give outlive_record and outlive_until together".into()),
        }
        host.debug("flaky created");
        Ok(Flaky { out })
    }

    fn deliver(&mut self, message: Message) -> Outcome {
        let behaviour = match behaviour(&message) {
            Ok(b) => b,
            Err(reason) => return Outcome::fail(reason),
        };
        if let Err(reason) = self.record(&message, behaviour.name()) {
            return Outcome::retry(reason);
        }
        if let Some(path) = message.payload.get("hold_until") {
            let Some(path) = path.as_str() else {
                return Outcome::fail("payload.hold_until must be a path");
            };
            if !hold_until(Path::new(path)) {
                return Outcome::retry(format!("flaky waited a minute for {path} in vain"));
            }
        }
        match behaviour {
            Behaviour::Ok => Outcome::Ok,
            Behaviour::Fail => {
                Outcome::fail(format!("flaky failed message {} as asked", message.id))
            }
            Behaviour::Retry(None) => Outcome::retry(format!(
                "flaky asks to retry message {} as asked",
                message.id
            )),
            Behaviour::Retry(Some(ms)) => Outcome::retry_after(
                Duration::from_millis(ms),
                format!("flaky asks to retry message {} after {ms} ms", message.id),
            ),
            Behaviour::Panic => panic!("flaky panicked on message {} as asked", message.id),
        }
    }
}

/// The thread `outlive_record` starts: see the crate's documentation.
fn outlive(host: Host, record: &Path, until: &Path) {
    let append = |when: &str, call: &str, answer: Result<serde_json::Value, HostError>| {
        let line = match answer {
            Ok(answer) => serde_json::json!({"when": when, "call": call, "answer": answer}),
            Err(e) => serde_json::json!({
                "when": when,
                "call": call,
                "kind": format!("{:?}", e.kind()),
                "message": e.message(),
            }),
        };
        // Nowhere to report a failure from this thread: the test sees the line missing.
        if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(record) {
            let _ = file.write_all(format!("{line}\n").as_bytes());
        }
    };
    host.report_healthy();
    append("before", "query", host.query("status"));
    if !hold_until(until) {
        return;
    }
    append("after", "query", host.query("status"));
    append(
        "after",
        "emit",
        host.emit(&serde_json::json!({"type": "late"})),
    );
    append(
        "after",
        "render",
        host.render("late", &serde_json::json!({})),
    );
    host.report_unhealthy("reported after destroy");
    host.info("logged after destroy");
    // Last, so a test that sees it knows every call above returned.
    append("after", "done", Ok(serde_json::Value::Null));
}

/// Blocks until `path` exists (true) or a minute passed (false).
fn hold_until(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

export_plugin!(
    Flaky,
    name = "flaky",
    manifest = r#"{
  "markup": "none",
  "description": "Test plugin: behaves as each message's payload says (ok, fail, retry, panic)",
  "settings": {
    "path": {"type": "string", "description": "file to append every attempt to, as JSON lines"},
    "outlive_record": {"type": "string", "description": "file a thread that outlives the instance appends its host calls' answers to"},
    "outlive_until": {"type": "string", "description": "that thread makes its calls after destroy once this file exists"}
  }
}"#
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(attempt: u32, payload: serde_json::Value) -> Message {
        serde_json::from_value(
            json!({"id": "m1", "sink": "s", "attempt": attempt, "payload": payload}),
        )
        .unwrap()
    }

    #[test]
    fn the_payload_decides() {
        let cases = [
            (json!({}), Ok(Behaviour::Ok)),
            (json!({"behave": "fail"}), Ok(Behaviour::Fail)),
            (json!({"behave": "retry"}), Ok(Behaviour::Retry(None))),
            (
                json!({"retry_after_ms": 250}),
                Ok(Behaviour::Retry(Some(250))),
            ),
            (json!({"behave": "panic"}), Ok(Behaviour::Panic)),
            (
                json!({"behave": "explode"}),
                Err("payload.behave must be ok, fail, retry or panic, got `explode`".to_owned()),
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(
                behaviour(&message(1, payload.clone())),
                expected,
                "{payload}"
            );
        }
    }

    #[test]
    fn times_limits_the_misbehaviour_to_the_first_attempts() {
        let payload = json!({"behave": "retry", "times": 2});
        assert_eq!(
            behaviour(&message(1, payload.clone())),
            Ok(Behaviour::Retry(None))
        );
        assert_eq!(
            behaviour(&message(2, payload.clone())),
            Ok(Behaviour::Retry(None))
        );
        assert_eq!(behaviour(&message(3, payload)), Ok(Behaviour::Ok));
    }
}
