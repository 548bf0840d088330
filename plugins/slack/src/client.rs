//! The HTTP side: one POST per Slack message on the sink's own current-thread tokio
//! runtime; the SDK's [`http::classify`] says what Slack's answer means, with
//! [`IncomingWebhook`] for what Slack says in its own words.

use std::time::{Duration, SystemTime};

use alert_router_plugin::Outcome;
use alert_router_plugin::http::{self, Endpoint, Upstream};
use reqwest::StatusCode;
use serde_json::Value;

/// Longest wait for Slack's whole answer; a slower one is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

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
        let outcome = http::classify(&answer, &IncomingWebhook, SystemTime::now());
        self.endpoint.report(outcome, self.endpoint.redacted())
    }
}

/// Slack's incoming webhooks answer in plain text: `ok`, or an error code
/// (`invalid_payload`, `channel_not_found`, `invalid_token`, ...) that says what the
/// operator can do. Statuses mean what HTTP says (see [`http::classify`]).
pub(crate) struct IncomingWebhook;

impl Upstream for IncomingWebhook {
    fn name(&self) -> &str {
        "Slack"
    }

    fn url_setting(&self) -> &str {
        "settings.webhook_url"
    }

    fn advice(&self, _status: StatusCode, body: &str) -> Option<String> {
        let advice = match body.trim() {
            "invalid_payload"
            | "no_text"
            | "invalid_blocks"
            | "too_many_attachments"
            | "missing_text_or_fallback_or_attachments" => {
                "Slack refused the message itself: check the sink's template (templates/slack/)"
            }
            "channel_not_found" | "channel_is_archived" => {
                "the webhook's channel was deleted or archived: add a new webhook in Slack and update settings.webhook_url"
            }
            "action_prohibited" => "a workspace admin restricted posting to this channel",
            "posting_to_general_channel_denied" => "only admins may post to this channel",
            "invalid_token" | "no_active_hooks" | "no_service" | "no_service_id" | "no_team"
            | "team_disabled" => {
                "the webhook was revoked or settings.webhook_url is wrong: copy the URL from Slack again"
            }
            _ => return None,
        };
        Some(advice.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Answer;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    use super::*;

    fn classify(status: u16, body: &str, headers: HeaderMap) -> Outcome {
        let status = StatusCode::from_u16(status).unwrap();
        let answer = Answer::Reply {
            status,
            headers,
            body: body.to_owned(),
        };
        http::classify(&answer, &IncomingWebhook, SystemTime::now())
    }

    /// What is Slack's own: its error codes, and what to do about each. Every status
    /// class is the SDK's (`http::classify`'s table).
    #[test]
    fn slacks_error_codes_say_what_to_do() {
        let cases = [
            (
                400,
                "invalid_payload",
                "Slack answered 400 Bad Request: invalid_payload; Slack refused the message itself: check the sink's template (templates/slack/)",
            ),
            (400, "no_text", "no_text; Slack refused the message itself"),
            (
                400,
                "invalid_blocks",
                "invalid_blocks; Slack refused the message itself",
            ),
            (
                403,
                "action_prohibited",
                "403 Forbidden: action_prohibited; a workspace admin restricted posting",
            ),
            (
                403,
                "invalid_token",
                "invalid_token; the webhook was revoked or settings.webhook_url is wrong",
            ),
            (
                404,
                "channel_not_found",
                "404 Not Found: channel_not_found; the webhook's channel was deleted or archived",
            ),
            (
                404,
                "no_active_hooks",
                "no_active_hooks; the webhook was revoked",
            ),
            (
                410,
                "channel_is_archived",
                "410 Gone: channel_is_archived; the webhook's channel was deleted or archived",
            ),
            (
                301,
                "",
                "redirects are not followed: set settings.webhook_url to the final address",
            ),
        ];
        for (status, body, want) in cases {
            let outcome = classify(status, body, HeaderMap::new());
            assert!(
                matches!(&outcome, Outcome::Fail { reason } if reason.contains(want)),
                "{status} {body}: {outcome:?}"
            );
        }
        assert_eq!(
            classify(400, "user_not_found", HeaderMap::new()),
            Outcome::fail("Slack answered 400 Bad Request: user_not_found"),
            "an unknown code is quoted, with no advice"
        );
    }

    #[test]
    fn slack_is_named_in_every_retry() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        assert_eq!(
            classify(429, "rate_limited", headers),
            Outcome::retry_after(
                Duration::from_secs(30),
                "rate limited by Slack (429: rate_limited); retry after 30 s"
            )
        );
        assert_eq!(
            classify(408, "", HeaderMap::new()),
            Outcome::retry("Slack answered 408 Request Timeout: (empty body)"),
            "a 408 says the request took too long, as a timeout on our side would"
        );
        assert_eq!(
            classify(500, "rollup_error", HeaderMap::new()),
            Outcome::retry("Slack answered 500 Internal Server Error: rollup_error")
        );
        let unreachable = Answer::Unreachable("error sending request: connection refused".into());
        assert_eq!(
            http::classify(&unreachable, &IncomingWebhook, SystemTime::now()),
            Outcome::retry("no answer from Slack: error sending request: connection refused")
        );
    }
}
