//! For plugins that deliver over HTTP (feature `http`): a client that makes one request
//! per attempt on the sink's own current-thread runtime (`deliver` is called on the
//! router's worker thread and may block), [`classify`], which says what the answer
//! means (with an [`Upstream`] for what the service says in its own words), and an
//! [`Endpoint`] that names where it went without its secrets.
//!
//! ```no_run
//! use std::time::{Duration, SystemTime};
//! use alert_router_plugin::http::{self, Endpoint, Upstream};
//!
//! struct Hook;
//!
//! impl Upstream for Hook {
//!     fn name(&self) -> &str { "the hook" }
//!     fn url_setting(&self) -> &str { "settings.url" }
//! }
//!
//! let url = reqwest::Url::parse("https://example.com/hook/s3cr3t").unwrap();
//! let endpoint = Endpoint::new(url.clone(), "https://example.com/…".into(), vec![url.path().into()]);
//! let client = http::Client::new(http::builder("my-sink/1.0", Duration::from_secs(10)))?;
//! let answer = client.send(client.http().post(endpoint.url().clone()).body("{}"));
//! let outcome = endpoint.report(http::classify(&answer, &Hook, SystemTime::now()), endpoint.redacted());
//! # Ok::<(), String>(())
//! ```

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use tokio::runtime::Runtime;

use crate::Outcome;

mod classify;

pub use classify::{BODY_EXCERPT, Upstream, classify};

/// The longest pause a `Retry-After` may ask for; a longer one is cut to this, so a
/// misconfigured endpoint cannot park a sink for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Longest wait for a connection (never longer than the whole request's timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a sink sends, and how to talk about it without its secrets: the URL (often a
/// secret itself) and the strings that must never appear in a reason or a log line.
#[derive(Clone)]
pub struct Endpoint {
    url: reqwest::Url,
    redacted: String,
    secrets: Vec<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl Endpoint {
    /// `redacted` is how the endpoint is named in reasons and logs; `secrets` are what
    /// [`redact`](Endpoint::redact) hides (the URL, its path and query, tokens).
    pub fn new(url: reqwest::Url, redacted: String, mut secrets: Vec<String>) -> Endpoint {
        secrets.sort();
        secrets.dedup();
        Endpoint {
            url,
            redacted,
            secrets,
        }
    }

    /// The URL to send to. Secret: never log it.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The name of the endpoint safe for logs and reasons.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// `text` with every secret replaced by `***`: applied to every reason and log line,
    /// whatever produced it (an upstream may echo a header or the URL back).
    pub fn redact(&self, text: &str) -> String {
        crate::redact(text, self.secrets.iter().map(String::as_str))
    }

    /// `outcome` as the router gets it: the reason, then where it went (` (<place>)`,
    /// usually [`redacted`](Endpoint::redacted), or e.g. `POST https://host/…`), with
    /// every secret redacted from the whole. A success stays as it is.
    pub fn report(&self, outcome: Outcome, place: &str) -> Outcome {
        let told = |reason: String| self.redact(&format!("{reason} ({place})"));
        match outcome {
            Outcome::Ok => Outcome::Ok,
            Outcome::Retry { after, reason } => Outcome::Retry {
                after,
                reason: told(reason),
            },
            Outcome::Fail { reason } => Outcome::Fail {
                reason: told(reason),
            },
        }
    }
}

/// What came back for one request.
#[derive(Debug)]
pub enum Answer {
    /// The service, or something in front of it, answered.
    Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    },
    /// No answer (DNS, connect, TLS, timeout). The text never holds the URL.
    Unreachable(String),
}

/// A client builder with what a sink wants: its user agent, a timeout for the whole
/// answer, a shorter one for connecting, and no redirects (following one would hand the
/// message, and any token in its headers, to another address). Add headers and build it
/// with [`Client::new`].
pub fn builder(user_agent: &str, timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(user_agent)
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .redirect(reqwest::redirect::Policy::none())
}

/// An HTTP client with its own current-thread runtime: [`send`](Client::send) blocks
/// the calling thread (a sink's worker) until the whole answer is in.
pub struct Client {
    runtime: Runtime,
    http: reqwest::Client,
}

impl Client {
    pub fn new(builder: reqwest::ClientBuilder) -> Result<Client, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the sink's runtime: {e}"))?;
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe(e)))?;
        Ok(Client { runtime, http })
    }

    /// The client, to build requests with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `request` and reads the whole answer. A body that cannot be read is
    /// empty: it changes nothing about the status.
    pub fn send(&self, request: RequestBuilder) -> Answer {
        self.runtime.block_on(async {
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = response.text().await.unwrap_or_default();
                    Answer::Reply {
                        status,
                        headers,
                        body,
                    }
                }
                Err(e) => Answer::Unreachable(describe(e)),
            }
        })
    }
}

/// `Retry-After` as seconds or an HTTP date (relative to `now`), at most
/// [`MAX_RETRY_AFTER`]; `None` when absent, unreadable or in the past.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let after = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let ahead = OffsetDateTime::parse(value, &Rfc2822).ok()? - OffsetDateTime::from(now);
        if ahead.is_negative() || ahead.is_zero() {
            return None;
        }
        Duration::try_from(ahead).ok()?
    };
    Some(after.min(MAX_RETRY_AFTER))
}

/// A body as one line of at most `max` characters (then `…`), for a reason.
pub fn excerpt(body: &str, max: usize) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.chars().count() {
        0 => "(empty body)".to_owned(),
        n if n > max => format!("{}…", line.chars().take(max).collect::<String>()),
        _ => line,
    }
}

/// A transport error as one line with its causes, without the URL (it may hold a
/// token), saying so when it timed out.
pub fn describe(error: reqwest::Error) -> String {
    let timed_out = error.is_timeout();
    let mut text = crate::error_chain(&error.without_url());
    if timed_out && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_caps_them() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            retry_after(&h, now)
        };
        assert_eq!(with("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            with("Sun, 06 Nov 1994 08:50:07 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(with("Sun, 06 Nov 1994 08:49:00 GMT"), None, "in the past");
        assert_eq!(with("999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(with("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn an_endpoint_hides_every_secret_longest_first() {
        let url = reqwest::Url::parse("https://h.example/hooks/abc/s3cr3t").unwrap();
        let e = Endpoint::new(
            url,
            "https://h.example/…".into(),
            vec!["s3cr3t".into(), "/hooks/abc/s3cr3t".into(), String::new()],
        );
        assert_eq!(
            e.redact("POST /hooks/abc/s3cr3t: 404, s3cr3t"),
            "POST ***: 404, ***"
        );
        assert_eq!(format!("{e:?}"), "https://h.example/…");
    }

    #[test]
    fn a_report_says_where_and_hides_the_secrets() {
        let url = reqwest::Url::parse("https://h.example/hooks/s3cr3t").unwrap();
        let e = Endpoint::new(url, "https://h.example/…".into(), vec!["s3cr3t".into()]);
        assert_eq!(
            e.report(
                Outcome::retry_after(Duration::from_secs(2), "echo s3cr3t"),
                e.redacted()
            ),
            Outcome::retry_after(Duration::from_secs(2), "echo *** (https://h.example/…)")
        );
        assert_eq!(
            e.report(Outcome::fail("no"), "PUT https://h.example/…"),
            Outcome::fail("no (PUT https://h.example/…)")
        );
        assert_eq!(e.report(Outcome::Ok, e.redacted()), Outcome::Ok);
    }

    #[test]
    fn excerpts_are_one_line_and_cut() {
        assert_eq!(excerpt("  a\n  b  ", 10), "a b");
        assert_eq!(excerpt("", 10), "(empty body)");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
