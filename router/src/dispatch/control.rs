//! How a worker is told to stop or to take a reload's changes while it waits.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::{Change, lock};

/// What a worker is told while it runs: to stop (after draining its queue until a
/// deadline), or to take a reload's changes. Either one wakes it from any wait (a
/// backoff, a pause, the rate limit), so a change applies at once, not after the wait.
#[derive(Default)]
pub(super) struct Control {
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
pub(super) enum Waited {
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
    pub(super) fn drain_until(&self, deadline: Instant) {
        self.orders().drain_until = Some(deadline);
        self.wake.notify_all();
    }

    /// Hands over a reload's change. One the worker has not taken yet is replaced, but
    /// its new plugin instance is kept when this change brings none: two quick reloads
    /// must not lose the first one's settings.
    pub(super) fn change(&self, change: Change) {
        let mut orders = self.orders();
        let instance = change
            .instance
            .or_else(|| orders.change.take().and_then(|pending| pending.instance));
        orders.change = Some(Change { instance, ..change });
        drop(orders);
        self.wake.notify_all();
    }

    /// The change a reload handed over, if any.
    pub(super) fn take_change(&self) -> Option<Change> {
        self.orders().change.take()
    }

    pub(super) fn stop_requested(&self) -> bool {
        self.orders().drain_until.is_some()
    }

    pub(super) fn past_deadline(&self) -> bool {
        self.orders()
            .drain_until
            .is_some_and(|d| Instant::now() >= d)
    }

    /// Waits until `until`, the drain deadline or a change, whichever comes first.
    pub(super) fn wait(&self, until: Instant) -> Waited {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::config::RetryPolicy;

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
}
