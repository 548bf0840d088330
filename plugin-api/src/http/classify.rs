//! What an HTTP answer means for a delivery: [`classify`] turns an [`Answer`] into an
//! [`Outcome`] by HTTP's rules, and an [`Upstream`] adds what one service says in its
//! own words (Slack's plain-text error codes, Discord's JSON `retry_after` and error
//! codes). The same split as Vector's `RetryLogic` and Alertmanager's `Retrier`: the
//! plugin says what an answer means, the router decides when to try again.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::{Answer, excerpt, retry_after};
use crate::Outcome;

/// How much of an unexpected body goes into a reason unless [`Upstream::explain`] says
/// otherwise.
pub const BODY_EXCERPT: usize = 200;

/// One service's own words, for [`classify`]. Only [`name`](Upstream::name) and
/// [`url_setting`](Upstream::url_setting) must be given; every other hook has a default
/// that fits a plain HTTP endpoint, and is asked only for the answers it names.
///
/// ```
/// use alert_router_plugin::http::Upstream;
/// use reqwest::StatusCode;
///
/// struct Pager;
///
/// impl Upstream for Pager {
///     fn name(&self) -> &str {
///         "the pager"
///     }
///     fn url_setting(&self) -> &str {
///         "settings.url"
///     }
///     fn advice(&self, status: StatusCode, _body: &str) -> Option<String> {
///         (status == StatusCode::UNAUTHORIZED).then(|| "check settings.api_key".to_owned())
///     }
/// }
/// ```
pub trait Upstream {
    /// How reasons name the service: `"Discord"`, `"Slack"`, `"the webhook"`.
    fn name(&self) -> &str;

    /// The setting that holds the URL (`"settings.webhook_url"`), named in the advice
    /// for a redirect, which is never followed.
    fn url_setting(&self) -> &str;

    /// What a body says, as one line for a reason. Default: its first
    /// [`BODY_EXCERPT`] characters.
    fn explain(&self, body: &str) -> String {
        excerpt(body, BODY_EXCERPT)
    }

    /// The pause a 429 or a 503 asks for; `None` leaves the backoff to the router.
    /// Default: `Retry-After`, in seconds or as an HTTP date (see [`retry_after`]).
    fn retry_after(&self, headers: &HeaderMap, body: &str, now: SystemTime) -> Option<Duration> {
        let _ = body;
        retry_after(headers, now)
    }

    /// How far a 429 reaches beyond this sink, said in the reason (Discord's
    /// `"globally"`). Default: nothing to say.
    fn rate_limit_scope(&self, headers: &HeaderMap, body: &str) -> Option<&'static str> {
        let _ = (headers, body);
        None
    }

    /// What the operator can do about an answer that fails the message (a 4xx but 408
    /// and 429, a 1xx), appended to the reason. Not asked for a redirect: that one is
    /// never followed, and the advice says to set [`url_setting`](Upstream::url_setting)
    /// to the final address. Default: nothing to add.
    fn advice(&self, status: StatusCode, body: &str) -> Option<String> {
        let _ = (status, body);
        None
    }
}

/// What an answer means. The only place that decides, for every HTTP plugin:
/// - 2xx: delivered;
/// - 429 and 503: retry after the pause [`Upstream::retry_after`] finds, else with the
///   router's backoff;
/// - 408 and every other 5xx: retry with the router's backoff (408 is a 4xx, but it
///   says the request took too long, as a timeout on our side would);
/// - no answer at all (DNS, connection, TLS, timeout): retry;
/// - anything else (other 4xx, 1xx, 3xx): fail, with what the body says and the
///   service's [`advice`](Upstream::advice).
///
/// The reason names the service but not the endpoint: the plugin adds that with
/// [`Endpoint::report`](super::Endpoint::report), which also redacts its secrets.
pub fn classify(answer: &Answer, upstream: &impl Upstream, now: SystemTime) -> Outcome {
    let name = upstream.name();
    let (status, headers, body) = match answer {
        Answer::Unreachable(why) => return Outcome::retry(format!("no answer from {name}: {why}")),
        Answer::Reply {
            status,
            headers,
            body,
        } => (*status, headers, body.as_str()),
    };
    if status.is_success() {
        return Outcome::Ok;
    }
    let said = upstream.explain(body);
    let pause = || {
        let after = upstream.retry_after(headers, body, now);
        let when = after.map_or_else(
            || "no Retry-After given".to_owned(),
            |a| format!("retry after {} s", seconds(a)),
        );
        (after, when)
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        let scope = upstream
            .rate_limit_scope(headers, body)
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        let (after, when) = pause();
        return Outcome::Retry {
            after,
            reason: format!("rate limited by {name}{scope} (429: {said}); {when}"),
        };
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let (after, when) = pause();
        return Outcome::Retry {
            after,
            reason: format!("{name} answered {status}: {said}; {when}"),
        };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return Outcome::retry(format!("{name} answered {status}: {said}"));
    }
    let advice = if status.is_redirection() {
        Some(format!(
            "redirects are not followed: set {} to the final address",
            upstream.url_setting()
        ))
    } else {
        upstream.advice(status, body)
    };
    let advice = advice.map(|a| format!("; {a}")).unwrap_or_default();
    Outcome::fail(format!("{name} answered {status}: {said}{advice}"))
}

/// Seconds as a reason says them: whole ones plain (`30`), others to the hundredth
/// (`1.50`), as Discord gives them.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.2}", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use reqwest::header::HeaderValue;

    use super::*;
    use crate::http::MAX_RETRY_AFTER;

    /// A plain endpoint: every hook left at its default.
    struct Plain;

    impl Upstream for Plain {
        fn name(&self) -> &str {
            "the endpoint"
        }
        fn url_setting(&self) -> &str {
            "settings.url"
        }
    }

    /// Every hook given, to show each is asked.
    struct Chatty;

    impl Upstream for Chatty {
        fn name(&self) -> &str {
            "Chatty"
        }
        fn url_setting(&self) -> &str {
            "settings.hook"
        }
        fn explain(&self, body: &str) -> String {
            format!("<{body}>")
        }
        fn retry_after(&self, _: &HeaderMap, body: &str, _: SystemTime) -> Option<Duration> {
            body.parse().ok().map(Duration::from_secs_f64)
        }
        fn rate_limit_scope(&self, headers: &HeaderMap, _: &str) -> Option<&'static str> {
            headers.contains_key("x-global").then_some("globally")
        }
        fn advice(&self, status: StatusCode, body: &str) -> Option<String> {
            (status == StatusCode::NOT_FOUND).then(|| format!("{body} is gone"))
        }
    }

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

    /// Sun, 06 Nov 1994 08:49:37 GMT.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[derive(Debug)]
    enum Expect {
        Ok,
        Retry(Option<Duration>),
        Fail,
    }

    fn check(upstream: &impl Upstream, cases: Vec<(Answer, Expect, &str)>) {
        for (answer, expect, text) in cases {
            let outcome = classify(&answer, upstream, now());
            match (&outcome, &expect) {
                (Outcome::Ok, Expect::Ok) => {}
                (Outcome::Retry { after, reason }, Expect::Retry(want)) => {
                    assert_eq!(after, want, "{answer:?}");
                    assert!(reason.contains(text), "{answer:?}: {reason}");
                }
                (Outcome::Fail { reason }, Expect::Fail) => {
                    assert!(reason.contains(text), "{answer:?}: {reason}")
                }
                (other, _) => panic!("{answer:?} gave {other:?}, expected {expect:?}"),
            }
        }
    }

    /// Every status class through the one mapping, with the defaults.
    #[test]
    fn every_status_class_maps_to_one_outcome() {
        let secs = |s: u64| Some(Duration::from_secs(s));
        let long = "x".repeat(500);
        let cut = format!(
            "the endpoint answered 413 Payload Too Large: {}…",
            "x".repeat(200)
        );
        check(
            &Plain,
            vec![
                (reply(200, &[], "ok"), Expect::Ok, ""),
                (reply(201, &[], ""), Expect::Ok, ""),
                (reply(204, &[], ""), Expect::Ok, ""),
                (
                    reply(101, &[], ""),
                    Expect::Fail,
                    "the endpoint answered 101 Switching Protocols: (empty body)",
                ),
                (
                    reply(301, &[("location", "https://elsewhere/")], ""),
                    Expect::Fail,
                    "301 Moved Permanently: (empty body); redirects are not followed: set settings.url to the final address",
                ),
                (
                    reply(400, &[], "{\"error\":\n  \"bad field\"}"),
                    Expect::Fail,
                    "the endpoint answered 400 Bad Request: {\"error\": \"bad field\"}",
                ),
                (reply(404, &[], "nope"), Expect::Fail, "404 Not Found: nope"),
                (
                    reply(408, &[("retry-after", "9")], ""),
                    Expect::Retry(None),
                    "the endpoint answered 408 Request Timeout: (empty body)",
                ),
                (reply(413, &[], &long), Expect::Fail, &cut),
                (
                    reply(429, &[("retry-after", "7")], "slow down"),
                    Expect::Retry(secs(7)),
                    "rate limited by the endpoint (429: slow down); retry after 7 s",
                ),
                (
                    reply(429, &[("retry-after", "Sun, 06 Nov 1994 08:49:47 GMT")], ""),
                    Expect::Retry(secs(10)),
                    "retry after 10 s",
                ),
                (
                    reply(429, &[], ""),
                    Expect::Retry(None),
                    "(429: (empty body)); no Retry-After given",
                ),
                (
                    reply(500, &[], "boom"),
                    Expect::Retry(None),
                    "the endpoint answered 500 Internal Server Error: boom",
                ),
                (
                    reply(502, &[("retry-after", "9")], ""),
                    Expect::Retry(None),
                    "502 Bad Gateway",
                ),
                (
                    reply(503, &[("retry-after", "3")], "down"),
                    Expect::Retry(secs(3)),
                    "the endpoint answered 503 Service Unavailable: down; retry after 3 s",
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
                (reply(520, &[], ""), Expect::Retry(None), "520"),
                (
                    Answer::Unreachable("error sending request: operation timed out".into()),
                    Expect::Retry(None),
                    "no answer from the endpoint: error sending request: operation timed out",
                ),
            ],
        );
    }

    /// Each hook is asked where its answer belongs, and only there.
    #[test]
    fn a_services_hooks_speak_for_it() {
        let after = |s: f64| Some(Duration::from_secs_f64(s));
        check(
            &Chatty,
            vec![
                (
                    reply(429, &[("x-global", "1"), ("retry-after", "9")], "1.5"),
                    Expect::Retry(after(1.5)),
                    "rate limited by Chatty globally (429: <1.5>); retry after 1.50 s",
                ),
                (
                    reply(429, &[], "0.25"),
                    Expect::Retry(after(0.25)),
                    "rate limited by Chatty (429: <0.25>); retry after 0.25 s",
                ),
                (
                    reply(503, &[("x-global", "1")], "2"),
                    Expect::Retry(after(2.0)),
                    "Chatty answered 503 Service Unavailable: <2>; retry after 2 s",
                ),
                (
                    reply(500, &[], "4"),
                    Expect::Retry(None),
                    "Chatty answered 500 Internal Server Error: <4>",
                ),
                (
                    reply(404, &[], "hook"),
                    Expect::Fail,
                    "Chatty answered 404 Not Found: <hook>; hook is gone",
                ),
                (reply(200, &[], "not ok"), Expect::Ok, ""),
            ],
        );
        // A redirect's advice is always the same, in the service's words.
        let outcome = classify(&reply(302, &[], ""), &Chatty, now());
        assert_eq!(
            outcome,
            Outcome::fail(
                "Chatty answered 302 Found: <>; redirects are not followed: set settings.hook to the final address"
            )
        );
    }
}
