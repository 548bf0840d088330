//! Delivery: one worker thread per sink takes the sink's messages from the outbox in FIFO
//! order and hands them to the plugin, one attempt at a time. Owns the sink's rate limit
//! (never exceeded), pauses asked for by the upstream (`retry(after)`), exponential
//! backoff with jitter, the attempt cap, dead letters, and the sink's counters.
//! Plugins only make attempts; every wait happens here.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

use crate::config::{RateLimit, RetryPolicy};
use crate::outbox::{Feed, Outbox, Signal, Stored, now_ms};
use crate::plugins::{Delivery, Health, HealthListener, Instance};

/// The longest pause a plugin's `retry(after)` can impose on its sink.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// How long an idle worker waits for new messages before it looks again (for a
/// reconfiguration or a stop, which also wake it).
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// What the plugin's `deliver` gets: `{"id", "sink", "attempt", "payload", "event"}`.
/// Written directly, since payload and event are JSON already.
pub(crate) fn wire(message: &Stored, sink: &str, attempt: u32) -> String {
    let mut body = String::with_capacity(
        message.payload.len() + message.event.len() + message.id.len() + sink.len() + 64,
    );
    body.push_str("{\"id\":");
    push_json_string(&mut body, &message.id);
    body.push_str(",\"sink\":");
    push_json_string(&mut body, sink);
    body.push_str(",\"attempt\":");
    body.push_str(&attempt.to_string());
    body.push_str(",\"payload\":");
    body.push_str(&message.payload);
    body.push_str(",\"event\":");
    body.push_str(&message.event);
    body.push('}');
    body
}

fn push_json_string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// Upper bounds (seconds) of the delivery latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A sink's counters, read by `/v1/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Messages queued for the sink (rendered and routed to it).
    pub routed: AtomicU64,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub rate_limited: AtomicU64,
    pub render_errors: AtomicU64,
    pub unhealthy: AtomicBool,
    pub last_error: Mutex<Option<String>>,
    /// Cumulative counts per [`LATENCY_BUCKETS`] entry (plus +Inf), and the sum in µs.
    pub latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    pub latency_sum_us: AtomicU64,
}

impl SinkStats {
    fn record_latency(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_buckets[LATENCY_BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn set_error(&self, e: &str) {
        self.unhealthy.store(true, Ordering::Relaxed);
        *lock(&self.last_error) = Some(e.to_owned());
    }

    /// Counts a message that will never be delivered (the outbox keeps the letter).
    pub fn dead_letter(&self, error: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.set_error(error);
    }

    /// What the plugin said about the sink's health between deliveries. Like a delivery's
    /// outcome, it stands until the next one: healthy keeps the last error for the
    /// record, unhealthy makes its reason the last error.
    pub fn report_health(&self, health: Health) {
        match health {
            Health::Healthy => self.unhealthy.store(false, Ordering::Relaxed),
            Health::Unhealthy(reason) => self.set_error(&reason),
        }
    }
}

/// Shows what an instance of sink `name` reports about its health in `stats`.
fn health_listener(name: &str, stats: &Arc<SinkStats>) -> HealthListener {
    let (name, stats) = (name.to_owned(), stats.clone());
    Arc::new(move |health| {
        tracing::debug!(sink = %name, ?health, "the plugin reported the sink's health");
        stats.report_health(health);
    })
}

/// Poisoning only means another thread panicked while holding the lock; the data (queues,
/// counters) is still consistent enough to keep delivering.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a worker is told while it runs: to stop (after draining its queue until a
/// deadline), or to take a reload's changes. Either one wakes it from any wait (a
/// backoff, a pause, the rate limit), so a change applies at once, not after the wait.
#[derive(Default)]
struct Control {
    orders: Mutex<Orders>,
    wake: Condvar,
}

#[derive(Default)]
struct Orders {
    /// Stop taking from the queue once it is empty, and at this instant in any case.
    drain_until: Option<Instant>,
    /// A reload's change, not yet taken by the worker.
    change: Option<Change>,
}

/// How a worker's wait ended.
#[derive(Debug, PartialEq, Eq)]
enum Waited {
    /// The time came.
    Elapsed,
    /// The drain deadline passed: stop now.
    Stopped,
    /// A reload handed over a change: take it, then decide whether to wait on.
    Changed,
}

impl Control {
    fn orders(&self) -> MutexGuard<'_, Orders> {
        lock(&self.orders)
    }

    /// Stop taking from the queue once it is empty, and at `deadline` in any case.
    fn drain_until(&self, deadline: Instant) {
        self.orders().drain_until = Some(deadline);
        self.wake.notify_all();
    }

    /// Hands over a reload's change. One the worker has not taken yet is replaced, but
    /// its new plugin instance is kept when this change brings none: two quick reloads
    /// must not lose the first one's settings.
    fn change(&self, change: Change) {
        let mut orders = self.orders();
        let instance = change
            .instance
            .or_else(|| orders.change.take().and_then(|pending| pending.instance));
        orders.change = Some(Change { instance, ..change });
        drop(orders);
        self.wake.notify_all();
    }

    /// The change a reload handed over, if any.
    fn take_change(&self) -> Option<Change> {
        self.orders().change.take()
    }

    fn stop_requested(&self) -> bool {
        self.orders().drain_until.is_some()
    }

    fn past_deadline(&self) -> bool {
        self.orders()
            .drain_until
            .is_some_and(|d| Instant::now() >= d)
    }

    /// Waits until `until`, the drain deadline or a change, whichever comes first.
    fn wait(&self, until: Instant) -> Waited {
        let mut orders = self.orders();
        loop {
            let now = Instant::now();
            if orders.drain_until.is_some_and(|deadline| now >= deadline) {
                return Waited::Stopped;
            }
            if orders.change.is_some() {
                return Waited::Changed;
            }
            if now >= until {
                return Waited::Elapsed;
            }
            let wait = match orders.drain_until {
                Some(deadline) => until.min(deadline) - now,
                None => until - now,
            };
            orders = self
                .wake
                .wait_timeout(orders, wait)
                .map(|(o, _)| o)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

/// What a worker needs to deliver.
pub struct Delivering {
    pub instance: Instance,
    pub rate_limit: Option<RateLimit>,
    pub retry: RetryPolicy,
}

/// A reload's change to a running sink, taken by the worker before its next attempt or
/// in the middle of a wait.
struct Change {
    /// A new plugin instance (settings or plugin changed); `None` keeps the current one.
    instance: Option<Instance>,
    rate_limit: Option<RateLimit>,
    retry: RetryPolicy,
}

/// A running sink: its counters and worker thread. Its queue is in the outbox.
pub struct Worker {
    pub name: String,
    pub stats: Arc<SinkStats>,
    control: Arc<Control>,
    wake: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Worker {
    /// Starts the worker thread for sink `name`, delivering what the outbox holds for
    /// it. If a worker of a removed sink of that name still drains, this one waits for
    /// it to let go of the sink's messages first.
    pub fn start(
        name: &str,
        delivering: Delivering,
        outbox: &Arc<Outbox>,
    ) -> std::io::Result<Worker> {
        let stats = Arc::new(SinkStats::default());
        delivering
            .instance
            .send_health_to(health_listener(name, &stats));
        let control = Arc::new(Control::default());
        let wake = outbox.signal(name);
        let mut run = Run {
            name: name.to_owned(),
            stats: stats.clone(),
            control: control.clone(),
            limiter: delivering.rate_limit.map(limiter),
            delivering,
            paused_until: None,
            rng: seed(name),
        };
        let outbox = outbox.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || {
                let control = run.control.clone();
                // A worker of a re-added sink of the same name stops this one now: it
                // takes over the messages, so this one need not wait out a pause.
                let hurry = {
                    let control = control.clone();
                    Arc::new(move || control.drain_until(Instant::now()))
                };
                match outbox.feed(&run.name, &|| control.stop_requested(), hurry) {
                    Ok(Some(mut feed)) => run.run(&mut feed),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(sink = %run.name, error = %e, "cannot read the outbox; this sink delivers nothing until the router restarts");
                        run.stats.set_error(&e.to_string());
                    }
                }
            })?;
        Ok(Worker {
            name: name.to_owned(),
            stats,
            control,
            wake,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Hands the worker a reload's changes: a new plugin instance (when the settings or
    /// the plugin changed) and the rate limit and retry policy. The worker takes them at
    /// once, even in the middle of a backoff: a message waiting to be retried is retried
    /// on the new policy's schedule, or becomes a dead letter at once if its failures
    /// already reach the new `max_attempts`. The queue, the counters and, when the rate
    /// is unchanged, the rate limiter's budget stay. The replaced instance is destroyed
    /// on the worker's thread, after its last delivery returned. What the new instance
    /// reports about its health shows at once.
    pub fn reconfigure(
        &self,
        instance: Option<Instance>,
        rate_limit: Option<RateLimit>,
        retry: RetryPolicy,
    ) {
        if let Some(instance) = &instance {
            instance.send_health_to(health_listener(&self.name, &self.stats));
        }
        self.control.change(Change {
            instance,
            rate_limit,
            retry,
        });
        self.wake.raise();
    }

    /// Tells the worker to deliver what waits until `deadline`, then stop; returns at once.
    pub fn stop_at(&self, deadline: Instant) {
        self.control.drain_until(deadline);
        self.wake.raise();
    }

    /// Delivers what waits until `deadline`, then stops the worker and destroys the
    /// plugin instance. What is left stays in the outbox for the next start.
    pub fn shutdown(&self, deadline: Instant) {
        self.stop_at(deadline);
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

fn limiter(
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

fn seed(name: &str) -> u64 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    name.bytes()
        .fold(t | 1, |h, b| h.rotate_left(5) ^ u64::from(b))
}

/// The worker thread's own state.
struct Run {
    name: String,
    stats: Arc<SinkStats>,
    control: Arc<Control>,
    delivering: Delivering,
    limiter: Option<
        RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock>,
    >,
    /// Set by an upstream's `retry(after)`: the whole sink waits until then.
    paused_until: Option<Instant>,
    rng: u64,
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
    fn run(&mut self, feed: &mut Feed) {
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
        let mut attempt = message.attempts;
        let mut failures = message.failures;
        let mut last_reason = String::new();
        loop {
            self.pick_up_changes();
            if let Some(until) = self.paused_until.take() {
                match self.wait_for_next_attempt(until, None, failures) {
                    NextAttempt::Due => {}
                    NextAttempt::Interrupted => {
                        self.paused_until = Some(until);
                        return Finished::Interrupted;
                    }
                    NextAttempt::OutOfAttempts => {
                        if last_reason.is_empty() {
                            last_reason = "a reload lowered max_attempts".to_owned();
                        }
                        return self.give_up(message, feed, attempt, failures, &last_reason);
                    }
                }
            }
            if !self.wait_for_rate_limit() {
                return Finished::Interrupted;
            }
            attempt += 1;
            // One span per attempt: with the event's span (pipeline/ingest.rs) it shows
            // an event's whole path under `ALERT_ROUTER_LOG=debug`.
            let span = tracing::debug_span!("delivery", sink = %self.name, message_id = %message.id, event_id = %message.event_id, attempt);
            let _in_attempt = span.enter();
            let body = wire(message, &self.name, attempt);
            match self.delivering.instance.deliver(body.as_bytes()) {
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
                    feed.dead(attempt, failures + 1, reason.clone());
                    self.stats.dead_letter(&reason);
                    return Finished::Dead;
                }
                Delivery::Retry { after, reason } => {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    self.stats.set_error(&reason);
                    // Waiting because the upstream said so (a 429, a plugin's own budget)
                    // is no failure of the message: only other retries use up attempts.
                    if after.is_none() {
                        failures += 1;
                    }
                    if failures >= self.delivering.retry.max_attempts {
                        return self.give_up(message, feed, attempt, failures, &reason);
                    }
                    feed.attempted(attempt, failures, &reason);
                    let max = self.delivering.retry.max_attempts;
                    match after {
                        Some(after) => {
                            // A plugin may ask for anything; an hour is the most we honour.
                            let after = after.min(MAX_PAUSE);
                            tracing::info!(sink = %self.name, message_id = %message.id, %reason, "the upstream asked to wait: the sink pauses and retries in {} ({failures} of {max} attempts failed; a wait does not count)", Seconds(after));
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
                                    return self.give_up(message, feed, attempt, failures, &reason);
                                }
                            }
                            last_reason = reason;
                        }
                    }
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
        attempt: u32,
        failures: u32,
        reason: &str,
    ) -> Finished {
        let max_attempts = self.delivering.retry.max_attempts;
        tracing::warn!(sink = %self.name, message_id = %message.id, attempts = attempt, failures, max_attempts, %reason, "out of attempts; the message is a dead letter");
        let error = format!("gave up after {failures} failed attempts: {reason}");
        feed.dead(attempt, failures, error.clone());
        self.stats.dead_letter(&error);
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
    fn stop_cuts_waits_at_the_deadline() {
        let control = Control::default();
        control.drain_until(Instant::now());
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(control.wait(far), Waited::Stopped);
    }

    #[test]
    fn a_reload_change_ends_a_wait_at_once() {
        let control = Arc::new(Control::default());
        let waiter = {
            let control = control.clone();
            // An hour: only the change can end this wait within the test's lifetime.
            std::thread::spawn(move || control.wait(Instant::now() + Duration::from_secs(3600)))
        };
        control.change(Change {
            instance: None,
            rate_limit: None,
            retry: RetryPolicy::default(),
        });
        assert_eq!(waiter.join().ok(), Some(Waited::Changed));
        assert!(control.take_change().is_some());
        assert!(control.take_change().is_none(), "a change is taken once");
    }

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
