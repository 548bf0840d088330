//! The HTTP side: one request per message on the sink's own current-thread tokio
//! runtime; the SDK's [`http::classify`] says what the endpoint's answer means.

use std::time::{SystemTime, UNIX_EPOCH};

use alert_router_plugin::Outcome;
use alert_router_plugin::http::{self, Endpoint, Upstream};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use crate::config::Config;
use crate::sign::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

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
        let outcome = http::classify(&answer, &Receiver, SystemTime::now());
        let place = format!("{} {}", self.method, self.endpoint.redacted());
        self.endpoint.report(outcome, &place)
    }
}

/// The receiver: any HTTP endpoint, so HTTP's own rules (see [`http::classify`]), and
/// advice that names the settings to check.
pub(crate) struct Receiver;

impl Upstream for Receiver {
    fn name(&self) -> &str {
        "the webhook"
    }

    fn url_setting(&self) -> &str {
        "settings.url"
    }

    fn advice(&self, status: StatusCode, _body: &str) -> Option<String> {
        let advice = match status.as_u16() {
            401 | 403 => "check the credentials in settings.headers or settings.url",
            404 | 405 => "check settings.url and settings.method",
            _ => return None,
        };
        Some(advice.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use http::Answer;
    use reqwest::header::HeaderMap;

    use super::*;

    fn reply(status: u16, body: &str) -> Answer {
        let status = StatusCode::from_u16(status).unwrap();
        Answer::Reply {
            status,
            headers: HeaderMap::new(),
            body: body.to_owned(),
        }
    }

    /// What is the webhook's own: its name in reasons and the advice for each refusal;
    /// every status class is the SDK's (`http::classify`'s table).
    #[test]
    fn refusals_say_which_setting_to_check() {
        let now = SystemTime::now();
        let cases = [
            (
                302,
                "",
                "the webhook answered 302 Found: (empty body); redirects are not followed: set settings.url to the final address",
            ),
            (
                400,
                "{\"error\": \"missing field `type`\"}",
                "the webhook answered 400 Bad Request: {\"error\": \"missing field `type`\"}",
            ),
            (
                401,
                "no",
                "401 Unauthorized: no; check the credentials in settings.headers or settings.url",
            ),
            (403, "", "; check the credentials"),
            (
                404,
                "<html>\n  not found\n</html>",
                "404 Not Found: <html> not found </html>; check settings.url and settings.method",
            ),
            (405, "", "; check settings.url and settings.method"),
            (
                409,
                "duplicate",
                "the webhook answered 409 Conflict: duplicate",
            ),
        ];
        for (status, body, want) in cases {
            match http::classify(&reply(status, body), &Receiver, now) {
                Outcome::Fail { reason } => assert!(reason.contains(want), "{status}: {reason}"),
                other => panic!("{status} gave {other:?}"),
            }
        }
        let unknown = http::classify(&reply(422, "bad"), &Receiver, now);
        assert_eq!(
            unknown,
            Outcome::fail("the webhook answered 422 Unprocessable Entity: bad")
        );
        let timeout = http::classify(
            &Answer::Unreachable("error sending request: operation timed out".into()),
            &Receiver,
            now,
        );
        assert_eq!(
            timeout,
            Outcome::retry(
                "no answer from the webhook: error sending request: operation timed out"
            )
        );
        let busy = http::classify(&reply(429, "slow down"), &Receiver, now);
        assert!(
            matches!(&busy, Outcome::Retry { after: None, reason } if reason == "rate limited by the webhook (429: slow down); no Retry-After given"),
            "{busy:?}"
        );
    }

    #[test]
    fn a_long_refusal_is_cut_to_200_characters() {
        let outcome = http::classify(&reply(400, &"é".repeat(300)), &Receiver, SystemTime::now());
        let Outcome::Fail { reason } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            reason.ends_with(&format!("{}…", "é".repeat(200))),
            "{reason}"
        );
    }
}
