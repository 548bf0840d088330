//! [`ClientError`], and how an answer or a transport failure is put into words for it:
//! the router's reason, a body excerpt, never a credential.

use serde_json::Value;

/// How much of an unexpected answer's body goes into an error.
const BODY_EXCERPT: usize = 300;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The router refused the request (400 bad event, 401 token, 413 too large, or another
    /// 4xx); retrying the same request would not help.
    #[error("the router refused the request ({status}): {message}")]
    Refused {
        /// The HTTP status of the answer.
        status: u16,
        /// The router's `error`, else the start of the answer's body.
        message: String,
    },
    /// The router could not be reached or stayed unavailable (connection errors,
    /// timeouts, 503, 5xx) on every attempt.
    #[error("the router is unavailable after {attempts} attempt(s): {last}")]
    Unavailable {
        /// How many attempts were made: the first and every retry.
        attempts: u32,
        /// Why the last attempt failed.
        last: String,
    },
    /// Something retrying cannot fix: a base URL that is not a URL, an answer that is not
    /// the API's JSON.
    #[error("{0}")]
    Transport(String),
}

/// The router's `error` text, else the start of the body.
pub(crate) fn error_text(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => match v.get("error").and_then(Value::as_str) {
            Some(e) => e.to_owned(),
            None => excerpt(body),
        },
        Err(_) => excerpt(body),
    }
}

/// The start of a body, trimmed, with `…` where it was cut.
pub(crate) fn excerpt(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(BODY_EXCERPT) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}

/// What went wrong on the way, with the innermost cause.
pub(crate) fn transport_reason(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    // Without the URL: a base URL may carry credentials.
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    }
}

/// The base URL without a `user:password@` part, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_errors_are_read_and_credentials_redacted() {
        assert_eq!(
            error_text(r#"{"error": "field `symbol`: missing"}"#),
            "field `symbol`: missing"
        );
        assert_eq!(error_text("plain"), "plain");
        assert_eq!(redact("http://bot:pw@host:1/x"), "http://***@host:1/x");
        assert_eq!(redact("http://host:1"), "http://host:1");
    }

    #[test]
    fn long_bodies_are_cut_to_an_excerpt() {
        let long = "x".repeat(BODY_EXCERPT + 50);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), BODY_EXCERPT + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("  short \n"), "short");
    }
}
