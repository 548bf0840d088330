//! The HTTP side: one POST per webhook body, made on the sink's own current-thread
//! tokio runtime within Discord's rate limits; the SDK's [`http::classify`] says what
//! Discord's answer means, with [`DiscordApi`] for what Discord says in its own words.

use std::time::{Duration, Instant, SystemTime};

use alert_router_plugin::Outcome;
use alert_router_plugin::http::{self, Answer, Endpoint, Upstream, excerpt};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Serialize;
use serde_json::Value;

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
    /// A client for `endpoint`, whose global rate limit is that of `host`.
    pub(crate) fn new(endpoint: Endpoint, host: &str) -> Result<Client, String> {
        Ok(Client {
            client: http::Client::new(http::builder(USER_AGENT, REQUEST_TIMEOUT))?,
            endpoint,
            limiter: RateLimiter::new(host, &WINDOWS),
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
        let outcome = http::classify(&answer, &DiscordApi, SystemTime::now());
        self.endpoint.report(outcome, self.endpoint.redacted())
    }
}

/// Discord's webhook API: a 429 says how long to wait in its JSON body
/// (`retry_after`, seconds as a float) and whether the limit is global; an error is JSON
/// with a message, a code and field errors. Statuses mean what HTTP says (see
/// [`http::classify`]).
pub(crate) struct DiscordApi;

impl Upstream for DiscordApi {
    fn name(&self) -> &str {
        "Discord"
    }

    fn url_setting(&self) -> &str {
        "settings.webhook_url"
    }

    fn explain(&self, body: &str) -> String {
        explain(body)
    }

    /// The body's `retry_after`, else the `Retry-After` header, else
    /// `X-RateLimit-Reset-After`.
    fn retry_after(&self, headers: &HeaderMap, body: &str, _now: SystemTime) -> Option<Duration> {
        retry_after(headers, body).0
    }

    fn rate_limit_scope(&self, headers: &HeaderMap, body: &str) -> Option<&'static str> {
        retry_after(headers, body).1.then_some("globally")
    }

    fn advice(&self, status: StatusCode, body: &str) -> Option<String> {
        let advice = match (status.as_u16(), code(body)) {
            (404, _) | (_, Some(10015)) => {
                "the webhook was deleted or settings.webhook_url is wrong (Discord asks clients to stop using it)"
            }
            (401, _) | (_, Some(50027)) => {
                "the token in settings.webhook_url is wrong: copy the webhook URL again"
            }
            (403, _) => "the webhook may not post there (check its channel and thread_id)",
            (400, _) => "Discord refused the message itself",
            _ => return None,
        };
        Some(advice.to_owned())
    }
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

    /// What Discord's answer means, through the SDK's mapping with Discord's words.
    fn classify(status: u16, headers: &[(&'static str, &str)], body: Value) -> Outcome {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let status = StatusCode::from_u16(status).unwrap();
        let answer = Answer::Reply {
            status,
            headers: map,
            body,
        };
        http::classify(&answer, &DiscordApi, SystemTime::now())
    }

    /// What is Discord's own: its error JSON and codes, and what to do about each. Every
    /// status class is the SDK's (`http::classify`'s table).
    #[test]
    fn discords_errors_say_what_to_do() {
        let invalid_form = json!({"code": 50035, "message": "Invalid Form Body", "errors": {"embeds": {"0": {
            "description": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 4096 or fewer in length."}]}}}}});
        let cases = [
            (
                400,
                invalid_form,
                "Discord answered 400 Bad Request: Invalid Form Body (code 50035): embeds.0.description: Must be 4096 or fewer in length. (BASE_TYPE_MAX_LENGTH); Discord refused the message itself",
            ),
            (
                400,
                json!({"code": 50006, "message": "Cannot send an empty message"}),
                "Cannot send an empty message (code 50006); Discord refused",
            ),
            (
                401,
                json!({"code": 50027, "message": "Invalid Webhook Token"}),
                "Invalid Webhook Token (code 50027); the token in settings.webhook_url is wrong",
            ),
            (
                403,
                json!({"code": 50013, "message": "Missing Permissions"}),
                "403 Forbidden: Missing Permissions (code 50013); the webhook may not post there",
            ),
            (
                404,
                json!({"code": 10015, "message": "Unknown Webhook"}),
                "404 Not Found: Unknown Webhook (code 10015); the webhook was deleted",
            ),
            (
                405,
                json!({"code": 0, "message": "405: Method Not Allowed"}),
                "405 Method Not Allowed: 405: Method Not Allowed (code 0)",
            ),
            (
                413,
                json!({"code": 40005, "message": "Request entity too large"}),
                "Request entity too large (code 40005)",
            ),
            (
                301,
                Value::Null,
                "301 Moved Permanently: (empty body); redirects are not followed: set settings.webhook_url",
            ),
        ];
        for (status, body, want) in cases {
            let outcome = classify(status, &[], body);
            assert!(
                matches!(&outcome, Outcome::Fail { reason } if reason.contains(want)),
                "{status}: {outcome:?}"
            );
        }
    }

    /// A 429 waits for the body's `retry_after` (float seconds), else `Retry-After`,
    /// else `X-RateLimit-Reset-After`, and says when the limit is global.
    #[test]
    fn a_429_waits_as_long_as_discord_says() {
        let secs = |s: f64| Some(Duration::from_secs_f64(s));
        let limited =
            json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false});
        let global =
            json!({"message": "You are being rate limited.", "retry_after": 64.57, "global": true});
        let cases = [
            (
                &[("retry-after", "2")][..],
                limited,
                secs(1.5),
                "rate limited by Discord (429: You are being rate limited.); retry after 1.50 s",
            ),
            (
                &[("retry-after", "3")],
                Value::Null,
                secs(3.0),
                "rate limited by Discord (429: (empty body)); retry after 3 s",
            ),
            (
                &[("x-ratelimit-reset-after", "0.25")],
                json!({"message": "slow"}),
                secs(0.25),
                "(429: slow); retry after 0.25 s",
            ),
            (
                &[],
                global,
                secs(64.57),
                "rate limited by Discord globally (429: You are being rate limited.)",
            ),
            (
                &[("x-ratelimit-global", "true")],
                json!({"message": "m", "retry_after": 1.0}),
                secs(1.0),
                "rate limited by Discord globally",
            ),
            (&[], Value::Null, None, "no Retry-After given"),
        ];
        for (headers, body, after, want) in cases {
            let outcome = classify(429, headers, body);
            assert!(
                matches!(&outcome, Outcome::Retry { after: a, reason } if *a == after && reason.contains(want)),
                "{headers:?}: {outcome:?}"
            );
        }
        assert_eq!(
            classify(503, &[("retry-after", "4")], Value::Null),
            Outcome::retry_after(
                Duration::from_secs(4),
                "Discord answered 503 Service Unavailable: (empty body); retry after 4 s"
            )
        );
        assert_eq!(
            classify(
                500,
                &[],
                json!({"code": 0, "message": "500: Internal Server Error"})
            ),
            Outcome::retry(
                "Discord answered 500 Internal Server Error: 500: Internal Server Error (code 0)"
            )
        );
        let unreachable = Answer::Unreachable("error sending request: connection refused".into());
        assert_eq!(
            http::classify(&unreachable, &DiscordApi, SystemTime::now()),
            Outcome::retry("no answer from Discord: error sending request: connection refused")
        );
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
