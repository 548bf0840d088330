//! The HTTP side: one POST per Slack message on the sink's own current-thread tokio
//! runtime, and [`classify`], the one place that says what Slack's answer means.

use std::time::{Duration, SystemTime};

use alert_router_plugin::Outcome;
pub(crate) use alert_router_plugin::http::Answer;
use alert_router_plugin::http::{self, excerpt, retry_after};
use reqwest::StatusCode;
use serde_json::Value;

use alert_router_plugin::http::Endpoint;

/// Longest wait for Slack's whole answer; a slower one is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of an unexpected answer goes into a reason.
const BODY_EXCERPT: usize = 200;

const USER_AGENT: &str = concat!("alert-router-sink-slack/", env!("CARGO_PKG_VERSION"));

/// Posts messages to one incoming webhook, one attempt each.
pub(crate) struct Client {
    client: http::Client,
    endpoint: Endpoint,
}

impl Client {
    pub(crate) fn new(endpoint: Endpoint) -> Result<Client, String> {
        Ok(Client {
            client: http::Client::new(http::builder(USER_AGENT, REQUEST_TIMEOUT))?,
            endpoint,
        })
    }

    /// Makes one attempt at posting `body`.
    pub(crate) fn send(&self, body: &Value) -> Outcome {
        let request = self
            .client
            .http()
            .post(self.endpoint.url().clone())
            .json(body);
        let answer = self.client.send(request);
        match classify(&answer, SystemTime::now()) {
            Outcome::Ok => Outcome::Ok,
            Outcome::Retry { after, reason } => Outcome::Retry {
                after,
                reason: self.context(&reason),
            },
            Outcome::Fail { reason } => Outcome::fail(self.context(&reason)),
        }
    }

    /// Names the webhook (redacted) and removes the URL from anything else.
    fn context(&self, reason: &str) -> String {
        self.endpoint
            .redact(&format!("{reason} ({})", self.endpoint.redacted()))
    }
}

/// What Slack's answer means. The only place that decides:
/// - 2xx (`ok`): delivered;
/// - 429: retry after `Retry-After` (seconds, or an HTTP date);
/// - 5xx (`rollup_error`, ...): retry, after `Retry-After` when given; no answer at all:
///   retry;
/// - anything else (`invalid_payload`, `no_text`, `channel_not_found`,
///   `channel_is_archived`, `action_prohibited`, `invalid_token`, `no_active_hooks`,
///   `invalid_blocks`, ...): fail with Slack's text and what to do about it.
pub(crate) fn classify(answer: &Answer, now: SystemTime) -> Outcome {
    let (status, headers, body) = match answer {
        Answer::Unreachable(why) => return Outcome::retry(format!("no answer from Slack: {why}")),
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
    if status == StatusCode::TOO_MANY_REQUESTS {
        let after = retry_after(headers, now);
        let when = after.map_or_else(
            || "no Retry-After given".to_owned(),
            |a| format!("retry after {} s", a.as_secs()),
        );
        return Outcome::Retry {
            after,
            reason: format!("Slack rate limited the webhook (429: {said}); {when}"),
        };
    }
    if status.is_server_error() {
        return Outcome::Retry {
            after: retry_after(headers, now),
            reason: format!("Slack answered {status}: {said}"),
        };
    }
    let advice = match body.trim() {
        "invalid_payload"
        | "no_text"
        | "invalid_blocks"
        | "too_many_attachments"
        | "missing_text_or_fallback_or_attachments" => {
            "; Slack refused the message itself: check the sink's template (templates/slack/)"
        }
        "channel_not_found" | "channel_is_archived" => {
            "; the webhook's channel was deleted or archived: add a new webhook in Slack and update settings.webhook_url"
        }
        "action_prohibited" => "; a workspace admin restricted posting to this channel",
        "posting_to_general_channel_denied" => "; only admins may post to this channel",
        "invalid_token" | "no_active_hooks" | "no_service" | "no_service_id" | "no_team"
        | "team_disabled" => {
            "; the webhook was revoked or settings.webhook_url is wrong: copy the URL from Slack again"
        }
        _ if status.is_redirection() => "; redirects are not followed: check settings.webhook_url",
        _ => "",
    };
    Outcome::fail(format!("Slack answered {status}: {said}{advice}"))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use reqwest::header::{HeaderMap, HeaderValue};

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

    /// Every answer Slack documents through the one mapping.
    #[test]
    fn every_answer_maps_to_one_outcome() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let secs = |s: u64| Some(Duration::from_secs(s));
        let cases: Vec<(Answer, Expect, &str)> = vec![
            (reply(200, &[], "ok"), Expect::Ok, ""),
            (
                reply(400, &[], "invalid_payload"),
                Expect::Fail,
                "400 Bad Request: invalid_payload; Slack refused the message itself",
            ),
            (
                reply(400, &[], "no_text"),
                Expect::Fail,
                "no_text; Slack refused the message itself",
            ),
            (
                reply(400, &[], "invalid_blocks"),
                Expect::Fail,
                "invalid_blocks; Slack refused",
            ),
            (
                reply(400, &[], "user_not_found"),
                Expect::Fail,
                "400 Bad Request: user_not_found",
            ),
            (
                reply(403, &[], "action_prohibited"),
                Expect::Fail,
                "action_prohibited; a workspace admin restricted",
            ),
            (
                reply(403, &[], "invalid_token"),
                Expect::Fail,
                "invalid_token; the webhook was revoked",
            ),
            (
                reply(404, &[], "channel_not_found"),
                Expect::Fail,
                "404 Not Found: channel_not_found; the webhook's channel was deleted or archived",
            ),
            (
                reply(404, &[], "no_active_hooks"),
                Expect::Fail,
                "no_active_hooks; the webhook was revoked",
            ),
            (
                reply(410, &[], "channel_is_archived"),
                Expect::Fail,
                "410 Gone: channel_is_archived",
            ),
            (
                reply(429, &[("retry-after", "30")], "rate_limited"),
                Expect::Retry(secs(30)),
                "Slack rate limited the webhook (429: rate_limited); retry after 30 s",
            ),
            (
                reply(429, &[("retry-after", "Sun, 06 Nov 1994 08:49:47 GMT")], ""),
                Expect::Retry(secs(10)),
                "retry after 10 s",
            ),
            (
                reply(429, &[], ""),
                Expect::Retry(None),
                "no Retry-After given",
            ),
            (
                reply(500, &[], "rollup_error"),
                Expect::Retry(None),
                "500 Internal Server Error: rollup_error",
            ),
            (
                reply(503, &[("retry-after", "5")], ""),
                Expect::Retry(secs(5)),
                "503 Service Unavailable: (empty body)",
            ),
            (
                Answer::Unreachable("error sending request: connection refused".into()),
                Expect::Retry(None),
                "no answer from Slack: error sending request: connection refused",
            ),
        ];
        for (answer, expect, text) in cases {
            let outcome = classify(&answer, now);
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
}
