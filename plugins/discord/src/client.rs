//! The HTTP side: one POST per webhook body, made on the sink's own current-thread
//! tokio runtime, and [`classify`], the one place that says what Discord's answer
//! means (delivered, retry, retry after, fail).

use std::time::{Duration, Instant};

use alert_router_plugin::Outcome;
pub(crate) use alert_router_plugin::http::Answer;
use alert_router_plugin::http::{self, excerpt};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Serialize;
use serde_json::Value;

use crate::config::Endpoint;
use crate::ratelimit::{self, RateLimiter, WINDOWS};

/// Longest wait for Discord's whole answer; a slower one is retried.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of an unexpected answer's body goes into a reason.
const BODY_EXCERPT: usize = 300;

const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/alert-router/alert-router, ",
    env!("CARGO_PKG_VERSION"),
    ") alert-router-sink-discord"
);

/// Posts bodies to one webhook, one attempt each, within its rate limits.
pub(crate) struct Client {
    client: http::Client,
    endpoint: Endpoint,
    limiter: RateLimiter,
}

impl Client {
    pub(crate) fn new(endpoint: Endpoint) -> Result<Client, String> {
        let limiter = RateLimiter::new(endpoint.host(), &WINDOWS);
        Ok(Client {
            client: http::Client::new(http::builder(USER_AGENT, REQUEST_TIMEOUT))?,
            endpoint,
            limiter,
        })
    }

    /// Makes one attempt at posting `body`, unless a rate limit says to wait: then it
    /// sends nothing and asks to be retried when the wait is over.
    pub(crate) fn send(&mut self, body: &impl Serialize) -> Outcome {
        let now = Instant::now();
        if let Some(wait) = self.limiter.wait(now) {
            return Outcome::retry_after(
                wait.after,
                format!(
                    "not sent yet: {}; {:.2} s to go",
                    wait.why,
                    wait.after.as_secs_f64()
                ),
            );
        }
        self.limiter.record_send(now);
        let request = self
            .client
            .http()
            .post(self.endpoint.url().clone())
            .json(body);
        let answer = self.client.send(request);
        let answered = Instant::now();
        if let Answer::Reply {
            status,
            headers,
            body,
        } = &answer
        {
            self.limiter.observe(headers, answered);
            if *status == StatusCode::TOO_MANY_REQUESTS
                && let (Some(after), global) = retry_after(headers, body)
            {
                self.limiter.pause(after, global, answered);
            }
        }
        match classify(&answer) {
            Outcome::Ok => Outcome::Ok,
            Outcome::Retry { after, reason } => Outcome::Retry {
                after,
                reason: self.context(&reason),
            },
            Outcome::Fail { reason } => Outcome::fail(self.context(&reason)),
        }
    }

    /// Names the webhook (token redacted) and removes the token from anything else.
    fn context(&self, reason: &str) -> String {
        self.endpoint
            .redact(&format!("{} ({})", reason, self.endpoint.redacted()))
    }
}

/// What an answer from Discord means. The only place that decides:
/// - 2xx: delivered;
/// - 429: retry after the body's `retry_after` (seconds, float), else the
///   `Retry-After` header, else `X-RateLimit-Reset-After`;
/// - 5xx and 408: retry (after `Retry-After` when given); no answer at all: retry;
/// - any other status: fail, with Discord's error message, code and field errors.
pub(crate) fn classify(answer: &Answer) -> Outcome {
    let (status, headers, body) = match answer {
        Answer::Unreachable(why) => {
            return Outcome::retry(format!("no answer from Discord: {why}"));
        }
        Answer::Reply {
            status,
            headers,
            body,
        } => (*status, headers, body.as_str()),
    };
    if status.is_success() {
        return Outcome::Ok;
    }
    let said = explain(body);
    if status == StatusCode::TOO_MANY_REQUESTS {
        let (after, global) = retry_after(headers, body);
        let scope = if global { "globally " } else { "" };
        let when = after.map_or_else(
            || "no retry_after given".to_owned(),
            |a| format!("retry after {:.2} s", a.as_secs_f64()),
        );
        return Outcome::Retry {
            after,
            reason: format!("Discord rate limited the webhook {scope}(429: {said}); {when}"),
        };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        let after =
            ratelimit::header_f64(headers, RETRY_AFTER.as_str()).and_then(ratelimit::seconds);
        return Outcome::Retry {
            after,
            reason: format!("Discord answered {status}: {said}"),
        };
    }
    let advice = match (status.as_u16(), code(body)) {
        (404, _) | (_, Some(10015)) => {
            "; the webhook was deleted or settings.webhook_url is wrong (Discord asks clients to stop using it)"
        }
        (401, _) | (_, Some(50027)) => {
            "; the token in settings.webhook_url is wrong: copy the webhook URL again"
        }
        (403, _) => "; the webhook may not post there (check its channel and thread_id)",
        (400, _) => "; Discord refused the message itself",
        _ => "",
    };
    Outcome::fail(format!("Discord answered {status}: {said}{advice}"))
}

/// The pause a 429 asks for, and whether it is global.
fn retry_after(headers: &HeaderMap, body: &str) -> (Option<Duration>, bool) {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let global = json.get("global").and_then(Value::as_bool).unwrap_or(false)
        || headers
            .get("x-ratelimit-global")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let after = json
        .get("retry_after")
        .and_then(Value::as_f64)
        .and_then(ratelimit::seconds)
        .or_else(|| {
            ratelimit::header_f64(headers, RETRY_AFTER.as_str()).and_then(ratelimit::seconds)
        })
        .or_else(|| {
            ratelimit::header_f64(headers, "x-ratelimit-reset-after").and_then(ratelimit::seconds)
        });
    (after, global)
}

fn code(body: &str) -> Option<i64> {
    serde_json::from_str::<Value>(body)
        .ok()?
        .get("code")?
        .as_i64()
}

/// Discord's error JSON as one line: `message (code N): path: message (CODE); ...`;
/// any other body as a short excerpt.
fn explain(body: &str) -> String {
    let json: Value = match serde_json::from_str(body) {
        Ok(json @ Value::Object(_)) => json,
        _ => return excerpt(body, BODY_EXCERPT),
    };
    let mut text = json
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("(no message)")
        .to_owned();
    if let Some(code) = json.get("code").and_then(Value::as_i64) {
        text.push_str(&format!(" (code {code})"));
    }
    let mut errors = Vec::new();
    if let Some(tree) = json.get("errors") {
        field_errors(tree, &mut Vec::new(), &mut errors);
    }
    const SHOWN: usize = 5;
    if !errors.is_empty() {
        let more = errors.len().saturating_sub(SHOWN);
        text.push_str(": ");
        text.push_str(&errors[..errors.len().min(SHOWN)].join("; "));
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
    }
    text
}

/// Flattens Discord's `errors` tree (`{"embeds": {"0": {"title": {"_errors": [...]}}}}`)
/// into `embeds.0.title: Must be 256 or fewer in length. (BASE_TYPE_MAX_LENGTH)`.
fn field_errors(tree: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
    let Value::Object(map) = tree else { return };
    for (key, value) in map {
        if key == "_errors" {
            for error in value.as_array().into_iter().flatten() {
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("invalid");
                let code = error.get("code").and_then(Value::as_str).unwrap_or("?");
                let at = if path.is_empty() {
                    "body".to_owned()
                } else {
                    path.join(".")
                };
                out.push(format!("{at}: {message} ({code})"));
            }
        } else {
            path.push(key.clone());
            field_errors(value, path, out);
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    fn reply(status: u16, headers: &[(&'static str, &str)], body: Value) -> Answer {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        Answer::Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: if body.is_null() {
                String::new()
            } else {
                body.to_string()
            },
        }
    }

    enum Expect {
        Ok,
        Retry(Option<Duration>),
        Fail,
    }

    /// Every status class through the one mapping, with the reason text that matters.
    #[test]
    fn every_answer_maps_to_one_outcome() {
        let secs = |s: f64| Some(Duration::from_secs_f64(s));
        let invalid_form = json!({"code": 50035, "message": "Invalid Form Body", "errors": {"embeds": {"0": {
            "description": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 4096 or fewer in length."}]}}}}});
        let limited =
            json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false});
        let cases: Vec<(Answer, Expect, &str)> = vec![
            (reply(200, &[], json!({"id": "1"})), Expect::Ok, ""),
            (reply(204, &[], Value::Null), Expect::Ok, ""),
            (
                reply(101, &[], Value::Null),
                Expect::Fail,
                "101 Switching Protocols",
            ),
            (
                reply(301, &[("location", "https://elsewhere/")], Value::Null),
                Expect::Fail,
                "301 Moved Permanently: (empty body)",
            ),
            (
                reply(400, &[], invalid_form),
                Expect::Fail,
                "400 Bad Request: Invalid Form Body (code 50035): embeds.0.description: Must be 4096 or fewer in length. (BASE_TYPE_MAX_LENGTH); Discord refused the message itself",
            ),
            (
                reply(
                    400,
                    &[],
                    json!({"code": 50006, "message": "Cannot send an empty message"}),
                ),
                Expect::Fail,
                "Cannot send an empty message (code 50006)",
            ),
            (
                reply(
                    401,
                    &[],
                    json!({"code": 50027, "message": "Invalid Webhook Token"}),
                ),
                Expect::Fail,
                "Invalid Webhook Token (code 50027); the token in settings.webhook_url is wrong",
            ),
            (
                reply(
                    403,
                    &[],
                    json!({"code": 50013, "message": "Missing Permissions"}),
                ),
                Expect::Fail,
                "403 Forbidden: Missing Permissions (code 50013); the webhook may not post there",
            ),
            (
                reply(
                    404,
                    &[],
                    json!({"code": 10015, "message": "Unknown Webhook"}),
                ),
                Expect::Fail,
                "404 Not Found: Unknown Webhook (code 10015); the webhook was deleted",
            ),
            (
                reply(
                    405,
                    &[],
                    json!({"code": 0, "message": "405: Method Not Allowed"}),
                ),
                Expect::Fail,
                "405 Method Not Allowed: 405: Method Not Allowed (code 0)",
            ),
            (
                reply(408, &[], Value::Null),
                Expect::Retry(None),
                "408 Request Timeout",
            ),
            (
                reply(
                    413,
                    &[],
                    json!({"code": 40005, "message": "Request entity too large"}),
                ),
                Expect::Fail,
                "Request entity too large (code 40005)",
            ),
            (
                reply(429, &[("retry-after", "2")], limited.clone()),
                Expect::Retry(secs(1.5)),
                "rate limited the webhook (429: You are being rate limited.); retry after 1.50 s",
            ),
            (
                reply(429, &[("retry-after", "3")], Value::Null),
                Expect::Retry(secs(3.0)),
                "retry after 3.00 s",
            ),
            (
                reply(
                    429,
                    &[("x-ratelimit-reset-after", "0.25")],
                    json!({"message": "slow"}),
                ),
                Expect::Retry(secs(0.25)),
                "retry after 0.25 s",
            ),
            (
                reply(
                    429,
                    &[],
                    json!({"message": "You are being rate limited.", "retry_after": 64.57, "global": true}),
                ),
                Expect::Retry(secs(64.57)),
                "rate limited the webhook globally",
            ),
            (
                reply(429, &[], Value::Null),
                Expect::Retry(None),
                "no retry_after given",
            ),
            (
                reply(
                    500,
                    &[],
                    json!({"code": 0, "message": "500: Internal Server Error"}),
                ),
                Expect::Retry(None),
                "500 Internal Server Error: 500: Internal Server Error (code 0)",
            ),
            (
                reply(502, &[], Value::String("<html>bad gateway</html>".into())),
                Expect::Retry(None),
                "502 Bad Gateway",
            ),
            (
                reply(503, &[("retry-after", "4")], Value::Null),
                Expect::Retry(secs(4.0)),
                "503 Service Unavailable",
            ),
            (
                reply(504, &[], Value::Null),
                Expect::Retry(None),
                "504 Gateway Timeout",
            ),
            (reply(520, &[], Value::Null), Expect::Retry(None), "520"),
            (
                Answer::Unreachable("error sending request: connection refused".into()),
                Expect::Retry(None),
                "no answer from Discord: error sending request: connection refused",
            ),
        ];
        for (answer, expect, text) in cases {
            let outcome = classify(&answer);
            match (&outcome, expect) {
                (Outcome::Ok, Expect::Ok) => {}
                (Outcome::Retry { after, reason }, Expect::Retry(want)) => {
                    assert_eq!(*after, want, "{answer:?}");
                    assert!(reason.contains(text), "{answer:?}: {reason}");
                }
                (Outcome::Fail { reason }, Expect::Fail) => {
                    assert!(reason.contains(text), "{answer:?}: {reason}")
                }
                (other, _) => panic!("{answer:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn long_error_bodies_are_shortened_to_one_line() {
        let html = format!("<html>\n{}\n</html>", "x ".repeat(1000));
        let text = explain(&html);
        assert!(!text.contains('\n'));
        assert_eq!(text.chars().count(), BODY_EXCERPT + 1);

        let many: serde_json::Map<String, Value> = (0..8)
            .map(|i| (i.to_string(), json!({"value": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}})))
            .collect();
        let text = explain(&json!({"code": 50035, "message": "Invalid Form Body", "errors": {"embeds": {"0": {"fields": many}}}}).to_string());
        assert!(
            text.contains("embeds.0.fields.0.value: This field is required (BASE_TYPE_REQUIRED)"),
            "{text}"
        );
        assert!(text.ends_with("; and 3 more"), "{text}");
    }
}
