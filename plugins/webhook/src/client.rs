//! The HTTP side: one request per message on the sink's own current-thread tokio
//! runtime, and [`classify`], the one place that says what the endpoint's answer means.

use std::time::{SystemTime, UNIX_EPOCH};

use alert_router_plugin::Outcome;
pub(crate) use alert_router_plugin::http::Answer;
use alert_router_plugin::http::{self, excerpt, retry_after};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use alert_router_plugin::http::Endpoint;

use crate::config::Config;
use crate::sign::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// How much of a refusal's body goes into the reason.
pub(crate) const BODY_EXCERPT: usize = 200;

const USER_AGENT: &str = concat!("alert-router-sink-webhook/", env!("CARGO_PKG_VERSION"));

/// Sends bodies to one endpoint, one attempt each.
pub(crate) struct Client {
    client: http::Client,
    endpoint: Endpoint,
    method: reqwest::Method,
    secret: Option<Vec<u8>>,
}

impl Client {
    pub(crate) fn new(config: Config) -> Result<Client, String> {
        let builder = http::builder(USER_AGENT, config.timeout).default_headers(config.headers);
        Ok(Client {
            client: http::Client::new(builder)?,
            endpoint: config.endpoint,
            method: config.method,
            secret: config.secret,
        })
    }

    /// Makes one attempt at sending `body` (JSON) with `id` as its idempotency key.
    pub(crate) fn send(&self, id: &str, body: Vec<u8>) -> Outcome {
        let mut request = self
            .client
            .http()
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
        let answer = self.client.send(request.body(body));
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
    let said = excerpt(body, BODY_EXCERPT);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use alert_router_plugin::http::MAX_RETRY_AFTER;
    use reqwest::header::HeaderMap;

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
