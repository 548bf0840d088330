//! Transport to the Bot API and the one place that decides what Telegram's answer means
//! for a message: [`verdict`]. Every reason it produces has the bot token redacted,
//! because request errors quote the URL and the URL holds `bot<token>`.
//! `getMe`, the Bot API's own check that the token works, reports what it found to the
//! router as the sink's health.
//!
//! `sendMessage` does not go through teloxide's request path: on any 5xx answer that
//! path sleeps 10 s before it returns the error (teloxide-core's `DELAY_ON_SERVER_ERROR`),
//! and `deliver` makes one attempt and returns, leaving every wait to the router.
//! [`Client::send_message`] posts teloxide's own `SendMessage` payload with the same HTTP
//! client, decodes the answer itself and keeps the HTTP status, so a 5xx is a
//! [`Verdict::Retry`] at once. The other methods (`getMe`, `getUpdates`, ...) run on the
//! sink's background tasks, where teloxide's pause does no harm.

use std::sync::Arc;
use std::time::Duration;

use alert_router_plugin::Host;

use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::IgnoredAny;
use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::payloads::{GetUpdatesSetters, SendMessage, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::requests::Payload;
use teloxide::types::{
    AllowedUpdate, BotCommand, ChatId, False, LinkPreviewOptions, Me, ParseMode, Recipient,
    ReplyMarkup, ResponseParameters, ThreadId, True, Update,
};

use crate::config::{ChatRef, Config, Markup, Secret, redact};

/// How long a `getUpdates` long poll waits for an update. teloxide's HTTP client gives
/// up on any request after 17 s, so this must stay well below that.
pub const POLL_TIMEOUT_SECS: u32 = 10;

/// What an answer (or the lack of one) means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Worth another attempt: flood control (`after` is Telegram's `retry_after`),
    /// a network error, a server error.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Telegram could not parse the markup: send the text once more as plain text.
    PlainText { reason: String },
    /// Telegram refused the message for good (bot blocked, chat not found, bad
    /// request): `reason` is Telegram's description.
    Fail { reason: String },
}

impl Verdict {
    /// Why, as Telegram (or the transport) said it, token redacted.
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Retry { reason, .. }
            | Verdict::PlainText { reason }
            | Verdict::Fail { reason } => reason,
        }
    }

    /// Telegram refused the bot token: nothing works until the settings change.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Verdict::Fail { reason } if reason.starts_with("Unauthorized"))
    }
}

/// A request that did not succeed: the error, and the HTTP status when the plugin sent
/// the request itself (teloxide's request path drops it).
#[derive(Debug)]
pub struct Failure {
    pub status: Option<StatusCode>,
    pub error: RequestError,
}

impl From<RequestError> for Failure {
    fn from(error: RequestError) -> Failure {
        Failure {
            status: None,
            error,
        }
    }
}

/// Maps a failed request to a [`Verdict`]. This is the only function that interprets
/// Telegram's answers; the table test below puts every kind of answer through it.
/// `error` is a teloxide error, or a [`Failure`] that also knows the HTTP status.
pub fn verdict<'a>(error: impl Into<FailureRef<'a>>, token: &Secret) -> Verdict {
    let FailureRef { status, error } = error.into();
    let verdict = match status {
        // A server error is worth another attempt whatever the body says (Telegram's
        // description, a proxy's page); the router decides when.
        Some(status) if status.is_server_error() => {
            let answer = teloxide_verdict(error);
            let after = match &answer {
                Verdict::Retry { after, .. } => *after,
                _ => None,
            };
            Verdict::Retry {
                after,
                reason: format!("HTTP {status}: {}", answer.reason()),
            }
        }
        _ => teloxide_verdict(error),
    };
    match verdict {
        Verdict::Retry { after, reason } => Verdict::Retry {
            after,
            reason: redact(token, &reason),
        },
        Verdict::PlainText { reason } => Verdict::PlainText {
            reason: redact(token, &reason),
        },
        Verdict::Fail { reason } => Verdict::Fail {
            reason: redact(token, &reason),
        },
    }
}

/// What [`verdict`] reads: a teloxide error and the HTTP status, if known.
#[derive(Debug, Clone, Copy)]
pub struct FailureRef<'a> {
    status: Option<StatusCode>,
    error: &'a RequestError,
}

impl<'a> From<&'a RequestError> for FailureRef<'a> {
    fn from(error: &'a RequestError) -> FailureRef<'a> {
        FailureRef {
            status: None,
            error,
        }
    }
}

impl<'a> From<&'a Failure> for FailureRef<'a> {
    fn from(failure: &'a Failure) -> FailureRef<'a> {
        FailureRef {
            status: failure.status,
            error: &failure.error,
        }
    }
}

/// What a teloxide error means, the HTTP status aside; token not yet redacted.
fn teloxide_verdict(error: &RequestError) -> Verdict {
    match error {
        RequestError::RetryAfter(seconds) => Verdict::Retry {
            after: Some(seconds.duration()),
            reason: format!("Too Many Requests: retry after {}", seconds.seconds()),
        },
        RequestError::Network(e) => Verdict::Retry {
            after: None,
            reason: format!("cannot reach the Telegram Bot API: {}", chain(&**e)),
        },
        RequestError::Io(e) => Verdict::Retry {
            after: None,
            reason: format!("I/O error talking to the Telegram Bot API: {e}"),
        },
        RequestError::InvalidJson { raw, .. } => Verdict::Retry {
            after: None,
            reason: format!(
                "the Telegram Bot API answered with something other than its JSON (a proxy \
                 error page?): {}",
                excerpt(raw)
            ),
        },
        RequestError::MigrateToChatId(to) => Verdict::Fail {
            reason: format!(
                "Bad Request: group chat was upgraded to a supergroup chat; put {to} in \
                 settings.chat_ids instead"
            ),
        },
        RequestError::Api(api) => api_verdict(api),
    }
}

fn api_verdict(error: &ApiError) -> Verdict {
    match error {
        ApiError::CantParseEntities(description) => Verdict::PlainText {
            reason: description.clone(),
        },
        ApiError::InvalidToken => Verdict::Fail {
            reason: "Unauthorized: Telegram refused the bot token; check settings.bot_token"
                .to_owned(),
        },
        ApiError::TerminatedByOtherGetUpdates => Verdict::Retry {
            after: None,
            reason: error.to_string(),
        },
        ApiError::Unknown(description) => {
            // teloxide drops the HTTP status; the description's prefix says what it was
            // ("Internal Server Error: ...", "Too Many Requests: ..." without parameters).
            let transient = [
                "Internal Server Error",
                "Bad Gateway",
                "Service Unavailable",
                "Gateway Timeout",
                "Too Many Requests",
            ];
            if transient.iter().any(|p| description.starts_with(p)) {
                Verdict::Retry {
                    after: None,
                    reason: description.clone(),
                }
            } else {
                Verdict::Fail {
                    reason: description.clone(),
                }
            }
        }
        // Every other variant displays as Telegram's own description.
        other => Verdict::Fail {
            reason: other.to_string(),
        },
    }
}

/// `<api_url>/bot<token>/<method>`, as teloxide builds it.
fn method_url(api_url: &reqwest::Url, token: &str, method: &str) -> reqwest::Url {
    let mut url = api_url.clone();
    // An http(s) URL (all `api_url` accepts) always has path segments to push to.
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty();
        segments.push(&format!("bot{token}"));
        segments.push(method);
    }
    url
}

/// Telegram's answer: `{"ok": true, "result": ...}` or `{"ok": false, "error_code": ...,
/// "description": ..., "parameters": {...}}` (the HTTP status is read separately).
#[derive(Deserialize)]
#[serde(untagged)]
enum Answer {
    Ok {
        #[allow(dead_code)]
        ok: True,
        /// What was sent; the plugin has no use for it, and a message Telegram accepted
        /// must not turn into a retry because some field of it did not parse.
        #[allow(dead_code)]
        #[serde(default)]
        result: Option<IgnoredAny>,
    },
    Err {
        #[allow(dead_code)]
        ok: False,
        description: ApiError,
        #[serde(default)]
        parameters: Option<ResponseParameters>,
    },
}

/// The body of an answer as teloxide would read it: `Ok` for `"ok": true`, otherwise the
/// same [`RequestError`] its request path makes of it.
fn decode(body: &str) -> Result<(), RequestError> {
    match serde_json::from_str::<Answer>(body) {
        Ok(Answer::Ok { .. }) => Ok(()),
        Ok(Answer::Err {
            parameters: Some(ResponseParameters::RetryAfter(seconds)),
            ..
        }) => Err(RequestError::RetryAfter(seconds)),
        Ok(Answer::Err {
            parameters: Some(ResponseParameters::MigrateToChatId(to)),
            ..
        }) => Err(RequestError::MigrateToChatId(to)),
        Ok(Answer::Err { description, .. }) => Err(RequestError::Api(description)),
        Err(source) => Err(RequestError::InvalidJson {
            source: Arc::new(source),
            raw: body.into(),
        }),
    }
}

/// An error and its causes on one line (reqwest hides the useful part in the source).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    alert_router_plugin::error_chain(error)
}

/// The start of a body that was not JSON, on one line.
fn excerpt(raw: &str) -> String {
    const MAX: usize = 200;
    let one_line: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        "(an empty body)".to_owned()
    } else if one_line.chars().count() > MAX {
        let cut: String = one_line.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        one_line
    }
}

/// The `sendMessage` options besides chat and text.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    pub markup: Option<Markup>,
    pub disable_notification: bool,
    pub protect_content: bool,
    pub message_thread_id: Option<i32>,
    pub link_preview_options: Option<LinkPreviewOptions>,
    pub reply_markup: Option<ReplyMarkup>,
}

/// The Bot API client.
#[derive(Clone)]
pub struct Client {
    bot: teloxide::Bot,
    /// The HTTP client `bot` uses (same connection pool and timeouts), for the requests
    /// sent outside teloxide's request path.
    http: reqwest::Client,
    api_url: reqwest::Url,
    token: Secret,
    /// Where `getMe` reports the sink's health.
    host: Host,
}

impl Client {
    /// A client for `config`'s token and API URL, reporting health to `host`. Fails only
    /// if the HTTP client cannot be built (no TLS roots), which no retry would fix.
    pub fn new(config: &Config, host: Host) -> Result<Client, String> {
        let http = teloxide::net::default_reqwest_settings()
            .build()
            .map_err(|e| {
                redact(
                    &config.token,
                    &format!("cannot build the HTTP client: {}", chain(&e)),
                )
            })?;
        let bot = teloxide::Bot::with_client(config.token.expose(), http.clone())
            .set_api_url(config.api_url.clone());
        Ok(Client {
            bot,
            http,
            api_url: config.api_url.clone(),
            token: config.token.clone(),
            host,
        })
    }

    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// Sends one message: one request, and its answer as soon as it comes (never
    /// teloxide's 10 s pause after a 5xx; see the module documentation).
    pub async fn send_message(
        &self,
        chat: &ChatRef,
        text: String,
        options: &SendOptions,
    ) -> Result<(), Failure> {
        let recipient = match chat {
            ChatRef::Id(id) => Recipient::Id(ChatId(*id)),
            ChatRef::Username(name) => Recipient::ChannelUsername(name.clone()),
        };
        let mut request = SendMessage::new(recipient, text);
        match options.markup {
            Some(Markup::Html) => request = request.parse_mode(ParseMode::Html),
            Some(Markup::MarkdownV2) => request = request.parse_mode(ParseMode::MarkdownV2),
            #[allow(deprecated)]
            Some(Markup::Markdown) => request = request.parse_mode(ParseMode::Markdown),
            Some(Markup::Plain) | None => {}
        }
        if options.disable_notification {
            request = request.disable_notification(true);
        }
        if options.protect_content {
            request = request.protect_content(true);
        }
        if let Some(thread) = options.message_thread_id {
            request = request.message_thread_id(ThreadId(teloxide::types::MessageId(thread)));
        }
        if let Some(preview) = &options.link_preview_options {
            request = request.link_preview_options(preview.clone());
        }
        if let Some(markup) = &options.reply_markup {
            request = request.reply_markup(markup.clone());
        }
        self.post(SendMessage::NAME, &request).await
    }

    /// Posts `payload` as JSON to `method`, as teloxide would, and decodes Telegram's
    /// answer without waiting after it, whatever its status.
    async fn post(&self, method: &str, payload: &impl serde::Serialize) -> Result<(), Failure> {
        let url = method_url(&self.api_url, self.token.expose(), method);
        let response = self
            .http
            .post(url)
            .json(payload)
            .send()
            .await
            .map_err(|e| Failure::from(RequestError::from(e)))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| Failure {
            status: Some(status),
            error: RequestError::from(e),
        })?;
        decode(&body).map_err(|error| Failure {
            status: Some(status),
            error,
        })
    }

    /// Who the bot is. What it finds is the sink's health in the router's status: a
    /// refused token or an unreachable Bot API shows there (token redacted) until a
    /// later `getMe` or a delivery succeeds.
    pub async fn get_me(&self) -> Result<Me, RequestError> {
        let answer = self.bot.get_me().await;
        match &answer {
            Ok(_) => {
                self.host.report_healthy();
            }
            Err(error) => {
                let verdict = verdict(error, &self.token);
                self.host
                    .report_unhealthy(&format!("getMe: {}", verdict.reason()));
            }
        }
        answer
    }

    pub async fn delete_webhook(&self) -> Result<(), RequestError> {
        self.bot.delete_webhook().await.map(|_| ())
    }

    pub async fn set_my_commands(&self, commands: Vec<BotCommand>) -> Result<(), RequestError> {
        self.bot.set_my_commands(commands).await.map(|_| ())
    }

    /// One long poll for messages from update `offset` on.
    pub async fn get_updates(
        &self,
        offset: i32,
        timeout_secs: u32,
    ) -> Result<Vec<Update>, RequestError> {
        self.bot
            .get_updates()
            .offset(offset)
            .timeout(timeout_secs)
            .allowed_updates(vec![AllowedUpdate::Message])
            .await
    }

    /// Tells Telegram every update before `offset` was handled (a zero-timeout poll
    /// for at most one update, as teloxide does on shutdown).
    pub async fn confirm(&self, offset: i32) -> Result<(), RequestError> {
        self.bot
            .get_updates()
            .offset(offset)
            .limit(1)
            .timeout(0)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use teloxide::types::Seconds;

    use super::*;

    const TOKEN: &str = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    fn token() -> Secret {
        Secret::new(TOKEN)
    }

    /// The answer Telegram sends, as teloxide parses it.
    fn answer(body: &str) -> RequestError {
        #[derive(serde::Deserialize)]
        struct Body {
            description: ApiError,
            #[serde(default)]
            parameters: Option<teloxide::types::ResponseParameters>,
        }
        let body: Body = serde_json::from_str(body).expect("test body parses");
        match body.parameters {
            Some(teloxide::types::ResponseParameters::RetryAfter(s)) => RequestError::RetryAfter(s),
            Some(teloxide::types::ResponseParameters::MigrateToChatId(c)) => {
                RequestError::MigrateToChatId(c)
            }
            None => RequestError::Api(body.description),
        }
    }

    fn retry(after: Option<u64>, reason: &str) -> Verdict {
        Verdict::Retry {
            after: after.map(Duration::from_secs),
            reason: reason.to_owned(),
        }
    }

    fn fail(reason: &str) -> Verdict {
        Verdict::Fail {
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn every_kind_of_answer_maps_to_one_verdict() {
        let table: Vec<(&str, RequestError, Verdict)> = vec![
            (
                "429 with retry_after",
                answer(r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#),
                retry(Some(3), "Too Many Requests: retry after 3"),
            ),
            (
                "429 without parameters",
                answer(r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5"}"#),
                retry(None, "Too Many Requests: retry after 5"),
            ),
            (
                "500",
                answer(r#"{"ok":false,"error_code":500,"description":"Internal Server Error: restart"}"#),
                retry(None, "Internal Server Error: restart"),
            ),
            (
                "502 from a proxy, not JSON",
                RequestError::InvalidJson {
                    source: Arc::new(serde_json::from_str::<u8>("<html>").expect_err("not json")),
                    raw: "<html>\n<h1>502 Bad Gateway</h1></html>".into(),
                },
                retry(
                    None,
                    "the Telegram Bot API answered with something other than its JSON (a proxy \
                     error page?): <html> <h1>502 Bad Gateway</h1></html>",
                ),
            ),
            (
                "400 can't parse entities",
                answer(r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Unsupported start tag \"br\" at byte offset 12"}"#),
                Verdict::PlainText {
                    reason: "Bad Request: can't parse entities: Unsupported start tag \"br\" at byte offset 12".into(),
                },
            ),
            (
                "400 chat not found",
                answer(r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#),
                fail("Bad Request: chat not found"),
            ),
            (
                "400 message is too long",
                answer(r#"{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}"#),
                fail("Bad Request: message is too long"),
            ),
            (
                "400 unknown description",
                answer(r#"{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}"#),
                fail("Bad Request: message text is empty"),
            ),
            (
                "400 migrated group",
                answer(r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}"#),
                fail("Bad Request: group chat was upgraded to a supergroup chat; put -1001234567890 in settings.chat_ids instead"),
            ),
            (
                "401",
                answer(r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#),
                fail("Unauthorized: Telegram refused the bot token; check settings.bot_token"),
            ),
            (
                "403 blocked",
                answer(r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#),
                fail("Forbidden: bot was blocked by the user"),
            ),
            (
                "403 kicked",
                answer(r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was kicked from the supergroup chat"}"#),
                fail("Forbidden: bot was kicked from the supergroup chat"),
            ),
            (
                "409 other poller",
                answer(r#"{"ok":false,"error_code":409,"description":"Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}"#),
                retry(None, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"),
            ),
            (
                "a description that quotes the token",
                answer(&format!(r#"{{"ok":false,"error_code":400,"description":"Bad Request: no route /bot{TOKEN}/x"}}"#)),
                fail("Bad Request: no route /bot***/x"),
            ),
        ];
        for (name, error, expected) in table {
            assert_eq!(verdict(&error, &token()), expected, "{name}");
        }
    }

    /// An answer as `Client::send_message` reads it off the wire: HTTP status and body.
    fn answered(status: u16, body: &str) -> Failure {
        Failure {
            status: Some(StatusCode::from_u16(status).expect("a valid status")),
            error: decode(body).expect_err("an error answer"),
        }
    }

    #[test]
    fn answers_read_off_the_wire_keep_their_http_status() {
        let table: Vec<(&str, Failure, Verdict)> = vec![
            (
                "500 with Telegram's envelope",
                answered(500, r#"{"ok":false,"error_code":500,"description":"Internal Server Error: restart"}"#),
                retry(None, "HTTP 500 Internal Server Error: Internal Server Error: restart"),
            ),
            (
                "502 from a proxy, not JSON",
                answered(502, "<html>\n<h1>502 Bad Gateway</h1></html>"),
                retry(
                    None,
                    "HTTP 502 Bad Gateway: the Telegram Bot API answered with something other \
                     than its JSON (a proxy error page?): <html> <h1>502 Bad Gateway</h1></html>",
                ),
            ),
            (
                "503 whose description no list knows",
                answered(503, r#"{"ok":false,"error_code":503,"description":"Bad Request: try later"}"#),
                retry(None, "HTTP 503 Service Unavailable: Bad Request: try later"),
            ),
            (
                "504 with an empty body",
                answered(504, ""),
                retry(
                    None,
                    "HTTP 504 Gateway Timeout: the Telegram Bot API answered with something \
                     other than its JSON (a proxy error page?): (an empty body)",
                ),
            ),
            (
                "500 that quotes the token",
                answered(500, &format!(r#"{{"ok":false,"error_code":500,"description":"Internal Server Error: /bot{TOKEN}/x"}}"#)),
                retry(None, "HTTP 500 Internal Server Error: Internal Server Error: /bot***/x"),
            ),
            (
                "429 with retry_after",
                answered(429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#),
                retry(Some(3), "Too Many Requests: retry after 3"),
            ),
            (
                "400 can't parse entities",
                answered(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Unsupported start tag \"br\" at byte offset 12"}"#),
                Verdict::PlainText {
                    reason: "Bad Request: can't parse entities: Unsupported start tag \"br\" at byte offset 12".into(),
                },
            ),
            (
                "400 migrated group",
                answered(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}"#),
                fail("Bad Request: group chat was upgraded to a supergroup chat; put -1001234567890 in settings.chat_ids instead"),
            ),
            (
                "401",
                answered(401, r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#),
                fail("Unauthorized: Telegram refused the bot token; check settings.bot_token"),
            ),
            (
                "403 blocked",
                answered(403, r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#),
                fail("Forbidden: bot was blocked by the user"),
            ),
            (
                "404 from a proxy, not JSON",
                answered(404, "<html>Not Found</html>"),
                retry(
                    None,
                    "the Telegram Bot API answered with something other than its JSON (a proxy \
                     error page?): <html>Not Found</html>",
                ),
            ),
        ];
        for (name, failure, expected) in table {
            assert_eq!(verdict(&failure, &token()), expected, "{name}");
        }
        assert!(
            verdict(
                &answered(
                    401,
                    r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#
                ),
                &token()
            )
            .is_unauthorized()
        );
    }

    #[test]
    fn an_accepted_message_is_ok_whatever_its_result_holds() {
        for body in [
            r#"{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":42,"type":"private"},"text":"hi"}}"#,
            r#"{"ok":true,"result":{"something teloxide would not parse":[1,2]}}"#,
            r#"{"ok":true,"result":true}"#,
            r#"{"ok":true}"#,
        ] {
            assert!(decode(body).is_ok(), "{body}");
        }
        for body in [r#"{"ok":false}"#, r#"{"result":true}"#, "null", ""] {
            assert!(
                matches!(decode(body), Err(RequestError::InvalidJson { .. })),
                "{body}"
            );
        }
    }

    #[test]
    fn method_urls_are_built_as_teloxide_builds_them() {
        for (base, expected) in [
            (
                "https://api.telegram.org",
                format!("https://api.telegram.org/bot{TOKEN}/SendMessage"),
            ),
            (
                "http://127.0.0.1:8081/telegram",
                format!("http://127.0.0.1:8081/telegram/bot{TOKEN}/SendMessage"),
            ),
        ] {
            let base = crate::config::validate_api_url(Some(base)).expect("a valid api_url");
            assert_eq!(
                method_url(&base, TOKEN, SendMessage::NAME).as_str(),
                expected
            );
        }
    }

    #[test]
    fn flood_control_carries_telegrams_delay() {
        let v = verdict(
            &RequestError::RetryAfter(Seconds::from_seconds(42)),
            &token(),
        );
        assert!(matches!(v, Verdict::Retry { after: Some(d), .. } if d == Duration::from_secs(42)));
    }

    #[test]
    fn network_errors_retry_without_the_token() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // Port 9 on localhost: nothing listens, so the request fails at once.
        let error = runtime
            .block_on(
                reqwest::Client::new()
                    .post(format!("http://127.0.0.1:9/bot{TOKEN}/SendMessage"))
                    .send(),
            )
            .expect_err("nothing listens on port 9");
        let v = verdict(&RequestError::Network(Arc::new(error)), &token());
        let Verdict::Retry {
            after: None,
            reason,
        } = v
        else {
            panic!("expected a retry, got {v:?}");
        };
        assert!(
            reason.starts_with("cannot reach the Telegram Bot API"),
            "{reason}"
        );
        assert!(!reason.contains("AAHdqTcv"), "{reason}");
        assert!(reason.contains("bot***"), "{reason}");
    }
}
