//! When the sink may send next. Three things can say "not yet": Discord's bucket
//! headers (`X-RateLimit-Remaining: 0` means the bucket refills after
//! `X-RateLimit-Reset-After`), a pause a 429 asked for (for this webhook, or for every
//! webhook on that Discord host when it was `global`), and the default budget of
//! [`WINDOWS`], so the sink slows down before Discord has to say no.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

/// A budget: at most `requests` in any `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) requests: usize,
    pub(crate) period: Duration,
}

/// The default budget of one webhook: 5 requests per 2 s and 30 per minute, the limits
/// Discord staff gave for webhooks (they are not documented as numbers).
/// <https://github.com/discord/discord-api-docs/issues/367>
pub(crate) const WINDOWS: [Window; 2] = [
    Window {
        requests: 5,
        period: Duration::from_secs(2),
    },
    Window {
        requests: 30,
        period: Duration::from_secs(60),
    },
];

/// The longest pause any header or 429 can impose; a longer one is taken as this.
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(24 * 60 * 60);

/// Pauses from a `global` 429, per Discord host (scheme, host and port), shared by all
/// sinks in this process: a global limit applies to every webhook on that host.
static GLOBAL_PAUSES: LazyLock<Mutex<HashMap<String, Instant>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Why the next request has to wait, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wait {
    pub(crate) after: Duration,
    pub(crate) why: String,
}

/// The rate-limit state of one webhook.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    host: String,
    windows: Vec<Window>,
    /// When the most recent requests were sent, oldest first; only as many as the
    /// largest window counts.
    sent: VecDeque<Instant>,
    /// Discord said the bucket is empty (or asked for a pause) until then.
    empty_until: Option<Instant>,
}

impl RateLimiter {
    /// A limiter for one webhook on `host` (see [`crate::config::Config::host`]).
    pub(crate) fn new(host: &str, windows: &[Window]) -> RateLimiter {
        RateLimiter {
            host: host.to_owned(),
            windows: windows.to_vec(),
            sent: VecDeque::new(),
            empty_until: None,
        }
    }

    /// How long to wait before the next request may go out, or `None` for now.
    pub(crate) fn wait(&self, now: Instant) -> Option<Wait> {
        let mut longest: Option<Wait> = None;
        let mut consider = |until: Instant, why: String| {
            let after = until.saturating_duration_since(now);
            if !after.is_zero() && longest.as_ref().is_none_or(|w| after > w.after) {
                longest = Some(Wait { after, why });
            }
        };
        let global = GLOBAL_PAUSES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&self.host)
            .copied();
        if let Some(until) = global {
            consider(until, "Discord's global rate limit is in force".to_owned());
        }
        if let Some(until) = self.empty_until {
            consider(
                until,
                "the webhook's rate-limit bucket at Discord is empty".to_owned(),
            );
        }
        for window in &self.windows {
            // The request that would be the (requests+1)th within `period`.
            if let Some(first) = self
                .sent
                .len()
                .checked_sub(window.requests)
                .and_then(|i| self.sent.get(i))
                && let Some(until) = first.checked_add(window.period)
            {
                consider(
                    until,
                    format!(
                        "the webhook's budget of {} requests per {} s is used up",
                        window.requests,
                        window.period.as_secs()
                    ),
                );
            }
        }
        longest
    }

    /// Notes a request going out at `now`.
    pub(crate) fn record_send(&mut self, now: Instant) {
        self.sent.push_back(now);
        let keep = self.windows.iter().map(|w| w.requests).max().unwrap_or(0);
        while self.sent.len() > keep {
            self.sent.pop_front();
        }
    }

    /// Reads Discord's `X-RateLimit-*` headers from an answer received at `now`.
    pub(crate) fn observe(&mut self, headers: &HeaderMap, now: Instant) {
        let Some(remaining) = header_f64(headers, "x-ratelimit-remaining") else {
            return;
        };
        if remaining >= 1.0 {
            self.empty_until = None;
            return;
        }
        let reset_after = header_f64(headers, "x-ratelimit-reset-after")
            .and_then(seconds)
            .or_else(|| {
                // `X-RateLimit-Reset` is an epoch time in seconds.
                let reset = header_f64(headers, "x-ratelimit-reset")?;
                let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
                seconds(reset - now.as_secs_f64())
            });
        if let Some(after) = reset_after {
            self.pause(after, false, now);
        }
    }

    /// Sends nothing for `after` from `now`: to this webhook, or, when `global`, to any
    /// webhook on the same Discord host.
    pub(crate) fn pause(&mut self, after: Duration, global: bool, now: Instant) {
        let Some(until) = now.checked_add(after.min(MAX_PAUSE)) else {
            return;
        };
        if global {
            let mut pauses = GLOBAL_PAUSES.lock().unwrap_or_else(|e| e.into_inner());
            let entry = pauses.entry(self.host.clone()).or_insert(until);
            *entry = (*entry).max(until);
        } else {
            self.empty_until = Some(self.empty_until.map_or(until, |u| u.max(until)));
        }
    }
}

/// A header's value as a number, if it is one.
pub(crate) fn header_f64(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A number of seconds as a [`Duration`], if it is a sane one (finite, not negative),
/// at most [`MAX_PAUSE`].
pub(crate) fn seconds(secs: f64) -> Option<Duration> {
    if secs.is_finite() && secs > MAX_PAUSE.as_secs_f64() {
        return Some(MAX_PAUSE);
    }
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_default_budget_allows_5_per_2_s_and_30_per_minute() {
        let mut limiter = RateLimiter::new("http://budget.test", &WINDOWS);
        let start = Instant::now();
        let mut at = start;
        let mut sent = 0;
        // Send whenever allowed, trying every 100 ms for a simulated minute.
        while at <= start + Duration::from_secs(60) {
            if limiter.wait(at).is_none() {
                limiter.record_send(at);
                sent += 1;
            }
            at += Duration::from_millis(100);
        }
        assert_eq!(
            sent, 31,
            "30 in the first minute, the 31st when the first expires"
        );

        let mut limiter = RateLimiter::new("http://budget.test", &WINDOWS);
        for i in 0..5 {
            limiter.record_send(start + Duration::from_millis(i * 10));
        }
        let wait = limiter.wait(start + Duration::from_millis(500)).unwrap();
        assert_eq!(wait.after, Duration::from_millis(1500));
        assert!(wait.why.contains("5 requests per 2 s"), "{}", wait.why);
        assert_eq!(limiter.wait(start + Duration::from_secs(2)), None);
    }

    #[test]
    fn remaining_zero_empties_the_bucket_until_reset_after() {
        let mut limiter = RateLimiter::new("http://bucket.test", &[]);
        let now = Instant::now();
        limiter.observe(
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset-after", "1.25"),
            ]),
            now,
        );
        let wait = limiter.wait(now + Duration::from_millis(250)).unwrap();
        assert_eq!(wait.after, Duration::from_secs(1));
        assert!(wait.why.contains("bucket"), "{}", wait.why);
        assert_eq!(limiter.wait(now + Duration::from_millis(1250)), None);

        // A later answer with budget left means the bucket was refilled.
        limiter.observe(&headers(&[("x-ratelimit-remaining", "4")]), now);
        assert_eq!(limiter.wait(now), None);
    }

    #[test]
    fn reset_epoch_is_used_without_reset_after() {
        let mut limiter = RateLimiter::new("http://epoch.test", &[]);
        let now = Instant::now();
        let in_3_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            + 3.0;
        limiter.observe(
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &format!("{in_3_s:.3}")),
            ]),
            now,
        );
        let wait = limiter.wait(now).unwrap().after;
        // The header has millisecond precision: allow for its rounding.
        assert!(
            wait > Duration::from_millis(2500) && wait <= Duration::from_millis(3001),
            "{wait:?}"
        );
    }

    #[test]
    fn garbage_headers_change_nothing() {
        let mut limiter = RateLimiter::new("http://garbage.test", &[]);
        let now = Instant::now();
        for value in ["-5", "NaN", "inf", "soon"] {
            limiter.observe(
                &headers(&[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset-after", value),
                ]),
                now,
            );
        }
        limiter.observe(&headers(&[("x-ratelimit-reset-after", "9")]), now);
        assert_eq!(limiter.wait(now), None);
        assert_eq!(seconds(1e30), Some(MAX_PAUSE));
    }

    #[test]
    fn a_global_pause_holds_every_limiter_on_that_host_only() {
        let now = Instant::now();
        let mut one = RateLimiter::new("http://global.test:1", &[]);
        let two = RateLimiter::new("http://global.test:1", &[]);
        let other = RateLimiter::new("http://global.test:2", &[]);
        one.pause(Duration::from_secs(2), true, now);
        assert_eq!(two.wait(now).unwrap().after, Duration::from_secs(2));
        assert!(two.wait(now).unwrap().why.contains("global"));
        assert_eq!(other.wait(now), None);
        assert_eq!(one.wait(now + Duration::from_secs(2)), None);
    }

    #[test]
    fn the_longest_wait_wins() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new("http://longest.test", &WINDOWS);
        for _ in 0..5 {
            limiter.record_send(now);
        }
        limiter.pause(Duration::from_secs(7), false, now);
        assert_eq!(limiter.wait(now).unwrap().after, Duration::from_secs(7));
    }
}
