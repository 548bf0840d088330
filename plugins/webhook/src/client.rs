//! The HTTP side: one request per message on the sink's own current-thread tokio
//! runtime, and [`classify`], the one place that says what the endpoint's answer means.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alert_router_plugin::Outcome;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use tokio::runtime::Runtime;

use crate::config::{Config, Endpoint};
use crate::sign::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// Longest wait for a connection (never longer than the whole request's timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a refusal's body goes into the reason.
pub(crate) const BODY_EXCERPT: usize = 200;
/// The longest pause a `Retry-After` may ask for; a longer one is cut to this, so a
/// misconfigured endpoint cannot park the sink for days.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

const USER_AGENT: &str = concat!("alert-router-sink-webhook/", env!("CARGO_PKG_VERSION"));

/// What came back for one request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The endpoint, or something in front of it, answered.
    Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    },
    /// No answer (DNS, connect, TLS, timeout). The text never holds the URL.
    Unreachable(String),
}

/// Sends bodies to one endpoint, one attempt each.
pub(crate) struct Client {
    runtime: Runtime,
    http: reqwest::Client,
    endpoint: Endpoint,
    method: reqwest::Method,
    secret: Option<Vec<u8>>,
}

impl Client {
    pub(crate) fn new(config: Config) -> Result<Client, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the sink's runtime: {e}"))?;
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(config.headers)
            .timeout(config.timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(config.timeout))
            // Following a redirect would hand the headers and body to another address.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe(e)))?;
        Ok(Client {
            runtime,
            http,
            endpoint: config.endpoint,
            method: config.method,
            secret: config.secret,
        })
    }

    /// Makes one attempt at sending `body` (JSON) with `id` as its idempotency key.
    pub(crate) fn send(&self, id: &str, body: Vec<u8>) -> Outcome {
        let mut request = self
            .http
            .request(self.method.clone(), self.endpoint.url().clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match HeaderValue::from_str(id) {
            Ok(key) => request = request.header("idempotency-key", key),
            Err(_) => {
                return Outcome::fail(format!(
                    "message id {id:?} cannot be sent as an Idempotency-Key header"
                ));
            }
        }
        if let Some(secret) = &self.secret {
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            request = request
                .header(TIMESTAMP_HEADER, timestamp)
                .header(SIGNATURE_HEADER, sign::signature(secret, timestamp, &body));
        }
        let request = request.body(body);
        let answer = self.runtime.block_on(async {
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    // A body that cannot be read changes nothing about the status.
                    let body = response.text().await.unwrap_or_default();
                    Answer::Reply {
                        status,
                        headers,
                        body,
                    }
                }
                Err(e) => Answer::Unreachable(describe(e)),
            }
        });
        match classify(&answer, SystemTime::now()) {
            Outcome::Ok => Outcome::Ok,
            Outcome::Retry { after, reason } => Outcome::Retry {
                after,
                reason: self.context(&reason),
            },
            Outcome::Fail { reason } => Outcome::fail(self.context(&reason)),
        }
    }

    /// Names the endpoint (secrets redacted) and removes every secret from the rest.
    fn context(&self, reason: &str) -> String {
        self.endpoint.redact(&format!(
            "{reason} ({} {})",
            self.method,
            self.endpoint.redacted()
        ))
    }
}

/// What an answer means. The only place that decides:
/// - 2xx: delivered;
/// - 429 and 503: retry after `Retry-After` (seconds or an HTTP date), else with the
///   router's backoff;
/// - 408, other 5xx, and no answer at all (network error, timeout): retry;
/// - anything else (other 4xx, 1xx, 3xx: redirects are not followed): fail, with the
///   first [`BODY_EXCERPT`] characters of the body.
///
/// 408 is retried although it is a 4xx: it says the request took too long, as a timeout
/// on our side would.
pub(crate) fn classify(answer: &Answer, now: SystemTime) -> Outcome {
    let (status, headers, body) = match answer {
        Answer::Unreachable(why) => {
            return Outcome::retry(format!("no answer from the webhook: {why}"));
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
    let said = excerpt(body);
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        let after = retry_after(headers, now);
        let when = after.map_or_else(
            || "no Retry-After given".to_owned(),
            |a| format!("retry after {} s", a.as_secs()),
        );
        return Outcome::Retry {
            after,
            reason: format!("the webhook answered {status}: {said}; {when}"),
        };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return Outcome::retry(format!("the webhook answered {status}: {said}"));
    }
    let advice = if status.is_redirection() {
        "; redirects are not followed: set settings.url to the final address"
    } else {
        match status.as_u16() {
            401 | 403 => "; check the credentials in settings.headers or settings.url",
            404 | 405 => "; check settings.url and settings.method",
            _ => "",
        }
    };
    Outcome::fail(format!("the webhook answered {status}: {said}{advice}"))
}

/// The pause `Retry-After` asks for: delay-seconds or an HTTP date (RFC 9110 §10.2.3),
/// at most [`MAX_RETRY_AFTER`]. A date already past asks for no particular pause.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let after = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let date = OffsetDateTime::parse(value, &Rfc2822).ok()?;
        let now = OffsetDateTime::from(now);
        let ahead = date - now;
        if ahead.is_negative() || ahead.is_zero() {
            return None;
        }
        Duration::try_from(ahead).ok()?
    };
    Some(after.min(MAX_RETRY_AFTER))
}

/// The body as one line, at most [`BODY_EXCERPT`] characters (then `…`).
fn excerpt(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.chars().count() {
        0 => "(empty body)".to_owned(),
        n if n > BODY_EXCERPT => {
            format!("{}…", line.chars().take(BODY_EXCERPT).collect::<String>())
        }
        _ => line,
    }
}

/// A transport error as one line with its causes, without the URL (it may hold a token).
fn describe(error: reqwest::Error) -> String {
    let timed_out = error.is_timeout();
    let mut text = alert_router_plugin::error_chain(&error.without_url());
    if timed_out && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        Answer::Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.to_owned(),
        }
    }

    enum Expect {
        Ok,
        Retry(Option<Duration>),
        Fail,
    }

    /// A fixed "now": Sun, 06 Nov 1994 08:49:37 GMT.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    /// Every status class through the one mapping, with the reason text that matters.
    #[test]
    fn every_answer_maps_to_one_outcome() {
        let secs = |s: u64| Some(Duration::from_secs(s));
        let long = "x".repeat(500);
        let cut = format!("{}…", "x".repeat(200));
        let cases: Vec<(Answer, Expect, &str)> = vec![
            (reply(200, &[], "ok"), Expect::Ok, ""),
            (reply(201, &[], ""), Expect::Ok, ""),
            (reply(204, &[], ""), Expect::Ok, ""),
            (
                reply(302, &[("location", "https://elsewhere/")], ""),
                Expect::Fail,
                "302 Found: (empty body); redirects are not followed",
            ),
            (
                reply(400, &[], "{\"error\": \"missing field `type`\"}"),
                Expect::Fail,
                "400 Bad Request: {\"error\": \"missing field `type`\"}",
            ),
            (reply(401, &[], "no"), Expect::Fail, "check the credentials"),
            (
                reply(404, &[], "<html>\n  not found\n</html>"),
                Expect::Fail,
                "404 Not Found: <html> not found </html>; check settings.url",
            ),
            (
                reply(408, &[], ""),
                Expect::Retry(None),
                "408 Request Timeout",
            ),
            (
                reply(409, &[], "duplicate"),
                Expect::Fail,
                "409 Conflict: duplicate",
            ),
            (reply(413, &[], &long), Expect::Fail, &cut),
            (
                reply(422, &[], "bad"),
                Expect::Fail,
                "422 Unprocessable Entity: bad",
            ),
            (
                reply(429, &[("retry-after", "7")], "slow down"),
                Expect::Retry(secs(7)),
                "429 Too Many Requests: slow down; retry after 7 s",
            ),
            (
                reply(429, &[], ""),
                Expect::Retry(None),
                "no Retry-After given",
            ),
            (
                reply(500, &[], "boom"),
                Expect::Retry(None),
                "500 Internal Server Error: boom",
            ),
            (
                reply(502, &[("retry-after", "9")], ""),
                Expect::Retry(None),
                "502 Bad Gateway",
            ),
            (
                reply(503, &[("retry-after", "3")], ""),
                Expect::Retry(secs(3)),
                "503 Service Unavailable",
            ),
            (
                reply(503, &[("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT")], ""),
                Expect::Retry(secs(30)),
                "retry after 30 s",
            ),
            (
                reply(503, &[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")], ""),
                Expect::Retry(None),
                "no Retry-After given",
            ),
            (
                reply(503, &[("retry-after", "soon")], ""),
                Expect::Retry(None),
                "no Retry-After given",
            ),
            (
                reply(503, &[("retry-after", "999999")], ""),
                Expect::Retry(Some(MAX_RETRY_AFTER)),
                "retry after 3600 s",
            ),
            (
                reply(504, &[], ""),
                Expect::Retry(None),
                "504 Gateway Timeout",
            ),
            (
                Answer::Unreachable("error sending request: operation timed out".into()),
                Expect::Retry(None),
                "no answer from the webhook: error sending request: operation timed out",
            ),
        ];
        for (answer, expect, text) in cases {
            let outcome = classify(&answer, now());
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
    fn a_long_refusal_is_cut_to_200_characters() {
        let outcome = classify(&reply(400, &[], &"é".repeat(300)), now());
        let Outcome::Fail { reason } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            reason.ends_with(&format!("{}…", "é".repeat(200))),
            "{reason}"
        );
    }
}
