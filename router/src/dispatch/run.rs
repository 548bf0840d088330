//! The worker thread's loop: one attempt at a time at the head of the sink's queue, the
//! rate limit, pauses the upstream asks for, backoff with jitter, the attempt cap and
//! dead letters.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

use super::control::{Control, Waited};
use super::{Delivering, SinkStats, wire};
use crate::config::{RateLimit, RetryPolicy};
use crate::outbox::{Feed, InFlight, Stored, Tally, now_ms};
use crate::plugins::Delivery;

/// The longest pause a plugin's `retry(after)` can impose on its sink.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// How long an idle worker waits for new messages before it looks again (for a
/// reconfiguration or a stop, which also wake it).
const IDLE_WAIT: Duration = Duration::from_millis(200);

pub(super) fn limiter(
    rate: RateLimit,
) -> RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock> {
    let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(rate.period.max(Duration::from_nanos(1)))
        .map(|q| q.allow_burst(burst))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX));
    RateLimiter::direct(quota)
}

/// Exponential backoff with jitter: between half and all of initial × 2^(attempt-1),
/// capped at the maximum.
fn backoff(retry: RetryPolicy, attempt: u32, rng: &mut u64) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    let full = retry
        .initial_backoff
        .saturating_mul(factor)
        .min(retry.max_backoff);
    // xorshift64: jitter needs spread, not cryptographic quality.
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let fraction = 0.5 + (*rng % 1000) as f64 / 2000.0;
    full.mul_f64(fraction)
}

pub(super) fn seed(name: &str) -> u64 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    name.bytes()
        .fold(t | 1, |h, b| h.rotate_left(5) ^ u64::from(b))
}

/// The worker thread's own state.
pub(super) struct Run {
    pub(super) name: String,
    pub(super) stats: Arc<SinkStats>,
    pub(super) control: Arc<Control>,
    pub(super) delivering: Delivering,
    /// Where each attempt is recorded before the plugin is called.
    pub(super) in_flight: Arc<InFlight>,
    pub(super) limiter: Option<
        RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock>,
    >,
    /// Set by an upstream's `retry(after)`: the whole sink waits until then.
    pub(super) paused_until: Option<Instant>,
    pub(super) rng: u64,
}

/// How the wait for a message's next attempt ended.
enum NextAttempt {
    Due,
    /// The drain deadline passed.
    Interrupted,
    /// A reload lowered `max_attempts` to what the message already used.
    OutOfAttempts,
}

/// How one message's delivery ended.
enum Finished {
    Delivered,
    Dead,
    /// The drain deadline passed mid-retry, or another worker wants the sink: the
    /// message stays waiting in the outbox.
    Interrupted,
}

impl Run {
    pub(super) fn run(&mut self, feed: &mut Feed) {
        loop {
            self.pick_up_changes();
            if self.control.past_deadline() || feed.wanted() {
                break;
            }
            if self.control.stop_requested() && feed.is_empty() {
                break; // drained
            }
            let Some(message) = feed.head(IDLE_WAIT) else {
                continue;
            };
            if let Finished::Interrupted = self.deliver(&message, feed) {
                break;
            }
        }
    }

    /// Takes a reconfiguration handed over by a reload, keeping the limiter's budget
    /// unless the rate itself changed.
    fn pick_up_changes(&mut self) {
        if let Some(change) = self.control.take_change() {
            if change.rate_limit != self.delivering.rate_limit {
                self.limiter = change.rate_limit.map(limiter);
            }
            self.delivering.rate_limit = change.rate_limit;
            self.delivering.retry = change.retry;
            if let Some(instance) = change.instance {
                self.delivering.instance = instance;
            }
        }
    }

    /// Delivers the feed's head with retries and marks how it ended.
    fn deliver(&mut self, message: &Stored, feed: &mut Feed) -> Finished {
        // Attempts made before a restart count: the attempt number tells the plugin
        // (and an idempotent upstream) that this is a repeat.
        let mut tally = message.tally();
        let mut last_reason = message.error.clone().unwrap_or_default();
        loop {
            self.pick_up_changes();
            let max_crashes = self.delivering.retry.max_crashes;
            if tally.crashes >= max_crashes {
                let reason = format!(
                    "gave up after {} attempts that ended in a crash (retry.max_crashes is {max_crashes}); last: {last_reason}",
                    tally.crashes
                );
                tracing::error!(sink = %self.name, message_id = %message.id, attempts = tally.attempts, %reason, "the plugin crashes on this message; it is a dead letter");
                return self.dead(feed, tally, &reason);
            }
            if let Some(until) = self.paused_until.take() {
                match self.wait_for_next_attempt(until, None, tally.failures) {
                    NextAttempt::Due => {}
                    NextAttempt::Interrupted => {
                        self.paused_until = Some(until);
                        return Finished::Interrupted;
                    }
                    NextAttempt::OutOfAttempts => {
                        if last_reason.is_empty() {
                            last_reason = "a reload lowered max_attempts".to_owned();
                        }
                        return self.give_up(message, feed, tally, &last_reason);
                    }
                }
            }
            if !self.wait_for_rate_limit() {
                return Finished::Interrupted;
            }
            tally.attempts += 1;
            let attempt = tally.attempts;
            // One span per attempt: with the event's span (pipeline/ingest.rs) it shows
            // an event's whole path under `ALERT_ROUTER_LOG=debug`.
            let span = tracing::debug_span!("delivery", sink = %self.name, message_id = %message.id, event_id = %message.event_id, attempt);
            let _in_attempt = span.enter();
            let body = wire(message, &self.name, attempt);
            let outcome = {
                let isolated = self.delivering.instance.is_isolated();
                let mut in_flight = self.in_flight.begin(message.seq, attempt, isolated);
                self.stats
                    .delivering_since_ms
                    .store(now_ms(), Ordering::Relaxed);
                let outcome = self.delivering.instance.deliver(body.as_bytes());
                self.stats.delivering_since_ms.store(0, Ordering::Relaxed);
                if outcome == Delivery::Ok {
                    in_flight.delivered();
                }
                outcome
            };
            let (after, reason) = match outcome {
                Delivery::Ok => {
                    tracing::debug!("delivered");
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    self.stats.unhealthy.store(false, Ordering::Relaxed);
                    let waited = now_ms().saturating_sub(message.created_ms).max(0);
                    self.stats
                        .record_latency(Duration::from_millis(waited as u64));
                    feed.delivered(attempt);
                    return Finished::Delivered;
                }
                Delivery::Fail { reason } => {
                    tracing::warn!(sink = %self.name, message_id = %message.id, %reason, "delivery failed for good");
                    tally.failures += 1;
                    return self.dead(feed, tally, &reason);
                }
                Delivery::Retry { after, reason } => {
                    // Waiting because the upstream said so (a 429, a plugin's own budget)
                    // is no failure of the message: only other retries use up attempts.
                    if after.is_none() {
                        tally.failures += 1;
                    }
                    (after, reason)
                }
                Delivery::Crashed { reason } => {
                    self.stats.crashed(&reason);
                    tally.failures += 1;
                    tally.crashes += 1;
                    if tally.crashes >= max_crashes {
                        let reason = format!(
                            "gave up after {} attempts that ended in a crash (retry.max_crashes is {max_crashes}); last: {reason}",
                            tally.crashes
                        );
                        tracing::error!(sink = %self.name, message_id = %message.id, attempts = attempt, %reason, "the plugin crashes on this message; it is a dead letter");
                        return self.dead(feed, tally, &reason);
                    }
                    (None, reason)
                }
            };
            self.stats.retried.fetch_add(1, Ordering::Relaxed);
            self.stats.set_error(&reason);
            if tally.failures >= self.delivering.retry.max_attempts {
                return self.give_up(message, feed, tally, &reason);
            }
            // Every attempt that did not fail was a wait, before a restart too.
            let waits = attempt.saturating_sub(tally.failures);
            let max_waits = self.delivering.retry.max_waits;
            if after.is_some() && waits > max_waits {
                let reason = format!(
                    "the upstream asked to wait {waits} times, more than retry.max_waits ({max_waits}); last: {reason}"
                );
                tracing::warn!(sink = %self.name, message_id = %message.id, attempts = attempt, %reason, "too many waits; the message is a dead letter");
                return self.dead(feed, tally, &reason);
            }
            feed.attempted(tally, &reason);
            let failures = tally.failures;
            let max = self.delivering.retry.max_attempts;
            match after {
                Some(after) => {
                    // A plugin may ask for anything; an hour is the most we honour.
                    let after = after.min(MAX_PAUSE);
                    tracing::info!(sink = %self.name, message_id = %message.id, %reason, "the upstream asked to wait: the sink pauses and retries in {} (wait {waits} of at most {max_waits}; {failures} of {max} attempts failed)", Seconds(after));
                    self.paused_until = Some(Instant::now() + after);
                    last_reason = reason;
                }
                None => {
                    let began = Instant::now();
                    let wait = backoff(self.delivering.retry, failures, &mut self.rng);
                    tracing::info!(sink = %self.name, message_id = %message.id, %reason, "attempt {failures} of {max} failed; retrying in {}", Seconds(wait));
                    match self.wait_for_next_attempt(began + wait, Some(began), failures) {
                        NextAttempt::Due => {}
                        NextAttempt::Interrupted => return Finished::Interrupted,
                        NextAttempt::OutOfAttempts => {
                            return self.give_up(message, feed, tally, &reason);
                        }
                    }
                    last_reason = reason;
                }
            }
        }
    }

    /// Waits for the next attempt at a message that has `failures` failures, until
    /// `until` (the end of its backoff, which began at `backoff_began`, or of a pause the
    /// upstream asked for when that is `None`). A reload's change is taken at once: a
    /// new retry policy reschedules the backoff from when it began, and one whose
    /// `max_attempts` the failures already reach ends the wait: the message is out of
    /// attempts.
    fn wait_for_next_attempt(
        &mut self,
        mut until: Instant,
        backoff_began: Option<Instant>,
        failures: u32,
    ) -> NextAttempt {
        loop {
            match self.control.wait(until) {
                Waited::Elapsed => return NextAttempt::Due,
                Waited::Stopped => return NextAttempt::Interrupted,
                Waited::Changed => {
                    let before = self.delivering.retry;
                    self.pick_up_changes();
                    let retry = self.delivering.retry;
                    if failures > 0 && failures >= retry.max_attempts {
                        return NextAttempt::OutOfAttempts;
                    }
                    if let Some(began) = backoff_began
                        && retry != before
                    {
                        until = began + backoff(retry, failures, &mut self.rng);
                    }
                }
            }
        }
    }

    /// Makes the message a dead letter: it failed `failures` times, reaching the retry
    /// policy's `max_attempts`.
    fn give_up(
        &mut self,
        message: &Stored,
        feed: &mut Feed,
        tally: Tally,
        reason: &str,
    ) -> Finished {
        let max_attempts = self.delivering.retry.max_attempts;
        let failures = tally.failures;
        tracing::warn!(sink = %self.name, message_id = %message.id, attempts = tally.attempts, failures, max_attempts, %reason, "out of attempts; the message is a dead letter");
        let error = format!("gave up after {failures} failed attempts: {reason}");
        self.dead(feed, tally, &error)
    }

    /// Makes the message a dead letter with `error` as its last error.
    fn dead(&mut self, feed: &mut Feed, tally: Tally, error: &str) -> Finished {
        feed.dead(tally, error.to_owned());
        self.stats.dead_letter(error);
        Finished::Dead
    }

    /// Blocks until the limiter allows one more delivery; a reload that changes the rate
    /// applies at once. False when cut short by the drain deadline.
    fn wait_for_rate_limit(&mut self) -> bool {
        let mut waited = false;
        loop {
            let Some(limiter) = &self.limiter else {
                return true;
            };
            match limiter.check() {
                Ok(()) => {
                    if waited {
                        self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    }
                    return true;
                }
                Err(not_until) => {
                    waited = true;
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    match self.control.wait(Instant::now() + wait) {
                        Waited::Elapsed => {}
                        Waited::Stopped => return false,
                        Waited::Changed => self.pick_up_changes(),
                    }
                }
            }
        }
    }
}

/// A delay as a log line shows it: `1.5s`, `0.25s`, `3600s`.
struct Seconds(Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.as_secs_f64();
        if secs >= 10.0 {
            write!(f, "{secs:.0}s")
        } else {
            write!(f, "{}s", (secs * 1000.0).round() / 1000.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_read_as_seconds() {
        let shown = |ms| Seconds(Duration::from_millis(ms)).to_string();
        assert_eq!(shown(250), "0.25s");
        assert_eq!(shown(1500), "1.5s");
        assert_eq!(shown(7_200_000), "7200s");
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let retry = RetryPolicy {
            max_attempts: 10,
            max_waits: 100,
            max_crashes: 2,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
        };
        let mut rng = seed("x");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let third = backoff(retry, 3, &mut rng);
            assert!(
                third >= Duration::from_secs(2) && third <= Duration::from_secs(4),
                "{third:?}"
            );
            seen.insert(third);
            let capped = backoff(retry, 30, &mut rng);
            assert!(
                capped >= Duration::from_secs(5) && capped <= Duration::from_secs(10),
                "{capped:?}"
            );
        }
        assert!(seen.len() > 10, "jitter spreads retries: {seen:?}");
    }
}
