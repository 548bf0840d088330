//! What an answer means for a call ([`classify`]) and how long to wait before the next
//! attempt ([`retry_after`], [`backoff`]).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The first backoff; it doubles on each retry up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured; a router asking for more is treated as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What an answer means for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Done,
    Retry,
    Refused,
}

/// The one place that decides what a status means: 2xx done, 5xx (503 included) and
/// 408/429 retried, any other answer refused.
pub(crate) fn classify(status: StatusCode) -> Verdict {
    if status.is_success() {
        Verdict::Done
    } else if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Verdict::Retry
    } else {
        Verdict::Refused
    }
}

/// `Retry-After` in seconds (the router never sends a date), capped.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).min(MAX_RETRY_AFTER))
}

/// 200 ms, 400 ms, 800 ms ... up to 5 s, with up to a quarter more as jitter so many
/// producers retrying at once spread out.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = INITIAL_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    // The random tail of a UUID v7: jitter without a dependency on a random number crate.
    let jitter = u64::from(uuid::Uuid::now_v7().as_bytes()[15]) * base.as_millis() as u64 / 1024;
    base + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_verdicts() {
        for (code, want) in [
            (200, Verdict::Done),
            (202, Verdict::Done),
            (400, Verdict::Refused),
            (401, Verdict::Refused),
            (404, Verdict::Refused),
            (413, Verdict::Refused),
            (408, Verdict::Retry),
            (429, Verdict::Retry),
            (500, Verdict::Retry),
            (502, Verdict::Retry),
            (503, Verdict::Retry),
        ] {
            let status = StatusCode::from_u16(code).expect("a status code");
            assert_eq!(classify(status), want, "{code}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= INITIAL_BACKOFF && backoff(1) < INITIAL_BACKOFF * 2);
        assert!(backoff(3) >= INITIAL_BACKOFF * 4);
        assert!(backoff(40) <= MAX_BACKOFF + MAX_BACKOFF / 4);
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().expect("a header value"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, "86400".parse().expect("a header value"));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, "soon".parse().expect("a header value"));
        assert_eq!(retry_after(&h), None);
    }
}
