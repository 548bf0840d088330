//! Delivery: one worker thread per sink takes the sink's messages from the outbox in FIFO
//! order and hands them to the plugin, one attempt at a time. Owns the sink's rate limit
//! (never exceeded), pauses asked for by the upstream (`retry(after)`), exponential
//! backoff with jitter, the attempt cap, dead letters, and the sink's counters.
//! Plugins only make attempts; every wait happens here.
//!
//! [`Worker`] starts and stops a sink's thread; `run` is the thread's loop, `control` how
//! a stop or a reload's change reaches it mid-wait, `stats` the sink's counters and
//! `wire` the JSON each attempt hands the plugin.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{RateLimit, RetryPolicy};
use crate::outbox::{InFlight, Outbox, Signal};
use crate::plugins::Instance;

mod control;
mod run;
mod stats;
mod wire;

use control::Control;
use run::{Run, limiter, seed};
use stats::health_listener;
pub use stats::{LATENCY_BUCKETS, SinkStats};
pub(crate) use wire::wire;

/// Poisoning only means another thread panicked while holding the lock; the data (queues,
/// counters) is still consistent enough to keep delivering.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
    /// Disconnected when the thread has ended (its sender is dropped as it returns, or
    /// unwinds), so shutdown can wait for it with a deadline.
    ended: Mutex<Option<mpsc::Receiver<()>>>,
    /// The sink's attempt in flight: shutdown marks one it leaves behind.
    in_flight: Arc<InFlight>,
}

/// How long past the drain deadline shutdown waits for a worker still inside `deliver`
/// before it leaves it: its message stays in the outbox and goes again at the next start.
pub const ABANDON_AFTER: Duration = Duration::from_secs(1);

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
        let in_flight = outbox
            .in_flight(name)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut run = Run {
            name: name.to_owned(),
            stats: stats.clone(),
            control: control.clone(),
            limiter: delivering.rate_limit.map(limiter),
            delivering,
            in_flight: in_flight.clone(),
            paused_until: None,
            rng: seed(name),
        };
        let outbox = outbox.clone();
        let (ending, ended) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || {
                let _ending = ending;
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
            ended: Mutex::new(Some(ended)),
            in_flight,
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
    /// plugin instance. What is left stays in the outbox for the next start. A worker
    /// still inside the plugin's `deliver` [`ABANDON_AFTER`] past the deadline is left
    /// running (the process is about to exit): a plugin that hangs cannot hold the
    /// router's stop.
    pub fn shutdown(&self, deadline: Instant) {
        self.stop_at(deadline);
        let give_up = deadline + ABANDON_AFTER;
        if let Some(ended) = lock(&self.ended).take()
            && let Err(RecvTimeoutError::Timeout) =
                ended.recv_timeout(give_up.saturating_duration_since(Instant::now()))
        {
            tracing::warn!(sink = %self.name, "the plugin is still inside deliver after the drain; leaving it: its message stays in the outbox and goes again at the next start, this attempt counted as failed");
            self.in_flight.abandon();
            return;
        }
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}
